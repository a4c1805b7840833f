//! ClientTrafficPolicy compile tests: every field reaching the snapshot, defaults, precedence,
//! merging over a shared socket, validation messages, conflicts, TLS handshakes and status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, ProtocolVersion, ServerConfig,
    ServerConnection, SignatureScheme, SupportedProtocolVersion,
};
use snapshot::client::{
    ClientIpDetection, ClientSettings, ClientTimeouts, EscapedSlashes, HeaderLimits, Http2Settings,
    PathPolicy,
};
use snapshot::{ListenerRoutes, SocketRoutes};

use crate::backend_tls::tests::tls_secret;
use crate::tests::{compile_yaml, lookup, object};
use crate::{Compiled, Condition, ConditionStatus, ObjectStatus};

/// Gateway infra/edge on 127.0.0.30: listeners `a` and `b` share port 80 (by hostname),
/// `other` is alone on port 81. A route on every listener.
const EDGE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: infra}
spec:
  gatewayClassName: portcullis
  addresses: [{value: 127.0.0.30}]
  listeners:
  - {name: a, port: 80, protocol: HTTP, hostname: a.example.com}
  - {name: b, port: 80, protocol: HTTP, hostname: b.example.com}
  - {name: other, port: 81, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra}
spec:
  parentRefs: [{name: edge}]
  rules: [{backendRefs: [{name: web, port: 8080}]}]
---
";

/// A ClientTrafficPolicy in infra with `targets` (a YAML list) and `body` (spec lines).
fn policy(name: &str, targets: &str, body: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {{name: {name}, namespace: infra}}\nspec:\n  targetRefs: {targets}\n{body}"
    )
}

/// A policy created at `created` (RFC 3339), for conflicts.
fn policy_created(name: &str, created: &str, targets: &str, body: &str) -> String {
    format!(
        "---\napiVersion: portcullis.dev/v1alpha1\nkind: ClientTrafficPolicy\nmetadata: {{name: {name}, namespace: infra, creationTimestamp: \"{created}\"}}\nspec:\n  targetRefs: {targets}\n{body}"
    )
}

const WHOLE: &str = "[{group: gateway.networking.k8s.io, kind: Gateway, name: edge}]";

fn listener_target(section: &str) -> String {
    format!(
        "[{{group: gateway.networking.k8s.io, kind: Gateway, name: edge, sectionName: {section}}}]"
    )
}

fn socket<'a>(compiled: &'a Compiled, address: &str) -> &'a SocketRoutes {
    let address: SocketAddr = address.parse().expect("socket address");
    compiled
        .snapshot
        .sockets
        .get(&address)
        .unwrap_or_else(|| panic!("no socket {address}"))
}

fn listener<'a>(compiled: &'a Compiled, address: &str, host: &str) -> &'a Arc<ListenerRoutes> {
    socket(compiled, address)
        .listeners
        .most_specific(host)
        .unwrap_or_else(|| panic!("no listener for {host} on {address}"))
}

fn condition<'a>(status: &'a ObjectStatus, kind: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {status:?}"))
}

fn policy_status<'a>(compiled: &'a Compiled, name: &str) -> &'a ObjectStatus {
    object(compiled, "ClientTrafficPolicy", "infra", name)
}

