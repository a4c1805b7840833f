//! The bounds of `ClientTrafficPolicy`'s numbers and byte sizes: `compile` refuses a value
//! outside them (naming the field), and the CRD's schema refuses it at `kubectl apply`. Ours,
//! chosen so that no value can make the gateway unusable or unprotected; each names why where
//! it is not obvious.

use std::ops::RangeInclusive;

/// `headers.maxRequestHeadersKiB`: 1 KiB to 8 MiB.
pub const MAX_REQUEST_HEADERS_KIB: RangeInclusive<i64> = 1..=8192;
/// `headers.maxHeadersCount`.
pub const MAX_HEADERS_COUNT: RangeInclusive<i64> = 1..=10_000;
/// `headers.maxUriBytes`: 256 bytes (enough for any sane path) to 1 MiB.
pub const MAX_URI_BYTES: RangeInclusive<i64> = 256..=1_048_576;
/// `connection.maxConnections`, per socket.
pub const MAX_CONNECTIONS: RangeInclusive<i64> = 1..=1_000_000;
/// `connection.bufferLimit`: at least 8 KiB, the smallest HTTP/1.1 read buffer hyper accepts;
/// at most 64 MiB per connection.
pub const BUFFER_LIMIT: RangeInclusive<i64> = 8192..=67_108_864;
/// `http2.maxConcurrentStreams`: at least one stream; at most 2^31-1 (RFC 9113 §5.1.1).
pub const MAX_CONCURRENT_STREAMS: RangeInclusive<i64> = 1..=2_147_483_647;
/// `http2.maxResetsPerConnection`: at least 10, so that the per-second threshold (a tenth of
/// it) is at least one reset.
pub const MAX_RESETS_PER_CONNECTION: RangeInclusive<i64> = 10..=1_000_000;
/// `http2.maxControlFramesPerSecond`.
pub const MAX_CONTROL_FRAMES_PER_SECOND: RangeInclusive<i64> = 1..=1_000_000;
/// `http2.initialStreamWindowSize` and `initialConnectionWindowSize`: from the protocol's own
/// initial window (65,535) to the largest window RFC 9113 §6.9.1 allows (2^31-1).
pub const WINDOW_SIZE: RangeInclusive<i64> = 65_535..=2_147_483_647;
/// `clientIPDetection.xForwardedFor.numTrustedHops`: more proxies than this in front of one
/// gateway is a mistake, not a topology.
pub const TRUSTED_HOPS: RangeInclusive<i64> = 0..=64;
/// `udp.maxFlows`, per UDP listener: each flow holds an upstream socket (a descriptor).
pub const MAX_UDP_FLOWS: RangeInclusive<i64> = 1..=1_000_000;
/// `udp.maxDatagramBytes`: up to the largest UDP payload over IPv4.
pub const MAX_DATAGRAM_BYTES: RangeInclusive<i64> = 1..=65_507;
