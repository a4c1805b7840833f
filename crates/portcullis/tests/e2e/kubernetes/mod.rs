//! Kubernetes mode against a real API server (`scripts/k8s-apiserver`): objects created through
//! the API reach the real `portcullis` binary, EndpointSlice edits move traffic, and the gateway
//! keeps serving while the API server restarts.
//!
//! Backends run in a network namespace the test creates ([`test_host`]), on addresses the API
//! server accepts in EndpointSlices. Each test starts an etcd and a kube-apiserver (a core for a
//! few seconds, ~400 MB), so they run one at a time and apart from the timed-load tests: in
//! nextest's `timed-load` group, and under `cargo test` holding [`timed_load`]. Needs root and Go (the first run builds kube-apiserver into
//! `~/.cache/portcullis-k8s`, minutes); without them the tests fail, saying why.

mod cluster;
mod deploy;
mod faults;
mod status;
mod test_host;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use testkit::{EchoConfig, EchoServer, GatewayProcess, HttpClient, free_port};

use crate::fixture::manifest::{
    NS, endpoint_slice, gateway, gateway_class, http_route, rule, service, service_ref,
};
use crate::fixture::{eventually, timed_load};
use cluster::TestCluster;
use test_host::{ECHO_BACKEND_ENV, TestHost};

/// How long a change may take to reach the gateway (generous: it includes the watcher's
/// backoff after an API-server restart).
const PROPAGATION: Duration = Duration::from_secs(30);

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The pod of the echo backend that answers `GET /` on `listener`.
async fn answering_pod(client: &HttpClient, listener: SocketAddr) -> anyhow::Result<String> {
    let response = client.get(listener, "shop.example", "/", &[]).await?;
    ensure!(
        response.status == 200,
        "status {} {:?}",
        response.status,
        response.text()
    );
    Ok(response.echo()?.pod)
}

