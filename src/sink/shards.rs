//! The shards of a partition in a table — `<table>/_shards/<partition>/<shard>/` —
//! and their commit into the partition, on local disk and on object stores.

use object_store::ObjectStoreExt;

use super::{PARTITION_MANIFEST, SHARDS_DIR, StagedPartition, Table, write_file_atomic};
use crate::error::{Error, Result};

/// One data file of a shard and its name in the committed partition.
pub struct Part {
    /// The shard's folder name (`shard-00000-of-00004`).
    pub shard: String,
    /// The file's name in the shard.
    pub file: String,
    /// Its name in the partition.
    pub name: String,
}

/// The object of file `file` of shard `shard` of `partition` under a table's `prefix`.
fn shard_object(
    prefix: &object_store::path::Path,
    partition: &str,
    shard: &str,
    file: &str,
) -> object_store::path::Path {
    prefix
        .clone()
        .join(SHARDS_DIR)
        .join(partition)
        .join(shard)
        .join(file)
}

impl Table {
    /// Where shard `shard` of `partition` lives, for messages.
    pub fn shard_location(&self, partition: &str, shard: &str) -> String {
        match self {
            Table::Local(dir) => dir
                .join(SHARDS_DIR)
                .join(partition)
                .join(shard)
                .display()
                .to_string(),
            Table::Remote { url, .. } => format!("{url}/{SHARDS_DIR}/{partition}/{shard}"),
        }
    }

    /// Where `partition` is visible once published, for manifests.
    pub fn partition_location(&self, partition: &str) -> String {
        match self {
            Table::Local(dir) => dir.join(partition).display().to_string(),
            Table::Remote { url, .. } => format!("{url}/{partition}"),
        }
    }

    /// The name of data file `index` of a partition committed as run `run_id` (on
    /// object stores names carry the run id, as a run's do).
    pub fn commit_file_name(&self, run_id: &str, index: usize) -> String {
        match self {
            Table::Local(_) => format!("part-{index:05}.parquet"),
            Table::Remote { .. } => format!("part-{run_id}-{index:05}.parquet"),
        }
    }

