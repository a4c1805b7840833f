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
    /// `RequestRedirect`: answer with a redirect instead of forwarding. Boxed, as are the
    /// other rare large filters: every rule and weighted backend has a `Filters`, most of
    /// them empty, and thousands of routes would carry their empty room.
    pub redirect: Option<Box<Redirect>>,
    /// `URLRewrite`: change host and/or path before forwarding.
    pub rewrite: Option<Box<UrlRewrite>>,
    /// `CORS`: answer preflight requests and mark responses shareable across origins.
    pub cors: Option<Box<CorsPolicy>>,
    /// `RequestMirror` filters (several are allowed), copies sent after every request filter.
    pub mirrors: Vec<Mirror>,
    /// `ExternalAuth` (experimental channel; rules only): the rule's requests are checked by an
    /// authorization service, after its SecurityPolicy (`proxy/src/access.rs`).
    pub external_auth: Option<Box<crate::security::ExtAuth>>,
    /// `ExtensionRef` to a `Composition` (rules only): the rule answers with the document its
    /// parts compose instead of forwarding (`proxy/src/compose.rs`).
    pub composition: Option<std::sync::Arc<crate::composition::Composition>>,
}

impl Filters {
    /// No filter.
    pub const NONE: Filters = Filters {
        request_headers: None,
        response_headers: None,
        redirect: None,
        rewrite: None,
        cors: None,
        mirrors: Vec::new(),
        external_auth: None,
        composition: None,
    };

    /// `filters`, boxed, or `None` when there are none.
    pub fn boxed(filters: Filters) -> Option<Box<Filters>> {
        (!filters.is_empty()).then(|| Box::new(filters))
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.request_headers.is_none()
            && self.response_headers.is_none()
            && self.redirect.is_none()
            && self.rewrite.is_none()
            && self.cors.is_none()
            && self.mirrors.is_empty()
            && self.external_auth.is_none()
            && self.composition.is_none()
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

/// A rule's retry policy: HTTPRoute `retry` (GEP-1731) or a BackendTrafficPolicy's `retry`.
///
/// Whatever the triggers, a request with a non-idempotent method (POST, PATCH, ...) is retried
/// only after a connect failure, when it never left the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// What makes an attempt worth retrying.
    pub triggers: RetryTriggers,
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Pause before each retry.
    pub backoff: Backoff,
    /// Limit of each attempt; `None` uses the rule's `timeouts.backendRequest`.
    pub per_try_timeout: Option<Duration>,
    /// Retries allowed as a share of the rule's requests; `None` = only `attempts` limits.
    /// The window that enforces it is runtime state shared by every request of the rule and
    /// kept across reloads while these settings stay (the proxy's rule-state registry).
    pub budget: Option<RetryBudgetSettings>,
}

/// `retry.budget` of a BackendTrafficPolicy: retries limited to `percent`% of the rule's
/// requests over a 10 s window, with a floor of `min_retries_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryBudgetSettings {
    percent: u32,
    min_retries_per_second: u32,
}

impl RetryBudgetSettings {
    /// Retries of `percent`% of requests (0 allows only the floor), and at least
    /// `min_retries_per_second` retries per second on average.
    pub fn new(percent: u32, min_retries_per_second: u32) -> RetryBudgetSettings {
        RetryBudgetSettings {
            percent,
            min_retries_per_second,
        }
    }

    /// Retries allowed per 100 requests.
    pub fn percent(&self) -> u32 {
        self.percent
    }

    /// The floor: retries per second allowed whatever the traffic.
    pub fn min_retries_per_second(&self) -> u32 {
        self.min_retries_per_second
    }
}

/// What makes an attempt worth retrying (Envoy's `retryOn` vocabulary).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryTriggers {
    /// No connection could be made, or no endpoint could take the request.
    pub connect_failure: bool,
    /// The connection was reset or closed before the response head.
    pub reset: bool,
    /// The attempt ran out of time (per-try or backendRequest timeout) before the response
    /// head.
    pub timeout: bool,
    /// These response statuses.
    pub status_codes: Vec<u16>,
    /// 502, 503 and 504 responses.
    pub gateway_error: bool,
    /// Any 5xx response.
    pub server_error: bool,
}

impl RetryTriggers {
    /// Whether a response with `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.status_codes.contains(&status)
            || (self.server_error && (500..=599).contains(&status))
            || (self.gateway_error && (502..=504).contains(&status))
    }
}

/// Pause before a retry: exponential from `base`, capped at `max`, with jitter (the proxy
/// draws each pause uniformly between `base` and the current cap). `base == max` is a fixed
/// pause (HTTPRoute's `backoff`); zero is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    /// First pause, and the least any pause is.
    pub base: Duration,
    /// Longest pause.
    pub max: Duration,
}

impl Backoff {
    /// The backoff of a retry policy that sets none: 25 ms growing to at most 250 ms, jittered
    /// (Envoy's default). HTTPRoute `retry` without `backoff` uses it too: retrying at once
    /// hits a backend that just failed (or timed out) again before it could recover, and a
    /// backend that serves attempts of one request one after another (as the conformance echo
    /// server's retry simulator does) would time out the immediate retry as well.
    pub const DEFAULT_RETRY: Backoff = Backoff {
        base: Duration::from_millis(25),
        max: Duration::from_millis(250),
    };

    /// The same pause before every retry.
    pub fn fixed(pause: Duration) -> Backoff {
        Backoff {
            base: pause,
            max: pause,
        }
    }

    /// The cap of the pause before retry number `retry` (0 for the first): `base × 2^retry`,
    /// at most `max` (and never under `base`).
    pub fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max)
            .max(self.base)
    }
}

/// Largest request body kept in memory so a request can be replayed to another attempt; a
/// request with a larger body is sent once, without retries.
pub const RETRY_BODY_LIMIT: usize = 64 * 1024;
