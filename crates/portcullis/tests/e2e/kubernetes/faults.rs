//! Faults between the gateway and the API server under steady load (issue 12): a watch cut
//! mid-stream, `410 Gone` after an etcd compaction, and the API server killed and restarted.
//!
//! Each test serves [`ROUTES`] HTTPRoutes to one Service while a [`Sampler`] requests every route
//! in turn (one keep-alive client, one request after another) and `/ready` every few requests.
//! Every answer must be a 200 from one of the backends: a route missing from a partially
//! published config would answer 404, a lost backend 500 or 503. A change made during the
//! fault must be served once it is over (the config converges). The gateway's API traffic goes
//! through a [`Relay`] the test owns where a fault needs a cut: the relay closes every
//! connection at once and refuses new ones until it is resumed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use testkit::{GatewayProcess, HttpClient, free_port};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::cluster::TestCluster;
use super::test_host::TestHost;
use super::{PROPAGATION, namespace, start_gateway};
use crate::fixture::manifest::{
    NS, endpoint_slice, gateway, gateway_class, http_route, rule, service, service_ref,
};
use crate::fixture::{eventually, timed_load};

/// Routes served throughout; the sampler checks every one.
const ROUTES: usize = 20;

/// The most requests a sampler sends (it stops earlier when told).
const MAX_SAMPLES: u64 = 1_000_000;

/// A TCP relay from a local port to the API server that can cut every connection at once.
struct Relay {
    addr: SocketAddr,
    /// `(is_up, cut generation)`: a new generation closes every open connection.
    state: watch::Sender<(bool, u64)>,
    /// Connections closed by a cut.
    cut: Arc<AtomicUsize>,
    /// Connections accepted (and relayed) so far.
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel((true, 0_u64));
        let cut = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let state = state.clone();
            let (cut, accepted) = (Arc::clone(&cut), Arc::clone(&accepted));
            async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let mut changes = state.subscribe();
                    let (is_up, generation) = *changes.borrow_and_update();
                    if !is_up {
                        // Refused while down: the gateway sees a closed connection.
                        continue;
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let cut = Arc::clone(&cut);
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = changes.wait_for(|(_, now)| *now != generation) => {
                                cut.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
            }
        });
        Ok(Relay {
            addr,
            state,
            cut,
            accepted,
            task,
        })
    }

    /// Closes every relayed connection and refuses new ones until [`Relay::resume`].
    fn cut_and_hold(&self) {
        self.state.send_modify(|(is_up, generation)| {
            *is_up = false;
            *generation += 1;
        });
    }

    fn resume(&self) {
        self.state.send_modify(|(is_up, _)| *is_up = true);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A copy of the cluster's admin kubeconfig that reaches the API server through `relay`.
fn kubeconfig_through(cluster: &TestCluster, relay: &Relay) -> anyhow::Result<std::path::PathBuf> {
    let original = cluster.kubeconfig();
    let text = std::fs::read_to_string(&original)?;
    let direct = format!("https://127.0.0.1:{}", cluster.api_port());
    ensure!(
        text.contains(&direct),
        "the kubeconfig does not name {direct}"
    );
    let relayed = text.replace(&direct, &format!("https://{}", relay.addr));
    let path = original.with_file_name(format!("kubeconfig-relay-{}", relay.addr.port()));
    std::fs::write(&path, relayed)?;
    Ok(path)
}

/// What a sampler saw.
struct Samples {
    sent: u64,
    failed: Vec<String>,
    not_ready: Vec<String>,
}

/// Requests every route in turn, and `/ready` every [`ROUTES`] requests, until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Samples>,
}

