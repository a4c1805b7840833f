//! Upstream and client-certificate TLS end to end, with certificates from `testkit::pki`:
//!
//! - BackendTLSPolicy: the gateway re-encrypts to a TLS backend with the policy's hostname as
//!   SNI; a wrong CA, a hostname or subjectAltName mismatch make it refuse (503, saying why);
//!   subjectAltNames replace the hostname check; a policy whose CA reference is invalid
//!   answers 500 and the backend is never contacted.
//! - `Gateway.spec.tls.backend.clientCertificateRef`: a backend that requires a client
//!   certificate gets the Gateway's; another Gateway without one is refused.
//! - `Gateway.spec.tls.frontend`: an HTTPS listener requires a client certificate from the CA
//!   (`AllowValidOnly`) or accepts clients without one (`AllowInsecureFallback`, per port).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use testkit::pki::{Certificate, CertificateAuthority, ca_config_map_yaml};
use testkit::{EchoConfig, EchoServer, GatewayProcess, HttpClient, TempConfigDir, free_port};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::{TlsAcceptor, TlsConnector};

// --- Certificates ---

/// What the backend reports about a client certificate: a hash of its DER.
fn fingerprint(der: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    der.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

// --- A TLS backend that says what it saw ---

/// An HTTP/1.1-over-TLS server answering `sni=...`, `client-certificate=...`, `host=...` and
/// `path=...`, one per line. Counts the TCP connections it accepts.
struct TlsBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Drop for TlsBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsBackend {
    /// Serves `leaf`; with `client_ca`, requires a client certificate signed by it.
    async fn start(
        leaf: &Certificate,
        client_ca: Option<&CertificateAuthority>,
    ) -> anyhow::Result<TlsBackend> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.certificate_der())?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_single_cert(vec![leaf.certificate_der().clone()], leaf.key_der())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let (_, session) = stream.get_ref();
                    let sni = session.server_name().unwrap_or("none").to_owned();
                    let client = session
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map_or_else(|| "none".to_owned(), |c| fingerprint(c));
                    let service = service_fn(move |request: Request<Incoming>| {
                        let host = request
                            .headers()
                            .get(http::header::HOST)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let body = format!(
                            "sni={sni}\nclient-certificate={client}\nhost={host}\npath={}\n",
                            request.uri().path()
                        );
                        async move {
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::from(body),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(TlsBackend {
            addr,
            connections,
            task,
        })
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

// --- Manifests ---

const HEADER: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: portcullis}
spec: {controllerName: portcullis.dev/gateway-controller}
";

/// ConfigMap `web/<name>` holding `pem` as `ca.crt`, as the next document of a config file.
fn ca_config_map(name: &str, pem: &str) -> String {
    format!("---\n{}", ca_config_map_yaml("web", name, pem))
}

/// `kubernetes.io/tls` Secret `web/<name>`, as the next document of a config file.
fn tls_secret(name: &str, certificate: &Certificate) -> String {
    format!("---\n{}", certificate.secret_yaml("web", name))
}

/// A Service with one port `https` (443) whose only endpoint is `backend`.
fn service(name: &str, backend: SocketAddr) -> String {
    format!(
        "---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: web}}
spec: {{ports: [{{name: https, port: 443, targetPort: {port}}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: {name}-1, namespace: web, labels: {{kubernetes.io/service-name: {name}}}}}
addressType: IPv4
ports: [{{name: https, port: {port}}}]
endpoints: [{{addresses: [\"{ip}\"]}}]
",
        ip = backend.ip(),
        port = backend.port()
    )
}

fn policy(service: &str, validation: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {service}, namespace: web}}
spec:
  targetRefs: [{{group: \"\", kind: Service, name: {service}, sectionName: https}}]
  validation:
{validation}
"
    )
}

fn trusting(config_map: &str, hostname: &str) -> String {
    format!(
        "    caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: {config_map}}}]\n    hostname: {hostname}"
    )
}

/// An HTTP Gateway on 127.0.0.1:`port`, with an optional `spec.tls` block.
fn http_gateway(name: &str, port: u16, tls: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: web}}
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
{tls}  listeners:
  - {{name: http, protocol: HTTP, port: {port}}}
"
    )
}

/// An HTTPRoute on `gateways` sending `/<service>` to that Service's port 443, per service.
fn routes(gateways: &[&str], services: &[&str]) -> String {
    let parents: Vec<String> = gateways.iter().map(|g| format!("{{name: {g}}}")).collect();
    let rules: String = services
        .iter()
        .map(|s| {
            format!(
                "  - matches: [{{path: {{type: PathPrefix, value: /{s}}}}}]\n    backendRefs: [{{name: {s}, port: 443}}]\n"
            )
        })
        .collect();
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: web}}\nspec:\n  parentRefs: [{}]\n  rules:\n{rules}",
        parents.join(", ")
    )
}

async fn start_gateway(config: &str) -> anyhow::Result<(GatewayProcess, TempConfigDir)> {
    let dir = TempConfigDir::new()?;
    dir.write("config.yaml", config)?;
    let gateway = GatewayProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_portcullis")),
        dir.path(),
        &[],
    )
    .await?;
    Ok((gateway, dir))
}

fn line<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
}

// --- BackendTLSPolicy ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_tls_policy_reencrypts_and_verifies_the_backend() -> anyhow::Result<()> {
    let ca = CertificateAuthority::new("backend CA")?;
    let other_ca = CertificateAuthority::new("other CA")?;
    let leaf = ca.issue(&["abc.example.com"], &["spiffe://abc.example.com/backend"])?;
    let backend = TlsBackend::start(&leaf, None).await?;
    // A second backend, only behind the invalid policy: it must never see a connection.
    let untouched = TlsBackend::start(&leaf, None).await?;
    let port = free_port();
    let services = [
        "ok",
        "wrong-ca",
        "hostname-mismatch",
        "san-uri",
        "san-mismatch",
        "invalid-ref",
    ];
    let mut config = format!(
        "{HEADER}{}{}",
        http_gateway("gw", port, ""),
        routes(&["gw"], &services)
    );
    for name in services {
        let addr = if name == "invalid-ref" {
            untouched.addr
        } else {
            backend.addr
        };
        config.push_str(&service(name, addr));
    }
    config.push_str(&ca_config_map("backend-ca", &ca.certificate_pem()));
    config.push_str(&ca_config_map("other-ca", &other_ca.certificate_pem()));
    config.push_str(&policy("ok", &trusting("backend-ca", "abc.example.com")));
    config.push_str(&policy(
        "wrong-ca",
        &trusting("other-ca", "abc.example.com"),
    ));
    config.push_str(&policy(
        "hostname-mismatch",
        &trusting("backend-ca", "mismatch.example.com"),
    ));
    // With subjectAltNames the hostname is only the SNI: it matches nothing in the certificate.
    config.push_str(&policy(
        "san-uri",
        &format!(
            "{}\n    subjectAltNames: [{{type: URI, uri: \"spiffe://abc.example.com/backend\"}}]",
            trusting("backend-ca", "sni-only.example.com")
        ),
    ));
    config.push_str(&policy(
        "san-mismatch",
        &format!(
            "{}\n    subjectAltNames: [{{type: Hostname, hostname: other.example.com}}]",
            trusting("backend-ca", "abc.example.com")
        ),
    ));
    config.push_str(&policy(
        "invalid-ref",
        &trusting("missing", "abc.example.com"),
    ));
    let (gateway, _dir) = start_gateway(&config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let client = HttpClient::new();

    let ok = client.get(addr, "app.example.org", "/ok", &[]).await?;
    anyhow::ensure!(
        ok.status == StatusCode::OK,
        "/ok: {} {}",
        ok.status,
        ok.text()
    );
    let body = ok.text();
    anyhow::ensure!(line(&body, "sni") == Some("abc.example.com"), "{body}");
    anyhow::ensure!(line(&body, "host") == Some("app.example.org"), "{body}");
    anyhow::ensure!(line(&body, "client-certificate") == Some("none"), "{body}");
    // The pooled TLS connection is reused.
    let before = backend.connections();
    client.get(addr, "app.example.org", "/ok", &[]).await?;
    anyhow::ensure!(
        backend.connections() == before,
        "a second connection was opened"
    );

    let san = client.get(addr, "app.example.org", "/san-uri", &[]).await?;
    anyhow::ensure!(
        san.status == StatusCode::OK,
        "/san-uri: {} {}",
        san.status,
        san.text()
    );
    anyhow::ensure!(
        line(&san.text(), "sni") == Some("sni-only.example.com"),
        "{}",
        san.text()
    );

    for (path, why) in [
        ("/wrong-ca", "UnknownIssuer"),
        (
            "/hostname-mismatch",
            "not valid for name \"mismatch.example.com\"",
        ),
        (
            "/san-mismatch",
            "none of the wanted subjectAltNames: other.example.com",
        ),
    ] {
        let refused = client.get(addr, "app.example.org", path, &[]).await?;
        anyhow::ensure!(
            refused.status == StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {} {}",
            refused.status,
            refused.text()
        );
        let text = refused.text();
        anyhow::ensure!(
            text.contains("TLS handshake") && text.contains(why),
            "{path}: {text}"
        );
    }

    let invalid = client
        .get(addr, "app.example.org", "/invalid-ref", &[])
        .await?;
    anyhow::ensure!(
        invalid.status == StatusCode::INTERNAL_SERVER_ERROR,
        "/invalid-ref: {} {}",
        invalid.status,
        invalid.text()
    );
    anyhow::ensure!(
        invalid.text().contains("BackendTLSPolicy web/invalid-ref"),
        "{}",
        invalid.text()
    );
    anyhow::ensure!(untouched.connections() == 0, "the backend was contacted");

    // The policies' status says why, per Gateway (ancestor).
    let (_, status) = gateway.get_admin("/status").await?;
    anyhow::ensure!(
        status.contains("\"ancestors\"") && status.contains("NoValidCACertificate"),
        "{status}"
    );
    Ok(())
}

// --- The Gateway's client certificate ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_requiring_a_client_certificate_gets_the_gateways() -> anyhow::Result<()> {
    let ca = CertificateAuthority::new("backend CA")?;
    let client_ca = CertificateAuthority::new("gateway client CA")?;
    let leaf = ca.issue(&["abc.example.com"], &[])?;
    let gateway_certificate = client_ca.issue_client("gateway.example.com")?;
    let backend = TlsBackend::start(&leaf, Some(&client_ca)).await?;
    let (with_port, without_port) = (free_port(), free_port());
    let tls = "  tls: {backend: {clientCertificateRef: {name: gateway-client}}}\n";
    let config = format!(
        "{HEADER}{}{}{}{}{}{}{}",
        http_gateway("with-cert", with_port, tls),
        http_gateway("without-cert", without_port, ""),
        routes(&["with-cert", "without-cert"], &["mtls"]),
        service("mtls", backend.addr),
        ca_config_map("backend-ca", &ca.certificate_pem()),
        policy("mtls", &trusting("backend-ca", "abc.example.com")),
        tls_secret("gateway-client", &gateway_certificate),
    );
    let (gateway, _dir) = start_gateway(&config).await?;
    let (_, status) = gateway.get_admin("/status").await?;
    anyhow::ensure!(status.contains("\"healthy\":true"), "status: {status}");
    let client = HttpClient::new();

    let with = client
        .get(
            SocketAddr::from(([127, 0, 0, 1], with_port)),
            "h",
            "/mtls",
            &[],
        )
        .await?;
    anyhow::ensure!(
        with.status == StatusCode::OK,
        "{} {}",
        with.status,
        with.text()
    );
    anyhow::ensure!(
        line(&with.text(), "client-certificate")
            == Some(&fingerprint(gateway_certificate.certificate_der())),
        "{}",
        with.text()
    );

    // Same backend, same endpoint, through a Gateway without a client certificate: its
    // connections are its own (never the other Gateway's pooled ones), and refused.
    let without = client
        .get(
            SocketAddr::from(([127, 0, 0, 1], without_port)),
            "h",
            "/mtls",
            &[],
        )
        .await?;
    anyhow::ensure!(
        without.status == StatusCode::SERVICE_UNAVAILABLE,
        "{} {}",
        without.status,
        without.text()
    );
    Ok(())
}

