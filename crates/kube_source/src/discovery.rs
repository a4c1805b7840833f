//! Which streams to watch: every kind Portcullis reads that the API server serves, at its most
//! stable version, once for the whole cluster or once per namespace of `--namespaces`.

use std::collections::BTreeMap;

use kube::Client;
use kube::discovery::{ApiResource, oneshot};
use model::Kind;

use crate::error::KubeSourceError;

/// One watch: a kind, the namespace it is limited to (`None`: all namespaces, and always for
/// cluster-scoped kinds), and for a referenced Secret or ConfigMap, the one object's name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchedStream {
    /// The kind the stream's objects are typed as.
    pub kind: Kind,
    /// Its namespace, or `None` for every namespace.
    pub namespace: Option<String>,
    /// The one object watched (by field selector `metadata.name`), or `None` for every object.
    pub name: Option<String>,
}

/// Kinds read only where referenced (see `references.rs`): one stream per referenced object.
pub(crate) const REFERENCED: &[Kind] = &[Kind::Secret, Kind::ConfigMap];

/// The kinds watched, in the order their groups are discovered.
const WATCHED: &[Kind] = &[
    Kind::GatewayClass,
    Kind::Gateway,
    Kind::ListenerSet,
    Kind::HttpRoute,
    Kind::GrpcRoute,
    Kind::TlsRoute,
    Kind::ReferenceGrant,
    Kind::BackendTlsPolicy,
    Kind::Namespace,
    Kind::Service,
    Kind::EndpointSlice,
    Kind::Secret,
    Kind::ConfigMap,
    Kind::Backend,
    Kind::BackendTrafficPolicy,
    Kind::ClientTrafficPolicy,
];

/// The streams to watch from the start (Secrets and ConfigMaps are watched one referenced object
/// at a time, later) and the API resource of each kind. A kind whose API the server does
/// not serve (a CRD not installed: ListenerSet on the standard channel, our own kinds before
/// their CRDs are applied) is left out with a warning; its objects are then simply absent.
///
/// # Errors
///
/// [`KubeSourceError::Discovery`] when the API server cannot be asked.
pub async fn watched_streams(
    client: &Client,
    namespaces: &[String],
) -> Result<(Vec<WatchedStream>, BTreeMap<Kind, ApiResource>), KubeSourceError> {
    let mut groups = BTreeMap::new();
    for kind in WATCHED {
        let group = kind.group();
        if !groups.contains_key(group) {
            let found = match oneshot::group(client, group).await {
                Ok(found) => Some(found),
                // A group with no installed resource at all is not listed.
                Err(kube::Error::Discovery(_)) => None,
                Err(error) => {
                    return Err(KubeSourceError::Discovery {
                        group: group.to_owned(),
                        message: error.to_string(),
                    });
                }
            };
            groups.insert(group, found);
        }
    }
    let mut resources = BTreeMap::new();
    let mut streams = Vec::new();
    for kind in WATCHED {
        let served = groups
            .get(kind.group())
            .and_then(Option::as_ref)
            .and_then(|group| {
                group
                    .resources_by_stability()
                    .into_iter()
                    .find(|(resource, _)| resource.kind == kind.as_str())
            });
        let Some((resource, _)) = served else {
            tracing::warn!(kind = %kind, group = kind.group(), "the API server does not serve this kind; its objects are not watched");
            continue;
        };
        resources.insert(*kind, resource);
        if REFERENCED.contains(kind) {
            continue;
        }
        if kind.is_cluster_scoped() || namespaces.is_empty() {
            streams.push(WatchedStream {
                kind: *kind,
                namespace: None,
                name: None,
            });
        } else {
            streams.extend(namespaces.iter().map(|namespace| WatchedStream {
                kind: *kind,
                namespace: Some(namespace.clone()),
                name: None,
            }));
        }
    }
    Ok((streams, resources))
}
