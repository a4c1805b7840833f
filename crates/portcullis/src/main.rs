//! The `portcullis` binary: command line, wiring, signals. No gateway logic lives here; it
//! connects the pipeline crates (source → compile → snapshot → proxy, driven by the `control`
//! loop) and the admin server.

mod check;
mod cli;
mod explain;
mod run;

use clap::Parser;

/// mimalloc (`crates/memory`), with the upkeep that returns what a quiet gateway freed.
#[global_allocator]
static ALLOCATOR: memory::Allocator = memory::Allocator;

fn main() -> std::process::ExitCode {
    memory::disable_huge_pages();
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Check(args) => check::check(&args),
        cli::Command::Explain(args) => explain::explain(&args),
    }
}
