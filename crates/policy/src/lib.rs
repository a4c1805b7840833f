//! SecurityPolicy and RateLimitPolicy at request time.
//!
//! The settings are in the snapshot (`snapshot::security`, `snapshot::rate_limit`); the state
//! they govern lives here, in runtimes that outlive snapshots: JWKS caches keyed by URI, the
//! basic-auth verification cache, OIDC sessions' keys, rate-limit counters keyed by rule
//! identity, the Redis connection. `proxy/src/stack.rs` calls the phases in order:
//! authentication → external authorization → authorization rules → rate limits. Each phase
//! either lets the request go on (possibly adding headers to it) or refuses it with a
//! [`Denial`], which the proxy turns into the response.

pub mod authn;
pub mod authorization;
pub mod ext_auth;
mod https_client;
pub mod oidc;
pub mod rate_limit;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

/// Why a request is refused, and the response that says so.
#[derive(Debug)]
pub struct Denial {
    /// 401, 403, 429, 503, or the external authorization service's own status.
    pub status: StatusCode,
    /// Headers of the response (`WWW-Authenticate`, `Retry-After`, `RateLimit`, ...).
    pub headers: HeaderMap,
    /// Body of the response (usually empty).
    pub body: Bytes,
    /// A fixed word for metrics, logs and the `x-portcullis-error` header
    /// (`missing-credentials`, `invalid-token`, `forbidden`, `rate-limited`, ...).
    pub reason: &'static str,
}

impl Denial {
    /// A denial with an empty body and no headers.
    pub fn new(status: StatusCode, reason: &'static str) -> Denial {
        Denial {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            reason,
        }
    }
}

/// Who authentication found the client to be. Later phases read it: authorization rules
/// (JWT claims, client ids) and rate-limit selectors (a claim or the client id as the key).
#[derive(Debug, Default)]
pub struct Identity {
    /// The accepted JWT, when JWT authentication (or OIDC) accepted one.
    pub jwt: Option<JwtIdentity>,
    /// The API-key client id or the basic-auth user name.
    pub client: Option<Arc<str>>,
}

/// An accepted JWT.
#[derive(Debug)]
pub struct JwtIdentity {
    /// The provider that accepted it (`providers[].name`).
    pub provider: Arc<str>,
    /// Its claims.
    pub claims: Map<String, Value>,
}

impl JwtIdentity {
    /// The claim `name`; a dot walks into nested objects (`realm.role`). A claim whose own
    /// name contains a dot is found too (tried whole first).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        claim(&self.claims, name)
    }
}

/// The claim `name` of `claims` (see [`JwtIdentity::claim`]).
pub fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let (first, rest) = name.split_once('.')?;
    match claims.get(first)? {
        Value::Object(inner) => claim(inner, rest),
        _ => None,
    }
}

/// A claim value as text: strings as they are, numbers and booleans as JSON, arrays of
/// scalars joined with `,`; objects and null have none.
pub fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|item| match item {
                    Value::Array(_) | Value::Object(_) | Value::Null => None,
                    scalar => claim_text(scalar),
                })
                .collect();
            parts.map(|parts| parts.join(","))
        }
        Value::Object(_) | Value::Null => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_found_whole_then_by_path() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"sub":"ana","realm":{"role":"admin"},"a.b":1,"groups":["x","y"],"n":null}"#,
        )
        .unwrap_or_default();
        let identity = JwtIdentity {
            provider: "main".into(),
            claims,
        };
        assert_eq!(
            identity.claim("realm.role").and_then(claim_text).as_deref(),
            Some("admin")
        );
        assert_eq!(
            identity.claim("a.b").and_then(claim_text).as_deref(),
            Some("1")
        );
        assert_eq!(
            identity.claim("groups").and_then(claim_text).as_deref(),
            Some("x,y")
        );
        assert_eq!(identity.claim("n").and_then(claim_text), None);
        assert_eq!(identity.claim("realm.missing"), None);
        assert_eq!(identity.claim("sub.x"), None);
    }
}
