//! The Gateway API conformance runner: replays the suite's `cases.json` (by default the copy in
//! `conformance/suite`) against the real `portcullis` binary in standalone mode (or, with `--kubernetes`, in
//! Kubernetes mode against a real API server) and prints one line per test plus `N passed, M failed`.
//!
//! ```text
//! conformance [--binary PATH] [--only NAME[,NAME]] [--jobs N] [--verbose] [--keep-config DIR]
//!             [--kubernetes [--kubeconfig PATH]] [SUITE_DIR]
//! ```
//!
//! For every test it starts echo backends for the manifests' Services (`workload`), writes the manifests,
//! EndpointSlices, TLS Secrets and a GatewayClass into a temporary config directory (`config_dir`), starts one
//! gateway process, and replays the cases (`case`) with the suite's comparison rules (`compare`). It owns no
//! gateway logic: a test fails whenever the gateway's answers differ from what the official suite would accept.
//! The Kubernetes mode (`kubernetes`) applies the same objects through the API instead, and also compares the
//! status the gateway writes back with `portcullis check`.

mod case;
mod cases;
mod compare;
mod config_dir;
mod convergence;
mod coredns;
mod distribution;
mod exchange;
mod grpc;
mod kubernetes;
mod l4_case;
mod manifests;
mod mirror;
mod report;
mod runner;
mod runtime_change;
mod status_check;
mod timestamp;
mod tls;
mod uuid;
mod workload;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

/// Replays the Gateway API conformance cases against the portcullis binary.
#[derive(Debug, Parser)]
#[command(name = "conformance")]
struct Cli {
    /// The gateway binary. Default: target/release/portcullis, else target/debug/portcullis (looked up in the
    /// current directory, then in the workspace this runner was built from).
    #[arg(long)]
    binary: Option<PathBuf>,

    /// Run only these tests (comma-separated or repeated). An unknown name is an error, never a silent skip.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,

    /// How many tests run at once. Each test has its own gateway process and its own loopback addresses.
    #[arg(long, default_value_t = 3)]
    jobs: usize,

    /// Print every case's outcome, and the gateway's stderr when a test cannot start.
    #[arg(long)]
    verbose: bool,

    /// Also write each test's gateway config to DIR/<test>.yaml (for `portcullis check` or a manual run).
    #[arg(long, value_name = "DIR")]
    keep_config: Option<PathBuf>,

    /// Kubernetes mode: apply each test's objects to a real API server (started with scripts/k8s-apiserver,
    /// unless --kubeconfig names one), run the gateway with `run --kubernetes`, and compare the status it
    /// writes back with `portcullis check`. Tests run one at a time; the backends run in a network namespace
    /// the runner creates (needs root).
    #[arg(long)]
    kubernetes: bool,

    /// With --kubernetes: use the API server of this kubeconfig instead of starting one. The runner applies
    /// and deletes the suite's objects there (its Namespaces stay).
    #[arg(long, value_name = "PATH", requires = "kubernetes")]
    kubeconfig: Option<PathBuf>,

    /// The suite folder: `cases.json` and `manifests/`. Default: `conformance/suite` (looked up in the
    /// current directory, then in the workspace this runner was built from).
    suite_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("conformance: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the selected tests; `Ok(true)` when every one passed.
fn run(cli: Cli) -> anyhow::Result<bool> {
    let suite_dir = match cli.suite_dir {
        Some(path) => path,
        None => default_suite_dir()?,
    };
    let suite = cases::Suite::load(&suite_dir)?;
    let tests = suite.select(&cli.only)?;
    let binary = match cli.binary {
        Some(path) => path,
        None => default_binary()?,
    };
    if !binary.is_file() {
        bail!("gateway binary {} does not exist", binary.display());
    }
    let settings = runner::RunSettings {
        binary,
        suite_dir,
        verbose: cli.verbose,
        jobs: cli.jobs.max(1),
        keep_config: cli.keep_config,
        kubernetes: cli.kubernetes.then_some(cli.kubeconfig),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(runner::run_all(&settings, &tests))
}

/// The in-repository copy of the suite, `conformance/suite`, relative to the current directory and then to the
/// workspace root this crate was compiled in.
fn default_suite_dir() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let roots = [PathBuf::from("."), workspace];
    for root in &roots {
        let candidate = root.join("conformance").join("suite");
        if candidate.join("cases.json").is_file() {
            return Ok(candidate);
        }
    }
    bail!("no conformance suite found (tried conformance/suite); pass SUITE_DIR")
}

/// `target/release/portcullis`, else `target/debug/portcullis`, relative to the current directory and then to
/// the workspace root this crate was compiled in.
fn default_binary() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let roots = [PathBuf::from("."), workspace];
    for root in &roots {
        for profile in ["release", "debug"] {
            let candidate = root.join("target").join(profile).join("portcullis");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "no gateway binary found (tried target/release/portcullis and target/debug/portcullis); build it with \
         `cargo build --release -p portcullis` or pass --binary"
    )
}
