//! The compiled HTTPRoute `CORS` filter (GEP-1767), as the data plane applies it.
//!
//! Plain data: which origins may share responses, and the pre-joined header values the gateway
//! answers with. `compile` validates the filter and builds it; origin matching and header
//! generation live with the data plane (`proxy/src/cors.rs`).

use http::HeaderValue;

/// A rule's CORS policy.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    /// `allowOrigins`; empty means no origin is allowed.
    pub allow_origins: Vec<OriginPattern>,
    /// `allowCredentials`: answer `Access-Control-Allow-Credentials: true`, and never use the `*`
    /// wildcard in an allow or expose header (the Fetch standard forbids it on credentialed
    /// requests, and the gateway cannot tell which requests carry credentials).
    pub allow_credentials: bool,
    /// `allowMethods`, for `Access-Control-Allow-Methods` on preflight responses.
    pub allow_methods: CorsList,
    /// `allowHeaders`, for `Access-Control-Allow-Headers` on preflight responses.
    pub allow_headers: CorsList,
    /// `exposeHeaders`, for `Access-Control-Expose-Headers`.
    pub expose_headers: CorsList,
    /// `Access-Control-Max-Age` in seconds (`maxAge`, default 5).
    pub max_age: HeaderValue,
}

impl CorsPolicy {
    /// Whether `allowOrigins` contains the lone `*`.
    pub fn allows_any_origin(&self) -> bool {
        self.allow_origins
            .iter()
            .any(|origin| matches!(origin, OriginPattern::Any))
    }
}

/// One `allowOrigins` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: every origin, including `null`.
    Any,
    /// `<scheme>://<host>[:<port>]`, the host possibly with a wildcard.
    Origin {
        /// `http` or `https`, lower case.
        scheme: String,
        /// The host part.
        host: OriginHost,
        /// The port; the scheme's default (80 or 443) when the entry has none, because the
        /// spec assumes it for matching.
        port: u16,
    },
}

/// The host part of an [`OriginPattern::Origin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginHost {
    /// `*`: any host.
    Any,
    /// `*.example.com`, stored as `.example.com` (lower case): the wildcard is greedy to the
    /// left and takes one or more DNS labels, so `a.b.example.com` matches but `example.com`
    /// does not.
    Suffix(String),
    /// An exact host, lower case.
    Exact(String),
}

/// An allow/expose list as the response header needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsList {
    /// The field is unset or empty: the header is left out.
    Empty,
    /// The list contains `*`.
    Any,
    /// The entries joined with `, `.
    Listed(HeaderValue),
}