/// Every field set to a value other than its default.
const EVERY_FIELD: &str =
    "  headers: {maxRequestHeadersKiB: 32, maxHeadersCount: 50, maxUriBytes: 4096}
  path: {mergeSlashes: false, escapedSlashesAction: UnescapeAndRedirect}
  timeout: {http: {requestHeaderTimeout: 5s, requestBodyTimeout: 0s, idleTimeout: 1m30s},
            tcp: {idleTimeout: 10m}}
  connection: {maxConnections: 16384, bufferLimit: 64KiB}
  http2: {maxConcurrentStreams: 50, maxResetsPerConnection: 500, maxControlFramesPerSecond: 100,
          initialStreamWindowSize: 128KiB, initialConnectionWindowSize: 2MiB}
  clientIPDetection: {xForwardedFor: {numTrustedHops: 2}}
  proxyProtocol: {enabled: true}
  tls: {minVersion: \"1.3\", alpnProtocols: [http/1.1]}
  udp: {idleTimeout: 30s, maxFlows: 100, maxDatagramBytes: 1400}
";

#[test]
fn every_field_reaches_the_socket_and_listener() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}",
        policy("all", &listener_target("other"), EVERY_FIELD)
    ));
    let status = policy_status(&compiled, "all");
    assert!(status.is_healthy(), "{:?}", compiled.status.problems());
    assert_eq!(
        condition(status, "Accepted").message,
        "applies to Gateway infra/edge listener other"
    );
    let expected = ClientSettings {
        headers: HeaderLimits {
            max_request_headers_bytes: 32 * 1024,
            max_headers_count: 50,
            max_uri_bytes: 4096,
        },
        timeouts: ClientTimeouts {
            request_header: Duration::from_secs(5),
            request_body: None,
            idle: Some(Duration::from_secs(90)),
        },
        max_connections: Some(16384),
        buffer_limit: 64 * 1024,
        http2: Http2Settings {
            max_concurrent_streams: 50,
            max_resets_per_connection: 500,
            max_control_frames_per_second: 100,
            initial_stream_window_size: 128 * 1024,
            initial_connection_window_size: 2 * 1024 * 1024,
        },
        client_ip: ClientIpDetection {
            xff_trusted_hops: 2,
        },
        proxy_protocol: true,
        stream_idle: Some(Duration::from_secs(600)),
        // UDP limits are read per listener, never from a socket's merged settings, but the
        // listener's own settings (which the socket starts from) carry them.
        udp: snapshot::l4::UdpLimits {
            idle_timeout: Duration::from_secs(30),
            max_flows: 100,
            max_datagram_bytes: 1400,
        },
    };
    assert_eq!(*socket(&compiled, "127.0.0.30:81").client, expected);
    assert_eq!(
        listener(&compiled, "127.0.0.30:81", "any.example.com").path,
        PathPolicy {
            merge_slashes: false,
            escaped_slashes: EscapedSlashes::UnescapeAndRedirect,
        }
    );
    // Port 80 has no policy: the defaults.
    assert_eq!(
        *socket(&compiled, "127.0.0.30:80").client,
        ClientSettings::default()
    );
}

#[test]
fn absent_fields_keep_the_defaults() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}",
        policy("uri", WHOLE, "  headers: {maxUriBytes: 2048}\n")
    ));
    let expected = ClientSettings {
        headers: HeaderLimits {
            max_uri_bytes: 2048,
            ..HeaderLimits::default()
        },
        ..ClientSettings::default()
    };
    assert_eq!(*socket(&compiled, "127.0.0.30:81").client, expected);
    // The defaults themselves, spelled out: what the README documents.
    let defaults = ClientSettings::default();
    assert_eq!(defaults.headers.max_request_headers_bytes, 60 * 1024);
    assert_eq!(defaults.headers.max_headers_count, 100);
    assert_eq!(defaults.timeouts.request_header, Duration::from_secs(10));
    assert_eq!(
        defaults.timeouts.request_body,
        Some(Duration::from_secs(60))
    );
    assert_eq!(defaults.timeouts.idle, Some(Duration::from_secs(60)));
    assert_eq!(defaults.max_connections, None);
    assert_eq!(defaults.buffer_limit, 32 * 1024);
    assert!(!defaults.proxy_protocol);
    let path = listener(&compiled, "127.0.0.30:81", "x").path;
    assert_eq!(
        path,
        PathPolicy {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::RejectRequest
        }
    );
}

