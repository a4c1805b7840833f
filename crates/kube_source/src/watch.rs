//! [`KubeSource`]: the watcher tasks and the task that owns the [`Mirror`].

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Config};
use model::Kind;
use source::SourceUpdate;
use tokio::sync::{mpsc, oneshot};

use crate::convert::{Converted, convert};
use crate::discovery::{WatchedStream, rediscover, streams_of, watched_streams};
use crate::error::KubeSourceError;
use crate::mirror::Mirror;
use crate::status_writer::{StatusOptions, StatusWriter};

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct KubeOptions {
    /// Namespaces whose objects are read; empty: all. Cluster-scoped kinds (GatewayClass,
    /// Namespace) are always read cluster-wide.
    pub namespaces: Vec<String>,
}

/// The most events applied before one update is published, so that an endless burst still
/// publishes now and then.
const MAX_BATCH: usize = 10_000;

/// A started Kubernetes source, waiting for its first full sync ([`KubeSource::synced`]).
pub struct KubeSource {
    first: oneshot::Receiver<tokio::sync::watch::Receiver<Arc<SourceUpdate>>>,
    client: Client,
    resources: BTreeMap<Kind, ApiResource>,
}

/// A client from the kubeconfig at `kubeconfig` (its current context), or the in-cluster
/// config (service account token, `KUBERNETES_SERVICE_HOST`) when `None`.
///
/// # Errors
///
/// [`KubeSourceError::Config`] naming the file or the missing in-cluster environment.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, KubeSourceError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|error| {
                KubeSourceError::Config(format!("kubeconfig {}: {error}", path.display()))
            })?;
            Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|error| {
                    KubeSourceError::Config(format!("kubeconfig {}: {error}", path.display()))
                })?
        }
        None => Config::incluster().map_err(|error| {
            KubeSourceError::Config(format!(
                "in-cluster config ({error}); outside a cluster pass --kubeconfig"
            ))
        })?,
    };
    Client::try_from(config).map_err(|error| KubeSourceError::Config(error.to_string()))
}

impl KubeSource {
    /// Discovers the kinds the API server serves and starts one watcher per stream, plus the
    /// task that applies their events. Must run inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// [`KubeSourceError::Discovery`] when the API server cannot be asked what it serves.
    pub async fn start(
        client: Client,
        options: &KubeOptions,
    ) -> Result<KubeSource, KubeSourceError> {
        let (streams, resources) = watched_streams(&client, &options.namespaces).await?;
        let resources: BTreeMap<Kind, ApiResource> = resources;
        let (events, received) = mpsc::channel(1024);
        for stream in &streams {
            if let Some(resource) = resources.get(&stream.kind) {
                tokio::spawn(watch_stream(
                    client.clone(),
                    stream.clone(),
                    resource.clone(),
                    events.clone(),
                ));
            }
        }
        let (first, first_received) = oneshot::channel();
        // Kinds the API server starts serving later (a CRD installed after the start).
        let (found, discovered) = mpsc::channel(4);
        tokio::spawn(rediscover(client.clone(), resources.clone(), found));
        let watchers = Watchers {
            client: client.clone(),
            resources: resources.clone(),
            namespaces: options.namespaces.clone(),
            events,
            objects: BTreeMap::new(),
            is_following: false,
        };
        tokio::spawn(follow(
            Mirror::new(streams),
            received,
            discovered,
            watchers,
            first,
        ));
        Ok(KubeSource {
            first: first_received,
            client,
            resources,
        })
    }

    /// A [`StatusWriter`] to the same API server, for the objects of GatewayClasses whose
    /// `controllerName` is `options.controller_name`, writing while `is_leader` is true. Must
    /// run inside a tokio runtime.
    pub fn status_writer(
        &self,
        options: StatusOptions,
        is_leader: tokio::sync::watch::Receiver<bool>,
    ) -> StatusWriter {
        StatusWriter::start(
            self.client.clone(),
            self.resources.clone(),
            options,
            is_leader,
        )
    }

    /// The client this source watches with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Waits for the first full sync: every watched kind listed once. Returns the channel of
    /// updates; its current value is the first one.
    ///
    /// # Errors
    ///
    /// [`KubeSourceError::Stopped`] when the source task ended first.
    pub async fn synced(
        self,
    ) -> Result<tokio::sync::watch::Receiver<Arc<SourceUpdate>>, KubeSourceError> {
        self.first.await.map_err(|_| KubeSourceError::Stopped)
    }
}

