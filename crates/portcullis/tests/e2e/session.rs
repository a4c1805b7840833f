//! Session persistence (GEP-1619): a route rule's `sessionPersistence` cookie or header pins a
//! client to the endpoint that served it; a tampered token is ignored.

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use serde_json::json;
use testkit::{EchoConfig, EchoServer, HttpClient, TestResponse};

use crate::fixture::manifest::{NS, http_route, rule, service_backend, service_ref};
use crate::fixture::running::{HOST, TestGateway};

/// Two echo pods behind Service `sticky`, routed by a rule with `sessionPersistence`.
async fn start(persistence: serde_json::Value) -> anyhow::Result<(TestGateway, [EchoServer; 2])> {
    let pods = [
        EchoServer::start(EchoConfig::new("sticky-a", NS)).await?,
        EchoServer::start(EchoConfig::new("sticky-b", NS)).await?,
    ];
    let mut documents = service_backend(NS, "sticky", &[pods[0].addr(), pods[1].addr()]);
    let mut sticky = rule(vec![], vec![service_ref("sticky")]);
    sticky["sessionPersistence"] = persistence;
    documents.push(http_route("sticky", &[], vec![sticky]));
    let gateway = TestGateway::start(&documents).await?;
    Ok((gateway, pods))
}

/// The `sid` token of a `Set-Cookie` response header.
fn cookie_token(response: &TestResponse) -> Option<String> {
    let set = response.headers.get("set-cookie")?.to_str().ok()?;
    let (pair, attributes) = set.split_once(';')?;
    assert_eq!(attributes, " Path=/; HttpOnly", "{set}");
    pair.strip_prefix("sid=").map(str::to_owned)
}

/// The token of the `x-session` response header.
fn header_token(response: &TestResponse) -> Option<String> {
    Some(response.headers.get("x-session")?.to_str().ok()?.to_owned())
}

/// Sends requests without a token until both pods have answered, returning a token per pod.
async fn tokens_per_pod(
    gateway: &TestGateway,
    token_of: fn(&TestResponse) -> Option<String>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let client = HttpClient::new();
    let mut tokens = BTreeMap::new();
    for _ in 0..100 {
        let response = client.get(gateway.listener(), HOST, "/", &[]).await?;
        ensure!(response.status == 200, "status {}", response.status);
        let token = token_of(&response).context("the first response carries a session token")?;
        tokens.insert(response.echo()?.pod, token);
        if tokens.len() == 2 {
            return Ok(tokens);
        }
    }
    anyhow::bail!("only {tokens:?} answered 100 requests")
}

