//! A real Prometheus server for tests, on a loopback port of its own, scraping the targets a
//! test names.
//!
//! Owns one child process and its scratch directory (config, TSDB, logs): started with
//! exemplar storage on (`--enable-feature=exemplar-storage`), so OpenMetrics exemplars are kept
//! and can be queried; killed by its PID (never by name) and its directory removed when
//! [`PrometheusServer`] is dropped. It never uses a fixed port (9090 included): each server
//! listens on a free loopback port, chosen again if another process takes it first.
//!
//! `prometheus` must be installed (Debian package `prometheus`; `scripts/test` installs it).
//! When it is missing, [`PrometheusServer::start`] returns an error saying so: tests that need it
//! fail rather than pass without it.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use http::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::HttpClient;
use crate::gateway::TempConfigDir;
use crate::port::free_port;

/// How long a starting server may take to answer `/-/ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How often readiness is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Starts tried at most this often (a free port can be taken before Prometheus binds it).
const START_ATTEMPTS: usize = 3;

/// A `prometheus` child process on `127.0.0.1`.
#[derive(Debug)]
pub struct PrometheusServer {
    addr: SocketAddr,
    child: Option<Child>,
    /// `prometheus.yml`, `data/` (the TSDB) and `prometheus.log`; removed on drop, after the
    /// process is gone.
    dir: TempConfigDir,
    client: HttpClient,
}

impl PrometheusServer {
    /// Starts a server that scrapes `GET /metrics` on each of `targets` every
    /// `scrape_interval` (job `portcullis`), and waits until it is ready.
    ///
    /// # Errors
    ///
    /// When `prometheus` is not installed, or no server became ready (after three ports); the
    /// error quotes its log.
    pub async fn start(
        targets: &[SocketAddr],
        scrape_interval: Duration,
    ) -> anyhow::Result<PrometheusServer> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let mut server = PrometheusServer {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())),
                child: None,
                dir: TempConfigDir::new()?,
                client: HttpClient::new(),
            };
            match server.launch(targets, scrape_interval).await {
                Ok(()) => return Ok(server),
                Err(error) if error.to_string() == MISSING => return Err(error),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("prometheus did not start")))
    }

    /// Where its HTTP API listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The child's PID, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET /api/v1/query?query=<expression>` (evaluated now) and its JSON answer, whatever its
    /// `status`: a client error (a query that does not parse) is an answer too.
    ///
    /// # Errors
    ///
    /// On a connection error, or a body that is not JSON.
    pub async fn query(&self, expression: &str) -> anyhow::Result<Value> {
        self.api("/api/v1/query", &[("query", expression)]).await
    }

    /// `GET /api/v1/query_exemplars` for `expression` over the last `window`, and its JSON
    /// answer, whatever its `status`.
    ///
    /// # Errors
    ///
    /// As [`PrometheusServer::query`].
    pub async fn query_exemplars(
        &self,
        expression: &str,
        window: Duration,
    ) -> anyhow::Result<Value> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_secs_f64();
        let start = format!("{:.3}", now - window.as_secs_f64());
        let end = format!("{now:.3}");
        self.api(
            "/api/v1/query_exemplars",
            &[("query", expression), ("start", &start), ("end", &end)],
        )
        .await
    }

    /// `GET <path>?<parameters>` on the HTTP API, and its JSON answer, whatever its status.
    ///
    /// # Errors
    ///
    /// On a connection error, or a body that is not JSON.
    pub async fn api(&self, path: &str, parameters: &[(&str, &str)]) -> anyhow::Result<Value> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(parameters)
            .finish();
        let target = format!("{path}?{query}");
        let response = self.client.get(self.addr, "", &target, &[]).await?;
        serde_json::from_slice(&response.body).with_context(|| {
            format!(
                "GET {target} answered {} with a body that is not JSON: {}",
                response.status,
                response.text()
            )
        })
    }

    async fn launch(
        &mut self,
        targets: &[SocketAddr],
        scrape_interval: Duration,
    ) -> anyhow::Result<()> {
        let interval = format!("{}ms", scrape_interval.as_millis().max(1));
        let targets: Vec<String> = targets
            .iter()
            .map(|target| format!("\"{target}\""))
            .collect();
        // Prometheus rejects a scrape timeout longer than the interval.
        let config = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  \
             evaluation_interval: {interval}\nscrape_configs:\n  - job_name: portcullis\n    \
             metrics_path: /metrics\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let config_file = self.dir.write("prometheus.yml", &config)?;
        let log = std::fs::File::create(self.dir.path().join("prometheus.log"))
            .context("creating prometheus.log")?;
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={}", self.addr))
            .arg("--enable-feature=exemplar-storage")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(MISSING),
            Err(error) => return Err(error).context("spawning prometheus"),
        };
        self.child = Some(child);
        if let Err(error) = self.wait_ready().await {
            self.kill();
            return Err(error.context(format!(
                "prometheus on {} did not get ready; its log:\n{}",
                self.addr,
                self.log()
            )));
        }
        Ok(())
    }

    /// Polls `GET /-/ready` until it answers 200, the process exits, or [`START_TIMEOUT`]
    /// passes.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = HttpClient::new().with_timeout(Duration::from_secs(1));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("polling prometheus")?
            {
                bail!("prometheus exited with {status}");
            }
            if let Ok(response) = client.get(self.addr, "", "/-/ready", &[]).await
                && response.status == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("not ready within {START_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Kills the process (SIGKILL, by its PID) and reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.kill();
    }
}

const MISSING: &str = "prometheus is not installed (it is needed by this test): install the Debian \
                       package with `apt-get install -y prometheus` (scripts/test does it)";