#[test]
fn listener_policy_beats_gateway_policy() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}",
        policy(
            "gateway-wide",
            WHOLE,
            "  headers: {maxUriBytes: 4096}\n  path: {mergeSlashes: false}\n"
        ),
        policy(
            "just-other",
            &listener_target("other"),
            "  headers: {maxHeadersCount: 20}\n"
        ),
    ));
    // The listener's policy is the whole story there: no field comes from the Gateway's.
    let other = &socket(&compiled, "127.0.0.30:81").client;
    assert_eq!(other.headers.max_headers_count, 20);
    assert_eq!(other.headers.max_uri_bytes, 8192);
    assert!(listener(&compiled, "127.0.0.30:81", "x").path.merge_slashes);
    let shared = &socket(&compiled, "127.0.0.30:80").client;
    assert_eq!(shared.headers.max_uri_bytes, 4096);
    assert_eq!(shared.headers.max_headers_count, 100);
    assert!(
        !listener(&compiled, "127.0.0.30:80", "a.example.com")
            .path
            .merge_slashes
    );
    assert_eq!(
        condition(policy_status(&compiled, "gateway-wide"), "Accepted").message,
        "applies to Gateway infra/edge listener a, Gateway infra/edge listener b"
    );
    assert_eq!(
        condition(policy_status(&compiled, "just-other"), "Accepted").message,
        "applies to Gateway infra/edge listener other"
    );
}

#[test]
fn listeners_sharing_a_port_merge_to_the_strictest() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}",
        policy(
            "for-a",
            &listener_target("a"),
            "  headers: {maxUriBytes: 4096, maxHeadersCount: 200}\n  timeout: {http: {requestHeaderTimeout: 20s, idleTimeout: 0s}}\n  connection: {maxConnections: 100}\n  http2: {initialStreamWindowSize: 1MiB}\n  clientIPDetection: {xForwardedFor: {numTrustedHops: 3}}\n"
        ),
        policy(
            "for-b",
            &listener_target("b"),
            "  headers: {maxUriBytes: 16384, maxHeadersCount: 50}\n  path: {escapedSlashesAction: KeepUnchanged}\n  timeout: {http: {requestHeaderTimeout: 5s, idleTimeout: 30s}}\n  http2: {initialStreamWindowSize: 65535}\n  clientIPDetection: {xForwardedFor: {numTrustedHops: 1}}\n"
        ),
    ));
    let merged = &socket(&compiled, "127.0.0.30:80").client;
    assert_eq!(merged.headers.max_uri_bytes, 4096);
    assert_eq!(merged.headers.max_headers_count, 50);
    assert_eq!(merged.timeouts.request_header, Duration::from_secs(5));
    // a turns the idle timeout off, b sets 30 s: the socket closes idle connections at 30 s.
    assert_eq!(merged.timeouts.idle, Some(Duration::from_secs(30)));
    assert_eq!(merged.max_connections, Some(100));
    assert_eq!(merged.http2.initial_stream_window_size, 65535);
    assert_eq!(merged.client_ip.xff_trusted_hops, 1);
    // Paths stay per listener.
    let a = listener(&compiled, "127.0.0.30:80", "a.example.com");
    let b = listener(&compiled, "127.0.0.30:80", "b.example.com");
    assert_eq!(a.path.escaped_slashes, EscapedSlashes::RejectRequest);
    assert_eq!(b.path.escaped_slashes, EscapedSlashes::KeepUnchanged);
    // The port-81 listener has no policy.
    assert_eq!(
        *socket(&compiled, "127.0.0.30:81").client,
        ClientSettings::default()
    );
    // Merging is not a conflict.
    assert!(policy_status(&compiled, "for-a").is_healthy());
    assert!(policy_status(&compiled, "for-b").is_healthy());
}

