//! Where each backend's endpoints come from, and the fast-path resolution of the store's
//! EndpointSlices (and `Backend` objects) into endpoint targets.

use std::collections::HashMap;
use std::net::IpAddr;

use model::Store;
use model::core::EndpointSlice;
use snapshot::backend::{BackendId, EndpointTarget, TargetAddress};

/// A Service port's `targetPort`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetPort {
    /// Unset: the endpoint port equals the Service port.
    Same,
    /// A number.
    Number(u16),
    /// A container port name (resolved through the EndpointSlice port of that name).
    Named(String),
}

/// Where one backend's endpoints come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointSource {
    /// The ready endpoints of the EndpointSlices of a Service, for one Service port.
    ServicePort {
        /// Service namespace.
        namespace: model::Name,
        /// Service name.
        service: model::Name,
        /// The Service port's name ("" when unnamed): matched against EndpointSlice port names.
        port_name: model::Name,
        /// The Service port number.
        port: u16,
        /// Its targetPort.
        target_port: TargetPort,
    },
    /// An `ExternalName` Service: one DNS name.
    Dns {
        /// The name.
        host: String,
        /// The port (the backendRef's).
        port: u16,
    },
    /// A `portcullis.dev/v1alpha1` Backend object.
    Backend {
        /// Namespace.
        namespace: model::Name,
        /// Name.
        name: model::Name,
    },
}

/// Endpoint sources of every backend of a snapshot.
#[derive(Clone, Debug, Default)]
pub struct EndpointPlan {
    sources: Vec<(BackendId, EndpointSource)>,
}

impl EndpointPlan {
    pub(crate) fn new(sources: Vec<(BackendId, EndpointSource)>) -> EndpointPlan {
        EndpointPlan { sources }
    }

    /// Resolves every backend's endpoint targets from the store. Cheap and pure.
    ///
    /// The store's EndpointSlices are indexed by Service once: linear in the backends and
    /// slices (a lookup per Service scanned every slice of its namespace, which made this
    /// quadratic: 1 s at 5,000 Services in one namespace).
    pub fn resolve(&self, store: &Store) -> HashMap<BackendId, Vec<EndpointTarget>> {
        let slices = SliceIndex::of(store);
        self.sources
            .iter()
            .map(|(id, source)| (id.clone(), resolve_source(store, &slices, source)))
            .collect()
    }
}

/// EndpointSlice names by (namespace, Service name), kept up to date change by change.
#[derive(Clone, Debug, Default)]
pub(crate) struct SliceIndex {
    /// Slice names, sorted.
    by_service: HashMap<model::NamespacedName, Vec<model::Name>>,
}

impl SliceIndex {
    /// The index of every slice of a store.
    pub(crate) fn of(store: &Store) -> SliceIndex {
        let mut index = SliceIndex::default();
        // At most a Service per slice, reserved at once (see `Compiler::build`).
        index.by_service.reserve(store.endpoint_slices.len());
        for ((namespace, name), slice) in &store.endpoint_slices {
            if let Some(service) = service_of(slice) {
                index
                    .by_service
                    .entry((namespace.clone(), service.into()))
                    .or_default()
                    .push(name.clone());
            }
        }
        // Kept for the life of the compiler: most Services have one slice, and a list grown
        // by `push` has room for four.
        for names in index.by_service.values_mut() {
            names.shrink_to_fit();
        }
        index
    }

    /// Follows one slice from `old` to `new`. Returns the Services it belonged to before or
    /// after: their endpoints may have changed.
    pub(crate) fn update(
        &mut self,
        key: &model::NamespacedName,
        old: &Store,
        new: &Store,
    ) -> Vec<model::NamespacedName> {
        let (namespace, name) = key;
        let mut services = Vec::new();
        if let Some(service) = old.endpoint_slices.get(key).and_then(|s| service_of(s)) {
            let service = (namespace.clone(), service.into());
            if let Some(names) = self.by_service.get_mut(&service) {
                names.retain(|n| n != name);
                if names.is_empty() {
                    self.by_service.remove(&service);
                }
            }
            services.push(service);
        }
        if let Some(service) = new.endpoint_slices.get(key).and_then(|s| service_of(s)) {
            let service = (namespace.clone(), service.into());
            // Sorted, as `of` finds them, so endpoints come in the same order either way.
            let names = self.by_service.entry(service.clone()).or_default();
            if let Err(at) = names.binary_search(name) {
                names.insert(at, name.clone());
            }
            services.push(service);
        }
        services
    }

