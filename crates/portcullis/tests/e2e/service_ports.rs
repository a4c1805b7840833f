//! How a Service backendRef finds its endpoints (DESIGN §3, "Backends"): the Service port by
//! number, then the ports of EndpointSlices labelled `kubernetes.io/service-name` matched by
//! that Service port's name, with `targetPort` used when a slice lists no ports.

use anyhow::ensure;
use http::StatusCode;
use serde_json::json;

use crate::fixture::manifest::{NS, http_route, path_match, rule, service};
use crate::fixture::running::{Echoes, HOST, TestGateway, ensure_route_condition};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_port_selects_the_slice_port_with_its_name() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["web", "admin", "decoy"]).await?;
    let multi_port = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "multi", "namespace": NS},
        "spec": {"ports": [
            {"name": "web", "port": 80},
            {"name": "admin", "port": 81},
        ]},
    });
    // One slice, one address, two named ports: the name decides which port a request uses.
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "multi-1", "namespace": NS, "labels": {"kubernetes.io/service-name": "multi"}},
        "addressType": "IPv4",
        "ports": [
            {"name": "admin", "port": echoes.addr("admin").port()},
            {"name": "web", "port": echoes.addr("web").port()},
        ],
        "endpoints": [{"addresses": ["127.0.0.1"]}],
    });
    // A slice of another Service with the same port names must not be used.
    let decoy = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "other-1", "namespace": NS, "labels": {"kubernetes.io/service-name": "other"}},
        "addressType": "IPv4",
        "ports": [
            {"name": "web", "port": echoes.addr("decoy").port()},
            {"name": "admin", "port": echoes.addr("decoy").port()},
        ],
        "endpoints": [{"addresses": ["127.0.0.1"]}],
    });
    let route = http_route(
        "multi",
        &[],
        vec![
            rule(
                vec![path_match("PathPrefix", "/web")],
                vec![json!({"name": "multi", "port": 80})],
            ),
            rule(
                vec![path_match("PathPrefix", "/admin")],
                vec![json!({"name": "multi", "port": 81})],
            ),
        ],
    );
    let gateway = TestGateway::start(&[multi_port, slice, decoy, route]).await?;

    for _ in 0..5 {
        ensure!(
            gateway.pod(HOST, "/web", &[]).await? == "web",
            "port 80 (web) goes to the web port"
        );
        ensure!(
            gateway.pod(HOST, "/admin", &[]).await? == "admin",
            "port 81 (admin) goes to the admin port"
        );
    }
    ensure!(
        echoes.server("decoy").requests() == 0,
        "another Service's slice was used"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_target_port_applies_to_slices_without_ports() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["target"]).await?;
    let mut target_port_service = service(NS, "target", None);
    target_port_service["spec"]["ports"][0]["targetPort"] = json!(echoes.addr("target").port());
    let portless_slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "target-1", "namespace": NS, "labels": {"kubernetes.io/service-name": "target"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
    });
    let route = http_route(
        "target",
        &[],
        vec![rule(vec![], vec![json!({"name": "target", "port": 80})])],
    );
    let gateway = TestGateway::start(&[target_port_service, portless_slice, route]).await?;
    ensure!(
        gateway.pod(HOST, "/", &[]).await? == "target",
        "the targetPort is used"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_ref_to_a_port_the_service_lacks_is_not_found() -> anyhow::Result<()> {
    let echoes = Echoes::start(&["a"]).await?;
    let mut documents = crate::fixture::manifest::service_backend(NS, "a", &[echoes.addr("a")]);
    documents.push(http_route(
        "wrong-port",
        &[],
        vec![rule(vec![], vec![json!({"name": "a", "port": 8080})])],
    ));
    let gateway = TestGateway::start(&documents).await?;
    let status = gateway.status_of(HOST, "/").await?;
    ensure!(
        status == StatusCode::INTERNAL_SERVER_ERROR,
        "expected 500, got {status}"
    );
    ensure_route_condition(
        &gateway.status().await?,
        "wrong-port",
        "ResolvedRefs",
        "False",
        "BackendNotFound",
    )?;
    ensure!(
        echoes.server("a").requests() == 0,
        "the Service's endpoint got traffic"
    );
    Ok(())
}
