//! The control loop over real objects parsed from YAML, a real `Registry`, `DataPlane` and
//! listener manager: which updates recompile, what gets published, and what `/status` says.

use std::collections::BTreeSet;
use std::path::PathBuf;

use source::FileReport;
use telemetry::{AccessLog, AccessLogFormat};
use upstream::pool::{PoolSettings, Pools};

use super::*;

/// A Gateway on `127.0.0.1:{port}` routing `{path}` to Service shop/web, whose one EndpointSlice
/// has the address `{endpoint}`.
const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: portcullis}
spec: {controllerName: portcullis.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: shop}
spec:
  gatewayClassName: portcullis
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, port: {port}, protocol: HTTP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: {path}}}]
    backendRefs: [{name: web, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {ports: [{name: http, port: 8080, targetPort: 3000}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 3000}]
endpoints:
- addresses: [{endpoint}]
  conditions: {ready: true}
"#;

/// A controller wired to real runtime parts, and the parts the tests look at.
struct Gateway {
    controller: Controller,
    plane: Arc<DataPlane>,
    registry: Arc<Registry>,
    admin: Arc<AdminState>,
    /// The listener port of [`CONFIG`], free when the test started.
    port: u16,
}

impl Gateway {
    fn new() -> Gateway {
        let metrics = Arc::new(Metrics::new());
        let registry = Arc::new(Registry::with_metrics(Arc::clone(&metrics)));
        let plane = Arc::new(DataPlane::new(
            Pools::new(Arc::clone(&metrics), &PoolSettings::default()),
            Arc::clone(&metrics),
            AccessLog::new(AccessLogFormat::Off),
        ));
        let endpoints_registry = Arc::clone(&registry);
        let admin = Arc::new(AdminState::new(Arc::clone(&metrics), move || {
            endpoints_registry.view()
        }));
        let controller = Controller::new(
            CompileOptions::default(),
            Arc::clone(&registry),
            Arc::clone(&plane),
            ListenerManager::new(Arc::clone(&plane)),
            Arc::clone(&admin),
            metrics,
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        Gateway {
            controller,
            plane,
            registry,
            admin,
            port,
        }
    }

    /// The update `generation` of [`CONFIG`] with this route path and endpoint address.
    fn update(&self, generation: u64, path: &str, endpoint: &str) -> Arc<SourceUpdate> {
        let text = CONFIG
            .replace("{port}", &self.port.to_string())
            .replace("{path}", path)
            .replace("{endpoint}", endpoint);
        let mut store = Store::new();
        for object in model::parse_documents(&text)
            .expect("fixture parses")
            .objects
        {
            store.insert(object);
        }
        Arc::new(SourceUpdate {
            store: Arc::new(store),
            files: Vec::new(),
            generation,
            // The controller compares stores itself (with the last one it compiled).
            changed_kinds: BTreeSet::new(),
            changed: None,
        })
    }

    fn snapshot(&self) -> Arc<snapshot::Snapshot> {
        Arc::clone(&self.plane.live().snapshot)
    }

    fn config_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.admin.config_json.load().bytes()).expect("/config is JSON")
    }

    fn status_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.admin.status_json.load().bytes()).expect("/status is JSON")
    }

    /// The `/endpoints` document as text, to look for addresses.
    fn endpoints(&self) -> String {
        self.registry.view().to_string()
    }
}

#[tokio::test]
async fn first_update_compiles_binds_and_publishes() {
    let mut gateway = Gateway::new();
    gateway
        .controller
        .apply(gateway.update(1, "/v1", "10.0.0.1"));

    assert_eq!(gateway.snapshot().generation, 1);
    assert_eq!(gateway.config_json()["generation"], 1);
    let status = gateway.status_json();
    assert_eq!(status["generation"], 1);
    assert_eq!(status["healthy"], true, "{status}");
    assert!(gateway.admin.is_ready(), "the listener is bound");
    assert!(!gateway.controller.has_bind_errors());
    assert!(gateway.endpoints().contains("10.0.0.1:3000"));
}

#[tokio::test]
async fn endpoint_only_change_takes_the_fast_path() {
    let mut gateway = Gateway::new();
    gateway
        .controller
        .apply(gateway.update(1, "/v1", "10.0.0.1"));
    let compiled = gateway.snapshot();

    gateway
        .controller
        .apply(gateway.update(2, "/v1", "10.0.0.2"));

    // Not recompiled: the very same snapshot still serves, and `/config` is unchanged.
    assert!(Arc::ptr_eq(&compiled, &gateway.snapshot()));
    assert_eq!(gateway.config_json()["generation"], 1);
    // The endpoints moved, and `/status` follows the update.
    let endpoints = gateway.endpoints();
    assert!(endpoints.contains("10.0.0.2:3000"), "{endpoints}");
    assert!(!endpoints.contains("10.0.0.1:3000"), "{endpoints}");
    assert_eq!(gateway.status_json()["generation"], 2);
}

