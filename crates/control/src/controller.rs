//! [`Controller`]: applies config updates. A full compile when routing objects changed, the
//! endpoint fast path when only EndpointSlices changed; then links, publishes, binds, and updates
//! `/status` and `/config`.
//!
//! It owns the state between updates (the store and endpoint plan of the last compile, its status
//! report, bind errors); the runtime state of backends stays in the `Registry`.

use std::sync::Arc;

use admin::AdminState;
use bytes::Bytes;
use compile::{CompileOptions, EndpointPlan, StatusReport};
use model::Store;
use proxy::{DataPlane, ListenerManager};
use source::SourceUpdate;
use telemetry::Metrics;
use upstream::Registry;

use crate::status_document;

/// The control loop's state. One owner calls [`Controller::apply`] for each update, in order;
/// it is not shared between tasks.
pub struct Controller {
    options: CompileOptions,
    registry: Arc<Registry>,
    plane: Arc<DataPlane>,
    listeners: ListenerManager,
    admin: Arc<AdminState>,
    metrics: Arc<Metrics>,
    compiled_store: Option<Arc<Store>>,
    plan: EndpointPlan,
    status: StatusReport,
    bind_errors: Vec<String>,
    wanted: Vec<std::net::SocketAddr>,
    last_update: Option<Arc<SourceUpdate>>,
}

impl Controller {
    /// A controller that has applied nothing yet. `options` are the compile options of every
    /// update (their `generation` is replaced by the update's); the registry, data plane,
    /// listeners, admin state and metrics are the ones the running gateway serves from.
    pub fn new(
        options: CompileOptions,
        registry: Arc<Registry>,
        plane: Arc<DataPlane>,
        listeners: ListenerManager,
        admin: Arc<AdminState>,
        metrics: Arc<Metrics>,
    ) -> Controller {
        Controller {
            options,
            registry,
            plane,
            listeners,
            admin,
            metrics,
            compiled_store: None,
            plan: EndpointPlan::default(),
            status: StatusReport::default(),
            bind_errors: Vec::new(),
            wanted: Vec::new(),
            last_update: None,
        }
    }

    /// Applies one source update. When some kind other than EndpointSlice differs from the store
    /// last compiled (or nothing was compiled yet), compiles it, links the backends, publishes
    /// the snapshot and `/config`, and binds the listeners it wants; otherwise only re-resolves
    /// the endpoints of the last compile (the snapshot and `/config` stay as they are). Then
    /// records the reload metric and publishes `/status`. Never fails: compile problems and
    /// rejected files are reported in `/status` and the log. Must run inside a tokio runtime.
    pub fn apply(&mut self, update: Arc<SourceUpdate>) {
        let started = std::time::Instant::now();
        // Compare with the store last compiled, not with the previous update: the watch channel
        // may skip intermediate updates, and their changes must not be lost.
        let needs_compile = match &self.compiled_store {
            None => true,
            Some(old) => source::changed_kinds(old, &update.store)
                .iter()
                .any(|k| !k.is_endpoint_only()),
        };
        if needs_compile {
            let options = CompileOptions {
                generation: update.generation,
                ..self.options.clone()
            };
            let compiled = compile::compile(&update.store, &options);
            let backends = self.registry.link(&compiled.snapshot.backends);
            self.registry
                .set_endpoints(compiled.endpoints.resolve(&update.store));
            self.wanted = compiled.snapshot.addresses().collect();
            let config = serde_json::json!({
                "generation": update.generation,
                "listeners": compiled.config_view["listeners"],
                "backends": compiled.snapshot.backends,
            });
            self.admin
                .config_json
                .store(Arc::new(Bytes::from(config.to_string())));
            self.plane.publish(compiled.snapshot, backends);
            self.plan = compiled.endpoints;
            self.status = compiled.status;
            self.compiled_store = Some(Arc::clone(&update.store));
            self.bind();
            for problem in self.status.problems() {
                tracing::warn!("{problem}");
            }
        } else {
            self.registry
                .set_endpoints(self.plan.resolve(&update.store));
            self.compiled_store = Some(Arc::clone(&update.store));
        }
        let file_errors = update.files.iter().filter(|f| f.error.is_some()).count();
        for file in update.files.iter().filter(|f| f.error.is_some()) {
            tracing::error!(path = %file.path.display(), error = file.error.as_deref().unwrap_or(""), "config file rejected; its last good version keeps serving");
        }
        self.metrics
            .config_reloaded(file_errors == 0, update.generation);
        self.last_update = Some(update);
        self.publish_status();
        tracing::info!(
            generation = self.last_update.as_ref().map_or(0, |u| u.generation),
            full = needs_compile,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "config applied"
        );
    }

    /// Binds the wanted sockets (and retries those that failed). Ready once all are bound.
    fn bind(&mut self) {
        let errors = self.listeners.sync(&self.wanted);
        self.bind_errors = errors
            .iter()
            .map(|e| format!("cannot listen on {}: {}", e.addr, e.error))
            .collect();
        for error in &self.bind_errors {
            tracing::error!("{error}");
        }
        self.admin.set_ready(self.bind_errors.is_empty());
    }

    /// Whether some socket is still waiting to be bound.
    pub fn has_bind_errors(&self) -> bool {
        !self.bind_errors.is_empty()
    }

    /// Retries failed binds and refreshes `/status` when that changed something. Must run
    /// inside a tokio runtime.
    pub fn retry_binds(&mut self) {
        let before = self.bind_errors.len();
        self.bind();
        if before != self.bind_errors.len() {
            self.publish_status();
        }
    }

    /// Ends the control loop and hands back the listeners, for the caller to drain them
    /// (`ListenerManager::shutdown`).
    pub fn into_listeners(self) -> ListenerManager {
        self.listeners
    }

    fn publish_status(&self) {
        let Some(update) = &self.last_update else {
            return;
        };
        let document = status_document(update, &self.status, &self.bind_errors);
        self.admin
            .status_json
            .store(Arc::new(Bytes::from(document.to_string())));
    }
}

#[cfg(test)]
mod tests;
