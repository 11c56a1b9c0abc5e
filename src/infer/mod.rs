//! LibTorch inference through `tch`.
//!
//! One [`tch::CModule`] is shared by every worker (it is `Send + Sync`); the
//! feature matrix is a contiguous row-major `f32` buffer, cut into batches that
//! rayon workers score in parallel, each inside its own `no_grad` guard.
//!
//! Threads are chosen deliberately: `threads` rayon workers, each running its
//! batches with **one** libtorch intra-op thread, so libtorch's OpenMP pool never
//! competes with rayon (two spinning pools on the same cores collapse throughput;
//! see the README). `OMP_WAIT_POLICY=PASSIVE` is also set at start-up unless the
//! user set it.

pub mod tensorize;

use std::path::Path;

use rayon::prelude::*;
use tch::{CModule, Device, IValue, Kind, Tensor};

use crate::error::{Error, Result};
use crate::model::OutputSpec;

/// The `inference.device` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    Cpu,
    Auto,
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `cpu`, `auto`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> std::result::Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "auto" => Ok(Self::Auto),
            "cuda" => Ok(Self::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("{s:?} is not a device: use cpu, auto, cuda or cuda:N")),
        }
    }

    /// The device to run on. `auto` falls back to CPU; `cuda` without CUDA is a config error (exit 2).
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => Ok(if tch::Cuda::is_available() {
                Device::Cuda(0)
            } else {
                Device::Cpu
            }),
            Self::Cuda(n) => {
                if !tch::Cuda::is_available() {
                    return Err(Error::usage(format!(
                        "inference.device is cuda:{n}, but CUDA is not available on this machine \
                         (use `device: auto` to fall back to CPU)"
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

/// Sets process-wide threading defaults for libtorch. Call once, early in `main`,
/// before any other thread exists.
pub fn init_threading() {
    if std::env::var_os("OMP_WAIT_POLICY").is_none() {
        // SAFETY: called from `main` before any thread is spawned.
        unsafe { std::env::set_var("OMP_WAIT_POLICY", "PASSIVE") };
    }
}

/// The number of cores available to this process.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A loaded model, ready to score feature matrices.
pub struct Engine {
    module: CModule,
    device: Device,
    n_features: usize,
    outputs: Vec<OutputSpec>,
}

impl Engine {
    /// Loads a TorchScript model (the bundle's hash must already be verified) and
    /// checks its outputs against the bundle with a two-row probe.
    pub fn load(
        path: &Path,
        device: Device,
        n_features: usize,
        outputs: &[OutputSpec],
    ) -> Result<Self> {
        let mut module = CModule::load_on_device(path, device).map_err(|e| {
            Error::Model(format!(
                "cannot load TorchScript model {}: {}",
                path.display(),
                first_line(&e.to_string())
            ))
        })?;
        module.set_eval();
        let engine = Engine {
            module,
            device,
            n_features,
            outputs: outputs.to_vec(),
        };
        engine
            .forward(&vec![0f32; 2 * n_features], 2)
            .map_err(|e| e.context(format!("model {}", path.display())))?;
        Ok(engine)
    }

    /// Total number of score columns.
    pub fn width(&self) -> usize {
        self.outputs.iter().map(OutputSpec::width).sum()
    }

    /// Scores `rows` rows of a row-major matrix; returns the scores row-major
    /// (`rows × width`), outputs in bundle order.
    fn forward(&self, features: &[f32], rows: usize) -> Result<Vec<f32>> {
        let _guard = tch::no_grad_guard();
        let input = Tensor::from_slice(features)
            .view([rows as i64, self.n_features as i64])
            .to_device(self.device);
        let out = self
            .module
            .forward_is(&[IValue::Tensor(input)])
            .map_err(|e| {
                Error::Model(format!(
                    "forward pass failed on a batch of {rows} rows × {} features: {}",
                    self.n_features,
                    first_line(&e.to_string())
                ))
            })?;
        let tensors: Vec<Tensor> = match out {
            IValue::Tensor(t) => vec![t],
            IValue::Tuple(v) | IValue::GenericList(v) => v
                .into_iter()
                .map(|x| match x {
                    IValue::Tensor(t) => Ok(t),
                    other => Err(Error::Model(format!(
                        "model returned a tuple holding a non-tensor ({other:?})"
                    ))),
                })
                .collect::<Result<_>>()?,
            IValue::TensorList(v) => v,
            other => {
                return Err(Error::Model(format!(
                    "model returned {other:?}, expected a tensor or a tuple of tensors"
                )));
            }
        };
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

    /// Scores a row-major feature matrix in batches of `batch_size`, with `threads`
    /// workers on CPU (one on CUDA). Returns one `Vec<f32>` per score column.
    pub fn score(
        &self,
        features: &[f32],
        batch_size: usize,
        threads: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let k = self.n_features;
        assert_eq!(features.len() % k.max(1), 0, "feature buffer is whole rows");
        let rows = features.len().checked_div(k).unwrap_or(0);
        let width = self.width();
        let mut out = vec![0f32; rows * width];
        let threads = if self.device.is_cuda() {
            1
        } else {
            threads.max(1)
        };
        tch::set_num_threads(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("scorch-infer-{i}"))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start inference threads: {e}")))?;
        pool.install(|| {
            features
                .par_chunks(batch_size * k)
                .zip(out.par_chunks_mut(batch_size * width))
                .try_for_each(|(x, y)| {
                    let n = x.len() / k;
                    let s = self.forward(x, n)?;
                    y.copy_from_slice(&s);
                    Ok::<_, Error>(())
                })
        })?;
        let mut cols = vec![Vec::with_capacity(rows); width];
        for r in 0..rows {
            for (c, col) in cols.iter_mut().enumerate() {
                col.push(out[r * width + c]);
            }
        }
        Ok(cols)
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}
