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

/// Process exit codes, documented in docs/reference/exit-codes.md; stable from one release to the next.
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
    /// Every exit code, in order: the table `scorch --help` prints and the
    /// README's "Exit codes" table shows (a test keeps them equal).
    pub const ALL: [ExitCode; 7] = [
        ExitCode::Ok,
        ExitCode::Internal,
        ExitCode::Config,
        ExitCode::DataContract,
        ExitCode::Model,
        ExitCode::QualityGate,
        ExitCode::Locked,
    ];

    pub fn code(self) -> i32 {
        self as i32
    }

    /// What the code means, as the README's table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Ok => "success",
            ExitCode::Internal => {
                "internal or runtime error (a file could not be written, a warehouse unreachable)"
            }
            ExitCode::Config => "usage, configuration or job-spec error",
            ExitCode::DataContract => {
                "data error: missing input, wrong types, NaN features, a data contract broken, \
                 no rows, a duplicated key"
            }
            ExitCode::Model => {
                "model or bundle error: hash mismatch, load failure, wrong output shape, wrong \
                 preprocessing, a bundle file outside its folder"
            }
            ExitCode::QualityGate => {
                "a `fail` quality check or shadow promotion rule did not hold (outputs and \
                 reports were written)"
            }
            ExitCode::Locked => "locked: another run holds the partition",
        }
    }

    /// The exit codes as `scorch --help` lists them.
    pub fn help() -> String {
        let mut out = String::from("Exit codes:\n");
        for c in ExitCode::ALL {
            out.push_str(&format!("  {}  {}\n", c.code(), c.meaning()));
        }
        out
    }
}

/// What kind of failure an error is: it decides the exit code, and the prefix
/// of the message (`data contract: `, `model bundle: `, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A failure at run time (I/O, a store, a bug): exit 1.
    Internal,
    /// A usage, configuration or job-spec error: exit 2.
    Config,
    /// The data does not have the shape the job expects: exit 3.
    DataContract,
    /// A model bundle is unusable: exit 4.
    Model,
    /// A `fail` check did not hold: exit 5.
    QualityGate,
    /// Another run holds the lock: exit 6.
    Locked,
}

impl Kind {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Kind::Internal => ExitCode::Internal,
            Kind::Config => ExitCode::Config,
            Kind::DataContract => ExitCode::DataContract,
            Kind::Model => ExitCode::Model,
            Kind::QualityGate => ExitCode::QualityGate,
            Kind::Locked => ExitCode::Locked,
        }
    }

    /// What a message of this kind starts with.
    fn prefix(self) -> &'static str {
        match self {
            Kind::Internal | Kind::Config => "",
            Kind::DataContract => "data contract: ",
            Kind::Model => "model bundle: ",
            Kind::QualityGate => "quality gate: ",
            Kind::Locked => "locked: ",
        }
    }
}

/// The error enum of one layer (`storage::StorageError`, `infer::InferError`,
/// `source::SourceError`, …): its [`Kind`] gives the exit code, and its
/// `source()` chain reaches the library error underneath (an `object_store`,
/// LibTorch or PostgreSQL error). It converts into [`Error`] with `?`.
pub trait LayerError: std::error::Error + Send + Sync + 'static {
    fn kind(&self) -> Kind;

    /// The file the error is about, when its message does not name it: it is
    /// shown first, before any context (as configuration errors name their file).
    fn file(&self) -> Option<&Path> {
        None
    }
}

/// A layer's error inside [`Error`], with the context added on its way up.
#[derive(Debug)]
pub struct Layered {
    /// Context, outermost first; each is shown as `context: ` before the message.
    context: Vec<String>,
    /// The kind it was given on its way up (a bundle's YAML error is a model
    /// error), else the layer's.
    kind: Option<Kind>,
    /// The message once redacted (else the error's own).
    redacted: Option<String>,
    error: Box<dyn LayerError>,
}

impl Layered {
    pub fn kind(&self) -> Kind {
        self.kind.unwrap_or_else(|| self.error.kind())
    }

    /// The layer's error.
    pub fn error(&self) -> &(dyn LayerError + 'static) {
        &*self.error
    }
}

impl std::fmt::Display for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(file) = self.error.file() {
            write!(f, "{}: ", file.display())?;
        }
        for c in &self.context {
            write!(f, "{c}: ")?;
        }
        match &self.redacted {
            Some(m) => f.write_str(m),
            None => write!(f, "{}", self.error),
        }
    }
}

impl std::error::Error for Layered {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        let e: &(dyn std::error::Error + 'static) = &*self.error;
        Some(e)
    }
}