/// Watches one stream until the mirror's task is gone. Errors (API server down, `410 Gone`, a
/// watch cut) are logged and retried with kube-rs' default backoff; the watcher then lists
/// again, which the mirror buffers.
async fn watch_stream(
    client: Client,
    stream: WatchedStream,
    resource: ApiResource,
    events: mpsc::Sender<(WatchedStream, Event<Converted>)>,
) {
    let api: Api<DynamicObject> = match &stream.namespace {
        Some(namespace) => Api::namespaced_with(client, namespace, &resource),
        None => Api::all_with(client, &resource),
    };
    let mut config = watcher::Config::default();
    if let Some(name) = &stream.name {
        config = config.fields(&format!("metadata.name={name}"));
    }
    let mut watch = pin!(watcher(api, config));
    let mut backoff = ReconnectBackoff::default();
    let mut failing: Option<String> = None;
    while let Some(item) = watch.next().await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                // Logged when it starts or changes, not at every retry. The API server's status
                // code is named: a `410 Gone` (a resourceVersion too old: compacted) reads as
                // "Expired" otherwise.
                let message = match api_status_code(&error) {
                    Some(code) => format!("{error} (HTTP {code})"),
                    None => error.to_string(),
                };
                if failing.as_deref() == Some(message.as_str()) {
                    tracing::debug!(kind = %stream.kind, namespace = ?stream.namespace, error = %message, "watch still failing; retrying");
                } else {
                    tracing::warn!(kind = %stream.kind, namespace = ?stream.namespace, error = %message, "watch failed; retrying");
                }
                failing = Some(message);
                tokio::time::sleep(backoff.next().unwrap_or(ReconnectBackoff::MAX)).await;
                continue;
            }
        };
        // `Init` comes before every list attempt, so only what follows it shows the watch works
        // again (kube's `StreamBackoff` resets on `Init` too, and so never backs off a list
        // that keeps failing).
        if !matches!(event, Event::Init) {
            backoff.reset();
            if failing.take().is_some() {
                tracing::info!(kind = %stream.kind, namespace = ?stream.namespace, "watch recovered");
            }
        }
        let kind = stream.kind;
        let converted = match event {
            Event::Apply(object) => Event::Apply(convert(kind, &resource, object)),
            Event::Delete(object) => Event::Delete(convert(kind, &resource, object)),
            Event::Init => Event::Init,
            Event::InitApply(object) => Event::InitApply(convert(kind, &resource, object)),
            Event::InitDone => Event::InitDone,
        };
        if events.send((stream.clone(), converted)).await.is_err() {
            return;
        }
    }
}

/// The HTTP status code the API server answered a failed list or watch with, if it answered.
fn api_status_code(error: &watcher::Error) -> Option<u16> {
    match error {
        watcher::Error::WatchError(status) => Some(status.code),
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => Some(status.code),
        _ => None,
    }
}

/// How long a watcher waits before it tries again after an error: 200 ms, doubling up to 4 s,
/// each delay shortened by up to a quarter at random (so that replicas do not retry in step),
/// and back to 200 ms once the watch delivers again. Faster than kube's default (800 ms up to
/// 30 s): a gateway wants the cluster's changes soon after an API-server restart, and a list or
/// watch per stream every few seconds is nothing to an API server.
struct ReconnectBackoff {
    next: Duration,
}

impl ReconnectBackoff {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(4);
}

impl Default for ReconnectBackoff {
    fn default() -> ReconnectBackoff {
        ReconnectBackoff { next: Self::FIRST }
    }
}

impl Iterator for ReconnectBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        Some(delay.mul_f64(1.0 - rand::random::<f64>() / 4.0))
    }
}

impl ReconnectBackoff {
    /// Back to the first delay.
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// Starts and stops the watchers of single objects (referenced Secrets and ConfigMaps), and
/// starts those of kinds the API server serves only after the start.
struct Watchers {
    client: Client,
    resources: BTreeMap<Kind, ApiResource>,
    namespaces: Vec<String>,
    events: mpsc::Sender<(WatchedStream, Event<Converted>)>,
    objects: BTreeMap<WatchedStream, tokio::task::JoinHandle<()>>,
    /// Whether references have been followed once (after every kind listed).
    is_following: bool,
}

impl Watchers {
    /// Watches kinds the API server serves now and did not at the start. Their streams do not
    /// hold publishing once something was published (as for a Secret referenced later); their
    /// watchers end with the mirror's task, as the first ones do.
    fn watch_kinds(&mut self, mirror: &mut Mirror, found: BTreeMap<Kind, ApiResource>) {
        for stream in streams_of(found.keys().copied(), &self.namespaces) {
            let Some(resource) = found.get(&stream.kind) else {
                continue;
            };
            mirror.add_stream(stream.clone());
            tokio::spawn(watch_stream(
                self.client.clone(),
                stream,
                resource.clone(),
                self.events.clone(),
            ));
        }
        // Referenced kinds (Secrets, ConfigMaps) are watched by `follow_references` from now on.
        self.resources.extend(found);
        self.is_following = false;
    }

