//! API key authentication.
//!
//! The key is looked for where `extract_from` says (default: header `x-api-key`) and compared
//! with every configured key in constant time: `aws_lc_rs::constant_time` over the bytes, and
//! the loop visits every key without stopping at a match, so the time taken says nothing about
//! which key matched or how much of a key an attacker got right. (Only a key's length can
//! show; keys are long random strings, so that tells nothing useful.) A hashed lookup would be
//! as safe, but needs per-policy state built from the snapshot; the scan is a few hundred
//! nanoseconds for dozens of keys and needs none.

use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use http::HeaderName;
use http::request::Parts;
use snapshot::security::{ApiKeyAuth, TokenSource};

use super::credentials;

/// Where the key is looked for when `extract_from` is empty.
static DEFAULT_SOURCES: [TokenSource; 1] = [TokenSource::Header {
    name: HeaderName::from_static("x-api-key"),
    value_prefix: String::new(),
}];

/// Why API key authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiKeyFailure {
    /// No key in the request.
    Missing,
    /// A key that is not one of the configured ones.
    Invalid,
}

/// Finds and checks the request's API key. On success returns the client id and, when
/// `sanitize` is set, has removed the key from the request; `forward_client_id_header` is set
/// by the caller (which removed client-sent copies first).
pub(crate) fn authenticate(
    settings: &ApiKeyAuth,
    parts: &mut Parts,
) -> Result<Arc<str>, ApiKeyFailure> {
    let sources: &[TokenSource] = if settings.extract_from.is_empty() {
        &DEFAULT_SOURCES
    } else {
        &settings.extract_from
    };
    let (presented, source) = credentials::find(sources, parts).ok_or(ApiKeyFailure::Missing)?;
    let client = matching_client(settings, presented.as_bytes()).ok_or(ApiKeyFailure::Invalid)?;
    if settings.sanitize && !credentials::remove(source, parts) {
        tracing::warn!("could not remove the API key from the request");
    }
    Ok(client)
}

/// The client whose key is `presented`, comparing with every key (see the module docs).
fn matching_client(settings: &ApiKeyAuth, presented: &[u8]) -> Option<Arc<str>> {
    let mut found = None;
    for key in &settings.keys {
        let equal = verify_slices_are_equal(key.key.as_bytes(), presented).is_ok();
        if equal && found.is_none() {
            found = Some(&key.client_id);
        }
    }
    found.map(Arc::clone)
}
