//! Validation of a `ClientTrafficPolicy.spec` into the settings of the listeners it applies
//! to. Every problem is reported with its field path; a field that is not set keeps the
//! default of `snapshot::client` (and TLS 1.2+, the socket's default ALPN list).
//!
//! The bounds are `model::client_policy::bounds` (the CRD's schema enforces the same ones at
//! `kubectl apply`).

use std::ops::RangeInclusive;
use std::time::Duration;

use model::client_policy::bounds::{
    BUFFER_LIMIT, MAX_CONCURRENT_STREAMS, MAX_CONNECTIONS, MAX_CONTROL_FRAMES_PER_SECOND,
    MAX_DATAGRAM_BYTES, MAX_HEADERS_COUNT, MAX_REQUEST_HEADERS_KIB, MAX_RESETS_PER_CONNECTION,
    MAX_UDP_FLOWS, MAX_URI_BYTES, TRUSTED_HOPS, WINDOW_SIZE,
};
use model::client_policy::{
    ByteQuantity, ClientHeaders, ClientHttp2, ClientHttpTimeout, ClientTrafficPolicySpec, ClientUdp,
};
use snapshot::client::{ClientTimeouts, EscapedSlashes, HeaderLimits, Http2Settings, PathPolicy};
use snapshot::l4::UdpLimits;
use snapshot::tls::{AlpnProtocol, MinTlsVersion};

use crate::problems::{FieldPath, Problems};
use crate::{byte_size, duration};

use super::ListenerClient;

/// The `escapedSlashesAction` values, as the policy spells them.
const ESCAPED_SLASHES: [(&str, EscapedSlashes); 4] = [
    ("KeepUnchanged", EscapedSlashes::KeepUnchanged),
    ("RejectRequest", EscapedSlashes::RejectRequest),
    ("UnescapeAndRedirect", EscapedSlashes::UnescapeAndRedirect),
    ("UnescapeAndForward", EscapedSlashes::UnescapeAndForward),
];

/// The policy spelling of an `escapedSlashesAction`.
pub(super) fn escaped_slashes_name(action: EscapedSlashes) -> &'static str {
    ESCAPED_SLASHES
        .iter()
        .find(|(_, value)| *value == action)
        .map_or("RejectRequest", |(name, _)| name)
}

/// Validates a spec (`policy` is the policy's path) into listener settings, section by
/// section in field order.
pub(super) fn compile_spec(
    policy: &FieldPath,
    spec: &ClientTrafficPolicySpec,
) -> Result<ListenerClient, Problems> {
    let at = policy.field("spec");
    let mut problems = Problems::default();
    let mut client = ListenerClient::default();
    let settings = &mut client.settings;
    if let Some(headers) = &spec.headers {
        let fields = Fields::new(at.field("headers"), &mut problems);
        header_limits(fields, headers, &mut settings.headers);
    }
    if let Some(path) = &spec.path {
        client.path = path_policy(&at.field("path"), path, &mut problems);
    }
    if let Some(http) = spec.timeout.as_ref().and_then(|t| t.http.as_ref()) {
        let fields = Fields::new(at.field("timeout.http"), &mut problems);
        timeouts(fields, http, &mut settings.timeouts);
    }
    if let Some(tcp) = spec.timeout.as_ref().and_then(|t| t.tcp.as_ref()) {
        let mut fields = Fields::new(at.field("timeout.tcp"), &mut problems);
        if let Some(idle) = fields.duration("idleTimeout", &tcp.idle_timeout) {
            settings.stream_idle = Some(idle).filter(|d| !d.is_zero());
        }
    }
    if let Some(udp) = &spec.udp {
        let fields = Fields::new(at.field("udp"), &mut problems);
        udp_limits(fields, udp, &mut settings.udp);
    }
    if let Some(connection) = &spec.connection {
        let mut fields = Fields::new(at.field("connection"), &mut problems);
        let max = connection.max_connections;
        if let Some(max) = fields.number("maxConnections", max, MAX_CONNECTIONS) {
            settings.max_connections = Some(max);
        }
        let limit = connection.buffer_limit.as_ref();
        set(
            &mut settings.buffer_limit,
            fields.bytes("bufferLimit", limit, BUFFER_LIMIT),
        );
    }
    if let Some(http2) = &spec.http2 {
        let fields = Fields::new(at.field("http2"), &mut problems);
        http2_settings(fields, http2, &mut settings.http2);
    }
    if let Some(xff) = spec
        .client_ip_detection
        .as_ref()
        .and_then(|d| d.x_forwarded_for.as_ref())
    {
        let mut fields = Fields::new(at.field("clientIPDetection.xForwardedFor"), &mut problems);
        let hops = xff.num_trusted_hops;
        set(
            &mut settings.client_ip.xff_trusted_hops,
            fields.number("numTrustedHops", hops, TRUSTED_HOPS),
        );
    }
    if let Some(enabled) = spec.proxy_protocol.as_ref().and_then(|p| p.enabled) {
        settings.proxy_protocol = enabled;
    }
    if let Some(tls) = &spec.tls {
        let at = at.field("tls");
        if let Some(version) = &tls.min_version {
            client.min_tls_version = min_tls_version(&at, version, &mut problems);
        }
        if let Some(protocols) = &tls.alpn_protocols {
            client.alpn = Some(alpn_protocols(&at, protocols, &mut problems));
        }
    }
    if let Some(fraction) = spec
        .tracing
        .as_ref()
        .and_then(|t| t.sampling_fraction.as_ref())
    {
        let at = at.field("tracing.samplingFraction");
        let denominator = fraction.denominator.unwrap_or(100);
        if denominator == 0 {
            problems.report(at.field("denominator").problem("must be at least 1"));
        } else if fraction.numerator > denominator {
            problems.report(at.field("numerator").problem(format!(
                "{} is greater than the denominator {denominator}",
                fraction.numerator
            )));
        } else {
            client.tracing = Some(snapshot::client::TraceSampling {
                ratio: f64::from(fraction.numerator) / f64::from(denominator),
            });
        }
    }
    problems.or_value(client)
}

