//! The suite's `CompareRoundTrip` (conformance README section 2): whether one captured round trip matches a
//! case.
//!
//! Owns the exact rules, in the suite's order: the status set with 408 and 504 as one; for 200 and 204 the
//! backend's host, path (exact, query included), method, namespace (exact), request headers, response headers,
//! absent headers and pod-name prefix; for a 3xx the parsed `Location` with its defaults. Messages follow the
//! suite's wording so that a failure reads like the Go one.

use std::collections::BTreeMap;

use http::HeaderMap;

use crate::cases::{RedirectSpec, ResponseSpec};
use crate::exchange::Captured;

/// Everything one round trip is compared against, with the case's defaults already applied.
pub(crate) struct Expectation<'a> {
    /// Acceptable statuses.
    pub(crate) statuses: Vec<u16>,
    /// The request's scheme (`http` or `https`).
    pub(crate) scheme: &'static str,
    /// The request URL's host (the gateway address, port omitted when default): what a relative `Location`
    /// resolves against.
    pub(crate) request_authority: &'a str,
    /// The request URL's path, without the query: the default redirect path.
    pub(crate) request_path: &'a str,
    /// The backend must see this `Host`, unless empty.
    pub(crate) host: &'a str,
    /// The backend must see exactly this RequestURI.
    pub(crate) path: &'a str,
    /// The backend must see this method.
    pub(crate) method: &'a str,
    /// Request headers the backend must see, with these values.
    pub(crate) request_headers: Option<&'a BTreeMap<String, String>>,
    /// Request headers the backend must not see.
    pub(crate) absent_request_headers: &'a [String],
    /// The echo's `httpPort`, when set.
    pub(crate) http_port: Option<&'a str>,
    /// The echo's namespace (exact).
    pub(crate) namespace: &'a str,
    /// The pod-name prefix ("" matches any pod).
    pub(crate) backend: &'a str,
    /// Response expectations.
    pub(crate) response: &'a ResponseSpec,
    /// The expected `Location`, for redirects.
    pub(crate) redirect: Option<&'a RedirectSpec>,
}

