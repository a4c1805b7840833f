//! The path corpus (reliability T06, issue 9 defect 1): with only `PathPrefix /public` routed,
//! no encoding of a path may reach the backend as anything but a normalized `/public` path.

use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;
use testkit::HttpClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fixture::eventually;
use crate::fixture::manifest::{NS, http_route, path_match, rule, service_backend, service_ref};
use crate::fixture::recording::{recording_backend, seen_paths};
use crate::fixture::running::{HOST, TestGateway};

use super::limits::{POLICY_FILE, client_policy, start_with_policy};

/// What the gateway must do with a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Forwarded to `/public`'s backend with exactly this path.
    Forward(&'static str),
    /// Normalized to a path no route serves: 404, nothing forwarded.
    NotFound,
    /// Refused: 400, nothing forwarded.
    Reject,
}

use Expect::{Forward, NotFound, Reject};

/// `(request path, expected)`; the default path policy (merge slashes, reject escaped slashes).
const CORPUS: &[(&str, Expect)] = &[
    ("/public/../admin", NotFound),
    ("/public/%2e%2e/admin", NotFound),
    ("/public/%2E%2E/admin", NotFound),
    ("/public/.%2e/admin", NotFound),
    ("/public/%2e./admin", NotFound),
    ("/public/./../admin", NotFound),
    ("/public/././../admin", NotFound),
    ("//public/../admin", NotFound),
    ("/public//../admin", NotFound),
    ("/public/..", NotFound),
    ("/PUBLIC/../admin", NotFound),
    ("/public/x/../../admin", NotFound),
    ("/public/..%2fadmin", Reject),
    ("/public/..%2Fadmin", Reject),
    ("/public%2f..%2fadmin", Reject),
    ("/public/%2e%2e%2fadmin", Reject),
    ("/public/..%5cadmin", Reject),
    ("/public/..%5Cadmin", Reject),
    ("/public/..\\admin", Reject),
    ("/public\\..\\admin", Reject),
    ("/public/..;/admin", Reject),
    ("/public/%2e%2e;/admin", Reject),
    ("/public/.;/admin", Reject),
    ("/public/%00/../admin", Reject),
    ("/public%00", Reject),
    ("/public/%c0%ae%c0%ae/admin", Reject),
    ("/public/%e0%80%ae%e0%80%ae/admin", Reject),
    ("/public/%c0%af", Reject),
    ("/public/%zz", Reject),
    ("/public/%2", Reject),
    ("/public/x/..%00", Reject),
    (
        "/public/%252e%252e/admin",
        Forward("/public/%252e%252e/admin"),
    ),
    ("/public/..%252fadmin", Forward("/public/..%252fadmin")),
    ("/public/%2e", Forward("/public/")),
    ("/public/./x", Forward("/public/x")),
    ("/public/a/../x", Forward("/public/x")),
    ("/public//x", Forward("/public/x")),
    ("///public///x", Forward("/public/x")),
    ("/%70ublic/x", Forward("/public/x")),
    ("/public/%41%42", Forward("/public/AB")),
    (
        "/public/x%3bjsessionid=1",
        Forward("/public/x%3Bjsessionid=1"),
    ),
    ("/public/x;jsessionid=1", Forward("/public/x;jsessionid=1")),
    ("/public/caf%c3%a9", Forward("/public/caf%C3%A9")),
    ("/public/../public/x", Forward("/public/x")),
    ("/public/%2e%2e/public/y", Forward("/public/y")),
    ("/admin/../public/z", Forward("/public/z")),
    ("/public/.../admin", Forward("/public/.../admin")),
    ("/public/%7euser", Forward("/public/~user")),
    ("/public/trailing.", Forward("/public/trailing.")),
    ("/public/x?q=../admin", Forward("/public/x")),
];

/// Sends `GET path` over a fresh HTTP/1.1 connection, bytes as given; returns the status.
async fn raw_get(gateway: std::net::SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(gateway).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .context("no answer within 5 s")??;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("not an HTTP response: {answer:?}"))
}

fn check(path: &str, expected: Expect, status: u16, seen: &[String], failures: &mut Vec<String>) {
    let ok = match expected {
        Forward(backend_path) => status == 200 && seen == [backend_path],
        NotFound => status == 404 && seen.is_empty(),
        Reject => status == 400 && seen.is_empty(),
    };
    if !ok {
        failures.push(format!(
            "{path}: expected {expected:?}, got {status} with backend paths {seen:?}"
        ));
    }
    for forwarded in seen {
        if forwarded
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            failures.push(format!(
                "{path}: the backend received a dot segment: {forwarded}"
            ));
        }
        if !forwarded.starts_with("/public/") {
            failures.push(format!(
                "{path}: the backend received {forwarded} through /public"
            ));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_encoding_of_a_path_crosses_from_public_to_another_route() -> anyhow::Result<()> {
    ensure!(
        CORPUS.len() >= 40,
        "the corpus has {} encodings",
        CORPUS.len()
    );
    let (backend, seen) = recording_backend().await?;
    let mut documents = service_backend(NS, "public", &[backend]);
    documents.push(http_route(
        "public",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/public")],
            vec![service_ref("public")],
        )],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let h2c = HttpClient::h2c();
    let mut failures = Vec::new();
    let mut h2_cases = 0;
    for &(path, expected) in CORPUS {
        seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let status = raw_get(gateway.listener(), path)
            .await
            .with_context(|| path.to_owned())?;
        check(path, expected, status, &seen_paths(&seen), &mut failures);

        // The same over h2c, where the client library accepts the path as a URI.
        seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
        if let Ok(response) = h2c.get(gateway.listener(), HOST, path, &[]).await {
            h2_cases += 1;
            check(
                &format!("h2c {path}"),
                expected,
                response.status.as_u16(),
                &seen_paths(&seen),
                &mut failures,
            );
        }
    }
    ensure!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    ensure!(h2_cases >= 40, "only {h2_cases} paths went over h2c");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_slashes_follow_the_listener_policy() -> anyhow::Result<()> {
    let (backend, seen) = recording_backend().await?;
    let mut documents = service_backend(NS, "public", &[backend]);
    documents.push(http_route(
        "public",
        &[],
        vec![rule(
            vec![path_match("PathPrefix", "/public")],
            vec![service_ref("public")],
        )],
    ));
    let gateway = start_with_policy(
        &documents,
        Some(
            json!({"path": {"mergeSlashes": false, "escapedSlashesAction": "UnescapeAndForward"}}),
        ),
        &[],
    )
    .await?;
    let status = raw_get(gateway.listener(), "/public/a%2Fb//c").await?;
    ensure!(status == 200, "UnescapeAndForward: {status}");
    ensure!(
        seen_paths(&seen) == ["/public/a/b//c"],
        "forwarded {:?}",
        seen_paths(&seen)
    );
    let status = raw_get(gateway.listener(), "/public/..%2fadmin").await?;
    ensure!(
        status == 404,
        "UnescapeAndForward of ..%2fadmin must normalize to /admin: {status}"
    );

    gateway.config.write(
        POLICY_FILE,
        &[client_policy(
            json!({"path": {"escapedSlashesAction": "UnescapeAndRedirect"}}),
        )],
    )?;
    eventually(Duration::from_secs(10), async || {
        let response = gateway.get(HOST, "/public/a%2fb", &[]).await?;
        ensure!(response.status == 307, "status {}", response.status);
        ensure!(
            response.header("location") == Some("/public/a/b"),
            "{:?}",
            response.headers
        );
        Ok(())
    })
    .await
}
