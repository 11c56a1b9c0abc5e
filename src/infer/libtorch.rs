//! Loading the rest of libtorch on demand.
//!
//! `scorch` links `libtorch_cpu.so` only: the linker drops `libtorch_cuda.so`
//! (nothing references its symbols), so a plain build never sees a GPU, and
//! AOTInductor packages, whose compiled library needs `libtorch.so`, would not
//! load. Linking them eagerly would make every run (CPU ones too) load the CUDA
//! libraries, and a machine without them could not start `scorch` at all. So
//! `libtorch.so`, which pulls in `libtorch_cuda.so` where the install has it, is
//! `dlopen`ed here, once, when a run asks for CUDA or loads a `.pt2` package.
//!
//! libtorch decides once whether CUDA exists (its CUDA hooks are looked up on
//! the first CUDA query and never again), so [`load`] must run before any CUDA
//! query: `DeviceChoice::resolve` calls it first.

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

/// The libtorch library folder this binary was built against (also its rpath).
pub const LIB_DIR: &str = env!("SCORCH_LIBTORCH_LIB");

/// Loads `libtorch.so` (with `libtorch_cuda.so` where the install has it) into
/// the process with global symbols, once. The error says which library failed
/// and why (the dynamic loader's message).
pub fn load() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let full = format!("{LIB_DIR}/libtorch.so");
            open(&full).or_else(|first| open("libtorch.so").map_err(|_| first))
        })
        .clone()
}

fn open(name: &str) -> Result<(), String> {
    let c = CString::new(name).map_err(|_| format!("{name:?} has a NUL byte"))?;
    // SAFETY: a valid C string; the handle is deliberately never closed (the
    // libraries stay loaded for the life of the process, as linked ones would).
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        // SAFETY: dlerror returns a thread-local C string or NULL.
        let msg = unsafe {
            let e = libc::dlerror();
            if e.is_null() {
                "unknown dynamic loader error".to_string()
            } else {
                CStr::from_ptr(e).to_string_lossy().into_owned()
            }
        };
        return Err(msg);
    }
    Ok(())
}

/// Whether this libtorch has a CUDA half at all (`libtorch_cuda.so` beside it).
pub fn has_cuda_build() -> bool {
    std::path::Path::new(LIB_DIR)
        .join("libtorch_cuda.so")
        .exists()
}
