//! A real S3-compatible server for tests: `s3s-fs` (crates.io; `make test` installs
//! it into the cache) on a free loopback port, serving a temp folder. Buckets are
//! folders of that root, so tests can lay out input objects directly and inspect
//! what scorch uploaded; every request scorch makes goes over the S3 protocol.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const ACCESS_KEY: &str = "scorch-test-key";
pub const SECRET_KEY: &str = "scorch-test-secret-3a9f";

pub struct S3Server {
    pub root: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl S3Server {
    pub fn start() -> Self {
        let root = tempfile::Builder::new()
            .prefix("scorch-s3-")
            .tempdir()
            .unwrap();
        let (port, child) = super::spawn_on_free_port("s3s-fs", |port| {
            Command::new(super::cached_tool("SCORCH_S3S_FS", "s3s-fs/bin/s3s-fs"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(root.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        });
        S3Server { root, port, child }
    }

    /// Creates a bucket and returns its folder.
    pub fn bucket(&self, name: &str) -> PathBuf {
        let p = self.root.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Copies a local folder tree into `bucket/prefix`.
    pub fn put_tree(&self, bucket: &str, prefix: &str, from: &Path) {
        let dest = self.bucket(bucket).join(prefix);
        copy_tree(from, &dest);
    }

    /// A profiles.yaml entry for this server; keys come from `$S3_KEY` / `$S3_SECRET`.
    pub fn profile_yaml(&self, name: &str) -> String {
        format!(
            "{name}:\n  object_store:\n    options:\n      aws_endpoint: http://127.0.0.1:{}\n      aws_allow_http: \"true\"\n      \
             aws_region: us-east-1\n      aws_access_key_id: ${{S3_KEY}}\n      aws_secret_access_key: ${{S3_SECRET}}\n      \
             aws_virtual_hosted_style_request: \"false\"\n    retry:\n      max_retries: 2\n      timeout_s: 5\n      initial_backoff_ms: 50\n",
            self.port
        )
    }

    pub fn env() -> [(&'static str, &'static str); 2] {
        [("S3_KEY", ACCESS_KEY), ("S3_SECRET", SECRET_KEY)]
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and folder (after [`stop`]).
    pub fn restart(&mut self) {
        self.child = Command::new(super::cached_tool("SCORCH_S3S_FS", "s3s-fs/bin/s3s-fs"))
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        super::wait_for_port(self.port, "s3s-fs");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
