//! LibTorch inference through `tch`.
//!
//! One model is shared by every worker: a TorchScript [`tch::CModule`] (it is
//! `Send + Sync`) or an AOTInductor package ([`aoti::Package`], whose container
//! serves one model instance per worker). The feature matrix is a contiguous
//! row-major `f32` buffer, cut into batches that rayon workers score in
//! parallel, each inside its own `no_grad` guard.
//!
//! Threads are chosen deliberately: `threads` rayon workers, each running its
//! batches with **one** libtorch intra-op thread, so libtorch's OpenMP pool never
//! competes with rayon (two spinning pools on the same cores collapse throughput;
//! see docs/concepts/engine.md). `OMP_WAIT_POLICY=PASSIVE` is also set at start-up unless the
//! user set it.

pub mod aoti;
pub mod libtorch;
pub mod tensorize;

use std::path::Path;

use rayon::prelude::*;
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::error::{Error, LayerError, Result};
use crate::spec::bundle::{ModelFormat, OutputSpec};

/// The errors of the inference layer: LibTorch refused or failed an operation
/// (exit 4), with its error as the source.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// A LibTorch operation failed.
    #[error("{source}")]
    Torch {
        #[from]
        source: tch::TchError,
    },
    /// A model file could not be opened.
    #[error("cannot read model file {}: {source}", .path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A TorchScript file could not be loaded (the first line of LibTorch's
    /// message, and a hint where one helps).
    #[error("cannot load TorchScript model {}: {}{hint}", .path.display(), first_line(&.source.to_string()))]
    Load {
        path: std::path::PathBuf,
        hint: &'static str,
        #[source]
        source: tch::TchError,
    },
}

impl LayerError for InferError {
    fn kind(&self) -> crate::error::Kind {
        crate::error::Kind::Model
    }
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        InferError::from(e).into()
    }
}
use crate::spec::inference::{DeviceChoice, Precision};

impl DeviceChoice {
    /// The device to run on. `auto` falls back to CPU; `cuda` without CUDA is a config error (exit 2).
    ///
    /// Loads libtorch's CUDA half first ([`libtorch::load`]): without it libtorch
    /// never sees a GPU.
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => match cuda_unavailable() {
                None => Ok(Device::Cuda(0)),
                Some(why) => {
                    tracing::debug!("device auto: scoring on CPU ({why})");
                    Ok(Device::Cpu)
                }
            },
            Self::Cuda(n) => {
                if let Some(why) = cuda_unavailable() {
                    return Err(Error::usage(format!(
                        "inference.device is cuda:{n}, but CUDA is not available on this machine: \
                         {why} (use `device: auto` to fall back to CPU)"
                    )));
                }
                let count = tch::Cuda::device_count() as usize;
                if n >= count {
                    return Err(Error::usage(format!(
                        "inference.device is cuda:{n}, but this machine has {count} CUDA device(s)"
                    )));
                }
                Ok(Device::Cuda(n))
            }
        }
    }
}

/// Why CUDA cannot be used here, or `None` when it can. Loads libtorch's CUDA
/// half first ([`libtorch::load`]): without it libtorch never sees a GPU.
fn cuda_unavailable() -> Option<String> {
    if let Err(e) = libtorch::load() {
        return Some(format!(
            "libtorch's CUDA libraries could not be loaded: {e}"
        ));
    }
    if tch::Cuda::is_available() {
        return None;
    }
    Some(if libtorch::has_cuda_build() {
        "no CUDA device or driver was found".to_string()
    } else {
        "this libtorch was built without CUDA".to_string()
    })
}

impl Precision {
    fn kind(self) -> Kind {
        match self {
            Self::F32 => Kind::Float,
            Self::Bf16 => Kind::BFloat16,
            Self::F16 => Kind::Half,
        }
    }
}

