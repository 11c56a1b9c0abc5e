//! scorch: batch scoring and ETL job runner.
//!
//! The data's way through a run, one module per stage:
//! [`spec`] (job YAML) → [`source`] (Parquet, SQL) → [`contract`] (data contract) →
//! [`preprocess`] (Polars) → [`infer`] (LibTorch) → [`sink`] (Parquet table) →
//! [`reports`] (column metrics, drift), driven by [`run`]. `ARCHITECTURE.md` at the
//! repository root has the layer table: each module imports only from lower
//! layers (checked by `tests/it/architecture.rs`).

pub mod cli;
pub mod contract;
pub mod error;
pub mod evaluate;
pub mod history_page;
pub mod infer;
pub mod init;
pub mod model;
pub mod observe;
pub mod preprocess;
pub mod registry;
pub mod reports;
pub mod run;
pub mod schedule;
pub mod shadow;
pub mod sink;
pub mod source;
pub mod spec;
pub mod stats;
pub mod storage;
pub mod validate;

pub use error::{Error, ExitCode, Result};
