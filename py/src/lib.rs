//! `scorch._native`: the Python package's extension module. It holds the whole
//! scorch library, so the `scorch` command of the wheel and the Python API run the
//! same Rust code as the binary:
//!
//! - `main(argv, exe)` is the command line (the console script calls it);
//! - `fit`, `apply`, `to_matrix` and `check_state` are preprocessing, as `scorch
//!   preprocess fit` / `apply` and a run's tensorizing do it;
//! - `create_bundle`, `check_bundle`, `profile_bundle` and `json_schema` are
//!   `scorch bundle create`, `scorch bundle check`, `scorch profile` and `scorch schema`.
//!
//! Frames cross the boundary as Parquet bytes (lossless for every type, no second
//! Arrow build); matrices as `bytearray`s of row-major little-endian `f32`. The GIL
//! is released while Rust works. Errors are raised as `scorch.ScorchError` with the
//! message the command line prints and its exit code.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use clap::Parser;
use polars::prelude::*;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use scorch::preprocess::state::FittedState;

// jemalloc, as in the scorch binary, built to be loaded with dlopen (no
// initial-exec thread-local storage).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A frame from Python: a Parquet path or glob (read as `--data` reads it), or the
/// bytes of a Parquet file.
#[derive(FromPyObject)]
enum Data {
    Path(String),
    Parquet(Vec<u8>),
}

impl Data {
    fn lazy(&self) -> scorch::Result<(LazyFrame, String)> {
        match self {
            Data::Path(p) => Ok((scorch::source::scan_pattern(Path::new("."), p)?, p.clone())),
            Data::Parquet(bytes) => {
                let df = ParquetReader::new(Cursor::new(bytes.as_slice())).finish()?;
                Ok((df.lazy(), "<frame from Python>".to_string()))
            }
        }
    }
}

/// A scorch error as `scorch.ScorchError(message, exit_code)`.
fn raise(py: Python<'_>, e: scorch::Error) -> PyErr {
    let code = e.exit_code().code();
    let message = e.to_string();
    match py
        .import("scorch")
        .and_then(|m| m.getattr("ScorchError"))
        .and_then(|cls| cls.call1((message.clone(), code)))
    {
        Ok(err) => PyErr::from_value(err),
        Err(_) => pyo3::exceptions::PyRuntimeError::new_err(format!("{message} (exit {code})")),
    }
}

/// Runs `f` without the GIL and turns its error into a Python exception.
fn rust<T: Send>(py: Python<'_>, f: impl FnOnce() -> scorch::Result<T> + Send) -> PyResult<T> {
    py.detach(f).map_err(|e| raise(py, e))
}

fn state_of(text: &str) -> scorch::Result<FittedState> {
    FittedState::from_json(text, Path::new("<state from Python>"))
}

fn parquet_bytes(mut df: DataFrame) -> scorch::Result<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Uncompressed)
        .finish(&mut df)?;
    Ok(buf)
}

/// The command line: parses `argv` (with the program name first) and runs it as the
/// `scorch` binary would; returns the exit code. `exe` is the command that starts
/// scorch again (the scheduler's runs, crontab lines).
#[pyfunction]
#[pyo3(signature = (argv, exe=None))]
fn main(py: Python<'_>, argv: Vec<String>, exe: Option<PathBuf>) -> i32 {
    if let Some(exe) = exe {
        scorch::cli::set_self_exe(exe);
    }
    py.detach(|| {
        scorch::infer::init_threading();
        let code = match scorch::cli::Cli::try_parse_from(&argv) {
            Ok(cli) => {
                scorch::cli::init_logging(cli.log_format, cli.verbose, cli.quiet);
                scorch::cli::execute(cli).code()
            }
            Err(e) => {
                let _ = e.print();
                e.exit_code()
            }
        };
        use std::io::Write;
        let _ = std::io::stdout().flush();
        code
    })
}

/// Fits the preprocessing spec in `spec` (a YAML file) on `data`; returns the
/// state's JSON, as `scorch preprocess fit` writes it.
#[pyfunction]
fn fit(py: Python<'_>, spec: PathBuf, data: Data) -> PyResult<String> {
    rust(py, || {
        let s = scorch::preprocess::load_spec(&spec)?;
        let (lf, label) = data.lazy()?;
        Ok(scorch::preprocess::fit(&s, lf, &label)?.to_json())
    })
}

/// Checks a state's JSON (hash, layout) and returns it as `save` writes it.
#[pyfunction]
fn check_state(py: Python<'_>, text: String) -> PyResult<String> {
    rust(py, || Ok(state_of(&text)?.to_json()))
}

/// Applies a state to `data`: the `keep` columns, then the features (Float64, model
/// order), as `scorch preprocess apply`; returns Parquet bytes.
#[pyfunction]
#[pyo3(signature = (data, state, keep=Vec::new()))]
fn apply<'py>(
    py: Python<'py>,
    data: Data,
    state: String,
    keep: Vec<String>,
) -> PyResult<Bound<'py, PyBytes>> {
    let bytes = rust(py, || {
        let st = state_of(&state)?;
        let (lf, _) = data.lazy()?;
        let schema = lf.clone().collect_schema()?;
        scorch::preprocess::check_input_schema(&st.spec, &schema)?;
        parquet_bytes(scorch::preprocess::apply(lf, &st, &keep)?.collect()?)
    })?;
    Ok(PyBytes::new(py, &bytes))
}

