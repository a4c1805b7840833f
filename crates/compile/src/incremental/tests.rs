//! The incremental compiler against the reference: random sequences of additions, changes and
//! deletions of every kind, each step's incremental result compared with a fresh
//! [`Compiler::build`] of the same store (numbered alike): snapshot content, every status
//! condition, `/config`, and the endpoints a registry following the steps would hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use model::{Store, parse_documents};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use snapshot::Snapshot;
use snapshot::backend::{BackendId, EndpointTarget};

use super::*;
use crate::backend_tls::tests::{ca_config_map, ca_pem, tls_secret};

/// Steps per seed and seeds: a few hundred steps in all, bounded for CI.
const STEPS: usize = 60;
const SEEDS: u64 = 10;

/// The objects the generator knows, by slot: each slot holds at most one object (its key).
const SLOTS: &[&str] = &[
    "gateway-a",
    "gateway-b",
    "namespace-a",
    "namespace-b",
    "grant-b",
    "secret-a",
    "secret-b",
    "ca-a",
    "traffic-policy",
    "security-policy",
    "ratelimit-policy",
    "keys-a",
    "tls-policy",
    "tls-route",
    "backend-a",
    "composition-a",
    "http-a-0",
    "http-a-1",
    "http-a-2",
    "http-a-3",
    "http-b-0",
    "http-b-1",
    "grpc-a-0",
    "grpc-b-0",
    "service-a-0",
    "service-a-1",
    "service-a-2",
    "service-b-0",
    "service-b-1",
    "slice-a-0",
    "slice-a-1",
    "slice-a-2",
    "slice-b-0",
    "slice-b-1",
];

const CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: ours}\nspec: {controllerName: portcullis.dev/gateway-controller}\n";