/// Waits until `pod` answers.
async fn until_pod(client: &HttpClient, listener: SocketAddr, pod: &str) -> anyhow::Result<()> {
    eventually(PROPAGATION, async || {
        let answered = answering_pod(client, listener).await?;
        ensure!(answered == pod, "{answered} answered, waiting for {pod}");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn gateway_follows_the_api_server_and_survives_its_restart() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let mut host = TestHost::create()?;
    let first = SocketAddr::from((host.address(2), 8080));
    let second = SocketAddr::from((host.address(3), 8080));
    host.start_echo(first, "first").await?;
    host.start_echo(second, "second").await?;

    let port = free_port();
    for object in [
        namespace(NS),
        gateway_class(),
        gateway(port, None),
        http_route(
            "shop",
            &["shop.example"],
            vec![rule(vec![], vec![service_ref("cart")])],
        ),
        service(NS, "cart", None),
        endpoint_slice(NS, "cart", "cart-1", first),
    ] {
        cluster.apply(&object).await?;
    }
    let gateway = start_gateway(&cluster.kubeconfig(), &["--bind", "127.0.0.1"]).await?;
    let listener = SocketAddr::from(([127, 0, 0, 1], port));
    let client = HttpClient::without_keep_alive().with_timeout(Duration::from_secs(5));
    until_pod(&client, listener, "first").await?;

    // An EndpointSlice edit moves the traffic.
    let edited = std::time::Instant::now();
    cluster
        .apply(&endpoint_slice(NS, "cart", "cart-1", second))
        .await?;
    until_pod(&client, listener, "second").await?;
    eprintln!("EndpointSlice edit served after {:?}", edited.elapsed());

    // The API server goes away: the last good config keeps serving, and the gateway stays ready.
    cluster.stop_apiserver()?;
    for _ in 0..20 {
        assert_eq!(answering_pod(&client, listener).await?, "second");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ready, _) = gateway.get_admin("/ready").await?;
    assert_eq!(ready, 200, "/ready while the API server is down");

    // It comes back: the watches resume and follow the next edit.
    cluster.start_apiserver()?;
    assert_eq!(answering_pod(&client, listener).await?, "second");
    let edited = std::time::Instant::now();
    cluster
        .apply(&endpoint_slice(NS, "cart", "cart-1", first))
        .await?;
    until_pod(&client, listener, "first").await?;
    eprintln!(
        "after the API-server restart, an edit served after {:?}",
        edited.elapsed()
    );
    let (ready, _) = gateway.get_admin("/ready").await?;
    assert_eq!(ready, 200);
    drop(gateway);
    drop(host);
    drop(cluster);
    Ok(())
}

/// The `percent` percentile of `samples` (nearest rank); sorts them.
fn percentile(samples: &mut [Duration], percent: usize) -> Duration {
    samples.sort();
    let rank = (samples.len() * percent).div_ceil(100).max(1);
    samples[rank - 1]
}

/// Applies `object` and waits until `host` is answered by `pod`: the time from the API write
/// to the first request the new config serves.
async fn propagation(
    cluster: &TestCluster,
    client: &HttpClient,
    listener: SocketAddr,
    object: &Value,
    host: &str,
    pod: &str,
) -> anyhow::Result<Duration> {
    let started = std::time::Instant::now();
    cluster.apply(object).await?;
    loop {
        let response = client.get(listener, host, "/", &[]).await?;
        if response.status == 200 && response.echo()?.pod == pod {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < PROPAGATION,
            "{host} never reached {pod}"
        );
    }
}

#[tokio::test]
async fn propagation_with_1000_routes() -> anyhow::Result<()> {
    const ROUTES: usize = 1_000;
    const SAMPLES: usize = 20;
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let mut host = TestHost::create()?;
    let first = SocketAddr::from((host.address(2), 8080));
    let second = SocketAddr::from((host.address(3), 8080));
    host.start_echo(first, "first").await?;
    host.start_echo(second, "second").await?;
    let port = free_port();
    let route = |index: usize, service: &str| {
        http_route(
            &format!("r{index}"),
            &[&format!("r{index}.example")],
            vec![rule(vec![], vec![service_ref(service)])],
        )
    };
    for object in [
        namespace(NS),
        gateway_class(),
        gateway(port, None),
        service(NS, "cart", None),
        endpoint_slice(NS, "cart", "cart-1", first),
        service(NS, "pay", None),
        endpoint_slice(NS, "pay", "pay-1", second),
    ] {
        cluster.apply(&object).await?;
    }
    for index in 0..ROUTES {
        cluster.apply(&route(index, "cart")).await?;
    }
    let _gateway = start_gateway(&cluster.kubeconfig(), &["--bind", "127.0.0.1"]).await?;
    let listener = SocketAddr::from(([127, 0, 0, 1], port));
    let client = HttpClient::new().with_timeout(Duration::from_secs(5));
    let last_host = format!("r{}.example", ROUTES - 1);
    eventually(PROPAGATION, async || {
        let response = client.get(listener, &last_host, "/", &[]).await?;
        ensure!(response.status == 200, "{}", response.status);
        Ok(())
    })
    .await?;

    // Load while everything churns: two clients, on a route whose endpoints move and on the
    // route that is edited; every answer must be a 200.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = |host: &'static str| {
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let client = HttpClient::new().with_timeout(Duration::from_secs(5));
            let (mut sent, mut failed) = (0_u64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                match client.get(listener, host, "/", &[]).await {
                    Ok(response) if response.status == 200 => {}
                    Ok(response) => {
                        failed.push(format!("{} {:?}", response.status, response.text()))
                    }
                    Err(error) => failed.push(format!("{error:#}")),
                }
            }
            (sent, failed)
        })
    };
    let loads = [load("r2.example"), load("r1.example")];

    // EndpointSlice edits: cart's endpoint moves between the two backends.
    let mut endpoint_edits = Vec::new();
    for sample in 0..SAMPLES {
        let (to, pod) = if sample % 2 == 0 {
            (second, "second")
        } else {
            (first, "first")
        };
        let slice = endpoint_slice(NS, "cart", "cart-1", to);
        endpoint_edits
            .push(propagation(&cluster, &client, listener, &slice, "r0.example", pod).await?);
    }
    // HTTPRoute edits: route r1 moves between the two Services (cart is on `first` again).
    let mut route_edits = Vec::new();
    for sample in 0..SAMPLES {
        let (service, pod) = if sample % 2 == 0 {
            ("pay", "second")
        } else {
            ("cart", "first")
        };
        route_edits.push(
            propagation(
                &cluster,
                &client,
                listener,
                &route(1, service),
                "r1.example",
                pod,
            )
            .await?,
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in loads {
        let (sent, failed) = task.await?;
        eprintln!(
            "load during the edits: {sent} requests, {} failed",
            failed.len()
        );
        assert!(sent > 0);
        assert!(
            failed.is_empty(),
            "{} of {sent} requests failed under churn: {:?}",
            failed.len(),
            &failed[..failed.len().min(5)]
        );
    }
    let endpoint_p99 = percentile(&mut endpoint_edits, 99);
    let route_p99 = percentile(&mut route_edits, 99);
    eprintln!(
        "{ROUTES} routes, from the API write: EndpointSlice edit p50 {:?} p99 {endpoint_p99:?}; \
         HTTPRoute edit p50 {:?} p99 {route_p99:?}",
        percentile(&mut endpoint_edits, 50),
        percentile(&mut route_edits, 50),
    );
    // Every edit above was served (`propagation` fails after `PROPAGATION`) with no failed
    // request. Issue 12's latency budgets (p99 < 50 ms and < 100 ms) are a benchmark's to check
    // (`bench/k8s-propagation`, on a quiet host with the optimised binary): on a shared CI host
    // this unoptimised build's p99 moved from 33 ms to 164 ms with the host's load alone.
    Ok(())
}

/// Starts the gateway in Kubernetes mode against the API server of `kubeconfig`, without an
/// access log, with `extra` flags (`--bind 127.0.0.1` for most tests).
async fn start_gateway(
    kubeconfig: &std::path::Path,
    extra: &[&str],
) -> anyhow::Result<GatewayProcess> {
    let kubeconfig = kubeconfig.to_str().context("kubeconfig path")?;
    let mut args = vec![
        "--kubernetes",
        "--kubeconfig",
        kubeconfig,
        "--access-log",
        "off",
    ];
    args.extend_from_slice(extra);
    GatewayProcess::start_without_config(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        &args,
    )
    .await
}

/// A GatewayClass of another controller, with one Gateway.
fn other_controllers_objects() -> [Value; 2] {
    [
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "other"},
            "spec": {"controllerName": "example.com/other-controller"},
        }),
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "other-gw", "namespace": NS},
            "spec": {"gatewayClassName": "other",
                     "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
        }),
    ]
}

