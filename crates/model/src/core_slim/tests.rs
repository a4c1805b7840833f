//! The slim Service and EndpointSlice read real manifests (with every field `kubectl get -o
//! yaml` prints) and keep what compile needs.

use crate::{Object, parse_documents};

const SERVICE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
  uid: 0b7c5a6e-1a1b-4c1f-9b1e-000000000001
  resourceVersion: "4711"
  creationTimestamp: "2026-01-01T00:00:00Z"
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
  managedFields: [{manager: kubectl, operation: Update, apiVersion: v1}]
spec:
  type: ClusterIP
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  selector: {app: web}
  sessionAffinity: None
  ports:
  - {name: http, port: 80, targetPort: http, protocol: TCP, appProtocol: kubernetes.io/h2c}
  - {name: admin, port: 9000, targetPort: 9001}
status: {loadBalancer: {}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
- addresses: [10.0.0.7]
  conditions: {ready: true, serving: true, terminating: false}
  nodeName: node-1
  zone: eu-1a
  targetRef: {kind: Pod, name: web-1, namespace: shop, uid: 0b7c5a6e-1a1b-4c1f-9b1e-000000000002}
- addresses: [10.0.0.8]
"#;

#[test]
fn full_manifests_keep_the_fields_compile_reads() {
    let parsed = parse_documents(SERVICE).expect("parses");
    let [Object::Service(service), Object::EndpointSlice(slice)] = parsed.objects.as_slice() else {
        panic!("a Service and a slice: {:?}", parsed.objects);
    };
    assert_eq!(service.metadata.name.as_deref(), Some("web"));
    let spec = service.spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let ports = spec.ports.as_ref().expect("ports");
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0].app_protocol.as_deref(), Some("kubernetes.io/h2c"));
    assert_eq!(
        ports[0].target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("http".into()))
    );
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(slice.endpoints.len(), 2);
    assert_eq!(
        slice.endpoints[0].conditions.as_ref().and_then(|c| c.ready),
        Some(true)
    );
    assert_eq!(slice.endpoints[1].conditions, None);
    let port = &slice.ports.as_ref().expect("ports")[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("http"), Some(8080))
    );
}

#[test]
fn a_slice_with_null_endpoints_has_none() {
    // As the API server serves a slice without endpoints (`kubectl get -o json`).
    let text = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, namespace: shop}\naddressType: IPv6\nendpoints: null\nports: null\n";
    let parsed = parse_documents(text).expect("a slice without endpoints is valid");
    let [Object::EndpointSlice(slice)] = parsed.objects.as_slice() else {
        panic!("one EndpointSlice expected");
    };
    assert!(slice.endpoints.is_empty());
}

#[test]
fn a_slice_without_address_type_is_refused_naming_the_field() {
    let text = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s, namespace: shop}\nendpoints: []\n";
    let error = parse_documents(text)
        .expect_err("addressType is required")
        .to_string();
    assert!(error.contains("addressType"), "{error}");
}

#[test]
fn a_service_port_without_a_number_is_refused_naming_the_field() {
    let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec: {ports: [{name: http}]}\n";
    let error = parse_documents(text)
        .expect_err("port is required")
        .to_string();
    assert!(error.contains("port"), "{error}");
}