/// A random variant of the object in `slot`, as YAML.
fn variant(slot: &str, rng: &mut StdRng) -> String {
    let parts: Vec<&str> = slot.split('-').collect();
    match parts.as_slice() {
        ["gateway", "a"] => {
            let extra = if rng.random_bool(0.5) {
                "  - {name: apps, port: 8080, protocol: HTTP, hostname: \"*.example.com\", allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}}\n"
            } else {
                ""
            };
            // An HTTPS listener whose certificate is here or in namespace b (needing a
            // ReferenceGrant), and client certificate validation against a ConfigMap.
            let https = [
                "",
                "  - {name: https, port: 8443, protocol: HTTPS, hostname: \"*.example.com\", tls: {certificateRefs: [{name: cert}]}, allowedRoutes: {namespaces: {from: All}}}\n",
                "  - {name: https, port: 8443, protocol: HTTPS, tls: {certificateRefs: [{name: cert-b, namespace: b}]}, allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {team: web}}}}}\n",
            ][rng.random_range(0..3)];
            // Client certificate validation against a ConfigMap, and a client certificate
            // for backends.
            let tls = match rng.random_range(0..5) {
                0 | 1 => "",
                2 => {
                    "  tls: {frontend: {default: {validation: {caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]}}}}\n"
                }
                3 => "  tls: {backend: {clientCertificateRef: {name: cert}}}\n",
                _ => {
                    "  tls: {frontend: {default: {validation: {caCertificateRefs: [{group: \"\", kind: ConfigMap, name: ca}]}}}, backend: {clientCertificateRef: {name: cert}}}\n"
                }
            };
            let from = if rng.random_bool(0.7) { "All" } else { "Same" };
            format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: a}}\nspec:\n  gatewayClassName: ours\n  addresses: [{{type: IPAddress, value: 127.0.0.9}}]\n{tls}  listeners:\n  - {{name: http, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {{from: {from}}}}}}}\n{extra}{https}  - {{name: tls, port: 443, protocol: TLS, tls: {{mode: Passthrough}}, allowedRoutes: {{namespaces: {{from: All}}}}}}\n"
            )
        }
        ["gateway", "b"] => format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw2, namespace: b}}\nspec:\n  gatewayClassName: ours\n  addresses: [{{type: IPAddress, value: 127.0.0.10}}]\n  listeners:\n  - {{name: http, port: {}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}\n",
            [81, 82][rng.random_range(0..2)]
        ),
        ["namespace", namespace] => format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}, labels: {{team: {}}}}}\n",
            ["web", "other"][rng.random_range(0..2)]
        ),
        ["grant", "b"] => {
            let (group, kind) = [
                ("gateway.networking.k8s.io", "HTTPRoute"),
                ("gateway.networking.k8s.io", "GRPCRoute"),
                ("gateway.networking.k8s.io", "Gateway"),
                ("portcullis.dev", "Composition"),
            ][rng.random_range(0..4)];
            format!(
                "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\nmetadata: {{name: grant, namespace: b}}\nspec:\n  from: [{{group: {group}, kind: {kind}, namespace: a}}]\n  to: [{{group: \"\", kind: {}}}]\n",
                ["Service", "Secret"][rng.random_range(0..2)]
            )
        }
        ["secret", namespace] => {
            let name = if *namespace == "a" { "cert" } else { "cert-b" };
            if rng.random_bool(0.25) {
                format!(
                    "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {namespace}}}\ntype: kubernetes.io/tls\nstringData: {{tls.crt: nope, tls.key: nope}}\n"
                )
            } else {
                let host = ["a.example.com", "b.example.com"][rng.random_range(0..2)];
                tls_secret(namespace, name, host)
            }
        }
        ["ca", "a"] => {
            if rng.random_bool(0.25) {
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca, namespace: a}\ndata: {ca.crt: nope}\n".to_owned()
            } else {
                ca_config_map("a", "ca", &ca_pem())
            }
        }
        ["traffic", "policy"] => {
            // Mostly a Service the generated routes use (its ancestors follow them), else a
            // Service port, a route or a Gateway.
            let target = match rng.random_range(0..6) {
                0 => "{group: \"\", kind: Service, name: s0, sectionName: http}".to_owned(),
                1 => format!(
                    "{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r{}}}",
                    rng.random_range(0..3)
                ),
                2 => {
                    "{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}"
                        .to_owned()
                }
                _ => format!(
                    "{{group: \"\", kind: Service, name: s{}}}",
                    rng.random_range(0..3)
                ),
            };
            format!(
                "apiVersion: portcullis.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {{name: policy, namespace: a}}\nspec:\n  targetRefs: [{target}]\n  retry: {{numRetries: {}}}\n",
                rng.random_range(1..4)
            )
        }
        ["security", "policy"] => {
            // API keys from the Secret of slot `keys-a`, sometimes external authorization
            // through a Service the routes use (a backend of the snapshot), on a route, a rule
            // or the Gateway's listener.
            let target = match rng.random_range(0..4) {
                0 => {
                    "{group: gateway.networking.k8s.io, kind: Gateway, name: gw, sectionName: http}"
                        .to_owned()
                }
                1 => "{group: gateway.networking.k8s.io, kind: Gateway, name: gw}".to_owned(),
                _ => format!(
                    "{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r{}}}",
                    rng.random_range(0..3)
                ),
            };
            let ext_auth = if rng.random_bool(0.5) {
                format!(
                    "  extAuth: {{http: {{backendRefs: [{{name: s{}, port: 80}}]}}}}\n",
                    rng.random_range(0..3)
                )
            } else {
                String::new()
            };
            format!(
                "apiVersion: portcullis.dev/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: security, namespace: a}}\nspec:\n  targetRefs: [{target}]\n  apiKeyAuth: {{credentialRefs: [{{name: keys}}]}}\n{ext_auth}"
            )
        }
        ["ratelimit", "policy"] => {
            let target = if rng.random_bool(0.3) {
                "{group: gateway.networking.k8s.io, kind: Gateway, name: gw}".to_owned()
            } else {
                format!(
                    "{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r{}}}",
                    rng.random_range(0..3)
                )
            };
            format!(
                "apiVersion: portcullis.dev/v1alpha1\nkind: RateLimitPolicy\nmetadata: {{name: limits, namespace: a}}\nspec:\n  targetRefs: [{target}]\n  local: {{rules: [{{clientSelectors: [{{headers: [{{name: x-user, type: Distinct}}]}}], limit: {{requests: {}, unit: Second}}}}]}}\n",
                rng.random_range(1..100)
            )
        }
        ["keys", "a"] => format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: keys, namespace: a}}\nstringData: {{alice: key-{}}}\n",
            rng.random_range(0..3)
        ),
        ["tls", "policy"] => format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: BackendTLSPolicy\nmetadata: {{name: tls, namespace: a}}\nspec:\n  targetRefs: [{{group: \"\", kind: Service, name: s{}}}]\n  validation: {{hostname: backend.example.com, wellKnownCACertificates: System}}\n",
            rng.random_range(0..3)
        ),
        ["tls", "route"] => format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: TLSRoute\nmetadata: {{name: t, namespace: a}}\nspec:\n  parentRefs: [{{name: gw, sectionName: tls}}]\n  hostnames: [t{}.example.com]\n  rules: [{{backendRefs: [{{name: s{}, port: 80}}]}}]\n",
            rng.random_range(0..2),
            rng.random_range(0..3)
        ),
        ["backend", "a"] => format!(
            "apiVersion: portcullis.dev/v1alpha1\nkind: Backend\nmetadata: {{name: be, namespace: a}}\nspec: {{endpoints: [{{ip: 10.1.0.{}, port: 9000}}]}}\n",
            rng.random_range(1..4)
        ),
        ["composition", "a"] => composition(rng),
        ["http", namespace, index] => http_route(namespace, index, rng),
        ["grpc", namespace, index] => {
            let backend = backend_ref(namespace, rng);
            format!(
                "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {{name: g{index}, namespace: {namespace}}}\nspec:\n  parentRefs: [{}]\n  rules:\n  - matches: [{{method: {{service: svc.V{}, method: Get}}}}]\n    backendRefs: [{backend}]\n",
                parent_ref(rng),
                rng.random_range(0..3)
            )
        }
        ["service", namespace, index] => {
            let spec = match rng.random_range(0..4) {
                0 => "{ports: [{name: http, port: 80, targetPort: 8080}]}".to_owned(),
                1 => "{ports: [{name: http, port: 80, targetPort: 8080}, {name: grpc, port: 81, appProtocol: kubernetes.io/h2c}]}".to_owned(),
                2 => "{ports: [{name: web, port: 80}]}".to_owned(),
                _ => "{type: ExternalName, externalName: ext.example.com, ports: [{port: 80}]}".to_owned(),
            };
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: s{index}, namespace: {namespace}}}\nspec: {spec}\n"
            )
        }
        ["slice", namespace, index] => {
            // Sometimes a slice moves to another Service.
            let service = if rng.random_bool(0.8) {
                (*index).to_owned()
            } else {
                rng.random_range(0..3).to_string()
            };
            let ready = rng.random_bool(0.8);
            let port_name = ["http", "web"][rng.random_range(0..2)];
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s{index}-1, namespace: {namespace}, labels: {{kubernetes.io/service-name: s{service}}}}}\naddressType: IPv4\nports: [{{name: {port_name}, port: 8080}}]\nendpoints: [{{addresses: [10.0.{}.{}], conditions: {{ready: {ready}}}}}]\n",
                rng.random_range(0..2),
                rng.random_range(1..5)
            )
        }
        _ => panic!("unknown slot {slot}"),
    }
}

