//! `ClientTrafficPolicy` (`portcullis.dev/v1alpha1`): what a Gateway or one of its listeners
//! allows its clients, attached with `spec.targetRefs` (GEP-713).
//!
//! Header and URI limits, path normalization, client timeouts (slowloris), connection limits,
//! HTTP/2 settings and flood thresholds, trusted `X-Forwarded-For` hops, PROXY protocol, and
//! the TLS versions and ALPN protocols of HTTPS listeners. Field names follow Envoy Gateway's
//! ClientTrafficPolicy where the concept is the same.
//!
//! Every field is optional; an absent one keeps the default of `snapshot::client`. Values are
//! kept as the user wrote them: numbers as `i64` (so a negative value is a range error naming
//! the field, not a file that fails to parse), enumerations, durations (GEP-2257) and byte
//! sizes as text. `compile` validates them. Unknown fields are rejected so a typo is an error,
//! not a silently ignored setting. The `schemars` attributes are the CRD's checks ahead of
//! `compile` (see [`crate::schema`]), with the same [`bounds`].

pub mod bounds;

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::core::ObjectMeta;
use crate::policy::PolicyTargetRef;
use crate::schema::{BYTE_SIZE_PATTERN, DURATION_PATTERN, MAX_TARGET_REFS};
use bounds::{
    BUFFER_LIMIT, MAX_CONCURRENT_STREAMS, MAX_CONNECTIONS, MAX_CONTROL_FRAMES_PER_SECOND,
    MAX_DATAGRAM_BYTES, MAX_HEADERS_COUNT, MAX_REQUEST_HEADERS_KIB, MAX_RESETS_PER_CONNECTION,
    MAX_UDP_FLOWS, MAX_URI_BYTES, TRUSTED_HOPS, WINDOW_SIZE,
};

/// A `ClientTrafficPolicy` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientTrafficPolicy {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The policy.
    #[serde(default)]
    pub spec: ClientTrafficPolicySpec,
}

/// `ClientTrafficPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
// `targetRefs` defaults to empty for serde (compile reports it); the API server requires it.
#[schemars(extend("required" = ["targetRefs"]))]
pub struct ClientTrafficPolicySpec {
    /// Gateways (whole, or one listener by `sectionName`) in the policy's namespace; the most
    /// specific attachment wins.
    #[serde(default)]
    #[schemars(length(min = 1, max = MAX_TARGET_REFS))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(t, has(t.group) && t.group == 'gateway.networking.k8s.io' && t.kind == 'Gateway')",
        "message": "each target must be a gateway.networking.k8s.io Gateway (whole, or one listener by sectionName)"
    }]))]
    pub target_refs: Vec<PolicyTargetRef>,
    /// Request head limits.
    #[serde(default)]
    pub headers: Option<ClientHeaders>,
    /// Path normalization.
    #[serde(default)]
    pub path: Option<ClientPath>,
    /// Client-side timeouts.
    #[serde(default)]
    pub timeout: Option<ClientTimeout>,
    /// Connection limits.
    #[serde(default)]
    pub connection: Option<ClientConnection>,
    /// HTTP/2 settings and flood thresholds.
    #[serde(default)]
    pub http2: Option<ClientHttp2>,
    /// How the client's address is found.
    #[serde(default, rename = "clientIPDetection")]
    pub client_ip_detection: Option<ClientIpDetection>,
    /// PROXY protocol on incoming connections.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TLS handshake settings of HTTPS listeners.
    #[serde(default)]
    pub tls: Option<ClientTls>,
    /// Tracing of the listeners' requests (with `--otlp-endpoint`; without it, nothing is
    /// traced and this is ignored).
    #[serde(default)]
    pub tracing: Option<ClientTracing>,
    /// Flows of UDP listeners.
    #[serde(default)]
    pub udp: Option<ClientUdp>,
}

/// `udp`: the flows of UDP listeners (one flow per client address and port).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientUdp {
    /// A flow with no datagram either way for this long is forgotten and its upstream socket
    /// closed (default 60s; must be greater than 0s).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub idle_timeout: Option<String>,
    /// Flows at once per listener (default 65,536); a datagram that would start one more is
    /// dropped.
    #[serde(default)]
    #[schemars(range(min = *MAX_UDP_FLOWS.start(), max = *MAX_UDP_FLOWS.end()))]
    pub max_flows: Option<i64>,
    /// Largest datagram payload forwarded either way, in bytes (default and maximum 65,507);
    /// larger ones are dropped.
    #[serde(default)]
    #[schemars(range(min = *MAX_DATAGRAM_BYTES.start(), max = *MAX_DATAGRAM_BYTES.end()))]
    pub max_datagram_bytes: Option<i64>,
}

