//! The HTTPRoute `CORS` filter (GEP-1767): validation and conversion to
//! [`snapshot::CorsPolicy`].
//!
//! Validates what the Gateway API v1.6 CRD would at apply time, since standalone mode has no API
//! server to do it: origins as `<scheme>://<host>[:<port>]` with the wildcard only as the whole
//! host or its first label; methods from the CRD's enum (the nine RFC 9110 / RFC 5789 methods or
//! `*`); header names; every list a set (no entry twice); `*` alone or not at all in
//! `allowOrigins`, `allowMethods` and `allowHeaders` (the CRD's CEL rules; `exposeHeaders` has
//! none); `maxAge >= 1`. It pre-joins the header values the data plane sends. Matching origins
//! is the data plane's job.

use http::{HeaderName, HeaderValue};
use model::gateway_api::HttpRouteRulesFiltersCors;
use snapshot::{CorsList, CorsPolicy, OriginHost, OriginPattern};

use crate::problems::{FieldPath, Problem};

/// `Access-Control-Max-Age` when `maxAge` is unset (the API's documented default).
const DEFAULT_MAX_AGE_SECONDS: i32 = 5;

/// The `allowMethods` enum of the CRD (besides `*`).
const ALLOWED_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Whether a `*` entry must be the list's only entry (the CRD's CEL rule on the list).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wildcard {
    /// `allowOrigins`, `allowMethods`, `allowHeaders`: `*` together with other entries is
    /// refused.
    Alone,
    /// `exposeHeaders`: no such rule; `*` anywhere exposes every header.
    Anywhere,
}

/// Compiles one `cors` block. `at` is its field path (`HTTPRoute a/b rules[0].filters[1].cors`).
/// The first invalid field fails the block.
pub(crate) fn compile_cors(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersCors,
) -> Result<CorsPolicy, Problem> {
    let origins = at.field("allowOrigins");
    let origin_entries = spec.allow_origins.as_deref().unwrap_or_default();
    check_set(&origins, origin_entries, Wildcard::Alone)?;
    let allow_origins = origin_entries
        .iter()
        .enumerate()
        .map(|(i, origin)| {
            parse_origin(origin).map_err(|e| origins.index(i).problem(format!("{origin:?} {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let allow_methods = list(
        &at.field("allowMethods"),
        spec.allow_methods.as_deref(),
        Wildcard::Alone,
        |method| ALLOWED_METHODS.contains(&method),
        "is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or \"*\"",
    )?;
    let is_header_name = |name: &str| HeaderName::from_bytes(name.as_bytes()).is_ok();
    let allow_headers = list(
        &at.field("allowHeaders"),
        spec.allow_headers.as_deref(),
        Wildcard::Alone,
        is_header_name,
        "is not a header name",
    )?;
    let expose_headers = list(
        &at.field("exposeHeaders"),
        spec.expose_headers.as_deref(),
        Wildcard::Anywhere,
        is_header_name,
        "is not a header name",
    )?;
    let max_age = spec.max_age.unwrap_or(DEFAULT_MAX_AGE_SECONDS);
    if max_age < 1 {
        return Err(at
            .field("maxAge")
            .problem(format!("{max_age} must be at least 1 (seconds)")));
    }
    Ok(CorsPolicy {
        allow_origins,
        allow_credentials: spec.allow_credentials.unwrap_or(false),
        allow_methods,
        allow_headers,
        expose_headers,
        max_age: HeaderValue::from(max_age),
    })
}

/// An allow/expose list, checked as a set (see [`check_set`]): a `*` entry makes it
/// [`CorsList::Any`]; otherwise the entries, validated, joined with `, `.
fn list(
    at: &FieldPath,
    entries: Option<&[String]>,
    wildcard: Wildcard,
    is_valid: impl Fn(&str) -> bool,
    invalid: &str,
) -> Result<CorsList, Problem> {
    let entries = entries.unwrap_or_default();
    if entries.is_empty() {
        return Ok(CorsList::Empty);
    }
    check_set(at, entries, wildcard)?;
    if entries.iter().any(|entry| entry == "*") {
        return Ok(CorsList::Any);
    }
    for (i, entry) in entries.iter().enumerate() {
        if !is_valid(entry) {
            return Err(at.index(i).problem(format!("{entry:?} {invalid}")));
        }
    }
    let joined = entries.join(", ");
    HeaderValue::from_str(&joined)
        .map(CorsList::Listed)
        .map_err(|_| at.problem(format!("{joined:?} is not a valid header value")))
}

/// The list rules the CRD states on every CORS list: a set (`x-kubernetes-list-type: set`, so
/// an entry may not repeat, compared as written) and, for [`Wildcard::Alone`] lists, `*` only
/// as the sole entry.
fn check_set(at: &FieldPath, entries: &[String], wildcard: Wildcard) -> Result<(), Problem> {
    for (i, entry) in entries.iter().enumerate() {
        if let Some(first) = entries[..i].iter().position(|e| e == entry) {
            return Err(at.index(i).problem(format!(
                "{entry:?} is already listed at [{first}]; the list is a set"
            )));
        }
    }
    if wildcard == Wildcard::Alone && entries.len() > 1 && entries.iter().any(|e| e == "*") {
        return Err(at.problem("\"*\" must be the only entry when it is used"));
    }
    Ok(())
}

/// Parses an `allowOrigins` entry. The error completes "`<origin>` ...".
pub(crate) fn parse_origin(text: &str) -> Result<OriginPattern, String> {
    if text == "*" {
        return Ok(OriginPattern::Any);
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err("must be \"*\" or <scheme>://<host>[:<port>]".to_owned());
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err("has a scheme other than http or https".to_owned()),
    };
    if rest.contains(['/', '?', '#']) {
        return Err("must not have a path, query or fragment".to_owned());
    }
    let (host, port) = match rest.rsplit_once(':') {
        None => (rest, default_port),
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("has an invalid port {port:?} (1-65535)"))?;
            (host, port)
        }
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        OriginHost::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        check_host(suffix)?;
        OriginHost::Suffix(format!(".{suffix}"))
    } else {
        check_host(&host)?;
        OriginHost::Exact(host)
    };
    Ok(OriginPattern::Origin { scheme, host, port })
}

/// DNS labels (letters, digits, `-`, `_`) separated by dots; the CRD's pattern.
fn check_host(host: &str) -> Result<(), String> {
    if host.contains('*') {
        return Err(
            "may only use the wildcard as the whole host or as its first label (*.example.com)"
                .to_owned(),
        );
    }
    let is_label = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !host.split('.').all(is_label) {
        return Err(format!("has an invalid host {host:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
