//! OpenTelemetry tracing through the real binary: spans reach a real OTLP receiver (gRPC and
//! HTTP/protobuf, decoded with the official protobuf definitions), join the caller's trace,
//! have one client child per attempt, and backends see the propagated context.

use std::time::Duration;

use anyhow::{Context, ensure};
use http::StatusCode;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use testkit::otlp::{OtlpReceiver, ReceivedSpan, Transport};
use testkit::{FaultyUpstream, UpstreamBehaviour};

use crate::fixture::manifest::{
    GATEWAY, NS, http_route, path_match, rule, service_backend, service_ref,
};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// Spans are batched for up to a second before export.
const ARRIVAL: Duration = Duration::from_secs(10);

/// Echo `a` at `/app`, an upstream answering 503 at `/flaky` (retried twice on 503), and a
/// gateway run with `args`.
async fn serve(args: &[&str]) -> anyhow::Result<(Echoes, FaultyUpstream, TestGateway)> {
    let echoes = Echoes::start(&["a"]).await?;
    let flaky = FaultyUpstream::start(
        "flaky",
        UpstreamBehaviour::answer(StatusCode::SERVICE_UNAVAILABLE),
    )
    .await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut documents = service_backend(NS, "a", &[echoes.addr("a")]);
    documents.extend(service_backend(NS, "flaky", &[flaky.addr()]));
    documents.push(http_route(
        "traced",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/app")],
                vec![service_ref("a")],
            ),
            rule(
                vec![path_match("PathPrefix", "/flaky")],
                vec![service_ref("flaky")],
            ),
        ],
    ));
    documents.push(json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": "flaky", "namespace": NS},
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": "flaky"}],
            "retry": {
                "numRetries": 2,
                "retryOn": {"triggers": ["retriable-status-codes"], "httpStatusCodes": [503]},
                "perRetry": {"backOff": {"baseInterval": "1ms", "maxInterval": "5ms"}},
            },
        },
    }));
    config.write("config.yaml", &documents)?;
    let gateway = config.start(args).await?;
    Ok((echoes, flaky, gateway))
}

/// The one value of header `name` the echo backend received.
fn received_header(response: &testkit::TestResponse, name: &str) -> anyhow::Result<String> {
    let echo = response.echo()?;
    let values = echo
        .headers
        .get(name)
        .with_context(|| format!("the backend got no {name}: {:?}", echo.headers))?;
    ensure!(values.len() == 1, "{name}: {values:?}");
    Ok(values[0].clone())
}

fn server_spans(spans: &[ReceivedSpan]) -> Vec<&ReceivedSpan> {
    spans
        .iter()
        .filter(|s| s.span.kind == SpanKind::Server as i32)
        .collect()
}

fn children<'a>(spans: &'a [ReceivedSpan], parent: &ReceivedSpan) -> Vec<&'a ReceivedSpan> {
    let mut children: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.parent_span_id() == parent.span_id() && s.trace_id() == parent.trace_id())
        .collect();
    children.sort_by_key(|s| s.span.start_time_unix_nano);
    children
}

