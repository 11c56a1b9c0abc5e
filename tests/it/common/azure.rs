//! A real Azure Blob Storage emulator for tests: Azurite (npm; `make test` installs
//! it into the cache) on a free loopback port. object_store and Polars reach it
//! through `azure_storage_use_emulator` and `$AZURITE_BLOB_STORAGE_URL`.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

pub struct Azurite {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Azurite {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("scorch-azurite-")
            .tempdir()
            .unwrap();
        let (port, child) = super::spawn_on_free_port("azurite", |port| {
            Command::new(super::cached_tool(
                "SCORCH_AZURITE",
                "azurite/node_modules/.bin/azurite-blob",
            ))
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
            .unwrap()
        });
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
