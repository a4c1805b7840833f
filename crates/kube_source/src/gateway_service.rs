//! [`GatewayService`]: the Service clients reach the gateway through (`--gateway-service`), and
//! the addresses it gives Gateways' `status.addresses`.
//!
//! The Service is watched on its own (one object, by field selector), not through the store:
//! the store drops every object's `status` (so that status writes do not look like edits), and
//! `--namespaces` may leave the Service's namespace out. Its address changing (a load balancer
//! assigned) is not config either: it reaches only the status writer, never `compile`.
//!
//! Addresses, in order: every `status.loadBalancer.ingress[]` entry's `ip` (type `IPAddress`) and
//! `hostname` (type `Hostname`); when there is none (no load balancer yet, or a `ClusterIP`
//! Service), its `spec.clusterIPs` (or `spec.clusterIP`), unless headless (`None`). A Service
//! that does not exist gives no address.

use std::pin::pin;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::runtime::watcher::{self, Event, watcher};
use serde_json::{Value, json};
use tokio::sync::watch;

#[cfg(test)]
mod tests;

/// `NAMESPACE/NAME` of the Service whose addresses Gateways without `spec.addresses` report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayService {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::str::FromStr for GatewayService {
    type Err = String;

    /// Parses `NAMESPACE/NAME`.
    fn from_str(value: &str) -> Result<GatewayService, String> {
        match value.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(GatewayService {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                })
            }
            _ => Err(format!("{value:?}: expected NAMESPACE/NAME of a Service")),
        }
    }
}

impl std::fmt::Display for GatewayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Service {}/{}", self.namespace, self.name)
    }
}

/// The first delay before a failed watch of the Service is tried again; doubles up to 30 s.
const RETRY_FIRST: Duration = Duration::from_secs(1);

/// The longest delay before a failed watch of the Service is tried again.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Watches `service` and keeps its addresses (as `status.addresses` entries) in the returned
/// channel: `None` until it has been listed once, then `Some` (empty when the Service does not
/// exist or has no address). The task ends when every receiver is dropped. Must run inside a
/// tokio runtime.
pub(crate) fn watch_addresses(
    client: kube::Client,
    service: GatewayService,
) -> watch::Receiver<Option<Vec<Value>>> {
    let (sender, receiver) = watch::channel(None);
    tokio::spawn(async move {
        let api: Api<Service> = Api::namespaced(client, &service.namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", service.name));
        let mut events = pin!(watcher(api, config));
        let mut retry = RETRY_FIRST;
        // The addresses of the list under way (a relist replaces what was known only once done).
        let mut listing: Vec<Value> = Vec::new();
        loop {
            let addresses = tokio::select! {
                () = sender.closed() => return,
                event = events.next() => match event {
                    None => return,
                    Some(Err(error)) => {
                        tracing::warn!(service = %service, %error, "cannot watch the gateway Service; retrying");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(RETRY_MAX);
                        continue;
                    }
                    Some(Ok(Event::Init)) => {
                        listing.clear();
                        continue;
                    }
                    Some(Ok(Event::InitApply(object))) => {
                        listing = addresses(&object);
                        continue;
                    }
                    Some(Ok(Event::InitDone)) => std::mem::take(&mut listing),
                    Some(Ok(Event::Apply(object))) => addresses(&object),
                    Some(Ok(Event::Delete(_))) => Vec::new(),
                },
            };
            retry = RETRY_FIRST;
            sender.send_if_modified(|current| {
                let changed = current.as_ref() != Some(&addresses);
                if changed {
                    tracing::info!(service = %service, ?addresses, "gateway Service addresses");
                    *current = Some(addresses);
                }
                changed
            });
        }
    });
    receiver
}

/// The Gateway `status.addresses` entries `service` gives (see the module doc for the order).
pub(crate) fn addresses(service: &Service) -> Vec<Value> {
    let ingress = service
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|balancer| balancer.ingress.as_ref());
    let mut found = Vec::new();
    for point in ingress.into_iter().flatten() {
        if let Some(ip) = &point.ip {
            found.push(json!({"type": "IPAddress", "value": ip}));
        }
        if let Some(hostname) = &point.hostname {
            found.push(json!({"type": "Hostname", "value": hostname}));
        }
    }
    if !found.is_empty() {
        return found;
    }
    let Some(spec) = &service.spec else {
        return found;
    };
    let cluster_ips = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) => vec![ip.clone()],
        _ => Vec::new(),
    };
    cluster_ips
        .into_iter()
        // A headless Service has no address of its own.
        .filter(|ip| !ip.is_empty() && ip != "None")
        .map(|ip| json!({"type": "IPAddress", "value": ip}))
        .collect()
}