    /// File `file` of shard `shard` of `partition`; `None` when it does not exist.
    pub fn read_shard_file(
        &self,
        partition: &str,
        shard: &str,
        file: &str,
    ) -> Result<Option<Vec<u8>>> {
        match self {
            Table::Local(dir) => {
                let p = dir.join(SHARDS_DIR).join(partition).join(shard).join(file);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io("read", &p, e)),
                }
            }
            Table::Remote { url, store, prefix } => {
                let path = shard_object(prefix, partition, shard, file);
                let rt = crate::storage::runtime()?;
                match rt.block_on(async { store.store.get(&path).await?.bytes().await }) {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(crate::storage::runtime_error(
                        &format!("reading {url}/{SHARDS_DIR}/{partition}/{shard}/{file}"),
                        e,
                    )),
                }
            }
        }
    }

    /// File `file` of shard `shard` of `partition` as a local file: on local tables
    /// where it is, on object stores streamed into `tmp` (memory stays bounded
    /// whatever its size).
    pub fn shard_file_local(
        &self,
        partition: &str,
        shard: &str,
        file: &str,
        tmp: &std::path::Path,
    ) -> Result<std::path::PathBuf> {
        match self {
            Table::Local(dir) => Ok(dir.join(SHARDS_DIR).join(partition).join(shard).join(file)),
            Table::Remote { url, store, prefix } => {
                use futures_util::StreamExt;
                use std::io::Write;
                let path = shard_object(prefix, partition, shard, file);
                let dest = tmp.join(format!("{shard}-{file}"));
                let what = format!("reading {url}/{SHARDS_DIR}/{partition}/{shard}/{file}");
                let mut out = std::io::BufWriter::new(
                    std::fs::File::create(&dest).map_err(|e| Error::io("create", &dest, e))?,
                );
                crate::storage::runtime()?.block_on(async {
                    let got = store
                        .store
                        .get(&path)
                        .await
                        .map_err(|e| crate::storage::runtime_error(&what, e))?;
                    let mut stream = got.into_stream();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| crate::storage::runtime_error(&what, e))?;
                        out.write_all(&chunk)
                            .map_err(|e| Error::io("write", &dest, e))?;
                    }
                    out.flush().map_err(|e| Error::io("write", &dest, e))
                })?;
                Ok(dest)
            }
        }
    }

    /// Publishes `partition` as the shards' `parts` and `manifest`, atomically like
    /// a run: local tables stage hard links (or copies) of the shard files and swap
    /// the folder in; object stores copy the files server-side, then PUT the
    /// manifest (the commit) and delete files of earlier runs. The shards stay whole
    /// until the commit succeeded. Returns the partition's location.
    pub fn commit_shards(
        &self,
        partition: &str,
        run_id: &str,
        parts: &[Part],
        manifest: &[u8],
        replaces: &super::Replaces,
    ) -> Result<String> {
        match self {
            Table::Local(dir) => {
                let staged = StagedPartition::create(dir, partition, run_id)?;
                let shards = dir.join(SHARDS_DIR).join(partition);
                let stage = || -> Result<()> {
                    for p in parts {
                        let src = shards.join(&p.shard).join(&p.file);
                        let dst = staged.dir.join(&p.name);
                        std::fs::hard_link(&src, &dst)
                            .or_else(|_| std::fs::copy(&src, &dst).map(|_| ()))
                            .map_err(|e| Error::io("copy", &src, e))?;
                    }
                    write_file_atomic(&staged.dir.join(PARTITION_MANIFEST), manifest)
                };
                if let Err(e) = stage() {
                    staged.abandon();
                    return Err(e);
                }
                Ok(staged.publish()?.display().to_string())
            }
            Table::Remote { url, store, prefix } => {
                let target = prefix.clone().join(partition);
                let shards = prefix.clone().join(SHARDS_DIR).join(partition);
                let err =
                    |what: String, e: object_store::Error| crate::storage::runtime_error(&what, e);
                let started = chrono::Utc::now();
                crate::storage::runtime()?.block_on(async {
                    let mut copied = Vec::new();
                    let copy_all = async {
                        for p in parts {
                            let src = shards.clone().join(p.shard.as_str()).join(p.file.as_str());
                            let dst = target.clone().join(p.name.as_str());
                            store.store.copy(&src, &dst).await.map_err(|e| {
                                err(
                                    format!(
                                        "copying {url}/{SHARDS_DIR}/{partition}/{}/{}",
                                        p.shard, p.file
                                    ),
                                    e,
                                )
                            })?;
                            copied.push(dst);
                        }
                        super::commit_manifest(
                            store,
                            &target,
                            manifest.to_vec(),
                            &format!("{url}/{partition}"),
                            replaces,
                        )
                        .await
                    };
                    let previous = match copy_all.await {
                        Ok(p) => p,
                        Err(e) => {
                            for p in &copied {
                                let _ = store.store.delete(p).await;
                            }
                            return Err(e);
                        }
                    };
                    super::remove_replaced(store, &target, &copied, &previous, started).await;
                    Ok(format!("{url}/{partition}"))
                })
            }
        }
    }

    /// Removes the shards of `partition` (after their commit).
    pub fn remove_shards(&self, partition: &str) {
        match self {
            Table::Local(dir) => {
                let _ = std::fs::remove_dir_all(dir.join(SHARDS_DIR).join(partition));
            }
            Table::Remote { store, prefix, .. } => {
                use futures_util::StreamExt;
                let shards = prefix.clone().join(SHARDS_DIR).join(partition);
                let Ok(rt) = crate::storage::runtime() else {
                    return;
                };
                rt.block_on(async {
                    let listed: Vec<_> = store.store.list(Some(&shards)).collect().await;
                    for meta in listed.into_iter().flatten() {
                        if let Err(e) = store.store.delete(&meta.location).await {
                            tracing::warn!(object = %meta.location, error = %e, "could not delete a committed shard's file");
                        }
                    }
                });
            }
        }
    }
}
