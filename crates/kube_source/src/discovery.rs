//! Which streams to watch: every kind Portcullis reads that the API server serves, at its most
//! stable version, once for the whole cluster or once per namespace of `--namespaces`; and,
//! while some kind is not served, asking again now and then ([`rediscover`]), so that a CRD
//! installed after the gateway started is read without a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::Client;
use kube::discovery::{ApiResource, oneshot};
use model::Kind;
use tokio::sync::mpsc;

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
    Kind::TcpRoute,
    Kind::UdpRoute,
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
    Kind::SecurityPolicy,
    Kind::RateLimitPolicy,
    Kind::Composition,
];

/// How often the API server is asked again, while some kind Portcullis reads is not served,
/// whether it is now (a CRD installed after the gateway started: ours, ListenerSet).
pub(crate) const REDISCOVERY: Duration = Duration::from_secs(10);

/// The streams to watch from the start (Secrets and ConfigMaps are watched one referenced object
/// at a time, later) and the API resource of each kind. A kind whose API the server does
/// not serve (a CRD not installed: ListenerSet on the standard channel, our own kinds before
/// their CRDs are applied) is left out with a warning; its objects are then absent until
/// [`rediscover`] finds it served.
///
/// # Errors
///
/// [`KubeSourceError::Discovery`] when the API server cannot be asked.
pub async fn watched_streams(
    client: &Client,
    namespaces: &[String],
) -> Result<(Vec<WatchedStream>, BTreeMap<Kind, ApiResource>), KubeSourceError> {
    let resources = served(client, WATCHED).await?;
    for kind in unserved(&resources) {
        tracing::warn!(kind = %kind, group = kind.group(), "the API server does not serve this kind; its objects are not watched until it does");
    }
    let streams = streams_of(resources.keys().copied(), namespaces);
    Ok((streams, resources))
}

/// Those of `kinds` the API server serves, each at its most stable version (one discovery
/// request per group of `kinds`).
async fn served(
    client: &Client,
    kinds: &[Kind],
) -> Result<BTreeMap<Kind, ApiResource>, KubeSourceError> {
    let mut groups = BTreeMap::new();
    for kind in kinds {
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
    for kind in kinds {
        let served = groups
            .get(kind.group())
            .and_then(Option::as_ref)
            .and_then(|group| {
                group
                    .resources_by_stability()
                    .into_iter()
                    .find(|(resource, _)| resource.kind == kind.as_str())
            });
        if let Some((resource, _)) = served {
            resources.insert(*kind, resource);
        }
    }
    Ok(resources)
}

/// The kinds Portcullis reads that are not in `served`.
pub(crate) fn unserved(served: &BTreeMap<Kind, ApiResource>) -> Vec<Kind> {
    WATCHED
        .iter()
        .copied()
        .filter(|kind| !served.contains_key(kind))
        .collect()
}

/// The streams of whole kinds for `kinds`: one per kind, or one per namespace of `namespaces`
/// for namespaced kinds when given. Referenced kinds (Secrets, ConfigMaps) have none: they are
/// watched one object at a time.
pub(crate) fn streams_of(
    kinds: impl IntoIterator<Item = Kind>,
    namespaces: &[String],
) -> Vec<WatchedStream> {
    let mut streams = Vec::new();
    for kind in kinds {
        if REFERENCED.contains(&kind) {
            continue;
        }
        if kind.is_cluster_scoped() || namespaces.is_empty() {
            streams.push(WatchedStream {
                kind,
                namespace: None,
                name: None,
            });
        } else {
            streams.extend(namespaces.iter().map(|namespace| WatchedStream {
                kind,
                namespace: Some(namespace.clone()),
                name: None,
            }));
        }
    }
    streams
}

/// Asks the API server every [`REDISCOVERY`] whether it now serves kinds it did not (`known`
/// holds those it did), and sends each newly served kind's resource to `found`. Ends when every
/// kind is served or `found` is closed (the source stopped). A failed discovery is retried at
/// the next tick.
pub(crate) async fn rediscover(
    client: Client,
    known: BTreeMap<Kind, ApiResource>,
    found: mpsc::Sender<BTreeMap<Kind, ApiResource>>,
) {
    let mut missing = unserved(&known);
    let mut tick = tokio::time::interval(REDISCOVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    while !missing.is_empty() {
        tokio::select! {
            _ = tick.tick() => {}
            // The source is gone: nobody to tell.
            () = found.closed() => return,
        }
        let now = match served(&client, &missing).await {
            Ok(now) => now,
            Err(error) => {
                tracing::debug!(%error, "discovery failed; asking again later");
                continue;
            }
        };
        let new: BTreeMap<Kind, ApiResource> = now
            .into_iter()
            .filter(|(kind, _)| missing.contains(kind))
            .collect();
        if new.is_empty() {
            continue;
        }
        missing.retain(|kind| !new.contains_key(kind));
        let kinds: Vec<&str> = new.keys().map(|kind| kind.as_str()).collect();
        tracing::info!(
            ?kinds,
            "the API server now serves these kinds; watching them"
        );
        if found.send(new).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
