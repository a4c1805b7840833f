//! Composed responses (`Composition`, issue 16) through the real binary, with real backends:
//! a product page from three services with a dependent call and a failing optional part,
//! concurrency proven by the backends' own count of requests in flight, required failures
//! (502 naming the part), timeouts and the deadline, metrics, and a client span per part.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use http::StatusCode;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use testkit::otlp::OtlpReceiver;
use testkit::{FaultyUpstream, UpstreamBehaviour};

use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend};
use crate::fixture::running::{ConfigDir, Echoes, HOST, TestGateway};

/// A Composition in the test namespace.
fn composition(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "portcullis.dev/v1alpha1", "kind": "Composition",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    })
}

/// A rule on `prefix` that answers with Composition `name`.
fn composed_rule(prefix: &str, name: &str) -> Value {
    let mut rule = rule(vec![path_match("PathPrefix", prefix)], vec![]);
    rule["filters"] = json!([{"type": "ExtensionRef", "extensionRef":
        {"group": "portcullis.dev", "kind": "Composition", "name": name}}]);
    rule
}

/// A part to Service `service` (port 80, as `service_backend` declares it).
fn part(name: &str, service: &str, path: &str) -> Value {
    json!({"name": name, "backendRef": {"name": service, "port": 80}, "path": path})
}

/// The body of a response as JSON.
fn document(response: &testkit::TestResponse) -> anyhow::Result<Value> {
    serde_json::from_slice(&response.body)
        .with_context(|| format!("not JSON ({}): {}", response.status, response.text()))
}

