//! The `portcullis` binary: command line, wiring, signals. No gateway logic lives here; it
//! connects the pipeline crates (source → compile → snapshot → proxy) and the admin server.

mod check;
mod cli;
mod controller;
mod run;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Check(args) => check::check(&args),
    }
}
