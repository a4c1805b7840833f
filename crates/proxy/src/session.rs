//! Session persistence (GEP-1619): the rule's session cookie or header carries a token naming
//! the endpoint that served the client; a request with a valid token goes to that endpoint
//! while it is still in the chosen backend and available.
//!
//! The token is opaque to clients: the hex of the endpoint's `ip:port`, when the session
//! started and was last used (for `absoluteTimeout` and `idleTimeout`, second granularity), and
//! a 64-bit keyed hash (SipHash) of all that, so a client can neither point the gateway at an
//! address of its choosing nor extend its session.
//! The key is random per process: sessions do not survive a gateway restart, and replicas do
//! not share them (a client moved to another replica is balanced anew and gets a new token).
//!
//! Also here: the cookie of a BackendTrafficPolicy `ConsistentHash` on a cookie, which the
//! gateway makes up (random) when the request has none ([`hash_cookie`]).

use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use snapshot::backend::policy::{Balancer, HashKey};
use snapshot::session::{SessionKind, SessionPersistence};
use upstream::{BackendRuntime, EndpointRuntime};

/// The per-process key of the token hash.
static KEY: LazyLock<RandomState> = LazyLock::new(RandomState::new);

/// What a valid session token says: the endpoint, when the session started and when it was
/// last used (UNIX seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) endpoint: SocketAddr,
    started: u64,
    used: u64,
}

/// The request's session, if its token is valid and the session has not run out
/// (`absoluteTimeout` since it started, `idleTimeout` since it was last used).
pub(crate) fn requested(
    persistence: Option<&SessionPersistence>,
    headers: &HeaderMap,
) -> Option<Session> {
    let persistence = persistence?;
    let token = match &persistence.kind {
        SessionKind::Cookie { name, .. } => cookie(headers, name)?,
        SessionKind::Header { name } => headers.get(name)?.to_str().ok()?.trim(),
    };
    let session = decode(token)?;
    live(persistence, session, unix_now()).then_some(session)
}

