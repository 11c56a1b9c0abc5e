//! The output table: Parquet (zstd) partitions `<table>/ds=<date>/`, written into a
//! staging folder and published by an atomic rename, so a reader sees the old
//! partition or the new one, never a half-written one.
//!
//! Layout of a table folder:
//! ```text
//! <table>/ds=2026-11-28/part-00000.parquet   the data
//! <table>/ds=2026-11-28/_manifest.json       the manifest of the run that wrote it
//! <table>/_staging/…                         runs in progress (readers skip `_` names)
//! <table>/_runs/<run id>.json                every run's manifest, failed ones too
//! <table>/_metrics/ds=…/<run id>.parquet      the metrics history
//! <table>/_quarantine/ds=…/<run id>.parquet   quarantined rows
//! ```
//! One file per part of a table: this one the data table (staging and publishing,
//! locally and on object stores), `local` the local swap, `parquet` the file
//! writer, [`runlog`] `_runs/`, [`history`] `_metrics/`, [`quarantine`]
//! `_quarantine/`, [`shards`] `_shards/`, [`manifest`] the run record.
//!
//! Publishing swaps the staging folder with the live partition in one
//! `renameat2(RENAME_EXCHANGE)` call where the file system supports it (Linux
//! ext4, xfs, btrfs, tmpfs…), then deletes the old data. Elsewhere it falls back to
//! two renames, and a later run restores a partition left half-swapped by a crash.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::storage::remove_dead_temp_folders;
use crate::storage::write_file_atomic;

pub mod delta;
mod local;
pub mod manifest;
pub mod metrics_store;
mod parquet;
pub mod quarantine;
pub mod runlog;
pub mod shards;

pub use local::StagedPartition;
pub use parquet::{BatchWriter, ParquetOptions, write_parquet};

/// The partition column of every table scorch writes: the folder `ds=<date>`. No
/// data file holds a column of this name (hive layout, as Spark requires).
pub const PARTITION_COLUMN: &str = "ds";

/// The name an input column `ds` (a key, a carried column, a quarantined row's)
/// takes in the files: they sit in `ds=` folders, whose name hive readers make
/// the `ds` column, and a file column of the same name makes the table unreadable
/// to pyarrow, DuckDB and Spark.
pub const INPUT_DS: &str = "input_ds";

/// The name input column `name` is written under (see [`INPUT_DS`]).
pub fn file_column(name: &str) -> &str {
    if name == PARTITION_COLUMN {
        INPUT_DS
    } else {
        name
    }
}

/// Name of the staging folder inside a table.
pub const STAGING_DIR: &str = "_staging";
/// Name of the folder of run manifests inside a table.
pub const RUNS_DIR: &str = "_runs";

/// Where an output table lives: a local folder, or a prefix on an object store.
pub enum Table {
    Local(PathBuf),
    Remote {
        /// The table's URL as configured (rendered; may hold secrets: redact before showing).
        url: String,
        store: crate::storage::Store,
        prefix: object_store::path::Path,
    },
}

/// The fencing token of a writer on an object store: the version of the manifest
/// its commit will replace, read right after it took its lock. The commit PUTs the
/// new manifest conditionally on exactly that version, so a writer whose lock was
/// taken over, and whose partition another run published meanwhile, publishes
/// nothing — even when the takeover came after its last lock check. Local tables
/// are fenced by the lock's `flock` instead (see `crate::run::lock`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replaces {
    /// A local table.
    Local,
    /// No manifest was there: the commit creates it (`If-None-Match: *`).
    Nothing,
    /// The manifest of this ETag / version was there.
    Version {
        e_tag: Option<String>,
        version: Option<String>,
    },
    /// A Delta table: the date's partition as the run read it under its lock.
    Delta(delta::PartitionState),
}

