//! The HTTP(S) client of the gateway's own requests to identity providers: JWKS fetches
//! (`authn`) and OIDC discovery and token requests (`oidc`). HTTP/1.1, rustls with the
//! workspace's aws-lc-rs provider, verified against the platform's trust anchors.

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::{ClientConfig, RootCertStore};

/// A client sending bodies of type `B`.
pub(crate) type HttpsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// The platform's trust anchors. A platform store without usable anchors gives an empty store
/// (with a warning naming `purpose`): plain-HTTP endpoints still work and HTTPS ones fail,
/// rather than the gateway refusing to start.
pub(crate) fn system_roots(purpose: &str) -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("{purpose}: no usable system CA certificate; https endpoints will fail");
    }
    roots
}

/// A client trusting `roots`.
pub(crate) fn client_with<B>(roots: RootCertStore) -> Result<HttpsClient<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}
