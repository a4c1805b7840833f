//! `/explain`: the query it takes ([`ExplainQuery`]) and how it is answered. What the answer
//! says is computed by the binary's [`Explainer`] against the live config (`compile::explain`);
//! this crate only parses the query and runs the explainer off the runtime's workers.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::state::AdminState;

/// Explains one request against the live config: the JSON answer, or a message saying what
/// is wrong with the request (answered 400). Runs on a blocking thread.
pub type Explainer = dyn Fn(&ExplainQuery) -> Result<serde_json::Value, String> + Send + Sync;

/// `/explain?method=GET&url=http://host/path&header=name:value&gateway=ns/name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExplainQuery {
    /// `method` (default `GET`).
    pub method: String,
    /// `url`, required: an absolute `http://` or `https://` URL.
    pub url: String,
    /// Every `header`, `name:value`.
    pub headers: Vec<String>,
    /// `gateway`, `namespace/name`.
    pub gateway: Option<String>,
}

impl ExplainQuery {
    /// Parses the query string of an `/explain` request (percent-decoded, `+` is a space).
    ///
    /// # Errors
    /// A message naming the problem: no `url`, a parameter we do not know, a bad escape.
    pub fn parse(query: Option<&str>) -> Result<ExplainQuery, String> {
        let mut parsed = ExplainQuery {
            method: "GET".to_owned(),
            ..ExplainQuery::default()
        };
        let mut has_url = false;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value).ok_or_else(|| format!("parameter {name}: bad escape"))?;
            match name {
                "method" => parsed.method = value,
                "url" => {
                    parsed.url = value;
                    has_url = true;
                }
                "header" => parsed.headers.push(value),
                "gateway" => parsed.gateway = Some(value),
                _ => {
                    return Err(format!(
                        "unknown parameter {name:?} (expected method, url, header, gateway)"
                    ));
                }
            }
        }
        if !has_url {
            return Err("the url parameter is required, e.g. /explain?url=http://host/path".into());
        }
        Ok(parsed)
    }
}

/// Percent-decodes one query component (`+` is a space); `None` for a bad escape or a result
/// that is not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let hex = bytes.get(index + 1..index + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            byte => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The `/explain` response: 200 with the explanation, 400 for a bad query, 503 before the
/// first config.
pub(crate) async fn respond(state: &AdminState, query: Option<&str>) -> Response<Full<Bytes>> {
    let query = match ExplainQuery::parse(query) {
        Ok(query) => query,
        Err(message) => return crate::routes::error(StatusCode::BAD_REQUEST, &message),
    };
    let Some(explainer) = state.explain.load_full() else {
        return crate::routes::error(StatusCode::SERVICE_UNAVAILABLE, "no config applied yet");
    };
    // Explaining walks every route of the config and takes the controller's lock: not on a
    // runtime worker.
    let explained = tokio::task::spawn_blocking(move || (**explainer)(&query)).await;
    match explained {
        Ok(Ok(value)) => crate::routes::json(StatusCode::OK, &value),
        Ok(Err(message)) => crate::routes::error(StatusCode::BAD_REQUEST, &message),
        Err(_) => crate::routes::error(StatusCode::INTERNAL_SERVER_ERROR, "explain failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_repeatable() {
        let query = ExplainQuery::parse(Some(
            "url=http%3A%2F%2Fshop.example.com%2F&header=qa:canary-test&header=x:a+b&gateway=shop/web",
        ))
        .expect("parses");
        assert_eq!(
            query,
            ExplainQuery {
                method: "GET".into(),
                url: "http://shop.example.com/".into(),
                headers: vec!["qa:canary-test".into(), "x:a b".into()],
                gateway: Some("shop/web".into()),
            }
        );
    }

    #[test]
    fn bad_queries_are_named() {
        assert!(ExplainQuery::parse(None).is_err());
        assert!(ExplainQuery::parse(Some("method=GET")).is_err());
        assert!(ExplainQuery::parse(Some("url=http://x/&bogus=1")).is_err());
        assert!(ExplainQuery::parse(Some("url=%zz")).is_err());
        assert!(ExplainQuery::parse(Some("url=%ff")).is_err());
        assert!(ExplainQuery::parse(Some("url=%4")).is_err());
    }
}
