//! The registered claims a provider checks once a token's signature verified (RFC 7519 §4.1).
//!
//! Decisions:
//! - `exp` is **required**: a bearer token that never expires is a credential that can never be
//!   revoked, and every mainstream issuer sets it. A missing or non-numeric `exp` is invalid;
//! - `nbf` and `iat` are optional; when present they must be numbers, `nbf` must have passed
//!   and `iat` must not be in the future (both with the provider's `clock_skew`); `exp` gets
//!   the same tolerance;
//! - `iss` must equal the provider's issuer when one is set; `aud` (a string or an array of
//!   strings) must hold one of the provider's audiences when any are set.
//!
//! Times are compared as `f64` seconds, so fractional `NumericDate`s (allowed by RFC 7519 §2)
//! work and huge values cannot overflow.

use serde_json::{Map, Value};
use snapshot::security::JwtProvider;

/// Checks the registered claims of a verified token at `now` (seconds since the epoch).
/// `Err` names the failed check (for debug logs only; the client sees `invalid_token`).
pub(crate) fn check(
    provider: &JwtProvider,
    claims: &Map<String, Value>,
    now: f64,
) -> Result<(), &'static str> {
    let skew = provider.clock_skew.as_secs_f64();
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .ok_or("exp missing or not a number")?;
    if now > exp + skew {
        return Err("expired");
    }
    if let Some(nbf) = claims.get("nbf") {
        let nbf = nbf.as_f64().ok_or("nbf not a number")?;
        if nbf > now + skew {
            return Err("not yet valid (nbf)");
        }
    }
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_f64().ok_or("iat not a number")?;
        if iat > now + skew {
            return Err("issued in the future (iat)");
        }
    }
    if let Some(issuer) = &provider.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
    {
        return Err("issuer");
    }
    if !provider.audiences.is_empty() && !audience_matches(claims.get("aud"), &provider.audiences) {
        return Err("audience");
    }
    Ok(())
}

/// Whether `aud` (a string or an array of strings) holds one of `accepted`.
fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    let accepts = |value: &Value| {
        value
            .as_str()
            .is_some_and(|aud| accepted.iter().any(|ok| ok == aud))
    };
    match aud {
        Some(Value::String(_)) => aud.is_some_and(accepts),
        Some(Value::Array(items)) => items.iter().any(accepts),
        _ => false,
    }
}
