//! The admin HTTP server: readiness, health, metrics, JSON dumps of status, config and
//! endpoints, and the built-in dashboard (`/ui`) that shows them with the live traffic plots.
//!
//! It serves what the binary hands it in [`AdminState`] and knows nothing about the config model
//! or the snapshot: the binary renders `/status` and `/config` to JSON after every compile,
//! `/endpoints` through a callback and `/explain` through an [`Explainer`]. That keeps this crate
//! off the config pipeline and its requests off the data plane's locks.

mod explain;
mod reloads;
mod routes;
mod server;
mod state;
mod ui;

pub use explain::{ExplainQuery, Explainer};
pub use reloads::{PROBLEMS_KEPT, RELOADS_KEPT, ReloadLog, ReloadRecord};
pub use server::serve;
pub use state::{AdminState, Document};