fn parent_ref(rng: &mut StdRng) -> &'static str {
    [
        "{name: gw, namespace: a}",
        "{name: gw, namespace: a, sectionName: http}",
        "{name: gw, namespace: a, sectionName: apps}",
        "{name: gw2, namespace: b}",
        "{name: missing, namespace: a}",
    ][rng.random_range(0..5)]
}

fn backend_ref(namespace: &str, rng: &mut StdRng) -> String {
    match rng.random_range(0..6) {
        0 => format!(
            "{{name: s{}, namespace: b, port: 80}}",
            rng.random_range(0..3)
        ),
        1 => "{group: portcullis.dev, kind: Backend, name: be, namespace: a}".to_owned(),
        2 => format!("{{name: s{}, port: 81}}", rng.random_range(0..3)),
        _ => format!(
            "{{name: s{}, namespace: {namespace}, port: 80, weight: {}}}",
            rng.random_range(0..3),
            rng.random_range(0..3)
        ),
    }
}

/// Composition `a/page`: a first part, and a second one reading the first, the path or
/// nothing (sometimes a part that does not exist: invalid), over Services of namespace a or b
/// (a ReferenceGrant from Compositions needed) or the `Backend`.
fn composition(rng: &mut StdRng) -> String {
    let mut backend = || match rng.random_range(0..5) {
        0 => "{name: s1, namespace: b, port: 80}".to_owned(),
        1 => "{group: portcullis.dev, kind: Backend, name: be}".to_owned(),
        _ => format!("{{name: s{}, port: 80}}", rng.random_range(0..3)),
    };
    let (first, second) = (backend(), backend());
    let path = [
        "/p/{response.first.json/id}",
        "/p/{response.first.json/id}",
        "/p/{request.path.id}",
        "/p?q={request.query.q}",
        "/p/{response.nope.json}",
    ][rng.random_range(0..5)];
    format!(
        "apiVersion: portcullis.dev/v1alpha1\nkind: Composition\nmetadata: {{name: page, namespace: a}}\nspec:\n  pathPattern: /c/{{id}}\n  parts:\n  - {{name: first, backendRef: {first}}}\n  - {{name: second, backendRef: {second}, path: \"{path}\"}}\n"
    )
}

