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

    /// Reads a run's manifest, `_runs/<run id>.json` (`None`: there is none).
    pub fn read_manifest(&self, run_id: &str) -> Result<Option<Vec<u8>>> {
        self.read_file(&format!("{run_id}.json"))
    }

    /// Reads a file of the run log, `_runs/<name>` (`None`: there is none).
    pub fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let name = name.to_string();
        match self.0 {
            Table::Local(dir) => {
                let p = dir.join(RUNS_DIR).join(&name);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(crate::error::Error::io("read", &p, e)),
                }
            }
            Table::Remote { url, store, prefix } => {
                use object_store::ObjectStoreExt;
                let path = prefix.clone().join(RUNS_DIR).join(name.as_str());
                let rt = crate::storage::runtime()?;
                match rt.block_on(async { store.store.get(&path).await?.bytes().await }) {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(crate::storage::runtime_error(
                        &format!("reading {url}/{RUNS_DIR}/{name}"),
                        e,
                    )),
                }
            }
        }
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
