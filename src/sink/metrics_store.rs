//! The metrics history of a table: `<table>/_metrics/ds=<date>/<run id>.parquet`,
//! one file per published run (its rows are made by `crate::reports::metrics_history`).

use polars::prelude::*;

use super::{ParquetOptions, Table, write_parquet};
use crate::error::{Error, Result};

/// The metrics history of a table ([`Table::history`]).
pub struct MetricsHistory<'a>(pub(super) &'a Table);

impl MetricsHistory<'_> {
    /// Appends a run's metrics to the history table:
    /// `<table>/_metrics/<partition>/<run id>.parquet`.
    pub fn append(&self, partition: &str, run_id: &str, df: &mut DataFrame) -> Result<()> {
        let name = format!("{run_id}.parquet");
        let opts = ParquetOptions {
            zstd_level: 3,
            row_group_size: 1 << 20,
            metadata: vec![],
        };
        match self.0 {
            Table::Local(dir) => {
                let folder = dir
                    .join(crate::reports::metrics_history::HISTORY_DIR)
                    .join(partition);
                std::fs::create_dir_all(&folder)
                    .map_err(|e| Error::io("create folder", &folder, e))?;
                let tmp = folder.join(format!(".{name}.tmp"));
                write_parquet(df, &tmp, &opts)?;
                let dest = folder.join(&name);
                std::fs::rename(&tmp, &dest).map_err(|e| Error::io("publish", &dest, e))
            }
            Table::Remote { url, store, prefix } => {
                use object_store::ObjectStoreExt;
                let tmp = std::env::temp_dir().join(format!("scorch-metrics-{run_id}.parquet"));
                write_parquet(df, &tmp, &opts)?;
                let bytes = std::fs::read(&tmp).map_err(|e| Error::io("read", &tmp, e));
                let _ = std::fs::remove_file(&tmp);
                let path = prefix
                    .clone()
                    .join(crate::reports::metrics_history::HISTORY_DIR)
                    .join(partition)
                    .join(name.as_str());
                let what = format!(
                    "{url}/{}/{partition}/{name}",
                    crate::reports::metrics_history::HISTORY_DIR
                );
                crate::storage::runtime()?.block_on(async {
                    store
                        .store
                        .put(&path, bytes?.into())
                        .await
                        .map_err(|e| crate::storage::runtime_error(&format!("writing {what}"), e))
                })?;
                Ok(())
            }
        }
    }

    /// Every row of the table's metrics history (empty when there is none).
    pub fn read(&self) -> Result<DataFrame> {
        let mut parts: Vec<DataFrame> = Vec::new();
        // The files hold no `ds` column (hive layout: it is the folder's `ds=` name).
        let read = |bytes: Vec<u8>, what: &str| -> Result<DataFrame> {
            let bad = |e: String| Error::Internal(format!("reading metrics history {what}: {e}"));
            let mut df = ParquetReader::new(std::io::Cursor::new(bytes))
                .finish()
                .map_err(|e| bad(e.to_string()))?;
            if df.column("ds").is_err() {
                let ds = what
                    .rsplit('/')
                    .find_map(|p| p.strip_prefix("ds="))
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                    .ok_or_else(|| bad("not under a ds=YYYY-MM-DD folder".into()))?;
                let days = (ds - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid"))
                    .num_days() as i32;
                let col = Series::new("ds".into(), vec![days; df.height()])
                    .cast(&DataType::Date)
                    .map_err(|e| bad(e.to_string()))?;
                df.with_column(col.into_column())
                    .map_err(|e| bad(e.to_string()))?;
            }
            Ok(df)
        };
        match self.0 {
            Table::Local(dir) => {
                let root = dir.join(crate::reports::metrics_history::HISTORY_DIR);
                let Ok(days) = std::fs::read_dir(&root) else {
                    return Ok(DataFrame::empty());
                };
                let mut files = Vec::new();
                for d in days.flatten() {
                    if let Ok(entries) = std::fs::read_dir(d.path()) {
                        files.extend(entries.flatten().map(|e| e.path()).filter(|p| {
                            p.extension().is_some_and(|x| x == "parquet")
                                && !p
                                    .file_name()
                                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                        }));
                    }
                }
                for f in files {
                    let bytes = std::fs::read(&f).map_err(|e| Error::io("read", &f, e))?;
                    parts.push(read(bytes, &f.display().to_string())?);
                }
            }
            Table::Remote { url, store, prefix } => {
                use futures_util::StreamExt;
                use object_store::ObjectStoreExt;
                let root = prefix
                    .clone()
                    .join(crate::reports::metrics_history::HISTORY_DIR);
                let rt = crate::storage::runtime()?;
                let blobs: Vec<(String, Vec<u8>)> = rt.block_on(async {
                    let mut out = Vec::new();
                    let mut listing = store.store.list(Some(&root));
                    let mut keys = Vec::new();
                    while let Some(item) = listing.next().await {
                        let meta = item.map_err(|e| {
                            crate::storage::runtime_error(&format!("listing {url}/_metrics"), e)
                        })?;
                        if meta.location.as_ref().ends_with(".parquet") {
                            keys.push(meta.location);
                        }
                    }
                    drop(listing);
                    for k in keys {
                        let b = store
                            .store
                            .get(&k)
                            .await
                            .map_err(|e| crate::storage::runtime_error(&format!("reading {k}"), e))?
                            .bytes()
                            .await
                            .map_err(|e| {
                                crate::storage::runtime_error(&format!("reading {k}"), e)
                            })?;
                        out.push((k.to_string(), b.to_vec()));
                    }
                    Ok::<_, Error>(out)
                })?;
                for (k, b) in blobs {
                    parts.push(read(b, &k)?);
                }
            }
        }
        let mut it = parts.into_iter();
        let Some(mut all) = it.next() else {
            return Ok(DataFrame::empty());
        };
        for p in it {
            all.vstack_mut_owned(p)?;
        }
        Ok(all)
    }
}