#[test]
fn invalid_values_are_named_and_the_rest_compiles() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}",
        policy(
            "fallback",
            WHOLE,
            "  headers: {maxHeadersCount: 30}\n"
        ),
        policy(
            "bad",
            &listener_target("other"),
            "  headers: {maxRequestHeadersKiB: 0, maxHeadersCount: 10001, maxUriBytes: 10}
  path: {escapedSlashesAction: Sometimes}
  timeout: {http: {requestHeaderTimeout: 0s, idleTimeout: 5 minutes}}
  connection: {maxConnections: -1, bufferLimit: 1KiB}
  http2: {maxConcurrentStreams: 0, maxResetsPerConnection: 5, initialStreamWindowSize: 64KB, initialConnectionWindowSize: 4Gi}
  clientIPDetection: {xForwardedFor: {numTrustedHops: 65}}
  tls: {minVersion: \"1.1\", alpnProtocols: [h2, h3, h2]}
"
        ),
    ));
    let status = policy_status(&compiled, "bad");
    let accepted = condition(status, "Accepted");
    assert_eq!(accepted.status, ConditionStatus::False);
    assert_eq!(accepted.reason, "Invalid");
    let at = "ClientTrafficPolicy infra/bad spec";
    let expected = vec![
        format!("{at}.headers.maxRequestHeadersKiB: must be between 1 and 8192"),
        format!("{at}.headers.maxHeadersCount: must be between 1 and 10000"),
        format!("{at}.headers.maxUriBytes: must be between 256 and 1048576"),
        format!(
            "{at}.path.escapedSlashesAction: \"Sometimes\" is not KeepUnchanged, RejectRequest, UnescapeAndRedirect or UnescapeAndForward"
        ),
        format!("{at}.timeout.http.requestHeaderTimeout: must be greater than 0s"),
        format!(
            "{at}.timeout.http.idleTimeout: \"5 minutes\" is not a duration (expected e.g. 500ms, 10s, 1m30s, 1h)"
        ),
        format!("{at}.connection.maxConnections: must be between 1 and 1000000"),
        format!("{at}.connection.bufferLimit: must be between 8192 and 67108864"),
        format!("{at}.http2.maxConcurrentStreams: must be between 1 and 2147483647"),
        format!("{at}.http2.maxResetsPerConnection: must be between 10 and 1000000"),
        format!(
            "{at}.http2.initialStreamWindowSize: \"64KB\" is not a byte size (expected e.g. 65536, 32KiB, 1MiB, 64k)"
        ),
        format!("{at}.http2.initialConnectionWindowSize: must be between 65535 and 2147483647"),
        format!("{at}.clientIPDetection.xForwardedFor.numTrustedHops: must be between 0 and 64"),
        format!(
            "{at}.tls.minVersion: \"1.1\" is not 1.2 or 1.3 (older versions are not supported)"
        ),
        format!("{at}.tls.alpnProtocols[1]: \"h3\" is not h2 or http/1.1"),
        format!("{at}.tls.alpnProtocols[2]: \"h2\" is listed twice"),
    ];
    assert_eq!(status.problems, expected);
    assert_eq!(accepted.message, expected.join("; "));
    // Not applied: the listener falls back to the Gateway's policy ...
    let other = &socket(&compiled, "127.0.0.30:81").client;
    assert_eq!(
        **other,
        ClientSettings {
            headers: HeaderLimits {
                max_headers_count: 30,
                ..HeaderLimits::default()
            },
            ..ClientSettings::default()
        }
    );
    assert_eq!(
        condition(policy_status(&compiled, "fallback"), "Accepted").message,
        "applies to Gateway infra/edge listener a, Gateway infra/edge listener b, Gateway infra/edge listener other"
    );
    // ... and the rest of the config keeps serving.
    assert_eq!(
        lookup(&compiled, "127.0.0.30:81", "x", "/").as_deref(),
        Some("HTTPRoute infra/r rules[0]")
    );
    assert!(object(&compiled, "Gateway", "infra", "edge").is_healthy());
}

#[test]
fn older_policy_wins_a_conflict() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}",
        policy_created(
            "z-older",
            "2024-01-01T00:00:00Z",
            &listener_target("other"),
            "  headers: {maxUriBytes: 1024}\n"
        ),
        policy_created(
            "a-newer",
            "2025-01-01T00:00:00Z",
            &listener_target("other"),
            "  headers: {maxUriBytes: 2048}\n"
        ),
    ));
    assert_eq!(
        socket(&compiled, "127.0.0.30:81")
            .client
            .headers
            .max_uri_bytes,
        1024
    );
    let newer = policy_status(&compiled, "a-newer");
    let accepted = condition(newer, "Accepted");
    assert_eq!(
        (accepted.status, accepted.reason),
        (ConditionStatus::False, "Conflicted")
    );
    assert_eq!(
        accepted.message,
        "ClientTrafficPolicy infra/a-newer spec.targetRefs[0]: Gateway infra/edge listener other already has ClientTrafficPolicy infra/z-older, which is older"
    );
    assert!(policy_status(&compiled, "z-older").is_healthy());
}

