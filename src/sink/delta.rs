//! Delta Lake output tables (`output.format: delta`): a run's Parquet files for
//! its date, committed as one Delta transaction through delta-rs.
//!
//! Layout of a Delta table scorch writes:
//! ```text
//! <table>/_delta_log/00000000000000000000.json   the commits (the table's truth)
//! <table>/ds=2026-11-28/part-<run id>-00000.parquet   data; `ds` is the partition column
//! <table>/_runs/ _metrics/ _quarantine/ _locks/    scorch's own records
//! ```
//! Delta readers read only the files the log lists, and VACUUM skips `_` folders,
//! so scorch's records beside the data are invisible to them.
//!
//! **One commit per run.** The commit removes the date's live files and adds the
//! new ones (a partition overwrite). It carries the application transaction
//! `scorch:<job>:ds=<date>` (its version counts the date's commits), and its
//! commitInfo carries the run id, the job, the model and the preprocessing hash.
//! Files a commit removes stay on storage, so time travel to an earlier version
//! reads them, until a Delta VACUUM deletes them.
//!
//! **Concurrency and fencing.** A commit is the PUT of `_delta_log/<version>.json`
//! that must not exist yet: `If-None-Match: *` on S3, GCS and Azure (object_store's
//! `PutMode::Create`, delta-rs's default log store), a create-exclusive link on local
//! disk. No lock service (DynamoDB) is needed. The fencing token a run reads under
//! its lock is its date's live files and application-transaction version. When another
//! commit wins the version, the run reads the log again: if that commit left its
//! date alone (another date's run), it commits on top; if it changed its date, the
//! run publishes nothing and exits 6. A run killed before its commit leaves the
//! table at the version it was.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{
    Action, Add, DataType, Protocol, Remove, StructField, StructType, Transaction, new_metadata,
};
use deltalake_core::logstore::LogStoreRef;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError};
use futures_util::StreamExt;
use polars::prelude::*;

use super::{PARTITION_COLUMN, Table};
use crate::error::{Error, Result};

/// How often a commit re-reads the log after losing a version race to another
/// date's commit, before it gives up (exit 1; nothing is published).
const MAX_COMMIT_ATTEMPTS: usize = 100;

/// How long a commit on an object store waits before reading its log entry back
/// (see [`DeltaLog::commit_is_ours`]).
const READ_BACK_SETTLE_MS: u64 = 50;

/// The Delta protocol scorch writes: reader 1, writer 2 (no table features).
const READER_VERSION: i32 = 1;
const WRITER_VERSION: i32 = 2;

/// A Delta table: its log store and where it is.
#[derive(Clone)]
pub struct DeltaLog {
    log_store: LogStoreRef,
    /// The table's location (may hold secrets: redact before showing).
    url: String,
}

/// What a date's partition of a Delta table looked like when a run read it
/// under its lock: the fencing token of its commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The table version read; `None`: there was no table yet.
    pub version: Option<u64>,
    /// The live data files of the date (paths relative to the table).
    pub files: BTreeSet<String>,
    /// The date's application-transaction version (its commits so far, minus one).
    pub txn: Option<i64>,
    /// Rows of the live files, from their statistics (`None`: a file has none).
    pub rows: Option<u64>,
}

/// One commit of a date.
pub struct Commit<'a> {
    /// The date (`2026-11-28`).
    pub ds: &'a str,
    /// The application-transaction id (`scorch:<job>:ds=<date>`).
    pub app_id: String,
    /// The new data files.
    pub adds: Vec<Add>,
    /// The table's schema: the data files' columns, then `ds`.
    pub schema: &'a StructType,
    /// Recorded in the commit's `commitInfo` (run id, job, model, preprocessing).
    pub info: serde_json::Map<String, serde_json::Value>,
}

/// The application-transaction id of a job's date.
pub fn app_id(job: &str, ds: &str) -> String {
    format!("scorch:{job}:{PARTITION_COLUMN}={ds}")
}

fn delta_error(what: &str, url: &str, e: DeltaTableError) -> Error {
    Error::Internal(format!("{what} the Delta table {url}: {e}"))
}

