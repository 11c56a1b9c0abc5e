//! The `scorch` binary: parse arguments, set up logging, run, exit with the
//! documented code. All logic lives in the library.

use clap::Parser;

// jemalloc, as Polars' own Python builds use on Linux: it reuses freed chunk
// buffers instead of returning them to the kernel and faulting them back in. The
// Python package's extension module sets its own (built for loading with dlopen).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    scorch::infer::init_threading();
    let cli = scorch::cli::Cli::parse();
    scorch::cli::init_logging(cli.log_format, cli.verbose, cli.quiet);
    let code = scorch::cli::execute(cli);
    std::process::exit(code.code());
}