/// The condition `kind` of `conditions`, if any.
fn find_condition<'a>(conditions: &'a Value, kind: &str) -> Option<&'a Value> {
    conditions.as_array()?.iter().find(|c| c["type"] == kind)
}

#[tokio::test]
async fn status_is_written_back_for_our_objects_only_and_only_when_changed() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let port = free_port();
    let route = http_route(
        "shop",
        &["shop.example"],
        vec![rule(vec![], vec![service_ref("cart")])],
    );
    let mut routed_to_both = route.clone();
    routed_to_both["spec"]["parentRefs"]
        .as_array_mut()
        .context("parentRefs")?
        .push(json!({"name": "other-gw", "namespace": NS}));
    let [other_class, other_gateway] = other_controllers_objects();
    for object in [
        namespace(NS),
        gateway_class(),
        gateway(port, None),
        other_class.clone(),
        other_gateway,
        routed_to_both.clone(),
        service(NS, "cart", None),
    ] {
        cluster.apply(&object).await?;
    }
    // The other controller has written its entry of the route's status.parents already.
    let other_entry = json!({
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                      "namespace": NS, "name": "other-gw"},
        "controllerName": "example.com/other-controller",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "theirs", "observedGeneration": 1,
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    });
    let mut their_status = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": NS},
    });
    their_status["status"] = json!({"parents": [other_entry]});
    cluster
        .apply_status(&their_status, "other-controller")
        .await?;

    let _gateway = start_gateway(&cluster.kubeconfig(), &["--bind", "127.0.0.1"]).await?;

    // Our Gateway: Programmed, with the generation it describes.
    let gateway_object = gateway(port, None);
    eventually(PROPAGATION, async || {
        let gateway = cluster.get(&gateway_object).await?;
        let programmed = find_condition(&gateway["status"]["conditions"], "Programmed")
            .context("no Programmed condition yet")?;
        ensure!(programmed["status"] == "True", "{programmed}");
        ensure!(programmed["observedGeneration"] == gateway["metadata"]["generation"]);
        ensure!(
            gateway["status"]["listeners"][0]["attachedRoutes"] == 1,
            "{}",
            gateway["status"]
        );
        let class = cluster.get(&gateway_class()).await?;
        let accepted = find_condition(&class["status"]["conditions"], "Accepted")
            .context("GatewayClass not Accepted yet")?;
        ensure!(accepted["status"] == "True", "{accepted}");
        Ok(())
    })
    .await?;

    // The route: our entry added next to the other controller's, which is untouched.
    let parents = eventually(PROPAGATION, async || {
        let route = cluster.get(&routed_to_both).await?;
        let parents = route["status"]["parents"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        ensure!(parents.len() == 2, "parents: {parents:?}");
        Ok(parents)
    })
    .await?;
    assert!(
        parents.contains(&other_entry),
        "the other controller's entry changed: {parents:?}"
    );
    let ours = parents
        .iter()
        .find(|p| p["controllerName"] == "portcullis.dev/gateway-controller")
        .context("our entry")?;
    assert_eq!(ours["parentRef"]["name"], "gw");
    assert_eq!(
        find_condition(&ours["conditions"], "Accepted").context("Accepted")?["status"],
        "True"
    );

    // The other controller's GatewayClass keeps the status the API server defaulted it to.
    let other = cluster.get(&other_class).await?;
    let conditions = other["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        conditions.iter().all(|c| c["reason"] == "Pending"),
        "another controller's GatewayClass was written: {conditions:?}"
    );

    // Nothing changes: nothing is written (the resourceVersion stays).
    let before = cluster.get(&routed_to_both).await?["metadata"]["resourceVersion"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cluster.get(&routed_to_both).await?["metadata"]["resourceVersion"].clone();
    assert_eq!(before, after, "status written again without a change");

    // A spec edit bumps the generation; the status follows it.
    let mut edited = routed_to_both.clone();
    edited["spec"]["hostnames"] = json!(["shop.example", "www.shop.example"]);
    cluster.apply(&edited).await?;
    eventually(PROPAGATION, async || {
        let route = cluster.get(&edited).await?;
        let generation = route["metadata"]["generation"].clone();
        ensure!(generation == 2, "generation {generation}");
        let ours = route["status"]["parents"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["controllerName"] == "portcullis.dev/gateway-controller")
            .context("our entry")?;
        let accepted = find_condition(&ours["conditions"], "Accepted").context("Accepted")?;
        ensure!(accepted["observedGeneration"] == generation, "{accepted}");
        Ok(())
    })
    .await?;
    Ok(())
}

/// The gateway as a child process that is not waited for: for tests of readiness itself.
/// Killed (by its own PID) on drop.
struct Unready {
    child: std::process::Child,
    admin: SocketAddr,
}

impl Unready {
    fn spawn(args: &[&str]) -> anyhow::Result<Unready> {
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("run")
            .arg("--admin")
            .arg(admin.to_string())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("spawning portcullis")?;
        Ok(Unready { child, admin })
    }

    /// The status `/ready` answers (the process must still run).
    async fn ready(&mut self, client: &HttpClient) -> anyhow::Result<u16> {
        ensure!(self.child.try_wait()?.is_none(), "the gateway exited");
        Ok(client
            .get(self.admin, "", "/ready", &[])
            .await?
            .status
            .as_u16())
    }
}

impl Drop for Unready {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The documents of `deploy/<file>`.
fn deploy_documents(file: &str) -> anyhow::Result<Vec<Value>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    serde_saphyr::from_multiple::<Value>(&text)
        .with_context(|| format!("deploy/{file} is not YAML"))
}

/// The documents of `deploy/rbac.yaml`.
fn deploy_rbac() -> anyhow::Result<Vec<Value>> {
    deploy_documents("rbac.yaml")
}

#[tokio::test]
async fn deploy_files_apply_to_the_api_server() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    for document in deploy_rbac()? {
        cluster.apply(&document).await?;
    }
    let documents = deploy_documents("gateway.yaml")?;
    ensure!(
        documents.len() == 3,
        "deploy/gateway.yaml: {} documents",
        documents.len()
    );
    for document in &documents {
        cluster.apply_dry_run(document).await?;
    }
    Ok(())
}

