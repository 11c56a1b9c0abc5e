//! The output of a run: its columns in order (carried keys, scores, model and
//! run columns), the Parquet metadata every file carries, and the frame of each
//! chunk.

use chrono::Utc;
use polars::prelude::*;

use super::input::Input;
use super::models::Models;
use super::plan::Setup;
use super::{CHALLENGER_PREFIX, CHAMPION_PREFIX, pipeline};
use crate::error::Result;
use crate::sink;
use crate::sink::manifest::Manifest;

/// The layout of a run's output and quarantine files.
pub(crate) struct Layout {
    /// The output's columns and types, in order.
    pub schema: Schema,
    /// The score columns written, in order (shadow runs: champion's, then challenger's).
    pub scores: Vec<String>,
    /// The model's score columns, and the challenger's.
    pub score_columns: Vec<String>,
    pub score_columns2: Vec<String>,
    /// `model_name`, `model_version`, or a name and version column per scorer (shadow runs).
    pub model_columns: &'static [&'static str],
    /// Key-value metadata of every output file.
    pub meta: Vec<(String, String)>,
    pub constants: Constants,
    /// The quarantine file's columns: every column read, then the reason.
    pub quarantine: Schema,
    /// The Delta table's schema (`output.format: delta`): the columns, then `ds`.
    pub delta: Option<deltalake_core::kernel::StructType>,
}

impl Layout {
    /// The output's column names, in order.
    pub fn column_names(&self) -> Vec<String> {
        self.schema.iter_names().map(|c| c.to_string()).collect()
    }

