//! TLS at the edge: a changed certificate Secret takes effect for new handshakes while open
//! connections keep theirs, and ClientTrafficPolicy `tls.minVersion` refuses older clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use testkit::pki::Certificate;
use testkit::{EchoConfig, EchoServer, GatewayProcess, TempConfigDir, free_port};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::fixture::eventually;
use crate::tls::connect;

fn gateway_yaml(port: u16, backend: SocketAddr, policy: &str) -> String {
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
  - {{name: https, protocol: HTTPS, port: {port}, tls: {{certificateRefs: [{{name: cert}}]}}}}
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
{policy}"#,
        backend.ip(),
        backend.port(),
    )
}

struct Edge {
    _echo: EchoServer,
    dir: TempConfigDir,
    _gateway: GatewayProcess,
    addr: SocketAddr,
}

async fn start(certificate: &Certificate, policy: &str) -> anyhow::Result<Edge> {
    let echo = EchoServer::start(EchoConfig::new("echo-tls", "web")).await?;
    let port = free_port();
    let dir = TempConfigDir::new()?;
    dir.write("gateway.yaml", &gateway_yaml(port, echo.addr(), policy))?;
    dir.write("secret.yaml", &certificate.secret_yaml("web", "cert"))?;
    let gateway = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        dir.path(),
        &[],
    )
    .await?;
    Ok(Edge {
        _echo: echo,
        dir,
        _gateway: gateway,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_serves_new_handshakes_and_open_connections_stay()
-> anyhow::Result<()> {
    let old = Certificate::self_signed(&["edge.example.com"])?;
    let new = Certificate::self_signed(&["edge.example.com"])?;
    let edge = start(&old, "").await?;

    // A keep-alive HTTP/1.1 connection made with the old certificate.
    let stream = connect(
        edge.addr,
        "edge.example.com",
        old.certificate_der(),
        &[b"http/1.1"],
    )
    .await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let get = || {
        Request::get("/rotate")
            .header("host", "edge.example.com")
            .body(Empty::<Bytes>::new())
    };
    let response = sender.send_request(get()?).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "before rotation: {}",
        response.status()
    );
    response.into_body().collect().await?;

    edge.dir
        .write("secret.yaml", &new.secret_yaml("web", "cert"))?;
    // New handshakes get the new certificate (a client trusting only it connects)...
    eventually(Duration::from_secs(10), async || {
        connect(
            edge.addr,
            "edge.example.com",
            new.certificate_der(),
            &[b"http/1.1"],
        )
        .await?;
        Ok(())
    })
    .await?;
    // ... and no longer the old one.
    ensure!(
        connect(
            edge.addr,
            "edge.example.com",
            old.certificate_der(),
            &[b"http/1.1"]
        )
        .await
        .is_err(),
        "a new handshake still got the old certificate"
    );
    // The connection opened before the rotation still serves requests.
    let response = sender.send_request(get()?).await?;
    ensure!(
        response.status() == StatusCode::OK,
        "the old connection after rotation: {}",
        response.status()
    );
    Ok(())
}

/// A TLS 1.2-only client.
async fn connect_tls12(addr: SocketAddr, trusted: &Certificate) -> anyhow::Result<()> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.certificate_der().clone())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("edge.example.com")?, tcp)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_min_version_refuses_older_clients() -> anyhow::Result<()> {
    let certificate = Certificate::self_signed(&["edge.example.com"])?;
    let policy = r#"---
apiVersion: portcullis.dev/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: modern, namespace: web}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: https}]
  tls: {minVersion: "1.3", alpnProtocols: [http/1.1]}
"#;
    let edge = start(&certificate, policy).await?;
    ensure!(
        connect_tls12(edge.addr, &certificate).await.is_err(),
        "a TLS 1.2 client was accepted"
    );
    let stream = connect(
        edge.addr,
        "edge.example.com",
        certificate.certificate_der(),
        &[b"h2", b"http/1.1"],
    )
    .await?;
    let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    ensure!(
        alpn.as_deref() == Some(&b"http/1.1"[..]),
        "ALPN chose {alpn:?} though the policy offers only http/1.1"
    );
    Ok(())
}
