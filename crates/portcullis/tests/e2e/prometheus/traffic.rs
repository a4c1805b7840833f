//! A gateway that has been through everything the dashboard shows: traffic on several routes
//! (200s, a 404, 5xx), retries until the retry budget ran out, a circuit breaker that opened
//! and rejected, an outlier ejection, an endpoint the active health check marks unhealthy, a
//! config file rejected on reload (then fixed), SecurityPolicy and RateLimitPolicy decisions,
//! and client connections refused at the listener limit and closed at the header timeout.
//!
//! Every step waits (with a deadline) until its series is in a scrape, so a step that stops
//! producing its series fails here, naming the step, rather than as a missing name later.

use std::time::Duration;

use anyhow::{Context, ensure};
use http::StatusCode;
use serde_json::{Value, json};
use testkit::{ClosedPort, FaultyUpstream, HttpClient, UpstreamBehaviour, reserve_closed_port};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::scrape::Scrape;
use crate::access::policy;
use crate::fixture::eventually;
use crate::fixture::manifest::{
    GATEWAY, NS, http_route, path_match, rule, service_backend, service_ref,
};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// The API key the `secure` route accepts.
const API_KEY: &str = "key-ana";

/// The file a rejected reload writes (and removes again).
const BROKEN_FILE: &str = "zz-broken.yaml";

/// How long each wait for a series may take.
const SERIES_DEADLINE: Duration = Duration::from_secs(10);

/// The listener's connection limit (ClientTrafficPolicy), low enough to reach with idle
/// connections.
const MAX_CONNECTIONS: usize = 8;

/// The running gateway and the upstreams behind it.
pub(crate) struct ExercisedGateway {
    pub(crate) gateway: TestGateway,
    /// A client without keep-alive: every request is a connection of its own, so no pooled
    /// connection sits idle into the header timeout or counts against the listener limit.
    client: HttpClient,
    _echoes: Echoes,
    _upstreams: Vec<FaultyUpstream>,
    /// The pool's endpoint that refuses connections.
    _refusing: ClosedPort,
}

impl ExercisedGateway {
    /// Starts the gateway (not yet exercised).
    ///
    /// Routes: `/shop` (an echo pod), `/retry` (503s, retried within a budget), `/breaker`
    /// (500s behind an error-rate breaker), `/pool` (a good pod, a pod answering 500 and an
    /// endpoint refusing connections, with passive and active health checks), `/secure` (API
    /// keys) and `/limited` (two requests a minute).
    pub(crate) async fn start() -> anyhow::Result<ExercisedGateway> {
        let echoes = Echoes::start(&["shop", "good"]).await?;
        let unavailable = FaultyUpstream::start(
            "unavailable",
            UpstreamBehaviour::answer(StatusCode::SERVICE_UNAVAILABLE),
        )
        .await?;
        let broken = FaultyUpstream::start(
            "broken",
            UpstreamBehaviour::answer(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .await?;
        let bad = FaultyUpstream::start(
            "bad",
            UpstreamBehaviour::answer(StatusCode::INTERNAL_SERVER_ERROR),
        )
        .await?;

        let refusing = reserve_closed_port();
        let mut documents = service_backend(NS, "shop", &[echoes.addr("shop")]);
        documents.extend(service_backend(NS, "unavailable", &[unavailable.addr()]));
        documents.extend(service_backend(NS, "broken", &[broken.addr()]));
        documents.extend(service_backend(
            NS,
            "pool",
            &[echoes.addr("good"), bad.addr(), refusing.addr()],
        ));
        for (route, service) in [
            ("shop", "shop"),
            ("retry", "unavailable"),
            ("breaker", "broken"),
            ("pool", "pool"),
            ("secure", "shop"),
            ("limited", "shop"),
        ] {
            documents.push(http_route(
                route,
                &[],
                vec![rule(
                    vec![path_match("PathPrefix", &format!("/{route}"))],
                    vec![service_ref(service)],
                )],
            ));
        }
        documents.push(traffic_policy(
            "unavailable",
            json!({"retry": {
                "numRetries": 3,
                "retryOn": {"triggers": ["retriable-status-codes"], "httpStatusCodes": [503]},
                "perRetry": {"backOff": {"baseInterval": "1ms", "maxInterval": "2ms"}},
                "budget": {"percent": 20, "minRetriesPerSecond": 1},
            }}),
        ));
        documents.push(traffic_policy(
            "broken",
            json!({"circuitBreaker": {"errorRate": {
                "threshold": 0.5, "minRequests": 5, "window": "10s", "openFor": "60s",
                "halfOpenRequests": 1,
            }}}),
        ));
        documents.push(traffic_policy(
            "pool",
            json!({
                "loadBalancer": {"type": "RoundRobin"},
                "healthCheck": {
                    "passive": {"consecutive5XxErrors": 2, "baseEjectionTime": "60s",
                                "maxEjectionPercent": 50},
                    "active": {"type": "TCP", "interval": "200ms", "timeout": "100ms",
                               "unhealthyThreshold": 1, "healthyThreshold": 1},
                },
            }),
        ));
        documents.push(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "api-keys", "namespace": NS},
            "stringData": {"ana": API_KEY},
        }));
        documents.push(policy(
            "SecurityPolicy",
            "secure",
            Some("secure"),
            json!({"apiKeyAuth": {"credentialRefs": [{"name": "api-keys"}]}}),
        ));
        documents.push(policy(
            "RateLimitPolicy",
            "limited",
            Some("limited"),
            json!({"local": {"rules": [{"limit": {"requests": 2, "unit": "Minute"}}]}}),
        ));
        documents.push(json!({
            "apiVersion": "portcullis.dev/v1alpha1",
            "kind": "ClientTrafficPolicy",
            "metadata": {"name": "edge", "namespace": NS},
            "spec": {
                "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY}],
                "connection": {"maxConnections": MAX_CONNECTIONS},
                "timeout": {"http": {"requestHeaderTimeout": "1s"}},
            },
        }));

