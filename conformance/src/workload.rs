//! Emulated pods: echo backends standing in for the manifests' Deployments, and the EndpointSlices that point
//! the gateway's Services at them.
//!
//! A Deployment with `replicas: N` becomes N pods named `<deployment>-<hash>-<suffix>` (the suite takes the
//! backend name by dropping the last two `-` parts). A pod runs what its container would: echo-basic in the mode
//! its environment picks (`GRPC_ECHO_SERVER`, `TCP_ECHO_SERVER`, `UDP_ECHO_SERVER`, else HTTP), or CoreDNS for the
//! `coredns` image. It starts a server lazily for each Service port that selects it: for an HTTP pod, plain HTTP
//! or h2c only (`appProtocol: kubernetes.io/h2c`); for a gRPC pod the gRPC echo; for a TCP pod the TCP echo
//! (`testkit::tcp_echo`); on UDP ports, the UDP echo (`testkit::udp_echo`) or the emulated CoreDNS
//! (`coredns`). A port the pod does not serve in its mode (a UDP port of an HTTP pod, a TCP port of a UDP pod)
//! is left out of the pod's EndpointSlice. Pods report `SERVICE_NAME` from their environment as `service`.
//! Every server listens on its own ephemeral port of one address (127.0.0.1 in standalone mode; in Kubernetes
//! mode an address of the runner's network namespace, since the API server refuses loopback endpoints), so each
//! (Service, pod) pair gets its own EndpointSlice: a slice's ports are shared by all of its endpoints.
//!
//! It does not emulate TLS backends or WebSocket: HTTP pods serve such ports with the plain HTTP echo, and TCP
//! pods serve their TLS port (echo-basic's 8443) with the plain TCP echo.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use anyhow::Context;
use serde_json::{Value, json};
use testkit::{
    EchoConfig, EchoMode, EchoServer, TcpEchoConfig, TcpEchoServer, UdpEchoConfig, UdpEchoServer,
};

use crate::coredns::CorednsServer;
use crate::grpc::GrpcEchoServer;
use crate::manifests::{kind, name, namespace};

/// What an echo must speak for one Service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// HTTP/1.1 (and h2c with prior knowledge).
    Http,
    /// h2c only, like echo-basic's h2c port.
    H2c,
    /// The gRPC echo service over h2c.
    Grpc,
    /// echo-basic's TCP mode.
    Tcp,
    /// echo-basic's UDP mode.
    Udp,
    /// The emulated CoreDNS (UDP).
    Dns,
}

/// What a pod's container runs, from its image and environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PodKind {
    /// echo-basic's default: HTTP (and h2c).
    Http,
    /// echo-basic with `GRPC_ECHO_SERVER`.
    Grpc,
    /// echo-basic with `TCP_ECHO_SERVER`.
    Tcp,
    /// echo-basic with `UDP_ECHO_SERVER`.
    Udp,
    /// The `coredns` image.
    Dns,
}

impl PodKind {
    /// What this pod serves on a Service port of `port_protocol` (`TCP`/`UDP`) with `app_protocol`; `None`
    /// when it does not listen there in this mode.
    fn serves(self, port_protocol: &str, app_protocol: Option<&str>) -> Option<Protocol> {
        match (self, port_protocol) {
            (PodKind::Udp, "UDP") => Some(Protocol::Udp),
            (PodKind::Dns, "UDP") => Some(Protocol::Dns),
            (_, "UDP") | (PodKind::Udp | PodKind::Dns, _) => None,
            (PodKind::Grpc, _) => Some(Protocol::Grpc),
            (PodKind::Tcp, _) => Some(Protocol::Tcp),
            (PodKind::Http, _) if app_protocol == Some("kubernetes.io/h2c") => Some(Protocol::H2c),
            (PodKind::Http, _) => Some(Protocol::Http),
        }
    }
}

/// One emulated pod and the echo servers it has started so far.
struct Pod {
    /// `<deployment>-<hash>-<suffix>`.
    name: String,
    /// The Deployment's namespace.
    namespace: String,
    /// The Deployment's pod template labels, matched against Service selectors.
    labels: BTreeMap<String, String>,
    /// What the container runs.
    kind: PodKind,
    /// The container's `SERVICE_NAME` ("" when unset), reported as `service`.
    service_name: String,
    /// The HTTP echo, once a Service port needed it.
    http: Option<EchoServer>,
    /// The h2c-only echo, once a Service port needed it.
    h2c: Option<EchoServer>,
    /// The gRPC echo, once a Service port needed it.
    grpc: Option<GrpcEchoServer>,
    /// The TCP echo, once a Service port needed it.
    tcp: Option<TcpEchoServer>,
    /// The UDP echo, once a Service port needed it.
    udp: Option<UdpEchoServer>,
    /// The emulated CoreDNS, once a Service port needed it.
    dns: Option<CorednsServer>,
}

