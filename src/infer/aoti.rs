//! AOTInductor model packages (`.pt2`, from `torch._inductor.aoti_compile_and_package`).
//!
//! tch 0.26 cannot load them; libtorch can, through
//! `torch::inductor::AOTIModelPackageLoader`. The C++ side is the small shim in
//! `aoti_shim.cpp` (a C ABI that turns every C++ exception into a message); this
//! module is its only user and gives it a safe interface: [`Package::load`] checks
//! the package's metadata against this machine before its compiled library is
//! ever loaded, and every failure is a model error (exit 4), never a crash.
//!
//! A package is compiled for one device kind and, on CPU, for the compiling
//! machine's vector instructions (`-march=native`): a package built with AVX-512
//! would die of an illegal instruction on a CPU without it, so that is checked
//! from the package's `AOTI_CPU_ISA` first.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::NonNull;

use tch::{Device, Tensor};

use crate::error::{Error, Result};

/// The model name inside a package (`data/aotinductor/<name>/`);
/// `aoti_compile_and_package` writes `model`.
const MODEL_NAME: &str = "model";

unsafe extern "C" {
    fn scorch_aoti_free_string(s: *mut c_char);
    fn scorch_aoti_metadata(
        path: *const c_char,
        model_name: *const c_char,
        err: *mut *mut c_char,
    ) -> *mut c_char;
    fn scorch_aoti_load(
        path: *const c_char,
        model_name: *const c_char,
        num_runners: usize,
        device_index: c_int,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn scorch_aoti_free(loader: *mut c_void);
    fn scorch_aoti_run(
        loader: *mut c_void,
        inputs: *const *mut c_void,
        n_inputs: usize,
        outputs: *mut *mut *mut c_void,
        n_outputs: *mut usize,
        quiet: bool,
        err: *mut *mut c_char,
    ) -> bool;
}

/// Takes ownership of a message the shim allocated.
fn take_string(s: *mut c_char) -> String {
    if s.is_null() {
        return "unknown error".to_string();
    }
    // SAFETY: the shim returns NUL-terminated malloc'd strings, freed once here.
    unsafe {
        let out = CStr::from_ptr(s).to_string_lossy().into_owned();
        scorch_aoti_free_string(s);
        out
    }
}

/// libtorch's messages can run to many lines (a C++ backtrace); keep the first
/// few meaningful ones.
fn short(msg: &str) -> String {
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Exception raised from"))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Model(format!("model path {} has a NUL byte", path.display())))
}

/// A package's metadata (`AOTI_DEVICE_KEY`, `AOTI_CPU_ISA`, `AOTI_PLATFORM`,
/// `AOTI_MACHINE`, … plus anything the exporter put in `aot_inductor.metadata`),
/// read without loading its compiled library.
pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>> {
    let p = c_path(path)?;
    let name = CString::new(MODEL_NAME).expect("no NUL");
    let mut err = std::ptr::null_mut();
    // SAFETY: valid C strings; the result or the error is owned by us.
    let out = unsafe { scorch_aoti_metadata(p.as_ptr(), name.as_ptr(), &mut err) };
    if out.is_null() {
        return Err(Error::Model(format!(
            "cannot read AOTInductor package {}: {} (is it a `.pt2` written by \
             torch._inductor.aoti_compile_and_package?)",
            path.display(),
            short(&take_string(err))
        )));
    }
    Ok(take_string(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// The device kind a package was compiled for (`cpu`, `cuda`, …).
pub fn device_key(meta: &BTreeMap<String, String>) -> &str {
    meta.get("AOTI_DEVICE_KEY")
        .map(String::as_str)
        .unwrap_or("cpu")
}

/// Checks a package's metadata against the device it is to run on and this
/// machine. Pure: `cpu_flags` are the CPU's feature flags as `/proc/cpuinfo`
/// names them.
pub fn check_metadata(
    path: &Path,
    meta: &BTreeMap<String, String>,
    device: Device,
    cpu_flags: &[String],
) -> Result<()> {
    let shown = path.display();
    let key = device_key(meta);
    let wanted = if device.is_cuda() { "cuda" } else { "cpu" };
    if key != wanted {
        let hint = if key == "cuda" && !device.is_cuda() {
            "run it on a machine with an NVIDIA GPU and `inference.device: cuda` (or `auto`), \
             or export a CPU package for this machine"
        } else {
            "export the model again for that device, or set `inference.device` to match"
        };
        return Err(Error::Model(format!(
            "AOTInductor package {shown} was compiled for {key}, but this run scores on {wanted}: \
             a package runs only on the device kind it was compiled for; {hint}"
        )));
    }
    if let Some(platform) = meta.get("AOTI_PLATFORM")
        && !platform.is_empty()
        && platform != std::env::consts::OS
    {
        return Err(Error::Model(format!(
            "AOTInductor package {shown} was compiled for {platform}, this machine runs {}",
            std::env::consts::OS
        )));
    }
    if let Some(machine) = meta.get("AOTI_MACHINE")
        && !machine.is_empty()
        && machine != std::env::consts::ARCH
    {
        return Err(Error::Model(format!(
            "AOTInductor package {shown} was compiled for {machine} CPUs, this machine is {}",
            std::env::consts::ARCH
        )));
    }
    if key == "cpu" {
        let isa = meta.get("AOTI_CPU_ISA").map(String::as_str).unwrap_or("");
        let missing = missing_cpu_features(isa, cpu_flags);
        if !missing.is_empty() {
            return Err(Error::Model(format!(
                "AOTInductor package {shown} was compiled for CPUs with {isa}, but this CPU lacks \
                 {}: its code would stop on an illegal instruction; export the package on a \
                 machine like this one",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// The CPU flags (as `/proc/cpuinfo` names them) an `AOTI_CPU_ISA` needs that
/// `cpu_flags` lacks. Names are torch's `cpu_vec_isa` names, upper-cased.
fn missing_cpu_features(isa: &str, cpu_flags: &[String]) -> Vec<String> {
    let mut need: Vec<&str> = Vec::new();
    for token in isa.split_whitespace() {
        match token {
            "AVX2" => need.extend(["avx2", "fma"]),
            "AVX512" => need.extend(["avx512f", "avx512dq", "avx512vl", "avx512bw", "fma"]),
            "AVX512_VNNI" => need.push("avx512_vnni"),
            "AMX_TILE" => need.extend(["amx_tile", "amx_bf16", "amx_int8"]),
            _ => {}
        }
    }
    need.dedup();
    need.into_iter()
        .filter(|f| !cpu_flags.iter().any(|c| c == f))
        .map(str::to_string)
        .collect()
}

/// Checks a package against the device it is to run on (`None`: the device kind
/// it was compiled for) and this machine, from its metadata alone: nothing of it
/// is loaded (`scorch validate` and [`Package::load`] both use this).
pub fn check_package(path: &Path, device: Option<Device>) -> Result<()> {
    let meta = read_metadata(path)?;
    let device = device.unwrap_or(if device_key(&meta) == "cuda" {
        Device::Cuda(0)
    } else {
        Device::Cpu
    });
    check_metadata(path, &meta, device, &cpu_flags())
}

/// This CPU's feature flags from `/proc/cpuinfo` (empty where there is none).
pub fn cpu_flags() -> Vec<String> {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("flags"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.split_whitespace().map(str::to_string).collect())
        })
        .unwrap_or_default()
}

/// A package unpacked for loading: `$TMPDIR/scorch-aoti-<unique>.pid<PID>`,
/// removed when dropped; the folders of killed runs are removed by the next load.
/// (libtorch's own unpacking would leave an anonymous `aotinductor_*` folder, as
/// large as the model's weights, behind every killed run.)
struct Unpacked(std::path::PathBuf);

impl Unpacked {
    const PREFIX: &str = "scorch-aoti-";

    fn new(path: &Path) -> Result<Self> {
        crate::storage::remove_dead_temp_folders(Self::PREFIX);
        let dir = Unpacked(crate::storage::create_temp_folder(Self::PREFIX)?);
        let file = std::fs::File::open(path).map_err(|source| super::InferError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        zip::ZipArchive::new(file)
            .and_then(|mut z| z.extract(&dir.0))
            .map_err(|e| {
                Error::Model(format!(
                    "cannot unpack AOTInductor package {} into {}: {e}",
                    path.display(),
                    dir.0.display()
                ))
            })?;
        Ok(dir)
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loaded AOTInductor package.
pub struct Package {
    loader: NonNull<c_void>,
    /// Dropped after the loader (fields drop after `Drop::drop`).
    _unpacked: Unpacked,
}

// SAFETY: the loader's `run` is thread-safe: its model container hands each
// concurrent call its own model instance (`num_runners` of them) under a lock.
unsafe impl Send for Package {}
unsafe impl Sync for Package {}

impl Package {
    /// Loads a package to run on `device` with `runners` concurrent model
    /// instances. Checks its metadata first (device kind, platform, CPU
    /// instructions); loads `libtorch.so`, which the package's library needs.
    pub fn load(path: &Path, device: Device, runners: usize) -> Result<Self> {
        check_package(path, Some(device))?;
        super::libtorch::load().map_err(|e| {
            Error::Model(format!(
                "AOTInductor package {} needs libtorch.so, which could not be loaded: {e} \
                 (a `.pt2` needs the full torch install; see docs/reference/bundles.md)",
                path.display()
            ))
        })?;
        let unpacked = Unpacked::new(path)?;
        let p = c_path(&unpacked.0)?;
        let name = CString::new(MODEL_NAME).expect("no NUL");
        let index = match device {
            Device::Cuda(n) => n as c_int,
            _ => -1,
        };
        let mut err = std::ptr::null_mut();
        // SAFETY: valid C strings; the loader pointer is owned by the Package.
        let loader =
            unsafe { scorch_aoti_load(p.as_ptr(), name.as_ptr(), runners.max(1), index, &mut err) };
        match NonNull::new(loader) {
            Some(loader) => Ok(Package {
                loader,
                _unpacked: unpacked,
            }),
            None => Err(Error::Model(format!(
                "cannot load AOTInductor package {}: {}",
                path.display(),
                short(&take_string(err))
            ))),
        }
    }

    /// Runs the model on `inputs`; returns its output tensors or libtorch's message.
    /// `quiet` keeps the package's runtime from printing that message to stderr
    /// itself (it writes to `std::cerr`, which is process-wide: only for a call no
    /// other thread runs beside, such as the load-time probe).
    pub fn run(&self, inputs: &[&Tensor], quiet: bool) -> std::result::Result<Vec<Tensor>, String> {
        let ptrs: Vec<*mut c_void> = inputs.iter().map(|t| t.as_ptr() as *mut c_void).collect();
        let mut outs: *mut *mut c_void = std::ptr::null_mut();
        let mut n = 0usize;
        let mut err = std::ptr::null_mut();
        // SAFETY: the inputs are live tensors the shim only reads (it copies the
        // handles); on success it returns `n` new tensors we take ownership of.
        let ok = unsafe {
            scorch_aoti_run(
                self.loader.as_ptr(),
                ptrs.as_ptr(),
                ptrs.len(),
                &mut outs,
                &mut n,
                quiet,
                &mut err,
            )
        };
        if !ok {
            return Err(short(&take_string(err)));
        }
        // SAFETY: `outs` holds `n` `at::Tensor*` allocated with `new`, which
        // `Tensor::from_ptr` adopts (tch deletes them); the array is malloc'd.
        unsafe {
            let tensors = (0..n)
                .map(|i| Tensor::from_ptr(*outs.add(i) as *mut _))
                .collect();
            libc::free(outs as *mut c_void);
            Ok(tensors)
        }
    }
}

impl Drop for Package {
    fn drop(&mut self) {
        // SAFETY: the loader was created by `scorch_aoti_load` and is freed once.
        unsafe { scorch_aoti_free(self.loader.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn flags(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn metadata_checks_name_the_mismatch() {
        let p = Path::new("m.pt2");
        let cpu = meta(&[
            ("AOTI_DEVICE_KEY", "cpu"),
            ("AOTI_PLATFORM", "linux"),
            ("AOTI_MACHINE", "x86_64"),
            ("AOTI_CPU_ISA", "AVX512 AVX512_VNNI"),
        ]);
        let avx512 = flags("fma avx2 avx512f avx512dq avx512vl avx512bw avx512_vnni");
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            check_metadata(p, &cpu, Device::Cpu, &avx512).unwrap();
        }
        // A CPU package on CUDA, and a CUDA package on CPU.
        let e = check_metadata(p, &cpu, Device::Cuda(0), &avx512).unwrap_err();
        assert_eq!(e.exit_code() as i32, 4);
        assert!(e.to_string().contains("compiled for cpu"), "{e}");
        let cuda = meta(&[("AOTI_DEVICE_KEY", "cuda"), ("AOTI_CPU_ISA", "")]);
        let e = check_metadata(p, &cuda, Device::Cpu, &avx512).unwrap_err();
        assert!(
            e.to_string()
                .contains("compiled for cuda, but this run scores on cpu"),
            "{e}"
        );
        // AVX-512 code on an AVX2-only CPU.
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            let e = check_metadata(p, &cpu, Device::Cpu, &flags("fma avx2")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("lacks avx512f, avx512dq"), "{msg}");
            assert!(msg.contains("avx512_vnni"), "{msg}");
        }
        let other = meta(&[("AOTI_DEVICE_KEY", "cpu"), ("AOTI_MACHINE", "riscv128")]);
        let e = check_metadata(p, &other, Device::Cpu, &avx512).unwrap_err();
        assert!(e.to_string().contains("riscv128"), "{e}");
        assert_eq!(
            missing_cpu_features("AVX2", &flags("avx2 fma")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_file_that_is_not_a_package_is_a_model_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk.pt2");
        std::fs::write(&p, b"not a zip archive").unwrap();
        let e = read_metadata(&p).unwrap_err();
        assert_eq!(e.exit_code() as i32, 4);
        assert!(
            e.to_string().contains("cannot read AOTInductor package"),
            "{e}"
        );
        assert!(Package::load(&p, Device::Cpu, 1).is_err());
    }
}
