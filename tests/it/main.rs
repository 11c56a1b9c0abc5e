//! scorch's integration tests: one test binary, one module per capability, so
//! `common` (the project, server and check helpers) compiles once. They run the
//! real `scorch` binary and real services (PostgreSQL, S3, Azurite, Airflow,
//! Chromium, LibTorch), started by the tests on loopback ports.
//!
//! `cargo test --test it <module>::` runs one capability, e.g. `cargo test --test
//! it architecture:: -- --nocapture`.

mod common;

mod adbc;
mod airflow;
mod aoti;
mod architecture;
mod backfill;
mod bad_input;
mod boundary;
mod completions;
mod context;
mod contract;
mod crash;
mod cuda;
mod data_fuzz;
mod delta;
mod docs;
mod e2e;
mod engine;
mod errors;
mod faults;
mod init;
mod k8s;
mod lock;
mod object_store;
mod observe;
mod parity;
mod performance;
mod plan;
mod postgres;
mod registry;
mod report;
mod schedule;
mod secrets;
mod shadow;
mod shard;
mod wheel;
