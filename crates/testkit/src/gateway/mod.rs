//! Runs the real `portcullis` binary as a child process for end-to-end tests.
//!
//! Owns the process lifecycle (spawn, readiness, SIGTERM, exit, kill on drop), its captured output, and the
//! temporary config directories tests write YAML into. It does not build the binary: the caller passes its path,
//! normally `env!("CARGO_BIN_EXE_portcullis")`.

mod temp_dir;

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use http::StatusCode;
use tokio::time::Instant;

pub use temp_dir::TempConfigDir;

use crate::client::HttpClient;
use crate::port::free_port;

/// How often readiness and exit are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long [`GatewayProcess::start`] waits for `/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts of a gateway that failed on an address in use, tried at most this often.
const START_ATTEMPTS: u32 = 5;

/// Whether a failed start failed on an address another process held.
fn is_address_in_use(error: &anyhow::Error) -> bool {
    format!("{error:#}").contains("Address already in use")
}

/// A running gateway process. Dropping it kills the process (by its own PID) and reaps it.
///
/// Its stdout and stderr go to files in a private temporary directory, readable at any time. That directory is
/// removed on drop, except while a test is panicking: then it is kept and its path and stderr are printed, so
/// the failure can be diagnosed.
#[derive(Debug)]
pub struct GatewayProcess {
    /// The child; reaped by `wait_exit` or on drop.
    child: Child,
    /// Where the admin server listens.
    admin: SocketAddr,
    /// Holds `stdout.log` and `stderr.log`.
    log_dir: PathBuf,
    /// Set once the child has been reaped.
    exit_status: Option<ExitStatus>,
    /// Talks to the admin server.
    admin_client: HttpClient,
}

impl GatewayProcess {
    /// Runs `<binary> run --config <config> --admin 127.0.0.1:<free port> <extra_args...>` and waits until
    /// `GET /ready` on the admin address answers 200 (polled every 20 ms, for at most 15 s).
    ///
    /// # Errors
    ///
    /// Fails when the process cannot be spawned, exits before it is ready, or is not ready in time. The error
    /// includes the process's stderr. A process that is still running is killed before the error is returned.
    pub async fn start(binary: &Path, config: &Path, extra_args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(binary, Some(config), extra_args).await
    }

    /// Runs `<binary> run --admin 127.0.0.1:<free port> <args...>`, without `--config` (for a
    /// source the arguments name, such as `--kubernetes`), and waits for `/ready` as
    /// [`GatewayProcess::start`] does.
    ///
    /// # Errors
    ///
    /// As [`GatewayProcess::start`].
    pub async fn start_without_config(binary: &Path, args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(binary, None, args).await
    }

    async fn start_with(
        binary: &Path,
        config: Option<&Path>,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        // The free port for the admin server (or one the config names) can be taken between
        // finding it and the gateway binding it (the kernel hands out the same range for
        // outgoing connections): such a start is tried again, on a new admin port.
        let mut attempt = 1;
        loop {
            match Self::start_once(binary, config, extra_args).await {
                Err(error) if attempt < START_ATTEMPTS && is_address_in_use(&error) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                result => return result,
            }
        }
    }

    async fn start_once(
        binary: &Path,
        config: Option<&Path>,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let log_dir = temp_dir::create_unique_dir("portcullis-gateway")?;
        let stdout = File::create(log_dir.join("stdout.log")).context("creating stdout.log")?;
        let stderr = File::create(log_dir.join("stderr.log")).context("creating stderr.log")?;
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let mut command = Command::new(binary);
        command.arg("run");
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let child = command
            .arg("--admin")
            .arg(admin.to_string())
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut gateway = Self {
            child,
            admin,
            log_dir,
            exit_status: None,
            admin_client: HttpClient::without_keep_alive().with_timeout(Duration::from_secs(2)),
        };
        gateway.wait_ready().await?;
        Ok(gateway)
    }

    /// Polls `/ready` until it answers 200, the process exits, or [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit_status()? {
                bail!(
                    "gateway exited before it was ready ({status}); stderr:\n{}",
                    self.stderr_text()
                );
            }
            let last_answer = match self.get_admin("/ready").await {
                Ok((StatusCode::OK, _)) => return Ok(()),
                Ok((status, body)) => format!("{status} {body:?}"),
                Err(error) => format!("{error:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "gateway not ready within {READY_TIMEOUT:?} (last /ready answer: {last_answer}); stderr:\n{}",
                    self.stderr_text()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The admin server's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding `stdout.log` and `stderr.log`.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Prints the process's stderr (its log) when `result` is an error: a test that returns its
    /// error (rather than panicking) otherwise loses the log with the temporary directory.
    pub fn print_logs_on_error<T, E>(&self, result: &Result<T, E>) {
        if result.is_err() {
            eprintln!(
                "gateway stderr ({}):\n{}",
                self.log_dir.display(),
                self.stderr_text()
            );
        }
    }

    /// Everything the process has written to stdout so far (invalid UTF-8 replaced; empty if unreadable).
    pub fn stdout_text(&self) -> String {
        read_lossy(&self.log_dir.join("stdout.log"))
    }

    /// Everything the process has written to stderr so far (invalid UTF-8 replaced; empty if unreadable).
    pub fn stderr_text(&self) -> String {
        read_lossy(&self.log_dir.join("stderr.log"))
    }

    /// Sends `GET <path>` to the admin server and returns the status and body.
    ///
    /// # Errors
    ///
    /// Fails when the admin server does not answer within 2 s.
    pub async fn get_admin(&self, path: &str) -> anyhow::Result<(StatusCode, String)> {
        let response = self.admin_client.get(self.admin, "", path, &[]).await?;
        Ok((response.status, response.text()))
    }

    /// Sends SIGTERM to the process, by running `kill -TERM <pid>`.
    ///
    /// # Errors
    ///
    /// Fails when the process has already exited (its PID may have been reused) or `kill` fails.
    pub fn signal_term(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.try_exit_status()? {
            bail!("gateway already exited ({status}); not signalling its old PID");
        }
        let pid = self.pid().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM {pid} failed: {status}");
        }
        Ok(())
    }

    /// Waits for the process to exit, polling every 20 ms, and returns its exit status. Once the process has
    /// exited, every later call returns the same status at once.
    ///
    /// # Errors
    ///
    /// Fails when the process is still running after `timeout`; it is left running (drop kills it).
    pub async fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "gateway (pid {}) still running after {timeout:?}",
                    self.pid()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// The exit status if the process has exited, reaping it the first time.
    fn try_exit_status(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exit_status.is_none() {
            self.exit_status = self
                .child
                .try_wait()
                .context("checking whether the gateway exited")?;
        }
        Ok(self.exit_status)
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if self.exit_status.is_none() {
            // Child::kill signals this child's own PID only; a child that already exited is a no-op error.
            let _ignored = self.child.kill();
            let _reaped = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "gateway logs kept in {}; stderr:\n{}",
                self.log_dir.display(),
                self.stderr_text()
            );
        } else {
            let _ignored = fs::remove_dir_all(&self.log_dir);
        }
    }
}

/// A file's contents as text, or empty when it cannot be read.
fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}
