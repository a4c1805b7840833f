//! The control loop: applies source updates to the data plane — full compile or the endpoint fast
//! path — and publishes the snapshot, `/config` and `/status`.
//!
//! [`Controller::apply`] takes each [`source::SourceUpdate`] in turn. When routing objects changed
//! it compiles the whole store, links the snapshot's backends in the [`upstream::Registry`],
//! publishes the result to the [`proxy::DataPlane`] and binds the listeners it wants; when only
//! EndpointSlices changed it re-resolves the endpoints of the last compile and leaves the snapshot
//! alone. Either way it refreshes the admin `/status` document ([`status_document`]).
//!
//! The file source feeds it today; the Kubernetes source will feed it next. It does not read,
//! watch or validate config (`source`, `compile`), serve admin requests (`admin`) or handle
//! signals and shutdown (the binary).

mod controller;
mod status_document;

pub use controller::Controller;
pub use status_document::status_document;
