//! The HTTPS client against a minimal TLS server using a generated certificate.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use testkit::pki::Certificate;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{HttpsRequest, Pin, TlsMaterial, matches_host, send};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one connection with `names` in its certificate; the task returns the SNI the client sent.
async fn one_shot_server(names: &[&str]) -> (SocketAddr, Pin, JoinHandle<Option<String>>) {
    let generated = Certificate::self_signed(names).expect("generates a certificate");
    let certificate = generated.certificate_der().clone();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_no_client_auth()
    .with_single_cert(vec![certificate.clone()], generated.key_der())
    .expect("a valid certificate and key");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("bound");
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.ok()?;
        let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(config))
            .accept(tcp)
            .await
            .ok()?;
        let sni = tls.get_ref().1.server_name().map(str::to_owned);
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = tls.read(&mut buffer).await.ok()?;
            if read == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let _ = tls
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
        let _ = tls.shutdown().await;
        sni
    });
    let pin = Pin {
        certificate,
        names: names.iter().map(|name| (*name).to_owned()).collect(),
    };
    (addr, pin, task)
}

fn request(addr: SocketAddr, sni: &str, pin: Pin) -> HttpsRequest<'_> {
    HttpsRequest {
        addr,
        sni,
        pin,
        method: Method::GET,
        host: sni,
        path: "/",
        headers: &[],
    }
}

#[tokio::test]
async fn sends_sni_and_accepts_the_pinned_wildcard_certificate() {
    let (addr, pin, server) = one_shot_server(&["*", "*.org"]).await;
    let response = send(request(addr, "unknown-example.org", pin), TIMEOUT)
        .await
        .expect("HTTPS works");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(
        server.await.ok().flatten().as_deref(),
        Some("unknown-example.org")
    );
}

#[tokio::test]
async fn rejects_a_certificate_other_than_the_pinned_one() {
    let (addr, _pin, _server) = one_shot_server(&["*.org"]).await;
    let other = Certificate::self_signed(&["*.org"]).expect("generates");
    let other = Pin {
        certificate: other.certificate_der().clone(),
        names: vec!["*.org".to_owned()],
    };
    assert!(send(request(addr, "a.org", other), TIMEOUT).await.is_err());
}

#[tokio::test]
async fn rejects_a_certificate_not_valid_for_the_sni() {
    let (addr, pin, _server) = one_shot_server(&["*.org"]).await;
    assert!(
        send(request(addr, "example.com", pin), TIMEOUT)
            .await
            .is_err()
    );
}

#[test]
fn generated_secrets_are_tls_secrets_with_pem_data() {
    let material = TlsMaterial::generate().expect("generates");
    let secrets = material.secret_objects();
    assert_eq!(secrets.len(), 2);
    for secret in &secrets {
        assert_eq!(secret["type"], "kubernetes.io/tls");
        let certificate = secret["stringData"]["tls.crt"].as_str().unwrap_or_default();
        assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    }
    assert!(
        material
            .pin("gateway-conformance-infra/tls-validity-checks-certificate")
            .is_some()
    );
}

#[test]
fn host_matching_follows_go() {
    assert!(matches_host("*.org", "unknown-example.org"));
    assert!(matches_host(
        "*.wildcard.org",
        "Fourth-Example.wildcard.org"
    ));
    assert!(!matches_host("*.wildcard.org", "wildcard.org"));
    assert!(!matches_host("*", "example.org"));
    assert!(matches_host("second-example.org", "second-example.org."));
}
