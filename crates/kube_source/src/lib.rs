//! Kubernetes source: watches an API server into the same [`model::Store`] the file source
//! fills, and publishes it as [`source::SourceUpdate`]s.
//!
//! One kube-rs watcher per watched kind (and per namespace with `--namespaces`) streams events
//! into one task that owns the store ([`Mirror`]). It applies each event in place: the new
//! store shares every unchanged object's `Arc` with the previous one, and an event whose object
//! equals the stored one (a status write, a relist) changes nothing and publishes nothing.
//! Bursts are coalesced: every event already queued is applied before one update is published.
//!
//! Readiness: nothing is published before every stream has listed its kind once. A relist
//! (after `410 Gone`, a dropped watch or an API-server restart) is buffered until it completes
//! and then replaces that stream's objects at once, so a partial list is never published; until
//! then the last good store keeps serving.
//!
//! [`StatusWriter`] writes the status `compile` computed back to the API server (server-side
//! apply on the status subresource, only for our GatewayClass's objects, only when changed);
//! Gateways without `spec.addresses` report the addresses of the [`GatewayService`], if any.
//!
//! With several replicas, [`LeaderElection`] (a `coordination.k8s.io` Lease) picks the one that
//! writes status; all of them serve traffic.
//!
//! It does not validate objects or resolve references (`compile` does).

mod convert;
mod discovery;
mod error;
mod gateway_service;
mod lease;
mod mirror;
mod overlay;
mod references;
mod status_writer;
mod watch;

/// Re-exported so that callers name the client type without depending on kube themselves.
pub use kube::Client;

pub use discovery::{WatchedStream, watched_streams};
pub use error::KubeSourceError;
pub use gateway_service::GatewayService;
pub use lease::{LeaderElection, LeaseOptions, default_identity};
pub use overlay::{follow_with_local, overlay};
pub use status_writer::{FIELD_MANAGER, MIN_INTERVAL, StatusOptions, StatusWriter};
pub use watch::{KubeOptions, KubeSource, client};
