//! [`AdminState`]: everything the admin server shows, owned by the binary and shared with it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use telemetry::Metrics;

use crate::reloads::ReloadLog;

/// What the admin endpoints serve. The binary keeps an `Arc` and updates the fields; every
/// update is visible to the next admin request.
pub struct AdminState {
    /// `/ready` answers 200 once this is true (first config applied, listeners bound), 503 before.
    pub ready: AtomicBool,
    /// The `/status` body (JSON), replaced by the binary after every change.
    pub status_json: ArcSwap<Document>,
    /// The `/config` body (JSON), replaced by the binary after every compile.
    pub config_json: ArcSwap<Document>,
    /// Encoded for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Computes the `/endpoints` body on each request (endpoint health changes between
    /// compiles). Called on a runtime worker thread, so it must be quick.
    pub endpoints: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
    /// The last config reloads, recorded by the binary after each applied update; shown by the
    /// dashboard (`/ui`).
    pub reloads: ReloadLog,
    /// Answers `/explain` against the live config; `None` (503) until the binary sets it.
    pub explain: ArcSwapOption<Box<crate::Explainer>>,
}

impl AdminState {
    /// Not ready, with `{}` as the status and config bodies until the binary sets them, and no
    /// reload recorded.
    pub fn new(
        metrics: Arc<Metrics>,
        endpoints: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> AdminState {
        AdminState {
            ready: AtomicBool::new(false),
            status_json: ArcSwap::from_pointee(Document::ready(Bytes::from_static(b"{}"))),
            config_json: ArcSwap::from_pointee(Document::ready(Bytes::from_static(b"{}"))),
            metrics,
            endpoints: Box::new(endpoints),
            reloads: ReloadLog::default(),
            explain: ArcSwapOption::empty(),
        }
    }

    /// Whether `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Sets what `/ready` answers.
    pub fn set_ready(&self, is_ready: bool) {
        self.ready.store(is_ready, Ordering::Release);
    }
}

impl fmt::Debug for AdminState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminState")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// An admin document: given as bytes, or rendered on the first request that reads it. With
/// thousands of routes `/status` and `/config` are megabytes of JSON: rendering them on every
/// change would cost more than the change itself, so the binary hands over a renderer and
/// requests pay for it, once per change.
pub struct Document {
    rendered: OnceLock<Bytes>,
    render: Option<Box<dyn Fn() -> Bytes + Send + Sync>>,
}

impl Document {
    /// A document already rendered.
    pub fn ready(bytes: Bytes) -> Document {
        Document {
            rendered: OnceLock::from(bytes),
            render: None,
        }
    }

    /// A document `render` renders when first read (on a thread that may block).
    pub fn lazy(render: impl Fn() -> Bytes + Send + Sync + 'static) -> Document {
        Document {
            rendered: OnceLock::new(),
            render: Some(Box::new(render)),
        }
    }

    /// The document's bytes, rendering them on the first call.
    pub fn bytes(&self) -> Bytes {
        self.rendered
            .get_or_init(|| {
                self.render
                    .as_ref()
                    .map(|render| render())
                    .unwrap_or_default()
            })
            .clone()
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("rendered", &self.rendered.get().is_some())
            .finish_non_exhaustive()
    }
}

/// Reads a document on a blocking thread (a lazy one renders there).
pub(crate) async fn read(document: &ArcSwap<Document>) -> Bytes {
    let document: Arc<Document> = document.load_full();
    if let Some(bytes) = document.rendered.get() {
        return bytes.clone();
    }
    let reading = Arc::clone(&document);
    // A renderer that panicked leaves an empty body (and the panic in the log).
    tokio::task::spawn_blocking(move || reading.bytes())
        .await
        .unwrap_or_default()
}