impl DeltaLog {
    /// The Delta table at `table` (which need not exist yet).
    pub fn open(table: &Table) -> Result<Self> {
        let log_store = match table {
            Table::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
                crate::storage::delta::log_store(&crate::storage::delta::Place::Local(dir))
            }
            Table::Remote { url, store, .. } => {
                crate::storage::delta::log_store(&crate::storage::delta::Place::Remote(url, store))
            }
        }?;
        Ok(DeltaLog {
            log_store,
            url: table.location(),
        })
    }

    /// The table at its latest version (`None`: no table there yet).
    async fn load(&self) -> Result<Option<DeltaTable>> {
        let mut t = DeltaTable::new(self.log_store.clone());
        match t.load().await {
            Ok(()) => Ok(Some(t)),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta_error("reading", &self.url, e)),
        }
    }

    /// The date's partition now (the fencing token of a run that takes it under its lock).
    pub fn partition(&self, ds: &str, app_id: &str) -> Result<PartitionState> {
        crate::storage::runtime()?.block_on(async {
            let table = self.load().await?;
            self.partition_of(table.as_ref(), ds, app_id).await
        })
    }

    async fn partition_of(
        &self,
        table: Option<&DeltaTable>,
        ds: &str,
        app_id: &str,
    ) -> Result<PartitionState> {
        let Some(table) = table else {
            return Ok(PartitionState {
                version: None,
                files: BTreeSet::new(),
                txn: None,
                rows: None,
            });
        };
        let err = |e: DeltaTableError| delta_error("reading", &self.url, e);
        check_protocol(table, &self.url)?;
        let mut files = BTreeSet::new();
        let mut rows = Some(0u64);
        let mut views = table.get_active_add_actions_by_partitions(&[]);
        while let Some(v) = views.next().await {
            let v = v.map_err(err)?;
            let values = v.partition_values_map();
            if values.get(PARTITION_COLUMN).and_then(|x| x.as_deref()) == Some(ds) {
                files.insert(v.path().to_string());
                rows = match (rows, v.num_records()) {
                    (Some(r), Some(n)) => Some(r + n as u64),
                    _ => None,
                };
            }
        }
        drop(views);
        let state = table.snapshot().map_err(err)?;
        let txn = state
            .transaction_version(self.log_store.as_ref(), app_id)
            .await
            .map_err(err)?;
        Ok(PartitionState {
            version: table.version(),
            rows: if files.is_empty() { None } else { rows },
            files,
            txn,
        })
    }

    /// Commits `c`: removes the date's live files, adds the new ones. `token` is
    /// the partition the run read under its lock; if another commit changed the
    /// date since, nothing is committed and the run exits 6. Returns the version.
    pub fn commit(&self, token: &PartitionState, c: Commit<'_>) -> Result<u64> {
        crate::storage::runtime()?.block_on(self.commit_async(token, c))
    }

    async fn commit_async(&self, token: &PartitionState, c: Commit<'_>) -> Result<u64> {
        let url = &self.url;
        let err = |e: DeltaTableError| delta_error("committing to", url, e);
        for _attempt in 0..MAX_COMMIT_ATTEMPTS {
            let table = self.load().await?;
            let now = self.partition_of(table.as_ref(), c.ds, &c.app_id).await?;
            if now.files != token.files || now.txn != token.txn {
                return Err(Error::Locked(format!(
                    "another run committed {PARTITION_COLUMN}={} to the Delta table {url} after \
                     this one took its lock (its lock was taken over); nothing of this run was \
                     committed",
                    c.ds
                )));
            }
            let mut actions = Vec::new();
            match &table {
                None => {
                    let protocol: Protocol = serde_json::from_value(serde_json::json!({
                        "minReaderVersion": READER_VERSION,
                        "minWriterVersion": WRITER_VERSION,
                    }))
                    .map_err(|e| Error::Internal(format!("Delta protocol action: {e}")))?;
                    let metadata = new_metadata(
                        c.schema,
                        [PARTITION_COLUMN],
                        std::iter::empty::<(String, String)>(),
                    )
                    .map_err(|e| Error::Internal(format!("Delta metadata action: {e}")))?;
                    actions.push(Action::Protocol(protocol));
                    actions.push(Action::Metadata(metadata));
                }
                Some(t) => check_schema(t, c.schema, url)?,
            }
            let deleted = chrono::Utc::now().timestamp_millis();
            for path in &now.files {
                actions.push(Action::Remove(Remove {
                    path: path.clone(),
                    data_change: true,
                    deletion_timestamp: Some(deleted),
                    extended_file_metadata: Some(false),
                    partition_values: Some(HashMap::from([(
                        PARTITION_COLUMN.to_string(),
                        Some(c.ds.to_string()),
                    )])),
                    size: None,
                    tags: None,
                    deletion_vector: None,
                    base_row_id: None,
                    default_row_commit_version: None,
                }));
            }
            actions.extend(c.adds.iter().cloned().map(Action::Add));
            let txn = Transaction::new_with_last_update(
                &c.app_id,
                now.txn.map_or(0, |v| v + 1),
                Some(deleted),
            );
            let props = CommitProperties::default()
                .with_application_transaction(txn)
                .with_metadata(c.info.clone())
                .with_max_retries(0)
                .with_create_checkpoint(true);
            let op = DeltaOperation::Write {
                mode: SaveMode::Overwrite,
                partition_by: Some(vec![PARTITION_COLUMN.to_string()]),
                predicate: Some(format!("{PARTITION_COLUMN} = '{}'", c.ds)),
            };
            let snapshot = match &table {
                Some(t) => Some(t.snapshot().map_err(err)?),
                None => None,
            };
            let result = CommitBuilder::from(props)
                .with_actions(actions)
                .build(
                    snapshot.map(|s| s as &dyn deltalake_core::kernel::transaction::TableReference),
                    self.log_store.clone(),
                    op,
                )
                .await;
            match result {
                Ok(done) => {
                    let v = done.version();
                    if crate::storage::is_url(url) {
                        // Let a racing writer that passed the same existence check
                        // finish its write before the entry is read back.
                        tokio::time::sleep(std::time::Duration::from_millis(READ_BACK_SETTLE_MS))
                            .await;
                    }
                    if self.commit_is_ours(v, &c.info).await {
                        return Ok(v);
                    }
                    // An object store whose conditional PUT is not atomic (it
                    // checks, then writes) let another commit overwrite this one:
                    // commit again on top of what is there.
                    tracing::warn!(
                        version = v,
                        "the Delta log's version {v} holds another run's commit; this \
                         run's was overwritten (the store's conditional PUT is not \
                         atomic); committing again"
                    );
                    continue;
                }
                // Another commit took the version: read the log again.
                Err(DeltaTableError::Transaction {
                    source: TransactionError::MaxCommitAttempts(_),
                })
                | Err(DeltaTableError::VersionAlreadyExists(_)) => continue,
                Err(e) => return Err(err(e)),
            }
        }
        Err(Error::Internal(format!(
            "committing to the Delta table {url}: other commits took every version for \
             {MAX_COMMIT_ATTEMPTS} attempts; nothing of this run was committed, run it again"
        )))
    }

    /// Whether the log's `version` holds this run's commit (its `commitInfo` carries
    /// this run's `scorch.run_id`). Reading it back catches a store that let another
    /// writer replace the file after a conditional PUT (s3s-fs checks, then writes).
    /// When the entry cannot be read, the commit is taken as ours.
    async fn commit_is_ours(
        &self,
        version: u64,
        info: &serde_json::Map<String, serde_json::Value>,
    ) -> bool {
        let Some(want) = info.get("scorch.run_id") else {
            return true;
        };
        let Ok(Some(bytes)) = self.log_store.read_commit_entry(version as _).await else {
            return true;
        };
        let text = String::from_utf8_lossy(&bytes);
        let found = text.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v.get("commitInfo")?.get("scorch.run_id").cloned()
        });
        found.as_ref().is_none_or(|f| f == want)
    }

    /// Rows of the date's live files (`None`: no table, no files, or a file without
    /// statistics).
    pub fn published_rows(&self, ds: &str) -> Result<Option<u64>> {
        Ok(self.partition(ds, "")?.rows)
    }

    /// The run id of the commit that wrote the date's live files (from their names,
    /// `part-<run id>-NNNNN.parquet`), if scorch wrote them.
    pub fn partition_run_id(&self, ds: &str) -> Result<Option<String>> {
        let p = self.partition(ds, "")?;
        Ok(p.files.iter().find_map(|f| run_id_of(f)))
    }
}

