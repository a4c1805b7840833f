//! TCP and UDP listeners, TCPRoute and UDPRoute end to end, over real sockets:
//!
//! - a real `redis-server` behind a TCPRoute, 10,000 commands through the gateway with the
//!   `redis` client, and the connection's bytes in the metrics once it closes;
//! - an 80/20 weighted TCPRoute over 1,000 connections (within ±5 points);
//! - a backend killed mid-stream: that connection closes, and with outlier detection new
//!   connections go to the healthy endpoint;
//! - the PROXY protocol header (v1 and v2) a backend asks for, naming the client's address;
//! - the TCP idle timeout of a ClientTrafficPolicy;
//! - a UDPRoute: echoes per flow, two clients as two flows, oversized datagrams dropped and
//!   counted, a TCP and a UDP listener on one port number.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use testkit::{GatewayProcess, RedisServer, TempConfigDir, free_port};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// How long any single step may take before the test fails instead of hanging.
const STEP: Duration = Duration::from_secs(5);

const GATEWAY_CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: portcullis}\nspec: {controllerName: portcullis.dev/gateway-controller}\n---\n";

/// A Gateway `l4/gw` on 127.0.0.1 with these listeners (YAML list items).
fn gateway(listeners: &str) -> String {
    format!(
        "{GATEWAY_CLASS}apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: l4}}\nspec:\n  gatewayClassName: portcullis\n  addresses: [{{value: 127.0.0.1}}]\n  listeners:\n{listeners}\n---\n"
    )
}

/// A `Backend` named `name` with these endpoints.
fn backend(name: &str, endpoints: &[SocketAddr]) -> String {
    let list: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ip: \"{}\", port: {}}}", a.ip(), a.port()))
        .collect();
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {{name: {name}, namespace: l4}}\nspec:\n  endpoints: [{}]\n---\n",
        list.join(", ")
    )
}

/// A route of `kind` on listener `section` to these (Backend name, weight) pairs.
fn route(kind: &str, name: &str, section: &str, backends: &[(&str, u32)]) -> String {
    let refs: Vec<String> = backends
        .iter()
        .map(|(backend, weight)| {
            format!("{{group: portcullis.dev, kind: Backend, name: {backend}, weight: {weight}}}")
        })
        .collect();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: l4}}\nspec:\n  parentRefs: [{{name: gw, sectionName: {section}}}]\n  rules: [{{backendRefs: [{}]}}]\n---\n",
        refs.join(", ")
    )
}

/// Starts the gateway on `config` and checks every object is healthy.
async fn start(config: &str) -> anyhow::Result<(GatewayProcess, TempConfigDir)> {
    let dir = TempConfigDir::new()?;
    dir.write("config.yaml", config)?;
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
    Ok((gateway, dir))
}

/// A TCP backend that greets each connection with `name` and echoes lines; [`Greeter::kill`]
/// stops listening and closes every open connection.
struct Greeter {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Greeter {
    async fn start(name: &'static str) -> anyhow::Result<Greeter> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let tracked = Arc::clone(&connections);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let served = tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    if write
                        .write_all(format!("{name}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let mut lines = BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let echoed = format!("{name} {line}\n");
                        if write.write_all(echoed.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
                tracked.lock().expect("connections").push(served);
            }
        });
        Ok(Greeter {
            addr,
            accept,
            connections,
        })
    }

