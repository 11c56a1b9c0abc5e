//! Local files: atomic writes, temporary folders named for their process, and
//! content hashes. Every stage that writes a file on local disk goes through here.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync, rename).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create folder", dir, e))?;
    if path.is_dir() {
        return Err(Error::io(
            "write",
            path,
            std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "it is a folder; name a file to write",
            ),
        ));
    }
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
    })();
    if written.is_err() {
        // Nothing half-written is left beside the target.
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// fsyncs a folder (so a rename into it is durable); errors are ignored.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The PID a `<name>.pid<PID>` folder name carries.
pub fn pid_of(staging_name: &str) -> Option<u32> {
    staging_name.rsplit_once(".pid")?.1.parse().ok()
}

/// Whether process `pid` exists in this PID namespace.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A new folder `$TMPDIR/<prefix><unique>.pid<PID>`: named for this process, so
/// that [`remove_dead_temp_folders`] can tell when it was left by a dead one.
pub fn create_temp_folder(prefix: &str) -> Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0u32.. {
        let dir = base.join(format!(
            "{prefix}{}-{n}.pid{}",
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io("create folder", &dir, e)),
        }
    }
    unreachable!("some folder name is free")
}

/// Removes `$TMPDIR/<prefix>*.pid<PID>` folders of processes that are gone
/// (left by killed runs).
pub fn remove_dead_temp_folders(prefix: &str) {
    for e in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(prefix) && pid_of(&name).is_some_and(|p| !alive(p)) {
            tracing::info!(folder = %e.path().display(), "removing a temporary folder of a dead run");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Hex SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_onto_a_folder_is_refused_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        std::fs::create_dir(&target).unwrap();
        let e = write_file_atomic(&target, b"x").unwrap_err().to_string();
        assert!(e.contains("is a folder") && e.contains("out"), "{e}");
        let names = |d: &Path| -> Vec<String> {
            std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(tmp.path()), vec!["out".to_string()]);
        let file = tmp.path().join("page.html");
        write_file_atomic(&file, b"<html>").unwrap();
        write_file_atomic(&file, b"<html>2").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"<html>2");
        let mut got = names(tmp.path());
        got.sort();
        assert_eq!(got, vec!["out".to_string(), "page.html".to_string()]);
    }
}

/// A temporary folder (spilled runs, join partitions), removed with its files
/// when its last user is gone.
#[derive(Debug)]
pub struct SpillFolder {
    path: PathBuf,
}

impl SpillFolder {
    /// Takes ownership of `path`: it is removed with the last user.
    pub fn adopt(path: PathBuf) -> Self {
        SpillFolder { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
