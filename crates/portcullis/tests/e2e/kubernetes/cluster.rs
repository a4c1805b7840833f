//! [`TestCluster`]: a real etcd + kube-apiserver started through `scripts/k8s-apiserver`, in a
//! private run directory on free ports, with a kube client that applies objects to it.
//!
//! When the API server cannot be built or started, [`TestCluster::start`] fails with the
//! script's own message: a Kubernetes test never passes without an API server.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;
use testkit::free_port;

/// One API server instance: its run directory and ports. Stopped (with its etcd) on drop.
struct Instance {
    run_dir: PathBuf,
    api_port: u16,
    etcd_port: u16,
    etcd_peer_port: u16,
    /// Extra kube-apiserver flags (the script's `APISERVER_EXTRA_ARGS`).
    apiserver_args: String,
}

/// A running API server and a client to it.
pub(crate) struct TestCluster {
    instance: Instance,
    client: kube::Client,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/k8s-apiserver")
}

impl Instance {
    /// Runs `scripts/k8s-apiserver <command>` for this instance.
    fn script(&self, command: &str) -> anyhow::Result<()> {
        let output = Command::new(script())
            .arg(command)
            .env("KAPI_RUN", &self.run_dir)
            .env("API_PORT", self.api_port.to_string())
            .env("ETCD_PORT", self.etcd_port.to_string())
            .env("ETCD_PEER_PORT", self.etcd_peer_port.to_string())
            .env("APISERVER_EXTRA_ARGS", &self.apiserver_args)
            .output()
            .with_context(|| format!("running {}", script().display()))?;
        if !output.status.success() {
            bail!(
                "scripts/k8s-apiserver {command} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Err(error) = self.script("stop") {
            eprintln!("{error:#}");
        }
        if std::thread::panicking() {
            eprintln!("test API server logs kept in {}", self.run_dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.run_dir);
        }
    }
}

impl TestCluster {
    /// Builds the API server if needed (minutes, once per machine: `~/.cache/portcullis-k8s`),
    /// then starts etcd and kube-apiserver with the Gateway API CRDs installed.
    pub(crate) async fn start() -> anyhow::Result<TestCluster> {
        TestCluster::start_with_apiserver_args("").await
    }

    /// As [`TestCluster::start`], with extra kube-apiserver flags (space-separated), which
    /// [`TestCluster::start_apiserver`] passes again.
    pub(crate) async fn start_with_apiserver_args(args: &str) -> anyhow::Result<TestCluster> {
        // A free port can be taken between finding it and binding it: such a start is tried
        // again on new ports.
        let mut attempt = 1;
        let instance = loop {
            let instance = Instance {
                run_dir: std::env::temp_dir().join(format!(
                    "portcullis-k8s-{}-{}",
                    std::process::id(),
                    free_port()
                )),
                api_port: free_port(),
                etcd_port: free_port(),
                etcd_peer_port: free_port(),
                apiserver_args: args.to_owned(),
            };
            match instance.script("start") {
                Ok(()) => break instance,
                Err(error)
                    if attempt < 3 && format!("{error:#}").contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(error) => {
                    return Err(error.context(
                        "cannot start the test API server (scripts/k8s-apiserver start; it builds \
                         kube-apiserver with Go on first use, see tests/k8s/README.md)",
                    ));
                }
            }
        };
        let file = kube::config::Kubeconfig::read_from(instance.run_dir.join("kubeconfig"))
            .context("reading the test kubeconfig")?;
        let config =
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .context("loading the test kubeconfig")?;
        let client = kube::Client::try_from(config).context("building the kube client")?;
        Ok(TestCluster { instance, client })
    }

    /// The admin kubeconfig.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.instance.run_dir.join("kubeconfig")
    }

    /// A kubeconfig that authenticates with the static `token` (the script's `kapi-user-token`
    /// is user `kapi-user`, which RBAC grants nothing until a test binds it a role).
    pub(crate) fn kubeconfig_for_token(&self, token: &str) -> anyhow::Result<PathBuf> {
        let path = self.instance.run_dir.join(format!("kubeconfig-{token}"));
        let ca = self.instance.run_dir.join("certs/ca.crt");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kapi\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: user\n  user:\n    token: {token}\ncontexts:\n- name: kapi\n  context: {{cluster: kapi, user: user}}\ncurrent-context: kapi\n",
            self.instance.api_port,
            ca.display()
        );
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// The API server's port on 127.0.0.1.
    pub(crate) fn api_port(&self) -> u16 {
        self.instance.api_port
    }

