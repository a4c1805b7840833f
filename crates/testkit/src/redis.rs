//! A real `redis-server` for tests, on a loopback port of its own.
//!
//! Owns one child process: started with no persistence (`--save '' --appendonly no`), killed by
//! its PID (never by name) when the test is done or when [`RedisServer`] is dropped. A test can
//! kill it on purpose ([`RedisServer::kill`]) and start it again on the same port
//! ([`RedisServer::restart`]) to exercise reconnection.
//!
//! `redis-server` must be installed (Debian package `redis-server`; `scripts/test` installs it).
//! When it is missing, [`RedisServer::start`] returns an error saying so: tests that need Redis
//! fail rather than pass without it.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::port::{free_port, wait_for_port};

/// How long a starting server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` child process on `127.0.0.1`.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// When `redis-server` is not installed, or no server came up (after three ports).
    pub async fn start() -> anyhow::Result<RedisServer> {
        let mut last_error = None;
        for _ in 0..3 {
            let mut server = RedisServer {
                port: free_port(),
                child: None,
            };
            match server.launch().await {
                Ok(()) => return Ok(server),
                // Another process may have taken the port between `free_port` and the bind.
                Err(error) if is_missing(&error) => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("redis-server did not start")))
    }

    /// The port it listens on (the same across [`RedisServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The child's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL, by PID) and reaps it: its port refuses connections when this
    /// returns. Does nothing if it is not running.
    ///
    /// # Errors
    ///
    /// When the process cannot be signalled or reaped.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing redis-server")?;
            child.wait().context("reaping redis-server")?;
        }
        Ok(())
    }

    /// Starts the server again on the same port (after [`RedisServer::kill`]) and waits until it
    /// accepts connections. Its data is gone: it was never persisted.
    ///
    /// # Errors
    ///
    /// When it is still running, or does not come up.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("redis-server on port {} is still running", self.port);
        }
        self.launch().await
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!(MISSING);
            }
            Err(error) => return Err(error).context("spawning redis-server"),
        };
        self.child = Some(child);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        if let Err(error) = wait_for_port(addr, START_TIMEOUT).await {
            self.kill()?;
            return Err(error.context(format!("redis-server on port {}", self.port)));
        }
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const MISSING: &str = "redis-server is not installed (it is needed by this test): install the Debian \
                       package with `apt-get install -y redis-server` (scripts/test does it)";

fn is_missing(error: &anyhow::Error) -> bool {
    error.to_string() == MISSING
}
