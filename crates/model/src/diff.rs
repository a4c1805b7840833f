//! Comparing two versions of the [`crate::Store`] or of one of its maps. Sources reuse the `Arc` of
//! every object that did not change, so most values are equal by pointer and a comparison is
//! one pass over both maps in key order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::{Kind, Object, ObjectKey, Store};

/// Whether two versions of a map differ at all.
pub fn differ<K: Eq, V: PartialEq>(old: &BTreeMap<K, Arc<V>>, new: &BTreeMap<K, Arc<V>>) -> bool {
    old.len() != new.len()
        || old
            .iter()
            .zip(new)
            .any(|((old_key, old_value), (new_key, new_value))| {
                old_key != new_key || !same(old_value, new_value)
            })
}

/// The keys added, removed or changed from `old` to `new`, in key order.
pub fn changed_keys<K: Ord + Clone, V: PartialEq>(
    old: &BTreeMap<K, Arc<V>>,
    new: &BTreeMap<K, Arc<V>>,
) -> Vec<K> {
    let mut changed = Vec::new();
    let mut old_entries = old.iter().peekable();
    let mut new_entries = new.iter().peekable();
    loop {
        let order = match (old_entries.peek(), new_entries.peek()) {
            (None, None) => return changed,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((old_key, _)), Some((new_key, _))) => old_key.cmp(new_key),
        };
        match order {
            Ordering::Less => {
                if let Some((key, _)) = old_entries.next() {
                    changed.push(key.clone());
                }
            }
            Ordering::Greater => {
                if let Some((key, _)) = new_entries.next() {
                    changed.push(key.clone());
                }
            }
            Ordering::Equal => {
                if let (Some((_, old_value)), Some((key, new_value))) =
                    (old_entries.next(), new_entries.next())
                    && !same(old_value, new_value)
                {
                    changed.push(key.clone());
                }
            }
        }
    }
}

/// The kinds, among those `among` accepts, whose objects differ between `old` and `new`: a key
/// was added or removed, or a value differs. Kinds `among` refuses are not compared at all.
pub fn changed_kinds(old: &Store, new: &Store, among: impl Fn(Kind) -> bool) -> BTreeSet<Kind> {
    // Destructured without `..` so that adding a map to `Store` fails to compile here until it
    // is compared too.
    let Store {
        gateway_classes,
        gateways,
        listener_sets,
        http_routes,
        grpc_routes,
        tls_routes,
        tcp_routes,
        udp_routes,
        reference_grants,
        backend_tls_policies,
        namespaces,
        services,
        endpoint_slices,
        secrets,
        config_maps,
        backends,
        backend_traffic_policies,
        client_traffic_policies,
        security_policies,
        rate_limit_policies,
        compositions,
    } = new;
    let comparisons: [(Kind, &dyn Fn() -> bool); 21] = [
        (Kind::GatewayClass, &|| {
            differ(&old.gateway_classes, gateway_classes)
        }),
        (Kind::Gateway, &|| differ(&old.gateways, gateways)),
        (Kind::ListenerSet, &|| {
            differ(&old.listener_sets, listener_sets)
        }),
        (Kind::HttpRoute, &|| differ(&old.http_routes, http_routes)),
        (Kind::GrpcRoute, &|| differ(&old.grpc_routes, grpc_routes)),
        (Kind::TlsRoute, &|| differ(&old.tls_routes, tls_routes)),
        (Kind::TcpRoute, &|| differ(&old.tcp_routes, tcp_routes)),
        (Kind::UdpRoute, &|| differ(&old.udp_routes, udp_routes)),
        (Kind::ReferenceGrant, &|| {
            differ(&old.reference_grants, reference_grants)
        }),
        (Kind::BackendTlsPolicy, &|| {
            differ(&old.backend_tls_policies, backend_tls_policies)
        }),
        (Kind::Namespace, &|| differ(&old.namespaces, namespaces)),
        (Kind::Service, &|| differ(&old.services, services)),
        (Kind::EndpointSlice, &|| {
            differ(&old.endpoint_slices, endpoint_slices)
        }),
        (Kind::Secret, &|| differ(&old.secrets, secrets)),
        (Kind::ConfigMap, &|| differ(&old.config_maps, config_maps)),
        (Kind::Backend, &|| differ(&old.backends, backends)),
        (Kind::BackendTrafficPolicy, &|| {
            differ(&old.backend_traffic_policies, backend_traffic_policies)
        }),
        (Kind::ClientTrafficPolicy, &|| {
            differ(&old.client_traffic_policies, client_traffic_policies)
        }),
        (Kind::SecurityPolicy, &|| {
            differ(&old.security_policies, security_policies)
        }),
        (Kind::RateLimitPolicy, &|| {
            differ(&old.rate_limit_policies, rate_limit_policies)
        }),
        (Kind::Composition, &|| {
            differ(&old.compositions, compositions)
        }),
    ];
    comparisons
        .into_iter()
        .filter(|(kind, differs)| among(*kind) && differs())
        .map(|(kind, _)| kind)
        .collect()
}

/// Equal by pointer, or else by value.
fn same<V: PartialEq>(old: &Arc<V>, new: &Arc<V>) -> bool {
    Arc::ptr_eq(old, new) || **old == **new
}

/// The keys of the objects that differ between `old` and `new` (added, removed, changed),
/// sorted, each once, found by comparing every object by value: the slow reference for the
/// changes a source names (`source::SourceUpdate::changed`) and for [`changed_keys`]' walk.
pub fn changed_object_keys(old: &Store, new: &Store) -> Vec<ObjectKey> {
    let by_key = |store: &Store| -> BTreeMap<ObjectKey, Object> {
        store
            .objects()
            .map(|object| (object.key(), object))
            .collect()
    };
    let (old, new) = (by_key(old), by_key(new));
    let mut keys: Vec<ObjectKey> = old
        .keys()
        .chain(new.keys())
        .filter(|key| old.get(*key) != new.get(*key))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, u32)]) -> BTreeMap<String, Arc<u32>> {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Arc::new(*value)))
            .collect()
    }

    #[test]
    fn changed_keys_lists_additions_removals_and_changes_in_key_order() {
        let old = map(&[("a", 1), ("b", 2), ("c", 3), ("e", 5)]);
        let new = map(&[("b", 2), ("c", 4), ("d", 4), ("e", 5), ("f", 6)]);
        assert_eq!(changed_keys(&old, &new), ["a", "c", "d", "f"]);
        assert!(differ(&old, &new));
        assert!(changed_keys(&old, &old.clone()).is_empty());
        assert!(!differ(&old, &old.clone()));
    }

    #[test]
    fn equal_values_in_new_arcs_are_not_changes() {
        let old = map(&[("a", 1)]);
        let new = map(&[("a", 1)]);
        assert!(!Arc::ptr_eq(&old["a"], &new["a"]));
        assert!(changed_keys(&old, &new).is_empty());
        assert!(!differ(&old, &new));
    }
}
