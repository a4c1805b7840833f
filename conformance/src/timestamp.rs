//! `metadata.creationTimestamp` values: RFC 3339 UTC times with second precision, as the API
//! server writes them (formatted by `jiff`, the time crate `k8s-openapi` uses for them).
//!
//! Which objects get a timestamp, and when, is decided by the standalone mode in `runner` and
//! `runtime_change`.

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn now() -> String {
    rfc3339(jiff::Timestamp::now().as_second())
}

/// `unix_seconds` as `YYYY-MM-DDTHH:MM:SSZ` (the epoch for a value out of jiff's range).
pub(crate) fn rfc3339(unix_seconds: i64) -> String {
    jiff::Timestamp::from_second(unix_seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

#[cfg(test)]
mod tests;