impl Sampler {
    fn start(listener: SocketAddr, admin: SocketAddr) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let client = HttpClient::new().with_timeout(Duration::from_secs(5));
                let admin_client =
                    HttpClient::without_keep_alive().with_timeout(Duration::from_secs(5));
                let mut samples = Samples {
                    sent: 0,
                    failed: Vec::new(),
                    not_ready: Vec::new(),
                };
                while !stop.load(Ordering::Relaxed) && samples.sent < MAX_SAMPLES {
                    let route = usize::try_from(samples.sent).unwrap_or(0) % ROUTES;
                    let host = format!("r{route}.example");
                    samples.sent += 1;
                    match client.get(listener, &host, "/", &[]).await {
                        Ok(response) if response.status == 200 => {}
                        Ok(response) => samples.failed.push(format!(
                            "{host}: {} {:?}",
                            response.status,
                            response.text()
                        )),
                        Err(error) => samples.failed.push(format!("{host}: {error:#}")),
                    }
                    if route == 0 {
                        match admin_client.get(admin, "", "/ready", &[]).await {
                            Ok(response) if response.status == 200 => {}
                            Ok(response) => samples
                                .not_ready
                                .push(format!("/ready answered {}", response.status)),
                            Err(error) => samples.not_ready.push(format!("/ready: {error:#}")),
                        }
                    }
                }
                samples
            }
        });
        Sampler { stop, task }
    }

    /// Stops it and asserts that every request succeeded and `/ready` always answered 200.
    async fn finish(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let samples = self.task.await?;
        eprintln!(
            "sampler: {} requests over {ROUTES} routes, {} failed",
            samples.sent,
            samples.failed.len()
        );
        ensure!(samples.sent > 0, "the sampler sent nothing");
        ensure!(
            samples.failed.is_empty(),
            "{} of {} requests failed during the fault: {:?}",
            samples.failed.len(),
            samples.sent,
            &samples.failed[..samples.failed.len().min(5)]
        );
        ensure!(
            samples.not_ready.is_empty(),
            "/ready was not 200 during the fault: {:?}",
            &samples.not_ready[..samples.not_ready.len().min(5)]
        );
        Ok(samples.sent)
    }
}

/// The API server's objects and the backends: [`ROUTES`] routes to Service `cart`, whose one
/// endpoint is `first` until the test moves it to `second`.
struct Scene {
    /// Runs the backends until the scene is dropped.
    _host: TestHost,
    first: SocketAddr,
    second: SocketAddr,
    port: u16,
}

impl Scene {
    async fn create(cluster: &TestCluster) -> anyhow::Result<Scene> {
        let mut host = TestHost::create()?;
        let first = SocketAddr::from((host.address(2), 8080));
        let second = SocketAddr::from((host.address(3), 8080));
        host.start_echo(first, "first").await?;
        host.start_echo(second, "second").await?;
        let port = free_port();
        let mut objects = vec![
            namespace(NS),
            gateway_class(),
            gateway(port, None),
            service(NS, "cart", None),
            endpoint_slice(NS, "cart", "cart-1", first),
        ];
        for index in 0..ROUTES {
            objects.push(route(index));
        }
        for object in &objects {
            cluster.apply(object).await?;
        }
        Ok(Scene {
            _host: host,
            first,
            second,
            port,
        })
    }

    fn listener(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Starts the gateway with `kubeconfig` and waits until every route answers.
    async fn start_gateway(&self, kubeconfig: &std::path::Path) -> anyhow::Result<GatewayProcess> {
        let gateway = start_gateway(kubeconfig, &["--bind", "127.0.0.1"]).await?;
        self.until_every_route_answers("first").await?;
        Ok(gateway)
    }

    /// Waits until every route is answered by `pod`.
    async fn until_every_route_answers(&self, pod: &str) -> anyhow::Result<()> {
        let client = HttpClient::without_keep_alive().with_timeout(Duration::from_secs(5));
        let listener = self.listener();
        eventually(PROPAGATION, async || {
            for index in 0..ROUTES {
                let host = format!("r{index}.example");
                let response = client.get(listener, &host, "/", &[]).await?;
                ensure!(response.status == 200, "{host}: {}", response.status);
                let answered = response.echo()?.pod;
                ensure!(
                    answered == pod,
                    "{host}: {answered} answered, waiting for {pod}"
                );
            }
            Ok(())
        })
        .await
    }

    /// The EndpointSlice with its endpoint on `second`.
    fn moved_slice(&self) -> Value {
        endpoint_slice(NS, "cart", "cart-1", self.second)
    }
}

fn route(index: usize) -> Value {
    http_route(
        &format!("r{index}"),
        &[&format!("r{index}.example")],
        vec![rule(vec![], vec![service_ref("cart")])],
    )
}

/// POSTs `body` to etcd's JSON gateway at `path` and returns the answer.
async fn etcd(cluster: &TestCluster, path: &str, body: &Value) -> anyhow::Result<Value> {
    let client = HttpClient::without_keep_alive().with_timeout(Duration::from_secs(10));
    let response = client
        .request(
            http::Method::POST,
            cluster.etcd_addr(),
            "127.0.0.1",
            path,
            &[("content-type", "application/json")],
            body.to_string().into(),
        )
        .await?;
    ensure!(
        response.status == 200,
        "etcd {path}: {} {}",
        response.status,
        response.text()
    );
    serde_json::from_slice(&response.body).context("etcd's answer")
}

/// Compacts etcd's history up to its current revision (physically), so that a watch resumed
/// from an older resourceVersion is answered `410 Gone`. Returns the revision.
async fn compact_etcd(cluster: &TestCluster) -> anyhow::Result<i64> {
    // Any range read answers with the store's current revision in its header.
    let range = etcd(cluster, "/v3/kv/range", &json!({"key": "AA=="})).await?;
    let revision: i64 = range["header"]["revision"]
        .as_str()
        .context("etcd's revision")?
        .parse()?;
    etcd(
        cluster,
        "/v3/kv/compaction",
        &json!({"revision": revision.to_string(), "physical": true}),
    )
    .await?;
    Ok(revision)
}

#[tokio::test]
async fn watch_cut_mid_stream_loses_no_request_and_no_config() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let scene = Scene::create(&cluster).await?;
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], cluster.api_port()))).await?;
    let gateway = scene
        .start_gateway(&kubeconfig_through(&cluster, &relay)?)
        .await?;
    let sampler = Sampler::start(scene.listener(), gateway.admin_addr());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every watch is cut mid-stream and cannot reconnect for a second, while the
    // EndpointSlice changes.
    relay.cut_and_hold();
    cluster.apply(&scene.moved_slice()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let accepted_before = relay.accepted.load(Ordering::Relaxed);
    relay.resume();
    scene.until_every_route_answers("second").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampler.finish().await?;

    let cut = relay.cut.load(Ordering::Relaxed);
    ensure!(cut > 0, "no connection was open to cut");
    ensure!(
        relay.accepted.load(Ordering::Relaxed) > accepted_before,
        "the gateway did not reconnect"
    );
    eprintln!("{cut} API connections cut");
    let (ready, _) = gateway.get_admin("/ready").await?;
    ensure!(ready == 200, "/ready {ready} after the cut");
    drop(gateway);
    drop(scene);
    Ok(())
}

