//! Compiled `SecurityPolicy` settings: who may send a request through a route.
//!
//! A policy is attached to a Gateway, a listener, a route or a route rule; the most specific
//! wins, whole (no field merging). `compile` resolves it for every rule
//! ([`crate::RouteRule::security`]) and listener ([`crate::ListenerRoutes::security`]): a
//! request gets its rule's policy, else its listener's.
//!
//! The phases a policy runs, in order (`proxy/src/stack.rs`), each only when configured:
//! 1. authentication: OIDC (browser session), then JWT, API key and basic auth. Every
//!    configured method must succeed (they are ANDed, as in Envoy Gateway); a request without
//!    credentials, or with bad ones, gets 401 with `WWW-Authenticate`;
//! 2. external authorization (HTTP or the Envoy `ext_authz` gRPC protocol), which sees the
//!    headers authentication added (claims forwarded to headers);
//! 3. authorization rules (client CIDR, JWT claims and scopes, headers, methods, paths): the
//!    first rule that matches decides, else the default action; a denied request gets 403.
//!
//! Settings only: JWKS caches, the basic-auth verification cache, OIDC state and the ext_authz
//! connections are runtime state in the `policy` crate, keyed by the identities here.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method, Uri};
use ipnet::IpNet;

use crate::BackendIndex;

/// One SecurityPolicy, compiled.
#[derive(Debug, PartialEq)]
pub struct SecurityPolicy {
    /// `SecurityPolicy ns/name`: logs, metrics and the identity of its runtime state.
    pub label: Arc<str>,
    /// OpenID Connect authorization-code flow for browsers.
    pub oidc: Option<Box<Oidc>>,
    /// Bearer tokens (JWT) checked against providers' keys.
    pub jwt: Option<Jwt>,
    /// API keys from Secrets.
    pub api_key: Option<ApiKeyAuth>,
    /// HTTP basic authentication against an htpasswd file from a Secret.
    pub basic: Option<BasicAuth>,
    /// An external authorization service.
    pub ext_auth: Option<ExtAuth>,
    /// Allow/deny rules over the client's address, identity and request.
    pub authorization: Option<Authorization>,
    /// The policy did not validate: every request it guards is answered 500 (a broken
    /// SecurityPolicy fails closed, never open). The other fields are empty.
    pub invalid: bool,
}

/// JWT authentication: a request must carry a token that one provider accepts.
#[derive(Debug, PartialEq)]
pub struct Jwt {
    /// Providers, tried in order: a token is checked by the providers whose `extract_from`
    /// finds it; the first that accepts it authenticates the request.
    pub providers: Vec<JwtProvider>,
    /// `optional: true`: a request with no token at all goes on unauthenticated (a token that
    /// is present must still be valid). Authorization rules can still require claims.
    pub optional: bool,
}

/// One JWT issuer.
#[derive(Debug, PartialEq)]
pub struct JwtProvider {
    /// `providers[].name` (unique in the policy): authorization rules name it.
    pub name: Arc<str>,
    /// Required `iss`; `None` accepts any issuer.
    pub issuer: Option<String>,
    /// The token's `aud` must contain one of these; empty accepts any audience.
    pub audiences: Vec<String>,
    /// Where the verification keys come from.
    pub keys: JwksSource,
    /// Claims copied into request headers once the token is accepted (any value the client
    /// sent in those headers is removed first).
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Where the token is looked for, in order.
    pub extract_from: Vec<TokenSource>,
    /// Whether the token stays in the request sent upstream (`forward: true`); by default the
    /// header or cookie that carried it is removed.
    pub forward: bool,
    /// Tolerance for `exp` and `nbf` (default 30 s).
    pub clock_skew: Duration,
}

/// Where a provider's keys come from.
#[derive(Debug, PartialEq)]
pub enum JwksSource {
    /// A JSON Web Key Set fetched by the gateway from `uri` (http or https), kept for
    /// `cache_duration`, fetched again when a token names an unknown `kid` (at most once per
    /// `min_refetch`), and served stale while the endpoint is down. The cache is keyed by
    /// `uri`: providers naming the same URI share it.
    Remote {
        /// The JWKS document.
        uri: Uri,
        /// How long a fetched set is fresh (default 5 min).
        cache_duration: Duration,
        /// Timeout of one fetch (default 5 s).
        timeout: Duration,
    },
    /// A JSON Web Key Set in the policy (`localJWKS.inline`, or from a ConfigMap/Secret).
    Inline(String),
}