#[test]
fn missing_targets_are_target_not_found() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}{}",
        policy(
            "no-gateway",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: nope}]",
            ""
        ),
        policy("no-listener", &listener_target("nope"), ""),
        policy(
            "wrong-kind",
            "[{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}]",
            ""
        ),
    ));
    let cases = [
        (
            "no-gateway",
            "ClientTrafficPolicy infra/no-gateway spec.targetRefs[0]: Gateway infra/nope not found",
        ),
        (
            "no-listener",
            "ClientTrafficPolicy infra/no-listener spec.targetRefs[0]: Gateway infra/edge has no listener named \"nope\"",
        ),
        (
            "wrong-kind",
            "ClientTrafficPolicy infra/wrong-kind spec.targetRefs[0]: gateway.networking.k8s.io/HTTPRoute is not a supported target (only gateway.networking.k8s.io/Gateway, whole or one listener by sectionName)",
        ),
    ];
    for (name, message) in cases {
        let accepted = condition(policy_status(&compiled, name), "Accepted");
        assert_eq!(
            (accepted.status, accepted.reason),
            (ConditionStatus::False, "TargetNotFound"),
            "{name}"
        );
        assert_eq!(accepted.message, message);
    }
}

#[test]
fn escaped_slashes_action_parses_all_four_values() {
    let values = [
        ("KeepUnchanged", EscapedSlashes::KeepUnchanged),
        ("RejectRequest", EscapedSlashes::RejectRequest),
        ("UnescapeAndRedirect", EscapedSlashes::UnescapeAndRedirect),
        ("UnescapeAndForward", EscapedSlashes::UnescapeAndForward),
    ];
    for (name, expected) in values {
        let compiled = compile_yaml(&format!(
            "{EDGE}{}",
            policy(
                "slashes",
                WHOLE,
                &format!("  path: {{escapedSlashesAction: {name}}}\n")
            )
        ));
        let path = listener(&compiled, "127.0.0.30:81", "x").path;
        assert_eq!(path.escaped_slashes, expected, "{name}");
        assert!(path.merge_slashes, "{name}: mergeSlashes keeps its default");
    }
}

#[test]
fn proxy_protocol_disagreement_keeps_the_first_listeners_setting() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}",
        policy(
            "for-a",
            &listener_target("a"),
            "  proxyProtocol: {enabled: true}\n"
        ),
        policy(
            "for-b",
            &listener_target("b"),
            "  proxyProtocol: {enabled: false}\n  headers: {maxUriBytes: 1024}\n"
        ),
    ));
    let merged = &socket(&compiled, "127.0.0.30:80").client;
    assert!(merged.proxy_protocol);
    // The rest of b's policy still applies.
    assert_eq!(merged.headers.max_uri_bytes, 1024);
    let status = policy_status(&compiled, "for-b");
    assert_eq!(condition(status, "Accepted").status, ConditionStatus::True);
    let conflicted = condition(status, "Conflicted");
    assert_eq!(conflicted.status, ConditionStatus::True);
    assert_eq!(
        conflicted.message,
        "ClientTrafficPolicy infra/for-b spec.proxyProtocol.enabled: Gateway infra/edge listener b shares port 80 with Gateway infra/edge listener a, which has it enabled: the first listener's setting applies to the port"
    );
    assert!(policy_status(&compiled, "for-a").is_healthy());
}

#[test]
fn proxy_protocol_on_a_listener_whose_neighbour_has_no_policy_is_reported_on_its_policy() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}",
        policy(
            "for-a",
            &listener_target("a"),
            "  proxyProtocol: {enabled: true}\n"
        ),
    ));
    assert!(socket(&compiled, "127.0.0.30:80").client.proxy_protocol);
    let conflicted = condition(policy_status(&compiled, "for-a"), "Conflicted");
    assert_eq!(
        conflicted.message,
        "ClientTrafficPolicy infra/for-a spec.proxyProtocol.enabled: Gateway infra/edge listener a shares port 80 with Gateway infra/edge listener b, which has no ClientTrafficPolicy setting it: the first listener's setting (enabled) applies to that listener too"
    );
}