/// Sets process-wide threading and memory defaults for libtorch. Call once, early
/// in `main`, before any other thread exists.
///
/// libtorch allocates its tensors with the C library's `malloc`. glibc serves blocks
/// of a few MiB (a batch's activations) with `mmap` and returns them with `munmap`,
/// so every batch page-faults its memory back in; raising the mmap and trim
/// thresholds keeps those blocks in the heap for reuse (the process's own Rust
/// allocations go to jemalloc and are not affected).
pub fn init_threading() {
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        // SAFETY: called from `main` before any thread is spawned.
        unsafe { std::env::set_var("OMP_WAIT_POLICY", "PASSIVE") };
    }
    if std::env::var_os("AOTI_RUNTIME_CHECK_INPUTS").is_none() {
        // AOTInductor packages check their inputs' dtype and shape only when this is
        // set; unchecked, a batch of the wrong width would be read out of bounds.
        // SAFETY: called from `main` before any thread is spawned.
        unsafe { std::env::set_var("AOTI_RUNTIME_CHECK_INPUTS", "1") };
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: mallopt only changes allocator tuning; no allocation is in flight.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        }
    }
}

/// The number of cores available to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The loaded model.
enum Backend {
    TorchScript(CModule),
    Aoti(aoti::Package),
}

impl Backend {
    /// Loads a model file in `format` on the CPU in f32, for a probe.
    fn load_cpu(path: &Path, format: ModelFormat) -> Result<Self> {
        match format {
            ModelFormat::Torchscript => load_torchscript(path, Device::Cpu, Precision::F32),
            ModelFormat::Aoti => Ok(Backend::Aoti(aoti::Package::load(path, Device::Cpu, 1)?)),
        }
    }

    /// The model's output tensors for `input` (`rows` rows), or libtorch's error.
    fn run(
        &self,
        input: Tensor,
        rows: usize,
        probe: bool,
    ) -> std::result::Result<Vec<Tensor>, String> {
        match self {
            Backend::TorchScript(module) => module
                .forward_is(&[IValue::Tensor(input)])
                .map_err(|e| first_line(&e.to_string()))
                .and_then(|out| tensors_of(out).map_err(|e| e.to_string())),
            Backend::Aoti(package) if rows < 2 => {
                // A package exported with a dynamic batch dimension takes 2 rows or
                // more (torch.export specializes sizes 0 and 1): pad, then drop the pad.
                let padded = Tensor::cat(&[&input, &input], 0);
                Ok(package
                    .run(&[&padded], probe)?
                    .into_iter()
                    .map(|t| t.narrow(0, 0, rows as i64))
                    .collect())
            }
            Backend::Aoti(package) => package.run(&[&input], probe),
        }
    }
}

/// Runs the model in `path` (`format`, its hash already checked or about to be
/// pinned) on the CPU with batches of 2 and of [`PROBE_ROWS`] rows of `n_features`
/// zeros, and returns each output's per-row shape, as `bundle.yaml`'s
/// `outputs[].shape` holds it: `[]` for an output of shape `[rows]`, `[k]` for
/// `[rows, k]`. Both batches must give the same per-row shapes, so a model whose
/// batch size was fixed when it was exported is refused here, not in a run. A model
/// that cannot run on such a matrix, or whose outputs scorch cannot write (more
/// than two dimensions, a batch dimension that does not follow the rows), is a
/// model error (exit 4).
pub fn probe_shapes(path: &Path, format: ModelFormat, n_features: usize) -> Result<Vec<Vec<i64>>> {
    tch::set_num_threads(1);
    let backend = Backend::load_cpu(path, format)?;
    let _guard = tch::no_grad_guard();
    let mut shapes: Option<Vec<Vec<i64>>> = None;
    for rows in [2, PROBE_ROWS] {
        let input = Tensor::zeros([rows as i64, n_features as i64], (Kind::Float, Device::Cpu));
        let tensors = backend.run(input, rows, true).map_err(|e| {
            Error::Model(format!(
                "{}: the model failed on a batch of {rows} rows × {n_features} features: {e}{}",
                path.display(),
                if rows == 2 {
                    ""
                } else {
                    " (it ran on 2 rows: was it exported with a fixed batch size? \
                     export it with a dynamic batch dimension)"
                }
            ))
        })?;
        let mut per_row = Vec::with_capacity(tensors.len());
        for (i, t) in tensors.iter().enumerate() {
            let size = t.size();
            if size.first() != Some(&(rows as i64)) || size.len() > 2 {
                return Err(Error::Model(format!(
                    "{}: output {i} has shape {size:?} for a batch of {rows} rows; scorch writes \
                     outputs of shape [rows] (one score per row) or [rows, k] (k scores per row)",
                    path.display()
                )));
            }
            per_row.push(size[1..].to_vec());
        }
        if let Some(first) = &shapes
            && *first != per_row
        {
            return Err(Error::Model(format!(
                "{}: the outputs' per-row shapes are {first:?} for 2 rows but {per_row:?} for \
                 {rows} rows: export the model with a dynamic batch dimension",
                path.display()
            )));
        }
        shapes = Some(per_row);
    }
    Ok(shapes.unwrap_or_default())
}