/// `claimToHeaders[]`.
#[derive(Debug, PartialEq)]
pub struct ClaimToHeader {
    /// Claim name; a dot walks into nested objects (`realm.roles`).
    pub claim: String,
    /// Request header that gets the claim (a string as is; numbers and booleans as JSON;
    /// arrays of strings joined with `,`).
    pub header: HeaderName,
}

/// Where a credential is looked for.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenSource {
    /// A request header; the value must start with `value_prefix` (e.g. `Bearer `, matched
    /// case-insensitively), which is stripped.
    Header {
        /// Header name.
        name: HeaderName,
        /// Required prefix (empty: none).
        value_prefix: String,
    },
    /// A cookie.
    Cookie(String),
    /// A query parameter.
    Query(String),
}

/// API key authentication: the key found in the request must be one of `keys`.
#[derive(Debug, PartialEq)]
pub struct ApiKeyAuth {
    /// Accepted keys with the client each identifies (the key of the Secret's `data` entry
    /// is the client id, its value the key).
    pub keys: Vec<ApiKey>,
    /// Where the key is looked for, in order (default: header `x-api-key`).
    pub extract_from: Vec<TokenSource>,
    /// Header the client id is forwarded in (`forwardClientIDHeader`), if any.
    pub forward_client_id_header: Option<HeaderName>,
    /// Whether the key is removed from the request sent upstream (`sanitize`, default true).
    pub sanitize: bool,
}

/// One API key.
#[derive(Debug, PartialEq)]
pub struct ApiKey {
    /// Who the key belongs to.
    pub client_id: Arc<str>,
    /// The key.
    pub key: String,
}

/// Basic authentication.
#[derive(Debug, PartialEq)]
pub struct BasicAuth {
    /// htpasswd lines, by user (bcrypt `$2y$`/`$2b$`/`$2a$`, or `{SHA}` base64 SHA-1).
    pub users: Vec<HtpasswdUser>,
    /// Header the authenticated user name is forwarded in, if any.
    pub forward_username_header: Option<HeaderName>,
    /// `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
}

/// One htpasswd entry.
#[derive(Debug, PartialEq)]
pub struct HtpasswdUser {
    /// User name.
    pub name: String,
    /// The stored hash, as in the htpasswd file.
    pub hash: String,
}

/// External authorization: each request is first sent to an authorization service; its
/// answer allows it (optionally adding headers) or denies it (its response goes back to the
/// client).
#[derive(Debug, PartialEq)]
pub struct ExtAuth {
    /// The authorization service, a backend of the snapshot (balanced, health-checked).
    pub backend: BackendIndex,
    /// HTTP or gRPC.
    pub protocol: ExtAuthProtocol,
    /// Request headers sent to the service (empty: all of them, except hop-by-hop).
    pub headers_to_backend: Vec<HeaderName>,
    /// Headers of an allowing answer copied into the request sent upstream.
    pub headers_to_upstream: Vec<HeaderName>,
    /// Every header of an allowing answer is copied upstream instead (except `Host`, framing
    /// and hop-by-hop ones): the HTTPRoute `ExternalAuth` filter without
    /// `allowedResponseHeaders`.
    pub all_headers_to_upstream: bool,
    /// The request body is sent along, up to this many bytes (`None`: no body).
    pub body: Option<BodyForwarding>,
    /// Whether a request goes on (`true`) or is refused with 403 (`false`) when the service
    /// cannot be reached or answers with an error.
    pub fail_open: bool,
    /// Timeout of one check (default 1 s); running out counts as the service being down.
    pub timeout: Duration,
}

/// The protocol of an authorization service.
#[derive(Debug, PartialEq)]
pub enum ExtAuthProtocol {
    /// A plain HTTP request: the original method, `path_prefix` + the original path, the
    /// selected headers. A 2xx allows; any other status denies and is answered to the client
    /// with the service's status, headers and body.
    Http {
        /// Prepended to the request's path (`path`, default empty).
        path_prefix: String,
    },
    /// `envoy.service.auth.v3.Authorization/Check` over HTTP/2.
    Grpc,
}

/// `withBody`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BodyForwarding {
    /// At most this many bytes of the body are sent (a larger body is cut: `allowPartial`
    /// semantics; the service sees a header saying so).
    pub max_bytes: usize,
    /// A larger body is refused with 413 instead (the HTTPRoute `ExternalAuth` filter's
    /// `forwardBody`).
    pub refuse_larger: bool,
}

/// Authorization rules.
#[derive(Debug, PartialEq)]
pub struct Authorization {
    /// What happens to a request no rule matches.
    pub default_action: Action,
    /// Checked in order; the first rule that matches decides.
    pub rules: Vec<AuthorizationRule>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the request through.
    Allow,
    /// Refuse it with 403.
    Deny,
}