#[test]
fn whole_gateway_policy_covers_its_listener_sets() {
    let gateway = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: infra}
spec:
  gatewayClassName: portcullis
  addresses: [{value: 127.0.0.31}]
  allowedListeners: {namespaces: {from: Same}}
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: more, namespace: infra}
spec:
  parentRef: {name: edge, kind: Gateway, group: gateway.networking.k8s.io}
  listeners:
  - {name: extra, port: 8081, protocol: HTTP}
";
    let compiled = compile_yaml(&format!(
        "{gateway}{}",
        policy("wide", WHOLE, "  headers: {maxUriBytes: 1024}\n")
    ));
    assert_eq!(
        socket(&compiled, "127.0.0.31:8081")
            .client
            .headers
            .max_uri_bytes,
        1024
    );
    assert_eq!(
        condition(policy_status(&compiled, "wide"), "Accepted").message,
        "applies to Gateway infra/edge listener http, ListenerSet infra/more listener extra"
    );
}

#[test]
fn config_view_shows_each_listeners_client_settings() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}",
        policy(
            "uri",
            &listener_target("other"),
            "  headers: {maxUriBytes: 2048}\n  timeout: {http: {idleTimeout: 0s}}\n"
        )
    ));
    let listeners = compiled.config_view["listeners"]
        .as_array()
        .expect("listeners");
    let client = |name: &str| {
        listeners
            .iter()
            .find(|l| l["listener"] == name)
            .map(|l| l["client"].clone())
            .unwrap_or_else(|| panic!("no listener {name}"))
    };
    let other = client("Gateway infra/edge listener other");
    assert_eq!(other["policy"], "ClientTrafficPolicy infra/uri");
    assert_eq!(other["headers"]["maxUriBytes"], 2048);
    assert!(other["timeout"]["idleTimeout"].is_null());
    assert_eq!(other["tls"]["minVersion"], "1.2");
    let a = client("Gateway infra/edge listener a");
    assert!(a["policy"].is_null());
    assert_eq!(a["headers"]["maxUriBytes"], 8192);
    assert_eq!(a["timeout"]["idleTimeout"], "60s");
    assert_eq!(a["path"]["escapedSlashesAction"], "RejectRequest");
}

// --- TLS ---

/// Gateway infra/secure on 127.0.0.32:443 with HTTPS listeners `one` (one.example.com) and
/// `two` (two.example.com), each with its certificate.
fn secure_gateway() -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: secure, namespace: infra}}
spec:
  gatewayClassName: portcullis
  addresses: [{{value: 127.0.0.32}}]
  listeners:
  - {{name: one, port: 443, protocol: HTTPS, hostname: one.example.com, tls: {{certificateRefs: [{{name: one}}]}}}}
  - {{name: two, port: 443, protocol: HTTPS, hostname: two.example.com, tls: {{certificateRefs: [{{name: two}}]}}}}
{}{}",
        tls_secret("infra", "one", "one.example.com"),
        tls_secret("infra", "two", "two.example.com"),
    )
}

fn secure_target(section: &str) -> String {
    format!(
        "[{{group: gateway.networking.k8s.io, kind: Gateway, name: secure, sectionName: {section}}}]"
    )
}

fn server_config(compiled: &Compiled) -> Arc<ServerConfig> {
    let tls = socket(compiled, "127.0.0.32:443")
        .tls
        .as_ref()
        .expect("an HTTPS socket has TLS");
    Arc::clone(&tls.config)
}