impl Table {
    /// What a commit of `rel` (`ds=…`, or `_shards/ds=…/<shard>`) will replace, now.
    pub fn replaces(&self, rel: &str) -> Result<Replaces> {
        let Table::Remote { url, store, prefix } = self else {
            return Ok(Replaces::Local);
        };
        use object_store::ObjectStoreExt;
        let mut path = prefix.clone();
        for part in rel.split('/') {
            path = path.join(part);
        }
        let path = path.join(PARTITION_MANIFEST);
        match crate::storage::runtime()?.block_on(store.store.head(&path)) {
            Ok(meta) => Ok(Replaces::Version {
                e_tag: meta.e_tag,
                version: meta.version,
            }),
            Err(object_store::Error::NotFound { .. }) => Ok(Replaces::Nothing),
            Err(e) => Err(crate::storage::runtime_error(
                &format!("reading the manifest of {url}/{rel}"),
                e,
            )),
        }
    }
}

/// A partition being written: files go into a local folder first; publishing
/// moves them into place (local) or uploads them and commits (object store).
// One per run: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Staged {
    Local(StagedPartition),
    Remote {
        dir: PathBuf,
        url: String,
        store: crate::storage::Store,
        partition_prefix: object_store::path::Path,
        run_id: String,
        /// The table's URL and prefix, and the partition (for shards).
        table_url: String,
        table_prefix: object_store::path::Path,
        partition: String,
    },
    /// A date of a Delta table: files staged as above (`inner`), then moved or
    /// uploaded into `<table>/ds=<date>/` and committed to the Delta log.
    Delta(DeltaStaged),
}

/// A date of a Delta table being written.
pub struct DeltaStaged {
    /// Where the files are staged, and the table's place.
    pub inner: Box<Staged>,
    pub log: delta::DeltaLog,
    pub run_id: String,
    /// The date (`2026-11-28`).
    pub ds: String,
    /// The commit's application-transaction id.
    pub app_id: String,
    /// The table's Delta schema.
    pub schema: deltalake_core::kernel::StructType,
    /// The commit's `commitInfo` entries.
    pub info: serde_json::Map<String, serde_json::Value>,
    /// The version the commit made, once published.
    pub version: Option<u64>,
}

impl Table {
    /// Opens the table at `path` (a local path relative to `root`, or an object-store URL).
    pub fn open(path: &str, root: &Path, storage: &crate::storage::Settings) -> Result<Self> {
        if crate::storage::is_url(path) {
            let (store, prefix) = crate::storage::open(path, storage)?;
            Ok(Table::Remote {
                url: path.trim_end_matches('/').to_string(),
                store,
                prefix,
            })
        } else {
            Ok(Table::Local(root.join(path)))
        }
    }

    /// The table's location, for messages and manifests.
    pub fn location(&self) -> String {
        match self {
            Table::Local(p) => p.display().to_string(),
            Table::Remote { url, .. } => url.clone(),
        }
    }

    /// The manifest of the published partition (`<partition>/_manifest.json`), if any.
    pub fn partition_manifest(&self, partition: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Table::Local(dir) => {
                let p = dir.join(partition).join(PARTITION_MANIFEST);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("read", &p, e)),
                }
            }
            Table::Remote { url, store, prefix } => {
                use object_store::ObjectStoreExt;
                let path = prefix.clone().join(partition).join(PARTITION_MANIFEST);
                let rt = crate::storage::runtime()?;
                match rt.block_on(async { store.store.get(&path).await?.bytes().await }) {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(crate::storage::runtime_error(
                        &format!("reading {url}/{partition}/{PARTITION_MANIFEST}"),
                        e,
                    )),
                }
            }
        }
    }

    /// The run log: every run's manifest and reports (`_runs/`).
    pub fn run_log(&self) -> runlog::RunLog<'_> {
        runlog::RunLog(self)
    }

    /// The metrics history (`_metrics/`).
    pub fn history(&self) -> metrics_store::MetricsHistory<'_> {
        metrics_store::MetricsHistory(self)
    }

    /// The quarantined rows (`_quarantine/`).
    pub fn quarantine(&self) -> quarantine::Quarantine<'_> {
        quarantine::Quarantine(self)
    }

    /// Starts writing `partition` (e.g. `ds=2026-11-28`).
    pub fn stage(&self, partition: &str, run_id: &str) -> Result<Staged> {
        match self {
            Table::Local(dir) => Ok(Staged::Local(StagedPartition::create(
                dir, partition, run_id,
            )?)),
            Table::Remote { url, store, prefix } => {
                // Local staging of object-store runs: remove what killed runs left.
                remove_dead_remote_staging();
                let dir = std::env::temp_dir()
                    .join(format!("scorch-staging-{run_id}.pid{}", std::process::id()));
                std::fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
                Ok(Staged::Remote {
                    dir,
                    url: format!("{url}/{partition}"),
                    store: store.clone(),
                    partition_prefix: prefix.clone().join(partition),
                    run_id: run_id.to_string(),
                    table_url: url.clone(),
                    table_prefix: prefix.clone(),
                    partition: partition.to_string(),
                })
            }
        }
    }
}