/// `tracing`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTracing {
    /// The share of requests starting a trace that are recorded, `numerator / denominator`
    /// (replacing the gateway's `OTEL_TRACES_SAMPLER` for these listeners). A request whose
    /// caller decided (a sampled or unsampled `traceparent`, or B3 header) follows the caller.
    #[serde(default)]
    pub sampling_fraction: Option<SamplingFraction>,
}

/// A fraction of requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.denominator) || self.numerator <= self.denominator",
    "message": "numerator must not be greater than denominator"
}]))]
pub struct SamplingFraction {
    /// Requests recorded out of `denominator`.
    #[schemars(range(min = 0))]
    pub numerator: u32,
    /// Out of how many (default 100).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub denominator: Option<u32>,
}

/// `headers`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientHeaders {
    /// Size of the request head (request line and header fields), in KiB.
    #[serde(default, rename = "maxRequestHeadersKiB")]
    #[schemars(range(min = *MAX_REQUEST_HEADERS_KIB.start(), max = *MAX_REQUEST_HEADERS_KIB.end()))]
    pub max_request_headers_kib: Option<i64>,
    /// Number of header fields.
    #[serde(default)]
    #[schemars(range(min = *MAX_HEADERS_COUNT.start(), max = *MAX_HEADERS_COUNT.end()))]
    pub max_headers_count: Option<i64>,
    /// Length of the request target (path and query), in bytes.
    #[serde(default)]
    #[schemars(range(min = *MAX_URI_BYTES.start(), max = *MAX_URI_BYTES.end()))]
    pub max_uri_bytes: Option<i64>,
}

/// `path`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientPath {
    /// Collapse runs of `/` into one.
    #[serde(default)]
    pub merge_slashes: Option<bool>,
    /// `KeepUnchanged`, `RejectRequest`, `UnescapeAndRedirect` or `UnescapeAndForward`.
    #[serde(default)]
    #[schemars(extend("enum" = ["KeepUnchanged", "RejectRequest", "UnescapeAndRedirect", "UnescapeAndForward"]))]
    pub escaped_slashes_action: Option<String>,
}

/// `timeout`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTimeout {
    /// HTTP timeouts.
    #[serde(default)]
    pub http: Option<ClientHttpTimeout>,
    /// Timeouts of TCP and TLS listeners' connections (TCPRoute, TLSRoute).
    #[serde(default)]
    pub tcp: Option<ClientTcpTimeout>,
}

/// `timeout.tcp` (GEP-2257 durations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTcpTimeout {
    /// A forwarded connection with no byte either way for this long is closed (default 1h;
    /// `0s`: no limit).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub idle_timeout: Option<String>,
}

/// `timeout.http` (GEP-2257 durations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.requestHeaderTimeout) || duration(self.requestHeaderTimeout) > duration('0s')",
    "message": "requestHeaderTimeout must be greater than 0s"
}]))]
pub struct ClientHttpTimeout {
    /// Time for a request head to arrive.
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub request_header_timeout: Option<String>,
    /// Time for a request body to arrive after its head (`0s`: no limit).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub request_body_timeout: Option<String>,
    /// Time a connection may stay without a request in flight (`0s`: no limit).
    #[serde(default)]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub idle_timeout: Option<String>,
}

/// `connection`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConnection {
    /// Open connections per socket.
    #[serde(default)]
    #[schemars(range(min = *MAX_CONNECTIONS.start(), max = *MAX_CONNECTIONS.end()))]
    pub max_connections: Option<i64>,
    /// Per-connection buffer bound.
    #[serde(default)]
    #[schemars(extend("minimum" = *BUFFER_LIMIT.start(), "maximum" = *BUFFER_LIMIT.end()))]
    pub buffer_limit: Option<ByteQuantity>,
}