/// Accepts any server certificate: these tests are about versions and ALPN, not trust.
#[derive(Debug)]
struct AnyServer;

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A handshake in memory between `server` and a client speaking only `versions` and offering
/// `alpn`, for one.example.com: the version and ALPN protocol agreed, or the error.
fn handshake(
    server: Arc<ServerConfig>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&str],
) -> Result<(ProtocolVersion, Option<String>), rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    let name = ServerName::try_from("one.example.com").expect("a DNS name");
    let mut client = ClientConnection::new(Arc::new(config), name)?;
    let mut server = ServerConnection::new(server)?;
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            break;
        }
        let mut bytes = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut bytes).expect("write to memory");
        }
        server
            .read_tls(&mut bytes.as_slice())
            .expect("read from memory");
        server.process_new_packets()?;
        let mut bytes = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut bytes).expect("write to memory");
        }
        client
            .read_tls(&mut bytes.as_slice())
            .expect("read from memory");
        client.process_new_packets()?;
    }
    let version = client.protocol_version().expect("handshake finished");
    let protocol = client
        .alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    Ok((version, protocol))
}

const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[test]
fn https_defaults_accept_tls_12_and_offer_h2_first() {
    let compiled = compile_yaml(&secure_gateway());
    let config = server_config(&compiled);
    assert_eq!(
        handshake(Arc::clone(&config), TLS12, &["h2", "http/1.1"]).expect("TLS 1.2 accepted"),
        (ProtocolVersion::TLSv1_2, Some("h2".to_owned()))
    );
    assert_eq!(
        handshake(config, TLS13, &["h2", "http/1.1"]).expect("TLS 1.3 accepted"),
        (ProtocolVersion::TLSv1_3, Some("h2".to_owned()))
    );
}

#[test]
fn tls_min_version_13_refuses_tls_12_clients() {
    let compiled = compile_yaml(&format!(
        "{}{}",
        secure_gateway(),
        policy(
            "modern",
            &secure_target("two"),
            "  tls: {minVersion: \"1.3\", alpnProtocols: [http/1.1]}\n"
        )
    ));
    assert!(policy_status(&compiled, "modern").is_healthy());
    let tls = socket(&compiled, "127.0.0.32:443")
        .tls
        .as_ref()
        .expect("TLS");
    assert_eq!(
        tls.handshake().min_version,
        snapshot::tls::MinTlsVersion::Tls13
    );
    let config = server_config(&compiled);
    // Listener two asks for TLS 1.3: the whole socket (listener one included) refuses 1.2.
    let refused = handshake(Arc::clone(&config), TLS12, &["h2", "http/1.1"]);
    assert!(
        matches!(refused, Err(rustls::Error::PeerIncompatible(_))),
        "{refused:?}"
    );
    // Its ALPN list is the only one set on the port: h2 is not offered.
    assert_eq!(
        handshake(config, TLS13, &["h2", "http/1.1"]).expect("TLS 1.3 accepted"),
        (ProtocolVersion::TLSv1_3, Some("http/1.1".to_owned()))
    );
}

#[test]
fn the_first_listeners_alpn_list_wins_the_port() {
    let compiled = compile_yaml(&format!(
        "{}{}{}",
        secure_gateway(),
        policy(
            "for-one",
            &secure_target("one"),
            "  tls: {alpnProtocols: [h2]}\n"
        ),
        policy(
            "for-two",
            &secure_target("two"),
            "  tls: {alpnProtocols: [http/1.1]}\n"
        ),
    ));
    assert_eq!(
        server_config(&compiled).alpn_protocols,
        vec![b"h2".to_vec()]
    );
    assert!(policy_status(&compiled, "for-one").is_healthy());
    let conflicted = condition(policy_status(&compiled, "for-two"), "Conflicted");
    assert_eq!(
        conflicted.message,
        "ClientTrafficPolicy infra/for-two spec.tls.alpnProtocols: Gateway infra/secure listener two shares port 443 with Gateway infra/secure listener one, whose ALPN protocols (h2) apply to the port"
    );
}