fn http_route(namespace: &str, index: &str, rng: &mut StdRng) -> String {
    let mut text = format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r{index}, namespace: {namespace}}}\nspec:\n  parentRefs: [{}]\n",
        parent_ref(rng)
    );
    match rng.random_range(0..4) {
        0 => {}
        1 => text.push_str("  hostnames: [x.example.com]\n"),
        2 => text.push_str("  hostnames: [\"*.example.com\", y.test]\n"),
        _ => text.push_str("  hostnames: [z.test]\n"),
    }
    text.push_str("  rules:\n");
    for rule in 0..rng.random_range(1..3) {
        let path = match rng.random_range(0..5) {
            0 => "{type: Exact, value: /exact}".to_owned(),
            1 => "{type: RegularExpression, value: \"/re/[a-z]+\"}".to_owned(),
            2 => "{type: RegularExpression, value: \"/bad/(\"}".to_owned(),
            _ => format!("{{type: PathPrefix, value: /p{}}}", rng.random_range(0..3)),
        };
        let _ = write!(
            text,
            "  - matches: [{{path: {path}}}]\n    backendRefs: [{}, {}]\n",
            backend_ref(namespace, rng),
            backend_ref(namespace, rng)
        );
        match rng.random_range(0..10) {
            0..3 => {
                let _ = writeln!(
                    text,
                    "    filters: [{{type: RequestMirror, requestMirror: {{backendRef: {}}}}}]",
                    backend_ref(namespace, rng)
                );
            }
            // The Composition of slot `composition-a` (not found from namespace b), sometimes
            // with a header filter around it.
            3..6 => {
                let headers = if rng.random_bool(0.5) {
                    "{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-c, value: c}]}}, "
                } else {
                    ""
                };
                let _ = writeln!(
                    text,
                    "    filters: [{headers}{{type: ExtensionRef, extensionRef: {{group: portcullis.dev, kind: Composition, name: page}}}}]"
                );
            }
            6..8 => {
                let _ = writeln!(
                    text,
                    "    filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {{set: [{{name: x-rule, value: \"{rule}\"}}]}}}}]"
                );
            }
            _ => {}
        }
    }
    text
}

#[test]
fn changes_named_by_key_equal_the_changes_found_by_comparing_the_stores() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut objects: BTreeMap<&str, String> = BTreeMap::new();
    let mut store = store_of(&objects);
    for _ in 0..200 {
        let slot = SLOTS[rng.random_range(0..SLOTS.len())];
        if objects.contains_key(slot) && rng.random_bool(0.3) {
            objects.remove(slot);
        } else {
            objects.insert(slot, variant(slot, &mut rng));
        }
        let next = store_of(&objects);
        assert_eq!(
            crate::changes::StoreChanges::of_keys(&model::diff::changed_object_keys(&store, &next)),
            crate::changes::StoreChanges::between(&store, &next),
        );
        store = next;
    }
}