/// Every emulated pod of a test. Dropping it stops every echo server.
pub(crate) struct Workloads {
    /// All pods, in manifest order.
    pods: Vec<Pod>,
    /// `(namespace, service)` to the indexes of the pods its selector picks.
    service_pods: BTreeMap<(String, String), Vec<usize>>,
    /// The address every echo listens on and every EndpointSlice names.
    ip: Ipv4Addr,
}

impl Workloads {
    /// Creates the pods of every Deployment in `objects`, starts the echo servers the Services need (on
    /// ephemeral ports of `ip`, from the current tokio runtime), and returns the EndpointSlices (one per
    /// Service and pod) to hand to the gateway.
    pub(crate) async fn start(
        objects: &[Value],
        ip: Ipv4Addr,
    ) -> anyhow::Result<(Self, Vec<Value>)> {
        let mut workloads = Self {
            pods: objects
                .iter()
                .filter(|object| kind(object) == "Deployment")
                .flat_map(deployment_pods)
                .collect(),
            service_pods: BTreeMap::new(),
            ip,
        };
        let mut slices = Vec::new();
        for service in objects.iter().filter(|object| kind(object) == "Service") {
            let (service_namespace, service_name) = (namespace(service), name(service));
            let selected = workloads.select(service);
            workloads.service_pods.insert(
                (service_namespace.to_owned(), service_name.to_owned()),
                selected.clone(),
            );
            let ports = service_ports(service);
            for index in selected {
                let mut slice_ports = Vec::new();
                for port in &ports {
                    let port_protocol = port_protocol(port);
                    let app_protocol = port.get("appProtocol").and_then(Value::as_str);
                    let Some(protocol) = workloads.pods[index]
                        .kind
                        .serves(port_protocol, app_protocol)
                    else {
                        continue;
                    };
                    let echo_port = workloads.echo_port(index, protocol).await?;
                    slice_ports.push(slice_port(port, echo_port));
                }
                if !slice_ports.is_empty() {
                    slices.push(workloads.slice(
                        service_namespace,
                        service_name,
                        index,
                        slice_ports,
                    ));
                }
            }
        }
        Ok((workloads, slices))
    }