/// The run id in a data file name scorch wrote.
fn run_id_of(path: &str) -> Option<String> {
    let name = path.rsplit('/').next()?;
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (id, index) = rest.rsplit_once('-')?;
    (index.len() == 5 && index.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
}

/// Refuses tables whose protocol asks for features scorch does not write
/// (deletion vectors, column mapping, …): such a table was not made by scorch.
fn check_protocol(table: &DeltaTable, url: &str) -> Result<()> {
    let state = table
        .snapshot()
        .map_err(|e| delta_error("reading", url, e))?;
    let p = state.protocol();
    if p.min_reader_version() > READER_VERSION || p.min_writer_version() > WRITER_VERSION {
        return Err(Error::usage(format!(
            "the Delta table {url} needs protocol reader {} / writer {}, and scorch writes tables \
             of protocol {READER_VERSION} / {WRITER_VERSION} (no table features such as deletion \
             vectors or column mapping); point `output.path` at a table scorch created, or at a \
             new path",
            p.min_reader_version(),
            p.min_writer_version()
        )));
    }
    Ok(())
}

/// Refuses to commit files whose columns differ from the table's.
fn check_schema(table: &DeltaTable, want: &StructType, url: &str) -> Result<()> {
    let state = table
        .snapshot()
        .map_err(|e| delta_error("reading", url, e))?;
    let have = state.schema();
    let have_cols: Vec<(String, String)> = have
        .fields()
        .map(|f| (f.name().to_string(), f.data_type().to_string()))
        .collect();
    let want_cols: Vec<(String, String)> = want
        .fields()
        .map(|f| (f.name().to_string(), f.data_type().to_string()))
        .collect();
    let parts = state.metadata().partition_columns().to_vec();
    if have_cols != want_cols || parts != [PARTITION_COLUMN.to_string()] {
        let show = |c: &[(String, String)]| {
            c.iter()
                .map(|(n, t)| format!("{n} {t}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Error::usage(format!(
            "the Delta table {url} has columns ({}) partitioned by ({}), and this run writes ({}) \
             partitioned by ({PARTITION_COLUMN}); scorch does not change a table's schema. Write \
             to a new `output.path`, or migrate the table first",
            show(&have_cols),
            parts.join(", "),
            show(&want_cols)
        )));
    }
    Ok(())
}

/// The Delta schema of a table whose data files have the columns `schema`: those
/// columns, then the partition column `ds` (a date). Columns Delta has no type for
/// are a configuration error naming the column (exit 2).
pub fn table_schema(schema: &Schema) -> std::result::Result<StructType, String> {
    let mut fields = Vec::new();
    for (name, dtype) in schema.iter() {
        let t = delta_type(dtype).ok_or_else(|| {
            format!(
                "output column `{name}` is {dtype}, which a Delta table has no type for; cast it \
                 in the source (e.g. to Int64, Float64, String or a UTC Datetime) or write \
                 `format: parquet`"
            )
        })?;
        fields.push(StructField::new(name.as_str(), t, true));
    }
    fields.push(StructField::new(PARTITION_COLUMN, DataType::DATE, true));
    StructType::try_new(fields).map_err(|e| format!("the output's Delta schema: {e}"))
}

fn delta_type(dtype: &polars::prelude::DataType) -> Option<DataType> {
    use polars::prelude::DataType as P;
    Some(match dtype {
        P::Boolean => DataType::BOOLEAN,
        P::Int8 => DataType::BYTE,
        P::Int16 => DataType::SHORT,
        P::Int32 => DataType::INTEGER,
        P::Int64 => DataType::LONG,
        P::Float32 => DataType::FLOAT,
        P::Float64 => DataType::DOUBLE,
        P::String => DataType::STRING,
        P::Binary => DataType::BINARY,
        P::Date => DataType::DATE,
        // Delta's `timestamp` is microseconds since the epoch, adjusted to UTC.
        P::Datetime(TimeUnit::Microseconds, Some(tz)) if tz.as_str() == "UTC" => {
            DataType::TIMESTAMP
        }
        _ => return None,
    })
}

/// The add action of data file `file` (staged locally at `local`) in the date's
/// partition, with the statistics Delta readers skip files by: rows, nulls, and
/// the minimum and maximum of integer and date columns.
pub fn add_action(local: &Path, rel_path: &str, ds: &str, size: u64) -> Result<Add> {
    let stats = file_stats(local)?;
    Ok(Add {
        path: rel_path.to_string(),
        partition_values: HashMap::from([(PARTITION_COLUMN.to_string(), Some(ds.to_string()))]),
        size: size as i64,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(stats),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    })
}

fn file_stats(local: &Path) -> Result<String> {
    let fail = |e: PolarsError| {
        Error::Internal(format!(
            "reading the statistics of {}: {e}",
            local.display()
        ))
    };
    let lf = LazyFrame::scan_parquet(
        PlRefPath::new(local.display().to_string()),
        ScanArgsParquet {
            // The staging folder's name looks like a hive folder (`ds=…`): the file's
            // own columns only.
            hive_options: HiveOptions {
                enabled: Some(false),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .map_err(fail)?;
    let schema = lf.clone().collect_schema().map_err(fail)?;
    let ranged: Vec<String> = schema
        .iter()
        .filter(|(_, t)| t.is_integer() || matches!(t, polars::prelude::DataType::Date))
        .map(|(n, _)| n.to_string())
        .collect();
    let mut exprs = vec![len().alias("__rows")];
    for (name, _) in schema.iter() {
        exprs.push(col(name.clone()).null_count().alias(format!("n:{name}")));
    }
    for name in &ranged {
        exprs.push(col(name.as_str()).min().alias(format!("lo:{name}")));
        exprs.push(col(name.as_str()).max().alias(format!("hi:{name}")));
    }
    let df = lf.select(exprs).collect().map_err(fail)?;
    let value = |name: &str| -> serde_json::Value {
        let Ok(c) = df.column(name) else {
            return serde_json::Value::Null;
        };
        match c.get(0) {
            Ok(AnyValue::Date(d)) => serde_json::Value::String(
                (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")
                    + chrono::Duration::days(d as i64))
                .format("%Y-%m-%d")
                .to_string(),
            ),
            Ok(v) => v
                .extract::<i64>()
                .map(serde_json::Value::from)
                .unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    };
    let mut nulls = serde_json::Map::new();
    for (name, _) in schema.iter() {
        nulls.insert(name.to_string(), value(&format!("n:{name}")));
    }
    let (mut lo, mut hi) = (serde_json::Map::new(), serde_json::Map::new());
    for name in &ranged {
        let (a, b) = (value(&format!("lo:{name}")), value(&format!("hi:{name}")));
        // An all-null column has no range.
        if !a.is_null() && !b.is_null() {
            lo.insert(name.clone(), a);
            hi.insert(name.clone(), b);
        }
    }
    let stats = serde_json::json!({
        "numRecords": value("__rows"),
        "minValues": lo,
        "maxValues": hi,
        "nullCount": nulls,
    });
    Ok(stats.to_string())
}

/// Data files of a staged Delta partition, in name order (not `_` files).
pub fn staged_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| !n.to_string_lossy().starts_with('_'))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The commit's `commitInfo` entries, under `scorch.` names.
pub fn commit_info(
    entries: BTreeMap<&str, serde_json::Value>,
) -> serde_json::Map<String, serde_json::Value> {
    entries
        .into_iter()
        .map(|(k, v)| (format!("scorch.{k}"), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stages one data file of `rows` ids for `ds` and returns its add action.
    fn staged_add(dir: &Path, ds: &str, run: &str, rows: i64) -> Add {
        let mut df = df!("id" => (0..rows).collect::<Vec<i64>>()).unwrap();
        let name = format!("part-{run}-00000.parquet");
        let f = dir.join(&name);
        ParquetWriter::new(std::fs::File::create(&f).unwrap())
            .finish(&mut df)
            .unwrap();
        let size = std::fs::metadata(&f).unwrap().len();
        add_action(&f, &format!("ds={ds}/{name}"), ds, size).unwrap()
    }

    #[test]
    fn a_commit_fences_its_own_date_and_rebases_over_other_dates() {
        let tmp = tempfile::tempdir().unwrap();
        let table = Table::Local(tmp.path().join("t"));
        let log = DeltaLog::open(&table).unwrap();
        let schema = table_schema(&Schema::from_iter([Field::new(
            "id".into(),
            polars::prelude::DataType::Int64,
        )]))
        .unwrap();
        let commit = |ds: &'static str, run: &str, rows: i64, token: &PartitionState| {
            let add = staged_add(tmp.path(), ds, run, rows);
            log.commit(
                token,
                Commit {
                    ds,
                    app_id: app_id("j", ds),
                    adds: vec![add],
                    schema: &schema,
                    info: Default::default(),
                },
            )
        };
        let (a, b) = ("2026-01-01", "2026-01-02");
        let token_a = log.partition(a, &app_id("j", a)).unwrap();
        let token_b = log.partition(b, &app_id("j", b)).unwrap();
        assert_eq!(token_a.version, None);
        // Date a commits version 0; date b, whose token predates it, rebases on it.
        assert_eq!(commit(a, "r1", 3, &token_a).unwrap(), 0);
        assert_eq!(commit(b, "r2", 5, &token_b).unwrap(), 1);
        let now_a = log.partition(a, &app_id("j", a)).unwrap();
        assert_eq!(now_a.rows, Some(3));
        assert_eq!(now_a.txn, Some(0));
        assert_eq!(log.published_rows(b).unwrap(), Some(5));
        assert_eq!(log.partition_run_id(b).unwrap().as_deref(), Some("r2"));
        // A writer holding date a's old token (its lock was taken over, and the
        // date committed since) commits nothing: exit 6.
        let e = commit(a, "r3", 7, &token_a).unwrap_err();
        assert_eq!(e.exit_code().code(), 6, "{e}");
        assert_eq!(log.partition(a, &app_id("j", a)).unwrap(), now_a);
        // With the current token it replaces the date's file.
        assert_eq!(commit(a, "r4", 7, &now_a).unwrap(), 2);
        let after = log.partition(a, &app_id("j", a)).unwrap();
        assert_eq!(after.rows, Some(7));
        assert_eq!(after.txn, Some(1));
        assert_eq!(after.files.len(), 1);
        // A commit is read back by its run id: an overwritten one is told apart.
        let ours = commit_info([("run_id", serde_json::Value::from("r4"))].into());
        let theirs = commit_info([("run_id", serde_json::Value::from("r9"))].into());
        let info_v = {
            let add = staged_add(tmp.path(), a, "r6", 2);
            log.commit(
                &after,
                Commit {
                    ds: a,
                    app_id: app_id("j", a),
                    adds: vec![add],
                    schema: &schema,
                    info: ours.clone(),
                },
            )
            .unwrap()
        };
        let rt = crate::storage::runtime().unwrap();
        assert!(rt.block_on(log.commit_is_ours(info_v, &ours)));
        assert!(!rt.block_on(log.commit_is_ours(info_v, &theirs)));
        // Another schema is refused (exit 2), naming both.
        let other = table_schema(&Schema::from_iter([Field::new(
            "key".into(),
            polars::prelude::DataType::String,
        )]))
        .unwrap();
        let add = staged_add(tmp.path(), b, "r5", 1);
        let token = log.partition(b, &app_id("j", b)).unwrap();
        let e = log
            .commit(
                &token,
                Commit {
                    ds: b,
                    app_id: app_id("j", b),
                    adds: vec![add],
                    schema: &other,
                    info: Default::default(),
                },
            )
            .unwrap_err();
        assert_eq!(e.exit_code().code(), 2, "{e}");
        assert!(
            e.to_string().contains("id long") && e.to_string().contains("key string"),
            "{e}"
        );
    }

    #[test]
    fn run_ids_are_read_back_from_the_names_scorch_gives_files() {
        assert_eq!(
            run_id_of("ds=2026-01-01/part-20261204T101010Z-abcd1234-00003.parquet").as_deref(),
            Some("20261204T101010Z-abcd1234")
        );
        assert_eq!(run_id_of("ds=2026-01-01/part-00000.parquet"), None);
        assert_eq!(run_id_of("ds=2026-01-01/other.parquet"), None);
        assert_eq!(run_id_of("part-x-1.parquet"), None);
    }

    #[test]
    fn delta_types_cover_the_output_columns_and_refuse_the_rest() {
        use polars::prelude::DataType as P;
        let schema = Schema::from_iter([
            Field::new("id".into(), P::Int64),
            Field::new("score".into(), P::Float32),
            Field::new("model_version".into(), P::String),
            Field::new(
                "scored_at".into(),
                P::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
            ),
        ]);
        let t = table_schema(&schema).unwrap();
        let names: Vec<_> = t.fields().map(|f| f.name().to_string()).collect();
        assert_eq!(names, ["id", "score", "model_version", "scored_at", "ds"]);
        for bad in [
            P::UInt32,
            P::Datetime(TimeUnit::Nanoseconds, None),
            P::Datetime(TimeUnit::Microseconds, None),
        ] {
            let s = Schema::from_iter([Field::new("x".into(), bad.clone())]);
            let e = table_schema(&s).unwrap_err();
            assert!(e.contains("`x`"), "{bad}: {e}");
        }
    }
}