/// The `f32` matrix a run gives the model for `data`: `(bytes, rows, columns)`.
/// A null, NaN or infinite feature is an error (exit 3), as in a run.
#[pyfunction]
fn to_matrix<'py>(
    py: Python<'py>,
    data: Data,
    state: String,
) -> PyResult<(Bound<'py, PyByteArray>, usize, usize)> {
    let (matrix, k) = rust(py, || {
        let st = state_of(&state)?;
        let (lf, label) = data.lazy()?;
        let matrix = scorch::model::to_matrix(&st, lf, &label)?;
        Ok((matrix, st.feature_names.len()))
    })?;
    let rows = matrix.len().checked_div(k).unwrap_or(0);
    let bytes: Vec<u8> = matrix.iter().flat_map(|v| v.to_le_bytes()).collect();
    Ok((PyByteArray::new(py, &bytes), rows, k))
}

/// `scorch bundle create`; returns the check's summary.
#[pyfunction]
#[pyo3(signature = (dir, model, state, name, version, outputs, format=None, description=None, force=false))]
#[allow(clippy::too_many_arguments)]
fn create_bundle(
    py: Python<'_>,
    dir: PathBuf,
    model: PathBuf,
    state: PathBuf,
    name: String,
    version: String,
    outputs: Vec<String>,
    format: Option<String>,
    description: Option<String>,
    force: bool,
) -> PyResult<String> {
    use scorch::model::create::{NewBundle, OutputArg};
    use scorch::spec::bundle::ModelFormat;
    rust(py, || {
        let outputs = outputs
            .iter()
            .map(|o| OutputArg::parse(o).map_err(scorch::Error::usage))
            .collect::<scorch::Result<Vec<_>>>()?;
        let format = match format.as_deref() {
            None => None,
            Some("torchscript") => Some(ModelFormat::Torchscript),
            Some("aoti") => Some(ModelFormat::Aoti),
            Some(other) => {
                return Err(scorch::Error::usage(format!(
                    "format {other:?}: use \"torchscript\" or \"aoti\""
                )));
            }
        };
        let checked = scorch::model::create::create(&NewBundle {
            dir,
            model,
            state,
            name,
            version,
            description,
            format,
            outputs,
            force,
        })?;
        Ok(checked.to_string())
    })
}

/// `scorch profile` of the bundle in `bundle` from `data` (a Parquet path or glob);
/// returns what it prints. The options are the library's (`ProfileOptions`),
/// checked as the command line checks its flags (exit 2).
#[pyfunction]
#[pyo3(signature = (bundle, data, *, bins=10, sketch=None, labels=None, calibration_data=None,
                    labels_data=None, labels_on=Vec::new(), score=None, thresholds=None, html=None))]
#[allow(clippy::too_many_arguments)]
fn profile_bundle(
    py: Python<'_>,
    bundle: PathBuf,
    data: String,
    bins: usize,
    sketch: Option<usize>,
    labels: Option<String>,
    calibration_data: Option<String>,
    labels_data: Option<String>,
    labels_on: Vec<String>,
    score: Option<String>,
    thresholds: Option<Vec<f64>>,
    html: Option<PathBuf>,
) -> PyResult<String> {
    let mut o = scorch::model::profile::ProfileOptions::new(bundle, data);
    o.bins = bins;
    if let Some(s) = sketch {
        o.sketch = s;
    }
    o.labels = labels;
    o.calibration_data = calibration_data;
    o.labels_data = labels_data;
    o.labels_on = labels_on;
    o.score = score;
    if let Some(t) = thresholds {
        o.thresholds = t;
    }
    o.html = html;
    rust(py, || scorch::model::profile::profile(&o))
}

/// `scorch bundle check`; returns its summary.
#[pyfunction]
fn check_bundle(py: Python<'_>, dir: PathBuf) -> PyResult<String> {
    rust(py, || Ok(scorch::model::create::check(&dir)?.to_string()))
}

/// `scorch schema KIND` as JSON text.
#[pyfunction]
fn json_schema(py: Python<'_>, kind: String) -> PyResult<String> {
    use scorch::validate::SchemaKind;
    let found = SchemaKind::ALL.into_iter().find(|k| k.name() == kind);
    match found {
        Some(k) => Ok(
            serde_json::to_string_pretty(&scorch::validate::json_schema(k))
                .expect("schema serializes"),
        ),
        None => Err(raise(
            py,
            scorch::Error::usage(format!(
                "schema {kind:?}: one of {}",
                SchemaKind::ALL.map(|k| k.name()).join(", ")
            )),
        )),
    }
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(check_state, m)?)?;
    m.add_function(wrap_pyfunction!(apply, m)?)?;
    m.add_function(wrap_pyfunction!(to_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(create_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(check_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(profile_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(json_schema, m)?)?;
    Ok(())
}
