//! [`ExplainRequest`]: the request to explain, parsed from what a user types (`GET
//! http://host/path -H name:value`), and the errors of bad input.

use http::header::{HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri};
use snapshot::Scheme;

/// Why a request cannot be explained: the input is malformed or names what the config lacks.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// The method is not an HTTP token.
    #[error("invalid method {0:?}")]
    Method(String),
    /// The URL is not an absolute `http://` or `https://` URL.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header is not `name:value` with a valid name and value.
    #[error("invalid header {0:?}: expected NAME:VALUE")]
    Header(String),
    /// `--gateway` is not `NAMESPACE/NAME`.
    #[error("invalid gateway {0:?}: expected NAMESPACE/NAME")]
    GatewayFormat(String),
    /// No listener of the named Gateway is in the config.
    #[error("unknown gateway {gateway}: no usable listener of it in the config (known: {known})")]
    UnknownGateway {
        /// `namespace/name` as given.
        gateway: String,
        /// The Gateways that have usable listeners, comma-separated.
        known: String,
    },
}

/// A request to explain.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    pub(crate) method: Method,
    pub(crate) url: String,
    pub(crate) scheme: Scheme,
    /// Host routing uses (the `Host` header if given, else the URL's), without port.
    pub(crate) host: String,
    /// The URL's explicit port.
    pub(crate) port: Option<u16>,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: HeaderMap,
    /// `(namespace, name)` of `--gateway`.
    pub(crate) gateway: Option<model::NamespacedName>,
}

impl ExplainRequest {
    /// Parses `METHOD URL [-H name:value]... [--gateway NS/NAME]`.
    ///
    /// The URL must be absolute, `http` or `https`; without a port every socket of its scheme
    /// is a candidate (see docs/architecture/explain.md). A `Host` header replaces the URL's
    /// host for routing, as it does on the wire.
    ///
    /// # Errors
    /// [`ExplainError`] naming the bad part of the input.
    pub fn parse(
        method: &str,
        url: &str,
        headers: &[impl AsRef<str>],
        gateway: Option<&str>,
    ) -> Result<ExplainRequest, ExplainError> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ExplainError::Method(method.to_owned()))?;
        let bad_url = |reason| ExplainError::Url {
            url: url.to_owned(),
            reason,
        };
        let uri: Uri = url.parse().map_err(|_| bad_url("not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(_) => return Err(bad_url("the scheme must be http or https")),
            None => return Err(bad_url("expected an absolute URL such as http://host/path")),
        };
        let Some(authority) = uri.authority() else {
            return Err(bad_url("no host"));
        };
        let mut header_map = HeaderMap::new();
        for header in headers {
            let header = header.as_ref();
            let bad = || ExplainError::Header(header.to_owned());
            let (name, value) = header.split_once(':').ok_or_else(bad)?;
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
            let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
            header_map.append(name, value);
        }
        let host = match header_map.get(HOST).map(HeaderValue::to_str) {
            Some(Ok(host)) => router::strip_port(host).to_ascii_lowercase(),
            Some(Err(_)) => return Err(ExplainError::Header("host".to_owned())),
            None => authority.host().to_ascii_lowercase(),
        };
        let gateway = match gateway {
            None => None,
            Some(text) => match text.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                    Some(model::key(ns, name))
                }
                _ => return Err(ExplainError::GatewayFormat(text.to_owned())),
            },
        };
        Ok(ExplainRequest {
            method,
            url: url.to_owned(),
            scheme,
            host,
            port: authority.port_u16(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: header_map,
            gateway,
        })
    }
}
