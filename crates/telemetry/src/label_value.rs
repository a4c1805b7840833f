//! [`LabelValue`]: a metric label value shared by many series.

use std::fmt;
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// A metric label value shared by many series (route or backend names); cheap to clone.
///
/// Build it once per route or backend when a snapshot is compiled, not per request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabelValue(Arc<str>);

impl LabelValue {
    /// The empty value (a request without a route or backend), shared: cloning it does not
    /// allocate.
    pub fn empty() -> LabelValue {
        static EMPTY: LazyLock<LabelValue> = LazyLock::new(|| LabelValue::from(""));
        EMPTY.clone()
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for LabelValue {
    fn from(value: &str) -> LabelValue {
        LabelValue(Arc::from(value))
    }
}

impl From<String> for LabelValue {
    fn from(value: String) -> LabelValue {
        LabelValue(Arc::from(value))
    }
}

impl From<Arc<str>> for LabelValue {
    fn from(value: Arc<str>) -> LabelValue {
        LabelValue(value)
    }
}

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl EncodeLabelValue for LabelValue {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}