    fn kill(&self) {
        self.accept.abort();
        for connection in self.connections.lock().expect("connections").drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects through the gateway and returns the backend's greeting and the open connection.
async fn greeting(addr: SocketAddr) -> anyhow::Result<(String, BufReader<TcpStream>)> {
    let stream = tokio::time::timeout(STEP, TcpStream::connect(addr)).await??;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let read = tokio::time::timeout(STEP, reader.read_line(&mut line)).await??;
    anyhow::ensure!(read > 0, "closed before the greeting");
    Ok((line.trim_end().to_owned(), reader))
}

/// The value of the metric series named exactly `series` (name and labels), 0 when absent.
async fn metric(gateway: &GatewayProcess, series: &str) -> anyhow::Result<f64> {
    let (_, text) = gateway.get_admin("/metrics").await?;
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0))
}

/// Polls `metric(series)` until `check` holds (or fails with the last value).
async fn wait_for_metric(
    gateway: &GatewayProcess,
    series: &str,
    check: impl Fn(f64) -> bool,
) -> anyhow::Result<f64> {
    let deadline = Instant::now() + STEP;
    loop {
        let value = metric(gateway, series).await?;
        if check(value) {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "{series} stayed at {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn redis_through_a_tcp_route_runs_ten_thousand_commands() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    let port = free_port();
    let redis_addr = SocketAddr::from(([127, 0, 0, 1], redis.port()));
    let config = format!(
        "{}{}{}",
        gateway(&format!("  - {{name: redis, port: {port}, protocol: TCP}}")),
        backend("redis", &[redis_addr]),
        route("TCPRoute", "redis", "redis", &[("redis", 1)]),
    );
    let (gateway, _dir) = start(&config).await?;
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    for i in 0..5_000u32 {
        let key = format!("key-{i}");
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query_async(&mut connection)
            .await?;
        let value: u32 = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        assert_eq!(value, i);
    }
    let size: u32 = redis::cmd("DBSIZE").query_async(&mut connection).await?;
    assert_eq!(size, 5_000);
    drop(connection);
    drop(client);
    let route = "route=\"TCPRoute l4/redis rules[0]\"";
    wait_for_metric(
        &gateway,
        &format!("portcullis_tcp_connections_total{{{route},result=\"forwarded\"}}"),
        |v| v >= 1.0,
    )
    .await?;
    let sent = metric(
        &gateway,
        &format!("portcullis_stream_bytes_total{{{route},direction=\"client_to_backend\"}}"),
    )
    .await?;
    assert!(sent > 100_000.0, "client → backend bytes: {sent}");
    Ok(())
}

#[tokio::test]
async fn weighted_tcp_route_splits_connections_eighty_twenty() -> anyhow::Result<()> {
    let (heavy, light) = (
        Greeter::start("heavy").await?,
        Greeter::start("light").await?,
    );
    let port = free_port();
    let config = format!(
        "{}{}{}{}",
        gateway(&format!("  - {{name: tcp, port: {port}, protocol: TCP}}")),
        backend("heavy", &[heavy.addr]),
        backend("light", &[light.addr]),
        route("TCPRoute", "split", "tcp", &[("heavy", 80), ("light", 20)]),
    );
    let (_gateway, _dir) = start(&config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut heavy_count = 0;
    for _ in 0..1_000 {
        let (name, _) = greeting(addr).await?;
        match name.as_str() {
            "heavy" => heavy_count += 1,
            "light" => {}
            other => anyhow::bail!("unexpected backend {other}"),
        }
    }
    assert!(
        (750..=850).contains(&heavy_count),
        "80/20 split gave {heavy_count}/1000 to the 80 side"
    );
    Ok(())
}

#[tokio::test]
async fn a_backend_killed_mid_stream_closes_its_connection_and_new_ones_go_to_the_healthy_one()
-> anyhow::Result<()> {
    let (first, second) = (
        Greeter::start("first").await?,
        Greeter::start("second").await?,
    );
    let port = free_port();
    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: eject, namespace: l4}\nspec:\n  targetRefs: [{group: portcullis.dev, kind: Backend, name: pair}]\n  loadBalancer: {type: RoundRobin}\n  healthCheck: {passive: {consecutiveGatewayErrors: 1, baseEjectionTime: 30s, maxEjectionPercent: 50}}\n---\n";
    let config = format!(
        "{}{}{}{policy}",
        gateway(&format!("  - {{name: tcp, port: {port}, protocol: TCP}}")),
        backend("pair", &[first.addr, second.addr]),
        route("TCPRoute", "pair", "tcp", &[("pair", 1)]),
    );
    let (_gateway, _dir) = start(&config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // A live stream on the first backend.
    let (mut name, mut stream) = greeting(addr).await?;
    let mut spare = Vec::new();
    while name != "first" {
        spare.push(stream);
        (name, stream) = greeting(addr).await?;
        anyhow::ensure!(
            spare.len() < 10,
            "round robin never chose the first backend"
        );
    }
    stream.get_mut().write_all(b"hello\n").await?;
    let mut line = String::new();
    tokio::time::timeout(STEP, stream.read_line(&mut line)).await??;
    assert_eq!(line, "first hello\n");
    first.kill();
    // That connection is closed.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(STEP, stream.read_to_end(&mut rest)).await?;
    assert!(read.is_err() || rest.is_empty(), "still open: {rest:?}");
    // New connections: at most one attempt meets the dead endpoint (it is ejected after one
    // gateway error), then every connection reaches the second backend.
    let mut failures = 0;
    for _ in 0..20 {
        match greeting(addr).await {
            Ok((name, _)) => assert_eq!(name, "second"),
            Err(_) => failures += 1,
        }
    }
    assert!(failures <= 1, "{failures} of 20 new connections failed");
    Ok(())
}

/// A backend that reads a PROXY protocol header and answers with the client address it names.
async fn proxy_protocol_backend() -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 16];
                if stream.read_exact(&mut head[..5]).await.is_err() {
                    return;
                }
                let client = if &head[..5] == b"PROXY" {
                    // v1: `PROXY TCP4 src dst sport dport\r\n`.
                    let mut line = b"PROXY".to_vec();
                    let mut byte = [0u8; 1];
                    while !line.ends_with(b"\r\n") && line.len() < 108 {
                        if stream.read_exact(&mut byte).await.is_err() {
                            return;
                        }
                        line.push(byte[0]);
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    let parts: Vec<&str> = text.split_whitespace().collect();
                    format!("v1 {}:{}", parts[2], parts[4])
                } else {
                    // v2: 12-byte signature, version/command, family, length, addresses.
                    if stream.read_exact(&mut head[5..]).await.is_err() {
                        return;
                    }
                    let length = usize::from(u16::from_be_bytes([head[14], head[15]]));
                    let mut addresses = vec![0u8; length];
                    if stream.read_exact(&mut addresses).await.is_err() || length < 12 {
                        return;
                    }
                    let ip = std::net::Ipv4Addr::new(
                        addresses[0],
                        addresses[1],
                        addresses[2],
                        addresses[3],
                    );
                    let port = u16::from_be_bytes([addresses[8], addresses[9]]);
                    format!("v2 {ip}:{port}")
                };
                let _ = stream.write_all(format!("{client}\n").as_bytes()).await;
            });
        }
    });
    Ok((addr, task))
}

