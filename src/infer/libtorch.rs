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
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The libtorch library folder the build linked against (the binary's rpath).
const BUILT_WITH: &str = env!("SCORCH_LIBTORCH_LIB");

/// The folder of the `libtorch_cpu.so` this process runs with: where the dynamic
/// loader found it (the binary's rpath, or the torch package the Python wheel
/// loaded it from), read from `/proc/self/maps`; else the folder of the build.
/// `libtorch.so` and the CUDA half are loaded from here, so a process never
/// mixes two installs of libtorch.
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        std::fs::read_to_string("/proc/self/maps")
            .ok()
            .and_then(|maps| loaded_dir(&maps))
            .unwrap_or_else(|| PathBuf::from(BUILT_WITH))
    })
}

/// The folder of the first `libtorch_cpu.so` mapped in `/proc/self/maps` text.
fn loaded_dir(maps: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(Path::new)
        .find(|p| p.file_name().is_some_and(|n| n == "libtorch_cpu.so"))
        .and_then(|p| p.parent())
        .map(Path::to_path_buf)
}

/// Loads `libtorch.so` (with `libtorch_cuda.so` where the install has it) into
/// the process with global symbols, once. The error says which library failed
/// and why (the dynamic loader's message).
pub fn load() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let full = lib_dir().join("libtorch.so");
            open(&full.to_string_lossy()).or_else(|first| open("libtorch.so").map_err(|_| first))
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
    lib_dir().join("libtorch_cuda.so").exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_is_where_libtorch_cpu_is_mapped() {
        let maps = "7f00-7f01 r--p 00000000 fd:01 12 /usr/lib/libc.so.6\n\
                    7f02-7f03 r-xp 00001000 fd:01 13 /venv/site-packages/torch/lib/libtorch_cpu.so\n\
                    7f04-7f05 rw-p 00000000 00:00 0 \n";
        assert_eq!(
            loaded_dir(maps),
            Some(PathBuf::from("/venv/site-packages/torch/lib"))
        );
        assert_eq!(
            loaded_dir("7f00-7f01 r--p 0 fd:01 12 /lib/libc.so.6\n"),
            None
        );
        // This test binary runs with the libtorch it was linked against.
        assert!(
            lib_dir().join("libtorch_cpu.so").is_file(),
            "{}",
            lib_dir().display()
        );
    }
}
