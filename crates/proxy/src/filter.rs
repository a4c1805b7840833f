//! HTTPRoute filters applied by the data plane: header modifiers, redirects and URL rewrites.
//!
//! Pure functions over request/response parts; `stack.rs` decides when each runs.

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{PathAndQuery, Uri};
use http::{Response, StatusCode};
use router::PathMatch;
use snapshot::{HeaderModifier, PathModifier, Redirect, UrlRewrite};

use crate::body::ResponseBody;

/// Applies a header modifier: set (replace), then add (append), then remove.
pub(crate) fn modify_headers(headers: &mut HeaderMap, modifier: &HeaderModifier) {
    for (name, value) in &modifier.set {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &modifier.add {
        headers.append(name.clone(), value.clone());
    }
    for name in &modifier.remove {
        headers.remove(name);
    }
}

/// The path after a path modifier. `matched` is the rule's path match; ReplacePrefixMatch only
/// applies after a PathPrefix match (compile guarantees that), following the table in the
/// HTTPPathModifier documentation: the matched prefix (without a trailing `/`) is replaced by
/// the replacement (without a trailing `/`), and an empty result is `/`.
pub(crate) fn modified_path(path: &str, modifier: &PathModifier, matched: &PathMatch) -> String {
    match modifier {
        PathModifier::ReplaceFullPath(full) => {
            if full.is_empty() {
                "/".to_owned()
            } else {
                full.clone()
            }
        }
        PathModifier::ReplacePrefixMatch(replacement) => {
            let PathMatch::Prefix(prefix) = matched else {
                return path.to_owned();
            };
            let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
            let remainder = path.get(prefix.len()..).unwrap_or("");
            let replacement = replacement.strip_suffix('/').unwrap_or(replacement);
            let joined = format!("{replacement}{remainder}");
            if joined.is_empty() {
                "/".to_owned()
            } else {
                joined
            }
        }
    }
}

/// The redirect response for a request (`Location` per the HTTPRequestRedirectFilter rules).
pub(crate) fn redirect_response(
    redirect: &Redirect,
    request_scheme: &str,
    request_host: &str,
    listener_port: u16,
    path_and_query: Option<&PathAndQuery>,
    matched: &PathMatch,
) -> Response<ResponseBody> {
    let scheme = redirect.scheme.as_deref().unwrap_or(request_scheme);
    let host = redirect
        .hostname
        .as_deref()
        .unwrap_or_else(|| router::strip_port(request_host));
    // Port: explicit; else the well-known port of an explicitly changed scheme; else the
    // listener's port. Default ports are left out of Location.
    let scheme_port = match redirect.scheme.as_deref() {
        Some("https") => 443,
        Some("http") => 80,
        _ => listener_port,
    };
    let port = redirect.port.unwrap_or(scheme_port);
    let is_default_port = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
    let original_path = path_and_query.map_or("/", PathAndQuery::path);
    let path = match &redirect.path {
        Some(modifier) => modified_path(original_path, modifier, matched),
        None => original_path.to_owned(),
    };
    let mut location = format!("{scheme}://{host}");
    if !is_default_port {
        location.push_str(&format!(":{port}"));
    }
    location.push_str(&path);
    if let Some(query) = path_and_query.and_then(PathAndQuery::query) {
        location.push('?');
        location.push_str(query);
    }
    let mut response = Response::new(ResponseBody::full(bytes::Bytes::new()));
    *response.status_mut() = redirect.status;
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR,
    }
    response
}

/// Applies a URL rewrite to request parts: the new host goes to `Host` (and the URI loses any
/// authority, so `:authority` follows `Host`), the new path keeps the query.
pub(crate) fn rewrite_request(
    parts: &mut http::request::Parts,
    rewrite: &UrlRewrite,
    matched: &PathMatch,
) {
    if let Some(hostname) = &rewrite.hostname {
        parts.headers.insert(header::HOST, hostname.clone());
    }
    let path_and_query = parts.uri.path_and_query().cloned();
    let new_path = rewrite.path.as_ref().map(|modifier| {
        let path = path_and_query.as_ref().map_or("/", PathAndQuery::path);
        let path = modified_path(path, modifier, matched);
        match path_and_query.as_ref().and_then(PathAndQuery::query) {
            Some(query) => format!("{path}?{query}"),
            None => path,
        }
    });
    if rewrite.hostname.is_none() && new_path.is_none() {
        return;
    }
    let path_and_query = match new_path {
        Some(path) => PathAndQuery::try_from(path).ok().or(path_and_query),
        None => path_and_query,
    };
    let mut uri = http::uri::Parts::default();
    if rewrite.hostname.is_none() {
        uri.scheme = parts.uri.scheme().cloned();
        uri.authority = parts.uri.authority().cloned();
    }
    uri.path_and_query = path_and_query;
    if let Ok(rebuilt) = Uri::from_parts(uri) {
        parts.uri = rebuilt;
    }
}

#[cfg(test)]
mod tests;