#[tokio::test]
async fn route_change_publishes_a_new_generation() {
    let mut gateway = Gateway::new();
    gateway
        .controller
        .apply(gateway.update(1, "/v1", "10.0.0.1"));
    let first = gateway.snapshot();

    gateway
        .controller
        .apply(gateway.update(2, "/v2", "10.0.0.1"));

    let second = gateway.snapshot();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.generation, 2);
    assert_eq!(gateway.config_json()["generation"], 2);
    assert_eq!(gateway.status_json()["generation"], 2);
    assert!(gateway.admin.is_ready(), "the same socket stays bound");
}

#[tokio::test]
async fn a_skipped_update_is_not_lost() {
    // The watch channel may drop generation 2 (a route change); generation 3 differs from
    // generation 2 only in its endpoints, but from the store last compiled in its route too.
    let mut gateway = Gateway::new();
    gateway
        .controller
        .apply(gateway.update(1, "/v1", "10.0.0.1"));
    let _skipped = gateway.update(2, "/v2", "10.0.0.1");

    gateway
        .controller
        .apply(gateway.update(3, "/v2", "10.0.0.2"));

    assert_eq!(gateway.snapshot().generation, 3);
    assert_eq!(gateway.config_json()["generation"], 3);
}

#[tokio::test]
async fn rejected_file_makes_the_status_unhealthy() {
    let mut gateway = Gateway::new();
    let mut update = (*gateway.update(1, "/v1", "10.0.0.1")).clone();
    update.files.push(FileReport {
        path: PathBuf::from("config/broken.yaml"),
        objects: 0,
        skipped: Vec::new(),
        error: Some("invalid YAML: unexpected end".to_owned()),
        warnings: Vec::new(),
    });

    gateway.controller.apply(Arc::new(update));

    let status = gateway.status_json();
    assert_eq!(status["healthy"], false);
    assert_eq!(
        status["problems"],
        serde_json::json!(["config/broken.yaml: invalid YAML: unexpected end"])
    );
    // The other files' objects still serve.
    assert_eq!(gateway.snapshot().generation, 1);
}

#[tokio::test]
async fn the_status_sink_gets_everything_once_then_only_what_a_step_compiled_again() {
    let mut gateway = Gateway::new();
    let handed: Arc<Mutex<Vec<compile::StatusChange>>> = Arc::default();
    let sink = Arc::clone(&handed);
    gateway.controller.on_status(move |change, _store| {
        sink.lock().expect("not poisoned").push(change);
    });
    gateway
        .controller
        .apply(gateway.update(1, "/v1", "10.0.0.1"));
    // Endpoints only: no status can have changed, nothing is handed over.
    gateway
        .controller
        .apply(gateway.update(2, "/v1", "10.0.0.2"));
    // A route edit: its status and its Gateway's (the listener counting it), nothing else.
    gateway
        .controller
        .apply(gateway.update(3, "/v2", "10.0.0.2"));

    let handed = handed.lock().expect("not poisoned");
    assert_eq!(handed.len(), 2, "{handed:?}");
    let compile::StatusChange::Full(report) = &handed[0] else {
        panic!("the first change is not full: {:?}", handed[0]);
    };
    assert_eq!(report.objects.len(), 3, "class, Gateway and route");
    let compile::StatusChange::Partial {
        statuses,
        recompiled,
    } = &handed[1]
    else {
        panic!("a route edit is not partial: {:?}", handed[1]);
    };
    assert_eq!(recompiled, &["HTTPRoute shop/web"]);
    let mut labels: Vec<String> = statuses.iter().map(compile::ObjectStatus::label).collect();
    labels.sort();
    assert_eq!(labels, ["Gateway shop/gw", "HTTPRoute shop/web"]);
}

#[test]
fn live_endpoints_are_added_to_backends_and_to_composition_parts() {
    let live = serde_json::json!({"healthy": 1});
    let registry = serde_json::json!({"Service shop/web:80": live, "Backend shop/b": live});
    let mut forward = serde_json::json!({"matched": {"action": {"kind": "forward",
        "backends": [{"backend": "Service shop/web:80"}, {"invalid": "no such Service"}]}}});
    add_live_endpoints(&mut forward, &registry);
    assert_eq!(forward["matched"]["action"]["backends"][0]["live"], live);
    assert!(
        forward["matched"]["action"]["backends"][1]
            .get("live")
            .is_none()
    );
    let mut compose = serde_json::json!({"matched": {"action": {"kind": "compose",
        "composition": {"waves": [{"wave": 1, "parts": [{"name": "a", "backend": "Backend shop/b"}]},
                                  {"wave": 2, "parts": [{"name": "b", "backend": "Service shop/web:80"}]}]}}}});
    add_live_endpoints(&mut compose, &registry);
    let waves = &compose["matched"]["action"]["composition"]["waves"];
    assert_eq!(waves[0]["parts"][0]["live"], live);
    assert_eq!(waves[1]["parts"][0]["live"], live);
    let mut unmatched = serde_json::json!({"outcome": "no_route"});
    add_live_endpoints(&mut unmatched, &registry);
    assert_eq!(unmatched, serde_json::json!({"outcome": "no_route"}));
}