#[tokio::test]
async fn gone_after_etcd_compaction_relists_without_a_partial_config() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    // Without the watch cache, a watch resumed from a compacted resourceVersion goes to etcd
    // and is answered 410 Gone; the cache would hide it (it serves recent history itself).
    let cluster = TestCluster::start_with_apiserver_args("--watch-cache=false").await?;
    let scene = Scene::create(&cluster).await?;
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], cluster.api_port()))).await?;
    let gateway = scene
        .start_gateway(&kubeconfig_through(&cluster, &relay)?)
        .await?;
    let sampler = Sampler::start(scene.listener(), gateway.admin_addr());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // While the watches are cut, the EndpointSlice changes and etcd forgets every revision the
    // watchers could resume from.
    relay.cut_and_hold();
    cluster.apply(&scene.moved_slice()).await?;
    let revision = compact_etcd(&cluster).await?;
    relay.resume();
    scene.until_every_route_answers("second").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampler.finish().await?;

    // The watchers did get 410 Gone (and so relisted).
    let log = gateway.stderr_text();
    let gone: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("watch failed") && line.contains("(HTTP 410)"))
        .collect();
    ensure!(
        !gone.is_empty(),
        "no watch saw 410 Gone after the compaction at revision {revision}; gateway log:\n{log}"
    );
    eprintln!(
        "compacted at revision {revision}; {} watch failures with 410, e.g. {}",
        gone.len(),
        gone[0]
    );
    let (ready, _) = gateway.get_admin("/ready").await?;
    ensure!(ready == 200, "/ready {ready} after the relist");
    drop(gateway);
    drop(scene);
    Ok(())
}

#[tokio::test]
async fn api_server_killed_and_restarted_loses_no_request() -> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let scene = Scene::create(&cluster).await?;
    let gateway = scene.start_gateway(&cluster.kubeconfig()).await?;
    let sampler = Sampler::start(scene.listener(), gateway.admin_addr());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // SIGKILL: no graceful close of the watches.
    let pid = cluster.apiserver_pid()?;
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -KILL {pid}: {status}");
    // Gone once reaped (its parent, the script, has exited: init reaps it).
    eventually(Duration::from_secs(10), async || {
        ensure!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "kube-apiserver {pid} not reaped yet"
        );
        Ok(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_apiserver()?;
    cluster.apply(&scene.moved_slice()).await?;
    scene.until_every_route_answers("second").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampler.finish().await?;
    let (ready, _) = gateway.get_admin("/ready").await?;
    ensure!(ready == 200, "/ready {ready} after the restart");
    ensure!(scene.first != scene.second);
    drop(gateway);
    drop(scene);
    Ok(())
}
