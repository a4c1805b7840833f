//! Session persistence (GEP-1619, `HTTPRoute`/`GRPCRoute` rule `sessionPersistence`): a
//! session cookie or header pins a client to the endpoint that served its first request.

use std::time::Duration;

use http::HeaderName;

/// A rule's compiled `sessionPersistence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPersistence {
    /// Where the session token travels.
    pub kind: SessionKind,
    /// `absoluteTimeout`: a session this old (since its first request) is over; also the
    /// Max-Age of a `Permanent` cookie.
    pub absolute_timeout: Option<Duration>,
    /// `idleTimeout`: a session unused this long is over.
    pub idle_timeout: Option<Duration>,
}

/// Where the session token travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionKind {
    /// A cookie set by the gateway (`Set-Cookie`), sent back by the client.
    Cookie {
        /// The cookie name (`sessionName`).
        name: String,
        /// `Max-Age` (a `Permanent` cookie); `None` is a session cookie.
        max_age: Option<Duration>,
    },
    /// A response header the client echoes back as a request header.
    Header {
        /// The header name (`sessionName`).
        name: HeaderName,
    },
}