/// Removes `$TMPDIR/scorch-staging-*.pid<PID>` folders of processes that are gone
/// (object-store runs killed before they uploaded).
fn remove_dead_remote_staging() {
    remove_dead_temp_folders("scorch-staging-");
}

/// Folder of a table holding quarantined rows, `<partition>/<run id>.parquet`.
pub const QUARANTINE_DIR: &str = "_quarantine";

/// Folder of a table holding the shards of partitions until `scorch commit`.
pub const SHARDS_DIR: &str = "_shards";

/// Name of the manifest that commits a partition.
pub const PARTITION_MANIFEST: &str = "_manifest.json";

impl Staged {
    /// The local folder the run writes its files into.
    pub fn dir(&self) -> &Path {
        match self {
            Staged::Local(s) => &s.dir,
            Staged::Remote { dir, .. } => dir,
            Staged::Delta(d) => d.inner.dir(),
        }
    }

    /// The name of data file `index`. On object stores names carry the run id, so a
    /// new run never overwrites the files the committed manifest points at.
    pub fn data_file_name(&self, index: usize) -> String {
        match self {
            Staged::Local(_) => format!("part-{index:05}.parquet"),
            Staged::Remote { run_id, .. } => format!("part-{run_id}-{index:05}.parquet"),
            // Delta keeps replaced files for time travel: names never repeat.
            Staged::Delta(d) => format!("part-{}-{index:05}.parquet", d.run_id),
        }
    }

    /// Where the partition will be visible.
    pub fn target(&self) -> String {
        match self {
            Staged::Local(s) => s.target().display().to_string(),
            Staged::Remote { url, .. } => url.clone(),
            Staged::Delta(d) => d.inner.target(),
        }
    }

    /// The Delta version a published Delta partition was committed as.
    pub fn delta_version(&self) -> Option<u64> {
        match self {
            Staged::Delta(d) => d.version,
            _ => None,
        }
    }

    /// Publishes the staged files. Local: an atomic folder swap. Object store: the
    /// data files are uploaded first and `_manifest.json` last — that single PUT is the
    /// commit — then files of earlier runs that the manifest no longer lists are deleted.
    /// On object stores the commit replaces exactly the manifest `replaces` names.
    /// A Delta partition is committed to the table's log instead; its version is returned.
    pub fn publish(self, replaces: &Replaces) -> Result<(String, Option<u64>)> {
        match self {
            Staged::Local(s) => Ok((s.publish()?.display().to_string(), None)),
            Staged::Delta(d) => d.publish(replaces).map(|(at, v)| (at, Some(v))),
            Staged::Remote {
                dir,
                url,
                store,
                partition_prefix,
                ..
            } => {
                let result = upload_and_commit(&dir, &url, &store, &partition_prefix, replaces);
                let _ = std::fs::remove_dir_all(&dir);
                result.map(|_| (url, None))
            }
        }
    }

    /// Publishes the staged files as shard `name` of the partition, in
    /// `<table>/_shards/<partition>/<name>/` (replacing an earlier attempt of that
    /// shard), for `scorch commit` to assemble.
    pub fn publish_shard(self, name: &str, replaces: &Replaces) -> Result<String> {
        match self {
            Staged::Local(s) => {
                let target = s.table.join(SHARDS_DIR).join(&s.partition).join(name);
                Ok(s.publish_at(target)?.display().to_string())
            }
            Staged::Remote {
                dir,
                store,
                table_url,
                table_prefix,
                partition,
                ..
            } => {
                let prefix = table_prefix
                    .join(SHARDS_DIR)
                    .join(partition.as_str())
                    .join(name);
                let at = format!("{table_url}/{SHARDS_DIR}/{partition}/{name}");
                let result = upload_and_commit(&dir, &at, &store, &prefix, replaces);
                let _ = std::fs::remove_dir_all(&dir);
                result.map(|_| at)
            }
            Staged::Delta(d) => {
                d.abandon();
                Err(Error::usage(
                    "a Delta output is written by one run per date, not in shards",
                ))
            }
        }
    }