/// The store of the slots' current objects.
fn store_of(objects: &BTreeMap<&str, String>) -> Store {
    let mut store = Store::new();
    let text = std::iter::once(CLASS.to_owned())
        .chain(objects.values().cloned())
        .collect::<Vec<_>>()
        .join("---\n");
    for object in parse_documents(&text)
        .unwrap_or_else(|e| panic!("generated YAML parses: {e}\n{text}"))
        .objects
    {
        store.insert(object);
    }
    store
}

/// The snapshot as text, in a fixed order (sockets by address; tables print their entries).
/// Not the generation: a change that leaves the snapshot as it was keeps the old one.
fn describe(snapshot: &Snapshot) -> String {
    let mut text = String::new();
    let mut sockets: Vec<_> = snapshot.sockets.iter().collect();
    sockets.sort_by_key(|(address, _)| **address);
    for (address, socket) in sockets {
        let _ = writeln!(
            text,
            "socket {address} {:?} tls={} client={:?}\nlisteners {:#?}\ntls listeners {:#?}",
            socket.scheme,
            socket.tls.is_some(),
            socket.client,
            socket.listeners,
            socket.tls_listeners
        );
    }
    let _ = writeln!(text, "backends {:#?}", snapshot.backends);
    text
}

/// A certificate, DER.
type Der = Vec<u8>;

/// The certificate each listener serves and the one its route table presents to backends
/// (the first of each chain), by listener: what the sockets are built from, which their
/// `Debug` does not show.
fn certificates(compiler: &Compiler) -> Vec<(String, Option<Der>, Option<Der>)> {
    let first = |key: &rustls::sign::CertifiedKey| key.cert.first().map(|der| der.to_vec());
    compiler
        .context
        .listeners
        .slots
        .iter()
        .enumerate()
        .map(|(index, slot)| {
            let client = compiler
                .http_tables
                .get(&index)
                .and_then(|routes| routes.backend_client_certificate.as_ref())
                .and_then(|client| first(&client.key));
            (
                slot.label(),
                slot.certificate.as_deref().and_then(first),
                client,
            )
        })
        .collect()
}

fn sorted(endpoints: HashMap<BackendId, Vec<EndpointTarget>>) -> BTreeMap<String, Vec<String>> {
    endpoints
        .into_iter()
        .map(|(id, targets)| {
            let mut targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
            targets.sort();
            (id.to_string(), targets)
        })
        .collect()
}