#[tokio::test]
async fn readiness_waits_for_every_kind_and_the_deploy_role_is_enough() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let port = free_port();
    // An HTTPS listener: its certificate Secret is read (only it), so the sync needs Secrets.
    let mut tls_gateway = gateway(port, None);
    tls_gateway["spec"]["listeners"]
        .as_array_mut()
        .context("listeners")?
        .push(
            json!({"name": "https", "protocol": "HTTPS", "port": free_port(),
                     "tls": {"mode": "Terminate", "certificateRefs": [{"name": "cert"}]}}),
        );
    let certificate = testkit::pki::Certificate::self_signed(&["shop.example"])?;
    for object in [
        namespace(NS),
        gateway_class(),
        tls_gateway,
        certificate.secret_object(NS, "cert"),
        http_route(
            "shop",
            &["shop.example"],
            vec![rule(vec![], vec![service_ref("cart")])],
        ),
        service(NS, "cart", None),
    ] {
        cluster.apply(&object).await?;
    }
    let rbac = deploy_rbac()?;
    let role = rbac
        .iter()
        .find(|document| document["kind"] == "ClusterRole")
        .context("deploy/rbac.yaml has no ClusterRole")?
        .clone();
    // The test user gets the deploy role's rules, first without Secrets: one kind can never
    // be listed, so the first full sync never completes.
    let mut without_secrets = role.clone();
    for rule in without_secrets["rules"].as_array_mut().context("rules")? {
        if let Some(resources) = rule["resources"].as_array_mut() {
            resources.retain(|resource| resource != "secrets");
        }
    }
    cluster.apply(&without_secrets).await?;
    cluster
        .apply(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": "portcullis-test"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role["metadata"]["name"]},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kapi-user"}],
        }))
        .await?;
    // The Lease Role of deploy/rbac.yaml, bound to the test user in its namespace.
    for document in &rbac {
        if document["kind"] == "Namespace" || document["kind"] == "Role" {
            cluster.apply(document).await?;
        }
        if document["kind"] == "RoleBinding" {
            let mut binding = document.clone();
            binding["subjects"] = json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kapi-user"}]);
            cluster.apply(&binding).await?;
        }
    }
    let lease_namespace = rbac
        .iter()
        .find(|document| document["kind"] == "Role")
        .and_then(|role| role["metadata"]["namespace"].as_str())
        .context("deploy/rbac.yaml has no Role for the Lease")?
        .to_owned();
    let kubeconfig = cluster.kubeconfig_for_token("kapi-user-token")?;
    let kubeconfig = kubeconfig.to_str().context("kubeconfig path")?;
    let mut gateway = Unready::spawn(&[
        "--lease-namespace",
        &lease_namespace,
        "--kubernetes",
        "--kubeconfig",
        kubeconfig,
        "--bind",
        "127.0.0.1",
        "--access-log",
        "off",
    ])?;
    let admin = HttpClient::without_keep_alive().with_timeout(Duration::from_secs(2));
    // The admin server comes up, and answers 503 while Secrets cannot be listed.
    eventually(Duration::from_secs(10), async || {
        gateway.ready(&admin).await
    })
    .await?;
    for _ in 0..15 {
        assert_eq!(
            gateway.ready(&admin).await?,
            503,
            "ready before Secrets were listed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // With the whole deploy role, the sync completes: ready, and the status is written back.
    cluster.apply(&role).await?;
    eventually(PROPAGATION, async || {
        let status = gateway.ready(&admin).await?;
        ensure!(status == 200, "/ready {status}");
        Ok(())
    })
    .await?;
    let gateway_object = crate::fixture::manifest::gateway(port, None);
    eventually(PROPAGATION, async || {
        let written = cluster.get(&gateway_object).await?;
        let programmed = find_condition(&written["status"]["conditions"], "Programmed")
            .context("no Programmed condition yet")?;
        ensure!(programmed["status"] == "True", "{programmed}");
        Ok(())
    })
    .await?;
    Ok(())
}

fn opaque_secret(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
           "type": "Opaque", "data": {"tls.crt": "", "tls.key": ""}})
}