    /// Drops the staged files (after a failure).
    pub fn abandon(self) {
        match self {
            Staged::Local(s) => s.abandon(),
            Staged::Remote { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Staged::Delta(d) => d.abandon(),
        }
    }
}

impl DeltaStaged {
    fn abandon(self) {
        (*self.inner).abandon()
    }

    /// Moves (local) or uploads (object store) the staged data files into
    /// `<table>/ds=<date>/`, then commits them as one Delta transaction that
    /// replaces the date's files, fenced by `replaces`. A failed commit removes the
    /// files it placed; the table stays at the version it was. Returns where the
    /// partition is and the committed version.
    pub fn publish(mut self, replaces: &Replaces) -> Result<(String, u64)> {
        let Replaces::Delta(token) = replaces else {
            self.abandon();
            return Err(Error::Internal(
                "a Delta partition is published against the partition read under its lock".into(),
            ));
        };
        let partition = format!("{PARTITION_COLUMN}={}", self.ds);
        let files = match delta::staged_files(self.inner.dir()) {
            Ok(f) => f,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        let mut adds = Vec::with_capacity(files.len());
        for f in &files {
            let name = f.file_name().expect("file").to_string_lossy().to_string();
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            match delta::add_action(f, &format!("{partition}/{name}"), &self.ds, size) {
                Ok(a) => adds.push(a),
                Err(e) => {
                    self.abandon();
                    return Err(e);
                }
            }
        }
        let target = self.inner.target();
        // Place the files: nothing lists them until the commit does.
        let placed: Result<Placed> = match &*self.inner {
            Staged::Local(s) => {
                let dest = s.target();
                std::fs::create_dir_all(&dest)
                    .map_err(|e| Error::io("create folder", &dest, e))
                    .and_then(|()| {
                        let mut moved = Vec::new();
                        for f in &files {
                            let to = dest.join(f.file_name().expect("file"));
                            std::fs::rename(f, &to).map_err(|e| Error::io("move", f, e))?;
                            moved.push(to);
                        }
                        crate::storage::sync_dir(&dest);
                        Ok(Placed::Local(moved))
                    })
            }
            Staged::Remote {
                url,
                store,
                partition_prefix,
                ..
            } => crate::storage::runtime().and_then(|rt| {
                rt.block_on(upload_files(&files, url, store, partition_prefix))
                    .map(|p| Placed::Remote(store.clone(), p))
            }),
            Staged::Delta(_) => unreachable!("a Delta partition is staged locally or remotely"),
        };
        let placed = match placed {
            Ok(p) => p,
            Err(e) => {
                self.abandon();
                return Err(e);
            }
        };
        let commit = delta::Commit {
            ds: &self.ds,
            app_id: self.app_id.clone(),
            adds,
            schema: &self.schema,
            info: self.info.clone(),
        };
        let result = self.log.commit(token, commit);
        if result.is_err() {
            placed.remove();
        }
        let version = result?;
        self.version = Some(version);
        // The staging folder is empty now (files moved) or a local copy (uploaded).
        match *self.inner {
            Staged::Local(s) => {
                let _ = std::fs::remove_dir_all(&s.dir);
            }
            other => other.abandon(),
        }
        Ok((target, version))
    }
}

/// Data files placed in a Delta table before its commit (removed if it fails).
enum Placed {
    Local(Vec<PathBuf>),
    Remote(crate::storage::Store, Vec<object_store::path::Path>),
}

impl Placed {
    fn remove(self) {
        match self {
            Placed::Local(files) => {
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
            }
            Placed::Remote(store, paths) => {
                use object_store::ObjectStoreExt;
                if let Ok(rt) = crate::storage::runtime() {
                    rt.block_on(async {
                        for p in &paths {
                            let _ = store.store.delete(p).await;
                        }
                    });
                }
            }
        }
    }
}

/// Part size of multipart uploads.
const UPLOAD_PART: usize = 16 << 20;

fn upload_and_commit(
    dir: &Path,
    url: &str,
    store: &crate::storage::Store,
    prefix: &object_store::path::Path,
    replaces: &Replaces,
) -> Result<()> {
    use object_store::ObjectStoreExt;

    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != PARTITION_MANIFEST))
        .collect();
    files.sort();
    let rt = crate::storage::runtime()?;
    let started = chrono::Utc::now();
    rt.block_on(async {
        let uploaded = upload_files(&files, url, store, prefix).await?;
        let commit = async {
            // The commit: one PUT of the manifest naming exactly these files,
            // conditional on the manifest it replaces.
            let manifest = dir.join(PARTITION_MANIFEST);
            let bytes = std::fs::read(&manifest).map_err(|e| Error::io("read", &manifest, e))?;
            commit_manifest(store, prefix, bytes, url, replaces).await
        };
        let previous = match commit.await {
            Ok(p) => p,
            Err(e) => {
                for p in &uploaded {
                    let _ = store.store.delete(p).await;
                }
                return Err(e);
            }
        };
        remove_replaced(store, prefix, &uploaded, &previous, started).await;
        Ok(())
    })
}

