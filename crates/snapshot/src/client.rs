//! What a listener allows its clients (ClientTrafficPolicy): header and URI limits, timeouts,
//! connection limits, HTTP/2 settings and flood thresholds, client address detection, PROXY
//! protocol, and path normalization.
//!
//! Connection-level settings ([`ClientSettings`]) belong to a socket, because HTTP/1.1 and
//! HTTP/2 are negotiated before a request names its host: where listeners sharing a port carry
//! different policies, `compile` merges them into the strictest value of each limit. Path
//! normalization ([`router::path::PathPolicy`]) is per request and so per listener.
//!
//! The defaults are what applies when no policy does; they are documented in the README and
//! chosen from reliability.md (A4, A7, A8, A9): bounded headers, a 10 s header timeout, idle
//! connections closed after 60 s, and HTTP/2 flood limits.

use std::time::Duration;

pub use router::path::{EscapedSlashes, PathPolicy};

/// How a listener samples the requests that start a trace (ClientTrafficPolicy `tracing`):
/// this fraction of them; requests whose caller decided follow the caller.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceSampling {
    /// Between 0 and 1.
    pub ratio: f64,
}

/// The default idle timeout of TCP and TLS listeners' connections: an hour, as Envoy's TCP
/// proxy, since database and message-broker connections idle for minutes between bursts.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(3600);

/// Connection-level settings of one socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// Header and URI limits.
    pub headers: HeaderLimits,
    /// Client-side timeouts.
    pub timeouts: ClientTimeouts,
    /// Connections this socket keeps open at most; beyond it new ones are refused (closed at
    /// once). `None`: only the process-wide limit applies.
    pub max_connections: Option<usize>,
    /// Per-connection buffer bound in bytes: the HTTP/2 send buffer per stream, and the floor of
    /// the HTTP/1.1 read buffer (which must also hold a full request head).
    pub buffer_limit: usize,
    /// HTTP/2 settings and flood thresholds.
    pub http2: Http2Settings,
    /// How the client's address is found.
    pub client_ip: ClientIpDetection,
    /// Whether connections start with a PROXY protocol (v1 or v2) header.
    pub proxy_protocol: bool,
    /// A connection of a TCP or TLS listener (forwarded as bytes) with no byte either way for
    /// this long is closed. `None` keeps it.
    pub stream_idle: Option<Duration>,
    /// Flow limits of a UDP listener (its own, never merged: a UDP socket has one listener).
    pub udp: crate::l4::UdpLimits,
}

impl Default for ClientSettings {
    fn default() -> ClientSettings {
        ClientSettings {
            headers: HeaderLimits::default(),
            timeouts: ClientTimeouts::default(),
            max_connections: None,
            buffer_limit: 32 * 1024,
            http2: Http2Settings::default(),
            client_ip: ClientIpDetection::default(),
            proxy_protocol: false,
            stream_idle: Some(DEFAULT_STREAM_IDLE),
            udp: crate::l4::UdpLimits::default(),
        }
    }
}

/// Request head limits (reliability A8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderLimits {
    /// The request head (request line and header fields; on HTTP/2 the decoded header list as
    /// RFC 9113 §6.5.2 counts it) may be this large; beyond: 431.
    pub max_request_headers_bytes: usize,
    /// At most this many header fields; beyond: 431.
    pub max_headers_count: usize,
    /// The request target (path and query) may be this long; beyond: 414.
    pub max_uri_bytes: usize,
}

impl Default for HeaderLimits {
    fn default() -> HeaderLimits {
        HeaderLimits {
            max_request_headers_bytes: 60 * 1024,
            max_headers_count: 100,
            max_uri_bytes: 8192,
        }
    }
}

/// Client-side timeouts (reliability A7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// A request head must arrive within this time: from the connection's start for the first
    /// request, from its first byte for the next ones. Beyond: 408 and close (or a silent close
    /// when not a byte of the head arrived).
    pub request_header: Duration,
    /// A request body must arrive within this time of its head; beyond: 408 and close. `None`
    /// waits for ever.
    pub request_body: Option<Duration>,
    /// A connection without a request in flight is closed after this time (HTTP/2 with
    /// GOAWAY). `None` keeps it.
    pub idle: Option<Duration>,
}