/// The value of one series in a Prometheus text scrape (0 when absent).
fn series(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_page_is_composed_from_three_services_with_a_dependent_call() -> anyhow::Result<()>
{
    let echoes = Echoes::start(&["catalogue", "pricing", "inventory"]).await?;
    let reviews = FaultyUpstream::start(
        "reviews",
        UpstreamBehaviour::answer(StatusCode::SERVICE_UNAVAILABLE),
    )
    .await?;
    let mut documents = Vec::new();
    for name in ["catalogue", "pricing", "inventory"] {
        documents.extend(service_backend(NS, name, &[echoes.addr(name)]));
    }
    documents.extend(service_backend(NS, "reviews", &[reviews.addr()]));
    let mut product = part("product", "catalogue", "/products/{request.path.id}");
    product["required"] = json!(true);
    let mut price = part(
        "price",
        "pricing",
        "/prices/{response.product.json/pod}?currency={request.query.currency}",
    );
    price["headers"] = json!({"forward": ["authorization"],
                              "set": [{"name": "x-sku", "value": "sku-{request.path.id}"}]});
    let mut stock = part("stock", "inventory", "/stock/{request.path.id}");
    stock["select"] = json!("/path");
    documents.push(composition(
        "product-page",
        json!({
            "pathPattern": "/products/{id}",
            "parts": [product, price, stock, part("reviews", "reviews", "/reviews/{request.path.id}")],
        }),
    ));
    documents.push(http_route(
        "shop",
        &[],
        vec![composed_rule("/products", "product-page")],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let response = gateway
        .get(
            HOST,
            "/products/42?currency=EUR",
            &[("authorization", "Bearer token")],
        )
        .await?;
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    ensure!(
        response.header("content-type") == Some("application/json"),
        "{:?}",
        response.header("content-type")
    );
    let page = document(&response)?;
    // Keys in part order, then the errors.
    let text = response.text();
    let order: Vec<usize> = [
        "\"product\":",
        "\"price\":",
        "\"stock\":",
        "\"reviews\":",
        "\"errors\":",
    ]
    .iter()
    .map(|key| text.find(key).unwrap_or(usize::MAX))
    .collect();
    ensure!(order.windows(2).all(|w| w[0] < w[1]), "key order: {text}");
    ensure!(page["product"]["path"] == "/products/42", "{page}");
    ensure!(page["product"]["pod"] == "catalogue", "{page}");
    // The dependent call used a field of the first response.
    ensure!(
        page["price"]["path"] == "/prices/catalogue?currency=EUR",
        "{page}"
    );
    ensure!(
        page["price"]["headers"]["Authorization"] == json!(["Bearer token"]),
        "{page}"
    );
    ensure!(
        page["price"]["headers"]["X-Sku"] == json!(["sku-42"]),
        "{page}"
    );
    // Headers not named are not forwarded.
    ensure!(
        page["stock"].is_string() && page["stock"] == "/stock/42",
        "select keeps a piece: {page}"
    );
    // The failing optional part: null, and an entry in errors.
    ensure!(page["reviews"].is_null(), "{page}");
    ensure!(
        page["errors"]
            == json!([{"part": "reviews", "error": "upstream-status", "status": 503,
                       "message": "the backend answered 503 Service Unavailable"}]),
        "{page}"
    );
    ensure!(
        reviews.requests() == 1,
        "reviews asked {}",
        reviews.requests()
    );

    // The product's header was not forwarded (only `price` names it).
    ensure!(
        page["product"]["headers"].get("Authorization").is_none(),
        "{page}"
    );

    // A path that does not fit the pattern: 404, no backend asked.
    let before = echoes.server("catalogue").requests();
    let response = gateway.get(HOST, "/products/42/extra", &[]).await?;
    ensure!(
        response.status == StatusCode::NOT_FOUND,
        "{}",
        response.text()
    );
    ensure!(
        response.header("x-portcullis-error") == Some("composition-path-mismatch"),
        "{:?}",
        response.header("x-portcullis-error")
    );
    ensure!(echoes.server("catalogue").requests() == before);

    let metrics = gateway.admin_text("/metrics").await?;
    let name = "Composition e2e/product-page";
    for (part, result, count) in [
        ("product", "ok", 1.0),
        ("price", "ok", 1.0),
        ("stock", "ok", 1.0),
        ("reviews", "upstream-status", 1.0),
    ] {
        let key = format!(
            "portcullis_composition_parts_total{{composition=\"{name}\",part=\"{part}\",result=\"{result}\"}}"
        );
        ensure!(series(&metrics, &key) == count, "{key} in:\n{metrics}");
    }
    for (result, count) in [("partial", 1.0), ("path_mismatch", 1.0)] {
        let key =
            format!("portcullis_compositions_total{{composition=\"{name}\",result=\"{result}\"}}");
        ensure!(series(&metrics, &key) == count, "{key} in:\n{metrics}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_parts_run_at_once_and_a_dependent_one_after_its_dependency()
-> anyhow::Result<()> {
    // One upstream behind every part, answering the JSON string "slow" after 500 ms; it counts
    // the requests it holds at once.
    let slow = FaultyUpstream::start(
        "\"slow\"",
        UpstreamBehaviour::slow(Duration::from_millis(500)),
    )
    .await?;
    let mut documents = service_backend(NS, "slow", &[slow.addr()]);
    documents.push(composition(
        "fan-out",
        json!({"parts": [
            part("a", "slow", "/a"),
            part("b", "slow", "/b"),
            part("c", "slow", "/c"),
            part("after-a", "slow", "/after/{response.a.json}"),
        ]}),
    ));
    documents.push(http_route(
        "fan",
        &[],
        vec![composed_rule("/fan", "fan-out")],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let started = Instant::now();
    let response = gateway.get(HOST, "/fan", &[]).await?;
    let took = started.elapsed();
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    let page = document(&response)?;
    ensure!(
        page == json!({"a": "slow", "b": "slow", "c": "slow", "after-a": "slow"}),
        "{page}"
    );
    ensure!(slow.requests() == 4, "{} requests", slow.requests());
    // a, b and c were held at once; after-a waited for a.
    ensure!(
        slow.max_in_flight() == 3,
        "{} at once: the independent parts did not run concurrently",
        slow.max_in_flight()
    );
    // Two rounds of 500 ms (a, then after-a), not four (the sum).
    ensure!(
        took >= Duration::from_millis(1000) && took < Duration::from_millis(1900),
        "took {took:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_required_part_is_a_502_naming_it_and_its_dependents_are_not_asked()
-> anyhow::Result<()> {
    let echoes = Echoes::start(&["catalogue", "pricing"]).await?;
    let mut documents = service_backend(NS, "catalogue", &[echoes.addr("catalogue")]);
    documents.extend(service_backend(NS, "pricing", &[echoes.addr("pricing")]));
    let mut product = part("product", "catalogue", "/status/500");
    product["required"] = json!(true);
    documents.push(composition(
        "broken",
        json!({"parts": [product, part("price", "pricing", "/prices/{response.product.json/sku}")]}),
    ));
    let mut optional = part("product", "catalogue", "/status/500");
    optional["required"] = json!(false);
    documents.push(composition(
        "degraded",
        json!({"merge": {"type": "Deep"},
               "parts": [optional, part("price", "pricing", "/prices/{response.product.json/sku}"),
                         part("echo", "pricing", "/plain")]}),
    ));
    documents.push(http_route(
        "shop",
        &[],
        vec![
            composed_rule("/broken", "broken"),
            composed_rule("/degraded", "degraded"),
        ],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let response = gateway.get(HOST, "/broken", &[]).await?;
    ensure!(
        response.status == StatusCode::BAD_GATEWAY,
        "{}",
        response.text()
    );
    ensure!(response.header("x-portcullis-error") == Some("composition-part-failed"));
    let body = document(&response)?;
    ensure!(
        body == json!({"error": "composition-part-failed", "composition": "Composition e2e/broken",
                       "part": "product", "reason": "upstream-status", "status": 500,
                       "message": "the backend answered 500 Internal Server Error"}),
        "{body}"
    );
    ensure!(echoes.server("pricing").requests() == 0, "price was asked");

    // Optional: the dependent part fails without a request, the other one is merged (Deep).
    let response = gateway.get(HOST, "/degraded", &[]).await?;
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    let body = document(&response)?;
    ensure!(
        body["path"] == "/plain" && body["pod"] == "pricing",
        "{body}"
    );
    let errors = body["errors"].as_array().context("errors")?;
    ensure!(errors.len() == 2, "{body}");
    ensure!(
        errors[0]["part"] == "product" && errors[0]["status"] == 500,
        "{body}"
    );
    ensure!(
        errors[1]["part"] == "price" && errors[1]["error"] == "dependency-failed",
        "{body}"
    );
    ensure!(echoes.server("pricing").requests() == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_timeouts_and_the_deadline_bound_a_composition() -> anyhow::Result<()> {
    let hanging = FaultyUpstream::start("hang", UpstreamBehaviour::Hang).await?;
    let echoes = Echoes::start(&["fast"]).await?;
    let mut documents = service_backend(NS, "hang", &[hanging.addr()]);
    documents.extend(service_backend(NS, "fast", &[echoes.addr("fast")]));
    let mut slow_optional = part("slow", "hang", "/slow");
    slow_optional["timeout"] = json!("200ms");
    documents.push(composition(
        "impatient",
        json!({"parts": [part("fast", "fast", "/fast"), slow_optional]}),
    ));
    let mut slow_required = part("slow", "hang", "/slow");
    slow_required["required"] = json!(true);
    documents.push(composition(
        "deadline",
        json!({"timeout": "1s", "parts": [part("fast", "fast", "/fast"), slow_required]}),
    ));
    documents.push(http_route(
        "waits",
        &[],
        vec![
            composed_rule("/impatient", "impatient"),
            composed_rule("/deadline", "deadline"),
        ],
    ));
    let gateway = TestGateway::start(&documents).await?;

    let started = Instant::now();
    let response = gateway.get(HOST, "/impatient", &[]).await?;
    let took = started.elapsed();
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    let body = document(&response)?;
    ensure!(
        body["fast"]["path"] == "/fast" && body["slow"].is_null(),
        "{body}"
    );
    ensure!(body["errors"][0]["error"] == "timeout", "{body}");
    ensure!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "took {took:?}"
    );

    let started = Instant::now();
    let response = gateway.get(HOST, "/deadline", &[]).await?;
    let took = started.elapsed();
    ensure!(
        response.status == StatusCode::BAD_GATEWAY,
        "{}",
        response.text()
    );
    let body = document(&response)?;
    ensure!(
        body["part"] == "slow" && body["reason"] == "timeout",
        "{body}"
    );
    ensure!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_part_is_a_client_span_of_the_request() -> anyhow::Result<()> {
    let receiver = OtlpReceiver::start().await?;
    let echoes = Echoes::start(&["catalogue", "pricing"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(None)?;
    let mut documents = service_backend(NS, "catalogue", &[echoes.addr("catalogue")]);
    documents.extend(service_backend(NS, "pricing", &[echoes.addr("pricing")]));
    documents.push(composition(
        "traced",
        json!({"parts": [part("product", "catalogue", "/p"),
                         part("price", "pricing", "/prices/{response.product.json/pod}")]}),
    ));
    documents.push(http_route(
        "traced",
        &[],
        vec![composed_rule("/page", "traced")],
    ));
    config.write("config.yaml", &documents)?;
    let endpoint = receiver.grpc_endpoint();
    let gateway = config
        .start(&["--otlp-endpoint", &endpoint, "--otlp-protocol", "grpc"])
        .await?;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    let response = gateway
        .get(HOST, "/page", &[("traceparent", &traceparent)])
        .await?;
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    let page = document(&response)?;

    let spans = receiver
        .wait_for(Duration::from_secs(10), |spans| spans.len() >= 3)
        .await?;
    let server = spans
        .iter()
        .find(|s| s.span.kind == SpanKind::Server as i32)
        .context("no server span")?;
    ensure!(server.trace_id() == trace);
    ensure!(
        server.string("portcullis.backend") == Some("Composition e2e/traced"),
        "{:?}",
        server.string("portcullis.backend")
    );
    for (name, service) in [("product", "catalogue"), ("price", "pricing")] {
        let span = spans
            .iter()
            .find(|s| s.string("portcullis.composition.part") == Some(name))
            .with_context(|| format!("no span of part {name}: {spans:#?}"))?;
        ensure!(span.span.kind == SpanKind::Client as i32);
        ensure!(span.parent_span_id() == server.span_id(), "{span:#?}");
        ensure!(
            span.string("portcullis.backend") == Some(&format!("Service e2e/{service}:80")),
            "{:?}",
            span.string("portcullis.backend")
        );
        // The backend saw the part's span as its parent.
        let sent = page[name]["headers"]["Traceparent"][0]
            .as_str()
            .context("no traceparent")?;
        ensure!(
            sent == format!("00-{trace}-{}-01", span.span_id()),
            "{sent} vs {}",
            span.span_id()
        );
    }
    Ok(())
}

/// A small JSON service on 127.0.0.1 (real sockets, hyper's HTTP/1.1 server): `respond` maps a
/// request target to a status and a document, answered after `delay`. Stops when dropped.
struct JsonService {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

type Respond = dyn Fn(&str) -> (StatusCode, Value) + Send + Sync;

impl JsonService {
    async fn start(delay: Duration, respond: Arc<Respond>) -> anyhow::Result<JsonService> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let respond = Arc::clone(&respond);
                connections.spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let respond = Arc::clone(&respond);
                            async move {
                                tokio::time::sleep(delay).await;
                                let target = request
                                    .uri()
                                    .path_and_query()
                                    .map_or("/", http::uri::PathAndQuery::as_str)
                                    .to_owned();
                                let (status, document) = respond(&target);
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(http_body_util::Full::new(bytes::Bytes::from(
                                        document.to_string(),
                                    )))
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _closed = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(JsonService { addr, task })
    }
}

impl Drop for JsonService {
    fn drop(&mut self) {
        // The task owns the listener and the connections (a JoinSet aborts them when dropped).
        self.task.abort();
    }
}

/// The README's product page example (examples/composition/product-page.yaml), run as written
/// with its Backends pointed at three real services and its listener at a free port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_composes_a_product_page() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let example = std::fs::read_to_string(root.join("examples/composition/product-page.yaml"))?;
    let readme = std::fs::read_to_string(root.join("README.md"))?;
    for document in example.split("\n---\n") {
        if document.contains("kind: Composition") || document.contains("kind: HTTPRoute") {
            ensure!(
                readme.contains(document.trim()),
                "the README does not show this document of the example as it is:\n{document}"
            );
        }
    }

    let inventory_fails = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let catalogue = JsonService::start(
        Duration::ZERO,
        Arc::new(|target: &str| match target {
            "/products/42" => (
                StatusCode::OK,
                json!({"id": "42", "sku": "LAMP-42", "name": "Desk lamp"}),
            ),
            _ => (StatusCode::NOT_FOUND, json!({"error": "no such product"})),
        }),
    )
    .await?;
    let pricing = JsonService::start(
        Duration::from_millis(50),
        Arc::new(|target: &str| match target {
            "/prices/LAMP-42?currency=EUR" => (
                StatusCode::OK,
                json!({"sku": "LAMP-42", "amount": 49.9, "currency": "EUR"}),
            ),
            other => (StatusCode::NOT_FOUND, json!({"unknown": other})),
        }),
    )
    .await?;
    let failing = Arc::clone(&inventory_fails);
    let inventory = JsonService::start(
        Duration::from_millis(150),
        Arc::new(move |target: &str| {
            if failing.load(std::sync::atomic::Ordering::SeqCst) {
                return (StatusCode::SERVICE_UNAVAILABLE, json!({"error": "down"}));
            }
            match target {
                "/stock/42" => (
                    StatusCode::OK,
                    json!({"available": 7, "warehouse": "north"}),
                ),
                _ => (StatusCode::NOT_FOUND, json!({})),
            }
        }),
    )
    .await?;

    let config = ConfigDir::new()?;
    let port = config.listener().port();
    let text = example
        .replace("port: 8080", &format!("port: {port}"))
        .replace("9101", &catalogue.addr.port().to_string())
        .replace("9102", &pricing.addr.port().to_string())
        .replace("9103", &inventory.addr.port().to_string());
    config.write_text("product-page.yaml", &text)?;
    let gateway = config.start(&[]).await?;
    let host = "shop.example.com";

    let response = gateway.get(host, "/products/42?currency=EUR", &[]).await?;
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    let page = document(&response)?;
    ensure!(
        page == json!({
            "product": {"id": "42", "sku": "LAMP-42", "name": "Desk lamp"},
            "price": {"sku": "LAMP-42", "amount": 49.9, "currency": "EUR"},
            "stock": 7,
        }),
        "{page}"
    );

    // The optional inventory fails: the page comes without its stock, and says why.
    inventory_fails.store(true, std::sync::atomic::Ordering::SeqCst);
    let response = gateway.get(host, "/products/42?currency=EUR", &[]).await?;
    ensure!(response.status == StatusCode::OK, "{}", response.text());
    let page = document(&response)?;
    ensure!(
        page["stock"].is_null() && page["price"]["amount"] == 49.9,
        "{page}"
    );
    ensure!(
        page["errors"]
            == json!([{"part": "stock", "error": "upstream-status", "status": 503,
                                  "message": "the backend answered 503 Service Unavailable"}]),
        "{page}"
    );

    // The required catalogue does not know product 43: 502 naming it.
    let response = gateway.get(host, "/products/43?currency=EUR", &[]).await?;
    ensure!(
        response.status == StatusCode::BAD_GATEWAY,
        "{}",
        response.text()
    );
    let body = document(&response)?;
    ensure!(body["part"] == "product" && body["status"] == 404, "{body}");

    // `portcullis check` accepts the example as written.
    let output = std::process::Command::new(crate::fixture::running::binary())
        .args(["check", "--config"])
        .arg(root.join("examples/composition"))
        .output()?;
    ensure!(
        output.status.success(),
        "check failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