#[tokio::test]
async fn spans_join_the_callers_trace_with_a_child_per_attempt() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let endpoint = receiver.grpc_endpoint();
    let (_echoes, flaky, gateway) =
        serve(&["--otlp-endpoint", &endpoint, "--otlp-protocol", "grpc"]).await?;
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");

    // A request that reaches its backend at once: one attempt, whose span the backend sees as
    // its parent.
    let response = gateway
        .get(HOST, "/app/items?page=2", &[("traceparent", &traceparent)])
        .await?;
    ensure!(response.status == StatusCode::OK, "{:?}", response.text());
    let sent = received_header(&response, "Traceparent")?;
    ensure!(
        sent.starts_with(&format!("00-{TRACE}-")) && sent.ends_with("-01"),
        "{sent}"
    );
    let attempt_id = sent[36..52].to_owned();
    ensure!(
        attempt_id != CALLER_SPAN,
        "the backend's parent is our span: {sent}"
    );

    let spans = receiver
        .wait_for(ARRIVAL, |spans| {
            spans.iter().any(|s| s.span_id() == attempt_id)
        })
        .await?;
    let server = server_spans(&spans);
    ensure!(server.len() == 1, "one server span: {spans:#?}");
    let server = server[0];
    ensure!(server.transport == Transport::Grpc);
    ensure!(server.trace_id() == TRACE, "joins the caller's trace");
    ensure!(
        server.parent_span_id() == CALLER_SPAN,
        "the caller's span is the parent"
    );
    ensure!(server.service_name.as_deref() == Some("portcullis"));
    ensure!(
        server.span.name == "GET HTTPRoute e2e/traced rules[0]",
        "{}",
        server.span.name
    );
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/app/items"),
        ("url.query", "page=2"),
        ("url.scheme", "http"),
        ("server.address", HOST),
        ("network.peer.address", "127.0.0.1"),
        ("http.route", "HTTPRoute e2e/traced rules[0]"),
        ("portcullis.backend", "Service e2e/a:80"),
        ("network.protocol.version", "1.1"),
    ] {
        ensure!(
            server.string(key) == Some(value),
            "{key}: {:?}",
            server.string(key)
        );
    }
    ensure!(server.int("http.response.status_code") == Some(200));
    ensure!(server.int("server.port") == Some(i64::from(gateway.listener().port())));
    let attempts = children(&spans, server);
    ensure!(attempts.len() == 1, "{attempts:#?}");
    ensure!(attempts[0].span_id() == attempt_id);
    ensure!(attempts[0].span.kind == SpanKind::Client as i32);
    ensure!(attempts[0].int("http.response.status_code") == Some(200));
    ensure!(attempts[0].string("server.address") == Some("127.0.0.1"));

    // A request retried twice: three attempts, each a child span, the last two resends.
    let response = gateway
        .get(HOST, "/flaky", &[("traceparent", &traceparent)])
        .await?;
    ensure!(response.status == StatusCode::SERVICE_UNAVAILABLE);
    ensure!(flaky.requests() == 3, "{} attempts", flaky.requests());
    let spans = receiver
        .wait_for(ARRIVAL, |spans| server_spans(spans).len() == 2)
        .await?;
    let retried = server_spans(&spans)
        .into_iter()
        .find(|s| s.string("url.path") == Some("/flaky"))
        .context("no span for /flaky")?;
    ensure!(retried.int("http.response.status_code") == Some(503));
    ensure!(retried.int("portcullis.retries") == Some(2));
    ensure!(retried.string("error.type") == Some("503"));
    let attempts = children(&spans, retried);
    ensure!(attempts.len() == 3, "one child per attempt: {attempts:#?}");
    for (index, attempt) in attempts.iter().enumerate() {
        ensure!(attempt.int("http.response.status_code") == Some(503));
        let resends = attempt.int("http.request.resend_count");
        let expected = (index > 0).then(|| i64::try_from(index).unwrap_or(0));
        ensure!(resends == expected, "attempt {index}: {resends:?}");
        ensure!(attempt.span.start_time_unix_nano >= retried.span.start_time_unix_nano);
        ensure!(attempt.span.end_time_unix_nano <= retried.span.end_time_unix_nano);
    }

    // The access log names the trace and the server span.
    let line: Value = gateway
        .process
        .stdout_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["path"] == "/flaky")
        .context("no access log line for /flaky")?;
    ensure!(line["trace_id"] == TRACE, "{line}");
    ensure!(line["span_id"] == retried.span_id().as_str(), "{line}");
    Ok(())
}

/// ClientTrafficPolicy `tracing` on the whole Gateway.
fn sampling_policy(numerator: u32, denominator: u32) -> Value {
    json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "ClientTrafficPolicy",
        "metadata": {"name": "traced", "namespace": NS},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY}],
            "tracing": {"samplingFraction": {"numerator": numerator, "denominator": denominator}},
        },
    })
}

