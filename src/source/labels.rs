//! A job's late labels (`labels:`): read for a date and joined to scored rows by
//! key, shared by `scorch shadow` and `scorch evaluate`.

use chrono::NaiveDate;
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::spec::job::JobSpec;
use crate::spec::template::{Redactor, TemplateVars};

/// The source a job's labels are read from: the labels table (`labels.path`), else
/// the job's own input.
pub fn labels_source(
    job: &JobSpec,
    l: &crate::spec::job::LabelsSpec,
) -> crate::spec::job::SourceSpec {
    match &l.path {
        Some(path) => crate::spec::job::SourceSpec::Parquet(crate::spec::job::ParquetSource {
            path: path.to_string(),
            hive_partitioning: true,
        }),
        None => job.source.clone(),
    }
}

/// Left-joins one date's labels (read from `src` rendered for `ds`) to its rows. A
/// date without label files leaves its rows unlabelled.
pub fn join_labels(
    day: DataFrame,
    l: &crate::spec::job::LabelsSpec,
    src: &crate::spec::job::SourceSpec,
    job: &JobSpec,
    ds: NaiveDate,
    ctx: &crate::source::Context<'_>,
    redactor: &mut Redactor,
) -> Result<DataFrame> {
    let on: Vec<String> = if l.on.is_empty() {
        job.keys.clone()
    } else {
        l.on.clone()
    };
    let labels =
        match crate::source::resolve(src, ctx, &TemplateVars::new(ds, &job.secrets), redactor) {
            Ok(r) => {
                let mut cols = on.clone();
                cols.push(l.column.clone());
                let schema = r.schema()?;
                for c in &cols {
                    if schema.get(c.as_str()).is_none() {
                        return Err(Error::DataContract(format!(
                            "labels table {}: column `{c}` (job field `{}`) is not there",
                            r.description,
                            job.labels_field()
                        )));
                    }
                }
                Some(r.read(&cols)?)
            }
            Err(e) if crate::source::is_no_files(&e) => None,
            Err(e) => {
                return Err(e.context(format!(
                    "reading the labels (job field `{}.path`)",
                    job.labels_field()
                )));
            }
        };
    let n = day.height();
    let Some(labels) = labels else {
        let mut day = day;
        day.with_column(Column::full_null(
            l.column.as_str().into(),
            n,
            &DataType::Float64,
        ))?;
        return Ok(day);
    };
    // Join on the scored rows' types; labels must be unique per key.
    let mut lf = labels.lazy();
    for c in &on {
        let dt = day
            .column(c)
            .map_err(|_| {
                Error::config(
                    "",
                    format!(
                        "`{}.on` column `{c}` is not a key, segment or `ds`",
                        job.labels_field()
                    ),
                )
            })?
            .dtype()
            .clone();
        lf = lf.with_column(col(c.as_str()).cast(dt));
    }
    let labels = lf.collect()?;
    let dup = labels
        .clone()
        .lazy()
        .group_by(on.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
        .agg([len().alias("__n")])
        .filter(col("__n").gt(lit(1)))
        .collect()?;
    if dup.height() > 0 {
        return Err(Error::DataContract(format!(
            "labels for {}: {} key(s) have more than one label (first: {}); \
             `{}.on` must identify one row",
            ds,
            dup.height(),
            dup.get_row(0)
                .map(|r| format!("{:?}", r.0))
                .unwrap_or_default(),
            job.labels_field()
        )));
    }
    let on_exprs: Vec<Expr> = on.iter().map(|c| col(c.as_str())).collect();
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    let joined = day
        .lazy()
        .join(labels.lazy(), on_exprs.clone(), on_exprs, args)
        .collect()?;
    // One type on every date (a date without labels has a null Float64 column).
    let mut joined = joined;
    let label = joined
        .column(&l.column)?
        .cast(&DataType::Float64)
        .map_err(|e| {
            Error::DataContract(format!(
                "label column `{}` is not numeric or boolean: {e}",
                l.column
            ))
        })?;
    joined.with_column(label)?;
    Ok(joined)
}

/// Values of a label column as `Some(bool)`/`None`; anything but 0, 1, true, false
/// and null is an error naming the row.
pub fn labels_of(df: &DataFrame, column: &str, keys: &[String]) -> Result<Vec<Option<bool>>> {
    let c = df.column(column)?;
    let f = c.cast(&DataType::Float64).map_err(|e| {
        Error::DataContract(format!(
            "label column `{column}` is not numeric or boolean: {e}"
        ))
    })?;
    let f = f.f64()?;
    let mut out = Vec::with_capacity(df.height());
    for (i, v) in f.iter().enumerate() {
        out.push(match v {
            None => None,
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            Some(x) => {
                let key: Vec<String> = keys
                    .iter()
                    .filter_map(|k| df.column(k).ok()?.get(i).ok().map(|v| v.to_string()))
                    .collect();
                return Err(Error::DataContract(format!(
                    "label column `{column}` has value {x} at row {i} (key {}); labels must be 0/1 or true/false",
                    key.join(", ")
                )));
            }
        });
    }
    Ok(out)
}