    /// etcd's client address (its JSON gateway serves `/v3/...`).
    pub(crate) fn etcd_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.instance.etcd_port))
    }

    /// The running kube-apiserver's process id (from the script's PID file).
    pub(crate) fn apiserver_pid(&self) -> anyhow::Result<u32> {
        let path = self.instance.run_dir.join("kube-apiserver.pid");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.trim().parse().context("the kube-apiserver PID file")
    }

    /// A client to the API server, as the admin.
    pub(crate) fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Stops kube-apiserver; etcd keeps every object.
    pub(crate) fn stop_apiserver(&self) -> anyhow::Result<()> {
        self.instance.script("stop-apiserver")
    }

    /// Starts kube-apiserver again on the same etcd, and waits until it is ready.
    pub(crate) fn start_apiserver(&self) -> anyhow::Result<()> {
        self.instance.script("start-apiserver")
    }

    /// Creates or replaces `object` (server-side apply, field manager `portcullis-test`).
    pub(crate) async fn apply(&self, object: &Value) -> anyhow::Result<()> {
        let (api, name) = self.api_for(object)?;
        api.patch(
            &name,
            &PatchParams::apply("portcullis-test").force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("applying {} {name}", object["kind"]))?;
        Ok(())
    }

    /// Validates `object` as the API server would apply it (server-side apply, dry run): its
    /// schema, defaults and admission, without storing it.
    pub(crate) async fn apply_dry_run(&self, object: &Value) -> anyhow::Result<()> {
        let (api, name) = self.api_for(object)?;
        api.patch(
            &name,
            &PatchParams::apply("portcullis-test").dry_run(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("dry-run apply of {} {name}", object["kind"]))?;
        Ok(())
    }

    /// Applies `object`'s `status` through the status subresource, as field manager `manager`.
    pub(crate) async fn apply_status(&self, object: &Value, manager: &str) -> anyhow::Result<()> {
        let (api, name) = self.api_for(object)?;
        api.patch_status(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("applying the status of {} {name}", object["kind"]))?;
        Ok(())
    }

    /// The object `apiVersion`/`kind`/`metadata` of `reference` names, as the API serves it
    /// (status included).
    pub(crate) async fn get(&self, reference: &Value) -> anyhow::Result<Value> {
        let (api, name) = self.api_for(reference)?;
        let object = api
            .get(&name)
            .await
            .with_context(|| format!("reading {} {name}", reference["kind"]))?;
        serde_json::to_value(object).context("the object as JSON")
    }

    fn api_for(&self, object: &Value) -> anyhow::Result<(Api<DynamicObject>, String)> {
        let api_version = object["apiVersion"].as_str().context("apiVersion")?;
        let kind = object["kind"].as_str().context("kind")?;
        let name = object["metadata"]["name"]
            .as_str()
            .context("metadata.name")?;
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (plural, is_namespaced) = match kind {
            "Namespace" => ("namespaces", false),
            "GatewayClass" => ("gatewayclasses", false),
            "Service" => ("services", true),
            "Secret" => ("secrets", true),
            "ConfigMap" => ("configmaps", true),
            "EndpointSlice" => ("endpointslices", true),
            "Gateway" => ("gateways", true),
            "HTTPRoute" => ("httproutes", true),
            "ListenerSet" => ("listenersets", true),
            "BackendTLSPolicy" => ("backendtlspolicies", true),
            "ServiceAccount" => ("serviceaccounts", true),
            "ClusterRole" => ("clusterroles", false),
            "ClusterRoleBinding" => ("clusterrolebindings", false),
            "Role" => ("roles", true),
            "RoleBinding" => ("rolebindings", true),
            "Lease" => ("leases", true),
            "Deployment" => ("deployments", true),
            "PodDisruptionBudget" => ("poddisruptionbudgets", true),
            "CustomResourceDefinition" => ("customresourcedefinitions", false),
            "Backend" => ("backends", true),
            "BackendTrafficPolicy" => ("backendtrafficpolicies", true),
            "ClientTrafficPolicy" => ("clienttrafficpolicies", true),
            "SecurityPolicy" => ("securitypolicies", true),
            "RateLimitPolicy" => ("ratelimitpolicies", true),
            "Composition" => ("compositions", true),
            other => bail!("the test cluster does not know the kind {other}"),
        };
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api = if is_namespaced {
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .context("metadata.namespace")?;
            Api::namespaced_with(self.client.clone(), namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        };
        Ok((api, name.to_owned()))
    }
}
