//! The JSON body the echo handler returns, shared by the server (to write it) and by tests (to read it).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the echo backend saw, in the JSON shape of echo-basic's `RequestAssertions`.
///
/// Every field defaults when absent, so replies from the real echo-basic image (which has no `httpPort`) parse
/// too. The `tls` and `sni` fields of echo-basic are not modelled: this server speaks plain TCP only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EchoReply {
    /// The request target exactly as received (Go's `RequestURI`): path plus query, `//` not collapsed.
    pub path: String,
    /// The `Host` header, or `:authority` for HTTP/2.
    pub host: String,
    /// The request method, e.g. `GET`.
    pub method: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub proto: String,
    /// Request headers by Go canonical name (`X-Forwarded-For`), values in arrival order; `Host` excluded.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The namespace the backend was started with.
    pub namespace: String,
    /// Always empty; echo-basic reports its `INGRESS_NAME` here.
    pub ingress: String,
    /// The Service name the backend was started with.
    pub service: String,
    /// The pod name the backend was started with; the conformance suite matches it by prefix.
    pub pod: String,
    /// The local port the request arrived on, as a decimal string.
    #[serde(rename = "httpPort")]
    pub http_port: String,
}

impl EchoReply {
    /// Returns the values of request header `name` (any case) joined with `,`, the way the conformance suite
    /// compares them, or `None` when the backend did not receive the header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, values)| values.join(","))
    }
}

/// Converts a header name to Go's canonical MIME form: the first letter and every letter after `-` upper case,
/// all others lower case (`x-forwarded-for` becomes `X-Forwarded-For`).
///
/// Like Go's `CanonicalMIMEHeaderKey`, a name holding a byte that is not a token character is returned as is.
pub(crate) fn canonical_header_name(name: &str) -> String {
    if !name.bytes().all(is_token_byte) {
        return name.to_owned();
    }
    let mut upper_next = true;
    name.chars()
        .map(|c| {
            let out = if upper_next {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper_next = c == '-';
            out
        })
        .collect()
}

/// Whether `byte` may appear in an HTTP token (RFC 9110 section 5.6.2).
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}
