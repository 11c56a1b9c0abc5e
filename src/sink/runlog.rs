//! The run log of a table: `<table>/_runs/<run id>.json`, the manifest of every
//! run (failed ones too), and a run's other files (reports) beside it.

use super::{RUNS_DIR, Table};
use crate::error::Result;
use crate::storage::write_file_atomic;

/// The run log of a table ([`Table::run_log`]).
pub struct RunLog<'a>(pub(super) &'a Table);

impl RunLog<'_> {
    /// Writes a run's manifest to `_runs/<run id>.json`.
    pub fn write_manifest(&self, run_id: &str, bytes: &[u8]) -> Result<String> {
        self.write_file(&format!("{run_id}.json"), bytes)
    }

    /// Writes a file of a run (manifest, report) to `_runs/<name>`.
    pub fn write_file(&self, name: &str, bytes: &[u8]) -> Result<String> {
        match self.0 {
            Table::Local(dir) => {
                let p = dir.join(RUNS_DIR).join(name);
                write_file_atomic(&p, bytes)?;
                Ok(p.display().to_string())
            }
            Table::Remote { url, store, prefix } => {
                use object_store::ObjectStoreExt;
                let path = prefix.clone().join(RUNS_DIR).join(name);
                let what = format!("{url}/{RUNS_DIR}/{name}");
                let payload = object_store::PutPayload::from(bytes.to_vec());
                crate::storage::runtime()?
                    .block_on(async { store.store.put(&path, payload).await })
                    .map_err(|e| crate::storage::runtime_error(&format!("writing {what}"), e))?;
                Ok(what)
            }
        }
    }
}
