//! Publishing a partition on local disk: a private staging folder swapped with the
//! live partition in one `renameat2(RENAME_EXCHANGE)` (two renames where the file
//! system cannot, repaired by the next run after a crash).

use std::path::{Path, PathBuf};

use super::STAGING_DIR;
use crate::error::{Error, Result};
use crate::storage::{alive, pid_of, sync_dir};

/// A partition being written: a private staging folder that becomes `<table>/<partition>`
/// when published.
pub struct StagedPartition {
    pub table: PathBuf,
    pub partition: String,
    pub dir: PathBuf,
}

fn staging_name(partition: &str, run_id: &str) -> String {
    format!("{partition}.{run_id}.pid{}", std::process::id())
}

impl StagedPartition {
    /// Creates the staging folder for `partition` (e.g. `ds=2026-11-28`) of `table`,
    /// first removing staging folders of the same partition left by dead processes
    /// and repairing a partition a crashed fallback publish left aside.
    pub fn create(table: &Path, partition: &str, run_id: &str) -> Result<Self> {
        let staging_root = table.join(STAGING_DIR);
        std::fs::create_dir_all(&staging_root)
            .map_err(|e| Error::io("create folder", &staging_root, e))?;
        recover(table, partition)?;
        if let Ok(entries) = std::fs::read_dir(&staging_root) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let ours = name.starts_with(&format!("{partition}."));
                if ours && pid_of(&name).is_some_and(|p| !alive(p)) {
                    tracing::info!(folder = %e.path().display(), "removing staging folder of a dead run");
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let dir = staging_root.join(staging_name(partition, run_id));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create folder", &dir, e))?;
        Ok(Self {
            table: table.to_path_buf(),
            partition: partition.to_string(),
            dir,
        })
    }

    /// The live partition folder.
    pub fn target(&self) -> PathBuf {
        self.table.join(&self.partition)
    }

    /// Makes the staged files the partition, atomically replacing any previous one.
    pub fn publish(self) -> Result<PathBuf> {
        let target = self.target();
        self.publish_at(target)
    }

    /// Moves the staged files to `target` (a folder of the table) the same way.
    pub fn publish_at(self, target: PathBuf) -> Result<PathBuf> {
        sync_dir(&self.dir);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create folder", parent, e))?;
        }
        if target.exists() {
            match exchange(&self.dir, &target) {
                Ok(()) => {
                    // `self.dir` now holds the previous partition.
                    sync_dir(&self.table);
                    let _ = std::fs::remove_dir_all(&self.dir);
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                    let aside = self.table.join(STAGING_DIR).join(format!(
                        "{}.previous",
                        target
                            .strip_prefix(&self.table)
                            .unwrap_or(&target)
                            .to_string_lossy()
                            .replace('/', "_")
                    ));
                    let _ = std::fs::remove_dir_all(&aside);
                    std::fs::rename(&target, &aside)
                        .map_err(|e| Error::io("move aside", &target, e))?;
                    std::fs::rename(&self.dir, &target)
                        .map_err(|e| Error::io("publish", &target, e))?;
                    sync_dir(&self.table);
                    let _ = std::fs::remove_dir_all(&aside);
                }
                Err(e) => return Err(Error::io("publish", &target, e)),
            }
        } else {
            std::fs::rename(&self.dir, &target).map_err(|e| Error::io("publish", &target, e))?;
            sync_dir(&self.table);
        }
        Ok(target)
    }

    /// Removes the staging folder (after a failure).
    pub fn abandon(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Puts back a partition that a crash left aside between the two renames of the fallback publish.
fn recover(table: &Path, partition: &str) -> Result<()> {
    let aside = table
        .join(STAGING_DIR)
        .join(format!("{partition}.previous"));
    let target = table.join(partition);
    if aside.is_dir() && !target.exists() {
        tracing::warn!(
            partition,
            "restoring a partition left aside by an interrupted publish"
        );
        std::fs::rename(&aside, &target).map_err(|e| Error::io("restore", &target, e))?;
    }
    Ok(())
}

/// Atomically swaps two paths (Linux `renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them relative to the cwd.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