/// The rows of [`probe_shapes`]'s second batch (odd, and not a size a model is
/// usually exported with).
pub const PROBE_ROWS: usize = 7;

/// A loaded model, ready to score feature matrices.
pub struct Engine {
    backend: Backend,
    device: Device,
    precision: Precision,
    n_features: usize,
    outputs: Vec<OutputSpec>,
    /// The inference workers (also used for tensorizing).
    pool: rayon::ThreadPool,
    /// Batches scored at once: `threads` on CPU, 1 on CUDA (the device is the parallelism).
    workers: usize,
}

impl Engine {
    /// Loads a model in `format` (the bundle's hash must already be verified) on
    /// the device `device` resolves to, and checks its outputs against the bundle
    /// with a two-row probe. An AOTInductor package runs on the device kind it was
    /// compiled for: `auto` follows the package; an explicit device that differs is
    /// a model error (exit 4).
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        path: &Path,
        format: ModelFormat,
        device: DeviceChoice,
        precision: Precision,
        threads: usize,
        n_features: usize,
        outputs: &[OutputSpec],
    ) -> Result<Self> {
        // One libtorch intra-op thread per worker: parallelism comes from running
        // `threads` batches at once, so libtorch's pool never competes with ours.
        tch::set_num_threads(1);
        let workers = |device: Device| if device.is_cuda() { 1 } else { threads.max(1) };
        let (backend, device) = match format {
            ModelFormat::Torchscript => {
                let device = device.resolve()?;
                (load_torchscript(path, device, precision)?, device)
            }
            ModelFormat::Aoti => {
                if precision != Precision::F32 {
                    return Err(Error::Model(format!(
                        "inference.precision is {}, but {} is an AOTInductor package, which runs \
                         in the dtype it was compiled for: export it in that precision and score \
                         with `precision: f32`",
                        precision.name(),
                        path.display()
                    )));
                }
                let device = aoti_device(path, device)?;
                let package = aoti::Package::load(path, device, workers(device))?;
                (Backend::Aoti(package), device)
            }
        };
        let workers = workers(device);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("scorch-infer-{i}"))
            // OpenMP's thread count is per thread: an AOTInductor kernel's own
            // `#pragma omp parallel` in a worker would otherwise start a team as
            // large as the machine (ATen sets it lazily, only for its own ops).
            .start_handler(|_| tch::set_num_threads(1))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start inference threads: {e}")))?;
        let engine = Engine {
            backend,
            device,
            precision,
            n_features,
            outputs: outputs.to_vec(),
            pool,
            workers,
        };
        engine
            .forward(&vec![0f32; 2 * n_features], 2, true)
            .map_err(|e| e.context(format!("model {}", path.display())))?;
        Ok(engine)
    }

    /// The device the model runs on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Total number of score columns.
    pub fn width(&self) -> usize {
        self.outputs.iter().map(OutputSpec::width).sum()
    }

    /// Scores `rows` rows of a row-major matrix; returns the scores row-major
    /// (`rows × width`), outputs in bundle order.
    /// `probe`: the load-time probe, whose failure is reported by the caller (an
    /// AOTInductor package's runtime would also print it to stderr itself).
    fn forward(&self, features: &[f32], rows: usize, probe: bool) -> Result<Vec<f32>> {
        let _guard = tch::no_grad_guard();
        let host = Tensor::from_slice(features).view([rows as i64, self.n_features as i64]);
        let kind = self.precision.kind();
        let input = if self.device.is_cuda() {
            // Page-locked host memory lets the copy run asynchronously to the device.
            host.f_pin_memory(self.device)
                .and_then(|t| t.f_to_device_(self.device, kind, true, false))
        } else if kind != Kind::Float {
            host.f_to_dtype(kind, false, false)
        } else {
            Ok(host)
        };
        let input = input.map_err(|e| {
            Error::Model(format!(
                "cannot move a batch of {rows} rows to {:?}: {}",
                self.device,
                first_line(&e.to_string())
            ))
        })?;
        let failed = |e: String| {
            Error::Model(format!(
                "forward pass failed on a batch of {rows} rows × {} features: {e}",
                self.n_features,
            ))
        };
        let tensors = self.backend.run(input, rows, probe).map_err(failed)?;
        if tensors.len() != self.outputs.len() {
            return Err(Error::Model(format!(
                "model returned {} output(s), the bundle declares {}",
                tensors.len(),
                self.outputs.len()
            )));
        }
        let width = self.width();
        let mut scores = vec![0f32; rows * width];
        let mut offset = 0;
        for (t, spec) in tensors.iter().zip(&self.outputs) {
            let size = t.size();
            let w = spec.width();
            let ok = match size.as_slice() {
                [n] => *n == rows as i64 && w == 1 && spec.shape.len() <= 1,
                [n, k] => *n == rows as i64 && *k == w as i64,
                _ => false,
            };
            if !ok {
                return Err(Error::Model(format!(
                    "output `{}` has shape {size:?} for {rows} rows, but the bundle declares per-row shape {:?} \
                     (expected [{rows}] or [{rows}, {w}])",
                    spec.name, spec.shape
                )));
            }
            let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
            let v = Vec::<f32>::try_from(t.view([-1]))?;
            for r in 0..rows {
                scores[r * width + offset..r * width + offset + w]
                    .copy_from_slice(&v[r * w..(r + 1) * w]);
            }
            offset += w;
        }
        Ok(scores)
    }

    /// Runs `op` on the inference workers' pool (for work that should share their
    /// threads rather than add more, such as tensorizing).
    pub fn install<R: Send>(&self, op: impl FnOnce() -> R + Send) -> R {
        self.pool.install(op)
    }

    /// Scores a row-major feature matrix in batches of `batch_size`, `threads`
    /// batches at once on CPU (one at a time on CUDA). Returns one `Vec<f32>` per
    /// score column.
    pub fn score(&self, features: &[f32], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let k = self.n_features;
        assert_eq!(features.len() % k.max(1), 0, "feature buffer is whole rows");
        let rows = features.len().checked_div(k).unwrap_or(0);
        let width = self.width();
        let mut out = vec![0f32; rows * width];
        let step = batch_size.max(1);
        let run = |x: &[f32], y: &mut [f32]| {
            let s = self.forward(x, x.len() / k.max(1), false)?;
            y.copy_from_slice(&s);
            Ok::<_, Error>(())
        };
        if self.workers == 1 {
            for (x, y) in features.chunks(step * k).zip(out.chunks_mut(step * width)) {
                run(x, y)?;
            }
        } else {
            self.pool.install(|| {
                features
                    .par_chunks(step * k)
                    .zip(out.par_chunks_mut(step * width))
                    .try_for_each(|(x, y)| run(x, y))
            })?;
        }
        let mut cols = vec![Vec::with_capacity(rows); width];
        for r in 0..rows {
            for (c, col) in cols.iter_mut().enumerate() {
                col.push(out[r * width + c]);
            }
        }
        Ok(cols)
    }
}