/// `headers` (the fields below it): request head limits.
fn header_limits(mut fields: Fields<'_>, spec: &ClientHeaders, limits: &mut HeaderLimits) {
    let kib = spec.max_request_headers_kib;
    if let Some(kib) = fields.number::<usize>("maxRequestHeadersKiB", kib, MAX_REQUEST_HEADERS_KIB)
    {
        limits.max_request_headers_bytes = kib * 1024;
    }
    let count = spec.max_headers_count;
    set(
        &mut limits.max_headers_count,
        fields.number("maxHeadersCount", count, MAX_HEADERS_COUNT),
    );
    let uri = spec.max_uri_bytes;
    set(
        &mut limits.max_uri_bytes,
        fields.number("maxUriBytes", uri, MAX_URI_BYTES),
    );
}

/// `timeout.http` (the fields below it): the header timeout must be positive; `0s` turns the
/// body and idle timeouts off.
fn timeouts(mut fields: Fields<'_>, spec: &ClientHttpTimeout, timeouts: &mut ClientTimeouts) {
    if let Some(header) = fields.duration("requestHeaderTimeout", &spec.request_header_timeout) {
        if header.is_zero() {
            fields.report("requestHeaderTimeout", "must be greater than 0s");
        }
        timeouts.request_header = header;
    }
    if let Some(body) = fields.duration("requestBodyTimeout", &spec.request_body_timeout) {
        timeouts.request_body = Some(body).filter(|d| !d.is_zero());
    }
    if let Some(idle) = fields.duration("idleTimeout", &spec.idle_timeout) {
        timeouts.idle = Some(idle).filter(|d| !d.is_zero());
    }
}

/// `udp` (the fields below it): flow limits; the idle timeout must be positive (a flow
/// without one would hold its upstream socket for ever).
fn udp_limits(mut fields: Fields<'_>, spec: &ClientUdp, limits: &mut UdpLimits) {
    if let Some(idle) = fields.duration("idleTimeout", &spec.idle_timeout) {
        if idle.is_zero() {
            fields.report("idleTimeout", "must be greater than 0s");
        } else {
            limits.idle_timeout = idle;
        }
    }
    set(
        &mut limits.max_flows,
        fields.number("maxFlows", spec.max_flows, MAX_UDP_FLOWS),
    );
    set(
        &mut limits.max_datagram_bytes,
        fields.number(
            "maxDatagramBytes",
            spec.max_datagram_bytes,
            MAX_DATAGRAM_BYTES,
        ),
    );
}

/// `http2` (the fields below it): settings and flood thresholds.
fn http2_settings(mut fields: Fields<'_>, spec: &ClientHttp2, h2: &mut Http2Settings) {
    let streams = spec.max_concurrent_streams;
    set(
        &mut h2.max_concurrent_streams,
        fields.number("maxConcurrentStreams", streams, MAX_CONCURRENT_STREAMS),
    );
    let resets = spec.max_resets_per_connection;
    set(
        &mut h2.max_resets_per_connection,
        fields.number("maxResetsPerConnection", resets, MAX_RESETS_PER_CONNECTION),
    );
    let frames = spec.max_control_frames_per_second;
    set(
        &mut h2.max_control_frames_per_second,
        fields.number(
            "maxControlFramesPerSecond",
            frames,
            MAX_CONTROL_FRAMES_PER_SECOND,
        ),
    );
    let stream = spec.initial_stream_window_size.as_ref();
    set(
        &mut h2.initial_stream_window_size,
        fields.bytes("initialStreamWindowSize", stream, WINDOW_SIZE),
    );
    let connection = spec.initial_connection_window_size.as_ref();
    set(
        &mut h2.initial_connection_window_size,
        fields.bytes("initialConnectionWindowSize", connection, WINDOW_SIZE),
    );
}

