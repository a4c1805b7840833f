//! The trace exemplars of `http_server_request_duration_seconds`, as [`telemetry::Metrics`]
//! encodes them in OpenMetrics, are taken by a real Prometheus: scraped, stored, and returned
//! by `/api/v1/query_exemplars` with the trace id they carry.
//!
//! The gateway attaches exemplars only to sampled requests, so this test serves the registry's
//! own encoding from a loopback target instead, with a request recorded under a known trace:
//! what Prometheus reads is byte for byte what `/metrics` serves to it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use telemetry::{Hex, HttpMethod, LabelValue, Metrics, RequestKey, TraceExemplar};
use testkit::PrometheusServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::fixture::eventually;

/// Serves `GET /metrics` (any request, in fact) with a fixed OpenMetrics body until dropped.
struct MetricsTarget {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsTarget {
    async fn start(body: String) -> anyhow::Result<MetricsTarget> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let body: Arc<str> = body.into();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _peer)) = listener.accept().await {
                let body = Arc::clone(&body);
                tokio::spawn(async move {
                    // Read the request head; the answer does not depend on it.
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => head.extend_from_slice(&chunk[..read]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        telemetry::METRICS_CONTENT_TYPE,
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(MetricsTarget { addr, task })
    }
}

impl Drop for MetricsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_the_trace_exemplars_of_the_server_duration_histogram()
-> anyhow::Result<()> {
    let metrics = Metrics::new();
    let route = LabelValue::from("HTTPRoute e2e/traced rules[0]");
    let backend = LabelValue::from("Service e2e/traced:80");
    let exemplar = TraceExemplar {
        trace_id: Hex([0x4b; 16]),
        span_id: Hex([0x2c; 8]),
    };
    metrics.record_request(
        &RequestKey {
            route: &route,
            backend: &backend,
            code: 200,
            method: HttpMethod::Get,
            scheme: "http",
        },
        Duration::from_millis(7),
        Some(exemplar),
    );
    let body = metrics.encode();
    let trace_id = exemplar.trace_id.to_string();
    ensure!(
        body.contains(&format!("trace_id=\"{trace_id}\"")),
        "the encoding carries no exemplar:\n{body}"
    );
    let target = MetricsTarget::start(body).await?;
    let prometheus = PrometheusServer::start(&[target.addr], Duration::from_secs(1)).await?;

    let query = r#"http_server_request_duration_seconds_bucket{http_route="HTTPRoute e2e/traced rules[0]"}"#;
    let stored = eventually(Duration::from_secs(30), async || {
        let answer = prometheus
            .query_exemplars(query, Duration::from_secs(600))
            .await?;
        ensure!(answer["status"] == "success", "{answer}");
        let exemplars: Vec<&serde_json::Value> = answer["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().into_iter().flatten())
            .collect();
        ensure!(!exemplars.is_empty(), "no exemplar stored yet: {answer}");
        Ok(exemplars.into_iter().cloned().collect::<Vec<_>>())
    })
    .await
    .with_context(|| format!("Prometheus log:\n{}", prometheus.log()))?;
    let first = &stored[0];
    ensure!(
        first["labels"]["trace_id"] == trace_id.as_str()
            && first["labels"]["span_id"] == exemplar.span_id.to_string().as_str(),
        "the stored exemplar carries another trace: {first}"
    );
    ensure!(
        first["value"].as_str().and_then(|v| v.parse::<f64>().ok()) == Some(0.007),
        "the stored exemplar has another value: {first}"
    );
    eprintln!("Prometheus stored {} exemplar(s): {first}", stored.len());
    Ok(())
}
