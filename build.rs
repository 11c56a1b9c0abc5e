//! Build script.
//!
//! 1. Bakes an rpath to libtorch into every binary (the CLI and the test
//!    executables), so `scorch` runs without `LD_LIBRARY_PATH`. torch-sys exports
//!    the directory it linked against as `DEP_TCH_LIBTORCH_LIB` (its `links` key is
//!    `tch`). The same directory is passed to the code as `SCORCH_LIBTORCH_LIB`,
//!    the fallback of `infer::libtorch::lib_dir` (which prefers the folder the
//!    process's `libtorch_cpu.so` was loaded from: the Python wheel's torch).
//! 2. Compiles the AOTInductor shim (`src/infer/aoti_shim.cpp`) against the same
//!    libtorch's headers.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=src/infer/aoti_shim.cpp");
    let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB); see the README");
    };
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags,-rpath,{dir}");
    println!("cargo:rustc-env=SCORCH_LIBTORCH_LIB={dir}");
    let root = PathBuf::from(&dir).join("..");
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag("-D_GLIBCXX_USE_CXX11_ABI=1")
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("src/infer/aoti_shim.cpp")
        .compile("scorch_aoti");
}
