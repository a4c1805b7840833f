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

/// A Deployment `name` in `ns` with one container whose `env` is `env`, selected by `app: <name>`.
fn deployment(name: &str, env: Value, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": "ns"},
           "spec": {"replicas": 1, "template": {
               "metadata": {"labels": {"app": name}},
               "spec": {"containers": [{"name": "c", "image": image, "env": env}]}}}})
}

/// A Service `name` in `ns` selecting `app: <name>` with `ports`.
fn service(name: &str, ports: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "ns"},
           "spec": {"selector": {"app": name}, "ports": ports}})
}

/// The one slice of Service `name`.
fn slice_of<'a>(slices: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = slices
        .iter()
        .filter(|slice| slice["metadata"]["labels"]["kubernetes.io/service-name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "{name}: {slices:#?}");
    found[0]
}

#[tokio::test]
async fn tcp_udp_and_coredns_pods_serve_their_own_protocols() {
    let image = "registry.k8s.io/gateway-api/conformance/echo-basic:v0.1.0";
    let objects = vec![
        deployment(
            "tcp-echo",
            json!([{"name": "TCP_ECHO_SERVER", "value": "1"},
                   {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                   {"name": "SERVICE_NAME", "value": "tcp-echo"}]),
            image,
        ),
        service(
            "tcp-echo",
            json!([{"name": "tcp", "protocol": "TCP", "port": 3000},
                   {"name": "udp", "protocol": "UDP", "port": 3000}]),
        ),
        deployment(
            "udp-echo",
            json!([{"name": "UDP_ECHO_SERVER", "value": "1"}, {"name": "SERVICE_NAME", "value": "udp-svc"}]),
            image,
        ),
        service(
            "udp-echo",
            json!([{"name": "udp", "protocol": "UDP", "port": 8080},
                   {"name": "tcp", "protocol": "TCP", "port": 8081}]),
        ),
        deployment("dns", json!([]), "registry.k8s.io/coredns/coredns:v1.14.6"),
        service(
            "dns",
            json!([{"name": "udp-dns", "protocol": "UDP", "port": 53}]),
        ),
    ];
    let (_workloads, slices) = Workloads::start(&objects, Ipv4Addr::LOCALHOST)
        .await
        .expect("starts");
    assert_eq!(slices.len(), 3, "{slices:#?}");

    // The TCP pod serves its TCP port with the TCP echo and leaves the UDP port out.
    let tcp = slice_of(&slices, "tcp-echo");
    assert_eq!(tcp["ports"].as_array().map(Vec::len), Some(1));
    assert_eq!(tcp["ports"][0]["protocol"], "TCP");
    let port = tcp["ports"][0]["port"].as_u64().expect("a port");
    let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, u16::try_from(port).expect("u16")));
    let report = testkit::tcp_echo::identify(addr, std::time::Duration::from_secs(5))
        .await
        .expect("the TCP echo answers");
    assert!(report.pod.starts_with("tcp-echo-"), "{report:?}");
    assert_eq!(
        (report.namespace.as_str(), report.service.as_str()),
        ("ns", "tcp-echo")
    );

    // The UDP pod serves its UDP port with the UDP echo, reporting SERVICE_NAME.
    let udp = slice_of(&slices, "udp-echo");
    assert_eq!(udp["ports"].as_array().map(Vec::len), Some(1));
    assert_eq!(udp["ports"][0]["protocol"], "UDP");
    let port = udp["ports"][0]["port"].as_u64().expect("a port");
    let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, u16::try_from(port).expect("u16")));
    let report = testkit::udp_echo::identify(addr, b"probe", std::time::Duration::from_secs(5))
        .await
        .expect("the UDP echo answers");
    assert_eq!(
        (report.request.as_str(), report.service.as_str()),
        ("probe", "udp-svc")
    );

    // The coredns pod answers DNS on its UDP port.
    let dns = slice_of(&slices, "dns");
    let port = dns["ports"][0]["port"].as_u64().expect("a port");
    let addr = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, u16::try_from(port).expect("u16")));
    crate::coredns::query(addr, "foo.bar.com.", std::time::Duration::from_secs(5))
        .await
        .expect("the emulated coredns answers");
}
