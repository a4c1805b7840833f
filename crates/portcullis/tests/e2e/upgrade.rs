//! WebSocket-style upgrades end to end over raw sockets: the client's `Upgrade` request reaches
//! the backend with its upgrade headers, the backend's 101 reaches the client, and bytes then
//! flow both ways through the gateway.

use std::net::SocketAddr;
use std::time::Duration;

use testkit::{GatewayProcess, TempConfigDir, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Reads one message head, byte by byte (nothing after it is consumed).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// A gateway on a free port whose one route goes to a `Backend` at `backend` speaking
/// `app_protocol`: its port, process and config directory.
async fn gateway_to(
    backend: SocketAddr,
    app_protocol: &str,
) -> anyhow::Result<(u16, GatewayProcess, TempConfigDir)> {
    let port = free_port();
    let dir = TempConfigDir::new()?;
    dir.write(
        "config.yaml",
        &format!(
            r#"apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: portcullis}}
spec: {{controllerName: portcullis.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw}}
spec:
  gatewayClassName: portcullis
  addresses: [{{value: 127.0.0.1}}]
  listeners: [{{name: http, protocol: HTTP, port: {port}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: route}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{group: portcullis.dev, kind: Backend, name: backend}}]}}]
---
apiVersion: portcullis.dev/v1alpha1
kind: Backend
metadata: {{name: backend}}
spec:
  appProtocol: {app_protocol}
  endpoints: [{{ip: "127.0.0.1", port: {}}}]
"#,
            backend.port()
        ),
    )?;
    let gateway = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        dir.path(),
        &[],
    )
    .await?;
    Ok((port, gateway, dir))
}

/// A backend that switches protocols on `Upgrade: websocket` and then echoes bytes upper-cased,
/// reporting the request head it saw.
pub(crate) async fn upgrading_backend()
-> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Receiver<String>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(head) = read_head(&mut stream).await else {
            return;
        };
        let _ = seen_tx.send(head);
        let reply =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        let mut buffer = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            let upper = buffer[..n].to_ascii_uppercase();
            if stream.write_all(&upper).await.is_err() {
                break;
            }
        }
    });
    Ok((addr, seen_rx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_is_proxied_end_to_end() -> anyhow::Result<()> {
    let (backend, seen) = upgrading_backend().await?;
    let (port, _gateway, _dir) = gateway_to(backend, "kubernetes.io/ws").await?;

    let mut client = TcpStream::connect(("127.0.0.1", port)).await?;
    client
        .write_all(b"GET /chat HTTP/1.1\r\nHost: chat.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .await?;
    let head = read_head(&mut client).await?.to_ascii_lowercase();
    anyhow::ensure!(head.starts_with("http/1.1 101"), "client got: {head}");
    anyhow::ensure!(head.contains("upgrade: websocket"), "client got: {head}");

    let backend_saw = tokio::time::timeout(Duration::from_secs(5), seen)
        .await??
        .to_ascii_lowercase();
    anyhow::ensure!(
        backend_saw.contains("upgrade: websocket"),
        "backend saw: {backend_saw}"
    );
    anyhow::ensure!(
        backend_saw.contains("connection: upgrade"),
        "backend saw: {backend_saw}"
    );
    anyhow::ensure!(
        backend_saw.contains("sec-websocket-key: dghlihnhbxbszsbub25jzq=="),
        "backend saw: {backend_saw}"
    );

    // Bytes flow both ways over the upgraded connection, several times.
    for message in ["hello", "second frame", "third"] {
        client.write_all(message.as_bytes()).await?;
        let mut reply = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut reply)).await??;
        anyhow::ensure!(
            reply == message.to_ascii_uppercase().as_bytes(),
            "echo: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(())
}

/// An `Upgrade: h2c` request (h2c smuggling) is never turned into a tunnel: the backend gets
/// an ordinary request without `Upgrade`, `HTTP2-Settings` or `Connection: upgrade`, and the
/// client its ordinary answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upgrade_requests_are_forwarded_as_plain_requests() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let backend = listener.local_addr()?;
    let (seen_tx, seen) = tokio::sync::oneshot::channel::<String>();
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let Ok(head) = read_head(&mut stream).await else {
            return;
        };
        let _ = seen_tx.send(head);
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nplain")
            .await;
    });
    let (port, _gateway, _dir) = gateway_to(backend, "http").await?;

    let mut client = TcpStream::connect(("127.0.0.1", port)).await?;
    client
        .write_all(b"GET /internal HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        .await?;
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer[..read]).to_ascii_lowercase();
    anyhow::ensure!(answer.starts_with("http/1.1 200"), "client got: {answer}");
    anyhow::ensure!(answer.ends_with("plain"), "client got: {answer}");
    let backend_saw = tokio::time::timeout(Duration::from_secs(5), seen)
        .await??
        .to_ascii_lowercase();
    for absent in ["upgrade", "http2-settings"] {
        anyhow::ensure!(
            !backend_saw.contains(absent),
            "backend saw {absent}: {backend_saw}"
        );
    }
    Ok(())
}

/// Opens an h2c connection to `gateway` and asks for a WebSocket at `uri` with an extended
/// CONNECT (RFC 8441); the response's upgrade is the tunnel.
pub(crate) async fn websocket_over_h2(
    gateway: SocketAddr,
    uri: &str,
) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
    use bytes::Bytes;
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let tcp = TcpStream::connect(gateway).await?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(http::Method::CONNECT)
        .uri(uri)
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())?;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    Ok(sender.send_request(request).await?)
}

/// WebSocket over HTTP/2 (RFC 8441): an extended CONNECT with `:protocol websocket` reaches an
/// HTTP/1.1 backend as an `Upgrade: websocket` request with a key of the gateway's own, the
/// client gets 200, and bytes flow both ways on the HTTP/2 stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_http2_extended_connect_reaches_an_http1_backend() -> anyhow::Result<()> {
    use hyper_util::rt::TokioIo;

    let (backend, seen) = upgrading_backend().await?;
    let (port, _gateway, _dir) = gateway_to(backend, "kubernetes.io/ws").await?;
    let gateway = SocketAddr::from(([127, 0, 0, 1], port));
    let mut response =
        websocket_over_h2(gateway, &format!("http://chat.example:{port}/chat")).await?;
    anyhow::ensure!(response.status() == 200, "client got {}", response.status());
    let backend_saw = tokio::time::timeout(Duration::from_secs(5), seen)
        .await??
        .to_ascii_lowercase();
    anyhow::ensure!(
        backend_saw.starts_with("get /chat http/1.1"),
        "backend saw: {backend_saw}"
    );
    for expected in [
        "upgrade: websocket",
        "connection: upgrade",
        "sec-websocket-key: ",
        "sec-websocket-version: 13",
    ] {
        anyhow::ensure!(
            backend_saw.contains(expected),
            "backend saw no {expected:?}: {backend_saw}"
        );
    }
    let upgraded = hyper::upgrade::on(&mut response).await?;
    let mut tunnel = TokioIo::new(upgraded);
    for message in ["over h2", "second"] {
        tunnel.write_all(message.as_bytes()).await?;
        let mut reply = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(5), tunnel.read_exact(&mut reply)).await??;
        anyhow::ensure!(
            reply == message.to_ascii_uppercase().as_bytes(),
            "echo: {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    Ok(())
}
