//! Tests of the echo backend over real sockets, with the testkit clients.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use http::{Method, StatusCode, Version};
use testkit::{EchoConfig, EchoMode, EchoServer, HttpClient, reserve_closed_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP echo backend named like a conformance pod.
async fn start_echo(mode: EchoMode) -> anyhow::Result<EchoServer> {
    let mut config = EchoConfig::new("infra-backend-v1-7d9c-abcde", "gateway-conformance-infra");
    config.service = "infra-backend-v1".to_owned();
    config.mode = mode;
    EchoServer::start(config).await
}

#[tokio::test]
async fn echo_reports_the_request_as_json() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let client = HttpClient::new();
    let headers = [
        ("x-forwarded-for", "10.0.0.1"),
        ("X-Multi", "a"),
        ("x-multi", "b"),
    ];
    let response = client
        .get(echo.addr(), "example.com", "/some//path?b=2&a=1", &headers)
        .await?;

    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    let reply = response.echo()?;
    assert_eq!(reply.path, "/some//path?b=2&a=1");
    assert_eq!(reply.host, "example.com");
    assert_eq!(reply.method, "GET");
    assert_eq!(reply.proto, "HTTP/1.1");
    assert_eq!(
        reply.headers.get("X-Forwarded-For"),
        Some(&vec!["10.0.0.1".to_owned()])
    );
    assert_eq!(
        reply.headers.get("X-Multi"),
        Some(&vec!["a".to_owned(), "b".to_owned()])
    );
    assert_eq!(reply.header("x-multi").as_deref(), Some("a,b"));
    assert!(
        !reply.headers.contains_key("Host"),
        "Host is reported as `host`, not as a header"
    );
    assert_eq!(reply.namespace, "gateway-conformance-infra");
    assert_eq!(reply.ingress, "");
    assert_eq!(reply.service, "infra-backend-v1");
    assert_eq!(reply.pod, "infra-backend-v1-7d9c-abcde");
    assert_eq!(reply.http_port, echo.addr().port().to_string());

    assert_eq!(echo.requests(), 1);
    assert_eq!(
        echo.logs(),
        vec!["Echoing back request made to /some//path?b=2&a=1 to client".to_owned()]
    );
    assert!(echo.has_logged("/some//path?b=2&a=1"));
    Ok(())
}

#[tokio::test]
async fn echo_reports_method_and_raw_json_field_names() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let response = HttpClient::new()
        .request(
            Method::POST,
            echo.addr(),
            "",
            "/post",
            &[],
            bytes::Bytes::from_static(b"ignored"),
        )
        .await?;
    let json: serde_json::Value = serde_json::from_slice(&response.body)?;
    assert_eq!(json["method"], "POST");
    assert_eq!(json["host"], echo.addr().to_string());
    assert_eq!(json["httpPort"], echo.addr().port().to_string());
    assert_eq!(json["headers"]["Content-Length"][0], "7");
    Ok(())
}

#[tokio::test]
async fn echo_set_header_adds_response_headers() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let client = HttpClient::new();
    let set = [("X-Echo-Set-Header", "X-Foo:bar, X-Baz: 1,X-Foo:again")];
    let response = client.get(echo.addr(), "example.com", "/", &set).await?;
    assert_eq!(response.header("x-foo"), Some("bar,again"));
    assert_eq!(response.header("x-baz"), Some("1"));

    let empty = [("X-Echo-Set-Header", "")];
    let response = client.get(echo.addr(), "example.com", "/", &empty).await?;
    let mut names: Vec<&str> = response
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "content-length",
            "content-type",
            "date",
            "x-content-type-options"
        ]
    );
    Ok(())
}

#[tokio::test]
async fn health_and_status_routes() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let client = HttpClient::new();
    let health = client
        .get(echo.addr(), "example.com", "/health", &[])
        .await?;
    assert_eq!(
        (health.status, health.text().as_str()),
        (StatusCode::OK, "OK")
    );

    let unavailable = client
        .get(echo.addr(), "example.com", "/status/503", &[])
        .await?;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(unavailable.body.is_empty());
    // Routing collapses `//`, and the status comes from the RequestURI, which must be exactly /status/NNN.
    let collapsed = client
        .get(echo.addr(), "example.com", "//status/503", &[])
        .await?;
    assert_eq!(collapsed.status, StatusCode::BAD_REQUEST);
    let with_query = client
        .get(echo.addr(), "example.com", "/status/503?x=1", &[])
        .await?;
    assert_eq!(with_query.status, StatusCode::BAD_REQUEST);
    let not_a_code = client
        .get(echo.addr(), "example.com", "/status/abc", &[])
        .await?;
    assert_eq!(not_a_code.status, StatusCode::BAD_REQUEST);

    assert_eq!(echo.requests(), 5);
    assert!(echo.logs().is_empty(), "only echoed requests are logged");
    Ok(())
}

#[tokio::test]
async fn delay_query_parameter_delays_the_echo() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let client = HttpClient::new();
    let started = Instant::now();
    let response = client
        .get(echo.addr(), "example.com", "/slow?delay=300ms", &[])
        .await?;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(response.echo()?.path, "/slow?delay=300ms");

    let invalid = client
        .get(echo.addr(), "example.com", "/slow?delay=soon", &[])
        .await?;
    assert_eq!(invalid.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        invalid.text().contains("invalid duration"),
        "{}",
        invalid.text()
    );
    Ok(())
}

