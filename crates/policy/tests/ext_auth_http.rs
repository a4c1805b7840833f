//! ext_authz over HTTP against a real hyper authorization server on 127.0.0.1: the check built
//! by `check_request` travels over a real HTTP/1.1 connection, and the server's real answer is
//! what `judge` reads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use policy::ext_auth::{Verdict, check_request, judge};
use snapshot::security::{BodyForwarding, ExtAuth, ExtAuthProtocol};

/// A check as the server saw it.
#[derive(Debug)]
struct Seen {
    method: http::Method,
    target: String,
    headers: http::HeaderMap,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The authorization logic: by the path after the prefix.
async fn authorize(
    request: Request<Incoming>,
    log: Log,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let target = head
        .uri
        .path_and_query()
        .map(|t| t.to_string())
        .unwrap_or_default();
    if let Ok(mut log) = log.lock() {
        log.push(Seen {
            method: head.method,
            target: target.clone(),
            headers: head.headers,
            body,
        });
    }
    let answer = if target.starts_with("/ext/allowed") {
        Response::builder()
            .header("x-user", "ana")
            .header("x-not-listed", "dropped")
            .body(Full::default())
    } else if target.starts_with("/ext/private") {
        Response::builder()
            .status(401)
            .header("www-authenticate", "Basic realm=\"shop\"")
            .header("content-type", "text/plain")
            .body(Full::new(Bytes::from_static(b"log in first")))
    } else if target.starts_with("/ext/page") {
        Response::builder()
            .status(302)
            .header("location", "https://login.example/?rd=%2Fpage")
            .body(Full::default())
    } else {
        Response::builder().status(503).body(Full::default())
    };
    Ok(answer.unwrap_or_default())
}

async fn start_server() -> anyhow::Result<(SocketAddr, Log)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let log = Log::default();
    let server_log = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = server_log.clone();
            let service =
                hyper::service::service_fn(move |request| authorize(request, log.clone()));
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok((address, log))
}

fn settings() -> ExtAuth {
    ExtAuth {
        backend: 0,
        protocol: ExtAuthProtocol::Http {
            path_prefix: "/ext".to_owned(),
        },
        headers_to_backend: Vec::new(),
        headers_to_upstream: vec![HeaderName::from_static("x-user")],
        all_headers_to_upstream: false,
        body: None,
        fail_open: false,
        timeout: Duration::from_secs(2),
    }
}

/// Sends the check for `POST path` over a new HTTP/1.1 connection and judges the answer.
async fn check(
    server: SocketAddr,
    settings: &ExtAuth,
    path: &str,
    body: Option<(&Bytes, bool)>,
) -> anyhow::Result<Verdict> {
    let parts = Request::post(path)
        .header("host", "shop.example")
        .header("authorization", "Basic YW5hOnB3")
        .header("content-length", "999")
        .body(())?
        .into_parts()
        .0;
    let client = SocketAddr::from(([203, 0, 113, 9], 41_000));
    let check = check_request(settings, &parts, client, "http", body);
    let stream = tokio::net::TcpStream::connect(server).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(check.map(Full::new)).await?;
    let (head, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(judge(settings, head, body, None))
}

#[tokio::test]
async fn an_allowing_answer_sets_the_listed_headers_upstream() -> anyhow::Result<()> {
    let (server, log) = start_server().await?;
    let Verdict::Allow(changes) = check(server, &settings(), "/allowed/1?q=a", None).await? else {
        anyhow::bail!("the server allowed");
    };
    let mut upstream = http::HeaderMap::new();
    upstream.insert("x-user", "forged".parse()?);
    changes.apply(&mut upstream);
    assert_eq!(
        upstream.get("x-user").map(|v| v.as_bytes()),
        Some(&b"ana"[..])
    );
    assert!(!upstream.contains_key("x-not-listed"));

    let log = log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let seen = log
        .first()
        .ok_or_else(|| anyhow::anyhow!("no check received"))?;
    assert_eq!(seen.method, http::Method::POST);
    assert_eq!(seen.target, "/ext/allowed/1?q=a");
    let header = |name: &str| seen.headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header("host"), Some("shop.example"));
    assert_eq!(header("authorization"), Some("Basic YW5hOnB3"));
    assert_eq!(header("x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(header("content-length"), Some("0"));
    assert!(seen.body.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_401_with_www_authenticate_reaches_the_client() -> anyhow::Result<()> {
    let (server, _) = start_server().await?;
    let Verdict::Deny(denial) = check(server, &settings(), "/private", None).await? else {
        anyhow::bail!("the server denied");
    };
    assert_eq!(denial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(denial.body.as_ref(), b"log in first");
    assert_eq!(
        denial.headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Basic realm=\"shop\""[..])
    );
    assert!(!denial.headers.contains_key("content-length"));
    Ok(())
}

#[tokio::test]
async fn a_302_to_a_login_page_reaches_the_client() -> anyhow::Result<()> {
    let (server, _) = start_server().await?;
    let Verdict::Deny(denial) = check(server, &settings(), "/page", None).await? else {
        anyhow::bail!("the server redirected");
    };
    assert_eq!(denial.status, StatusCode::FOUND);
    assert_eq!(
        denial.headers.get("location").map(|v| v.as_bytes()),
        Some(&b"https://login.example/?rd=%2Fpage"[..])
    );
    Ok(())
}

#[tokio::test]
async fn a_503_is_an_error_of_the_service() -> anyhow::Result<()> {
    let (server, _) = start_server().await?;
    let verdict = check(server, &settings(), "/anything", None).await?;
    assert!(
        matches!(verdict, Verdict::Error("server-error")),
        "{verdict:?}"
    );
    Ok(())
}

#[tokio::test]
async fn with_body_the_server_receives_the_first_bytes_and_whether_they_were_cut()
-> anyhow::Result<()> {
    let (server, log) = start_server().await?;
    let mut settings = settings();
    settings.body = Some(BodyForwarding {
        max_bytes: 5,
        refuse_larger: false,
    });
    let long = Bytes::from_static(b"0123456789");
    let short = Bytes::from_static(b"abc");
    for body in [&long, &short] {
        let verdict = check(server, &settings, "/allowed", Some((body, false))).await?;
        assert!(matches!(verdict, Verdict::Allow(_)), "{verdict:?}");
    }

    let log = log.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let [cut, whole] = log.as_slice() else {
        anyhow::bail!("expected two checks, got {}", log.len());
    };
    assert_eq!(cut.body.as_ref(), b"01234");
    let partial = |seen: &Seen| seen.headers.get("x-envoy-auth-partial-body").cloned();
    assert_eq!(partial(cut), Some("true".parse()?));
    assert_eq!(whole.body.as_ref(), b"abc");
    assert_eq!(partial(whole), Some("false".parse()?));
    Ok(())
}
