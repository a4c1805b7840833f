//! TLS listeners and TLSRoute end to end, over real sockets:
//!
//! - Passthrough: the client's TLS session is with the backend (it trusts only the backend's
//!   certificate, and the gateway has none), routed by SNI, one backend per TLSRoute hostname.
//! - An SNI no route serves is closed; garbage (plain HTTP, a truncated ClientHello) is closed
//!   and the next connection still works.
//! - Terminate: the gateway completes the handshake with its own certificate and forwards the
//!   decrypted bytes to a plain TCP backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use testkit::pki::Certificate;
use testkit::{GatewayProcess, TempConfigDir, free_port};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long any single step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(5);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A backend that terminates TLS itself with `certificate`, says which backend it is and which
/// SNI it saw, then echoes lines.
async fn tls_backend(
    name: &'static str,
    certificate: &Certificate,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.certificate_der().clone()],
            certificate.key_der(),
        )?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = stream.get_ref().1.server_name().unwrap_or("-").to_owned();
                let greeting = format!("backend {name} sni={sni}\n");
                if stream.write_all(greeting.as_bytes()).await.is_ok() {
                    echo_lines(stream).await;
                }
            });
        }
    });
    Ok((addr, task))
}

/// A plain TCP backend that says which backend it is, then echoes lines.
async fn tcp_backend(name: &'static str) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let greeting = format!("plain {name}\n");
                if stream.write_all(greeting.as_bytes()).await.is_ok() {
                    echo_lines(stream).await;
                }
            });
        }
    });
    Ok((addr, task))
}

async fn echo_lines<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if write
            .write_all(format!("echo {line}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

fn backend(name: &str, addr: SocketAddr) -> String {
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {{name: {name}, namespace: tls}}\nspec:\n  endpoints: [{{ip: \"{}\", port: {}}}]\n---\n",
        addr.ip(),
        addr.port()
    )
}

fn tls_route(name: &str, listener: &str, hostname: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {{name: {name}, namespace: tls}}\nspec:\n  parentRefs: [{{name: gw, sectionName: {listener}}}]\n  hostnames: [\"{hostname}\"]\n  rules: [{{backendRefs: [{{group: portcullis.dev, kind: Backend, name: {backend}}}]}}]\n---\n"
    )
}

/// The running gateway and everything it talks to.
struct Setup {
    gateway: GatewayProcess,
    /// The Passthrough listener.
    passthrough: SocketAddr,
    /// The Terminate listener (hostname `t.example.com`).
    terminate: SocketAddr,
    /// Certificates of backends `a` and `b` (passthrough) and of the gateway (terminate).
    a: Certificate,
    b: Certificate,
    gateway_certificate: Certificate,
    _backends: Vec<JoinHandle<()>>,
    _dir: TempConfigDir,
}

async fn start() -> anyhow::Result<Setup> {
    let a = Certificate::self_signed(&["a.example.com"])?;
    let b = Certificate::self_signed(&["b.example.com", "*.b.example.com"])?;
    let gateway_certificate = Certificate::self_signed(&["t.example.com"])?;
    let (a_addr, a_task) = tls_backend("a", &a).await?;
    let (b_addr, b_task) = tls_backend("b", &b).await?;
    let (plain_addr, plain_task) = tcp_backend("t").await?;
    let (pass_port, term_port) = (free_port(), free_port());
    let config = format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: portcullis}}
spec: {{controllerName: portcullis.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: tls}}
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: pass, protocol: TLS, port: {pass_port}, tls: {{mode: Passthrough}}}}
  - name: term
    protocol: TLS
    port: {term_port}
    hostname: t.example.com
    tls: {{mode: Terminate, certificateRefs: [{{name: gateway-cert}}]}}
---
{}---
{}{}{}{}{}{}{}"#,
        gateway_certificate.secret_yaml("tls", "gateway-cert"),
        backend("a", a_addr),
        backend("b", b_addr),
        backend("plain", plain_addr),
        tls_route("a", "pass", "a.example.com", "a"),
        tls_route("b", "pass", "*.b.example.com", "b"),
        tls_route("b-apex", "pass", "b.example.com", "b"),
        tls_route("t", "term", "t.example.com", "plain"),
    );
    let dir = TempConfigDir::new()?;
    dir.write("config.yaml", &config)?;
    let gateway = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        dir.path(),
        &[],
    )
    .await?;
    let (_, status) = gateway.get_admin("/status").await?;
    anyhow::ensure!(
        !status.contains("\"healthy\":false"),
        "unhealthy objects: {status}"
    );
    Ok(Setup {
        gateway,
        passthrough: SocketAddr::from(([127, 0, 0, 1], pass_port)),
        terminate: SocketAddr::from(([127, 0, 0, 1], term_port)),
        a,
        b,
        gateway_certificate,
        _backends: vec![a_task, b_task, plain_task],
        _dir: dir,
    })
}

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Connects through the gateway with `sni`, trusting only `trusted`.
async fn connect(
    addr: SocketAddr,
    sni: &str,
    trusted: &CertificateDer<'static>,
) -> anyhow::Result<ClientStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned())?;
    let connecting = TlsConnector::from(Arc::new(config)).connect(name, tcp);
    Ok(tokio::time::timeout(STEP, connecting).await??)
}

