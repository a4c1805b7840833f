//! What OIDC reads from the client's request: whether it is a page navigation, its host, the
//! page to come back to, and the callback's parameters.
//!
//! A **navigation** is a `GET` or `HEAD` whose `Accept` names `text/html` or is absent (a
//! browser typing a URL or following a link always sends one with `text/html`; `curl` sends
//! `*/*`, and a request with no `Accept` at all is most likely a browser-like tool), unless the
//! browser itself says it is not one (`Sec-Fetch-Mode` other than `navigate`, or
//! `X-Requested-With`). Only navigations are sent to the provider: an API client or a script's
//! `fetch` cannot follow a login page, so it gets 401 instead.
//!
//! The page to come back to is the request's **path and query only**, never a URL or a host
//! taken from the request, so the callback cannot be made to redirect elsewhere (no open
//! redirect): a path starting with `//` or `/\` (which browsers read as another host) becomes
//! `/`, and so does one longer than [`MAX_ORIGINAL_BYTES`] (the flow cookie must stay small).

use http::header::{ACCEPT, HOST};
use http::request::Parts;
use http::uri::Authority;
use http::{HeaderName, Method};

/// The longest path-and-query remembered for the return after login.
pub(crate) const MAX_ORIGINAL_BYTES: usize = 2048;
/// The longest callback query looked at.
const MAX_QUERY_BYTES: usize = 8 * 1024;

/// Whether `parts` is a browser navigating to a page (see the module doc).
pub(crate) fn is_navigation(parts: &Parts) -> bool {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return false;
    }
    let header = |name: &str| {
        parts
            .headers
            .get(HeaderName::from_bytes(name.as_bytes()).ok()?)
            .and_then(|value| value.to_str().ok())
    };
    if header("sec-fetch-mode").is_some_and(|mode| !mode.eq_ignore_ascii_case("navigate")) {
        return false;
    }
    if header("x-requested-with").is_some() {
        return false;
    }
    let accepts: Vec<&str> = parts
        .headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    accepts.is_empty()
        || accepts.iter().any(|accept| {
            accept
                .split(',')
                .any(|range| range.trim().to_ascii_lowercase().starts_with("text/html"))
        })
}

/// The request's host (and port): the URI's authority (HTTP/2 `:authority`, absolute-form),
/// else `Host`. `None` when absent, invalid, or carrying userinfo.
pub(crate) fn host(parts: &Parts) -> Option<String> {
    let authority = match parts.uri.authority() {
        Some(authority) => authority.clone(),
        None => {
            let value = parts.headers.get(HOST)?.to_str().ok()?;
            value.parse::<Authority>().ok()?
        }
    };
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    Some(authority.as_str().to_owned())
}

/// `target` made absolute on the request's own host when it is a path; as is otherwise.
pub(crate) fn absolute(target: &str, scheme: &str, parts: &Parts) -> Option<String> {
    if target.starts_with('/') {
        Some(format!("{scheme}://{}{target}", host(parts)?))
    } else {
        Some(target.to_owned())
    }
}

/// The path and query to return to after login (see the module doc).
pub(crate) fn original(parts: &Parts) -> String {
    let Some(path_and_query) = parts.uri.path_and_query() else {
        return "/".to_owned();
    };
    let text = path_and_query.as_str();
    let is_local = text.starts_with('/') && !text.starts_with("//") && !text.starts_with("/\\");
    if !is_local || text.len() > MAX_ORIGINAL_BYTES {
        return "/".to_owned();
    }
    text.to_owned()
}

/// The parameters of the provider's redirect back to us (OIDC Core §3.1.2.5, §3.1.2.6;
/// RFC 9207 `iss`). Each is the first occurrence; a query over 8 KiB is read as empty.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Callback {
    /// The authorization code.
    pub(crate) code: Option<String>,
    /// The state we sent.
    pub(crate) state: Option<String>,
    /// The provider's error code.
    pub(crate) error: Option<String>,
    /// The issuer that answered (RFC 9207).
    pub(crate) iss: Option<String>,
}

impl Callback {
    /// Reads the callback parameters from the request's query.
    pub(crate) fn parse(parts: &Parts) -> Callback {
        let mut callback = Callback::default();
        let query = parts.uri.query().unwrap_or("");
        if query.len() > MAX_QUERY_BYTES {
            return callback;
        }
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "code" => &mut callback.code,
                "state" => &mut callback.state,
                "error" => &mut callback.error,
                "iss" => &mut callback.iss,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        callback
    }
}