/// The policy's ancestors as `name[/section]: Accepted reason`.
fn ancestors(compiled: &Compiled, name: &str) -> Vec<String> {
    policy_status(compiled, name)
        .ancestors
        .iter()
        .map(|ancestor| {
            let reference = &ancestor.ancestor_ref;
            assert_eq!(
                (
                    reference.group.as_ref(),
                    reference.kind.as_ref(),
                    reference.namespace.as_str()
                ),
                ("gateway.networking.k8s.io", "Gateway", "infra")
            );
            assert_eq!(
                ancestor.controller_name.as_ref(),
                "portcullis.dev/gateway-controller"
            );
            let accepted = ancestor
                .conditions
                .iter()
                .find(|c| c.kind == "Accepted")
                .expect("Accepted on the ancestor");
            let section = reference
                .section_name
                .as_ref()
                .map(|s| format!("/{s}"))
                .unwrap_or_default();
            format!("{}{section}: {}", reference.name, accepted.reason)
        })
        .collect()
}

#[test]
fn each_targeted_gateway_of_ours_is_an_ancestor() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}{}",
        policy(
            "both",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: edge}, {group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}]",
            ""
        ),
        policy_created(
            "z-older",
            "2024-01-01T00:00:00Z",
            &listener_target("other"),
            ""
        ),
        policy_created(
            "a-newer",
            "2025-01-01T00:00:00Z",
            &listener_target("other"),
            ""
        ),
    ));
    assert_eq!(
        ancestors(&compiled, "both"),
        vec!["edge: Accepted", "gw/http: Accepted"]
    );
    assert_eq!(
        ancestors(&compiled, "z-older"),
        vec!["edge/other: Accepted"]
    );
    assert_eq!(
        ancestors(&compiled, "a-newer"),
        vec!["edge/other: Conflicted"]
    );
}

#[test]
fn refused_policies_show_why_on_the_gateways_of_ours_they_name() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}{}",
        policy("invalid", WHOLE, "  headers: {maxUriBytes: -1}\n"),
        policy("no-listener", &listener_target("nope"), ""),
        policy(
            "no-gateway",
            "[{group: gateway.networking.k8s.io, kind: Gateway, name: nope}]",
            ""
        ),
    ));
    assert_eq!(ancestors(&compiled, "invalid"), vec!["edge: Invalid"]);
    assert_eq!(
        ancestors(&compiled, "no-listener"),
        vec!["edge: TargetNotFound"]
    );
    // No Gateway of ours to report on: only `/status` and `check` show it.
    assert!(ancestors(&compiled, "no-gateway").is_empty());
    assert_eq!(
        condition(policy_status(&compiled, "no-gateway"), "Accepted").reason,
        "TargetNotFound"
    );
}

#[test]
fn tracing_sampling_reaches_the_listeners_and_bad_fractions_are_named() {
    let compiled = compile_yaml(&format!(
        "{EDGE}{}{}",
        policy(
            "sampled",
            WHOLE,
            "  tracing: {samplingFraction: {numerator: 1, denominator: 4}}\n"
        ),
        policy(
            "too-much",
            &listener_target("other"),
            "  tracing: {samplingFraction: {numerator: 5, denominator: 4}}\n"
        ),
    ));
    let sampling = listener(&compiled, "127.0.0.30:80", "a.example.com").tracing;
    assert_eq!(sampling.map(|s| s.ratio), Some(0.25));
    let accepted = condition(policy_status(&compiled, "too-much"), "Accepted");
    assert_eq!(accepted.status, ConditionStatus::False);
    assert!(
        accepted.message.contains(
            "spec.tracing.samplingFraction.numerator: 5 is greater than the denominator 4"
        ),
        "{}",
        accepted.message
    );
    // Without a policy of its own, the listener keeps the gateway's default sampler.
    let default = compile_yaml(EDGE);
    assert_eq!(listener(&default, "127.0.0.30:81", "x").tracing, None);
    let percent = compile_yaml(&format!(
        "{EDGE}{}",
        policy(
            "percent",
            WHOLE,
            "  tracing: {samplingFraction: {numerator: 5}}\n"
        )
    ));
    let sampling = listener(&percent, "127.0.0.30:81", "x").tracing;
    assert_eq!(sampling.map(|s| s.ratio), Some(0.05));
}
