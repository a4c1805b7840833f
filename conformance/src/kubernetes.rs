//! The runner's Kubernetes mode (`--kubernetes`): the same tests, with the objects applied to a real API server
//! and the gateway run as `portcullis run --kubernetes`.
//!
//! One API server serves the whole run ([`ApiServer`]: started with `scripts/k8s-apiserver`, or given with
//! `--kubeconfig`); tests run one at a time because every test's base manifests use the same names. Per test,
//! the objects the standalone mode writes to its config directory (GatewayClass, manifests without Deployments,
//! EndpointSlices, TLS Secrets) are applied through the API (server-side apply), Namespaces first; the echo
//! backends run in the runner's network namespace ([`BackendHost`]), because the API server refuses loopback
//! EndpointSlice addresses; runtime changes delete objects through the API; after the cases, the status the
//! gateway wrote back is compared with `portcullis check` ([`written_status`]); then every object of the test
//! is deleted again except Namespaces (without a namespace controller, a deleted Namespace would stay
//! `Terminating` and refuse the next test's objects).

mod api_server;
mod backend_host;
mod cluster;
mod written_status;

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;
use testkit::GatewayProcess;

pub(crate) use api_server::ApiServer;
pub(crate) use backend_host::BackendHost;
pub(crate) use cluster::Cluster;

use crate::manifests::kind;

/// Everything the Kubernetes mode keeps for the whole run.
pub(crate) struct KubernetesMode {
    /// The client that applies and deletes the tests' objects.
    cluster: Cluster,
    /// Where the echo backends run.
    host: BackendHost,
    /// Dropped last: stops the API server the runner started.
    api_server: ApiServer,
}

impl KubernetesMode {
    /// Starts (or, with `kubeconfig`, connects to) the API server and creates the backends' network namespace.
    /// Must run inside a tokio runtime.
    pub(crate) async fn start(kubeconfig: Option<PathBuf>) -> anyhow::Result<KubernetesMode> {
        let api_server = match kubeconfig {
            Some(path) => ApiServer::given(path),
            None => {
                let script = script()?;
                tokio::task::spawn_blocking(move || ApiServer::start(&script))
                    .await
                    .context("the API server's start task failed")??
            }
        };
        let cluster = Cluster::connect(api_server.kubeconfig()).await?;
        let host = BackendHost::create()?;
        Ok(KubernetesMode {
            cluster,
            host,
            api_server,
        })
    }

    /// The API server's client.
    pub(crate) fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Where the echo backends run.
    pub(crate) fn host(&self) -> &BackendHost {
        &self.host
    }

    /// Applies `documents` (Deployments left out: no kubelet runs them; the emulated pods stand in), Namespaces
    /// first. Each applied object is pushed to `applied` at once, so that a failure half-way still lets
    /// [`KubernetesMode::clean_up`] remove what was written.
    pub(crate) async fn apply(
        &self,
        documents: &[Value],
        applied: &mut Vec<Value>,
    ) -> anyhow::Result<()> {
        let (namespaces, others): (Vec<&Value>, Vec<&Value>) = documents
            .iter()
            .filter(|object| kind(object) != "Deployment")
            .partition(|object| kind(object) == "Namespace");
        for object in namespaces.into_iter().chain(others) {
            self.cluster.apply(object).await?;
            applied.push(object.clone());
        }
        Ok(())
    }

    /// Deletes every object of `applied` except Namespaces, last applied first.
    pub(crate) async fn clean_up(&self, applied: &[Value]) -> anyhow::Result<()> {
        for object in applied
            .iter()
            .rev()
            .filter(|object| kind(object) != "Namespace")
        {
            self.cluster.delete(object).await?;
        }
        Ok(())
    }

    /// Starts `binary` in Kubernetes mode on this API server; `lease` names the test's own Lease, so that the
    /// gateway writes status at once (the previous test's gateway was killed holding its Lease).
    pub(crate) async fn start_gateway(
        &self,
        binary: &Path,
        lease: &str,
    ) -> anyhow::Result<GatewayProcess> {
        let kubeconfig = self
            .api_server
            .kubeconfig()
            .to_str()
            .context("the kubeconfig path is not UTF-8")?;
        GatewayProcess::start_without_config(
            binary,
            &[
                "--kubernetes",
                "--kubeconfig",
                kubeconfig,
                "--lease-name",
                lease,
                "--access-log",
                "off",
            ],
        )
        .await
    }

    /// Waits until the status written for `documents` equals `portcullis check`'s, and returns how many
    /// objects were compared ([`written_status`]).
    pub(crate) async fn compare_status(
        &self,
        binary: &Path,
        documents: &[Value],
    ) -> anyhow::Result<usize> {
        let applied: Vec<Value> = documents
            .iter()
            .filter(|object| kind(object) != "Deployment")
            .cloned()
            .collect();
        written_status::compare(&self.cluster, binary, &applied).await
    }
}

/// `scripts/k8s-apiserver`, relative to the current directory and then to the workspace root this runner was
/// built from.
fn script() -> anyhow::Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for root in [PathBuf::from("."), workspace] {
        let candidate = root.join("scripts").join("k8s-apiserver");
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!("scripts/k8s-apiserver not found; run from the workspace or pass --kubeconfig")
}
