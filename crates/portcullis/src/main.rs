//! The `portcullis` binary: command line, wiring, signals. No gateway logic lives here; it
//! connects the pipeline crates (source → compile → snapshot → proxy, driven by the `control`
//! loop) and the admin server.

mod check;
mod cli;
mod run;

use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates and frees many small objects
/// (header maps, body channels, futures) across threads, which glibc malloc serves slowly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Check(args) => check::check(&args),
    }
}
