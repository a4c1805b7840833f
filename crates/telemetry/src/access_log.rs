//! [`AccessLog`]: one JSON line per request, or nothing.
//!
//! On the hot path: each line is serialised into a thread-local buffer that is reused across
//! requests and written with a single `write_all` under the output's lock, so lines from
//! concurrent requests never interleave. A failed write drops that line (logging must not fail
//! a request) and is reported once through `tracing`.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::semconv::Hex;
use crate::timestamp::Rfc3339Millis;

/// A buffer that grew past this (a huge path) is not kept for the next line.
const MAX_KEPT_BUFFER: usize = 64 * 1024;

/// The `--access-log` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccessLogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// No access log.
    Off,
}

/// An `--access-log` value that is neither `json` nor `off`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown access log format {0:?}: expected \"json\" or \"off\"")]
pub struct UnknownAccessLogFormat(pub String);

impl FromStr for AccessLogFormat {
    type Err = UnknownAccessLogFormat;

    /// Parses `json` or `off`.
    fn from_str(text: &str) -> Result<AccessLogFormat, UnknownAccessLogFormat> {
        match text {
            "json" => Ok(AccessLogFormat::Json),
            "off" => Ok(AccessLogFormat::Off),
            other => Err(UnknownAccessLogFormat(other.to_owned())),
        }
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessLogFormat::Json => "json",
            AccessLogFormat::Off => "off",
        })
    }
}

/// One finished request, as the proxy saw it. Borrowed, so building it allocates nothing.
#[derive(Clone, Debug)]
pub struct AccessLogEntry<'a> {
    /// When the request head was received.
    pub time: SystemTime,
    /// The client's address, if known.
    pub client: Option<SocketAddr>,
    /// The request method.
    pub method: &'a str,
    /// The request host (authority or `Host` header).
    pub host: &'a str,
    /// Path and query as received.
    pub path: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: &'a str,
    /// The status sent to the client.
    pub status: u16,
    /// The matched rule (`HTTPRoute ns/name rules[0]`), if any.
    pub route: Option<&'a str>,
    /// The chosen backend (`Service ns/name:port`), if any.
    pub backend: Option<&'a str>,
    /// The chosen endpoint, if any.
    pub endpoint: Option<SocketAddr>,
    /// Request body bytes received from the client.
    pub bytes_received: u64,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// Time from request head received to response complete.
    pub duration: Duration,
    /// A short description of what went wrong, if anything did.
    pub error: Option<&'a str>,
    /// The request's trace, when tracing is on (sampled or not: the id is what the backend
    /// was sent, and what its logs carry).
    pub trace_id: Option<Hex<16>>,
    /// The request's server span in that trace.
    pub span_id: Option<Hex<8>>,
}

/// Where access log lines go.
pub struct AccessLog {
    output: Output,
    /// Whether a write failure was already reported, so a closed stdout does not flood the log.
    reported_failure: AtomicBool,
}

enum Output {
    Off,
    Stdout,
    Writer(Mutex<Box<dyn Write + Send>>),
}

impl fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let output = match self.output {
            Output::Off => "off",
            Output::Stdout => "stdout",
            Output::Writer(_) => "writer",
        };
        f.debug_struct("AccessLog")
            .field("output", &output)
            .finish()
    }
}

impl AccessLog {
    /// An access log in `format` written to standard output.
    pub fn new(format: AccessLogFormat) -> AccessLog {
        AccessLog::with_output(match format {
            AccessLogFormat::Json => Output::Stdout,
            AccessLogFormat::Off => Output::Off,
        })
    }

    /// An access log in `format` written to `writer` (tests, or a file).
    pub fn to_writer(format: AccessLogFormat, writer: Box<dyn Write + Send>) -> AccessLog {
        AccessLog::with_output(match format {
            AccessLogFormat::Json => Output::Writer(Mutex::new(writer)),
            AccessLogFormat::Off => Output::Off,
        })
    }

    fn with_output(output: Output) -> AccessLog {
        AccessLog {
            output,
            reported_failure: AtomicBool::new(false),
        }
    }

