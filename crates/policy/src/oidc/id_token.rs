//! Validating an ID token (OpenID Connect Core 1.0 §3.1.3.7).
//!
//! The token comes straight from the token endpoint, but its signature is still checked against
//! the provider's published keys (with jsonwebtoken, the aws-lc-rs backend), so a compromised
//! network path or a misrouted token endpoint cannot mint sessions. Only asymmetric algorithms
//! are accepted (never `none`, never HS* keyed by the client secret). Then: `iss` equals the
//! issuer, `aud` contains the client id, `azp` (required when several audiences) is the client
//! id, `exp` is in the future (30 s leeway for clock skew), and `nonce` equals the one the login
//! sent. A refreshed ID token (§12.2) has no nonce to check but must name the same `sub`.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::discovery::Provider;

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECONDS: u64 = 30;
/// The longest ID token looked at.
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdTokenError {
    /// No key of the provider's set matches the token's `kid`: the set may have rotated.
    #[error("no key {0:?} in the provider's key set")]
    UnknownKey(Option<String>),
    /// The token is malformed, badly signed, expired, or for someone else.
    #[error("{0}")]
    Invalid(String),
}

/// What the validated token must match.
pub(crate) struct Expected<'a> {
    /// The configured issuer.
    pub(crate) issuer: &'a str,
    /// Our client id.
    pub(crate) client_id: &'a str,
    /// The login's nonce (`None` for a refreshed token).
    pub(crate) nonce: Option<&'a str>,
    /// The session's subject (a refreshed token must keep it).
    pub(crate) subject: Option<&'a str>,
}

/// The claims of `token` if it is valid for `expected`, signed by a key of `provider`.
pub(crate) fn validate(
    token: &str,
    provider: &Provider,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    let invalid = |why: &str| IdTokenError::Invalid(why.to_owned());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid("ID token too large"));
    }
    let header = jsonwebtoken::decode_header(token)
        .map_err(|error| IdTokenError::Invalid(format!("header: {error}")))?;
    if !is_asymmetric(header.alg) {
        return Err(IdTokenError::Invalid(format!(
            "algorithm {:?} not accepted",
            header.alg
        )));
    }
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => provider.keys.find(kid).into_iter().collect(),
        None => provider.keys.keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey(header.kid));
    }
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = LEEWAY_SECONDS;
    let mut last_error = String::from("no usable key");
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => return check_claims(data.claims, expected),
            Err(error) => last_error = error.to_string(),
        }
    }
    Err(IdTokenError::Invalid(last_error))
}

/// The checks jsonwebtoken does not do: `azp`, `nonce`, `sub`.
fn check_claims(
    claims: Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, IdTokenError> {
    let invalid = |why: &str| Err(IdTokenError::Invalid(why.to_owned()));
    let several_audiences = matches!(claims.get("aud"), Some(Value::Array(list)) if list.len() > 1);
    match claims.get("azp") {
        Some(Value::String(azp)) if azp != expected.client_id => return invalid("azp is not us"),
        Some(Value::String(_)) => {}
        Some(_) => return invalid("azp is not a string"),
        None if several_audiences => return invalid("several audiences and no azp"),
        None => {}
    }
    if let Some(nonce) = expected.nonce {
        let found = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(found.as_bytes(), nonce.as_bytes()) {
            return invalid("nonce does not match the login's");
        }
    }
    if let Some(subject) = expected.subject
        && claims.get("sub").and_then(Value::as_str) != Some(subject)
    {
        return invalid("sub changed on refresh");
    }
    Ok(claims)
}

fn is_asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Equality that takes the same time wherever the first difference is.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