    /// Emulates a test that writes EndpointSlices at run time (`HTTPRouteServiceTypes`): every IPv4
    /// EndpointSlice in `objects` that lists no endpoints is replaced by one slice per pod of `source`
    /// (`namespace/name` of a Service), with the slice's port names pointing at those pods' HTTP echoes.
    pub(crate) async fn fill_empty_slices(
        &mut self,
        objects: &mut Vec<Value>,
        source: (&str, &str),
    ) -> anyhow::Result<()> {
        let pods = self
            .service_pods
            .get(&(source.0.to_owned(), source.1.to_owned()))
            .cloned()
            .filter(|pods| !pods.is_empty())
            .with_context(|| {
                format!(
                    "Service {}/{} has no pods to copy endpoints from",
                    source.0, source.1
                )
            })?;
        let mut filled = Vec::new();
        for object in objects.drain(..) {
            let is_empty_ipv4_slice = kind(&object) == "EndpointSlice"
                && object.get("addressType").and_then(Value::as_str) == Some("IPv4")
                && object
                    .get("endpoints")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
            if !is_empty_ipv4_slice {
                filled.push(object);
                continue;
            }
            let service = object
                .pointer("/metadata/labels/kubernetes.io~1service-name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let ports: Vec<Value> = object
                .get("ports")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for &index in &pods {
                let echo_port = self.echo_port(index, Protocol::Http).await?;
                let slice_ports = ports
                    .iter()
                    .map(|port| slice_port(port, echo_port))
                    .collect();
                filled.push(self.slice(namespace(&object), &service, index, slice_ports));
            }
        }
        *objects = filled;
        Ok(())
    }

    /// Whether any pod of Service `namespace/service` echoed a request with exactly this RequestURI.
    pub(crate) fn has_logged(&self, namespace: &str, service: &str, request_uri: &str) -> bool {
        self.count_logged(namespace, service, request_uri) > 0
    }

    /// How many requests with exactly this RequestURI the pods of Service `namespace/service` have echoed.
    pub(crate) fn count_logged(&self, namespace: &str, service: &str, request_uri: &str) -> usize {
        let line = format!("Echoing back request made to {request_uri} to client");
        self.service_pods
            .get(&(namespace.to_owned(), service.to_owned()))
            .into_iter()
            .flatten()
            .flat_map(|&index| [&self.pods[index].http, &self.pods[index].h2c])
            .flatten()
            .map(|echo| echo.logs().iter().filter(|logged| **logged == line).count())
            .sum()
    }

    /// The indexes of the pods `service`'s selector picks (none for a Service without a selector).
    fn select(&self, service: &Value) -> Vec<usize> {
        let Some(selector) = service.pointer("/spec/selector").and_then(Value::as_object) else {
            return Vec::new();
        };
        let service_namespace = namespace(service);
        (0..self.pods.len())
            .filter(|&index| {
                let pod = &self.pods[index];
                pod.namespace == service_namespace
                    && selector.iter().all(|(key, value)| {
                        value.as_str() == pod.labels.get(key).map(String::as_str)
                    })
            })
            .collect()
    }

    /// The port of pod `index`'s echo for `protocol`, starting that echo the first time.
    async fn echo_port(&mut self, index: usize, protocol: Protocol) -> anyhow::Result<u16> {
        let ip = self.ip;
        let pod = &mut self.pods[index];
        let addr = match protocol {
            Protocol::Http => {
                let identity = pod_identity(pod);
                start_echo(&mut pod.http, identity, ip, EchoMode::Http).await?
            }
            Protocol::H2c => {
                let identity = pod_identity(pod);
                start_echo(&mut pod.h2c, identity, ip, EchoMode::H2cOnly).await?
            }
            Protocol::Grpc => match &pod.grpc {
                Some(server) => server.addr(),
                None => {
                    let server = GrpcEchoServer::start(&pod.name, &pod.namespace, ip).await?;
                    let addr = server.addr();
                    pod.grpc = Some(server);
                    addr
                }
            },
            Protocol::Tcp => match &pod.tcp {
                Some(server) => server.addr(),
                None => {
                    let mut config = TcpEchoConfig::new(&pod.name, &pod.namespace);
                    config.service.clone_from(&pod.service_name);
                    config.bind = SocketAddr::from((ip, 0));
                    let server = TcpEchoServer::start(config).await?;
                    let addr = server.addr();
                    pod.tcp = Some(server);
                    addr
                }
            },
            Protocol::Udp => match &pod.udp {
                Some(server) => server.addr(),
                None => {
                    let mut config = UdpEchoConfig::new(&pod.name, &pod.namespace);
                    config.service.clone_from(&pod.service_name);
                    config.bind = SocketAddr::from((ip, 0));
                    let server = UdpEchoServer::start(config).await?;
                    let addr = server.addr();
                    pod.udp = Some(server);
                    addr
                }
            },
            Protocol::Dns => match &pod.dns {
                Some(server) => server.addr(),
                None => {
                    let server = CorednsServer::start(ip).await?;
                    let addr = server.addr();
                    pod.dns = Some(server);
                    addr
                }
            },
        };
        Ok(addr.port())
    }

    /// An EndpointSlice for Service `namespace/service` with pod `index` as its one ready endpoint.
    fn slice(&self, namespace: &str, service: &str, index: usize, ports: Vec<Value>) -> Value {
        let pod = &self.pods[index];
        json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": format!("{service}-{}", pod.name),
                "namespace": namespace,
                "labels": { "kubernetes.io/service-name": service },
            },
            "addressType": "IPv4",
            "endpoints": [{
                "addresses": [self.ip.to_string()],
                "conditions": { "ready": true },
                "targetRef": { "kind": "Pod", "name": pod.name, "namespace": pod.namespace },
            }],
            "ports": ports,
        })
    }
}

/// The `(name, namespace, service)` an echo of `pod` reports.
fn pod_identity(pod: &Pod) -> (String, String, String) {
    (
        pod.name.clone(),
        pod.namespace.clone(),
        pod.service_name.clone(),
    )
}