#[tokio::test]
async fn backends_that_ask_for_it_get_the_proxy_protocol_header() -> anyhow::Result<()> {
    let (backend_addr, _task) = proxy_protocol_backend().await?;
    let (v1_port, v2_port) = (free_port(), free_port());
    let policy = |name: &str, version: &str| {
        format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {{name: {name}, namespace: l4}}\nspec:\n  targetRefs: [{{group: portcullis.dev, kind: Backend, name: {name}}}]\n  proxyProtocol: {{version: {version}}}\n---\n"
        )
    };
    let config = format!(
        "{}{}{}{}{}{}{}",
        gateway(&format!(
            "  - {{name: v1, port: {v1_port}, protocol: TCP}}\n  - {{name: v2, port: {v2_port}, protocol: TCP}}"
        )),
        backend("one", &[backend_addr]),
        backend("two", &[backend_addr]),
        policy("one", "V1"),
        policy("two", "V2"),
        route("TCPRoute", "one", "v1", &[("one", 1)]),
        route("TCPRoute", "two", "v2", &[("two", 1)]),
    );
    let (_gateway, _dir) = start(&config).await?;
    for (port, version) in [(v1_port, "v1"), (v2_port, "v2")] {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let client = stream.local_addr()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        tokio::time::timeout(STEP, reader.read_line(&mut line)).await??;
        assert_eq!(line.trim_end(), format!("{version} {client}"));
    }
    Ok(())
}