        let config = ConfigDir::new()?;
        config.write_gateway(None)?;
        config.write("config.yaml", &documents)?;
        let gateway = config.start(&[]).await?;
        Ok(ExercisedGateway {
            gateway,
            client: HttpClient::without_keep_alive(),
            _echoes: echoes,
            _upstreams: vec![unavailable, broken, bad],
            _refusing: refusing,
        })
    }

    /// Runs every step, each until its series is in a scrape.
    pub(crate) async fn exercise(&self) -> anyhow::Result<()> {
        self.routes().await.context("traffic on the routes")?;
        self.retries().await.context("retries")?;
        self.breaker().await.context("the circuit breaker")?;
        self.pool().await.context("health checks and ejection")?;
        self.rejected_reload().await.context("a rejected reload")?;
        self.connection_limits()
            .await
            .context("connection limits")?;
        Ok(())
    }

    /// `GET path` with `headers` on a connection of its own; returns the status.
    pub(crate) async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<StatusCode> {
        let response = self
            .client
            .get(self.gateway.listener(), HOST, path, headers)
            .await?;
        Ok(response.status)
    }

    /// The gateway's `/metrics`, as a human or promtool gets it (no `Accept`).
    pub(crate) async fn scrape_text(&self) -> anyhow::Result<String> {
        self.gateway.admin_text("/metrics").await
    }

    /// Waits until the scrape has a sample of `name` on a line containing `part`.
    async fn wait_for_sample(&self, name: &str, part: &str) -> anyhow::Result<()> {
        eventually(SERIES_DEADLINE, async || {
            let text = self.scrape_text().await?;
            let scrape = Scrape::parse(&text);
            ensure!(
                scrape.has_series(name)
                    && text
                        .lines()
                        .any(|line| line.starts_with(name) && line.contains(part)),
                "no {name} sample with {part:?} yet"
            );
            Ok(())
        })
        .await
    }

    async fn routes(&self) -> anyhow::Result<()> {
        for index in 0..10 {
            let status = self.get(&format!("/shop/{index}"), &[]).await?;
            ensure!(status == StatusCode::OK, "GET /shop/{index}: {status}");
        }
        let status = self.get("/nowhere", &[]).await?;
        ensure!(status == StatusCode::NOT_FOUND, "GET /nowhere: {status}");
        for (key, expected) in [
            (API_KEY, StatusCode::OK),
            ("key-eve", StatusCode::UNAUTHORIZED),
        ] {
            let status = self.get("/secure", &[("x-api-key", key)]).await?;
            ensure!(status == expected, "GET /secure with {key}: {status}");
        }
        for expected in [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
        ] {
            let status = self.get("/limited", &[]).await?;
            ensure!(
                status == expected,
                "GET /limited: {status}, expected {expected}"
            );
        }
        self.wait_for_sample("portcullis_auth_decisions_total", "result=\"allowed\"")
            .await?;
        self.wait_for_sample(
            "portcullis_rate_limit_decisions_total",
            "result=\"limited\"",
        )
        .await
    }

    /// Three retries per request against a budget of 20% plus a 10-retry reserve: a dozen
    /// requests spend it.
    async fn retries(&self) -> anyhow::Result<()> {
        for _ in 0..12 {
            let status = self.get("/retry", &[]).await?;
            ensure!(
                status == StatusCode::SERVICE_UNAVAILABLE,
                "GET /retry: {status}"
            );
        }
        self.wait_for_sample("portcullis_retries_total", "retry")
            .await?;
        self.wait_for_sample("portcullis_retry_budget_exhausted_total", "retry")
            .await
    }

    /// Failing requests until the breaker opens (at least 5 at 100% errors), then two it
    /// rejects.
    async fn breaker(&self) -> anyhow::Result<()> {
        let mut rejected = 0;
        for _ in 0..30 {
            let response = self
                .client
                .get(self.gateway.listener(), HOST, "/breaker", &[])
                .await?;
            if response.header("x-portcullis-error") == Some("circuit-open") {
                rejected += 1;
                if rejected == 2 {
                    break;
                }
            }
        }
        ensure!(
            rejected == 2,
            "the breaker never rejected two requests in 30"
        );
        self.wait_for_sample("portcullis_circuit_breaker_state", "broken")
            .await?;
        self.wait_for_sample("portcullis_circuit_breaker_rejections_total", "broken")
            .await
    }

    /// The refusing endpoint goes unhealthy (TCP probes); round-robin requests then hit the
    /// pod answering 500 until it is ejected.
    async fn pool(&self) -> anyhow::Result<()> {
        self.wait_for_sample("portcullis_endpoint_healthy", "} 0")
            .await?;
        eventually(SERIES_DEADLINE, async || {
            for _ in 0..4 {
                self.get("/pool", &[]).await?;
            }
            let text = self.scrape_text().await?;
            ensure!(
                Scrape::parse(&text).has_series("portcullis_outlier_ejections_total"),
                "no ejection yet"
            );
            Ok(())
        })
        .await?;
        self.wait_for_sample("portcullis_endpoint_latency_ewma_seconds", "pool")
            .await
    }

    /// A file that does not parse: the reload is rejected (the previous config keeps
    /// serving); removing it reloads successfully.
    async fn rejected_reload(&self) -> anyhow::Result<()> {
        let config = &self.gateway.config;
        config.write_text(BROKEN_FILE, "kind: [this is not YAML\n")?;
        self.wait_for_sample("portcullis_config_reloads_total", "result=\"error\"")
            .await?;
        self.wait_for_sample("portcullis_config_last_reload_success", " 0")
            .await?;
        config.remove(BROKEN_FILE)?;
        self.wait_for_sample("portcullis_config_last_reload_success", " 1")
            .await?;
        let status = self.get("/shop/after-reload", &[]).await?;
        ensure!(
            status == StatusCode::OK,
            "GET /shop after the reloads: {status}"
        );
        Ok(())
    }

    /// One more silent connection than the listener takes: one is refused at accept, the
    /// others are closed at the 1 s header timeout.
    async fn connection_limits(&self) -> anyhow::Result<()> {
        let mut silent = Vec::new();
        for _ in 0..=MAX_CONNECTIONS {
            silent.push(TcpStream::connect(self.gateway.listener()).await?);
        }
        self.wait_for_sample(
            "portcullis_downstream_connections_refused_total",
            "listener_limit",
        )
        .await?;
        self.wait_for_sample(
            "portcullis_downstream_connections_closed_by_gateway_total",
            "",
        )
        .await?;
        drop(silent);
        // The listener takes requests again once the silent connections are gone.
        eventually(SERIES_DEADLINE, async || {
            let status = self.get("/shop/after-limits", &[]).await?;
            ensure!(status == StatusCode::OK, "GET /shop: {status}");
            Ok(())
        })
        .await
    }

    /// Sends requests to the main routes every 50 ms until the handle is aborted (or
    /// dropped with [`SteadyTraffic`]), so that rates over the last minute are not zero.
    pub(crate) fn steady_traffic(&self) -> SteadyTraffic {
        let listener = self.gateway.listener();
        SteadyTraffic(tokio::spawn(async move {
            let client = HttpClient::without_keep_alive();
            let mut ticker = tokio::time::interval(Duration::from_millis(50));
            loop {
                for path in ["/shop/steady", "/pool/steady", "/retry/steady"] {
                    ticker.tick().await;
                    // Failures are what some of these routes do; the queries check the rest.
                    let _ = client.get(listener, HOST, path, &[]).await;
                }
            }
        }))
    }
}

/// Background requests from [`ExercisedGateway::steady_traffic`]; stopped on drop.
pub(crate) struct SteadyTraffic(JoinHandle<()>);

impl Drop for SteadyTraffic {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A BackendTrafficPolicy on Service `service`.
fn traffic_policy(service: &str, mut spec: Value) -> Value {
    spec["targetRefs"] = json!([{"group": "", "kind": "Service", "name": service}]);
    json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": service, "namespace": NS},
        "spec": spec,
    })
}
