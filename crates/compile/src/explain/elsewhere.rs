//! Routes not on the chosen listener: where they are instead (another listener of the socket,
//! another socket) or why they are nowhere (their status).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use router::HostPattern;
use snapshot::ListenerRoutes;

use super::evaluate::route_label;
use super::{ExplainRequest, Reason, RouteExplanation, RouteResult, Sources};

/// Where a route is: every listener table holding a match of it.
struct Place {
    address: SocketAddr,
    listener: Arc<ListenerRoutes>,
    hostname: HostPattern,
}

/// Every route of `sources` not in `on_listener`, with why it was not considered.
pub(super) fn routes_not_on(
    sources: &Sources<'_>,
    request: &ExplainRequest,
    address: Option<SocketAddr>,
    chosen: Option<&Arc<ListenerRoutes>>,
    on_listener: &HashSet<String>,
) -> Vec<RouteExplanation> {
    let mut places: BTreeMap<String, Vec<Place>> = BTreeMap::new();
    for (socket_address, socket) in &sources.snapshot.sockets {
        for (pattern, listener) in socket.listeners.iter() {
            let labels: HashSet<String> = listener
                .table
                .targets()
                .map(|rule| route_label(rule))
                .collect();
            for label in labels {
                places.entry(label).or_default().push(Place {
                    address: *socket_address,
                    listener: Arc::clone(listener),
                    hostname: pattern.clone(),
                });
            }
        }
    }
    let mut routes: Vec<RouteExplanation> = sources
        .routes
        .iter()
        .filter_map(|status| {
            let label = status.label();
            if on_listener.contains(&label) {
                return None;
            }
            let reason = match places.get(&label) {
                Some(places) => placed_elsewhere(places, request, address, chosen),
                None => not_attached(status),
            };
            Some(RouteExplanation {
                route: label,
                result: RouteResult::NotConsidered,
                reason: Some(reason),
                rules: Vec::new(),
            })
        })
        .collect();
    routes.sort_by(|a, b| a.route.cmp(&b.route));
    routes
}

/// Why a route attached to listeners other than the chosen one does not see the request.
fn placed_elsewhere(
    places: &[Place],
    request: &ExplainRequest,
    address: Option<SocketAddr>,
    chosen: Option<&Arc<ListenerRoutes>>,
) -> Reason {
    let here: Vec<&Place> = places
        .iter()
        .filter(|p| Some(p.address) == address)
        .collect();
    if let Some(chosen) = chosen
        && let Some(isolated) = here.iter().find(|p| p.hostname.matches(&request.host))
    {
        return Reason::ListenerIsolation {
            listener: format!(
                "{} (hostname {})",
                isolated.listener.name, isolated.hostname
            ),
            chosen: chosen.name.to_string(),
        };
    }
    if !here.is_empty() {
        let mut listeners: Vec<String> = here
            .iter()
            .map(|p| format!("{} (hostname {})", p.listener.name, p.hostname))
            .collect();
        listeners.sort();
        listeners.dedup();
        return Reason::ListenerHostname { listeners };
    }
    let mut listeners: Vec<String> = places
        .iter()
        .map(|p| format!("{} on {}", p.listener.name, p.address))
        .collect();
    listeners.sort();
    listeners.dedup();
    Reason::OtherSocket { listeners }
}

/// A route on no listener: its unhealthy conditions and problems.
fn not_attached(status: &crate::status::ObjectStatus) -> Reason {
    let mut conditions: Vec<String> = status
        .parents
        .iter()
        .flat_map(|parent| {
            let p = &parent.parent_ref;
            parent
                .conditions
                .iter()
                .filter(|c| c.is_unhealthy())
                .map(move |c| {
                    format!(
                        "{} {}/{}: {}={:?} ({}): {}",
                        p.kind, p.namespace, p.name, c.kind, c.status, c.reason, c.message
                    )
                })
        })
        .collect();
    conditions.extend(status.problems.iter().cloned());
    if conditions.is_empty() {
        conditions.push("accepted, but none of its rules is usable on any listener".to_owned());
    }
    Reason::NotAttached { conditions }
}
