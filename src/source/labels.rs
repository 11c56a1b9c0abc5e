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

/// The columns labels are joined on: `labels.on`, else the job's keys.
pub fn on_columns(l: &crate::spec::job::LabelsSpec, job: &JobSpec) -> Vec<String> {
    if l.on.is_empty() {
        job.keys.clone()
    } else {
        l.on.clone()
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
    let on = on_columns(l, job);
    let labels = match resolve_labels(l, src, job, ds, ctx, redactor)? {
        Some(r) => {
            let mut cols = on.clone();
            cols.push(l.column.clone());
            Some(r.read(&cols)?)
        }
        None => None,
    };
    let Some(labels) = labels else {
        return unlabelled(day, &l.column);
    };
    let labels = cast_label_keys(labels, day.schema(), &on, job, ds)?;
    attach_labels(day, labels, l, &on, job, ds)
}

/// `day` with an all-null label column `column` (no labels for the date yet): one
/// type on every date.
pub fn unlabelled(mut day: DataFrame, column: &str) -> Result<DataFrame> {
    let n = day.height();
    day.with_column(Column::full_null(column.into(), n, &DataType::Float64))?;
    Ok(day)
}

/// Resolves the labels source for `ds` and checks it has the join columns and the
/// label column; `None` when no label files exist (yet) for the date.
pub fn resolve_labels(
    l: &crate::spec::job::LabelsSpec,
    src: &crate::spec::job::SourceSpec,
    job: &JobSpec,
    ds: NaiveDate,
    ctx: &crate::source::Context<'_>,
    redactor: &mut Redactor,
) -> Result<Option<crate::source::Resolved>> {
    let mut cols = on_columns(l, job);
    cols.push(l.column.clone());
    match crate::source::resolve(src, ctx, &TemplateVars::new(ds, &job.secrets), redactor) {
        Ok(r) => {
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
            Ok(Some(r))
        }
        Err(e) if crate::source::is_no_files(&e) => Ok(None),
        Err(e) => Err(e.context(format!(
            "reading the labels (job field `{}.path`)",
            job.labels_field()
        ))),
    }
}

/// Casts the join columns of (a chunk of) the labels to the scored rows' types
/// (`day`): strict, so a key that is not of the rows' type ("C001" against
/// integers) is an error, not a null that labels nothing.
pub fn cast_label_keys(
    labels: DataFrame,
    day: &Schema,
    on: &[String],
    job: &JobSpec,
    ds: NaiveDate,
) -> Result<DataFrame> {
    let mut lf = labels.lazy();
    for c in on {
        let dt = day.get(c.as_str()).ok_or_else(|| {
            Error::config(
                "",
                format!(
                    "`{}.on` column `{c}` is not a key, segment or `ds`",
                    job.labels_field()
                ),
            )
        })?;
        lf = lf.with_column(col(c.as_str()).strict_cast(dt.clone()));
    }
    lf.collect().map_err(|e| {
        Error::DataContract(format!(
            "labels for {ds}: the join columns {on:?} (job field `{}.on`) do not read as the \
             scored rows' types: {e}",
            job.labels_field()
        ))
    })
}

/// Left-joins `labels` (join columns already cast, [`cast_label_keys`]) to `day`,
/// in `day`'s row order; a key with more than one label is a data error.
pub fn attach_labels(
    day: DataFrame,
    labels: DataFrame,
    l: &crate::spec::job::LabelsSpec,
    on: &[String],
    job: &JobSpec,
    ds: NaiveDate,
) -> Result<DataFrame> {
    let (dups, first) = duplicated_label_keys(&labels, on)?;
    if dups > 0 {
        return Err(duplicated_labels_error(dups, &first, job, ds));
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
        .strict_cast(&DataType::Float64)
        .map_err(|e| {
            Error::DataContract(format!(
                "label column `{}` is not numeric or boolean: {e}",
                l.column
            ))
        })?;
    joined.with_column(label)?;
    Ok(joined)
}

/// Keys of `labels` with more than one row, and the first such key (as text).
pub fn duplicated_label_keys(labels: &DataFrame, on: &[String]) -> Result<(usize, String)> {
    let dup = labels
        .clone()
        .lazy()
        .group_by(on.iter().map(|c| col(c.as_str())).collect::<Vec<_>>())
        .agg([len().alias("__n")])
        .filter(col("__n").gt(lit(1)))
        .collect()?;
    let first = dup
        .get_row(0)
        .map(|r| format!("{:?}", r.0))
        .unwrap_or_default();
    Ok((dup.height(), first))
}

/// The error for `count` label keys with more than one label, the first `first`.
pub fn duplicated_labels_error(count: usize, first: &str, job: &JobSpec, ds: NaiveDate) -> Error {
    Error::DataContract(format!(
        "labels for {}: {} key(s) have more than one label (first: {}); \
         `{}.on` must identify one row",
        ds,
        count,
        first,
        job.labels_field()
    ))
}

/// Values of a label column as `Some(bool)`/`None`: booleans, or numbers 0 and 1
/// of any integer or float type; null and NaN (pandas' missing value) are `None`.
/// Anything else is an error naming the row and its key.
pub fn labels_of(df: &DataFrame, column: &str, keys: &[String]) -> Result<Vec<Option<bool>>> {
    let c = df.column(column)?;
    let f = c.strict_cast(&DataType::Float64).map_err(|e| {
        Error::DataContract(format!(
            "label column `{column}` is not numeric or boolean: {e}"
        ))
    })?;
    let f = f.f64()?;
    let mut out = Vec::with_capacity(df.height());
    for (i, v) in f.iter().enumerate() {
        out.push(match v {
            None => None,
            Some(x) if x.is_nan() => None,
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            Some(x) => {
                let key: Vec<String> = keys
                    .iter()
                    .filter_map(|k| df.column(k).ok()?.get(i).ok().map(|v| v.to_string()))
                    .collect();
                let key = if key.is_empty() {
                    String::new()
                } else {
                    format!(" (key {})", key.join(", "))
                };
                return Err(Error::DataContract(format!(
                    "label column `{column}` has value {x} at row {i}{key}; labels must be 0/1 or true/false"
                )));
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Option<f64>> {
        prop_oneof![
            Just(None),
            Just(Some(0.0)),
            Just(Some(1.0)),
            Just(Some(-0.0)),
            Just(Some(f64::NAN)),
            Just(Some(f64::INFINITY)),
            Just(Some(f64::NEG_INFINITY)),
            Just(Some(0.5)),
            Just(Some(2.0)),
            any::<f64>().prop_map(Some),
        ]
    }

    proptest! {
        /// Any float label column: read iff every value is 0, 1, NaN or null (NaN and
        /// null unlabelled), and refused otherwise naming the first bad row and key;
        /// the same values as integers or booleans read the same.
        #[test]
        fn labels_read_exactly_zero_one_nan_and_null(v in prop::collection::vec(value(), 0..40)) {
            let ids: Vec<i64> = (0..v.len() as i64).map(|i| i * 7).collect();
            let df = DataFrame::new_infer_height(vec![
                Column::new("id".into(), &ids),
                Column::new("y".into(), &v),
            ]).unwrap();
            let bad = v.iter().position(|x| x.is_some_and(|x| !x.is_nan() && x != 0.0 && x != 1.0));
            match (labels_of(&df, "y", &["id".to_string()]), bad) {
                (Ok(got), None) => {
                    let want: Vec<Option<bool>> = v
                        .iter()
                        .map(|x| x.filter(|x| !x.is_nan()).map(|x| x == 1.0))
                        .collect();
                    prop_assert_eq!(&got, &want);
                    let ints: Vec<Option<i64>> = want.iter().map(|b| b.map(i64::from)).collect();
                    for c in [Column::new("y".into(), &ints), Column::new("y".into(), &want)] {
                        let df = DataFrame::new_infer_height(vec![c]).unwrap();
                        prop_assert_eq!(&labels_of(&df, "y", &[]).unwrap(), &want);
                    }
                }
                (Err(e), Some(i)) => {
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&format!("at row {i} (key {})", ids[i])), "{}", msg);
                }
                (got, bad) => prop_assert!(false, "{:?} with bad row {:?}", got.map(|_| ()), bad),
            }
        }
    }

    #[test]
    fn text_labels_are_refused_not_read_as_missing() {
        for vals in [vec!["yes", "no"], vec!["true", "false"], vec!["1", "x"]] {
            let df = DataFrame::new_infer_height(vec![Column::new("y".into(), &vals)]).unwrap();
            let e = labels_of(&df, "y", &[]).unwrap_err().to_string();
            assert!(
                e.contains("label column `y` is not numeric or boolean"),
                "{e}"
            );
        }
        // Digits in text are numbers.
        let df = DataFrame::new_infer_height(vec![Column::new("y".into(), &["1", "0"])]).unwrap();
        assert_eq!(
            labels_of(&df, "y", &[]).unwrap(),
            vec![Some(true), Some(false)]
        );
    }
}

/// The column of row numbers [`joined_chunks`] adds: each row's place in the date's
/// rows as read (plus the `first_row` given), whatever order the join hands the
/// rows back in.
pub const ROW_NUMBER: &str = "__scorch_row";

/// Rows per chunk read when the join is partitioned or streamed.
const CHUNK_ROWS: usize = 1 << 18;

/// One date's published rows and the labels joined to them.
pub struct ScoredDate<'a> {
    pub job: &'a JobSpec,
    /// The labels joined to the rows and their source; `None` when the rows need
    /// no join (no labels, or the label column is among the rows' own).
    pub labels: Option<(
        &'a crate::spec::job::LabelsSpec,
        &'a crate::spec::job::SourceSpec,
    )>,
    pub scored: &'a super::Resolved,
    /// The rows' columns read.
    pub columns: &'a [String],
    pub ds: NaiveDate,
    pub ds_text: &'a str,
}

/// What [`joined_chunks`] did.
#[derive(Debug, Clone, Copy)]
pub struct JoinStats {
    pub rows: u64,
    /// Hash partitions of the join (1: in memory, or no join).
    pub partitions: usize,
    /// Bytes of the partition files.
    pub file_bytes: u64,
}

/// The date's rows joined to its labels, handed to `feed` chunk by chunk, each with
/// a `ds` column and [`ROW_NUMBER`]. In memory when the join fits `budget` bytes
/// (judged by the inputs' row counts), else a Grace hash join: both sides
/// hash-partitioned by the join columns into Parquet files in a temporary folder,
/// each partition joined alone — the same rows, exactly, in bounded memory. Rows
/// that need no join are streamed as read. A label key given twice is an error
/// (exit 3) naming it, whichever way the rows were joined.
pub fn joined_chunks(
    d: &ScoredDate<'_>,
    budget: usize,
    first_row: u64,
    ctx: &super::Context<'_>,
    redactor: &mut Redactor,
    feed: &mut dyn FnMut(DataFrame) -> Result<()>,
) -> Result<JoinStats> {
    use super::partition;
    let mut next_row = first_row;
    let mut number = |mut df: DataFrame| -> Result<DataFrame> {
        let h = df.height();
        df.with_column(Column::new_scalar(
            "ds".into(),
            Scalar::from(PlSmallStr::from(d.ds_text)),
            h,
        ))?;
        let ids: Vec<u64> = (next_row..next_row + h as u64).collect();
        next_row += h as u64;
        df.with_column(Column::new(ROW_NUMBER.into(), ids))?;
        Ok(df)
    };
    let Some((labels, labels_source)) = d.labels else {
        let mut rows = 0u64;
        for b in d.scored.batches(d.columns, CHUNK_ROWS)? {
            let b = number(b?)?;
            rows += b.height() as u64;
            feed(b)?;
        }
        return Ok(JoinStats {
            rows,
            partitions: 1,
            file_bytes: 0,
        });
    };
    let on = on_columns(labels, d.job);
    let found = resolve_labels(labels, labels_source, d.job, d.ds, ctx, redactor)?;
    let footer_rows = |r: &super::Resolved| -> Result<Option<u64>> {
        let rows = r.input_rows()?;
        Ok((!rows.is_empty() && rows.iter().all(Option::is_some))
            .then(|| rows.iter().flatten().sum()))
    };
    let scored_rows = footer_rows(d.scored)?.unwrap_or(0);
    let label_rows = match &found {
        Some(r) => footer_rows(r)?.unwrap_or(scored_rows),
        None => 0,
    };
    let parts = partition::partitions_for(scored_rows + label_rows, on.len(), budget);
    let mut lcols = on.clone();
    lcols.push(labels.column.clone());
    let found = match found {
        Some(found) if parts > 1 => found,
        Some(r) => {
            // In memory: the date's rows and labels read whole.
            let day = number(d.scored.read(d.columns)?)?;
            let rows = day.height() as u64;
            let lab = cast_label_keys(r.read(&lcols)?, day.schema(), &on, d.job, d.ds)?;
            feed(attach_labels(day, lab, labels, &on, d.job, d.ds)?)?;
            return Ok(JoinStats {
                rows,
                partitions: 1,
                file_bytes: 0,
            });
        }
        None => {
            // No labels for the date: its rows, unlabelled, as read.
            let mut rows = 0u64;
            for b in d.scored.batches(d.columns, CHUNK_ROWS)? {
                let b = unlabelled(number(b?)?, &labels.column)?;
                rows += b.height() as u64;
                feed(b)?;
            }
            return Ok(JoinStats {
                rows,
                partitions: 1,
                file_bytes: 0,
            });
        }
    };
    let tmp =
        crate::storage::SpillFolder::adopt(crate::storage::create_temp_folder("scorch-join-")?);
    let mut scored = partition::Partitions::new(tmp.path(), "scores", parts);
    let mut day_schema: Option<Schema> = None;
    for b in d.scored.batches(d.columns, CHUNK_ROWS)? {
        let b = number(b?)?;
        day_schema.get_or_insert_with(|| b.schema().as_ref().clone());
        scored.add(&b, &on)?;
    }
    let rows = scored.rows;
    let Some(day_schema) = day_schema else {
        return Ok(JoinStats {
            rows: 0,
            partitions: parts,
            file_bytes: 0,
        });
    };
    let mut label_parts = partition::Partitions::new(tmp.path(), "labels", parts);
    let mut label_schema: Option<Schema> = None;
    for b in found.batches(&lcols, CHUNK_ROWS)? {
        let b = cast_label_keys(b?, &day_schema, &on, d.job, d.ds)?;
        label_schema.get_or_insert_with(|| b.schema().as_ref().clone());
        label_parts.add(&b, &on)?;
    }
    let (scored, label_files) = (scored.finish()?, label_parts.finish()?);
    let file_bytes: u64 = scored
        .iter()
        .chain(&label_files)
        .flatten()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let (mut dups, mut first) = (0usize, String::new());
    for (s, l) in scored.iter().zip(&label_files) {
        let lab = match (l, &label_schema) {
            (Some(f), _) => Some(partition::read(f)?),
            (None, Some(schema)) => Some(DataFrame::empty_with_schema(schema)),
            (None, None) => None,
        };
        if let Some(lab) = &lab {
            let (n, f) = duplicated_label_keys(lab, &on)?;
            if n > 0 && dups == 0 {
                first = f;
            }
            dups += n;
        }
        let Some(s) = s else { continue };
        if dups > 0 {
            continue; // an error below; the other partitions only add to its count
        }
        let day = partition::read(s)?;
        feed(match lab {
            Some(lab) => attach_labels(day, lab, labels, &on, d.job, d.ds)?,
            None => unlabelled(day, &labels.column)?,
        })?;
    }
    if dups > 0 {
        return Err(duplicated_labels_error(dups, &first, d.job, d.ds));
    }
    Ok(JoinStats {
        rows,
        partitions: parts,
        file_bytes,
    })
}
