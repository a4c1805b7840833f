//! TLS material for the run and the HTTPS client of the HTTPS cases.
//!
//! `suite.Setup` creates the suite's certificates in code (conformance README section 3); this module creates
//! equivalents once per run and hands them to the gateway as `kubernetes.io/tls` Secrets. Only the self-signed
//! Secrets the manifests of this subset reference are generated: `gateway-conformance-infra/
//! tls-validity-checks-certificate` (SANs `*`, `*.org`, `*.wildcard.org`) and `gateway-conformance-web-backend/
//! certificate` (`*`). The CA-signed backend and client certificates are not: no test here uses them.
//!
//! The client trusts exactly the certificate generated for the case's Secret (pinned, like the suite, which
//! trusts the self-signed certificate as its own CA) and checks it is valid for the SNI name with Go's rules
//! (`crypto/x509` lets `*.org` match `example.org`, which webpki refuses).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::Value;
use testkit::TestResponse;
use testkit::pki::Certificate;

/// A certificate the client accepts, and the DNS names it was issued for.
#[derive(Debug, Clone)]
pub(crate) struct Pin {
    /// The certificate, DER.
    pub(crate) certificate: CertificateDer<'static>,
    /// Its subject alternative names.
    pub(crate) names: Vec<String>,
}

/// One Secret's certificate and the DNS names it was issued for.
struct GeneratedSecret {
    /// The certificate and its key.
    certificate: Certificate,
    /// Its subject alternative names, as the client matches them.
    names: Vec<String>,
}

/// The run's certificates, by Secret `namespace/name`.
pub(crate) struct TlsMaterial {
    /// Secret key to certificate.
    secrets: BTreeMap<String, GeneratedSecret>,
}

impl TlsMaterial {
    /// Generates every Secret (see the module docs).
    pub(crate) fn generate() -> anyhow::Result<Self> {
        let wanted: [(&str, &[&str]); 2] = [
            (
                "gateway-conformance-infra/tls-validity-checks-certificate",
                &["*", "*.org", "*.wildcard.org"],
            ),
            ("gateway-conformance-web-backend/certificate", &["*"]),
        ];
        let mut secrets = BTreeMap::new();
        for (secret, names) in wanted {
            let certificate = Certificate::self_signed(names)
                .with_context(|| format!("generating the certificate of Secret {secret}"))?;
            let names = names.iter().map(|name| (*name).to_owned()).collect();
            secrets.insert(secret.to_owned(), GeneratedSecret { certificate, names });
        }
        Ok(Self { secrets })
    }

    /// The Secrets as `kubernetes.io/tls` objects.
    pub(crate) fn secret_objects(&self) -> Vec<Value> {
        self.secrets
            .iter()
            .map(|(key, generated)| {
                let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
                generated.certificate.secret_object(namespace, name)
            })
            .collect()
    }

    /// The certificate of Secret `namespace/name`, for pinning.
    pub(crate) fn pin(&self, secret: &str) -> Option<Pin> {
        self.secrets.get(secret).map(|generated| Pin {
            certificate: generated.certificate.certificate_der().clone(),
            names: generated.names.clone(),
        })
    }
}

/// One HTTPS request: where to, with which TLS parameters, and the HTTP request itself.
pub(crate) struct HttpsRequest<'a> {
    /// The gateway listener.
    pub(crate) addr: SocketAddr,
    /// The server name sent in the ClientHello.
    pub(crate) sni: &'a str,
    /// The only certificate accepted.
    pub(crate) pin: Pin,
    /// Request method.
    pub(crate) method: Method,
    /// `Host` header.
    pub(crate) host: &'a str,
    /// Request target, query included.
    pub(crate) path: &'a str,
    /// Request headers, in order.
    pub(crate) headers: &'a [(String, String)],
}

/// Sends one HTTP/1.1 request over a new TLS connection and reads the whole response.
pub(crate) async fn send(
    request: HttpsRequest<'_>,
    timeout: Duration,
) -> anyhow::Result<TestResponse> {
    match tokio::time::timeout(timeout, exchange(request)).await {
        Ok(result) => result,
        Err(_elapsed) => bail!("HTTPS request timed out after {timeout:?}"),
    }
}

/// The body of [`send`], without the timeout.
async fn exchange(request: HttpsRequest<'_>) -> anyhow::Result<TestResponse> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedCertificate {
        pin: request.pin.clone(),
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choosing TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let server_name = ServerName::try_from(request.sni.to_owned())
        .with_context(|| format!("invalid SNI {:?}", request.sni))?;
    let tcp = tokio::net::TcpStream::connect(request.addr)
        .await
        .with_context(|| format!("connecting to {}", request.addr))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .with_context(|| format!("TLS handshake with {} (SNI {})", request.addr, request.sni))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .context("HTTP/1.1 handshake over TLS")?;
    let driver = tokio::spawn(connection);
    let mut outgoing = Request::new(Full::new(Bytes::new()));
    *outgoing.method_mut() = request.method;
    *outgoing.uri_mut() = request
        .path
        .parse::<Uri>()
        .with_context(|| format!("invalid request path {:?}", request.path))?;
    let headers = outgoing.headers_mut();
    headers.insert(
        HOST,
        HeaderValue::from_str(request.host)
            .with_context(|| format!("invalid host {:?}", request.host))?,
    );
    for (name, value) in request.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("invalid header name {name:?}"))?,
            HeaderValue::from_str(value)
                .with_context(|| format!("invalid value for header {name}"))?,
        );
    }
    let response = sender
        .send_request(outgoing)
        .await
        .context("HTTPS request failed")?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the HTTPS response body")?
        .to_bytes();
    driver.abort();
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
        version: parts.version,
    })
}

/// Go's `matchHostnames`: same number of labels, each equal (ignoring case), except that a leading `*` label
/// matches any one label.
fn matches_host(pattern: &str, host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let pattern_labels: Vec<&str> = pattern.split('.').collect();
    let host_labels: Vec<&str> = host.split('.').collect();
    pattern_labels.len() == host_labels.len()
        && pattern_labels
            .iter()
            .zip(&host_labels)
            .enumerate()
            .all(|(index, (pattern, host))| {
                (index == 0 && *pattern == "*") || pattern.eq_ignore_ascii_case(host)
            })
}

/// Accepts exactly one certificate, valid for the server name, with real handshake signature checks.
#[derive(Debug)]
struct PinnedCertificate {
    /// The certificate the gateway must present.
    pin: Pin,
    /// Supplies the signature algorithms.
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() != self.pin.certificate.as_ref() {
            return Err(rustls::Error::General(
                "the gateway presented a certificate other than the Secret's".to_owned(),
            ));
        }
        let host = match server_name {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            other => {
                return Err(rustls::Error::General(format!(
                    "unsupported server name {other:?}"
                )));
            }
        };
        if !self
            .pin
            .names
            .iter()
            .any(|pattern| matches_host(pattern, &host))
        {
            return Err(rustls::Error::General(format!(
                "certificate not valid for {host:?}; it is valid for {:?}",
                self.pin.names
            )));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            certificate,
            signature,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests;
