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

/// A Delta source's settings rendered for the run.
struct Rendered {
    path: String,
    version: Option<u64>,
    timestamp: Option<chrono::DateTime<chrono::Utc>>,
    filters: BTreeMap<String, String>,
}

impl Rendered {
    /// `spec`'s templates rendered, `version` and `timestamp` parsed by the
    /// parsers `scorch validate` uses (`DeltaSource::parse_*`).
    fn of(spec: &DeltaSource, vars: &TemplateVars, red: &mut Redactor) -> Result<Rendered> {
        let path = render_field(&spec.path, "source.delta.path", vars, red)?;
        let version = spec
            .version
            .as_ref()
            .map(|v| {
                let v = render_field(v, "source.delta.version", vars, red)?;
                DeltaSource::parse_version(&v)
                    .map_err(|m| Error::usage(format!("field `source.delta.version`: {m}")))
            })
            .transpose()?;
        let timestamp = spec
            .timestamp
            .as_ref()
            .map(|t| {
                let t = render_field(t, "source.delta.timestamp", vars, red)?;
                DeltaSource::parse_timestamp(&t)
                    .map_err(|m| Error::usage(format!("field `source.delta.timestamp`: {m}")))
            })
            .transpose()?;
        let mut filters = BTreeMap::new();
        for (k, v) in &spec.filters {
            filters.insert(
                k.clone(),
                render_field(v, &format!("source.delta.filters.{k}"), vars, red)?,
            );
        }
        Ok(Rendered {
            path,
            version,
            timestamp,
            filters,
        })
    }

    /// ` at version 3`, ` as of <time>` or nothing, for messages.
    fn what(&self) -> String {
        match (self.version, self.timestamp) {
            (Some(v), _) => format!(" at version {v}"),
            (_, Some(t)) => format!(" as of {}", t.to_rfc3339()),
            _ => String::new(),
        }
    }
}

/// The table's schema as scorch reads it.
struct Columns {
    /// Every column, in the table's order.
    names: Vec<String>,
    types: HashMap<String, DataType>,
    partition: Vec<String>,
}

/// Resolves a Delta source for the run: reads the log, selects the files.
pub fn resolve(
    spec: &DeltaSource,
    ctx: &Context<'_>,
    vars: &TemplateVars,
    red: &mut Redactor,
) -> Result<Resolved> {
    let r = Rendered::of(spec, vars, red)?;
    let shown = red.redact(&r.path);
    let (store, url) = if crate::storage::is_url(&r.path) {
        let (store, _) = crate::storage::open(&r.path, ctx.storage)
            .map_err(|e| e.redacted(|m| red.redact(m)))?;
        (Some(store), r.path.trim_end_matches('/').to_string())
    } else {
        let dir = ctx.root.join(&r.path);
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
    let rt = crate::storage::runtime()?;
    let table = load(&place, &r, &shown, &rt)?;
    let read_version = table.version().unwrap_or(0);
    let columns = columns_of(&table, &r, &shown)?;
    let (groups, live, skipped) = live_files(&table, &r, &columns, &shown, &rt)?;
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
        let paths = files.iter().map(|(p, _, _)| PlRefPath::new(file_url(p)));
        frames.push(scan_group(paths.collect(), key, &columns, cloud.clone())?);
    }
    let mut lf = if frames.is_empty() {
        let schema: Schema = columns
            .names
            .iter()
            .map(|c| Field::new(c.as_str().into(), columns.types[c].clone()))
            .collect();
        DataFrame::empty_with_schema(&schema).lazy()
    } else if frames.len() == 1 {
        frames.pop().expect("one")
    } else {
        concat(frames, UnionArgs::default())?
    };
    // Filters on other columns filter rows (compared as text, like the partitions').
    for (k, v) in &r.filters {
        if !columns.partition.contains(k) {
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

/// Loads the snapshot `r` selects; refuses a timestamp before the first version
/// and tables whose files are not plain Parquet.
fn load(
    place: &Place<'_>,
    r: &Rendered,
    shown: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<deltalake_core::DeltaTable> {
    let mut builder = crate::storage::delta::builder(place)?;
    if let Some(v) = r.version {
        builder = builder.with_version(v);
    }
    if let Some(t) = r.timestamp {
        builder = builder.with_timestamp(t);
    }
    let what = r.what();
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
    if let Some(t) = r.timestamp
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
    check_readable(snapshot.protocol(), shown)?;
    Ok(table)
}

/// The snapshot's columns and their Polars types; every filter names one.
fn columns_of(table: &deltalake_core::DeltaTable, r: &Rendered, shown: &str) -> Result<Columns> {
    let snapshot = table
        .snapshot()
        .map_err(|e| Error::DataContract(format!("source.delta {shown}: {e}")))?;
    let schema = snapshot.schema();
    let partition: Vec<String> = snapshot.metadata().partition_columns().to_vec();
    let mut types: HashMap<String, DataType> = HashMap::new();
    let mut names = Vec::new();
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
        names.push(f.name().to_string());
    }
    for k in r.filters.keys() {
        if !types.contains_key(k) {
            return Err(Error::usage(format!(
                "source.delta.filters.{k}: the Delta table {shown} has no column `{k}` (its \
                 columns: {})",
                names.join(", ")
            )));
        }
    }
    Ok(Columns {
        names,
        types,
        partition,
    })
}

/// Live files grouped by their partition values.
type Groups = BTreeMap<Vec<Option<String>>, Vec<LiveFile>>;

/// The live files of the partitions the filters select, grouped by partition
/// values; with the count of live files and of those pruned.
fn live_files(
    table: &deltalake_core::DeltaTable,
    r: &Rendered,
    columns: &Columns,
    shown: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<(Groups, usize, usize)> {
    let mut groups = Groups::new();
    let (mut live, mut skipped) = (0usize, 0usize);
    rt.block_on(async {
        let mut views = table.get_active_add_actions_by_partitions(&[]);
        while let Some(v) = views.next().await {
            let v = v.map_err(|e| Error::DataContract(format!("source.delta {shown}: {e}")))?;
            live += 1;
            let values = v.partition_values_map();
            let keep = r.filters.iter().all(|(k, want)| {
                !columns.partition.contains(k)
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
            let key: Vec<Option<String>> = columns
                .partition
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
    Ok((groups, live, skipped))
}

/// A scan of one partition's files: its partition values as columns, the
/// table's columns in its order whatever each file holds.
fn scan_group(
    paths: Vec<PlRefPath>,
    key: &[Option<String>],
    columns: &Columns,
    cloud: Option<polars::io::cloud::CloudOptions>,
) -> Result<LazyFrame> {
    let args = ScanArgsParquet {
        cloud_options: cloud,
        hive_options: HiveOptions {
            enabled: Some(false),
            ..Default::default()
        },
        glob: false,
        allow_missing_columns: true,
        ..Default::default()
    };
    let lf = LazyFrame::scan_parquet_files(paths.into_iter().collect(), args)?;
    let parts: Vec<Expr> = columns
        .partition
        .iter()
        .zip(key)
        .map(|(c, v)| {
            let t = columns.types[c].clone();
            match v {
                Some(v) => lit(v.clone()).cast(t).alias(c.as_str()),
                None => lit(NULL).cast(t).alias(c.as_str()),
            }
        })
        .collect();
    Ok(lf.with_columns(parts).select(
        columns
            .names
            .iter()
            .map(|c| col(c.as_str()))
            .collect::<Vec<_>>(),
    ))
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