/// One authorization rule: it matches when every condition it has holds (within a condition,
/// any listed value is enough).
#[derive(Debug, PartialEq)]
pub struct AuthorizationRule {
    /// `rules[i].name`, or `rules[i]`: metrics and logs.
    pub name: Arc<str>,
    /// Decision when the rule matches.
    pub action: Action,
    /// Who sent the request.
    pub principal: Principal,
    /// Request methods (empty: any).
    pub methods: Vec<Method>,
    /// Path prefixes, matched segment by segment on the normalized path (empty: any).
    pub paths: Vec<String>,
}

/// `principal`: each listed condition must hold.
#[derive(Debug, Default, PartialEq)]
pub struct Principal {
    /// The client address (after trusted proxy hops, `client_ip.rs`) is in one of these.
    pub client_cidrs: Vec<IpNet>,
    /// The request was authenticated by a JWT whose claims match.
    pub jwt: Option<JwtPrincipal>,
    /// Request headers, each with one of its values.
    pub headers: Vec<HeaderValues>,
    /// The API key or basic-auth client is one of these (empty: any).
    pub clients: Vec<String>,
}

/// `principal.jwt`.
#[derive(Debug, PartialEq)]
pub struct JwtPrincipal {
    /// The provider that accepted the token (`None`: any).
    pub provider: Option<Arc<str>>,
    /// Claims, each with one of its values (a claim that is an array matches when it holds
    /// one of the values).
    pub claims: Vec<ClaimValues>,
    /// Every one of these scopes must be in the token's `scope` (space-separated) or `scp`.
    pub scopes: Vec<String>,
}

/// A claim and the values it may have.
#[derive(Debug, PartialEq)]
pub struct ClaimValues {
    /// Claim name; a dot walks into nested objects.
    pub name: String,
    /// Accepted values (strings; numbers and booleans compared as their JSON text).
    pub values: Vec<String>,
}

/// A header and the values it may have.
#[derive(Debug, PartialEq)]
pub struct HeaderValues {
    /// Header name.
    pub name: HeaderName,
    /// Accepted values, exact.
    pub values: Vec<String>,
}

/// OpenID Connect for browsers: the authorization-code flow with PKCE.
///
/// A request without a valid session cookie is redirected to the provider's authorization
/// endpoint; the provider sends the browser back to `redirect_path`, where the gateway
/// exchanges the code for tokens, sets an encrypted session cookie and redirects to the page
/// first asked for. Requests with the cookie go upstream with the ID token (or access token)
/// as a bearer token when `forward_access_token`. `logout_path` ends the session and sends the
/// browser to the provider's `end_session_endpoint` (RP-initiated logout).
#[derive(Debug, PartialEq)]
pub struct Oidc {
    /// The provider's issuer; its discovery document is at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Endpoints given in the policy, overriding discovery.
    pub authorization_endpoint: Option<Uri>,
    /// Token endpoint override.
    pub token_endpoint: Option<Uri>,
    /// End-session endpoint override.
    pub end_session_endpoint: Option<Uri>,
    /// The client registered with the provider.
    pub client_id: String,
    /// Its secret (from a Secret's `client-secret`).
    pub client_secret: String,
    /// Scopes asked for (`openid` is always included).
    pub scopes: Vec<String>,
    /// Where the provider sends the browser back: an absolute URL (`redirectURL`) or a path
    /// on the request's own host.
    pub redirect_uri: String,
    /// The path part of `redirect_uri`, matched on requests.
    pub redirect_path: String,
    /// Requests to this path end the session.
    pub logout_path: String,
    /// Where the provider sends the browser after logout (`post_logout_redirect_uri`).
    pub post_logout_redirect_uri: Option<String>,
    /// Whether refresh tokens are used to renew an expired session.
    pub refresh_token: bool,
    /// Prefix of the cookie names (`<prefix>-session`, `<prefix>-flow`).
    pub cookie_prefix: String,
    /// `Domain` of the cookies, if set.
    pub cookie_domain: Option<String>,
    /// Key the session cookie is encrypted with: 32 bytes derived from the policy's identity
    /// and the client secret (replicas derive the same key), or given in a Secret.
    pub cookie_key: [u8; 32],
    /// Whether the access token is sent upstream as `Authorization: Bearer`.
    pub forward_access_token: bool,
    /// Lifetime of a session whose tokens give none (default 1 h).
    pub default_session_lifetime: Duration,
}
