//! [`ApiServer`]: the kube-apiserver the Kubernetes mode applies the tests' objects to: one the runner starts
//! with `scripts/k8s-apiserver` (etcd + kube-apiserver on free loopback ports, a private run directory, the
//! Gateway API CRDs installed), or one the user names with `--kubeconfig`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use testkit::free_port;

/// An API server and the kubeconfig that reaches it as an administrator.
pub(crate) struct ApiServer {
    /// The admin kubeconfig.
    kubeconfig: PathBuf,
    /// The instance this runner started, stopped on drop; `None` for a given one.
    _instance: Option<Instance>,
}

/// One `scripts/k8s-apiserver` instance: its run directory and ports.
struct Instance {
    /// The script.
    script: PathBuf,
    /// `KAPI_RUN`: certificates, etcd data, logs, kubeconfig.
    run_dir: PathBuf,
    /// kube-apiserver's secure port.
    api_port: u16,
    /// etcd's client port.
    etcd_port: u16,
    /// etcd's peer port.
    etcd_peer_port: u16,
}

impl Instance {
    /// Runs `scripts/k8s-apiserver <command>` for this instance.
    fn script(&self, command: &str) -> anyhow::Result<()> {
        let output = Command::new(&self.script)
            .arg(command)
            .env("KAPI_RUN", &self.run_dir)
            .env("API_PORT", self.api_port.to_string())
            .env("ETCD_PORT", self.etcd_port.to_string())
            .env("ETCD_PEER_PORT", self.etcd_peer_port.to_string())
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        if !output.status.success() {
            bail!(
                "scripts/k8s-apiserver {command} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        match self.script("stop") {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&self.run_dir);
            }
            Err(error) => eprintln!(
                "conformance: {error:#} (logs kept in {})",
                self.run_dir.display()
            ),
        }
    }
}

impl ApiServer {
    /// Starts etcd and kube-apiserver with `script` (`scripts/k8s-apiserver`, which builds them first if
    /// `~/.cache/portcullis-k8s` does not hold them yet: minutes, once per machine).
    pub(crate) fn start(script: &Path) -> anyhow::Result<ApiServer> {
        // A free port can be taken between finding it and binding it: such a start is tried again.
        let mut attempt = 1;
        loop {
            let instance = Instance {
                script: script.to_owned(),
                run_dir: std::env::temp_dir()
                    .join(format!("portcullis-conformance-k8s-{}", std::process::id())),
                api_port: free_port(),
                etcd_port: free_port(),
                etcd_peer_port: free_port(),
            };
            match instance.script("start") {
                Ok(()) => {
                    return Ok(ApiServer {
                        kubeconfig: instance.run_dir.join("kubeconfig"),
                        _instance: Some(instance),
                    });
                }
                Err(error)
                    if attempt < 3 && format!("{error:#}").contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(error) => {
                    return Err(error.context(
                        "cannot start the API server for --kubernetes (scripts/k8s-apiserver start; see \
                         tests/k8s/README.md), or pass --kubeconfig",
                    ));
                }
            }
        }
    }

    /// An API server someone else runs, reached with `kubeconfig`.
    pub(crate) fn given(kubeconfig: PathBuf) -> ApiServer {
        ApiServer {
            kubeconfig,
            _instance: None,
        }
    }

    /// The admin kubeconfig.
    pub(crate) fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }
}
