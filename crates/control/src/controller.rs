//! [`Controller`]: applies config updates through the incremental [`Compiler`]: a change
//! recompiles what it affects (a route, the routes of a Service) and rebuilds the tables of the
//! listeners involved; an EndpointSlice change only re-resolves the endpoints of its Service.
//! Then it links the backends, publishes the snapshot, binds, and hands `/status` and `/config`
//! to the admin server as documents rendered when first requested, and `/explain` as a closure
//! over the compiler.
//!
//! It owns the state between updates (the compiler and the store it compiled, bind errors);
//! the runtime state of backends stays in the `Registry`.

use std::sync::{Arc, Mutex, MutexGuard};

use admin::{AdminState, Document};
use bytes::Bytes;
use compile::{CompileOptions, Compiler};
use model::Store;
use proxy::{DataPlane, ListenerManager};
use source::SourceUpdate;
use telemetry::Metrics;
use upstream::Registry;

use crate::status_document;

/// The control loop's state. One owner calls [`Controller::apply`] for each update, in order;
/// it is not shared between tasks (the admin documents read [`Rendered`] under its lock).
pub struct Controller {
    options: CompileOptions,
    registry: Arc<Registry>,
    plane: Arc<DataPlane>,
    listeners: ListenerManager,
    admin: Arc<AdminState>,
    metrics: Arc<Metrics>,
    compiled_store: Option<Arc<Store>>,
    /// The generation of `compiled_store`'s update.
    compiled_store_generation: u64,
    wanted: Vec<std::net::SocketAddr>,
    /// The UDP sockets the current snapshot wants.
    wanted_udp: Vec<std::net::SocketAddr>,
    rendered: Arc<Mutex<Rendered>>,
    status_sink: Option<StatusSink>,
}

/// Where each applied update's status change goes ([`Controller::on_status`]).
type StatusSink = Box<dyn Fn(compile::StatusChange, Arc<Store>) + Send>;