/// Sets `target` to `value` when there is one.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

/// `path` (`at`): merging slashes and what escaped slashes do.
fn path_policy(
    at: &FieldPath,
    spec: &model::client_policy::ClientPath,
    problems: &mut Problems,
) -> PathPolicy {
    let mut path = PathPolicy::default();
    if let Some(merge) = spec.merge_slashes {
        path.merge_slashes = merge;
    }
    if let Some(action) = &spec.escaped_slashes_action {
        match ESCAPED_SLASHES.iter().find(|(name, _)| name == action) {
            Some((_, value)) => path.escaped_slashes = *value,
            None => problems.report(at.field("escapedSlashesAction").problem(format!(
                "{action:?} is not KeepUnchanged, RejectRequest, UnescapeAndRedirect or UnescapeAndForward"
            ))),
        }
    }
    path
}

/// `tls.minVersion` (below `at`, which is `tls`).
fn min_tls_version(at: &FieldPath, version: &str, problems: &mut Problems) -> MinTlsVersion {
    match version {
        "1.2" => MinTlsVersion::Tls12,
        "1.3" => MinTlsVersion::Tls13,
        other => {
            problems.report(at.field("minVersion").problem(format!(
                "{other:?} is not 1.2 or 1.3 (older versions are not supported)"
            )));
            MinTlsVersion::Tls12
        }
    }
}

/// `tls.alpnProtocols` (below `at`, which is `tls`): a non-empty list of distinct `h2` and
/// `http/1.1`, in preference order.
fn alpn_protocols(
    at: &FieldPath,
    protocols: &[String],
    problems: &mut Problems,
) -> Vec<AlpnProtocol> {
    let list = at.field("alpnProtocols");
    if protocols.is_empty() {
        problems.report(list.problem("must name at least one protocol (h2, http/1.1)"));
    }
    let mut chosen = Vec::new();
    for (index, protocol) in protocols.iter().enumerate() {
        let value = match protocol.as_str() {
            "h2" => AlpnProtocol::Http2,
            "http/1.1" => AlpnProtocol::Http11,
            other => {
                let message = format!("{other:?} is not h2 or http/1.1");
                problems.report(list.index(index).problem(message));
                continue;
            }
        };
        if chosen.contains(&value) {
            let message = format!("{protocol:?} is listed twice");
            problems.report(list.index(index).problem(message));
        } else {
            chosen.push(value);
        }
    }
    chosen
}

/// The fields of one section (`at`), each checked and reported where it is.
struct Fields<'a> {
    at: FieldPath,
    problems: &'a mut Problems,
}

impl Fields<'_> {
    fn new(at: FieldPath, problems: &mut Problems) -> Fields<'_> {
        Fields { at, problems }
    }

    fn report(&mut self, field: &str, message: &str) {
        self.problems.report(self.at.field(field).problem(message));
    }

    /// `field`, when set and within `range`, converted to the setting's type (which holds
    /// every value of `range`: the bounds fit `u32` and `usize`).
    fn number<T: TryFrom<i64>>(
        &mut self,
        field: &str,
        value: Option<i64>,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let value = value?;
        if !range.contains(&value) {
            let message = format!("must be between {} and {}", range.start(), range.end());
            self.report(field, &message);
            return None;
        }
        T::try_from(value).ok()
    }

    /// A byte-size `field` (see [`byte_size`]), when set, valid and within `range`.
    fn bytes<T: TryFrom<i64>>(
        &mut self,
        field: &str,
        value: Option<&ByteQuantity>,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let bytes = match byte_size::parse(value?) {
            Ok(bytes) => bytes,
            Err(message) => {
                self.report(field, &message);
                return None;
            }
        };
        // A count too large for i64 is out of range too.
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.number(field, Some(bytes), range)
    }

    /// A GEP-2257 duration `field`, when set and valid.
    fn duration(&mut self, field: &str, value: &Option<String>) -> Option<Duration> {
        match duration::parse(value.as_deref()?) {
            Ok(duration) => Some(duration),
            Err(message) => {
                self.report(field, &message);
                None
            }
        }
    }
}