#[tokio::test]
async fn quiet_tcp_connections_close_after_the_idle_timeout() -> anyhow::Result<()> {
    let echo = Greeter::start("echo").await?;
    let port = free_port();
    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: idle, namespace: l4}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]\n  timeout: {tcp: {idleTimeout: 400ms}}\n---\n";
    let config = format!(
        "{}{}{}{policy}",
        gateway(&format!("  - {{name: tcp, port: {port}, protocol: TCP}}")),
        backend("echo", &[echo.addr]),
        route("TCPRoute", "echo", "tcp", &[("echo", 1)]),
    );
    let (gateway, _dir) = start(&config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (_, mut stream) = greeting(addr).await?;
    // Busy for twice the idle timeout: still open.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.get_mut().write_all(b"tick\n").await?;
        let mut line = String::new();
        tokio::time::timeout(STEP, stream.read_line(&mut line)).await??;
        assert_eq!(line, "echo tick\n");
    }
    // Quiet from the last echo on: closed after the timeout (and within a quarter more, plus
    // slack).
    let quiet = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut rest)).await??;
    assert!(
        quiet.elapsed() >= Duration::from_millis(350),
        "{:?}",
        quiet.elapsed()
    );
    wait_for_metric(
        &gateway,
        "portcullis_tcp_connections_total{route=\"TCPRoute l4/echo rules[0]\",result=\"idle_timeout\"}",
        |v| v >= 1.0,
    )
    .await?;
    Ok(())
}

/// A UDP echo server answering `name payload` to each datagram.
async fn udp_echo(name: &'static str) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = socket.local_addr()?;
    let task = tokio::spawn(async move {
        let mut buffer = vec![0u8; 65_536];
        while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
            let mut answer = format!("{name} ").into_bytes();
            answer.extend_from_slice(&buffer[..length]);
            let _ = socket.send_to(&answer, peer).await;
        }
    });
    Ok((addr, task))
}

/// Sends `payload` from `socket` to `to` and returns the answer, if one comes within 500 ms.
async fn exchange(socket: &UdpSocket, to: SocketAddr, payload: &[u8]) -> Option<Vec<u8>> {
    socket.send_to(payload, to).await.ok()?;
    let mut buffer = vec![0u8; 65_536];
    let received = tokio::time::timeout(Duration::from_millis(500), socket.recv_from(&mut buffer));
    let (length, _) = received.await.ok()?.ok()?;
    buffer.truncate(length);
    Some(buffer)
}