impl<E: LayerError> From<E> for Error {
    fn from(e: E) -> Self {
        Error::Layer(Layered {
            context: vec![],
            kind: None,
            redacted: None,
            error: Box::new(e),
        })
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
    /// An error of a layer's own enum, with its source chain.
    #[error("{}{}", .0.kind().prefix(), .0)]
    Layer(#[source] Layered),
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

    /// The kind of failure, which gives the exit code.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Config { .. } => Kind::Config,
            Error::DataContract(_) => Kind::DataContract,
            Error::Model(_) => Kind::Model,
            Error::QualityGate(_) => Kind::QualityGate,
            Error::Locked(_) => Kind::Locked,
            Error::Io { .. } | Error::Internal(_) => Kind::Internal,
            Error::Layer(l) => l.kind(),
        }
    }

    /// The documented exit code for this error: its kind's.
    pub fn exit_code(&self) -> ExitCode {
        self.kind().exit_code()
    }

    /// The same error as one of `kind` (a bundle's unreadable YAML is a model
    /// error, exit 4): the message gets that kind's prefix; a layer's error keeps
    /// its chain.
    pub fn into_kind(self, kind: Kind) -> Self {
        match self {
            Error::Layer(mut l) => {
                l.kind = Some(kind);
                Error::Layer(l)
            }
            other => Error::with_code(kind.exit_code().code(), other.to_string()),
        }
    }

