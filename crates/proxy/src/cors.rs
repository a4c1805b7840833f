//! The HTTPRoute `CORS` filter (GEP-1767) in the data plane: origin matching, preflight
//! answers and the headers of actual responses.
//!
//! Pure functions over request and response headers; `stack.rs` decides when they run. A
//! preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`, as the Fetch standard
//! defines it) on a rule with CORS is answered here and never forwarded: 200 with the CORS
//! headers when the origin is allowed, 200 without them when it is not (the API allows either
//! that or 403; Envoy also answers 200). Any other request is forwarded, and when its `Origin`
//! is allowed the response gets `Access-Control-Allow-Origin`, `-Allow-Credentials` and
//! `-Expose-Headers`, replacing what the backend set, as Envoy's CORS filter does.
//!
//! The `*` wildcard is never sent when `allowCredentials` is true: the gateway cannot tell
//! whether the browser will send credentials, and the Fetch standard ignores wildcards on
//! credentialed requests. The request's own origin, method or headers are echoed instead.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use snapshot::{CorsList, CorsPolicy, OriginHost, OriginPattern};

use crate::body::ResponseBody;

/// What the CORS filter decided for a request.
pub(crate) enum CorsVerdict {
    /// A preflight: answer with this response instead of forwarding.
    Respond(Response<ResponseBody>),
    /// Forward the request; the response gets these headers (`None`: the rule has no CORS).
    Continue(Option<CorsGrant>),
}

/// The CORS headers an actual (non-preflight) response gets.
#[derive(Debug)]
pub(crate) struct CorsGrant {
    /// `Access-Control-Allow-Origin`, when the request's origin is allowed.
    allow_origin: Option<HeaderValue>,
    allows_credentials: bool,
    expose_headers: CorsList,
    /// Whether the answer depends on `Origin`, so caches must key on it (`Vary: Origin`).
    varies_by_origin: bool,
}

static TRUE: HeaderValue = HeaderValue::from_static("true");
static ANY: HeaderValue = HeaderValue::from_static("*");
static ORIGIN_TEXT: HeaderValue = HeaderValue::from_static("Origin");

/// Applies the rule's CORS policy (if any) to a request.
pub(crate) fn check(
    policy: Option<&CorsPolicy>,
    method: &Method,
    headers: &HeaderMap,
) -> CorsVerdict {
    let Some(policy) = policy else {
        return CorsVerdict::Continue(None);
    };
    let origin = single(headers, &header::ORIGIN);
    let allow_origin = origin.and_then(|origin| allowed_origin(policy, origin));
    let is_preflight = method == Method::OPTIONS
        && origin.is_some()
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_preflight {
        return CorsVerdict::Respond(preflight_response(policy, allow_origin, headers));
    }
    CorsVerdict::Continue(Some(CorsGrant {
        allow_origin,
        allows_credentials: policy.allow_credentials,
        expose_headers: policy.expose_headers.clone(),
        varies_by_origin: varies_by_origin(policy),
    }))
}

/// Adds the grant's headers to a response of the rule.
pub(crate) fn decorate(headers: &mut HeaderMap, grant: &CorsGrant) {
    if let Some(origin) = &grant.allow_origin {
        allow(headers, grant, origin);
    }
    if grant.varies_by_origin {
        add_vary_origin(headers);
    }
}

/// The headers of an allowed actual request.
fn allow(headers: &mut HeaderMap, grant: &CorsGrant, origin: &HeaderValue) {
    match &grant.expose_headers {
        CorsList::Empty => {}
        CorsList::Listed(list) => {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, list.clone());
        }
        CorsList::Any if !grant.allows_credentials => {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, ANY.clone());
        }
        // Credentialed: `*` would be read literally, so name what this response carries.
        CorsList::Any => {
            if let Some(names) = response_header_names(headers) {
                headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, names);
            }
        }
    }
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if grant.allows_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone());
    }
}

