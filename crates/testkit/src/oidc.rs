//! A real OpenID provider for tests: `oidc-provider` (npm) run by node on a loopback port.
//!
//! Owns one child process running `crates/testkit/oidc/provider.mjs` (one client, PKCE
//! required, refresh tokens, RP-initiated logout, the development login form that accepts any
//! login and password). It is killed by its PID (never by name) on [`OidcProvider::kill`] or
//! drop. oidc-provider lives outside the repository, in `~/.cache/portcullis-oidc` (or
//! `$PORTCULLIS_OIDC_MODULES`, a `node_modules` directory): `scripts/test` installs it there.
//! When node or the package is missing, [`OidcProvider::start`] fails with the command that
//! installs it: tests that need a provider fail rather than pass without one.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

mod browser;

pub use browser::Browser;

use crate::client::HttpClient;
use crate::port::{free_port, wait_for_port};

/// How long a starting provider may take to answer discovery.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The command that installs the provider where [`node_modules`] looks.
pub const INSTALL_COMMAND: &str =
    "npm install --prefix ~/.cache/portcullis-oidc oidc-provider@8 (scripts/test does it)";

/// The client the provider registers, and its behaviour.
#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// Registered redirect URIs (exact match).
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Lifetime of access tokens (whole seconds; short to test refresh).
    pub access_token_ttl: Duration,
    /// The client's `token_endpoint_auth_method` (`client_secret_basic` when `None`).
    pub token_endpoint_auth_method: Option<String>,
}

/// An `oidc-provider` child process on `127.0.0.1`.
#[derive(Debug)]
pub struct OidcProvider {
    port: u16,
    child: Option<Child>,
}

impl OidcProvider {
    /// Starts a provider for `config` on a free loopback port and waits until its discovery
    /// document answers.
    ///
    /// # Errors
    ///
    /// When node or oidc-provider is missing (naming [`INSTALL_COMMAND`]), or when no provider
    /// came up (after three ports).
    pub async fn start(config: &OidcProviderConfig) -> anyhow::Result<OidcProvider> {
        let modules = node_modules()?;
        let mut last_error = None;
        for _ in 0..3 {
            let mut provider = OidcProvider {
                port: free_port(),
                child: None,
            };
            match provider.launch(config, &modules).await {
                Ok(()) => return Ok(provider),
                // Another process may have taken the port between `free_port` and the bind.
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("oidc-provider did not start")))
    }

    /// `http://127.0.0.1:<port>`: the issuer.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the provider (SIGKILL, by PID) and reaps it. Does nothing if it is not running.
    ///
    /// # Errors
    ///
    /// When the process cannot be signalled or reaped.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing oidc-provider")?;
            child.wait().context("reaping oidc-provider")?;
        }
        Ok(())
    }

    async fn launch(&mut self, config: &OidcProviderConfig, modules: &Path) -> anyhow::Result<()> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc/provider.mjs");
        let child = Command::new("node")
            .arg(&script)
            .env("OIDC_NODE_MODULES", modules)
            .env("OIDC_PORT", self.port.to_string())
            .env("OIDC_CLIENT_ID", &config.client_id)
            .env("OIDC_CLIENT_SECRET", &config.client_secret)
            .env("OIDC_REDIRECT_URIS", config.redirect_uris.join(" "))
            .env(
                "OIDC_POST_LOGOUT_URIS",
                config.post_logout_redirect_uris.join(" "),
            )
            .env(
                "OIDC_ACCESS_TOKEN_TTL",
                config.access_token_ttl.as_secs().max(1).to_string(),
            )
            .env(
                "OIDC_AUTH_METHOD",
                config
                    .token_endpoint_auth_method
                    .as_deref()
                    .unwrap_or("client_secret_basic"),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("node is not installed; the OIDC tests need it and {INSTALL_COMMAND}");
            }
            Err(error) => return Err(error).context("spawning node"),
        };
        self.child = Some(child);
        if let Err(error) = self.wait_for_discovery().await {
            self.kill()?;
            return Err(error.context(format!("oidc-provider on port {}", self.port)));
        }
        Ok(())
    }

    async fn wait_for_discovery(&mut self) -> anyhow::Result<()> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        wait_for_port(addr, START_TIMEOUT).await?;
        let client = HttpClient::new();
        let response = client
            .get(addr, "", "/.well-known/openid-configuration", &[])
            .await?;
        if response.status != 200 {
            bail!("discovery answered {}", response.status);
        }
        Ok(())
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `node_modules` directory holding oidc-provider: `$PORTCULLIS_OIDC_MODULES`, else
/// `~/.cache/portcullis-oidc/node_modules`.
///
/// # Errors
///
/// When oidc-provider is not installed there (the message names [`INSTALL_COMMAND`]).
pub fn node_modules() -> anyhow::Result<PathBuf> {
    let modules = match std::env::var_os("PORTCULLIS_OIDC_MODULES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            PathBuf::from(home).join(".cache/portcullis-oidc/node_modules")
        }
    };
    if !modules.join("oidc-provider/package.json").is_file() {
        bail!(
            "oidc-provider is not installed in {}: run {INSTALL_COMMAND}",
            modules.display()
        );
    }
    Ok(modules)
}