/// Compares the incremental compiler with a fresh build of `store`.
fn assert_same(
    compiler: &Compiler,
    store: &Store,
    registry: &HashMap<BackendId, Vec<EndpointTarget>>,
    context: &str,
) {
    assert!(
        !compiler.backends.has_holes(),
        "{context}: backend table has holes"
    );
    let reference = Compiler::build_numbered(
        store,
        compiler.options.clone(),
        Some(compiler.backends.numbering()),
    );
    assert!(
        !reference.backends.has_holes(),
        "{context}: the incremental compiler's backends differ from a full compile's"
    );
    let (got, want) = (
        describe(compiler.snapshot()),
        describe(reference.snapshot()),
    );
    if got != want {
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{context}: snapshots differ from line {line}\n--- incremental\n{}\n--- full\n{}",
            got.lines()
                .skip(line.saturating_sub(5))
                .take(30)
                .collect::<Vec<_>>()
                .join("\n"),
            want.lines()
                .skip(line.saturating_sub(5))
                .take(30)
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    assert!(
        certificates(compiler) == certificates(&reference),
        "{context}: listener certificates differ"
    );
    assert_eq!(
        format!("{:#?}", compiler.status()),
        format!("{:#?}", reference.status()),
        "{context}: status differs"
    );
    assert_eq!(
        compiler.config_view(),
        reference.config_view(),
        "{context}: /config differs"
    );
    assert_eq!(
        sorted(registry.clone()),
        sorted(reference.all_endpoints(store)),
        "{context}: endpoints differ"
    );
}

/// Every object's status as text, by label.
fn statuses(compiler: &Compiler) -> BTreeMap<String, String> {
    compiler
        .status()
        .objects
        .iter()
        .map(|object| (object.label(), format!("{object:#?}")))
        .collect()
}

/// "Status only for what changed": an incremental step reports (in `statuses`, or in
/// `recompiled` for routes that are gone or no longer ours) every object whose status changed,
/// and what it reports is the new status.
fn assert_changed_statuses_reported(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    step: &Step,
    context: &str,
) {
    let reported: BTreeMap<String, String> = step
        .statuses
        .iter()
        .map(|object| (object.label(), format!("{object:#?}")))
        .collect();
    for (label, status) in &reported {
        assert_eq!(
            Some(status),
            after.get(label),
            "{context}: reported status of {label} is not its status"
        );
    }
    let labels: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for label in labels {
        if before.get(label) != after.get(label) {
            assert!(
                reported.contains_key(label) || step.recompiled.contains(label),
                "{context}: the status of {label} changed but the step does not report it"
            );
        }
    }
}

/// The slots of kinds only the context and the units' lookups read.
const LOOKED_UP: &[&str] = &[
    "namespace-a",
    "namespace-b",
    "grant-b",
    "secret-a",
    "secret-a",
    "secret-b",
    "ca-a",
];

#[test]
fn incremental_updates_equal_a_full_compile() {
    // Changes of Namespaces, ReferenceGrants, Secrets and ConfigMaps applied without a full
    // compile, over all seeds.
    let mut looked_up = 0;
    // Incremental steps that changed the BackendTrafficPolicy's ancestors (a route edit
    // changing which Gateways use its Service).
    let mut traffic_ancestors = 0;
    // Incremental steps that changed the Composition, and those after which a rule composes.
    let (mut composition_changes, mut composing) = (0, 0);
    for seed in 0..SEEDS {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut objects: BTreeMap<&str, String> = BTreeMap::new();
        // Start from a random half of the slots; in odd seeds, always with the
        // BackendTrafficPolicy and the Services of namespace a it may target, so route edits
        // move its ancestors.
        let with_policy = [
            "traffic-policy",
            "service-a-0",
            "service-a-1",
            "service-a-2",
        ];
        for slot in SLOTS {
            if rng.random_bool(0.5) || (seed % 2 == 1 && with_policy.contains(slot)) {
                objects.insert(slot, variant(slot, &mut rng));
            }
        }
        let mut store = store_of(&objects);
        let options = CompileOptions::default();
        let mut compiler = Compiler::build(&store, options);
        // What a registry following the steps holds: every backend's endpoints after a full
        // compile, the changed ones merged in otherwise.
        let mut registry = compiler.all_endpoints(&store);
        assert_same(&compiler, &store, &registry, &format!("seed {seed} start"));
        let (mut full, mut incremental) = (0, 0);
        for step in 0..STEPS {
            // Mostly routes, Services and slices, as in a cluster; sometimes what only the
            // context and lookups read (Namespaces, ReferenceGrants, Secrets, ConfigMaps);
            // sometimes anything.
            let routes = SLOTS.iter().position(|s| *s == "backend-a").unwrap_or(0);
            let slot = match rng.random_range(0..20) {
                0..14 => SLOTS[rng.random_range(routes..SLOTS.len())],
                14..17 => LOOKED_UP[rng.random_range(0..LOOKED_UP.len())],
                _ => SLOTS[rng.random_range(0..SLOTS.len())],
            };
            let action = if objects.contains_key(slot) && rng.random_bool(0.3) {
                objects.remove(slot);
                "delete"
            } else {
                objects.insert(slot, variant(slot, &mut rng));
                "set"
            };
            let next = store_of(&objects);
            let before = statuses(&compiler);
            // Odd steps are told what changed, as the file source tells the controller.
            let result = if step % 2 == 1 {
                compiler.update_changed(
                    &store,
                    &next,
                    step as u64 + 2,
                    &model::diff::changed_object_keys(&store, &next),
                )
            } else {
                compiler.update(&store, &next, step as u64 + 2)
            };
            if !result.full {
                let after = statuses(&compiler);
                assert_changed_statuses_reported(
                    &before,
                    &after,
                    &result,
                    &format!("seed {seed} step {step} ({action} {slot})"),
                );
                let policy = "BackendTrafficPolicy a/policy";
                if before.get(policy) != after.get(policy) {
                    traffic_ancestors += 1;
                }
            }
            if LOOKED_UP.contains(&slot) && !result.full {
                looked_up += 1;
            }
            if slot == "composition-a" && !result.full {
                composition_changes += 1;
            }
            if !result.full
                && compiler
                    .config_view()
                    .to_string()
                    .contains("\"compositions\"")
            {
                composing += 1;
            }
            if result.full {
                full += 1;
                registry = result.endpoints;
            } else {
                incremental += 1;
                registry.extend(result.endpoints);
                let live: std::collections::HashSet<&BackendId> =
                    compiler.snapshot().backends.iter().map(|b| &b.id).collect();
                registry.retain(|id, _| live.contains(id));
            }
            store = next;
            assert_same(
                &compiler,
                &store,
                &registry,
                &format!("seed {seed} step {step} ({action} {slot})"),
            );
        }
        eprintln!("seed {seed}: {incremental} incremental steps, {full} full");
        assert!(
            incremental > full,
            "seed {seed}: {incremental} incremental steps, {full} full: the generator should mostly exercise the incremental path"
        );
    }
    eprintln!("{looked_up} lookups changed incrementally");
    eprintln!("{traffic_ancestors} incremental BackendTrafficPolicy status changes");
    // Only its ancestors can change without a full compile (a change of its targets compiles
    // everything).
    assert!(
        traffic_ancestors >= 5,
        "only {traffic_ancestors} incremental steps changed the BackendTrafficPolicy's ancestors"
    );
    assert!(
        looked_up >= 10,
        "only {looked_up} changes of Namespaces, ReferenceGrants, Secrets or ConfigMaps were applied without a full compile"
    );
    eprintln!("{composition_changes} incremental Composition changes, {composing} steps composing");
    assert!(
        composition_changes >= 10 && composing >= 30,
        "only {composition_changes} Composition changes applied incrementally, {composing} incremental steps with a composing rule"
    );
}

/// A route moving from one Gateway to another, incrementally: the BackendTrafficPolicy on
/// its Service follows it (its ancestors), the step reports it, and a full compile agrees.
#[test]
fn a_route_edit_moves_the_traffic_policy_ancestors() {
    let mut objects: BTreeMap<&str, String> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(7);
    for slot in ["gateway-a", "gateway-b", "service-a-0"] {
        objects.insert(slot, variant(slot, &mut rng));
    }
    objects.insert(
        "traffic-policy",
        "apiVersion: portcullis.dev/v1alpha1\nkind: BackendTrafficPolicy\nmetadata: {name: policy, namespace: a}\nspec:\n  targetRefs: [{group: \"\", kind: Service, name: s0}]\n".to_owned(),
    );
    let route = |parent: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r0, namespace: a}}\nspec:\n  parentRefs: [{parent}]\n  rules: [{{backendRefs: [{{name: s0, port: 80}}]}}]\n"
        )
    };
    objects.insert("http-a-0", route("{name: gw, namespace: a}"));
    let store = store_of(&objects);
    let mut compiler = Compiler::build(&store, CompileOptions::default());
    let ancestors = |compiler: &Compiler| -> Vec<String> {
        let status = compiler.status();
        let policy = status
            .objects
            .iter()
            .find(|o| o.kind == "BackendTrafficPolicy")
            .expect("policy status");
        policy
            .ancestors
            .iter()
            .map(|a| format!("{}/{}", a.ancestor_ref.namespace, a.ancestor_ref.name))
            .collect()
    };
    assert_eq!(ancestors(&compiler), vec!["a/gw"]);

    objects.insert("http-a-0", route("{name: gw2, namespace: b}"));
    let next = store_of(&objects);
    let step = compiler.update(&store, &next, 2);
    assert!(!step.full, "a route edit is incremental");
    assert_eq!(ancestors(&compiler), vec!["b/gw2"]);
    assert!(
        step.statuses
            .iter()
            .any(|s| s.kind == "BackendTrafficPolicy" && s.ancestors.len() == 1),
        "the step reports the policy's new status"
    );
    let fresh = Compiler::build(&next, CompileOptions::default());
    assert_eq!(
        format!("{:#?}", compiler.status()),
        format!("{:#?}", fresh.status())
    );
}

