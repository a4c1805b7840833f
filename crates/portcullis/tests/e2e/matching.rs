//! HTTPRoute matching and precedence over real sockets: one test per match type and per
//! precedence rule of `HTTPRouteSpec.rules` and `HTTPRouteSpec.hostnames`.
//!
//! Every backend is an echo server that reports its name as `pod`, so the reply says which rule
//! won. Where two rules could both match, the test lists the rule that must lose first (lower
//! rule index, older or alphabetically first route), so plain list order would pick the wrong
//! backend and the test would fail.

use anyhow::ensure;
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::fixture::manifest::{
    NS, created_at, http_route, path_match, rule, service_backend, service_ref,
};
use crate::fixture::running::{
    ConfigDir, Echoes, HOST, TestGateway, ensure_route_condition, pod_of,
};

/// Services `a`, `b`, ... each backed by the echo server of the same name.
fn services(echoes: &Echoes, names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .flat_map(|name| service_backend(NS, name, &[echoes.addr(name)]))
        .collect()
}

/// Starts echo servers `names`, their Services, and a gateway serving `routes`.
async fn serve(names: &[&str], routes: Vec<Value>) -> anyhow::Result<(Echoes, TestGateway)> {
    let echoes = Echoes::start(names).await?;
    let mut documents = services(&echoes, names);
    documents.extend(routes);
    let gateway = TestGateway::start(&documents).await?;
    Ok((echoes, gateway))
}

/// Asserts that `GET path` with `headers` is answered by `expected`.
async fn ensure_pod(
    gateway: &TestGateway,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    expected: &str,
) -> anyhow::Result<()> {
    let pod = gateway.pod(host, path, headers).await?;
    ensure!(
        pod == expected,
        "GET {path} (Host {host}, headers {headers:?}) went to {pod}, expected {expected}"
    );
    Ok(())
}