/// The names of the Secrets in the update's store.
fn secret_names(update: &source::SourceUpdate) -> Vec<String> {
    update
        .store
        .secrets
        .keys()
        .map(|(_, name)| name.to_string())
        .collect()
}

#[tokio::test]
async fn only_referenced_secrets_are_read() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let mut https = gateway(free_port(), None);
    https["spec"]["listeners"] = json!([{
        "name": "https", "protocol": "HTTPS", "port": 443,
        "tls": {"mode": "Terminate", "certificateRefs": [{"name": "used"}]},
    }]);
    for object in [
        namespace(NS),
        gateway_class(),
        https.clone(),
        opaque_secret("used"),
        opaque_secret("unused"),
    ] {
        cluster.apply(&object).await?;
    }
    let source =
        kube_source::KubeSource::start(cluster.client(), &kube_source::KubeOptions::default())
            .await?;
    let mut updates = source.synced().await?;
    let first = updates.borrow_and_update().clone();
    assert_eq!(
        secret_names(&first),
        ["used"],
        "the first update waits for the referenced Secret"
    );

    // The Gateway now references the other Secret: it is read, and the first one dropped.
    https["spec"]["listeners"][0]["tls"]["certificateRefs"] = json!([{"name": "unused"}]);
    cluster.apply(&https).await?;
    eventually(PROPAGATION, async || {
        let names = secret_names(&updates.borrow_and_update());
        ensure!(names == ["unused"], "secrets {names:?}");
        Ok(())
    })
    .await?;
    // An edit of a referenced Secret arrives like any other change.
    let mut rotated = opaque_secret("unused");
    rotated["data"]["tls.crt"] = json!("cm90YXRlZA==");
    cluster.apply(&rotated).await?;
    eventually(PROPAGATION, async || {
        let update = updates.borrow_and_update().clone();
        let secret = update
            .store
            .secrets
            .get(&(NS.into(), "unused".into()))
            .context("no Secret")?;
        let data = secret.data.as_ref().context("no data")?;
        ensure!(
            data.get("tls.crt").is_some_and(|v| v.0 == b"rotated"),
            "not rotated yet"
        );
        Ok(())
    })
    .await?;
    Ok(())
}

