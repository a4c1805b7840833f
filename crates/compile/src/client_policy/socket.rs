//! The client settings of a socket, merged over the serving listeners that share it (in
//! listener order: Gateways oldest first, then their listeners in order, as sockets take
//! them):
//!
//! - each limit and timeout takes the strictest value ([`ClientSettings::strictest`]);
//! - `tls.minVersion` takes the newest version any listener asks for;
//! - ALPN takes the list of the first listener whose policy sets one (the default otherwise),
//!   since one handshake cannot offer two lists;
//! - PROXY protocol takes the first listener's setting, since a connection cannot both start
//!   with a PROXY header and not.
//!
//! A later listener that disagrees on ALPN or PROXY protocol is a conflict, reported on its
//! policy (on the first listener's policy when the later listener has none).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use snapshot::Scheme;
use snapshot::client::ClientSettings;
use snapshot::tls::{AlpnProtocol, HandshakeSettings, MinTlsVersion};

use crate::listener::Listeners;

use super::{KIND, ListenerClient, SocketClient};

/// A disagreement between listeners of one socket: the policy it is reported on (its index),
/// the field below the policy, and the message.
pub(super) type SocketConflict = (usize, &'static str, String);

/// One socket's settings while its listeners are merged.
struct SocketDraft {
    settings: ClientSettings,
    min_version: MinTlsVersion,
    /// The ALPN list that applies and the slot whose policy set it.
    alpn: Option<(Vec<AlpnProtocol>, usize)>,
    /// The slot of the first listener (whose PROXY protocol setting applies).
    first: usize,
}

/// Merges the settings of the serving listeners of every socket (`clients` by slot; a slot
/// missing there has the defaults). Returns each socket's settings and the conflicts found,
/// each once.
pub(super) fn merge(
    listeners: &Listeners,
    clients: &HashMap<usize, ListenerClient>,
) -> (HashMap<SocketAddr, SocketClient>, Vec<SocketConflict>) {
    let defaults = ListenerClient::default();
    let mut drafts: HashMap<SocketAddr, SocketDraft> = HashMap::new();
    let mut conflicts = Vec::new();
    // UDP listeners have sockets of their own (which may share a TCP socket's address): their
    // settings are read per listener, never merged.
    let usable = listeners
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.usable && s.scheme != Scheme::Udp);
    for (slot, listener) in usable {
        let client = clients.get(&slot).unwrap_or(&defaults);
        for socket in &listener.sockets {
            let Some(draft) = drafts.get_mut(socket) else {
                drafts.insert(
                    *socket,
                    SocketDraft {
                        settings: client.settings.clone(),
                        min_version: client.min_tls_version,
                        alpn: client.alpn.clone().map(|alpn| (alpn, slot)),
                        first: slot,
                    },
                );
                continue;
            };
            let found = draft.add(listeners, clients, (slot, client), socket.port());
            for conflict in found {
                if !conflicts.contains(&conflict) {
                    conflicts.push(conflict);
                }
            }
        }
    }
    let sockets = drafts
        .into_iter()
        .map(|(address, draft)| (address, draft.finish()))
        .collect();
    (sockets, conflicts)
}

impl SocketDraft {
    /// Merges one more listener (`slot`, with its settings) into the socket on `port`.
    /// Returns the conflicts it brings.
    fn add(
        &mut self,
        listeners: &Listeners,
        clients: &HashMap<usize, ListenerClient>,
        (slot, client): (usize, &ListenerClient),
        port: u16,
    ) -> Vec<SocketConflict> {
        let mut conflicts = Vec::new();
        let label = |slot: usize| listeners.slots[slot].label();
        let policy_of = |slot: usize| clients.get(&slot).and_then(|c| c.policy.clone());
        self.settings = self.settings.strictest(&client.settings);
        self.min_version = self.min_version.max(client.min_tls_version);

        let kept = self.settings.proxy_protocol;
        if client.settings.proxy_protocol != kept {
            let first = label(self.first);
            let state = if kept { "enabled" } else { "disabled" };
            let conflict = match (&client.policy, policy_of(self.first)) {
                (Some((policy, _)), _) => Some((
                    *policy,
                    "spec.proxyProtocol.enabled",
                    format!(
                        "{} shares port {port} with {first}, which has it {state}: the first listener's setting applies to the port",
                        label(slot)
                    ),
                )),
                (None, Some((policy, _))) => Some((
                    policy,
                    "spec.proxyProtocol.enabled",
                    format!(
                        "{first} shares port {port} with {}, which has no {KIND} setting it: the first listener's setting ({state}) applies to that listener too",
                        label(slot)
                    ),
                )),
                // Both on the defaults: they cannot disagree.
                (None, None) => None,
            };
            conflicts.extend(conflict);
        }

        match (&self.alpn, &client.alpn) {
            (None, Some(alpn)) => self.alpn = Some((alpn.clone(), slot)),
            (Some((kept, holder)), Some(alpn)) if kept != alpn => {
                // ALPN is only offered on HTTPS sockets (TLS sockets offer none).
                if let (Some((policy, _)), Scheme::Https) =
                    (&client.policy, listeners.slots[slot].scheme)
                {
                    let list: Vec<&str> = kept.iter().map(|p| p.as_str()).collect();
                    conflicts.push((
                        *policy,
                        "spec.tls.alpnProtocols",
                        format!(
                            "{} shares port {port} with {}, whose ALPN protocols ({}) apply to the port",
                            label(slot),
                            label(*holder),
                            list.join(", ")
                        ),
                    ));
                }
            }
            _ => {}
        }
        conflicts
    }

    fn finish(self) -> SocketClient {
        SocketClient {
            settings: Arc::new(self.settings),
            handshake: HandshakeSettings {
                min_version: self.min_version,
                alpn: self
                    .alpn
                    .map_or_else(|| HandshakeSettings::default().alpn, |(alpn, _)| alpn),
            },
        }
    }
}