#[tokio::test]
async fn udp_route_forwards_flows_and_drops_oversized_datagrams() -> anyhow::Result<()> {
    let (echo_addr, _echo) = udp_echo("udp").await?;
    let tcp = Greeter::start("tcp").await?;
    let port = free_port();
    let policy = "apiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {name: udp, namespace: l4}\nspec:\n  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: dns}]\n  udp: {maxDatagramBytes: 1000}\n---\n";
    // A TCP and a UDP listener on one port number.
    let config = format!(
        "{}{}{}{}{}{policy}",
        gateway(&format!(
            "  - {{name: dns, port: {port}, protocol: UDP}}\n  - {{name: tcp, port: {port}, protocol: TCP}}"
        )),
        backend("echo", &[echo_addr]),
        backend("tcp", &[tcp.addr]),
        route("UDPRoute", "echo", "dns", &[("echo", 1)]),
        route("TCPRoute", "tcp", "tcp", &[("tcp", 1)]),
    );
    let (gateway, _dir) = start(&config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (alice, bob) = (
        UdpSocket::bind("127.0.0.1:0").await?,
        UdpSocket::bind("127.0.0.1:0").await?,
    );
    // Datagrams of both clients come back to each, their own.
    for round in 0..50 {
        for (socket, who) in [(&alice, "alice"), (&bob, "bob")] {
            let payload = format!("{who} {round}");
            let answer = exchange(socket, addr, payload.as_bytes()).await;
            assert_eq!(
                answer.as_deref(),
                Some(format!("udp {payload}").as_bytes()),
                "round {round}"
            );
        }
    }
    let route = "route=\"UDPRoute l4/echo rules[0]\"";
    assert_eq!(
        metric(&gateway, &format!("portcullis_udp_flows_active{{{route}}}")).await?,
        2.0
    );
    assert_eq!(
        metric(
            &gateway,
            &format!("portcullis_udp_datagrams_total{{{route},direction=\"client_to_backend\"}}")
        )
        .await?,
        100.0
    );
    // Too large for the listener's limit: dropped, counted, and the flow goes on.
    assert_eq!(exchange(&alice, addr, &[b'x'; 1001]).await, None);
    wait_for_metric(
        &gateway,
        &format!("portcullis_udp_datagrams_dropped_total{{{route},reason=\"too_large\"}}"),
        |v| v >= 1.0,
    )
    .await?;
    assert_eq!(
        exchange(&alice, addr, b"still here").await.as_deref(),
        Some(&b"udp still here"[..])
    );
    // The TCP listener on the same port number serves its own route.
    let (name, _) = greeting(addr).await?;
    assert_eq!(name, "tcp");
    Ok(())
}

/// A TLS backend (rustls, `certificate`) that greets each connection with the SNI it saw and
/// echoes lines.
async fn tls_backend(
    certificate: &testkit::pki::Certificate,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![certificate.certificate_der().clone()],
            certificate.key_der(),
        )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let sni = stream.get_ref().1.server_name().unwrap_or("-").to_owned();
                let (read, mut write) = tokio::io::split(stream);
                if write
                    .write_all(format!("tls {sni}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("tls {line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok((addr, task))
}

#[tokio::test]
async fn a_tcp_route_speaks_tls_to_a_backend_with_a_backend_tls_policy() -> anyhow::Result<()> {
    let ca = testkit::pki::CertificateAuthority::new("database CA")?;
    let leaf = ca.issue(&["db.internal"], &[])?;
    let (backend_addr, _backend) = tls_backend(&leaf).await?;
    let port = free_port();
    let config = format!(
        "{}apiVersion: v1\nkind: Service\nmetadata: {{name: db, namespace: l4}}\nspec: {{ports: [{{name: tls, port: 5432, targetPort: {backend_port}}}]}}\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: db-1, namespace: l4, labels: {{kubernetes.io/service-name: db}}}}\naddressType: IPv4\nports: [{{name: tls, port: {backend_port}}}]\nendpoints: [{{addresses: [\"127.0.0.1\"]}}]\n---\n{}---\napiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: db, namespace: l4}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: db}}]\n  validation: {{caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: db-ca}}], hostname: db.internal}}\n---\napiVersion: gateway.networking.k8s.io/v1\nkind: TCPRoute\nmetadata: {{name: db, namespace: l4}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules: [{{backendRefs: [{{name: db, port: 5432}}]}}]\n",
        gateway(&format!("  - {{name: tcp, port: {port}, protocol: TCP}}")),
        testkit::pki::ca_config_map_yaml("l4", "db-ca", &ca.certificate_pem()),
        backend_port = backend_addr.port(),
    );
    let (_gateway, _dir) = start(&config).await?;
    // The client speaks plain text; the gateway speaks TLS (SNI db.internal) to the backend.
    let (greeting, mut stream) = greeting(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    assert_eq!(greeting, "tls db.internal");
    stream.get_mut().write_all(b"select 1\n").await?;
    let mut line = String::new();
    tokio::time::timeout(STEP, stream.read_line(&mut line)).await??;
    assert_eq!(line, "tls select 1\n");
    Ok(())
}