/// The answer to a preflight request. `allow_origin` is `None` when the origin is not allowed:
/// the answer then carries no CORS header, and the browser fails the actual request.
fn preflight_response(
    policy: &CorsPolicy,
    allow_origin: Option<HeaderValue>,
    request: &HeaderMap,
) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::full(bytes::Bytes::new()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    if varies_by_origin(policy) {
        add_vary_origin(headers);
    }
    let Some(origin) = allow_origin else {
        return response;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    if policy.allow_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE.clone());
    }
    let echo = |name: HeaderName| single(request, &name).cloned();
    let credentials = policy.allow_credentials;
    let lists = [
        (
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &policy.allow_methods,
            echo(header::ACCESS_CONTROL_REQUEST_METHOD),
        ),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &policy.allow_headers,
            echo(header::ACCESS_CONTROL_REQUEST_HEADERS),
        ),
        // Nothing to echo for exposed headers before the response exists.
        (
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            &policy.expose_headers,
            None,
        ),
    ];
    for (name, list, requested) in lists {
        let value = match list {
            CorsList::Empty => None,
            CorsList::Listed(value) => Some(value.clone()),
            CorsList::Any if !credentials => Some(ANY.clone()),
            CorsList::Any => requested,
        };
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, policy.max_age.clone());
    response
}

/// The `Access-Control-Allow-Origin` value for an origin, or `None` when it is not allowed.
fn allowed_origin(policy: &CorsPolicy, origin: &HeaderValue) -> Option<HeaderValue> {
    if !origin_allowed(policy, origin.as_bytes()) {
        return None;
    }
    if policy.allows_any_origin() && !policy.allow_credentials {
        return Some(ANY.clone());
    }
    Some(origin.clone())
}

/// Whether `origin` (an `Origin` header value) matches one of the policy's `allowOrigins`.
/// An origin without a port has its scheme's default port, as the patterns do.
pub(crate) fn origin_allowed(policy: &CorsPolicy, origin: &[u8]) -> bool {
    if policy.allows_any_origin() {
        return true;
    }
    let Some(origin) = RequestOrigin::parse(origin) else {
        return false;
    };
    policy.allow_origins.iter().any(|pattern| match pattern {
        OriginPattern::Any => true,
        OriginPattern::Origin { scheme, host, port } => {
            *scheme == origin.scheme
                && Some(*port) == origin.port
                && match host {
                    OriginHost::Any => true,
                    OriginHost::Exact(exact) => *exact == origin.host,
                    OriginHost::Suffix(suffix) => {
                        origin.host.len() > suffix.len() && origin.host.ends_with(suffix.as_str())
                    }
                }
        }
    })
}

/// An `Origin` header value, split and lower-cased for matching.
#[derive(Debug, PartialEq, Eq)]
struct RequestOrigin {
    scheme: String,
    host: String,
    /// Explicit, or the default of `http`/`https`; `None` for other schemes without a port.
    port: Option<u16>,
}

impl RequestOrigin {
    /// `<scheme>://<host>[:<port>]` (RFC 6454 serialisation); `None` for `null` or anything
    /// else that is not an origin.
    fn parse(value: &[u8]) -> Option<RequestOrigin> {
        let text = std::str::from_utf8(value).ok()?.to_ascii_lowercase();
        let (scheme, rest) = text.split_once("://")?;
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        // An IPv6 literal keeps its brackets; its colons are not a port separator.
        let port_separator = match rest.rfind(']') {
            Some(end) => rest[end..].find(':').map(|i| end + i),
            None => rest.rfind(':'),
        };
        let (host, port) = match port_separator {
            Some(i) => (&rest[..i], Some(rest[i + 1..].parse::<u16>().ok()?)),
            None => (rest, None),
        };
        let port = port.or(match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        if host.is_empty() {
            return None;
        }
        Some(RequestOrigin {
            scheme: scheme.to_owned(),
            host: host.to_owned(),
            port,
        })
    }
}

/// Whether the policy's answers differ by `Origin` (everything except a bare `*` without
/// credentials).
fn varies_by_origin(policy: &CorsPolicy) -> bool {
    !policy.allows_any_origin() || policy.allow_credentials
}

/// The header's value when it appears exactly once.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first)
}

/// Adds `Vary: Origin` unless the response already varies by it (or by everything).
fn add_vary_origin(headers: &mut HeaderMap) {
    let covered = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|name| name == "*" || name.eq_ignore_ascii_case("origin"));
    if !covered {
        headers.append(header::VARY, ORIGIN_TEXT.clone());
    }
}

/// The names of the response's headers, for a credentialed `exposeHeaders: ["*"]`.
fn response_header_names(headers: &HeaderMap) -> Option<HeaderValue> {
    let names: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| !name.starts_with("access-control-") && *name != "set-cookie")
        .collect();
    if names.is_empty() {
        return None;
    }
    HeaderValue::from_str(&names.join(", ")).ok()
}

#[cfg(test)]
mod tests;
