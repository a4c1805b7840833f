//! [`AdminState`]: everything the admin server shows, owned by the binary and shared with it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use telemetry::Metrics;

/// What the admin endpoints serve. The binary keeps an `Arc` and updates the fields; every
/// update is visible to the next admin request.
pub struct AdminState {
    /// `/ready` answers 200 once this is true (first config applied, listeners bound), 503 before.
    pub ready: AtomicBool,
    /// The `/status` body (JSON), replaced by the binary after every compile.
    pub status_json: ArcSwap<Bytes>,
    /// The `/config` body (JSON), replaced by the binary after every compile.
    pub config_json: ArcSwap<Bytes>,
    /// Encoded for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Computes the `/endpoints` body on each request (endpoint health changes between
    /// compiles). Called on a runtime worker thread, so it must be quick.
    pub endpoints: Box<dyn Fn() -> serde_json::Value + Send + Sync>,
}

impl AdminState {
    /// Not ready, with `{}` as the status and config bodies until the binary sets them.
    pub fn new(
        metrics: Arc<Metrics>,
        endpoints: impl Fn() -> serde_json::Value + Send + Sync + 'static,
    ) -> AdminState {
        AdminState {
            ready: AtomicBool::new(false),
            status_json: ArcSwap::from_pointee(Bytes::from_static(b"{}")),
            config_json: ArcSwap::from_pointee(Bytes::from_static(b"{}")),
            metrics,
            endpoints: Box::new(endpoints),
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