/// What `/status` and `/config` are rendered from.
#[derive(Default)]
struct Rendered {
    compiler: Option<Compiler>,
    update: Option<Arc<SourceUpdate>>,
    bind_errors: Vec<String>,
    /// The generation of the update the snapshot was last compiled from.
    compiled_generation: u64,
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
            compiled_store_generation: 0,
            wanted: Vec::new(),
            wanted_udp: Vec::new(),
            rendered: Arc::default(),
            status_sink: None,
        }
    }

    fn rendered(&self) -> MutexGuard<'_, Rendered> {
        // Plain data, consistent at every await-free step: a poisoned lock is still usable.
        self.rendered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one source update: compiles it (incrementally after the first), links and
    /// publishes a changed snapshot (its new backends get their endpoints first), updates the
    /// endpoints a change affects, binds the listeners a new snapshot wants, and replaces
    /// `/status` (and `/config` with the snapshot), and records the reload for the dashboard
    /// (`AdminState::reloads`). Never fails: compile problems and rejected files are reported in
    /// `/status`, the reload history and the log. Must run inside a tokio runtime.
    pub fn apply(&mut self, update: Arc<SourceUpdate>) {
        let started = std::time::Instant::now();
        let rendered = Arc::clone(&self.rendered);
        let mut rendered = rendered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let options = CompileOptions {
            generation: update.generation,
            ..self.options.clone()
        };
        // Compare with the store last compiled, not with the previous update: the watch channel
        // may skip intermediate updates, and their changes must not be lost.
        let (compiler, step) = match (rendered.compiler.take(), &self.compiled_store) {
            (Some(mut compiler), Some(old)) => {
                // The update says what changed since the one before it: usable when that is
                // the one compiled last.
                let step = match &update.changed {
                    Some(changed) if update.generation == self.compiled_store_generation + 1 => {
                        compiler.update_changed(old, &update.store, update.generation, changed)
                    }
                    _ => compiler.update(old, &update.store, update.generation),
                };
                (compiler, step)
            }
            _ => {
                let compiler = Compiler::build(&update.store, options);
                let step = compile::Step {
                    full: true,
                    snapshot_changed: true,
                    endpoints: compiler.all_endpoints(&update.store),
                    ..compile::Step::default()
                };
                (compiler, step)
            }
        };
        let compiled_in = started.elapsed();
        let snapshot_changed = step.snapshot_changed;
        // An update that changed no snapshot (endpoints only, or nothing) changed no status.
        let mut status_change = None;
        let mut problems_found = Vec::new();
        if snapshot_changed {
            let snapshot = Arc::clone(compiler.snapshot());
            let backends = self.registry.link(&snapshot.backends);
            if step.full {
                self.registry.set_endpoints(step.endpoints);
            } else {
                self.registry.update_endpoints(step.endpoints);
            }
            self.wanted = snapshot.addresses().collect();
            self.wanted_udp = snapshot.udp_addresses().collect();
            self.plane.publish(snapshot, backends);
            rendered.compiled_generation = update.generation;
            // Problems are logged when they appear: all of them after a full compile, those
            // of the routes compiled again otherwise.
            let logged = if step.full {
                compiler.status()
            } else {
                compile::StatusReport {
                    objects: step.statuses,
                }
            };
            problems_found = logged.problems();
            for problem in &problems_found {
                tracing::warn!("{problem}");
            }
            status_change = Some(if step.full {
                compile::StatusChange::Full(logged)
            } else {
                compile::StatusChange::Partial {
                    statuses: logged.objects,
                    recompiled: step.recompiled,
                }
            });
        } else if !step.endpoints.is_empty() {
            self.registry.update_endpoints(step.endpoints);
        }
        rendered.compiler = Some(compiler);
        rendered.update = Some(Arc::clone(&update));
        self.compiled_store = Some(Arc::clone(&update.store));
        self.compiled_store_generation = update.generation;
        drop(rendered);
        if snapshot_changed {
            self.bind();
            self.publish_config();
            self.publish_explain();
        }
        let file_errors = update.files.iter().filter(|f| f.error.is_some()).count();
        for file in update.files.iter().filter(|f| f.error.is_some()) {
            tracing::error!(path = %file.path.display(), error = file.error.as_deref().unwrap_or(""), "config file rejected; its last good version keeps serving");
        }
        self.metrics
            .config_reloaded(file_errors == 0, update.generation);
        self.record_reload(&update, snapshot_changed, problems_found, started);
        self.publish_status();
        if let Some(sink) = &self.status_sink
            && let Some(change) = status_change.filter(|change| !change.is_empty())
        {
            sink(change, Arc::clone(&update.store));
        }
        tracing::info!(
            generation = update.generation,
            full = step.full,
            compiled = snapshot_changed,
            compile_ms = compiled_in.as_secs_f64() * 1000.0,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "config applied"
        );
    }

    /// The status of every object as last compiled, with the store it was compiled from;
    /// `None` before the first update. Computed on each call (a pass over every object).
    pub fn status(&self) -> Option<(compile::StatusReport, Arc<Store>)> {
        let store = Arc::clone(self.compiled_store.as_ref()?);
        let report = self.rendered().compiler.as_ref()?.status();
        Some((report, store))
    }

    /// Hands what changed in the status, with the store compiled, to `sink` at the end of every
    /// [`Controller::apply`] that changed some (Kubernetes mode writes it back to the API
    /// server): every object's status after a full compile ([`compile::StatusChange::Full`]),
    /// only what the step compiled again otherwise ([`compile::StatusChange::Partial`]), so the
    /// cost follows the change. Applying every change handed over, in order, gives
    /// [`Controller::status`], except that a Gateway or ListenerSet an incremental step
    /// dropped is not named as gone (the next full change drops it). `sink` must not block: it
    /// runs on the control loop.
    pub fn on_status(&mut self, sink: impl Fn(compile::StatusChange, Arc<Store>) + Send + 'static) {
        self.status_sink = Some(Box::new(sink));
    }

    /// Binds the wanted sockets (and retries those that failed). Ready once all are bound.
    fn bind(&mut self) {
        let mut errors = self.listeners.sync(&self.wanted);
        errors.extend(self.listeners.sync_udp(&self.wanted_udp));
        let bind_errors: Vec<String> = errors
            .iter()
            .map(|e| format!("cannot listen on {}: {}", e.addr, e.error))
            .collect();
        for error in &bind_errors {
            tracing::error!("{error}");
        }
        self.admin.set_ready(bind_errors.is_empty());
        self.rendered().bind_errors = bind_errors;
    }

    /// Whether some socket is still waiting to be bound.
    pub fn has_bind_errors(&self) -> bool {
        !self.rendered().bind_errors.is_empty()
    }

    /// Retries failed binds and refreshes `/status` when that changed something. Must run
    /// inside a tokio runtime.
    pub fn retry_binds(&mut self) {
        let before = self.rendered().bind_errors.len();
        self.bind();
        if before != self.rendered().bind_errors.len() {
            self.publish_status();
        }
    }

    /// Ends the control loop and hands back the listeners, for the caller to drain them
    /// (`ListenerManager::shutdown`).
    pub fn into_listeners(self) -> ListenerManager {
        self.listeners
    }

    /// Adds this apply to the dashboard's reload history (`AdminState::reloads`): its
    /// rejected files and the problems its compile found.
    fn record_reload(
        &self,
        update: &SourceUpdate,
        compiled: bool,
        problems: Vec<String>,
        started: std::time::Instant,
    ) {
        let file_errors = update
            .files
            .iter()
            .filter_map(|file| {
                let error = file.error.as_ref()?;
                Some(format!("{}: {error}", file.path.display()))
            })
            .collect();
        self.admin.reloads.record(admin::ReloadRecord {
            generation: update.generation,
            at: std::time::SystemTime::now(),
            elapsed: started.elapsed(),
            compiled,
            file_errors,
            problem_count: problems.len(),
            problems,
        });
    }

    /// Hands `/status` to the admin server, rendered when first requested.
    fn publish_status(&self) {
        let rendered = Arc::clone(&self.rendered);
        self.admin
            .status_json
            .store(Arc::new(Document::lazy(move || {
                let rendered = rendered
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let (Some(update), Some(compiler)) = (&rendered.update, &rendered.compiler) else {
                    return Bytes::from_static(b"{}");
                };
                let document = status_document(update, &compiler.status(), &rendered.bind_errors);
                Bytes::from(document.to_string())
            })));
    }

    /// Hands `/config` to the admin server, rendered when first requested.
    fn publish_config(&self) {
        let rendered = Arc::clone(&self.rendered);
        self.admin
            .config_json
            .store(Arc::new(Document::lazy(move || {
                let rendered = rendered
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let Some(compiler) = &rendered.compiler else {
                    return Bytes::from_static(b"{}");
                };
                let config = serde_json::json!({
                    "generation": rendered.compiled_generation,
                    "listeners": compiler.config_view()["listeners"],
                    "backends": compiler.snapshot().backends,
                });
                Bytes::from(config.to_string())
            })));
    }
}