/// The `/status` entry of `kind namespace/name`, if any.
fn status_of<'a>(
    document: &'a Value,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Option<&'a Value> {
    document["objects"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == kind && o["namespace"] == namespace && o["name"] == name)
}

#[tokio::test]
async fn namespaces_limit_what_is_read_and_local_files_override_the_cluster() -> anyhow::Result<()>
{
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let mut elsewhere = http_route("elsewhere", &["other.example"], vec![rule(vec![], vec![])]);
    elsewhere["metadata"]["namespace"] = json!("other");
    for object in [
        namespace(NS),
        namespace("other"),
        gateway_class(),
        gateway(free_port(), None),
        http_route(
            "shop",
            &["shop.example"],
            vec![rule(vec![], vec![service_ref("cart")])],
        ),
        service(NS, "cart", None),
        elsewhere,
    ] {
        cluster.apply(&object).await?;
    }
    // The local file redefines HTTPRoute e2e/shop: its backend is a Service that does not exist.
    let local = testkit::TempConfigDir::new()?;
    let overriding = http_route(
        "shop",
        &["shop.example"],
        vec![rule(vec![], vec![service_ref("missing")])],
    );
    local.write(
        "override.yaml",
        &crate::fixture::manifest::to_yaml(&[overriding]),
    )?;
    let kubeconfig = cluster.kubeconfig();
    let kubeconfig = kubeconfig.to_str().context("kubeconfig path")?;
    let gateway = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        local.path(),
        &[
            "--kubernetes",
            "--kubeconfig",
            kubeconfig,
            "--namespaces",
            NS,
            "--bind",
            "127.0.0.1",
            "--access-log",
            "off",
        ],
    )
    .await?;
    let (_, body) = gateway.get_admin("/status").await?;
    let status: Value = serde_json::from_str(&body)?;
    let route = status_of(&status, "HTTPRoute", NS, "shop").context("HTTPRoute e2e/shop")?;
    assert!(
        route.to_string().contains("BackendNotFound") && route.to_string().contains("missing"),
        "the local file's route is not the one compiled: {route}"
    );
    assert!(
        status_of(&status, "HTTPRoute", "other", "elsewhere").is_none(),
        "a route outside --namespaces was read: {body}"
    );
    Ok(())
}

