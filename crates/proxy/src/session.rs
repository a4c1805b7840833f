//! Session persistence (GEP-1619): the rule's session cookie or header carries a token naming
//! the endpoint that served the client; a request with a valid token goes to that endpoint
//! while it is still in the chosen backend and available.
//!
//! The token is opaque to clients: the hex of the endpoint's `ip:port` and a 64-bit keyed
//! hash (SipHash) of it, so a client cannot point the gateway at an address of its choosing.
//! The key is random per process: sessions do not survive a gateway restart, and replicas do
//! not share them (a client moved to another replica is balanced anew and gets a new token).
//!
//! Also here: the cookie of a BackendTrafficPolicy `ConsistentHash` on a cookie, which the
//! gateway makes up (random) when the request has none ([`hash_cookie`]).

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use snapshot::session::{SessionKind, SessionPersistence};
use upstream::policy::{Balancer, HashKey};
use upstream::{BackendRuntime, EndpointRuntime};

/// The per-process key of the token hash.
static KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// The endpoint named by the request's valid session token, if any.
pub(crate) fn requested(
    session: Option<&SessionPersistence>,
    headers: &HeaderMap,
) -> Option<SocketAddr> {
    let token = match &session?.kind {
        SessionKind::Cookie { name, .. } => cookie(headers, name)?,
        SessionKind::Header { name } => headers.get(name)?.to_str().ok()?.trim(),
    };
    decode(token)
}

/// The pinned endpoint, when it is still one of `backend`'s endpoints and available.
pub(crate) fn pinned(backend: &BackendRuntime, addr: SocketAddr) -> Option<Arc<EndpointRuntime>> {
    backend
        .endpoints()
        .endpoints()
        .iter()
        .find(|e| e.addr() == addr && e.weight() > 0 && e.is_available())
        .cloned()
}

/// Gives the client a token for `addr`: `Set-Cookie` or the session header.
pub(crate) fn issue(session: &SessionPersistence, addr: SocketAddr, headers: &mut HeaderMap) {
    let token = encode(addr);
    match &session.kind {
        SessionKind::Cookie { name, max_age } => {
            let mut cookie = format!("{name}={token}; Path=/; HttpOnly");
            if let Some(max_age) = max_age {
                cookie.push_str(&format!("; Max-Age={}", max_age.as_secs()));
            }
            if let Ok(value) = HeaderValue::try_from(cookie) {
                headers.append(SET_COOKIE, value);
            }
        }
        SessionKind::Header { name } => {
            if let Ok(value) = HeaderValue::try_from(token) {
                headers.insert(name.clone(), value);
            }
        }
    }
}

/// `ConsistentHash` on a cookie the request lacks: adds a random value for it to the request
/// (so the pick hashes it, and the backend sees what the client will send next) and returns
/// the `Set-Cookie` for the response (`Max-Age` = the policy's `ttl`).
pub(crate) fn hash_cookie(
    backend: &BackendRuntime,
    headers: &mut HeaderMap,
) -> Option<HeaderValue> {
    let policy = backend.policy();
    let Balancer::ConsistentHash(HashKey::Cookie { name, ttl }) = &policy.balancer else {
        return None;
    };
    if cookie(headers, name).is_some() {
        return None;
    }
    let pair = format!("{name}={:032x}", rand::random::<u128>());
    // HTTP/2 clients may split cookies over several headers: one header for the backend.
    let mut request = String::new();
    for existing in headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        request.push_str(existing);
        request.push_str("; ");
    }
    request.push_str(&pair);
    let mut set = format!("{pair}; Path=/; HttpOnly");
    if let Some(ttl) = ttl {
        set.push_str(&format!("; Max-Age={}", ttl.as_secs()));
    }
    let set = HeaderValue::try_from(set).ok()?;
    headers.insert(COOKIE, HeaderValue::try_from(request).ok()?);
    Some(set)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.trim_matches('"'))
        })
}

fn tag(addr: &str) -> u64 {
    KEY.hash_one(addr)
}

fn encode(addr: SocketAddr) -> String {
    let addr = addr.to_string();
    let mut token = String::with_capacity(addr.len() * 2 + 17);
    for byte in addr.bytes() {
        token.push_str(&format!("{byte:02x}"));
    }
    token.push('.');
    token.push_str(&format!("{:016x}", tag(&addr)));
    token
}

fn decode(token: &str) -> Option<SocketAddr> {
    let (hex, checksum) = token.split_once('.')?;
    if hex.len() % 2 != 0 || hex.len() > 128 || checksum.len() != 16 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let addr = String::from_utf8(bytes).ok()?;
    let checksum = u64::from_str_radix(checksum, 16).ok()?;
    (checksum == tag(&addr)).then(|| addr.parse().ok())?
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderName;

    use super::*;

    fn cookie_session(max_age: Option<Duration>) -> SessionPersistence {
        SessionPersistence {
            kind: SessionKind::Cookie {
                name: "sid".into(),
                max_age,
            },
            absolute_timeout: max_age,
        }
    }

    #[test]
    fn token_round_trips_and_rejects_tampering() {
        for addr in ["10.0.0.7:8080", "[2001:db8::1]:443"] {
            let addr: SocketAddr = addr.parse().expect("addr");
            let token = encode(addr);
            assert_eq!(decode(&token), Some(addr));
            let other = encode("10.0.0.8:8080".parse().expect("addr"));
            let (forged, _) = other.split_once('.').expect("dot");
            let (_, checksum) = token.split_once('.').expect("dot");
            assert_eq!(decode(&format!("{forged}.{checksum}")), None);
        }
        assert_eq!(decode("garbage"), None);
        assert_eq!(decode("zz.0000000000000000"), None);
        assert_eq!(decode(""), None);
    }

    #[test]
    fn cookie_is_issued_and_read_back() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().expect("addr");
        let session = cookie_session(Some(Duration::from_secs(60)));
        let mut response = HeaderMap::new();
        issue(&session, addr, &mut response);
        let set = response[SET_COOKIE].to_str().expect("ascii");
        assert!(set.starts_with("sid="), "{set}");
        assert!(set.ends_with("; Path=/; HttpOnly; Max-Age=60"), "{set}");
        let pair = set.split(';').next().expect("pair");
        let mut request = HeaderMap::new();
        request.insert(
            COOKIE,
            HeaderValue::try_from(format!("a=b; {pair}; c=d")).expect("value"),
        );
        assert_eq!(requested(Some(&session), &request), Some(addr));
        assert_eq!(requested(None, &request), None);

        let mut plain = HeaderMap::new();
        issue(&cookie_session(None), addr, &mut plain);
        let set = plain[SET_COOKIE].to_str().expect("ascii");
        assert!(set.ends_with("; Path=/; HttpOnly"), "{set}");
    }

    #[test]
    fn header_is_issued_and_read_back() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().expect("addr");
        let name = HeaderName::from_static("x-session");
        let session = SessionPersistence {
            kind: SessionKind::Header { name: name.clone() },
            absolute_timeout: None,
        };
        let mut response = HeaderMap::new();
        issue(&session, addr, &mut response);
        let mut request = HeaderMap::new();
        request.insert(name.clone(), response[&name].clone());
        assert_eq!(requested(Some(&session), &request), Some(addr));
        request.insert(
            name,
            HeaderValue::from_static("3132372e302e302e313a31.0000000000000000"),
        );
        assert_eq!(requested(Some(&session), &request), None);
    }
}