/// Reads the backend's greeting, then checks one echoed line.
async fn greeting_and_echo(stream: ClientStream) -> anyhow::Result<String> {
    let (read, mut write) = tokio::io::split(stream);
    let mut lines = BufReader::new(read).lines();
    let greeting = tokio::time::timeout(STEP, lines.next_line())
        .await??
        .ok_or_else(|| anyhow::anyhow!("closed before the greeting"))?;
    write.write_all(b"ping\n").await?;
    let echoed = tokio::time::timeout(STEP, lines.next_line()).await??;
    anyhow::ensure!(echoed.as_deref() == Some("echo ping"), "echo: {echoed:?}");
    Ok(greeting)
}

/// Whether the gateway closes a connection on which `bytes` were sent, without answering.
async fn closed_after(addr: SocketAddr, bytes: &[u8]) -> anyhow::Result<bool> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(bytes).await?;
    let mut answer = Vec::new();
    // EOF or a reset both mean closed; a timeout means the gateway is still waiting.
    Ok(
        match tokio::time::timeout(STEP, stream.read_to_end(&mut answer)).await {
            Ok(Ok(_)) => answer.is_empty(),
            Ok(Err(_)) => true,
            Err(_) => false,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_routes_by_sni_and_leaves_tls_to_the_backend() -> anyhow::Result<()> {
    let setup = start().await?;
    // The client trusts only backend a's certificate: the handshake succeeding proves the
    // session is with the backend (the gateway has no certificate for this listener at all).
    let stream = connect(
        setup.passthrough,
        "a.example.com",
        setup.a.certificate_der(),
    )
    .await?;
    let peer = stream.get_ref().1.peer_certificates().unwrap_or_default();
    anyhow::ensure!(
        peer.first() == Some(setup.a.certificate_der()),
        "not a's certificate"
    );
    let greeting = greeting_and_echo(stream).await?;
    anyhow::ensure!(greeting == "backend a sni=a.example.com", "{greeting}");

    // Another TLSRoute hostname goes to another backend, with that backend's certificate.
    let stream = connect(
        setup.passthrough,
        "b.example.com",
        setup.b.certificate_der(),
    )
    .await?;
    let greeting = greeting_and_echo(stream).await?;
    anyhow::ensure!(greeting == "backend b sni=b.example.com", "{greeting}");

    // A wildcard route hostname matches any one-or-more-label name under it.
    let stream = connect(
        setup.passthrough,
        "x.b.example.com",
        setup.b.certificate_der(),
    )
    .await?;
    let greeting = greeting_and_echo(stream).await?;
    anyhow::ensure!(greeting == "backend b sni=x.b.example.com", "{greeting}");

    // A's certificate offered for b's name fails too: no one in the middle re-signs.
    anyhow::ensure!(
        connect(
            setup.passthrough,
            "b.example.com",
            setup.a.certificate_der()
        )
        .await
        .is_err(),
        "b's backend answered with a's certificate?"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sni_and_garbage_are_closed_and_the_gateway_keeps_serving() -> anyhow::Result<()> {
    let setup = start().await?;
    anyhow::ensure!(
        connect(
            setup.passthrough,
            "unknown.example.org",
            setup.a.certificate_der()
        )
        .await
        .is_err(),
        "an SNI without a TLSRoute must not reach any backend"
    );
    anyhow::ensure!(
        closed_after(
            setup.passthrough,
            b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n"
        )
        .await?,
        "plain HTTP on a TLS port must be closed"
    );
    anyhow::ensure!(
        closed_after(setup.passthrough, &[0x16, 0x03, 0x01, 0x40, 0x01, 0xff]).await?,
        "an oversized record must be closed"
    );
    // A truncated ClientHello followed by the client giving up (half-close).
    let mut stream = TcpStream::connect(setup.passthrough).await?;
    stream
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await?;
    stream.shutdown().await?;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(STEP, stream.read_to_end(&mut rest)).await?;
    anyhow::ensure!(
        rest.is_empty(),
        "answered a truncated ClientHello: {rest:?}"
    );

    // Still serving.
    let stream = connect(
        setup.passthrough,
        "a.example.com",
        setup.a.certificate_der(),
    )
    .await?;
    let greeting = greeting_and_echo(stream).await?;
    anyhow::ensure!(greeting == "backend a sni=a.example.com", "{greeting}");

    let (_, metrics) = setup.gateway.get_admin("/metrics").await?;
    anyhow::ensure!(
        metrics.contains("portcullis_tls_connections_total{route=\"\",result=\"no_route\"}"),
        "no_route not counted:\n{metrics}"
    );
    anyhow::ensure!(
        metrics.contains("result=\"invalid_client_hello\""),
        "garbage not counted:\n{metrics}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_decrypts_and_forwards_to_a_tcp_backend() -> anyhow::Result<()> {
    let setup = start().await?;
    // The client trusts only the gateway's certificate: the gateway terminates.
    let stream = connect(
        setup.terminate,
        "t.example.com",
        setup.gateway_certificate.certificate_der(),
    )
    .await?;
    anyhow::ensure!(
        stream.get_ref().1.alpn_protocol().is_none(),
        "the gateway must not negotiate an application protocol for a TCP backend"
    );
    let greeting = greeting_and_echo(stream).await?;
    anyhow::ensure!(greeting == "plain t", "{greeting}");

    // The listener only serves its hostname.
    anyhow::ensure!(
        connect(
            setup.terminate,
            "u.example.com",
            setup.gateway_certificate.certificate_der()
        )
        .await
        .is_err(),
        "another hostname on the Terminate listener"
    );
    Ok(())
}
