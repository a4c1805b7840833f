//! The built-in dashboard (`/ui`): its page, script and stylesheet, embedded in the binary
//! from `src/ui/` (plain files, no build step, nothing fetched from elsewhere), and the JSON of
//! `/ui/api/live` that the page polls for the traffic plots and the reload history.
//!
//! The page also reads `/status` and `/endpoints`; this module renders nothing from those.
//! Layout and polling are described in `docs/architecture/dashboard.md`.

use std::time::SystemTime;

use crate::reloads::unix_ms;
use crate::state::AdminState;

/// One embedded file of the dashboard.
pub(crate) struct Asset {
    /// Its `Content-Type`.
    pub(crate) content_type: &'static str,
    /// Its bytes, as compiled in.
    pub(crate) body: &'static [u8],
}

const PAGE: Asset = Asset {
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("ui/index.html"),
};
const SCRIPT: Asset = Asset {
    content_type: "text/javascript; charset=utf-8",
    body: include_bytes!("ui/app.js"),
};
const STYLESHEET: Asset = Asset {
    content_type: "text/css; charset=utf-8",
    body: include_bytes!("ui/app.css"),
};

/// The `Content-Security-Policy` of the dashboard's responses: the page loads only its own
/// script, stylesheet and JSON from this server, and runs no inline script.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The embedded file served at `path`, if any: `/ui` (and `/ui/`), `/ui/app.js`,
/// `/ui/app.css`.
pub(crate) fn asset(path: &str) -> Option<&'static Asset> {
    match path {
        "/ui" | "/ui/" | "/ui/index.html" => Some(&PAGE),
        "/ui/app.js" => Some(&SCRIPT),
        "/ui/app.css" => Some(&STYLESHEET),
        _ => None,
    }
}

/// The body of `/ui/api/live`: the server's clock, whether it is ready, the request totals
/// since start, the per-second samples of the last minutes (oldest first, see
/// [`telemetry::LiveSample`]) and the reloads kept (oldest first, see
/// [`crate::ReloadLog::view`]).
pub(crate) fn live(state: &AdminState) -> serde_json::Value {
    let stats = state.metrics.live_stats();
    serde_json::json!({
        "now_unix_ms": unix_ms(SystemTime::now()),
        "ready": state.is_ready(),
        "interval_ms": SAMPLE_INTERVAL_MS,
        "history_len": telemetry::HISTORY_LEN,
        "totals": stats.totals(),
        "samples": stats.samples(),
        "reloads": state.reloads.view(),
    })
}

/// How often the admin server samples the live stats (`server::sample_live_stats`).
pub(crate) const SAMPLE_INTERVAL_MS: u64 = 1000;