#[tokio::test]
async fn http_export_b3_and_a_gateways_sampling_policy() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let endpoint = receiver.http_endpoint();
    let (_echoes, _flaky, gateway) = serve(&[
        "--otlp-endpoint",
        &endpoint,
        "--otlp-protocol",
        "http/protobuf",
        "--trace-sampler",
        "parentbased_always_off",
    ])
    .await?;

    // Not sampled by default: a new trace is still propagated (unsampled), and a tracestate
    // that came without traceparent is dropped.
    let response = gateway
        .get(HOST, "/app/unsampled", &[("tracestate", "stale=1")])
        .await?;
    let sent = received_header(&response, "Traceparent")?;
    ensure!(sent.len() == 55 && sent.ends_with("-00"), "{sent}");
    ensure!(!response.echo()?.headers.contains_key("Tracestate"));

    // B3 single: continued, and answered in B3 too.
    let b3 = format!("{TRACE}-{CALLER_SPAN}-1");
    let response = gateway.get(HOST, "/app/b3", &[("b3", &b3)]).await?;
    let sent_b3 = received_header(&response, "B3")?;
    ensure!(
        sent_b3.starts_with(TRACE) && sent_b3.ends_with("-1"),
        "{sent_b3}"
    );
    ensure!(!sent_b3.contains(CALLER_SPAN), "{sent_b3}");
    let spans = receiver
        .wait_for(ARRIVAL, |spans| !server_spans(spans).is_empty())
        .await?;
    let b3_span = server_spans(&spans)[0].clone();
    ensure!(b3_span.transport == Transport::HttpProtobuf);
    ensure!(b3_span.string("url.path") == Some("/app/b3"));
    ensure!(b3_span.parent_span_id() == CALLER_SPAN);

    // The Gateway's policy samples every request that starts a trace.
    gateway
        .config
        .write("policy.yaml", &[sampling_policy(1, 1)])?;
    crate::fixture::eventually(Duration::from_secs(10), || async {
        let response = gateway.get(HOST, "/app/policy", &[]).await?;
        let sent = received_header(&response, "Traceparent")?;
        ensure!(sent.ends_with("-01"), "not sampled yet: {sent}");
        Ok(())
    })
    .await?;
    let spans = receiver
        .wait_for(ARRIVAL, |spans| {
            spans
                .iter()
                .any(|s| s.string("url.path") == Some("/app/policy"))
        })
        .await?;
    let paths: Vec<&str> = server_spans(&spans)
        .iter()
        .filter_map(|s| s.string("url.path"))
        .collect();
    ensure!(
        !paths.contains(&"/app/unsampled"),
        "an unsampled request was exported: {paths:?}"
    );
    let sampled = server_spans(&spans)
        .into_iter()
        .find(|s| s.string("url.path") == Some("/app/policy"))
        .context("policy span")?;
    ensure!(sampled.parent_span_id().is_empty(), "a root span");

    // A sampled request's duration has an exemplar with its trace.
    let metrics = gateway.openmetrics().await?;
    let trace_id = sampled.trace_id();
    ensure!(
        metrics.lines().any(
            |line| line.starts_with("http_server_request_duration_seconds_bucket")
                && line.contains(&format!("trace_id=\"{trace_id}\""))
        ),
        "no exemplar for {trace_id}:\n{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn an_unusable_collector_is_refused_at_start() -> anyhow::Result<()> {
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    config.write(
        "config.yaml",
        &service_backend(NS, "a", &[testkit::reserve_closed_port().addr()]),
    )?;
    let started = config
        .start(&[
            "--otlp-endpoint",
            "https://collector:4317",
            "--otlp-protocol",
            "grpc",
        ])
        .await;
    let error = match started {
        Ok(_) => anyhow::bail!("the gateway started with an https collector"),
        Err(error) => format!("{error:#}"),
    };
    ensure!(
        error.contains("TLS to the collector is not supported"),
        "{error}"
    );
    Ok(())
}