/// Whether `captured` matches `expected`; the error says what differed, expected before got.
pub(crate) fn compare(expected: &Expectation<'_>, captured: &Captured) -> Result<(), String> {
    let is_timeout = |status: u16| status == 408 || status == 504;
    if is_timeout(captured.status) && expected.statuses.iter().any(|status| is_timeout(*status)) {
        return Ok(());
    }
    if !expected.statuses.contains(&captured.status) {
        return Err(format!(
            "expected status code to be one of {:?}, got {}",
            expected.statuses, captured.status
        ));
    }
    match captured.status {
        200 | 204 => compare_echo(expected, captured),
        300..=308 if captured.status != 306 => match expected.redirect {
            Some(redirect) => compare_redirect(expected, redirect, captured),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The 200/204 checks.
fn compare_echo(expected: &Expectation<'_>, captured: &Captured) -> Result<(), String> {
    let seen = &captured.request;
    if !expected.host.is_empty() && expected.host != seen.host {
        return Err(format!(
            "expected host to be {}, got {}",
            expected.host, seen.host
        ));
    }
    if expected.path != seen.path {
        return Err(format!(
            "expected path to be {}, got {}",
            expected.path, seen.path
        ));
    }
    if expected.method != seen.method {
        return Err(format!(
            "expected method to be {}, got {}",
            expected.method, seen.method
        ));
    }
    if expected.namespace != seen.namespace {
        return Err(format!(
            "expected namespace to be {:?}, got {:?}",
            expected.namespace, seen.namespace
        ));
    }
    for (name, value) in expected.request_headers.into_iter().flatten() {
        match seen.header(name) {
            None => {
                return Err(format!(
                    "expected request header {name} to be set, backend saw headers {:?}",
                    seen.headers
                ));
            }
            Some(actual) if actual != *value => {
                return Err(format!(
                    "expected request header {name} to be set to {value}, got {actual}"
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(port) = expected.http_port.filter(|port| !port.is_empty())
        && port != seen.http_port
    {
        return Err(format!(
            "expected httpPort {port:?}, got {:?}",
            seen.http_port
        ));
    }
    compare_response_headers(expected.response, &captured.headers)?;
    for name in expected.absent_request_headers {
        if let Some(actual) = seen.header(name) {
            return Err(format!(
                "expected request header {name} to not be set, got {actual}"
            ));
        }
    }
    if !seen.pod.starts_with(expected.backend) {
        return Err(format!(
            "expected pod name to start with {}, got {:?}",
            expected.backend, seen.pod
        ));
    }
    Ok(())
}

/// Response `headers`, `valid_header_values` and `absent_headers`.
fn compare_response_headers(response: &ResponseSpec, headers: &HeaderMap) -> Result<(), String> {
    let normalise = |value: &str| -> String {
        if response.ignore_whitespace {
            value.chars().filter(|c| !c.is_whitespace()).collect()
        } else {
            value.to_owned()
        }
    };
    for (name, value) in &response.headers {
        let Some(actual) = joined(headers, name) else {
            return Err(format!(
                "expected response header {name} to be set, got headers {}",
                describe_headers(headers)
            ));
        };
        if normalise(&actual) != normalise(value) {
            return Err(format!(
                "expected response header {name} to be set to {value}, got {actual}"
            ));
        }
    }
    for (name, valid) in &response.valid_header_values {
        let Some(actual) = joined(headers, name) else {
            return Err(format!(
                "expected response header {name} to be one of {valid:?}, but it is not set"
            ));
        };
        if !valid
            .iter()
            .any(|candidate| normalise(candidate) == normalise(&actual))
        {
            return Err(format!(
                "expected response header {name} to be one of {valid:?}, got {actual:?}"
            ));
        }
    }
    for name in &response.absent_headers {
        if let Some(actual) = joined(headers, name) {
            return Err(format!(
                "expected response header {name} to not be set, got {actual}"
            ));
        }
    }
    Ok(())
}

/// The 3xx checks, with the suite's defaults: the request's scheme, the Location's own host, the request path,
/// and "80 or absent" / "443 or absent" for an unspecified port.
fn compare_redirect(
    expected: &Expectation<'_>,
    redirect: &RedirectSpec,
    captured: &Captured,
) -> Result<(), String> {
    let Some(location) = captured.headers.get(http::header::LOCATION) else {
        return Err(format!(
            "a {} response without a Location header",
            captured.status
        ));
    };
    let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
    let got = ParsedLocation::resolve(
        &location,
        expected.scheme,
        expected.request_authority,
        expected.request_path,
    );
    let want_host = if redirect.host.is_empty() {
        &got.host
    } else {
        &redirect.host
    };
    if *want_host != got.host {
        return Err(format!(
            "expected redirected hostname to be {want_host:?}, got {:?} (Location {location:?})",
            got.host
        ));
    }
    if redirect.port.is_empty() {
        let scheme = got.scheme.to_ascii_lowercase();
        if scheme == "http" && got.port != "80" && !got.port.is_empty() {
            return Err(format!(
                "for http scheme, expected redirected port to be 80 or not set, got {:?} (Location {location:?})",
                got.port
            ));
        }
        if scheme == "https" && got.port != "443" && !got.port.is_empty() {
            return Err(format!(
                "for https scheme, expected redirected port to be 443 or not set, got {:?} (Location {location:?})",
                got.port
            ));
        }
    } else if redirect.port != got.port {
        return Err(format!(
            "expected redirected port to be {:?}, got {:?} (Location {location:?})",
            redirect.port, got.port
        ));
    }
    let want_scheme = if redirect.scheme.is_empty() {
        expected.scheme
    } else {
        &redirect.scheme
    };
    if want_scheme != got.scheme {
        return Err(format!(
            "expected redirected scheme to be {want_scheme:?}, got {:?} (Location {location:?})",
            got.scheme
        ));
    }
    let want_path = if redirect.path.is_empty() {
        expected.request_path
    } else {
        &redirect.path
    };
    if want_path != got.path {
        return Err(format!(
            "expected redirected path to be {want_path:?}, got {:?} (Location {location:?})",
            got.path
        ));
    }
    Ok(())
}

/// A `Location` resolved against the request URL, split the way Go's `url.URL` splits it.
#[derive(Debug, PartialEq, Eq)]
struct ParsedLocation {
    /// Scheme.
    scheme: String,
    /// Host without port or brackets (`URL.Hostname()`).
    host: String,
    /// Port, "" when absent (`URL.Port()`).
    port: String,
    /// Decoded path, without query or fragment (`URL.Path`).
    path: String,
}

impl ParsedLocation {
    /// Resolves `location` (absolute, scheme-relative or path-relative) against `scheme://authority/path`.
    fn resolve(location: &str, scheme: &str, authority: &str, request_path: &str) -> Self {
        let (location_scheme, rest) = match location.split_once("://") {
            Some((candidate, rest))
                if !candidate.is_empty()
                    && candidate
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
            {
                (candidate.to_owned(), Some(rest))
            }
            _ => (scheme.to_owned(), location.strip_prefix("//")),
        };
        let (location_authority, reference) = match rest {
            Some(rest) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                (rest[..end].to_owned(), rest[end..].to_owned())
            }
            None => (authority.to_owned(), location.to_owned()),
        };
        let reference = reference.split(['?', '#']).next().unwrap_or("").to_owned();
        let path = if rest.is_some() || reference.starts_with('/') {
            reference
        } else if reference.is_empty() {
            request_path.to_owned()
        } else {
            // A relative path replaces the last segment of the request path (RFC 3986 section 5.2.3).
            let base = request_path
                .rfind('/')
                .map_or("/", |slash| &request_path[..=slash]);
            format!("{base}{reference}")
        };
        let (host, port) = split_authority(&location_authority);
        Self {
            scheme: location_scheme,
            host,
            port,
            path: percent_decode(&path),
        }
    }
}

/// Splits `user@host:port` (or `[v6]:port`) into host and port.
fn split_authority(authority: &str) -> (String, String) {
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']').unwrap_or((bracketed, ""));
        return (
            host.to_owned(),
            rest.strip_prefix(':').unwrap_or("").to_owned(),
        );
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), port.to_owned()),
        None => (authority.to_owned(), String::new()),
    }
}

/// Decodes `%XX` escapes (invalid escapes are kept as written).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escape = bytes
            .get(index + 1..index + 3)
            .filter(|_| bytes[index] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Every value of header `name`, joined with `,` as Go joins `Header[name]`; `None` when absent.
fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// `name: value` pairs for error messages.
fn describe_headers(headers: &HeaderMap) -> String {
    let pairs: Vec<String> = headers
        .iter()
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect();
    format!("[{}]", pairs.join(", "))
}

#[cfg(test)]
mod tests;
