use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::{GatewayService, addresses};

fn service(value: serde_json::Value) -> Service {
    serde_json::from_value(value).expect("a valid Service in the test")
}

#[test]
fn load_balancer_ingress_gives_ips_and_hostnames_before_the_cluster_ip() {
    let service = service(json!({
        "metadata": {"name": "gw", "namespace": "portcullis-system"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"]},
        "status": {"loadBalancer": {"ingress": [
            {"ip": "203.0.113.7"},
            {"hostname": "gw.example.net"},
        ]}},
    }));
    assert_eq!(
        addresses(&service),
        vec![
            json!({"type": "IPAddress", "value": "203.0.113.7"}),
            json!({"type": "Hostname", "value": "gw.example.net"}),
        ]
    );
}

#[test]
fn without_ingress_the_cluster_ips_are_the_addresses() {
    let pending = service(json!({
        "metadata": {"name": "gw"},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                 "clusterIPs": ["10.96.0.10", "fd00::10"]},
        "status": {"loadBalancer": {}},
    }));
    assert_eq!(
        addresses(&pending),
        vec![
            json!({"type": "IPAddress", "value": "10.96.0.10"}),
            json!({"type": "IPAddress", "value": "fd00::10"}),
        ]
    );
    let headless = service(json!({
        "metadata": {"name": "gw"},
        "spec": {"clusterIP": "None", "clusterIPs": ["None"]},
    }));
    assert!(addresses(&headless).is_empty());
}

#[test]
fn the_flag_is_namespace_slash_name() {
    let parsed: GatewayService = "portcullis-system/portcullis".parse().expect("valid");
    assert_eq!(parsed.namespace, "portcullis-system");
    assert_eq!(parsed.name, "portcullis");
    for bad in ["portcullis", "/name", "ns/", "a/b/c"] {
        let error = bad.parse::<GatewayService>().expect_err(bad);
        assert!(error.contains("NAMESPACE/NAME"), "{error}");
    }
}