impl Controller {
    /// Hands `/explain` to the admin server: it explains against the compiler and store as
    /// they are when asked (under the lock, like `/status`), and adds each matched backend's
    /// live endpoint state from the registry (`live`, as `/endpoints` shows it).
    fn publish_explain(&self) {
        let rendered = Arc::clone(&self.rendered);
        let registry = Arc::clone(&self.registry);
        let explainer: Box<admin::Explainer> = Box::new(move |query: &admin::ExplainQuery| {
            let request = compile::ExplainRequest::parse(
                &query.method,
                &query.url,
                &query.headers,
                query.gateway.as_deref(),
            )
            .map_err(|error| error.to_string())?;
            let rendered = rendered
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let (Some(update), Some(compiler)) = (&rendered.update, &rendered.compiler) else {
                return Err("no config applied yet".to_owned());
            };
            let explanation = compiler
                .explain(&update.store, &request)
                .map_err(|error| error.to_string())?;
            let generation = rendered.compiled_generation;
            drop(rendered);
            let mut json = explanation.to_json();
            add_live_endpoints(&mut json, &registry.view());
            if let Some(object) = json.as_object_mut() {
                object.insert("generation".to_owned(), generation.into());
            }
            Ok(json)
        });
        self.admin.explain.store(Some(Arc::new(explainer)));
    }
}

/// Adds `live` (the registry's view of the backend: endpoints, health) to every backend of
/// the matched rule of an explanation, and to every part of its Composition.
fn add_live_endpoints(explanation: &mut serde_json::Value, registry: &serde_json::Value) {
    let Some(action) = explanation.pointer_mut("/matched/action") else {
        return;
    };
    let backends = action
        .get_mut("backends")
        .and_then(serde_json::Value::as_array_mut);
    for backend in backends.into_iter().flatten() {
        add_live(backend, registry);
    }
    let waves = action
        .pointer_mut("/composition/waves")
        .and_then(serde_json::Value::as_array_mut);
    for wave in waves.into_iter().flatten() {
        let parts = wave
            .get_mut("parts")
            .and_then(serde_json::Value::as_array_mut);
        for part in parts.into_iter().flatten() {
            add_live(part, registry);
        }
    }
}

/// Adds `live` to one backend (or part) of an explanation, by its `backend` identity.
fn add_live(backend: &mut serde_json::Value, registry: &serde_json::Value) {
    let live = backend
        .get("backend")
        .and_then(serde_json::Value::as_str)
        .and_then(|id| registry.get(id))
        .cloned();
    if let (Some(live), Some(object)) = (live, backend.as_object_mut()) {
        object.insert("live".to_owned(), live);
    }
}

#[cfg(test)]
mod tests;