/// The holder of the Lease `portcullis` in `default`, if any.
async fn lease_holder(cluster: &TestCluster) -> anyhow::Result<Option<String>> {
    let lease = cluster
        .get(
            &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": "portcullis", "namespace": "default"}}),
        )
        .await?;
    Ok(lease["spec"]["holderIdentity"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn one_replica_writes_status_and_another_takes_over_when_it_dies() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let port = free_port();
    let route = http_route(
        "shop",
        &["shop.example"],
        vec![rule(vec![], vec![service_ref("cart")])],
    );
    // No spec.addresses: each replica binds its own --bind address (two processes on one host).
    let mut unbound = gateway(port, None);
    unbound["spec"]
        .as_object_mut()
        .context("spec")?
        .remove("addresses");
    for object in [
        namespace(NS),
        gateway_class(),
        unbound,
        route.clone(),
        service(NS, "cart", None),
    ] {
        cluster.apply(&object).await?;
    }
    let kubeconfig = cluster.kubeconfig();
    let kubeconfig = kubeconfig.to_str().context("kubeconfig path")?;
    let replica = |identity: &'static str, bind: &'static str| {
        let kubeconfig = kubeconfig.to_owned();
        async move {
            GatewayProcess::start_without_config(
                std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
                &[
                    "--kubernetes",
                    "--kubeconfig",
                    &kubeconfig,
                    "--bind",
                    bind,
                    "--access-log",
                    "off",
                    "--lease-identity",
                    identity,
                    "--lease-duration",
                    "3s",
                ],
            )
            .await
        }
    };
    let first = replica("replica-a", "127.0.0.1").await?;
    let second = replica("replica-b", "127.0.0.2").await?;
    let holder = eventually(PROPAGATION, async || {
        lease_holder(&cluster).await?.context("no holder yet")
    })
    .await?;
    let (mut leader, follower, follower_identity) = if holder == "replica-a" {
        (first, second, "replica-b")
    } else {
        (second, first, "replica-a")
    };
    // The status is written (by the leader), and the follower never leads meanwhile.
    eventually(PROPAGATION, async || {
        let written = cluster.get(&route).await?;
        ensure!(
            written["status"]["parents"]
                .as_array()
                .is_some_and(|p| !p.is_empty()),
            "{}",
            written["status"]
        );
        Ok(())
    })
    .await?;
    assert!(leader.stderr_text().contains("became the leader"));
    assert!(
        !follower.stderr_text().contains("became the leader"),
        "both replicas led"
    );

    // The leader dies without releasing the Lease: the follower takes over once it expires.
    let killed = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &leader.pid().to_string()])
        .status()?;
    ensure!(status.success(), "kill -KILL failed");
    leader.wait_exit(Duration::from_secs(5)).await?;
    eventually(PROPAGATION, async || {
        let holder = lease_holder(&cluster).await?;
        ensure!(
            holder.as_deref() == Some(follower_identity),
            "holder {holder:?}"
        );
        Ok(())
    })
    .await?;
    eprintln!(
        "Lease taken over {:?} after the leader died",
        killed.elapsed()
    );
    assert!(
        killed.elapsed() < Duration::from_secs(3 + 2 + 5),
        "took over too late"
    );

    // The new leader writes: a spec edit gets its observedGeneration.
    let mut edited = route.clone();
    edited["spec"]["hostnames"] = json!(["shop.example", "www.shop.example"]);
    cluster.apply(&edited).await?;
    eventually(PROPAGATION, async || {
        let written = cluster.get(&edited).await?;
        let accepted = written["status"]["parents"][0]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Accepted"))
            .context("no Accepted")?;
        ensure!(accepted["observedGeneration"] == 2, "{accepted}");
        Ok(())
    })
    .await?;
    assert!(follower.stderr_text().contains("became the leader"));
    Ok(())
}

/// Not a test: the echo backend [`TestHost::start_echo`] runs inside the test's network
/// namespace, by running this test binary again with [`ECHO_BACKEND_ENV`] set to `ADDR POD`.
/// Without it (a plain `--ignored` run) it returns at once.
#[tokio::test]
#[ignore = "helper process of the Kubernetes tests (an echo backend in their network namespace), not a test"]
async fn echo_backend() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var(ECHO_BACKEND_ENV) else {
        return Ok(());
    };
    let (addr, pod) = spec.split_once(' ').context("ADDR POD")?;
    let mut config = EchoConfig::new(pod, NS);
    config.bind = addr.parse().context("backend address")?;
    let _server = EchoServer::start(config).await?;
    // Serves until the test kills this process.
    std::future::pending::<()>().await;
    Ok(())
}