    /// The slices of a Service in `store`.
    fn slices<'a>(
        &self,
        store: &'a Store,
        namespace: &str,
        service: &str,
    ) -> impl Iterator<Item = &'a EndpointSlice> + use<'a, '_> {
        let key = model::key(namespace, service);
        let namespace = model::Name::from(namespace);
        self.by_service
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(move |name| {
                store
                    .endpoint_slices
                    .get(&(namespace.clone(), name.clone()))
            })
            .map(AsRef::as_ref)
    }
}

/// The Service an EndpointSlice belongs to (`kubernetes.io/service-name`).
fn service_of(slice: &EndpointSlice) -> Option<&str> {
    slice
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(model::store::SERVICE_NAME_LABEL))
}

/// The endpoint targets of one source in `store`.
pub(crate) fn resolve_source(
    store: &Store,
    slices: &SliceIndex,
    source: &EndpointSource,
) -> Vec<EndpointTarget> {
    match source {
        EndpointSource::Dns { host, port } => vec![EndpointTarget {
            address: TargetAddress::Dns(host.as_str().into()),
            port: *port,
            weight: 1,
        }],
        EndpointSource::Backend { namespace, name } => {
            let Some(backend) = store.backends.get(&model::key(namespace, name)) else {
                return Vec::new();
            };
            backend
                .spec
                .endpoints
                .iter()
                .filter_map(|endpoint| {
                    let port = u16::try_from(endpoint.port).ok().filter(|p| *p != 0)?;
                    let address = match (&endpoint.ip, &endpoint.hostname) {
                        (Some(ip), _) => TargetAddress::Ip(ip.parse().ok()?),
                        (None, Some(host)) => TargetAddress::Dns(host.as_str().into()),
                        (None, None) => return None,
                    };
                    Some(EndpointTarget {
                        address,
                        port,
                        weight: endpoint.weight.unwrap_or(1),
                    })
                })
                .collect()
        }
        EndpointSource::ServicePort {
            namespace,
            service,
            port_name,
            port,
            target_port,
        } => {
            let mut targets = Vec::new();
            for slice in slices.slices(store, namespace, service) {
                let Some(endpoint_port) = slice_port(slice, port_name, *port, target_port) else {
                    continue;
                };
                collect_slice(slice, endpoint_port, &mut targets);
            }
            targets
        }
    }
}

/// The endpoint port a slice offers for the Service port: the slice port with the Service
/// port's name; when the slice lists no ports, the numeric targetPort (or the Service port).
fn slice_port(
    slice: &EndpointSlice,
    port_name: &str,
    service_port: u16,
    target: &TargetPort,
) -> Option<u16> {
    match slice.ports.as_ref().filter(|p| !p.is_empty()) {
        Some(ports) => ports
            .iter()
            .find(|p| p.name.as_deref().unwrap_or("") == port_name)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok()),
        None => match target {
            TargetPort::Number(n) => Some(*n),
            TargetPort::Same => Some(service_port),
            TargetPort::Named(_) => None,
        },
    }
}

fn collect_slice(slice: &EndpointSlice, port: u16, targets: &mut Vec<EndpointTarget>) {
    let fqdn = slice.address_type == "FQDN";
    for endpoint in &slice.endpoints {
        // `ready` unset means ready (Kubernetes API semantics for EndpointConditions).
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if !ready {
            continue;
        }
        for address in &endpoint.addresses {
            let address = if fqdn {
                TargetAddress::Dns(address.as_str().into())
            } else {
                match address.parse::<IpAddr>() {
                    Ok(ip) => TargetAddress::Ip(ip),
                    Err(_) => continue,
                }
            };
            targets.push(EndpointTarget {
                address,
                port,
                weight: 1,
            });
        }
    }
}
