//! Quarantined rows of a table: `<table>/_quarantine/ds=<date>/<run id>.parquet`,
//! written to a local file during the run and published with the partition.

use std::path::{Path, PathBuf};

use super::{QUARANTINE_DIR, Table};
use crate::error::{Error, Result};

/// The quarantine of a table ([`Table::quarantine`]).
pub struct Quarantine<'a>(pub(super) &'a Table);

impl Quarantine<'_> {
    /// A local file for a run's quarantined rows, until [`Quarantine::publish`].
    pub fn tmp_file(&self, partition: &str, run_id: &str) -> Result<PathBuf> {
        let dir = match self.0 {
            Table::Local(dir) => dir.join(QUARANTINE_DIR).join(partition),
            Table::Remote { .. } => std::env::temp_dir(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        Ok(dir.join(format!(".scorch-quarantine-{run_id}.parquet.tmp")))
    }

    /// Moves (local) or uploads (object store) a finished quarantine file to
    /// `<table>/_quarantine/<partition>/<run id>.parquet`; returns where it is.
    pub fn publish(&self, tmp: &Path, partition: &str, run_id: &str) -> Result<String> {
        let name = format!("{run_id}.parquet");
        match self.0 {
            Table::Local(dir) => {
                let dest = dir.join(QUARANTINE_DIR).join(partition).join(&name);
                std::fs::rename(tmp, &dest).map_err(|e| Error::io("publish", &dest, e))?;
                Ok(dest.display().to_string())
            }
            Table::Remote { url, store, prefix } => {
                use object_store::ObjectStoreExt;
                let path = prefix
                    .clone()
                    .join(QUARANTINE_DIR)
                    .join(partition)
                    .join(name.as_str());
                let what = format!("{url}/{QUARANTINE_DIR}/{partition}/{name}");
                let bytes = std::fs::read(tmp).map_err(|e| Error::io("read", tmp, e))?;
                crate::storage::runtime()?
                    .block_on(async { store.store.put(&path, bytes.into()).await })
                    .map_err(|e| crate::storage::runtime_error(&format!("writing {what}"), e))?;
                let _ = std::fs::remove_file(tmp);
                Ok(what)
            }
        }
    }
}