impl Default for ClientTimeouts {
    fn default() -> ClientTimeouts {
        ClientTimeouts {
            request_header: Duration::from_secs(10),
            request_body: Some(Duration::from_secs(60)),
            idle: Some(Duration::from_secs(60)),
        }
    }
}

/// HTTP/2 settings and flood thresholds (reliability A4, T04).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Http2Settings {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub max_concurrent_streams: u32,
    /// Client resets (RST_STREAM of a stream in any state) one connection may send; beyond it,
    /// and beyond a tenth of it within one second, the connection gets
    /// GOAWAY(ENHANCE_YOUR_CALM) and is closed.
    pub max_resets_per_connection: u32,
    /// SETTINGS and PING frames (not acknowledgements) one connection may send per second;
    /// beyond: GOAWAY(ENHANCE_YOUR_CALM).
    pub max_control_frames_per_second: u32,
    /// `SETTINGS_INITIAL_WINDOW_SIZE`, in bytes.
    pub initial_stream_window_size: u32,
    /// The connection's flow-control window, in bytes.
    pub initial_connection_window_size: u32,
}

impl Default for Http2Settings {
    fn default() -> Http2Settings {
        Http2Settings {
            max_concurrent_streams: 200,
            max_resets_per_connection: 1000,
            max_control_frames_per_second: 1000,
            initial_stream_window_size: 64 * 1024,
            initial_connection_window_size: 1024 * 1024,
        }
    }
}

/// Where the client's address comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientIpDetection {
    /// Trust this many proxies in front of the gateway: the client is the address that many
    /// entries from the right of `X-Forwarded-For` (0: the connection's peer, the header is not
    /// believed).
    pub xff_trusted_hops: u32,
}

impl ClientSettings {
    /// The strictest of two settings, for listeners that share a socket: each limit and timeout
    /// takes the smaller value; client address detection trusts the fewer hops; PROXY protocol
    /// must agree (compile reports a conflict otherwise and keeps `self`'s).
    pub fn strictest(&self, other: &ClientSettings) -> ClientSettings {
        let (a, b) = (self, other);
        ClientSettings {
            headers: HeaderLimits {
                max_request_headers_bytes: a
                    .headers
                    .max_request_headers_bytes
                    .min(b.headers.max_request_headers_bytes),
                max_headers_count: a.headers.max_headers_count.min(b.headers.max_headers_count),
                max_uri_bytes: a.headers.max_uri_bytes.min(b.headers.max_uri_bytes),
            },
            timeouts: ClientTimeouts {
                request_header: a.timeouts.request_header.min(b.timeouts.request_header),
                request_body: min_set(a.timeouts.request_body, b.timeouts.request_body),
                idle: min_set(a.timeouts.idle, b.timeouts.idle),
            },
            max_connections: min_set(a.max_connections, b.max_connections),
            buffer_limit: a.buffer_limit.min(b.buffer_limit),
            http2: Http2Settings {
                max_concurrent_streams: a
                    .http2
                    .max_concurrent_streams
                    .min(b.http2.max_concurrent_streams),
                max_resets_per_connection: a
                    .http2
                    .max_resets_per_connection
                    .min(b.http2.max_resets_per_connection),
                max_control_frames_per_second: a
                    .http2
                    .max_control_frames_per_second
                    .min(b.http2.max_control_frames_per_second),
                initial_stream_window_size: a
                    .http2
                    .initial_stream_window_size
                    .min(b.http2.initial_stream_window_size),
                initial_connection_window_size: a
                    .http2
                    .initial_connection_window_size
                    .min(b.http2.initial_connection_window_size),
            },
            client_ip: ClientIpDetection {
                xff_trusted_hops: a
                    .client_ip
                    .xff_trusted_hops
                    .min(b.client_ip.xff_trusted_hops),
            },
            proxy_protocol: a.proxy_protocol,
            stream_idle: min_set(a.stream_idle, b.stream_idle),
            udp: a.udp,
        }
    }
}

/// The smaller of two optional limits, where `None` means unlimited: a limit one listener sets
/// applies to the socket even when another sets none.
fn min_set<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
