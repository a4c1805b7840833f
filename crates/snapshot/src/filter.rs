//! Compiled HTTPRoute filters and timeouts, as the data plane applies them.

use std::time::Duration;

use http::{HeaderName, HeaderValue, StatusCode};

use crate::cors::CorsPolicy;
use crate::mirror::Mirror;

/// Filters of a rule (or of one backendRef), in the order the data plane applies them.
#[derive(Debug, Default)]
pub struct Filters {
    /// `RequestHeaderModifier`.
    pub request_headers: Option<HeaderModifier>,
    /// `ResponseHeaderModifier`.
    pub response_headers: Option<HeaderModifier>,
    /// `RequestRedirect`: answer with a redirect instead of forwarding.
    pub redirect: Option<Redirect>,
    /// `URLRewrite`: change host and/or path before forwarding.
    pub rewrite: Option<UrlRewrite>,
    /// `CORS`: answer preflight requests and mark responses shareable across origins.
    pub cors: Option<CorsPolicy>,
    /// `RequestMirror` filters (several are allowed), copies sent after every request filter.
    pub mirrors: Vec<Mirror>,
}

impl Filters {
    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.request_headers.is_none()
            && self.response_headers.is_none()
            && self.redirect.is_none()
            && self.rewrite.is_none()
            && self.cors.is_none()
            && self.mirrors.is_empty()
    }
}

/// `HTTPHeaderFilter`: set (replace), add (append), remove; applied in that order.
#[derive(Debug, Default, Clone)]
pub struct HeaderModifier {
    /// Headers replaced (or created).
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers appended (a value is added even when the header exists).
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed.
    pub remove: Vec<HeaderName>,
}

/// `HTTPPathModifier`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathModifier {
    /// Replace the whole path.
    ReplaceFullPath(String),
    /// Replace the part of the path the rule's PathPrefix matched.
    ReplacePrefixMatch(String),
}

/// `HTTPRequestRedirectFilter`.
#[derive(Debug, Clone)]
pub struct Redirect {
    /// New scheme (`http`/`https`); `None` keeps the request's.
    pub scheme: Option<String>,
    /// New hostname; `None` keeps the request's (without port).
    pub hostname: Option<String>,
    /// New port; `None` derives it per the spec (well-known port of a new scheme, else the
    /// listener port).
    pub port: Option<u16>,
    /// Path change; `None` keeps the path.
    pub path: Option<PathModifier>,
    /// 301, 302 (default), 303, 307 or 308.
    pub status: StatusCode,
}

/// `HTTPURLRewriteFilter`.
#[derive(Debug, Clone)]
pub struct UrlRewrite {
    /// New Host / `:authority`.
    pub hostname: Option<HeaderValue>,
    /// Path change.
    pub path: Option<PathModifier>,
}

/// HTTPRoute `timeouts`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `timeouts.request`: the whole request, from the gateway receiving it to the response
    /// head. `None` = no limit.
    pub request: Option<Duration>,
    /// `timeouts.backendRequest`: one request to a backend (one attempt when retrying).
    pub backend_request: Option<Duration>,
}

/// HTTPRoute `retry` (GEP-1731).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Response codes that are retried. Connection errors (refused, reset, timeout before the
    /// response head) are always retried when a retry policy exists.
    pub codes: Vec<u16>,
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Pause between attempts.
    pub backoff: Option<Duration>,
}

/// Largest request body kept in memory so a request can be replayed to another attempt; a
/// request with a larger body is sent once, without retries.
pub const RETRY_BODY_LIMIT: usize = 64 * 1024;