fn live(persistence: &SessionPersistence, session: Session, now: u64) -> bool {
    let within = |since: u64, limit: Option<Duration>| {
        limit.is_none_or(|limit| now.saturating_sub(since) <= limit.as_secs())
    };
    within(session.started, persistence.absolute_timeout)
        && within(session.used, persistence.idle_timeout)
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

/// After the response of `endpoint`: a new token when the request had no live session on it
/// (`Set-Cookie` or the session header); with an `idleTimeout`, the same session renewed (its
/// last use moved to now) at most once a second, so that an active client keeps it.
pub(crate) fn respond(
    persistence: &SessionPersistence,
    request: Option<Session>,
    endpoint: SocketAddr,
    headers: &mut HeaderMap,
) {
    let now = unix_now();
    let session = match request {
        Some(session) if session.endpoint == endpoint => {
            if persistence.idle_timeout.is_none() || session.used >= now {
                return;
            }
            Session {
                used: now,
                ..session
            }
        }
        _ => Session {
            endpoint,
            started: now,
            used: now,
        },
    };
    issue(persistence, session, headers);
}

fn issue(persistence: &SessionPersistence, session: Session, headers: &mut HeaderMap) {
    let token = encode(session);
    match &persistence.kind {
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `ConsistentHash` on a cookie the request lacks: adds a random value for it to the request
/// (so the pick hashes it, and the backend sees what the client will send next) and returns
/// the `Set-Cookie` for the response (`Max-Age` = the policy's `ttl`).
pub(crate) fn hash_cookie(
    backend: &BackendRuntime,
    headers: &mut HeaderMap,
) -> Option<HeaderValue> {
    if !backend.hashes_cookie() {
        return None;
    }
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

/// The keyed hash of a token's content.
fn tag(content: &str) -> u64 {
    KEY.hash_one(content)
}

/// `hex(ip:port).started.used.tag`, numbers in hex.
fn encode(session: Session) -> String {
    let addr = session.endpoint.to_string();
    let mut content = String::with_capacity(addr.len() * 2 + 34);
    for byte in addr.bytes() {
        content.push_str(&format!("{byte:02x}"));
    }
    content.push_str(&format!(".{:x}.{:x}", session.started, session.used));
    let tag = tag(&content);
    content.push_str(&format!(".{tag:016x}"));
    content
}

fn decode(token: &str) -> Option<Session> {
    let (content, checksum) = token.rsplit_once('.')?;
    if content.len() > 160 || checksum.len() != 16 {
        return None;
    }
    let checksum = u64::from_str_radix(checksum, 16).ok()?;
    if checksum != tag(content) {
        return None;
    }
    let mut parts = content.split('.');
    let (hex, started, used) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || hex.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(Session {
        endpoint: String::from_utf8(bytes).ok()?.parse().ok()?,
        started: u64::from_str_radix(started, 16).ok()?,
        used: u64::from_str_radix(used, 16).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;

    fn cookie_session(max_age: Option<Duration>) -> SessionPersistence {
        SessionPersistence {
            kind: SessionKind::Cookie {
                name: "sid".into(),
                max_age,
            },
            absolute_timeout: max_age,
            idle_timeout: None,
        }
    }

    fn header_session(absolute: Option<u64>, idle: Option<u64>) -> SessionPersistence {
        SessionPersistence {
            kind: SessionKind::Header {
                name: HeaderName::from_static("x-session"),
            },
            absolute_timeout: absolute.map(Duration::from_secs),
            idle_timeout: idle.map(Duration::from_secs),
        }
    }

    fn session(addr: &str, started: u64, used: u64) -> Session {
        Session {
            endpoint: addr.parse().expect("addr"),
            started,
            used,
        }
    }

    #[test]
    fn token_round_trips_and_rejects_tampering() {
        for addr in ["10.0.0.7:8080", "[2001:db8::1]:443"] {
            let original = session(addr, 1_700_000_000, 1_700_000_100);
            let token = encode(original);
            assert_eq!(decode(&token), Some(original));
            // Another address, or a later last use, under the original tag: rejected.
            let other = encode(session("10.0.0.8:8080", 1_700_000_000, 1_700_000_100));
            let (_, checksum) = token.rsplit_once('.').expect("dot");
            let (forged, _) = other.rsplit_once('.').expect("dot");
            assert_eq!(decode(&format!("{forged}.{checksum}")), None);
            let (content, _) = token.rsplit_once('.').expect("dot");
            let extended = content.replace(".6553f164", ".ffffffff");
            assert_ne!(extended, content);
            assert_eq!(decode(&format!("{extended}.{checksum}")), None);
        }
        assert_eq!(decode("garbage"), None);
        assert_eq!(decode("zz.0000000000000000"), None);
        assert_eq!(decode(""), None);
        // The old two-part format is not a token any more.
        assert_eq!(decode("3132372e302e302e313a31.0000000000000000"), None);
    }

    #[test]
    fn cookie_is_issued_and_read_back() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().expect("addr");
        let persistence = cookie_session(Some(Duration::from_secs(60)));
        let mut response = HeaderMap::new();
        respond(&persistence, None, addr, &mut response);
        let set = response[SET_COOKIE].to_str().expect("ascii");
        assert!(set.starts_with("sid="), "{set}");
        assert!(set.ends_with("; Path=/; HttpOnly; Max-Age=60"), "{set}");
        let pair = set.split(';').next().expect("pair");
        let mut request = HeaderMap::new();
        request.insert(
            COOKIE,
            HeaderValue::try_from(format!("a=b; {pair}; c=d")).expect("value"),
        );
        let back = requested(Some(&persistence), &request).expect("session");
        assert_eq!(back.endpoint, addr);
        assert_eq!(requested(None, &request), None);

        // Served by the same endpoint again without an idle timeout: nothing to renew.
        let mut again = HeaderMap::new();
        respond(&persistence, Some(back), addr, &mut again);
        assert!(again.get(SET_COOKIE).is_none());
        // Served by another endpoint (the pinned one went away): a new session.
        let other: SocketAddr = "127.0.0.1:9001".parse().expect("addr");
        respond(&persistence, Some(back), other, &mut again);
        assert!(again.get(SET_COOKIE).is_some());

        let mut plain = HeaderMap::new();
        respond(&cookie_session(None), None, addr, &mut plain);
        let set = plain[SET_COOKIE].to_str().expect("ascii");
        assert!(set.ends_with("; Path=/; HttpOnly"), "{set}");
    }

    #[test]
    fn header_is_issued_and_read_back() {
        let addr: SocketAddr = "127.0.0.1:9000".parse().expect("addr");
        let persistence = header_session(None, None);
        let name = HeaderName::from_static("x-session");
        let mut response = HeaderMap::new();
        respond(&persistence, None, addr, &mut response);
        let mut request = HeaderMap::new();
        request.insert(name.clone(), response[&name].clone());
        assert_eq!(
            requested(Some(&persistence), &request).map(|s| s.endpoint),
            Some(addr)
        );
        request.insert(
            name,
            HeaderValue::from_static("3132372e302e302e313a31.1.1.0000000000000000"),
        );
        assert_eq!(requested(Some(&persistence), &request), None);
    }

    #[test]
    fn sessions_end_after_their_absolute_and_idle_timeouts() {
        let now = 1_000_000;
        let absolute = header_session(Some(3600), None);
        assert!(live(
            &absolute,
            session("10.0.0.1:80", now - 3600, now),
            now
        ));
        assert!(!live(
            &absolute,
            session("10.0.0.1:80", now - 3601, now),
            now
        ));
        let idle = header_session(None, Some(600));
        assert!(live(
            &idle,
            session("10.0.0.1:80", now - 90_000, now - 600),
            now
        ));
        assert!(!live(
            &idle,
            session("10.0.0.1:80", now - 90_000, now - 601),
            now
        ));
        let both = header_session(Some(3600), Some(600));
        assert!(!live(
            &both,
            session("10.0.0.1:80", now - 4000, now - 10),
            now
        ));
        assert!(live(
            &header_session(None, None),
            session("10.0.0.1:80", 0, 0),
            now
        ));
    }

    #[test]
    fn an_idle_timeout_renews_a_used_session_keeping_its_start() {
        let addr: SocketAddr = "10.0.0.1:80".parse().expect("addr");
        let persistence = header_session(Some(86_400), Some(600));
        let name = HeaderName::from_static("x-session");
        let old = Session {
            endpoint: addr,
            started: unix_now() - 500,
            used: unix_now() - 300,
        };
        let mut response = HeaderMap::new();
        respond(&persistence, Some(old), addr, &mut response);
        let renewed = decode(response[&name].to_str().expect("ascii")).expect("token");
        assert_eq!(renewed.endpoint, addr);
        assert_eq!(renewed.started, old.started, "the session keeps its start");
        assert!(renewed.used >= old.used + 300, "{renewed:?}");
    }
}