/// Uploads `files` under `prefix` (multipart); returns where they went. On a
/// failure, what was uploaded is deleted again.
async fn upload_files(
    files: &[PathBuf],
    url: &str,
    store: &crate::storage::Store,
    prefix: &object_store::path::Path,
) -> Result<Vec<object_store::path::Path>> {
    use object_store::{ObjectStoreExt, WriteMultipart};
    use std::io::Read;
    let mut uploaded: Vec<object_store::path::Path> = Vec::new();
    let err = |what: &str, e: object_store::Error| {
        crate::storage::runtime_error(&format!("{what} {url}"), e)
    };
    let upload_all = async {
        for f in files {
            let name = f.file_name().expect("file").to_string_lossy().to_string();
            let dest = prefix.clone().join(name.as_str());
            let upload = store
                .store
                .put_multipart(&dest)
                .await
                .map_err(|e| err("uploading to", e))?;
            uploaded.push(dest.clone());
            let mut w = WriteMultipart::new_with_chunk_size(upload, UPLOAD_PART);
            let mut file = std::fs::File::open(f).map_err(|e| Error::io("read", f, e))?;
            let mut buf = vec![0u8; 8 << 20];
            let res: Result<()> = async {
                loop {
                    let n = file.read(&mut buf).map_err(|e| Error::io("read", f, e))?;
                    if n == 0 {
                        break;
                    }
                    w.wait_for_capacity(4)
                        .await
                        .map_err(|e| err("uploading to", e))?;
                    w.write(&buf[..n]);
                }
                Ok(())
            }
            .await;
            match res {
                Ok(()) => {
                    w.finish().await.map_err(|e| err("uploading to", e))?;
                }
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(e);
                }
            }
        }
        Ok(())
    };
    match upload_all.await {
        Ok(()) => Ok(uploaded),
        Err(e) => {
            for p in &uploaded {
                let _ = store.store.delete(p).await;
            }
            Err(e)
        }
    }
}

