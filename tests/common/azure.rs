//! A real Azure Blob Storage emulator for tests: Azurite (npm; `make test` installs
//! it into the cache) on a free loopback port. object_store and Polars reach it
//! through `azure_storage_use_emulator` and `$AZURITE_BLOB_STORAGE_URL`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Azurite {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn binary() -> PathBuf {
    let p = std::env::var_os("SCORCH_AZURITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/scorch/azurite/node_modules/.bin/azurite-blob")
        });
    assert!(
        p.exists(),
        "azurite-blob not found at {} — `make test` installs it",
        p.display()
    );
    p
}

impl Azurite {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scorch-azurite-")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary())
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--silent",
                "--skipApiVersionCheck",
            ])
            .arg("--location")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "azurite did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Azurite { dir, port, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a container (a signed REST call, as any Azure client makes).
    pub fn container(&self, name: &str) {
        let o = super::run_python(&[
            super::repo()
                .join("tests/py/azurite_container.py")
                .to_str()
                .unwrap(),
            &self.port.to_string(),
            name,
        ]);
        assert!(o.status.success(), "{}", super::stderr(&o));
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
