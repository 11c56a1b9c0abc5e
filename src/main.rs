//! The `scorch` binary: parse arguments, set up logging, run, exit with the
//! documented code. All logic lives in the library.

use clap::Parser;

fn main() {
    scorch::infer::init_threading();
    let cli = scorch::cli::Cli::parse();
    scorch::cli::init_logging(cli.log_format, cli.verbose, cli.quiet);
    let code = scorch::cli::execute(cli);
    std::process::exit(code.code());
}
