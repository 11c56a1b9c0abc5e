//! A snapshot of a Delta Lake table as a source (`source.delta`): the table's
//! log read through delta-rs at the latest version, a pinned `version` or a
//! `timestamp`; the live files of the partitions the `filters` select, read by
//! Polars like any Parquet files, with the partition columns added from the log.
//! The version read is recorded in the run manifest (`source_version`).

use std::collections::{BTreeMap, HashMap};

use deltalake_core::DeltaTableError;
use deltalake_core::kernel::{DataType as DeltaType, PrimitiveType};
use futures_util::StreamExt;
use polars::prelude::*;

use super::{Context, Frame, InputFile, Resolved, render_field};
use crate::error::{Error, Result};
use crate::spec::job::DeltaSource;
use crate::spec::template::{Redactor, TemplateVars};
use crate::storage::delta::Place;

/// Reader protocol features whose files scorch reads correctly as plain Parquet.
const READABLE_FEATURES: &[&str] = &[
    "timestampNtz",
    "v2Checkpoint",
    "vacuumProtocolCheck",
    "typeWidening",
    "typeWidening-preview",
    "variantType",
    "deletionVectors",
];

/// A live file of the snapshot: its path, size and modification time (ms).
type LiveFile = (String, i64, i64);

/// Resolves a Delta source for the run: reads the log, selects the files.
pub fn resolve(
    spec: &DeltaSource,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Resolved> {
    let path = render_field(&spec.path, "source.delta.path", vars, red)?;
    let version = spec
        .version
        .as_ref()
        .map(|v| {
            let v = render_field(v, "source.delta.version", vars, red)?;
            v.trim().parse::<u64>().map_err(|_| {
                Error::usage(format!(
                    "source.delta.version: {v:?} is not a table version (0, 1, 2, …)"
                ))
            })
        })
        .transpose()?;
    let timestamp = spec
        .timestamp
        .as_ref()
        .map(|t| {
            let t = render_field(t, "source.delta.timestamp", vars, red)?;
            chrono::DateTime::parse_from_rfc3339(t.trim())
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    Error::usage(format!(
                        "source.delta.timestamp: {t:?} is not an RFC 3339 time \
                         (2026-11-28T23:59:59Z): {e}"
                    ))
                })
        })
        .transpose()?;
    let mut filters = BTreeMap::new();
    for (k, v) in &spec.filters {
        filters.insert(
            k.clone(),
            render_field(v, &format!("source.delta.filters.{k}"), vars, red)?,
        );
    }
    let shown = red.redact(&path);
    let (store, url) = if crate::storage::is_url(&path) {
        let (store, _) =
            crate::storage::open(&path, ctx.storage).map_err(|e| e.redacted(|m| red.redact(m)))?;
        (Some(store), path.trim_end_matches('/').to_string())
    } else {
        let dir = ctx.root.join(&path);
        if !dir.join("_delta_log").is_dir() {
            return Err(Error::DataContract(format!(
                "source.delta.path: no Delta table at {} (it has no _delta_log/ folder)",
                red.redact(&dir.display().to_string())
            )));
        }
        (None, dir.display().to_string())
    };
    let place = match &store {
        Some(s) => Place::Remote(&url, s),
        None => Place::Local(std::path::Path::new(&url)),
    };
    let mut builder = crate::storage::delta::builder(&place)?;
    if let Some(v) = version {
        builder = builder.with_version(v);
    }
    if let Some(t) = timestamp {
        builder = builder.with_timestamp(t);
    }
    let what = match (version, timestamp) {
        (Some(v), _) => format!(" at version {v}"),
        (_, Some(t)) => format!(" as of {}", t.to_rfc3339()),
        _ => String::new(),
    };
    let rt = crate::storage::runtime()?;
    let table = rt.block_on(builder.load()).map_err(|e| match e {
        DeltaTableError::NotATable(_) => {
            Error::DataContract(format!("source.delta.path: no Delta table at {shown}"))
        }
        e => Error::DataContract(format!(
            "source.delta: cannot read the Delta table {shown}{what}: {e}"
        )),
    })?;
    let read_version = table.version().unwrap_or(0);
    let snapshot = table
        .snapshot()
        .map_err(|e| Error::DataContract(format!("source.delta {shown}: {e}")))?;
    // delta-rs settles on the first version when the time is before it; refuse
    // that rather than read a snapshot that did not exist at the time asked.
    if let Some(t) = timestamp
        && let Some(committed) = snapshot.version_timestamp(read_version)
        && committed > t.timestamp_millis()
    {
        return Err(Error::DataContract(format!(
            "source.delta: the Delta table {shown} has no version as of {}: its first \
             version (version {read_version}) was committed at {}; pick a later timestamp",
            t.to_rfc3339(),
            chrono::DateTime::from_timestamp_millis(committed)
                .map(|d| d.to_rfc3339())
                .unwrap_or_else(|| committed.to_string())
        )));
    }
    check_readable(snapshot.protocol(), &shown)?;
    let schema = snapshot.schema();
    let partition_columns: Vec<String> = snapshot.metadata().partition_columns().to_vec();
    let mut types: HashMap<String, DataType> = HashMap::new();
    let mut columns = Vec::new();
    for f in schema.fields() {
        let t = polars_type(f.data_type()).ok_or_else(|| {
            Error::DataContract(format!(
                "source.delta {shown}: column `{}` is of Delta type {}, which scorch does not \
                 read; select the table's other columns through a view, or cast it upstream",
                f.name(),
                f.data_type()
            ))
        })?;
        types.insert(f.name().to_string(), t);
        columns.push(f.name().to_string());
    }
    for k in filters.keys() {
        if !types.contains_key(k) {
            return Err(Error::usage(format!(
                "source.delta.filters.{k}: the Delta table {shown} has no column `{k}` (its \
                 columns: {})",
                columns.join(", ")
            )));
        }
    }
    // The live files of the selected partitions, grouped by partition values.
    let mut groups: BTreeMap<Vec<Option<String>>, Vec<LiveFile>> = BTreeMap::new();
    let (mut live, mut skipped) = (0usize, 0usize);
    rt.block_on(async {
        let mut views = table.get_active_add_actions_by_partitions(&[]);
        while let Some(v) = views.next().await {
            let v = v.map_err(|e| Error::DataContract(format!("source.delta {shown}: {e}")))?;
            live += 1;
            let values = v.partition_values_map();
            let keep = filters.iter().all(|(k, want)| {
                !partition_columns.contains(k)
                    || values.get(k).and_then(|x| x.as_deref()) == Some(want.as_str())
            });
            if !keep {
                skipped += 1;
                continue;
            }
            if v.deletion_vector_descriptor().is_some() {
                return Err(Error::DataContract(format!(
                    "source.delta {shown}: file {} has a deletion vector (rows deleted in place), \
                     which scorch does not apply; run OPTIMIZE or REORG … APPLY (PURGE) on the \
                     table first",
                    v.path()
                )));
            }
            let key: Vec<Option<String>> = partition_columns
                .iter()
                .map(|c| values.get(c).cloned().flatten())
                .collect();
            groups.entry(key).or_default().push((
                v.path().to_string(),
                v.size(),
                v.modification_time(),
            ));
        }
        Ok::<(), Error>(())
    })?;
    drop(table);
    let file_url = |rel: &str| -> String {
        if rel.contains("://") {
            rel.to_string()
        } else {
            format!("{url}/{rel}")
        }
    };
    let mut inputs = Vec::new();
    let mut frames = Vec::new();
    let cloud = store.as_ref().map(|s| s.cloud.clone());
    for (key, files) in &groups {
        let paths: Vec<PlRefPath> = files
            .iter()
            .map(|(p, _, _)| PlRefPath::new(file_url(p)))
            .collect();
        for (p, size, modified) in files {
            inputs.push(InputFile {
                path: red.redact(&file_url(p)),
                bytes: (*size).max(0) as u64,
                modified: chrono::DateTime::from_timestamp_millis(*modified)
                    .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
                sha256: None,
                etag: None,
            });
        }
        let args = ScanArgsParquet {
            cloud_options: cloud.clone(),
            hive_options: HiveOptions {
                enabled: Some(false),
                ..Default::default()
            },
            glob: false,
            allow_missing_columns: true,
            ..Default::default()
        };
        let mut lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?;
        let parts: Vec<Expr> = partition_columns
            .iter()
            .zip(key)
            .map(|(c, v)| {
                let t = types[c].clone();
                match v {
                    Some(v) => lit(v.clone()).cast(t).alias(c.as_str()),
                    None => lit(NULL).cast(t).alias(c.as_str()),
                }
            })
            .collect();
        lf = lf.with_columns(parts);
        // The table's columns, in its order, whatever each file holds.
        lf = lf.select(columns.iter().map(|c| col(c.as_str())).collect::<Vec<_>>());
        frames.push(lf);
    }
    let mut lf = if frames.is_empty() {
        let schema: Schema = columns
            .iter()
            .map(|c| Field::new(c.as_str().into(), types[c].clone()))
            .collect();
        DataFrame::empty_with_schema(&schema).lazy()
    } else if frames.len() == 1 {
        frames.pop().expect("one")
    } else {
        concat(frames, UnionArgs::default())?
    };
    // Filters on other columns filter rows (compared as text, like the partitions').
    for (k, v) in &filters {
        if !partition_columns.contains(k) {
            lf = lf.filter(col(k.as_str()).cast(DataType::String).eq(lit(v.clone())));
        }
    }
    let description = format!(
        "delta {shown} version {read_version} ({} of {live} live file(s){})",
        inputs.len(),
        if skipped > 0 {
            format!(", {skipped} pruned by partition")
        } else {
            String::new()
        }
    );
    tracing::info!(table = %shown, version = read_version, files = inputs.len(), pruned = skipped, "reading a Delta snapshot");
    Ok(Resolved {
        frame: Frame::Lazy(Box::new(lf)),
        inputs,
        parquet: vec![],
        description,
        version: Some(read_version),
    })
}