/// Loads a TorchScript model on `device` in `precision`.
fn load_torchscript(path: &Path, device: Device, precision: Precision) -> Result<Backend> {
    let mut module = CModule::load_on_device(path, device).map_err(|e| {
        let hint = if path.extension().is_some_and(|x| x == "pt2") {
            " (a `.pt2` file is an AOTInductor package: set `format: aoti` in bundle.yaml)"
        } else {
            ""
        };
        InferError::Load {
            path: path.to_path_buf(),
            hint,
            source: e,
        }
    })?;
    module.set_eval();
    if precision != Precision::F32 {
        // `CModule::to` panics on a libtorch error; turn that into a model error.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            module.to(device, precision.kind(), false)
        }))
        .map_err(|_| {
            Error::Model(format!(
                "cannot convert model {} to {}",
                path.display(),
                precision.name()
            ))
        })?;
    }
    Ok(Backend::TorchScript(module))
}

/// The device an AOTInductor package runs on: `auto` follows the package's
/// device kind; a CUDA package where CUDA is not available is a model error.
fn aoti_device(path: &Path, choice: DeviceChoice) -> Result<Device> {
    if choice != DeviceChoice::Auto {
        return choice.resolve();
    }
    let meta = aoti::read_metadata(path)?;
    if aoti::device_key(&meta) != "cuda" {
        return Ok(Device::Cpu);
    }
    match cuda_unavailable() {
        None => Ok(Device::Cuda(0)),
        Some(why) => Err(Error::Model(format!(
            "AOTInductor package {} was compiled for cuda, but CUDA is not available on this \
             machine ({why}); a package runs only on the device kind it was compiled for: \
             export a CPU package for this machine",
            path.display()
        ))),
    }
}