/// Asserts that `GET path` matches no route: 404 with `x-portcullis-error`.
async fn ensure_not_found(gateway: &TestGateway, host: &str, path: &str) -> anyhow::Result<()> {
    let response = gateway.get(host, path, &[]).await?;
    ensure!(
        response.status == StatusCode::NOT_FOUND && response.header("x-portcullis-error").is_some(),
        "GET {path} (Host {host}): expected 404 with x-portcullis-error, got {} {:?} {:?}",
        response.status,
        response.header("x-portcullis-error"),
        response.text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_path_matches_only_that_path() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "exact",
        &[],
        vec![rule(
            vec![path_match("Exact", "/exact")],
            vec![service_ref("a")],
        )],
    )];
    let (_echoes, gateway) = serve(&["a"], routes).await?;
    ensure_pod(&gateway, HOST, "/exact", &[], "a").await?;
    ensure_pod(&gateway, HOST, "/exact?q=1", &[], "a").await?;
    for path in ["/exact/", "/exact/sub", "/exactly", "/"] {
        ensure_not_found(&gateway, HOST, path).await?;
    }
    let response = gateway.get(HOST, "/nothing-here", &[]).await?;
    ensure!(
        response.header("x-portcullis-error") == Some("no-route"),
        "an unmatched path is reported as no-route: {:?}",
        response.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_prefix_matches_whole_segments_only() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "prefix",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/abc")],
            vec![service_ref("a")],
        )],
    )];
    let (_echoes, gateway) = serve(&["a"], routes).await?;
    for path in ["/abc", "/abc/", "/abc/x", "/abc/x/y?z=1"] {
        ensure_pod(&gateway, HOST, path, &[], "a").await?;
    }
    for path in ["/abcd", "/ab", "/abc.d", "/x/abc"] {
        ensure_not_found(&gateway, HOST, path).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_prefix_with_trailing_slash_equals_without() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "prefix",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/abc/")],
            vec![service_ref("a")],
        )],
    )];
    let (_echoes, gateway) = serve(&["a"], routes).await?;
    ensure_pod(&gateway, HOST, "/abc", &[], "a").await?;
    ensure_pod(&gateway, HOST, "/abc/x", &[], "a").await?;
    ensure_not_found(&gateway, HOST, "/abcd").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regular_expression_path_matches_the_whole_path() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "regex",
        &[],
        vec![rule(
            vec![path_match("RegularExpression", "/items/[0-9]+")],
            vec![service_ref("a")],
        )],
    )];
    let (_echoes, gateway) = serve(&["a"], routes).await?;
    ensure_pod(&gateway, HOST, "/items/42", &[], "a").await?;
    ensure_pod(&gateway, HOST, "/items/7?x=y", &[], "a").await?;
    // Anchored: neither a suffix nor a prefix of a longer path matches.
    for path in ["/items/abc", "/items/42/extra", "/v1/items/42", "/items/"] {
        ensure_not_found(&gateway, HOST, path).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_exact_match() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "headers",
        &[],
        vec![
            rule(
                vec![json!({"headers": [{"name": "x-env", "value": "canary"}]})],
                vec![service_ref("a")],
            ),
            rule(vec![], vec![service_ref("b")]),
        ],
    )];
    let (_echoes, gateway) = serve(&["a", "b"], routes).await?;
    ensure_pod(&gateway, HOST, "/", &[("x-env", "canary")], "a").await?;
    // Header names are case-insensitive.
    ensure_pod(&gateway, HOST, "/", &[("X-ENV", "canary")], "a").await?;
    // Values are compared exactly, case included.
    ensure_pod(&gateway, HOST, "/", &[("x-env", "Canary")], "b").await?;
    ensure_pod(&gateway, HOST, "/", &[("x-env", "canary-2")], "b").await?;
    ensure_pod(&gateway, HOST, "/", &[], "b").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_regular_expression_match() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "headers",
        &[],
        vec![
            rule(
                vec![json!({"headers": [
                    {"name": "x-version", "type": "RegularExpression", "value": "v[0-9]+"}
                ]})],
                vec![service_ref("a")],
            ),
            rule(vec![], vec![service_ref("b")]),
        ],
    )];
    let (_echoes, gateway) = serve(&["a", "b"], routes).await?;
    ensure_pod(&gateway, HOST, "/", &[("x-version", "v12")], "a").await?;
    // The expression must match the whole value.
    ensure_pod(&gateway, HOST, "/", &[("x-version", "v12-beta")], "b").await?;
    ensure_pod(&gateway, HOST, "/", &[("x-version", "xv1")], "b").await?;
    ensure_pod(&gateway, HOST, "/", &[], "b").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_param_match() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "query",
        &[],
        vec![
            rule(
                vec![json!({"queryParams": [{"name": "tier", "value": "gold"}]})],
                vec![service_ref("a")],
            ),
            rule(
                vec![json!({"queryParams": [
                    {"name": "build", "type": "RegularExpression", "value": "[0-9]{3}"}
                ]})],
                vec![service_ref("b")],
            ),
            rule(vec![], vec![service_ref("c")]),
        ],
    )];
    let (_echoes, gateway) = serve(&["a", "b", "c"], routes).await?;
    ensure_pod(&gateway, HOST, "/?tier=gold", &[], "a").await?;
    ensure_pod(&gateway, HOST, "/list?x=1&tier=gold", &[], "a").await?;
    // Values are percent-decoded before comparison.
    ensure_pod(&gateway, HOST, "/?tier=g%6Fld", &[], "a").await?;
    ensure_pod(&gateway, HOST, "/?tier=silver", &[], "c").await?;
    ensure_pod(&gateway, HOST, "/?Tier=gold", &[], "c").await?;
    ensure_pod(&gateway, HOST, "/?build=123", &[], "b").await?;
    ensure_pod(&gateway, HOST, "/?build=1234", &[], "c").await?;
    ensure_pod(&gateway, HOST, "/", &[], "c").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_match() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "method",
        &[],
        vec![rule(
            vec![json!({"method": "POST"})],
            vec![service_ref("a")],
        )],
    )];
    let (_echoes, gateway) = serve(&["a"], routes).await?;
    let post = gateway
        .request(
            Method::POST,
            HOST,
            "/orders",
            &[],
            Bytes::from_static(b"{}"),
        )
        .await?;
    ensure!(pod_of(&post)? == "a", "POST is matched");
    ensure!(post.echo()?.method == "POST", "the backend sees POST");
    ensure_not_found(&gateway, HOST, "/orders").await?;
    let put = gateway
        .request(Method::PUT, HOST, "/orders", &[], Bytes::new())
        .await?;
    ensure!(
        put.status == StatusCode::NOT_FOUND,
        "PUT is not matched: {}",
        put.status
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_path_beats_prefix() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "shop",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/shop")],
                vec![service_ref("prefix")],
            ),
            rule(
                vec![path_match("Exact", "/shop")],
                vec![service_ref("exact")],
            ),
        ],
    )];
    let (_echoes, gateway) = serve(&["exact", "prefix"], routes).await?;
    ensure_pod(&gateway, HOST, "/shop", &[], "exact").await?;
    ensure_pod(&gateway, HOST, "/shop/cart", &[], "prefix").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_prefix_wins() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "api",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/api")],
                vec![service_ref("short")],
            ),
            rule(
                vec![path_match("PathPrefix", "/api/v1")],
                vec![service_ref("long")],
            ),
        ],
    )];
    let (_echoes, gateway) = serve(&["short", "long"], routes).await?;
    ensure_pod(&gateway, HOST, "/api/v1", &[], "long").await?;
    ensure_pod(&gateway, HOST, "/api/v1/users", &[], "long").await?;
    ensure_pod(&gateway, HOST, "/api/v2", &[], "short").await?;
    ensure_pod(&gateway, HOST, "/api/v10", &[], "short").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_prefix_wins_across_routes() -> anyhow::Result<()> {
    // The shorter prefix is in the alphabetically first route, so route order alone would
    // pick it.
    let routes = vec![
        http_route(
            "a-short",
            &[],
            vec![rule(
                vec![path_match("PathPrefix", "/api")],
                vec![service_ref("short")],
            )],
        ),
        http_route(
            "b-long",
            &[],
            vec![rule(
                vec![path_match("PathPrefix", "/api/v1")],
                vec![service_ref("long")],
            )],
        ),
    ];
    let (_echoes, gateway) = serve(&["short", "long"], routes).await?;
    ensure_pod(&gateway, HOST, "/api/v1/users", &[], "long").await?;
    ensure_pod(&gateway, HOST, "/api/users", &[], "short").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_match_beats_no_method() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "method",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/")],
                vec![service_ref("any")],
            ),
            rule(
                vec![json!({"path": {"type": "PathPrefix", "value": "/"}, "method": "GET"})],
                vec![service_ref("get")],
            ),
        ],
    )];
    let (_echoes, gateway) = serve(&["any", "get"], routes).await?;
    ensure_pod(&gateway, HOST, "/x", &[], "get").await?;
    let post = gateway
        .request(Method::POST, HOST, "/x", &[], Bytes::new())
        .await?;
    ensure!(
        pod_of(&post)? == "any",
        "POST falls through to the rule without a method"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_header_matches_win() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "headers",
        &[],
        vec![
            rule(
                vec![json!({"headers": [{"name": "x-a", "value": "1"}]})],
                vec![service_ref("one")],
            ),
            rule(
                vec![json!({"headers": [
                    {"name": "x-a", "value": "1"},
                    {"name": "x-b", "value": "2"}
                ]})],
                vec![service_ref("two")],
            ),
        ],
    )];
    let (_echoes, gateway) = serve(&["one", "two"], routes).await?;
    ensure_pod(&gateway, HOST, "/", &[("x-a", "1"), ("x-b", "2")], "two").await?;
    ensure_pod(&gateway, HOST, "/", &[("x-a", "1")], "one").await?;
    ensure_pod(&gateway, HOST, "/", &[("x-a", "1"), ("x-b", "3")], "one").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_query_param_matches_win() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "query",
        &[],
        vec![
            rule(
                vec![json!({"queryParams": [{"name": "a", "value": "1"}]})],
                vec![service_ref("one")],
            ),
            rule(
                vec![json!({"queryParams": [
                    {"name": "a", "value": "1"},
                    {"name": "b", "value": "2"}
                ]})],
                vec![service_ref("two")],
            ),
        ],
    )];
    let (_echoes, gateway) = serve(&["one", "two"], routes).await?;
    ensure_pod(&gateway, HOST, "/?a=1&b=2", &[], "two").await?;
    ensure_pod(&gateway, HOST, "/?a=1", &[], "one").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldest_route_wins_a_tie() -> anyhow::Result<()> {
    // Identical matches in two routes: the older one wins even though its name sorts last.
    let routes = vec![
        created_at(
            http_route("aaa-new", &[], vec![rule(vec![], vec![service_ref("new")])]),
            "2024-06-01T00:00:00Z",
        ),
        created_at(
            http_route("zzz-old", &[], vec![rule(vec![], vec![service_ref("old")])]),
            "2020-01-01T00:00:00Z",
        ),
    ];
    let (_echoes, gateway) = serve(&["new", "old"], routes).await?;
    ensure_pod(&gateway, HOST, "/", &[], "old").await?;
    ensure_pod(&gateway, HOST, "/any/path", &[], "old").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alphabetical_route_wins_a_tie_of_age() -> anyhow::Result<()> {
    // Same creation time: `{namespace}/{name}` in alphabetical order decides. The losing route
    // is listed first in the file.
    let created = "2023-03-03T03:03:03Z";
    let routes = vec![
        created_at(
            http_route("route-b", &[], vec![rule(vec![], vec![service_ref("b")])]),
            created,
        ),
        created_at(
            http_route("route-a", &[], vec![rule(vec![], vec![service_ref("a")])]),
            created,
        ),
    ];
    let (_echoes, gateway) = serve(&["a", "b"], routes).await?;
    ensure_pod(&gateway, HOST, "/", &[], "a").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_hostname_beats_wildcard() -> anyhow::Result<()> {
    // Same path everywhere: only the hostname decides.
    let routes = vec![
        http_route(
            "wildcard",
            &["*.example.com"],
            vec![rule(vec![], vec![service_ref("wildcard")])],
        ),
        http_route(
            "exact",
            &["foo.example.com"],
            vec![rule(vec![], vec![service_ref("exact")])],
        ),
        http_route("any", &[], vec![rule(vec![], vec![service_ref("any")])]),
    ];
    let (_echoes, gateway) = serve(&["wildcard", "exact", "any"], routes).await?;
    ensure_pod(&gateway, "foo.example.com", "/", &[], "exact").await?;
    ensure_pod(&gateway, "FOO.Example.COM", "/", &[], "exact").await?;
    ensure_pod(&gateway, "bar.example.com", "/", &[], "wildcard").await?;
    ensure_pod(&gateway, "a.b.example.com", "/", &[], "wildcard").await?;
    ensure_pod(&gateway, "other.net", "/", &[], "any").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_hostname_does_not_match_apex() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "wildcard",
        &["*.example.com"],
        vec![rule(vec![], vec![service_ref("wildcard")])],
    )];
    let (_echoes, gateway) = serve(&["wildcard"], routes).await?;
    ensure_pod(&gateway, "www.example.com", "/", &[], "wildcard").await?;
    ensure_not_found(&gateway, "example.com", "/").await?;
    ensure_not_found(&gateway, "badexample.com", "/").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_port_is_ignored() -> anyhow::Result<()> {
    let routes = vec![http_route(
        "exact",
        &["foo.example.com"],
        vec![rule(vec![], vec![service_ref("a")])],
    )];
    let (_echoes, gateway) = serve(&["a"], routes).await?;
    let with_listener_port = format!("foo.example.com:{}", gateway.listener().port());
    ensure_pod(&gateway, &with_listener_port, "/", &[], "a").await?;
    ensure_pod(&gateway, "foo.example.com:8080", "/", &[], "a").await?;
    let reply = gateway
        .get("foo.example.com:8080", "/", &[])
        .await?
        .echo()?;
    ensure!(
        reply.host == "foo.example.com:8080",
        "the backend sees the Host as sent: {:?}",
        reply.host
    );
    ensure_not_found(&gateway, "bar.example.com:8080", "/").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_hostname_must_intersect_listener_hostname() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["inside", "outside"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(Some("*.example.com"))?;
    let mut documents = services(&echoes, &["inside", "outside"]);
    documents.push(http_route(
        "inside",
        &["foo.example.com"],
        vec![rule(vec![], vec![service_ref("inside")])],
    ));
    documents.push(http_route(
        "outside",
        &["foo.other.net"],
        vec![rule(vec![], vec![service_ref("outside")])],
    ));
    config.write("config.yaml", &documents)?;
    let gateway = config.start(&[]).await?;

    let status = gateway.status().await?;
    ensure_route_condition(&status, "inside", "Accepted", "True", "Accepted")?;
    ensure_route_condition(
        &status,
        "outside",
        "Accepted",
        "False",
        "NoMatchingListenerHostname",
    )?;

    ensure_pod(&gateway, "foo.example.com", "/", &[], "inside").await?;
    ensure_not_found(&gateway, "foo.other.net", "/").await?;
    ensure!(
        echoes.server("outside").requests() == 0,
        "the unattached route's backend got traffic"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_hostname_narrows_a_wildcard_route() -> anyhow::Result<()> {
    // Listener `foo.example.com`, route `*.example.com`: the route serves only the listener's
    // host.
    let echoes = Echoes::start(&["a"]).await?;
    let config = ConfigDir::new()?;
    config.write_gateway(Some("foo.example.com"))?;
    let mut documents = services(&echoes, &["a"]);
    documents.push(http_route(
        "wildcard",
        &["*.example.com"],
        vec![rule(vec![], vec![service_ref("a")])],
    ));
    config.write("config.yaml", &documents)?;
    let gateway = config.start(&[]).await?;

    ensure_route_condition(
        &gateway.status().await?,
        "wildcard",
        "Accepted",
        "True",
        "Accepted",
    )?;
    ensure_pod(&gateway, "foo.example.com", "/", &[], "a").await?;
    ensure_not_found(&gateway, "bar.example.com", "/").await?;
    Ok(())
}