/// PUTs a partition manifest under `prefix`, conditionally on exactly the version
/// `replaces` names (the writer's fencing token): created if there was none, else
/// replacing that ETag. A manifest published by another run since this writer took
/// its lock makes this one fail with exit 6, publishing nothing. Returns the data
/// files the replaced manifest named.
pub(crate) async fn commit_manifest(
    store: &crate::storage::Store,
    prefix: &object_store::path::Path,
    bytes: Vec<u8>,
    url: &str,
    replaces: &Replaces,
) -> Result<Vec<String>> {
    use object_store::{ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
    let path = prefix.clone().join(PARTITION_MANIFEST);
    let err = |what: &str, e: object_store::Error| {
        crate::storage::runtime_error(&format!("{what} {url}"), e)
    };
    let fenced = || {
        Error::Locked(format!(
            "another run published {url} after this one took its lock (its lock was taken \
             over); nothing of this run was published"
        ))
    };
    let (now, previous) = match store.store.get(&path).await {
        Ok(r) => {
            let now = Replaces::Version {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            let old = r
                .bytes()
                .await
                .map_err(|e| err("reading the manifest of", e))?;
            (now, manifest_files(&old))
        }
        Err(object_store::Error::NotFound { .. }) => (Replaces::Nothing, vec![]),
        Err(e) => return Err(err("reading the manifest of", e)),
    };
    let mode = match (replaces, &now) {
        (Replaces::Nothing, Replaces::Nothing) => PutMode::Create,
        (
            Replaces::Version {
                e_tag: None,
                version: None,
            },
            Replaces::Version { .. },
        ) => PutMode::Overwrite,
        (Replaces::Version { e_tag, version }, Replaces::Version { .. }) if *replaces == now => {
            PutMode::Update(UpdateVersion {
                e_tag: e_tag.clone(),
                version: version.clone(),
            })
        }
        (Replaces::Local, _) => unreachable!("local tables are published by a folder swap"),
        (Replaces::Delta(_), _) => unreachable!("Delta tables are published by a Delta commit"),
        _ => return Err(fenced()),
    };
    let opts = PutOptions {
        mode,
        ..Default::default()
    };
    let payload = object_store::PutPayload::from(bytes);
    match store.store.put_opts(&path, payload.clone(), opts).await {
        Ok(_) => Ok(previous),
        // A store without conditional writes: the lock's check is the only fence.
        Err(object_store::Error::NotImplemented { .. }) => {
            tracing::warn!(
                url,
                "the store has no conditional PUT; committing unconditionally"
            );
            store
                .store
                .put(&path, payload)
                .await
                .map_err(|e| err("committing", e))?;
            Ok(previous)
        }
        Err(object_store::Error::Precondition { .. })
        | Err(object_store::Error::AlreadyExists { .. }) => Err(fenced()),
        Err(e) => Err(err("committing", e)),
    }
}

/// The data file names a published manifest lists: `output.files[].path` (runs) or
/// `output[].path` (commits of shards). None for a manifest that cannot be read.
fn manifest_files(bytes: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct File {
        path: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Output {
        Run { files: Vec<File> },
        Commit(Vec<File>),
    }
    #[derive(serde::Deserialize)]
    struct M {
        output: Option<Output>,
    }
    match serde_json::from_slice::<M>(bytes)
        .ok()
        .and_then(|m| m.output)
    {
        Some(Output::Run { files }) | Some(Output::Commit(files)) => {
            files.into_iter().map(|f| f.path).collect()
        }
        None => vec![],
    }
}

/// After a commit: deletes the data files the replaced manifest named (not in
/// `keep`), and objects no manifest names that are older than this publish (left
/// by killed runs). Objects written while this publish ran are another writer's and
/// are left alone.
pub(crate) async fn remove_replaced(
    store: &crate::storage::Store,
    prefix: &object_store::path::Path,
    keep: &[object_store::path::Path],
    previous: &[String],
    started: chrono::DateTime<chrono::Utc>,
) {
    use futures_util::StreamExt;
    use object_store::ObjectStoreExt;
    let keep: std::collections::BTreeSet<String> = keep
        .iter()
        .map(|p| p.as_ref().to_string())
        .chain(std::iter::once(
            prefix.clone().join(PARTITION_MANIFEST).as_ref().to_string(),
        ))
        .collect();
    let replaced: std::collections::BTreeSet<String> = previous
        .iter()
        .map(|f| prefix.clone().join(f.as_str()).as_ref().to_string())
        .collect();
    let mut listing = store.store.list(Some(prefix));
    let mut stale = Vec::new();
    while let Some(item) = listing.next().await {
        if let Ok(meta) = item
            && !keep.contains(meta.location.as_ref())
            && (replaced.contains(meta.location.as_ref()) || meta.last_modified < started)
        {
            stale.push(meta.location);
        }
    }
    drop(listing);
    for p in stale {
        let _ = store.store.delete(&p).await;
    }
}