/// Service `a/s0`.
const SERVICE_S0: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: s0, namespace: a}\nspec: {ports: [{name: http, port: 80}]}\n";

/// Composition `a/page` of one part over Service `part_service`, named by route `r0`'s rule;
/// route `r1` forwards to `s1`.
fn composing_routes(part_service: &str) -> BTreeMap<&'static str, String> {
    let mut objects: BTreeMap<&str, String> = BTreeMap::new();
    let mut rng = StdRng::seed_from_u64(3);
    objects.insert("gateway-a", variant("gateway-a", &mut rng));
    objects.insert(
        "composition-a",
        format!("apiVersion: portcullis.dev/v1alpha1\nkind: Composition\nmetadata: {{name: page, namespace: a}}\nspec:\n  parts: [{{name: only, backendRef: {{name: {part_service}, port: 80}}}}]\n"),
    );
    objects.insert(
        "http-a-0",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r0, namespace: a}\nspec:\n  parentRefs: [{name: gw, namespace: a, sectionName: http}]\n  rules: [{filters: [{type: ExtensionRef, extensionRef: {group: portcullis.dev, kind: Composition, name: page}}]}]\n".to_owned(),
    );
    objects.insert(
        "http-a-1",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r1, namespace: a}\nspec:\n  parentRefs: [{name: gw, namespace: a, sectionName: http}]\n  hostnames: [one.test]\n  rules: [{backendRefs: [{name: s1, port: 80}]}]\n".to_owned(),
    );
    objects
}

