//! HTTPS listeners end to end: TLS termination with certificates from Secrets, selection by
//! SNI, HTTP/1.1 and HTTP/2 by ALPN, `X-Forwarded-Proto: https`, and 421 for a request whose
//! host belongs to another listener than the connection's SNI.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use testkit::pki::Certificate;
use testkit::{EchoConfig, EchoServer, GatewayProcess, TempConfigDir, free_port};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn config(port: u16, backend: SocketAddr, a: &Certificate, b: &Certificate) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: portcullis}}
spec: {{controllerName: portcullis.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: web}}
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - name: a
    protocol: HTTPS
    port: {port}
    hostname: a.example.com
    tls: {{certificateRefs: [{{name: cert-a}}]}}
  - name: b
    protocol: HTTPS
    port: {port}
    hostname: "*.b.example.com"
    tls: {{certificateRefs: [{{name: cert-b}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: web}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{group: portcullis.dev, kind: Backend, name: echo}}]}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Backend
metadata: {{name: echo, namespace: web}}
spec:
  endpoints: [{{ip: "{}", port: {}}}]
---
{}---
{}"#,
        backend.ip(),
        backend.port(),
        a.secret_yaml("web", "cert-a"),
        b.secret_yaml("web", "cert-b")
    )
}

/// Opens a TLS connection with `sni`, trusting only `trusted`, offering `alpn`.
pub(crate) async fn connect(
    addr: SocketAddr,
    sni: &str,
    trusted: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned())?;
    Ok(TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

pub(crate) async fn get_h1(
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    host: &str,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/tls")
        .header("host", host)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    Ok((status, response.into_body().collect().await?.to_bytes()))
}

async fn start() -> anyhow::Result<(
    GatewayProcess,
    SocketAddr,
    Certificate,
    Certificate,
    EchoServer,
    TempConfigDir,
)> {
    let echo = EchoServer::start(EchoConfig::new("echo-tls", "web")).await?;
    let a = Certificate::self_signed(&["a.example.com"])?;
    let b = Certificate::self_signed(&["*.b.example.com"])?;
    let port = free_port();
    let dir = TempConfigDir::new()?;
    dir.write("config.yaml", &config(port, echo.addr(), &a, &b))?;
    let gateway = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        dir.path(),
        &[],
    )
    .await?;
    Ok((
        gateway,
        SocketAddr::from(([127, 0, 0, 1], port)),
        a,
        b,
        echo,
        dir,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_terminates_tls_and_selects_the_certificate_by_sni() -> anyhow::Result<()> {
    let (gateway, addr, a, b, _echo, _dir) = start().await?;
    let (_, status_json) = gateway.get_admin("/status").await?;
    anyhow::ensure!(
        status_json.contains("\"healthy\":true"),
        "status: {status_json}"
    );

    // Each SNI gets its own listener's certificate: trusting only that one must succeed.
    let stream = connect(addr, "a.example.com", a.certificate_der(), &[b"http/1.1"]).await?;
    let (status, body) = get_h1(stream, "a.example.com").await?;
    anyhow::ensure!(status == StatusCode::OK, "a: {status}");
    let echo: testkit::EchoReply = serde_json::from_slice(&body)?;
    anyhow::ensure!(
        echo.header("x-forwarded-proto").as_deref() == Some("https"),
        "{:?}",
        echo.headers
    );

    let stream = connect(addr, "x.b.example.com", b.certificate_der(), &[b"http/1.1"]).await?;
    let (status, _) = get_h1(stream, "x.b.example.com").await?;
    anyhow::ensure!(status == StatusCode::OK, "b: {status}");

    // The wrong certificate for a name fails the handshake (the client trusts only a's).
    anyhow::ensure!(
        connect(addr, "x.b.example.com", a.certificate_der(), &[])
            .await
            .is_err(),
        "b served a's cert"
    );
    // No listener for the name: no certificate, no handshake.
    anyhow::ensure!(
        connect(addr, "other.example.org", a.certificate_der(), &[])
            .await
            .is_err(),
        "unknown SNI accepted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_over_tls_and_misdirected_requests() -> anyhow::Result<()> {
    let (_gateway, addr, a, _b, _echo, _dir) = start().await?;
    let stream = connect(
        addr,
        "a.example.com",
        a.certificate_der(),
        &[b"h2", b"http/1.1"],
    )
    .await?;
    anyhow::ensure!(
        stream.get_ref().1.alpn_protocol() == Some(b"h2"),
        "ALPN did not pick h2"
    );
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = |host: &str| {
        Request::get(format!("https://{host}/tls"))
            .version(Version::HTTP_2)
            .body(Empty::<Bytes>::new())
            .context("request")
    };
    let response = sender.send_request(request("a.example.com")?).await?;
    anyhow::ensure!(
        response.status() == StatusCode::OK,
        "h2: {}",
        response.status()
    );
    // Same connection (SNI a.example.com), host of the other listener: 421 (GEP-3567).
    let response = sender.send_request(request("x.b.example.com")?).await?;
    anyhow::ensure!(
        response.status() == StatusCode::MISDIRECTED_REQUEST,
        "coalesced: {}",
        response.status()
    );
    Ok(())
}