/// Refuses tables whose files cannot be read as plain Parquet (column mapping,
/// unknown reader features).
fn check_readable(p: &deltalake_core::kernel::Protocol, shown: &str) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::DataContract(format!(
            "source.delta {shown}: {why}; scorch reads tables whose files are plain Parquet"
        )))
    };
    match p.min_reader_version() {
        1 => Ok(()),
        2 => refuse("the table uses column mapping (reader version 2)".into()),
        _ => {
            let features: Vec<String> = p
                .reader_features()
                .map(|f| f.iter().map(|x| x.to_string()).collect())
                .unwrap_or_default();
            let unknown: Vec<&String> = features
                .iter()
                .filter(|f| !READABLE_FEATURES.contains(&f.as_str()))
                .collect();
            if unknown.is_empty() {
                Ok(())
            } else {
                refuse(format!(
                    "the table needs reader features {}",
                    unknown
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
    }
}

/// The Polars type of a Delta column (`None`: not read by scorch).
fn polars_type(t: &DeltaType) -> Option<DataType> {
    let DeltaType::Primitive(p) = t else {
        return None;
    };
    Some(match p {
        PrimitiveType::String => DataType::String,
        PrimitiveType::Long => DataType::Int64,
        PrimitiveType::Integer => DataType::Int32,
        PrimitiveType::Short => DataType::Int16,
        PrimitiveType::Byte => DataType::Int8,
        PrimitiveType::Float => DataType::Float32,
        PrimitiveType::Double => DataType::Float64,
        PrimitiveType::Boolean => DataType::Boolean,
        PrimitiveType::Binary => DataType::Binary,
        PrimitiveType::Date => DataType::Date,
        PrimitiveType::Timestamp => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
        PrimitiveType::TimestampNtz => DataType::Datetime(TimeUnit::Microseconds, None),
        _ => return None,
    })
}
