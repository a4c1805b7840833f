//! The `portcullis` binary: command line, wiring, signals. No gateway logic lives here; it
//! connects the pipeline crates (source → compile → snapshot → proxy, driven by the `control`
//! loop) and the admin server.

mod check;
mod cli;
mod run;

use clap::Parser;

/// mimalloc (`crates/allocator`), with the upkeep that returns what a quiet gateway freed.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

fn main() -> std::process::ExitCode {
    disable_huge_pages();
    let cli = cli::Cli::parse();
    match cli.command {
        cli::Command::Run(args) => run::run(args),
        cli::Command::Check(args) => check::check(&args),
    }
}

/// Turns transparent huge pages off for this process (prctl `PR_SET_THP_DISABLE`), whatever
/// the host's THP mode. A gateway's heap is small and grows by kilobytes per connection, spread
/// over the allocator's pages: with THP each 2 MiB region it touches is resident whole, which
/// made the idle heap 8 MiB instead of 1 MiB. Huge pages buy nothing measurable here (a few
/// MiB of heap fit the TLB). A kernel without THP refuses the call, which changes nothing.
fn disable_huge_pages() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}
