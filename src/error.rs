//! Errors and the documented exit codes.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | internal or runtime error (I/O failure, a bug) |
//! | 2 | usage, configuration or job-spec error |
//! | 3 | data contract violation (missing column, wrong type, unusable values) |
//! | 4 | model or bundle error (hash mismatch, load failure, shape mismatch, preprocessing mismatch) |
//! | 5 | quality gate: a `fail` check or drift did not hold (outputs and report written) |
//! | 6 | locked: another run of the same job, date (and shard) holds the lock |

use std::path::{Path, PathBuf};

/// Process exit codes, documented in the README; stable from one release to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Ok = 0,
    Internal = 1,
    Config = 2,
    DataContract = 3,
    Model = 4,
    /// A `fail`-severity quality check failed; outputs and reports were written.
    QualityGate = 5,
    /// Another run holds the partition's lock.
    Locked = 6,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Every error scorch reports. Each variant says what was wrong and where
/// (file, field, column) so the user can act on it without reading the source.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A job, preprocessing spec, bundle or CLI argument is invalid.
    #[error("{}", fmt_config(.file, .problems))]
    Config {
        file: Option<PathBuf>,
        problems: Vec<String>,
    },
    /// The data does not have the shape the job, preprocessing or model expects.
    #[error("data contract: {0}")]
    DataContract(String),
    /// A model bundle is unusable: hash mismatch, load failure, shape or preprocessing mismatch.
    #[error("model bundle: {0}")]
    Model(String),
    /// Quality checks of `severity: fail` did not hold. The scored output, the report
    /// and the manifest were written first.
    #[error("quality gate: {0}")]
    QualityGate(String),
    /// Another run holds the lock of the partition (or shard) this one would write.
    #[error("locked: {0}")]
    Locked(String),
    /// A file could not be read or written.
    #[error("{op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Anything else that went wrong at run time.
    #[error("{0}")]
    Internal(String),
}

fn fmt_config(file: &Option<PathBuf>, problems: &[String]) -> String {
    let mut s = String::new();
    match (file, problems.len()) {
        (Some(f), 1) => s.push_str(&format!("{}: {}", f.display(), problems[0])),
        (None, 1) => s.push_str(&problems[0]),
        (Some(f), n) => {
            s.push_str(&format!("{}: {n} problems", f.display()));
            for p in problems {
                s.push_str(&format!("\n  - {p}"));
            }
        }
        (None, n) => {
            s.push_str(&format!("{n} problems"));
            for p in problems {
                s.push_str(&format!("\n  - {p}"));
            }
        }
    }
    s
}

impl Error {
    /// A configuration error about one file.
    pub fn config(file: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Config {
            file: Some(file.as_ref().to_path_buf()),
            problems: vec![problem.into()],
        }
    }

    /// A configuration error not tied to a file (for example a CLI argument).
    pub fn usage(problem: impl Into<String>) -> Self {
        Error::Config {
            file: None,
            problems: vec![problem.into()],
        }
    }

    pub fn io(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An error with the given exit code's kind (for a summary of several failures,
    /// such as a backfill's, that exits with the first one's code).
    pub fn with_code(code: i32, message: String) -> Self {
        match code {
            2 => Error::usage(message),
            3 => Error::DataContract(message),
            4 => Error::Model(message),
            5 => Error::QualityGate(message),
            6 => Error::Locked(message),
            _ => Error::Internal(message),
        }
    }

    /// The documented exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config { .. } => ExitCode::Config,
            Error::DataContract(_) => ExitCode::DataContract,
            Error::Model(_) => ExitCode::Model,
            Error::QualityGate(_) => ExitCode::QualityGate,
            Error::Locked(_) => ExitCode::Locked,
            Error::Io { .. } | Error::Internal(_) => ExitCode::Internal,
        }
    }

    /// Prefixes the message with context, keeping the exit code.
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        match self {
            Error::Config { file, problems } => Error::Config {
                file,
                problems: problems
                    .into_iter()
                    .map(|p| format!("{ctx}: {p}"))
                    .collect(),
            },
            Error::DataContract(m) => Error::DataContract(format!("{ctx}: {m}")),
            Error::Model(m) => Error::Model(format!("{ctx}: {m}")),
            Error::QualityGate(m) => Error::QualityGate(format!("{ctx}: {m}")),
            Error::Locked(m) => Error::Locked(format!("{ctx}: {m}")),
            Error::Internal(m) => Error::Internal(format!("{ctx}: {m}")),
            io @ Error::Io { .. } => Error::Internal(format!("{ctx}: {io}")),
        }
    }
}

/// Collects every problem found while validating a file, so `scorch validate`
/// reports all of them at once instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Problems {
    items: Vec<String>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }
    /// Records a problem with the field path it concerns, e.g. `source.parquet.path`.
    pub fn push(&mut self, field: impl AsRef<str>, msg: impl AsRef<str>) {
        self.items
            .push(format!("field `{}`: {}", field.as_ref(), msg.as_ref()));
    }
    pub fn extend(&mut self, other: Problems) {
        self.items.extend(other.items);
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// `Ok(())` when nothing was recorded, else a config error for `file`.
    pub fn into_result(self, file: &Path) -> Result<()> {
        if self.items.is_empty() {
            Ok(())
        } else {
            Err(Error::Config {
                file: Some(file.to_path_buf()),
                problems: self.items,
            })
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<polars::prelude::PolarsError> for Error {
    fn from(e: polars::prelude::PolarsError) -> Self {
        use polars::prelude::PolarsError as P;
        match e {
            P::ColumnNotFound(m) => Error::DataContract(format!("column not found: {m}")),
            P::SchemaMismatch(m) => Error::DataContract(format!("schema mismatch: {m}")),
            P::InvalidOperation(m) => Error::DataContract(format!("invalid operation: {m}")),
            P::ComputeError(m) => Error::DataContract(format!("compute error: {m}")),
            P::SQLSyntax(m) | P::SQLInterface(m) => Error::Config {
                file: None,
                problems: vec![format!("SQL: {m}")],
            },
            P::IO { error, msg } => Error::Internal(format!(
                "I/O: {error}{}",
                msg.map(|m| format!(" ({m})")).unwrap_or_default()
            )),
            P::Context { error, msg } => Error::from(*error).context(msg),
            P::ExprContext { error, expr } => {
                Error::from(*error).context(format!("in expression {expr}"))
            }
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Model(e.to_string())
    }
}