/// `http2`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientHttp2 {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`.
    #[serde(default)]
    #[schemars(range(min = *MAX_CONCURRENT_STREAMS.start(), max = *MAX_CONCURRENT_STREAMS.end()))]
    pub max_concurrent_streams: Option<i64>,
    /// Client stream resets one connection may send.
    #[serde(default)]
    #[schemars(range(min = *MAX_RESETS_PER_CONNECTION.start(), max = *MAX_RESETS_PER_CONNECTION.end()))]
    pub max_resets_per_connection: Option<i64>,
    /// SETTINGS and PING frames one connection may send per second.
    #[serde(default)]
    #[schemars(range(min = *MAX_CONTROL_FRAMES_PER_SECOND.start(), max = *MAX_CONTROL_FRAMES_PER_SECOND.end()))]
    pub max_control_frames_per_second: Option<i64>,
    /// `SETTINGS_INITIAL_WINDOW_SIZE`.
    #[serde(default)]
    #[schemars(extend("minimum" = *WINDOW_SIZE.start(), "maximum" = *WINDOW_SIZE.end()))]
    pub initial_stream_window_size: Option<ByteQuantity>,
    /// The connection's flow-control window.
    #[serde(default)]
    #[schemars(extend("minimum" = *WINDOW_SIZE.start(), "maximum" = *WINDOW_SIZE.end()))]
    pub initial_connection_window_size: Option<ByteQuantity>,
}

/// `clientIPDetection`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientIpDetection {
    /// Trust `X-Forwarded-For` set by this many proxies.
    #[serde(default)]
    pub x_forwarded_for: Option<XForwardedFor>,
}

/// `clientIPDetection.xForwardedFor`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XForwardedFor {
    /// Proxies in front of the gateway whose entries are believed.
    #[serde(default)]
    #[schemars(range(min = *TRUSTED_HOPS.start(), max = *TRUSTED_HOPS.end()))]
    pub num_trusted_hops: Option<i64>,
}

/// `proxyProtocol`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    /// Whether connections start with a PROXY protocol (v1 or v2) header.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `tls`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTls {
    /// `"1.2"` or `"1.3"`. An unquoted YAML number (`1.3`) is read as its text; the API
    /// server, which checks the schema first, wants the string.
    #[serde(default, deserialize_with = "text_or_number")]
    #[schemars(extend("enum" = ["1.2", "1.3"]))]
    pub min_version: Option<String>,
    /// ALPN protocols offered, in preference order: `h2`, `http/1.1`.
    #[serde(default)]
    #[schemars(length(min = 1, max = 2))]
    #[schemars(extend("items" = {"type": "string", "enum": ["h2", "http/1.1"]}))]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub alpn_protocols: Option<Vec<String>>,
}

/// A byte count as written: an integer (`65536`) or a Kubernetes quantity-like string
/// (`32KiB`, `1Mi`, `64k`), parsed by `compile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum ByteQuantity {
    /// A plain number of bytes.
    Number(i64),
    /// Text with a unit.
    Text(String),
}

/// An integer, or a string of digits and a unit: `x-kubernetes-int-or-string`, as Kubernetes
/// quantities are.
impl JsonSchema for ByteQuantity {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("ByteQuantity")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // No `anyOf` of the two types: kube's structural rewrite empties its branches. A
        // `pattern` applies to strings only, and `minimum`/`maximum` (set per field) to
        // integers only.
        json_schema!({
            "x-kubernetes-int-or-string": true,
            "pattern": BYTE_SIZE_PATTERN,
        })
    }
}

impl<'de> Deserialize<'de> for ByteQuantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteQuantity, D::Error> {
        deserializer.deserialize_any(ByteQuantityVisitor)
    }
}

struct ByteQuantityVisitor;

impl Visitor<'_> for ByteQuantityVisitor {
    type Value = ByteQuantity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte size: an integer or a string such as 32KiB or 1MiB")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ByteQuantity, E> {
        Ok(ByteQuantity::Number(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ByteQuantity, E> {
        i64::try_from(value)
            .map(ByteQuantity::Number)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ByteQuantity, E> {
        Ok(ByteQuantity::Text(value.to_owned()))
    }
}

/// An optional string that may also be written as a YAML number (`minVersion: 1.3`).
fn text_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct TextOrNumber;

    impl Visitor<'_> for TextOrNumber {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string such as \"1.2\"")
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Option<String>, E> {
            Ok(Some(value.to_owned()))
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Option<String>, E> {
            Ok(Some(value.to_string()))
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Option<String>, E> {
            Ok(Some(value.to_string()))
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Option<String>, E> {
            Ok(Some(value.to_string()))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(TextOrNumber)
}

#[cfg(test)]
mod tests;