/// Every request replaying a pod's token reaches that pod and gets no new token; a tampered
/// token is ignored (a normal pick and a fresh, valid token).
async fn check_sticky(
    gateway: &TestGateway,
    header: &str,
    value: fn(&str) -> String,
    token_of: fn(&TestResponse) -> Option<String>,
) -> anyhow::Result<()> {
    let client = HttpClient::new();
    let tokens = tokens_per_pod(gateway, token_of).await?;
    for (pod, token) in &tokens {
        let sent = value(token);
        for _ in 0..20 {
            let response = client
                .get(gateway.listener(), HOST, "/", &[(header, &sent)])
                .await?;
            ensure!(response.status == 200, "status {}", response.status);
            let answered = response.echo()?.pod;
            ensure!(&answered == pod, "token of {pod} answered by {answered}");
            ensure!(
                token_of(&response).is_none(),
                "a valid token is not reissued"
            );
        }
        let mut tampered = token.clone();
        let last = if tampered.pop() == Some('0') {
            '1'
        } else {
            '0'
        };
        tampered.push(last);
        let response = client
            .get(
                gateway.listener(),
                HOST,
                "/",
                &[(header, &value(&tampered))],
            )
            .await?;
        ensure!(response.status == 200, "status {}", response.status);
        let fresh = token_of(&response).context("a tampered token gets a new one")?;
        let answered = response.echo()?.pod;
        // Tokens carry their issue time too: the endpoint is the part before the first dot.
        let endpoint = |token: &str| token.split('.').next().map(str::to_owned);
        ensure!(
            tokens.get(&answered).and_then(|t| endpoint(t)) == endpoint(&fresh),
            "the new token names {answered}: {fresh} vs {tokens:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_session_pins_the_endpoint() -> anyhow::Result<()> {
    let (gateway, _pods) = start(json!({"sessionName": "sid", "type": "Cookie"})).await?;
    check_sticky(
        &gateway,
        "cookie",
        |token| format!("theme=dark; sid={token}"),
        cookie_token,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_cookie_has_max_age() -> anyhow::Result<()> {
    let (gateway, _pods) = start(json!({
        "sessionName": "sid",
        "absoluteTimeout": "1h",
        "cookieConfig": {"lifetimeType": "Permanent"},
    }))
    .await?;
    let response = HttpClient::new()
        .get(gateway.listener(), HOST, "/", &[])
        .await?;
    let set = response
        .headers
        .get("set-cookie")
        .context("set-cookie")?
        .to_str()?;
    ensure!(set.starts_with("sid="), "{set}");
    ensure!(set.ends_with("; Path=/; HttpOnly; Max-Age=3600"), "{set}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_session_pins_the_endpoint() -> anyhow::Result<()> {
    let (gateway, _pods) = start(json!({"sessionName": "X-Session", "type": "Header"})).await?;
    check_sticky(&gateway, "x-session", str::to_owned, header_token).await
}

/// BackendTrafficPolicy `ConsistentHash` on a cookie: the gateway sets the cookie when the
/// request has none, and requests carrying it stay on one endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_hash_cookie_is_set_by_the_gateway() -> anyhow::Result<()> {
    let pods = [
        EchoServer::start(EchoConfig::new("hash-a", NS)).await?,
        EchoServer::start(EchoConfig::new("hash-b", NS)).await?,
    ];
    let mut documents = service_backend(NS, "hashed", &[pods[0].addr(), pods[1].addr()]);
    documents.push(http_route(
        "hashed",
        &[],
        vec![rule(vec![], vec![service_ref("hashed")])],
    ));
    documents.push(json!({
        "apiVersion": "portcullis.dev/v1alpha1",
        "kind": "BackendTrafficPolicy",
        "metadata": {"name": "hashed", "namespace": NS},
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": "hashed"}],
            "loadBalancer": {
                "type": "ConsistentHash",
                "consistentHash": {"type": "Cookie", "cookie": {"name": "affinity", "ttl": "30m"}},
            },
        },
    }));
    let gateway = TestGateway::start(&documents).await?;
    let client = HttpClient::new();
    let mut pods_seen = BTreeMap::<String, u32>::new();
    for _ in 0..10 {
        let first = client.get(gateway.listener(), HOST, "/", &[]).await?;
        ensure!(first.status == 200, "status {}", first.status);
        let set = first
            .headers
            .get("set-cookie")
            .context("the gateway sets the hash cookie")?
            .to_str()?;
        let (pair, attributes) = set.split_once(';').context("attributes")?;
        ensure!(pair.starts_with("affinity="), "{set}");
        ensure!(attributes == " Path=/; HttpOnly; Max-Age=1800", "{set}");
        let reply = first.echo()?;
        ensure!(
            reply.header("cookie").as_deref() == Some(pair),
            "the backend sees the cookie: {:?}",
            reply.header("cookie")
        );
        for _ in 0..10 {
            let again = client
                .get(gateway.listener(), HOST, "/", &[("cookie", pair)])
                .await?;
            ensure!(again.headers.get("set-cookie").is_none(), "not set twice");
            let answered = again.echo()?.pod;
            ensure!(
                answered == reply.pod,
                "{pair}: {} then {answered}",
                reply.pod
            );
        }
        *pods_seen.entry(reply.pod).or_default() += 1;
    }
    println!("first requests by pod: {pods_seen:?}");
    Ok(())
}