    /// Watches exactly the Secrets and ConfigMaps the mirror's objects reference, once every
    /// kind has listed, and when the referencing kinds changed (or nothing is watched yet).
    fn follow_references(&mut self, mirror: &mut Mirror) {
        let referencing = [Kind::Gateway, Kind::ListenerSet, Kind::BackendTlsPolicy];
        if !mirror.are_kinds_listed()
            || (self.is_following && !referencing.iter().any(|kind| mirror.has_changed(*kind)))
        {
            return;
        }
        self.is_following = true;
        let wanted: std::collections::BTreeSet<WatchedStream> =
            crate::references::referenced(mirror.store())
                .into_iter()
                .filter(|key| self.resources.contains_key(&key.kind))
                .map(|key| WatchedStream {
                    kind: key.kind,
                    namespace: Some(key.namespace.into()),
                    name: Some(key.name.into()),
                })
                .collect();
        let unwanted: Vec<WatchedStream> = mirror
            .object_streams()
            .filter(|stream| !wanted.contains(*stream))
            .cloned()
            .collect();
        for stream in unwanted {
            if let Some(task) = self.objects.remove(&stream) {
                task.abort();
            }
            mirror.remove_stream(&stream);
        }
        for stream in wanted {
            if self.objects.contains_key(&stream) {
                continue;
            }
            let Some(resource) = self.resources.get(&stream.kind) else {
                continue;
            };
            mirror.add_stream(stream.clone());
            let task = tokio::spawn(watch_stream(
                self.client.clone(),
                stream.clone(),
                resource.clone(),
                self.events.clone(),
            ));
            self.objects.insert(stream, task);
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in self.objects.values() {
            task.abort();
        }
    }
}

/// Applies events to the mirror, all those already queued at once, and publishes an update
/// after each batch that changed something (the first once every stream has listed, the
/// referenced Secrets and ConfigMaps included).
async fn follow(
    mut mirror: Mirror,
    mut received: mpsc::Receiver<(WatchedStream, Event<Converted>)>,
    mut discovered: mpsc::Receiver<BTreeMap<Kind, ApiResource>>,
    mut watchers: Watchers,
    first: oneshot::Sender<tokio::sync::watch::Receiver<Arc<SourceUpdate>>>,
) {
    let mut first = Some(first);
    let mut updates: Option<tokio::sync::watch::Sender<Arc<SourceUpdate>>> = None;
    let mut waiting = tokio::time::interval(Duration::from_secs(10));
    waiting.tick().await;
    loop {
        let next = tokio::select! {
            next = received.recv() => next,
            Some(found) = discovered.recv() => {
                watchers.watch_kinds(&mut mirror, found);
                continue;
            }
            _ = waiting.tick(), if updates.is_none() => {
                let unsynced: Vec<String> = mirror.unsynced().map(|stream| match &stream.namespace {
                    Some(namespace) => format!("{} in {namespace}", stream.kind),
                    None => stream.kind.to_string(),
                }).collect();
                tracing::info!(?unsynced, "waiting for the first list of every watched kind");
                continue;
            }
        };
        let Some((stream, event)) = next else {
            return;
        };
        mirror.apply(&stream, event);
        for _ in 1..MAX_BATCH {
            let Ok((stream, event)) = received.try_recv() else {
                break;
            };
            mirror.apply(&stream, event);
        }
        watchers.follow_references(&mut mirror);
        let Some(update) = mirror.publish() else {
            continue;
        };
        let update = Arc::new(update);
        match &updates {
            Some(sender) => {
                if sender.send(update).is_err() {
                    return;
                }
            }
            None => {
                let (sender, receiver) = tokio::sync::watch::channel(update);
                updates = Some(sender);
                if let Some(first) = first.take()
                    && first.send(receiver).is_err()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