/// The output tensors of a TorchScript model's result.
fn tensors_of(out: IValue) -> Result<Vec<Tensor>> {
    match out {
        IValue::Tensor(t) => Ok(vec![t]),
        IValue::Tuple(v) | IValue::GenericList(v) => v
            .into_iter()
            .map(|x| match x {
                IValue::Tensor(t) => Ok(t),
                other => Err(Error::Model(format!(
                    "model returned a tuple holding a non-tensor ({other:?})"
                ))),
            })
            .collect(),
        IValue::TensorList(v) => Ok(v),
        other => Err(Error::Model(format!(
            "model returned {other:?}, expected a tensor or a tuple of tensors"
        ))),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_libtorch_cannot_load_is_exit_4_with_libtorchs_error_as_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.pt");
        std::fs::write(&path, b"not a TorchScript archive").unwrap();
        let outputs = [OutputSpec {
            name: "score".into(),
            shape: vec![],
        }];
        let e = Engine::load(
            &path,
            ModelFormat::Torchscript,
            DeviceChoice::Cpu,
            Precision::F32,
            1,
            3,
            &outputs,
        )
        .err()
        .expect("a garbage file does not load");
        assert_eq!(e.exit_code(), crate::error::ExitCode::Model);
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "model bundle: cannot load TorchScript model {}: ",
                path.display()
            )),
            "{text}"
        );
        assert!(!text.contains('\n'), "one line: {text}");
        // The chain reaches LibTorch's own error, with its whole message.
        let mut at: Option<&dyn std::error::Error> = Some(&e);
        let mut torch = None;
        while let Some(x) = at {
            if let Some(t) = x.downcast_ref::<tch::TchError>() {
                torch = Some(t.to_string());
            }
            at = x.source();
        }
        let torch = torch.expect("a tch::TchError in the source chain");
        assert!(torch.len() >= text.len() - 60, "{torch}");
    }
}