/// A Service a Composition's part names, and the Composition itself, change only the route
/// whose rule names it: incrementally, with the Composition's new status reported.
#[test]
fn a_composition_and_its_parts_services_recompile_exactly_their_routes() {
    let mut objects = composing_routes("s0");
    let store = store_of(&objects);
    let mut compiler = Compiler::build(&store, CompileOptions::default());
    let status = |compiler: &Compiler| {
        compiler
            .status()
            .objects
            .into_iter()
            .find(|o| o.kind == "Composition")
            .expect("the Composition's status")
    };
    assert!(
        !status(&compiler).is_healthy(),
        "Service a/s0 does not exist yet"
    );

    objects.insert("service-a-0", SERVICE_S0.to_owned());
    let next = store_of(&objects);
    let step = compiler.update(&store, &next, 2);
    assert!(!step.full, "a Service change is incremental");
    assert_eq!(step.recompiled, ["HTTPRoute a/r0"]);
    assert!(
        status(&compiler).is_healthy(),
        "{:?}",
        status(&compiler).problems
    );
    assert!(
        step.statuses
            .iter()
            .any(|s| s.kind == "Composition" && s.is_healthy()),
        "the step reports the Composition's new status"
    );
    assert!(
        compiler
            .snapshot()
            .backends
            .iter()
            .any(|b| b.id.to_string() == "Service a/s0:80"),
        "the part's backend is in the snapshot"
    );
    let registry = compiler.all_endpoints(&next);
    assert_same(&compiler, &next, &registry, "after the Service");

    let store = next;
    objects = composing_routes("s2");
    objects.insert("service-a-0", SERVICE_S0.to_owned());
    let next = store_of(&objects);
    let step = compiler.update(&store, &next, 3);
    assert!(!step.full, "a Composition change is incremental");
    assert_eq!(step.recompiled, ["HTTPRoute a/r0", "Composition a/page"]);
    assert!(
        !status(&compiler).is_healthy(),
        "Service a/s2 does not exist"
    );
    assert!(
        !compiler
            .snapshot()
            .backends
            .iter()
            .any(|b| b.id.to_string() == "Service a/s0:80"),
        "the part's old backend left the snapshot"
    );
    let registry = compiler.all_endpoints(&next);
    assert_same(&compiler, &next, &registry, "after the Composition");
}