// --- Frontend client certificate validation ---

/// Connects with TLS (SNI `host`, trusting `server_ca`), optionally presenting a client
/// certificate, and sends `GET /` over HTTP/1.1.
async fn https_get(
    addr: SocketAddr,
    host: &str,
    server_ca: &CertificateAuthority,
    client: Option<&Certificate>,
) -> anyhow::Result<(StatusCode, String)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.certificate_der())?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match client {
        Some(leaf) => {
            builder.with_client_auth_cert(vec![leaf.certificate_der().clone()], leaf.key_der())?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_owned())?, tcp)
        .await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get("/")
        .header("host", host)
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listeners_validate_client_certificates() -> anyhow::Result<()> {
    let server_ca = CertificateAuthority::new("server CA")?;
    let client_ca = CertificateAuthority::new("client CA")?;
    let stranger_ca = CertificateAuthority::new("stranger CA")?;
    let server = server_ca.issue(&["mtls.example.com"], &[])?;
    let good = client_ca.issue_client("alice.example.com")?;
    let stranger = stranger_ca.issue_client("mallory.example.com")?;
    let echo = EchoServer::start(EchoConfig::new("echo-mtls", "web")).await?;
    let (strict_port, fallback_port) = (free_port(), free_port());
    let config = format!(
        "{HEADER}---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: web}}
spec:
  gatewayClassName: portcullis
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  tls:
    frontend:
      default:
        validation: {{caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: client-ca}}]}}
      perPort:
      - port: {fallback_port}
        tls:
          validation:
            caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: client-ca}}]
            mode: AllowInsecureFallback
  listeners:
  - {{name: strict, protocol: HTTPS, port: {strict_port}, tls: {{certificateRefs: [{{name: server}}]}}}}
  - {{name: fallback, protocol: HTTPS, port: {fallback_port}, tls: {{certificateRefs: [{{name: server}}]}}}}
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
  endpoints: [{{ip: \"{}\", port: {}}}]
{}{}",
        echo.addr().ip(),
        echo.addr().port(),
        tls_secret("server", &server),
        ca_config_map("client-ca", &client_ca.certificate_pem()),
    );
    let (gateway, _dir) = start_gateway(&config).await?;
    let (_, status) = gateway.get_admin("/status").await?;
    anyhow::ensure!(status.contains("\"healthy\":true"), "status: {status}");
    let strict = SocketAddr::from(([127, 0, 0, 1], strict_port));
    let fallback = SocketAddr::from(([127, 0, 0, 1], fallback_port));
    let host = "mtls.example.com";

    // AllowValidOnly: a certificate from the CA gets in; none, or a stranger's, does not.
    let (status, _) = https_get(strict, host, &server_ca, Some(&good)).await?;
    anyhow::ensure!(status == StatusCode::OK, "valid certificate: {status}");
    let missing = https_get(strict, host, &server_ca, None).await;
    anyhow::ensure!(missing.is_err(), "no certificate was let in: {missing:?}");
    let foreign = https_get(strict, host, &server_ca, Some(&stranger)).await;
    anyhow::ensure!(
        foreign.is_err(),
        "a stranger's certificate was let in: {foreign:?}"
    );

    // AllowInsecureFallback: everyone gets in.
    for (name, certificate) in [
        ("valid", Some(&good)),
        ("none", None),
        ("stranger", Some(&stranger)),
    ] {
        let (status, _) = https_get(fallback, host, &server_ca, certificate)
            .await
            .with_context(|| format!("fallback with {name} certificate"))?;
        anyhow::ensure!(status == StatusCode::OK, "fallback, {name}: {status}");
    }
    Ok(())
}

// --- Connection settings of a TLS backend (BackendTrafficPolicy) ---

/// A BackendTrafficPolicy's `maxConnectionDuration` applies to a TLS backend's connections:
/// a young connection is reused, one older than the limit takes no new request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_backends_follow_the_traffic_policys_connection_settings() -> anyhow::Result<()> {
    let ca = CertificateAuthority::new("backend CA")?;
    let leaf = ca.issue(&["abc.example.com"], &[])?;
    let backend = TlsBackend::start(&leaf, None).await?;
    let port = free_port();
    let mut config = format!(
        "{HEADER}{}{}",
        http_gateway("gw", port, ""),
        routes(&["gw"], &["aged"])
    );
    config.push_str(&service("aged", backend.addr));
    config.push_str(&ca_config_map("backend-ca", &ca.certificate_pem()));
    config.push_str(&policy("aged", &trusting("backend-ca", "abc.example.com")));
    config.push_str(
        "---
apiVersion: portcullis.dev/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: aged, namespace: web}
spec:
  targetRefs: [{group: \"\", kind: Service, name: aged}]
  timeout: {http: {maxConnectionDuration: 1s}}
",
    );
    let (_gateway, _dir) = start_gateway(&config).await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let client = HttpClient::new();

    for _ in 0..3 {
        let response = client.get(addr, "app.example.org", "/aged", &[]).await?;
        anyhow::ensure!(
            response.status == StatusCode::OK,
            "{} {:?}",
            response.status,
            response.text()
        );
    }
    anyhow::ensure!(
        backend.connections() == 1,
        "young connections are reused: {} connections",
        backend.connections()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let response = client.get(addr, "app.example.org", "/aged", &[]).await?;
    anyhow::ensure!(response.status == StatusCode::OK, "{}", response.status);
    anyhow::ensure!(
        backend.connections() == 2,
        "an old connection takes no new request: {} connections",
        backend.connections()
    );
    Ok(())
}