    /// Whether [`AccessLog::log`] writes anything; lets the caller skip building the entry.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.output, Output::Off)
    }

    /// Writes one JSON line for `entry`:
    ///
    /// ```json
    /// {"time":"2024-02-29T13:05:09.123Z","client":"10.0.0.9:51234","method":"GET","host":"shop.example",
    ///  "path":"/cart?id=1","protocol":"HTTP/1.1","status":200,"route":"HTTPRoute shop/cart rules[0]",
    ///  "backend":"Service shop/cart:80","endpoint":"10.0.0.1:8080","bytes_received":0,"bytes_sent":512,
    ///  "duration_ms":1.234,"error":null,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",
    ///  "span_id":"00f067aa0ba902b7"}
    /// ```
    ///
    /// (on one line). Absent values are `null`; `duration_ms` is rounded to microseconds. Lines
    /// from concurrent callers never interleave.
    pub fn log(&self, entry: &AccessLogEntry<'_>) {
        if !self.is_enabled() {
            return;
        }
        thread_local! {
            static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
        }
        let written = LINE
            .try_with(|line| match line.try_borrow_mut() {
                Ok(mut line) => self.write_line(&mut line, entry),
                // Only if a writer logs from inside `log`: use a fresh buffer rather than panic.
                Err(_) => self.write_line(&mut Vec::new(), entry),
            })
            // The thread is exiting and its buffer is gone.
            .unwrap_or_else(|_| self.write_line(&mut Vec::new(), entry));
        if let Err(error) = written
            && !self.reported_failure.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(%error, "cannot write the access log; dropping lines until it works again");
        }
    }

    fn write_line(&self, line: &mut Vec<u8>, entry: &AccessLogEntry<'_>) -> io::Result<()> {
        line.clear();
        serde_json::to_writer(&mut *line, &JsonLine(entry))?;
        line.push(b'\n');
        let written = match &self.output {
            Output::Off => Ok(()),
            Output::Stdout => io::stdout().lock().write_all(line),
            Output::Writer(writer) => writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(line),
        };
        if line.capacity() > MAX_KEPT_BUFFER {
            *line = Vec::with_capacity(512);
        }
        written
    }
}

/// The JSON shape of an entry; field order is the documented one.
struct JsonLine<'e, 'a>(&'e AccessLogEntry<'a>);

impl Serialize for JsonLine<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entry = self.0;
        let mut line = serializer.serialize_struct("AccessLogEntry", 16)?;
        line.serialize_field("time", &AsJsonString(Rfc3339Millis(entry.time)))?;
        line.serialize_field("client", &entry.client)?;
        line.serialize_field("method", entry.method)?;
        line.serialize_field("host", entry.host)?;
        line.serialize_field("path", entry.path)?;
        line.serialize_field("protocol", entry.protocol)?;
        line.serialize_field("status", &entry.status)?;
        line.serialize_field("route", &entry.route)?;
        line.serialize_field("backend", &entry.backend)?;
        line.serialize_field("endpoint", &entry.endpoint)?;
        line.serialize_field("bytes_received", &entry.bytes_received)?;
        line.serialize_field("bytes_sent", &entry.bytes_sent)?;
        line.serialize_field("duration_ms", &duration_ms(entry.duration))?;
        line.serialize_field("error", &entry.error)?;
        line.serialize_field("trace_id", &entry.trace_id.map(AsJsonString))?;
        line.serialize_field("span_id", &entry.span_id.map(AsJsonString))?;
        line.end()
    }
}

/// Serialises a `Display` value as a string without allocating it first.
struct AsJsonString<T>(T);

impl<T: fmt::Display> Serialize for AsJsonString<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// Milliseconds rounded to three decimals. Dividing whole microseconds by 1000 gives the double
/// nearest to the decimal value, which serde_json prints with at most three decimals.
fn duration_ms(duration: Duration) -> f64 {
    let micros = (duration.as_nanos() + 500) / 1000;
    // Precision loss only beyond 2^53 µs (285 years).
    #[allow(clippy::cast_precision_loss)]
    let micros = micros as f64;
    micros / 1000.0
}

#[cfg(test)]
mod tests;
