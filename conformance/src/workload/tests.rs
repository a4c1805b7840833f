//! Pods, echo servers and EndpointSlices from manifests.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use super::Workloads;

fn objects() -> Vec<Value> {
    vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "ns"},
               "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "ns"},
               "spec": {"selector": {"app": "web"}, "ports": [
                   {"name": "http", "port": 8080, "targetPort": 3000},
                   {"name": "h2c", "port": 8081, "targetPort": 3001, "appProtocol": "kubernetes.io/h2c"},
                   {"name": "dns", "port": 53, "protocol": "UDP"}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual", "namespace": "ns"},
               "spec": {"ports": [{"name": "first", "port": 8080}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "manual-ip4", "namespace": "ns",
                            "labels": {"kubernetes.io/service-name": "manual"}},
               "addressType": "IPv4", "ports": [{"name": "first", "port": 3000}]}),
    ]
}

#[tokio::test]
async fn every_replica_gets_a_slice_with_one_port_per_tcp_service_port() {
    let (_workloads, slices) = Workloads::start(&objects(), Ipv4Addr::LOCALHOST)
        .await
        .expect("starts");
    assert_eq!(slices.len(), 2, "{slices:#?}");
    let mut pods = Vec::new();
    for slice in &slices {
        assert_eq!(
            slice["metadata"]["labels"]["kubernetes.io/service-name"],
            "web"
        );
        let ports = slice["ports"].as_array().cloned().unwrap_or_default();
        let names: Vec<&str> = ports
            .iter()
            .filter_map(|port| port["name"].as_str())
            .collect();
        assert_eq!(names, ["http", "h2c"]);
        assert_ne!(ports[0]["port"], ports[1]["port"], "h2c has its own echo");
        assert_eq!(ports[1]["appProtocol"], "kubernetes.io/h2c");
        pods.push(
            slice["endpoints"][0]["targetRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_ne!(pods[0], pods[1]);
    for pod in &pods {
        let parts: Vec<&str> = pod.split('-').collect();
        assert_eq!(parts.len(), 3, "{pod} is <deployment>-<hash>-<suffix>");
        assert_eq!(parts[0], "web");
    }
}

#[tokio::test]
async fn empty_slices_are_filled_from_the_source_service() {
    let mut objects = objects();
    let (mut workloads, _slices) = Workloads::start(&objects, Ipv4Addr::LOCALHOST)
        .await
        .expect("starts");
    workloads
        .fill_empty_slices(&mut objects, ("ns", "web"))
        .await
        .expect("fills");
    let filled: Vec<&Value> = objects
        .iter()
        .filter(|object| object["metadata"]["labels"]["kubernetes.io/service-name"] == "manual")
        .collect();
    assert_eq!(filled.len(), 2);
    for slice in filled {
        assert_eq!(slice["ports"][0]["name"], "first");
        assert_eq!(slice["endpoints"][0]["addresses"][0], "127.0.0.1");
    }
}

#[tokio::test]
async fn mirror_logs_are_read_per_service() {
    let (workloads, slices) = Workloads::start(&objects(), Ipv4Addr::LOCALHOST)
        .await
        .expect("starts");
    let port = slices[0]["ports"][0]["port"]
        .as_u64()
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or(0);
    let client = testkit::HttpClient::without_keep_alive();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    client
        .get(addr, "x", "/m?id=1", &[])
        .await
        .expect("echo answers");
    assert!(workloads.has_logged("ns", "web", "/m?id=1"));
    assert!(!workloads.has_logged("ns", "manual", "/m?id=1"));
    assert_eq!(workloads.count_logged("ns", "web", "/m?id=1"), 1);
}