#[tokio::test]
async fn retry_with_response_code_fails_then_echoes() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let client = HttpClient::new();
    let path = "/retry/x?uuid=code-1&succeedAfter=2&responseCode=503&delayRetry=100ms";
    for attempt in 1..=2 {
        let started = Instant::now();
        let response = client.get(echo.addr(), "example.com", path, &[]).await?;
        assert_eq!(
            response.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "attempt {attempt}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(100),
            "delayRetry is honoured"
        );
    }
    let third = client.get(echo.addr(), "example.com", path, &[]).await?;
    assert_eq!(third.status, StatusCode::OK);
    assert_eq!(third.echo()?.path, path);

    // Attempts are counted per uuid.
    let other = client
        .get(
            echo.addr(),
            "example.com",
            "/retry/x?uuid=code-2&succeedAfter=1&responseCode=500",
            &[],
        )
        .await?;
    assert_eq!(other.status, StatusCode::INTERNAL_SERVER_ERROR);

    for bad in [
        "/retry/x?succeedAfter=1",
        "/retry/x?uuid=u",
        "/retry/x?uuid=u&succeedAfter=x",
    ] {
        let response = client.get(echo.addr(), "example.com", bad, &[]).await?;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    Ok(())
}

#[tokio::test]
async fn retry_without_response_code_resets_the_connection() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;

    // A raw socket shows it is a reset, not an orderly close.
    let mut stream = TcpStream::connect(echo.addr()).await?;
    stream
        .write_all(b"GET /retry/x?uuid=rst-1&succeedAfter=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        .await?;
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received))
        .await
        .context("the echo server neither answered nor reset")?;
    match read {
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
        Ok(bytes) => anyhow::bail!(
            "expected a reset, read {bytes} bytes: {:?}",
            String::from_utf8_lossy(&received)
        ),
    }

    // Through the client: the first attempt is a connection error, the second one is echoed.
    let client = HttpClient::new();
    let path = "/retry/x?uuid=rst-2&succeedAfter=1";
    let first = client.get(echo.addr(), "example.com", path, &[]).await;
    ensure!(first.is_err(), "expected a connection error, got {first:?}");
    let second = client.get(echo.addr(), "example.com", path, &[]).await?;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(echo.requests(), 3);
    Ok(())
}

#[tokio::test]
async fn h2c_prior_knowledge_is_echoed_as_http2() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::H2cOnly).await?;
    let response = HttpClient::h2c()
        .get(
            echo.addr(),
            "h2.example.com",
            "/h2c?x=1",
            &[("x-test", "1")],
        )
        .await?;
    assert_eq!(response.version, Version::HTTP_2);
    let reply = response.echo()?;
    assert_eq!(reply.proto, "HTTP/2.0");
    assert_eq!(reply.host, "h2.example.com");
    assert_eq!(reply.path, "/h2c?x=1");
    assert_eq!(reply.header("x-test").as_deref(), Some("1"));

    let http1 = HttpClient::new()
        .get(echo.addr(), "h2.example.com", "/h2c", &[])
        .await?;
    assert_eq!(http1.status, StatusCode::BAD_REQUEST);
    assert_eq!(http1.text(), "Expected h2c request");
    Ok(())
}

#[tokio::test]
async fn http_mode_serves_both_http1_and_h2c() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let h2 = HttpClient::h2c()
        .get(echo.addr(), "example.com", "/", &[])
        .await?;
    assert_eq!(h2.echo()?.proto, "HTTP/2.0");
    let h1 = HttpClient::new()
        .get(echo.addr(), "example.com", "/", &[])
        .await?;
    assert_eq!(h1.echo()?.proto, "HTTP/1.1");
    Ok(())
}

#[tokio::test]
async fn h2c_retry_reset_fails_the_request() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::H2cOnly).await?;
    let client = HttpClient::h2c();
    let path = "/retry/x?uuid=h2-rst&succeedAfter=1";
    let first = client.get(echo.addr(), "example.com", path, &[]).await;
    ensure!(first.is_err(), "expected a connection error, got {first:?}");
    let second = client.get(echo.addr(), "example.com", path, &[]).await?;
    assert_eq!(second.echo()?.proto, "HTTP/2.0");
    Ok(())
}

#[tokio::test]
async fn shutdown_closes_the_port_and_aborts_requests_in_flight() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let addr = echo.addr();
    let client = HttpClient::new();
    assert_eq!(
        client.get(addr, "example.com", "/", &[]).await?.status,
        StatusCode::OK
    );

    let slow = tokio::spawn(async move {
        HttpClient::new()
            .get(addr, "example.com", "/?delay=30s", &[])
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    echo.shutdown().await;

    assert!(
        TcpStream::connect(addr).await.is_err(),
        "port still accepts after shutdown"
    );
    let slow = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .context("in-flight request was not aborted")??;
    assert!(slow.is_err(), "in-flight request should fail, got {slow:?}");
    Ok(())
}

#[tokio::test]
async fn drop_closes_the_port() -> anyhow::Result<()> {
    let echo = start_echo(EchoMode::Http).await?;
    let addr = echo.addr();
    drop(echo);
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(addr).await.is_ok() {
        ensure!(
            Instant::now() < deadline,
            "port still accepts 2 s after drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn reserved_closed_port_refuses_connections() {
    let closed = reserve_closed_port();
    let addr = closed.addr();
    assert!(addr.ip().is_loopback());
    assert!(TcpStream::connect(addr).await.is_err());
    // Held: nothing else can listen there while it lives.
    assert!(std::net::TcpListener::bind(addr).is_err());
}