    pub fn new(s: &Setup, models: &Models, input: &Input, m: &Manifest) -> Layout {
        let (bundle, second) = (&models.bundle, &models.second);
        let state = &bundle.state;
        let shadow = s.opts.shadow.is_some();
        let score_columns = bundle.spec.score_columns();
        let score_columns2 = second
            .as_ref()
            .map(|(b, _, _)| b.spec.score_columns())
            .unwrap_or_default();
        let mut schema = Schema::default();
        for k in &input.carry {
            schema.insert(
                sink::file_column(k).into(),
                input.schema.get(k.as_str()).expect("checked").clone(),
            );
        }
        let shadow_names = |prefix: &str, cols: &[String]| -> Vec<String> {
            cols.iter().map(|c| format!("{prefix}{c}")).collect()
        };
        let scores: Vec<String> = if shadow {
            let mut v = shadow_names(CHAMPION_PREFIX, &score_columns);
            v.extend(shadow_names(CHALLENGER_PREFIX, &score_columns2));
            v
        } else {
            score_columns.clone()
        };
        for c in &scores {
            schema.insert(c.as_str().into(), DataType::Float32);
        }
        let model_columns: &'static [&'static str] = if shadow {
            &[
                "champion_model",
                "champion_version",
                "challenger_model",
                "challenger_version",
            ]
        } else {
            &["model_name", "model_version"]
        };
        for c in model_columns {
            schema.insert((*c).into(), DataType::String);
        }
        schema.insert("run_id".into(), DataType::String);
        schema.insert("scored_at".into(), scored_at_dtype());
        let mut meta = vec![
            ("scorch.version", env!("CARGO_PKG_VERSION").to_string()),
            ("scorch.job", s.ctx.job.name.clone()),
            ("scorch.run_id", m.run_id.clone()),
            ("scorch.ds", m.ds.clone()),
            ("scorch.model_name", bundle.spec.name.clone()),
            ("scorch.model_version", bundle.spec.version.clone()),
            ("scorch.model_sha256", bundle.spec.model_sha256.clone()),
            ("scorch.preprocessing_name", state.spec.name.clone()),
            ("scorch.preprocessing_version", state.spec.version.clone()),
            (
                "scorch.preprocessing_state_hash",
                state.content_hash.clone(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect::<Vec<_>>();
        let mut names = vec![(bundle.spec.name.clone(), bundle.spec.version.clone())];
        if let Some((b2, _, _)) = second {
            names.push((b2.spec.name.clone(), b2.spec.version.clone()));
            meta.push(("scorch.challenger_model_name".into(), b2.spec.name.clone()));
            meta.push((
                "scorch.challenger_model_version".into(),
                b2.spec.version.clone(),
            ));
            meta.push((
                "scorch.challenger_model_sha256".into(),
                b2.spec.model_sha256.clone(),
            ));
        }
        if let Some(r) = &s.ctx.job.rollout {
            meta.push(("scorch.rollout_fraction".into(), r.fraction.to_string()));
            meta.push(("scorch.rollout_salt".into(), r.salt.clone()));
        }
        let mut quarantine = Schema::default();
        for c in &input.needed {
            quarantine.insert(
                sink::file_column(c).into(),
                input.schema.get(c.as_str()).expect("checked").clone(),
            );
        }
        quarantine.insert(crate::contract::REASON_COLUMN.into(), DataType::String);
        Layout {
            schema,
            scores,
            score_columns,
            score_columns2,
            model_columns,
            meta,
            constants: Constants {
                models: names,
                run_id: m.run_id.clone(),
                scored_at: Utc::now().timestamp_micros(),
            },
            quarantine,
            delta: None,
        }
    }
}

fn scored_at_dtype() -> DataType {
    DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
}

/// Values every output row of a run shares.
pub(crate) struct Constants {
    /// Name and version of each scorer: the job's model, then the challenger.
    pub models: Vec<(String, String)>,
    pub run_id: String,
    pub scored_at: i64,
}

/// Carried columns, scores and the run's model and constant columns for one chunk.
///
/// `score_columns` names the score columns in output order: one scorer's (plain and
/// canary runs: scores merged by the split) or every scorer's (shadow runs).
/// `model_columns` names the model columns: `model_name`, `model_version` (the
/// scorer of each row), or a name and version column per scorer (shadow runs).
pub(crate) fn output_frame(
    raw: &DataFrame,
    carry: &[String],
    score_columns: &[String],
    scores: pipeline::ChunkScores,
    c: &Constants,
    model_columns: &[&str],
) -> Result<(DataFrame, u64)> {
    let n = raw.height();
    let mut columns: Vec<Column> = Vec::with_capacity(carry.len() + score_columns.len() + 6);
    for k in carry {
        let mut c = raw.column(k)?.clone();
        c.rename(sink::file_column(k).into());
        columns.push(c);
    }
    let text =
        |name: &str, v: &str| Column::new_scalar(name.into(), Scalar::from(PlSmallStr::from(v)), n);
    let shadow = model_columns.len() > 2;
    let route = scores.route.clone();
    let values: Vec<Vec<f32>> = if shadow {
        scores.by_scorer.into_iter().flatten().collect()
    } else {
        scores.into_merged()
    };
    let mut nulls = 0u64;
    for (name, v) in score_columns.iter().zip(values) {
        if v.iter().all(|x| x.is_finite()) {
            columns.push(Column::new(name.into(), v));
        } else {
            // Only with `inference.invalid_scores: null` (else the run failed).
            let v: Vec<Option<f32>> = v.into_iter().map(|x| x.is_finite().then_some(x)).collect();
            nulls += v.iter().filter(|x| x.is_none()).count() as u64;
            columns.push(Column::new(name.into(), v));
        }
    }
    if shadow {
        for (i, (name, version)) in c.models.iter().enumerate() {
            columns.push(text(model_columns[2 * i], name));
            columns.push(text(model_columns[2 * i + 1], version));
        }
    } else if let Some(route) = route {
        let pick = |f: &dyn Fn(&(String, String)) -> &str| -> Vec<&str> {
            route.iter().map(|&r| f(&c.models[r as usize])).collect()
        };
        columns.push(Column::new("model_name".into(), pick(&|m| &m.0)));
        columns.push(Column::new("model_version".into(), pick(&|m| &m.1)));
    } else {
        columns.push(text("model_name", &c.models[0].0));
        columns.push(text("model_version", &c.models[0].1));
    }
    columns.push(text("run_id", &c.run_id));
    columns.push(Column::new_scalar(
        "scored_at".into(),
        Scalar::new(
            scored_at_dtype(),
            AnyValue::DatetimeOwned(
                c.scored_at,
                TimeUnit::Microseconds,
                Some(std::sync::Arc::new(TimeZone::UTC)),
            ),
        ),
        n,
    ));
    Ok((DataFrame::new(n, columns)?, nulls))
}