    /// The error with `f` applied to its message (redaction), keeping its kind and,
    /// for a layer's error, its source chain.
    pub fn redacted(self, f: impl Fn(&str) -> String) -> Self {
        match self {
            Error::Config { file, problems } => Error::Config {
                file,
                problems: problems.iter().map(|p| f(p)).collect(),
            },
            Error::DataContract(m) => Error::DataContract(f(&m)),
            Error::Model(m) => Error::Model(f(&m)),
            Error::QualityGate(m) => Error::QualityGate(f(&m)),
            Error::Locked(m) => Error::Locked(f(&m)),
            Error::Internal(m) => Error::Internal(f(&m)),
            io @ Error::Io { .. } => {
                let text = io.to_string();
                let red = f(&text);
                if red == text {
                    io
                } else {
                    Error::Internal(red)
                }
            }
            Error::Layer(mut l) => {
                l.context = l.context.iter().map(|c| f(c)).collect();
                l.redacted = Some(f(&l.redacted.take().unwrap_or_else(|| l.error.to_string())));
                Error::Layer(l)
            }
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
            Error::Layer(mut l) => {
                l.context.insert(0, ctx.to_string());
                Error::Layer(l)
            }
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

/// A Polars error, kept as the source: a data error (exit 3) for missing columns,
/// schema mismatches and failed computations, a configuration error (exit 2)
/// for SQL, a runtime error (exit 1) for I/O and the rest.
#[derive(Debug)]
pub struct DataFrameError(polars::prelude::PolarsError);

impl std::fmt::Display for DataFrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use polars::prelude::PolarsError as P;
        match &self.0 {
            P::ColumnNotFound(m) => write!(f, "column not found: {m}"),
            P::SchemaMismatch(m) => write!(f, "schema mismatch: {m}"),
            P::InvalidOperation(m) => write!(f, "invalid operation: {m}"),
            P::ComputeError(m) => write!(f, "compute error: {m}"),
            P::SQLSyntax(m) | P::SQLInterface(m) => write!(f, "SQL: {m}"),
            P::IO { error, msg } => write!(
                f,
                "I/O: {error}{}",
                msg.as_ref().map(|m| format!(" ({m})")).unwrap_or_default()
            ),
            other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for DataFrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl LayerError for DataFrameError {
    fn kind(&self) -> Kind {
        use polars::prelude::PolarsError as P;
        match &self.0 {
            P::ColumnNotFound(_)
            | P::SchemaMismatch(_)
            | P::InvalidOperation(_)
            | P::ComputeError(_) => Kind::DataContract,
            P::SQLSyntax(_) | P::SQLInterface(_) => Kind::Config,
            _ => Kind::Internal,
        }
    }
}

impl From<polars::prelude::PolarsError> for Error {
    fn from(e: polars::prelude::PolarsError) -> Self {
        use polars::prelude::PolarsError as P;
        match e {
            P::Context { error, msg } => Error::from(*error).context(msg),
            P::ExprContext { error, expr } => {
                Error::from(*error).context(format!("in expression {expr}"))
            }
            other => DataFrameError(other).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A layer's error of any kind, with a library error as its source.
    #[derive(Debug, thiserror::Error)]
    #[error("{message}")]
    struct Probe {
        message: String,
        kind: Kind,
        file: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    }

    impl LayerError for Probe {
        fn kind(&self) -> Kind {
            self.kind
        }

        fn file(&self) -> Option<&Path> {
            self.file.as_deref()
        }
    }

    const KINDS: [Kind; 6] = [
        Kind::Internal,
        Kind::Config,
        Kind::DataContract,
        Kind::Model,
        Kind::QualityGate,
        Kind::Locked,
    ];

    fn probe(kind: Kind, message: &str) -> Error {
        Probe {
            message: message.to_string(),
            kind,
            file: None,
            source: std::io::Error::other("the cause underneath"),
        }
        .into()
    }

    /// The messages of the string variants, which a layer's error must print
    /// exactly as they did.
    fn as_string_variant(kind: Kind, message: &str) -> Error {
        Error::with_code(kind.exit_code().code(), message.to_string())
    }

    fn chain(e: &Error) -> Vec<String> {
        let mut out = vec![];
        let mut at: Option<&dyn std::error::Error> = Some(e);
        while let Some(x) = at {
            out.push(x.to_string());
            at = x.source();
        }
        out
    }

    proptest! {
        #[test]
        fn a_layers_error_prints_and_exits_as_the_string_variants_did(
            k in 0usize..6,
            message in ".{0,40}",
            contexts in proptest::collection::vec(".{0,20}", 0..4),
        ) {
            let kind = KINDS[k];
            let (mut layered, mut old) = (probe(kind, &message), as_string_variant(kind, &message));
            for c in &contexts {
                layered = layered.context(c);
                old = old.context(c);
            }
            prop_assert_eq!(layered.to_string(), old.to_string());
            prop_assert_eq!(layered.exit_code(), old.exit_code());
            prop_assert_eq!(layered.exit_code(), kind.exit_code());
            // The cause is still there, below the layer's error.
            let c = chain(&layered);
            prop_assert_eq!(c.last().map(String::as_str), Some("the cause underneath"));
            // Redaction reaches the message and every context, and keeps the chain.
            let red = layered.redacted(|m| m.replace('a', "*"));
            prop_assert_eq!(red.to_string(), old.redacted(|m| m.replace('a', "*")).to_string());
            prop_assert_eq!(red.exit_code(), kind.exit_code());
            let c = chain(&red);
            prop_assert_eq!(c.last().map(String::as_str), Some("the cause underneath"));
        }
    }

    proptest! {
        #[test]
        fn a_layers_error_about_a_file_prints_as_a_config_error_did(
            file in "[a-z/]{1,20}\\.yaml",
            message in ".{0,40}",
            contexts in proptest::collection::vec(".{0,20}", 0..4),
            as_model in any::<bool>(),
        ) {
            let mut layered: Error = Probe {
                message: message.clone(),
                kind: Kind::Config,
                file: Some(PathBuf::from(&file)),
                source: std::io::Error::other("the cause underneath"),
            }
            .into();
            let mut old = Error::config(&file, message.as_str());
            for c in &contexts {
                layered = layered.context(c);
                old = old.context(c);
            }
            if as_model {
                layered = layered.into_kind(Kind::Model);
                old = Error::Model(old.to_string());
            }
            prop_assert_eq!(layered.to_string(), old.to_string());
            prop_assert_eq!(layered.exit_code(), old.exit_code());
            let c = chain(&layered);
            prop_assert_eq!(c.last().map(String::as_str), Some("the cause underneath"));
        }
    }

    #[test]
    fn polars_errors_keep_their_messages_their_codes_and_their_source() {
        use polars::prelude::*;
        let df = df!("a" => [1i64, 2]).unwrap();
        let e: Error = df.column("nope").unwrap_err().into();
        assert_eq!(e.exit_code(), ExitCode::DataContract);
        assert!(
            e.to_string()
                .starts_with("data contract: column not found: "),
            "{e}"
        );
        let c = chain(&e);
        assert!(c.len() >= 3, "{c:?}");
        let wrapped: Error = PolarsError::Context {
            error: Box::new(PolarsError::ComputeError("boom".into())),
            msg: "while casting".into(),
        }
        .into();
        assert_eq!(
            wrapped.to_string(),
            "data contract: while casting: compute error: boom"
        );
        let sql: Error = PolarsError::SQLSyntax("near FROM".into()).into();
        assert_eq!(
            (sql.exit_code(), sql.to_string()),
            (ExitCode::Config, "SQL: near FROM".into())
        );
        let io: Error = PolarsError::IO {
            error: std::sync::Arc::new(std::io::Error::other("disk")),
            msg: Some("x.parquet".into()),
        }
        .into();
        assert_eq!(
            (io.exit_code(), io.to_string()),
            (ExitCode::Internal, "I/O: disk (x.parquet)".into())
        );
    }

    #[test]
    fn redaction_hides_a_secret_of_a_layers_error_and_its_context() {
        let e = probe(Kind::Internal, "GET s3://bucket/k?token=hunter2 failed")
            .context("reading hunter2");
        let r = e.redacted(|m| m.replace("hunter2", "***"));
        assert_eq!(
            r.to_string(),
            "reading ***: GET s3://bucket/k?token=*** failed"
        );
        assert_eq!(r.exit_code(), ExitCode::Internal);
    }
}
