//! Finding a credential in a request, and taking it out again.
//!
//! Owns the three places a [`TokenSource`] names: a header with a value prefix, a cookie and
//! a query parameter. Finding borrows from the request and allocates only when the value must
//! be decoded (a non-UTF-8 header, a percent-encoded query value); removing rewrites the
//! request and runs only once a credential was accepted. It does not judge credentials: the
//! JWT, API key and basic modules do.
//!
//! Decisions:
//! - a header prefix (`Bearer `) is compared case-insensitively (RFC 9110 §11.1: the scheme is
//!   case-insensitive) and any extra spaces after it are skipped; an empty value is no
//!   credential;
//! - query values are percent-decoded but `+` stays `+` (keys are often base64, whose `+` a
//!   form decoder would corrupt);
//! - removal takes out only what carried the credential: the header values with the prefix
//!   (so a `Basic` `Authorization` survives a `Bearer` removal), the one cookie, the one query
//!   parameter (the rest of the query is kept byte for byte).

use std::borrow::Cow;

use http::header::COOKIE;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use snapshot::security::TokenSource;

/// The first credential `sources` find in the request, in the order of `sources`, with the
/// source that found it.
pub(crate) fn find<'r, 's>(
    sources: &'s [TokenSource],
    parts: &'r Parts,
) -> Option<(Cow<'r, str>, &'s TokenSource)> {
    sources.iter().find_map(|source| {
        let value = match source {
            TokenSource::Header { name, value_prefix } => {
                from_header(&parts.headers, name, value_prefix)
            }
            TokenSource::Cookie(name) => from_cookie(&parts.headers, name),
            TokenSource::Query(name) => from_query(&parts.uri, name),
        }?;
        Some((value, source))
    })
}

/// Takes the credential `source` names out of the request. Returns whether the request is
/// now free of it (`false` only if the rewritten URI could not be built, which a query that
/// parsed as a URI cannot cause).
pub(crate) fn remove(source: &TokenSource, parts: &mut Parts) -> bool {
    match source {
        TokenSource::Header { name, value_prefix } => {
            remove_header_values(&mut parts.headers, name, value_prefix);
            true
        }
        TokenSource::Cookie(name) => {
            remove_cookie(&mut parts.headers, name);
            true
        }
        TokenSource::Query(name) => remove_query(&mut parts.uri, name),
    }
}

/// The value after `prefix` (case-insensitive, then leading spaces skipped), if `value` has it.
fn strip_prefix<'v>(value: &'v [u8], prefix: &str) -> Option<&'v [u8]> {
    let head = value.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix.as_bytes()) {
        return None;
    }
    let rest = value.get(prefix.len()..)?;
    let start = rest
        .iter()
        .position(|byte| *byte != b' ' && *byte != b'\t')?;
    rest.get(start..)
}

fn from_header<'r>(
    headers: &'r HeaderMap,
    name: &HeaderName,
    prefix: &str,
) -> Option<Cow<'r, str>> {
    headers.get_all(name).iter().find_map(|value| {
        let rest = strip_prefix(value.as_bytes(), prefix)?;
        // A non-UTF-8 value is still a credential (that will not verify), not an absent one.
        Some(String::from_utf8_lossy(rest))
    })
}

/// `name=value` pairs of every `Cookie` header (HTTP/2 may split them, RFC 9113 §8.2.3).
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.trim(), value.trim()))
        })
}

fn from_cookie<'r>(headers: &'r HeaderMap, name: &str) -> Option<Cow<'r, str>> {
    let (_, value) = cookies(headers).find(|(found, _)| *found == name)?;
    // RFC 6265 §4.1.1: a cookie value may be wrapped in double quotes.
    let value = value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or(value);
    (!value.is_empty()).then_some(Cow::Borrowed(value))
}

/// `name=value` pairs of a query, raw (not decoded).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

fn from_query<'r>(uri: &'r Uri, name: &str) -> Option<Cow<'r, str>> {
    let (_, value) = query_pairs(uri.query()?).find(|(found, _)| percent_decode(found) == name)?;
    (!value.is_empty()).then(|| percent_decode(value))
}

/// Percent-decodes `text`; a `%` not followed by two hex digits stays as it is, and bytes that
/// are not UTF-8 become U+FFFD.
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = (byte == b'%')
            .then(|| Some((hex(*bytes.get(index + 1)?)?, hex(*bytes.get(index + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                decoded.push((high << 4) | low);
                index += 3;
            }
            None => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

fn remove_header_values(headers: &mut HeaderMap, name: &HeaderName, prefix: &str) {
    if prefix.is_empty() {
        headers.remove(name);
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(name)
        .iter()
        .filter(|value| strip_prefix(value.as_bytes(), prefix).is_none())
        .cloned()
        .collect();
    headers.remove(name);
    for value in kept {
        headers.append(name.clone(), value);
    }
}

fn remove_cookie(headers: &mut HeaderMap, name: &str) {
    let kept: Vec<String> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            pair.split_once('=')
                .map_or(*pair, |(found, _)| found.trim())
                != name
        })
        .map(str::to_owned)
        .collect();
    headers.remove(COOKIE);
    if kept.is_empty() {
        return;
    }
    // Cookie values are visible ASCII (they came from a `to_str` header), so joining them
    // cannot make an invalid header value; `if let` keeps that from being a panic anyway.
    if let Ok(value) = HeaderValue::from_str(&kept.join("; ")) {
        headers.insert(COOKIE, value);
    }
}

fn remove_query(uri: &mut Uri, name: &str) -> bool {
    let Some(query) = uri.query() else {
        return true;
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let found = pair.split_once('=').map_or(*pair, |(found, _)| found);
            percent_decode(found) != name
        })
        .collect();
    let mut path_and_query = uri.path().to_owned();
    if !kept.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&kept.join("&"));
    }
    let Ok(path_and_query) = PathAndQuery::try_from(path_and_query) else {
        return false;
    };
    let mut uri_parts = uri.clone().into_parts();
    uri_parts.path_and_query = Some(path_and_query);
    match Uri::from_parts(uri_parts) {
        Ok(rewritten) => {
            *uri = rewritten;
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests;
