//! Maps an admin request to its response. Pure apart from reading [`AdminState`].

use bytes::Bytes;
use http::header::{
    ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;

use crate::state::{self, AdminState};
use crate::ui;

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";

/// The response to `method path?query`. Unknown paths are 404 whatever the method; known paths
/// answer only GET (and HEAD, whose body hyper drops), else 405. Every response carries
/// `Cache-Control: no-store`: everything here is live state. `headers` are the request's
/// (`/metrics` negotiates its format on `Accept`).
pub(crate) async fn respond(
    state: &AdminState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let mut response = route(state, method, path, query, headers).await;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The admin endpoints.
#[derive(Clone, Copy)]
enum Endpoint {
    Ready,
    Healthz,
    Metrics,
    Status,
    Config,
    Endpoints,
    /// A file of the dashboard.
    UiAsset(&'static ui::Asset),
    /// The dashboard's live series and reloads.
    UiLive,
    Explain,
}

async fn route(
    state: &AdminState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<Full<Bytes>> {
    let endpoint = match path {
        "/ready" => Endpoint::Ready,
        "/healthz" => Endpoint::Healthz,
        "/metrics" => Endpoint::Metrics,
        "/status" => Endpoint::Status,
        "/config" => Endpoint::Config,
        "/endpoints" => Endpoint::Endpoints,
        "/explain" => Endpoint::Explain,
        "/ui/api/live" => Endpoint::UiLive,
        other => match ui::asset(other) {
            Some(asset) => Endpoint::UiAsset(asset),
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    &format!("no admin endpoint at {path}"),
                );
            }
        },
    };
    if method != Method::GET && method != Method::HEAD {
        let mut response = error(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} only answers GET"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match endpoint {
        Endpoint::Ready if state.is_ready() => {
            body(StatusCode::OK, TEXT, Bytes::from_static(b"ready"))
        }
        Endpoint::Ready => body(
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            Bytes::from_static(b"not ready"),
        ),
        Endpoint::Healthz => body(StatusCode::OK, TEXT, Bytes::from_static(b"ok")),
        Endpoint::Metrics if accepts_openmetrics(headers) => body(
            StatusCode::OK,
            telemetry::METRICS_CONTENT_TYPE,
            Bytes::from(state.metrics.encode()),
        ),
        Endpoint::Metrics => body(
            StatusCode::OK,
            telemetry::PROMETHEUS_TEXT_CONTENT_TYPE,
            Bytes::from(telemetry::prometheus_text(&state.metrics.encode())),
        ),
        Endpoint::Status => body(StatusCode::OK, JSON, state::read(&state.status_json).await),
        Endpoint::Config => body(StatusCode::OK, JSON, state::read(&state.config_json).await),
        Endpoint::Endpoints => json(StatusCode::OK, &(state.endpoints)()),
        Endpoint::Explain => crate::explain::respond(state, query).await,
        Endpoint::UiLive => json(StatusCode::OK, &ui::live(state)),
        Endpoint::UiAsset(asset) => {
            let mut response = body(
                StatusCode::OK,
                asset.content_type,
                Bytes::from_static(asset.body),
            );
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(ui::CONTENT_SECURITY_POLICY),
            );
            headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            response
        }
    }
}

/// Whether the client asked for OpenMetrics: an `Accept` media range
/// `application/openmetrics-text` with a quality above 0, as Prometheus sends. Anything else
/// (`curl`'s `*/*`, no `Accept`, `text/plain`) gets the Prometheus text format 0.0.4, which
/// every reader takes (`promtool check metrics` reads only that one), as Go's `promhttp` does.
/// Only OpenMetrics carries exemplars.
fn accepts_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let is_openmetrics = parts
                .next()
                .is_some_and(|media| media.eq_ignore_ascii_case("application/openmetrics-text"));
            let is_refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|quality| quality.parse::<f32>().ok())
                    .is_some_and(|quality| quality <= 0.0)
            });
            is_openmetrics && !is_refused
        })
}

pub(crate) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, &serde_json::json!({ "error": message }))
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    // Serialising a `Value` cannot fail: its map keys are always strings.
    let text = serde_json::to_vec(value).unwrap_or_default();
    body(status, JSON, Bytes::from(text))
}

fn body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