/// Starts the echo in `slot` (for pod `(name, namespace, service)`, on an ephemeral port of `ip`) unless it is
/// running, and returns its address.
async fn start_echo(
    slot: &mut Option<EchoServer>,
    (pod, namespace, service): (String, String, String),
    ip: Ipv4Addr,
    mode: EchoMode,
) -> anyhow::Result<SocketAddr> {
    if let Some(server) = slot {
        return Ok(server.addr());
    }
    let mut config = EchoConfig::new(pod, namespace);
    config.service = service;
    config.mode = mode;
    config.bind = SocketAddr::from((ip, 0));
    let server = EchoServer::start(config).await?;
    let addr = server.addr();
    *slot = Some(server);
    Ok(addr)
}

/// The pods of one Deployment (none for anything that is not one).
fn deployment_pods(deployment: &Value) -> Vec<Pod> {
    let deployment_name = name(deployment);
    let deployment_namespace = namespace(deployment);
    let replicas = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let labels: BTreeMap<String, String> = deployment
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let containers: Vec<&Value> = deployment
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let environment: BTreeMap<&str, &str> = containers
        .iter()
        .filter_map(|container| container.get("env").and_then(Value::as_array))
        .flatten()
        .filter_map(|variable| {
            let name = variable.get("name").and_then(Value::as_str)?;
            // A variable set from the Downward API (POD_NAME, NAMESPACE) has no `value`: it is still set.
            let value = variable.get("value").and_then(Value::as_str).unwrap_or("");
            Some((name, value))
        })
        .collect();
    let is_coredns = containers.iter().any(|container| {
        container
            .get("image")
            .and_then(Value::as_str)
            .is_some_and(|image| image.contains("/coredns/coredns"))
    });
    // echo-basic checks GRPC, then TCP, then UDP (`main` in echo-basic.go), each set when non-empty.
    let is_set = |name: &str| environment.get(name).is_some_and(|value| !value.is_empty());
    let kind = if is_coredns {
        PodKind::Dns
    } else if is_set("GRPC_ECHO_SERVER") {
        PodKind::Grpc
    } else if is_set("TCP_ECHO_SERVER") {
        PodKind::Tcp
    } else if is_set("UDP_ECHO_SERVER") {
        PodKind::Udp
    } else {
        PodKind::Http
    };
    let service_name = environment
        .get("SERVICE_NAME")
        .copied()
        .unwrap_or("")
        .to_owned();
    let template_hash = pod_suffix(&format!("{deployment_namespace}/{deployment_name}"), 10);
    (0..replicas)
        .map(|replica| Pod {
            name: format!(
                "{deployment_name}-{template_hash}-{}",
                pod_suffix(
                    &format!("{deployment_namespace}/{deployment_name}/{replica}"),
                    5
                )
            ),
            namespace: deployment_namespace.to_owned(),
            labels: labels.clone(),
            kind,
            service_name: service_name.clone(),
            http: None,
            h2c: None,
            grpc: None,
            tcp: None,
            udp: None,
            dns: None,
        })
        .collect()
}

/// The Service's ports.
fn service_ports(service: &Value) -> Vec<Value> {
    service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A Service (or slice) port's protocol: `TCP` unless it says otherwise.
fn port_protocol(port: &Value) -> &str {
    port.get("protocol")
        .and_then(Value::as_str)
        .unwrap_or("TCP")
}

/// An EndpointSlice port with the Service (or slice) port's name, protocol and app protocol, at `echo_port`.
fn slice_port(port: &Value, echo_port: u16) -> Value {
    let mut slice_port = json!({ "port": echo_port, "protocol": port_protocol(port) });
    for key in ["name", "appProtocol"] {
        if let Some(value) = port
            .get(key)
            .filter(|value| value.as_str().is_some_and(|text| !text.is_empty()))
        {
            slice_port[key] = value.clone();
        }
    }
    slice_port
}

/// A deterministic `length`-character name part from `seed`, in the alphabet Kubernetes uses for generated
/// names (no vowels, no confusable digits).
fn pod_suffix(seed: &str, length: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..length)
        .map(|_| {
            let index = usize::try_from(hash % ALPHABET.len() as u64).unwrap_or(0);
            hash /= ALPHABET.len() as u64;
            if hash == 0 {
                hash = 0x9e37_79b9_7f4a_7c15;
            }
            char::from(ALPHABET[index])
        })
        .collect()
}

#[cfg(test)]
mod tests;
