//! Global buckets, in Redis: one script call per decision, and what happens when Redis is gone.
//!
//! - **One round trip.** Every global rule a request hits is decided by one `EVALSHA` of
//!   `gcra.lua` (through [`redis::Script`], which loads the script and retries once when Redis
//!   answers `NOSCRIPT`, e.g. after a restart). The script reads the server's clock, checks every
//!   bucket and counts the request only if every non-shadow rule admits it.
//! - **Keys** are `portcullis:rl:<16 hex: SHA-1 of the rule id>:<32 hex: SHA-1 of the distinct
//!   values>`: 62 bytes whatever the client sends, the same on every replica. They expire when
//!   their bucket is full again. Standalone Redis (or a primary behind a proxy/sentinel address)
//!   only: the keys of one request are not in one Redis Cluster hash slot. `rediss://` (TLS) is
//!   refused by [`GlobalStore::new`]: the redis crate is built without a TLS feature.
//! - **Connection.** A [`ConnectionManager`], created lazily at the first decision (so
//!   [`GlobalStore::new`] never blocks and works outside a runtime) and reconnecting by itself:
//!   connect timeout [`CONNECT_TIMEOUT`], reconnect backoff from 10 ms up to 100 ms, and a
//!   dropped connection is replaced in the background. A decision waits at most the policy's
//!   `timeout`.
//! - **Failing fast** (`breaker.rs`). Once Redis is known to be down, decisions stop waiting on
//!   it for a moment and apply their failure mode at once; one probe at a time finds it again.

use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::time::Instant;

use super::RateLimitError;
use super::breaker::Breaker;
use super::gcra::Verdict;

/// One connection attempt may take this long.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Commands on a connection fail after this long. Decisions wait only their policy's timeout
/// (50 ms by default); this bounds how long a stalled connection keeps abandoned commands.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why Redis did not decide (the `reason` of `portcullis_redis_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalFailure {
    /// No `--redis` URL.
    NotConfigured,
    /// No answer within the policy's timeout.
    Timeout,
    /// No connection, or it broke.
    Connection,
    /// Redis answered with an error, or with something the script does not return.
    Script,
}

impl GlobalFailure {
    /// The metric reason.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            GlobalFailure::NotConfigured => "not_configured",
            GlobalFailure::Timeout => "timeout",
            GlobalFailure::Connection => "connection",
            GlobalFailure::Script => "script",
        }
    }

    /// A small number for atomics ([`GlobalFailure::from_code`] reverses it).
    pub(crate) fn code(self) -> u8 {
        match self {
            GlobalFailure::NotConfigured => 0,
            GlobalFailure::Timeout => 1,
            GlobalFailure::Connection => 2,
            GlobalFailure::Script => 3,
        }
    }

    /// The failure whose [`GlobalFailure::code`] is `code`.
    pub(crate) fn from_code(code: u8) -> GlobalFailure {
        match code {
            0 => GlobalFailure::NotConfigured,
            1 => GlobalFailure::Timeout,
            3 => GlobalFailure::Script,
            _ => GlobalFailure::Connection,
        }
    }
}

/// The buckets one request hits in Redis.
#[derive(Debug, Default)]
pub(crate) struct GlobalCall {
    /// One key per rule.
    pub(crate) keys: Vec<String>,
    /// Per key: interval and capacity (microseconds), shadow (1/0).
    pub(crate) args: Vec<u64>,
}

/// The Redis side of the rate limiter.
pub(crate) struct GlobalStore {
    client: Option<redis::Client>,
    manager: OnceLock<ConnectionManager>,
    script: redis::Script,
    breaker: Breaker,
}

impl GlobalStore {
    /// A store for `url` (`None`: every decision fails `NotConfigured`). Does not connect.
    pub(crate) fn new(url: Option<&str>) -> Result<GlobalStore, RateLimitError> {
        let client = url
            .map(|url| {
                redis::Client::open(url).map_err(|error| RateLimitError::RedisUrl {
                    url: redact(url),
                    reason: error.to_string(),
                })
            })
            .transpose()?;
        Ok(GlobalStore {
            client,
            manager: OnceLock::new(),
            script: redis::Script::new(include_str!("gcra.lua")),
            breaker: Breaker::new(),
        })
    }

    /// Decides `call` within `timeout`: one verdict per key (times in microseconds) and how
    /// long Redis took, or why it did not answer.
    pub(crate) async fn decide(
        &self,
        call: &GlobalCall,
        timeout: Duration,
    ) -> Result<(Vec<Verdict>, Duration), GlobalFailure> {
        let Some(client) = &self.client else {
            return Err(GlobalFailure::NotConfigured);
        };
        self.breaker.admit(timeout)?;
        let result = self.invoke(client, call, timeout).await;
        match &result {
            Ok(_) => self.breaker.succeeded(),
            Err(failure) => self.breaker.failed(*failure),
        }
        result
    }

    async fn invoke(
        &self,
        client: &redis::Client,
        call: &GlobalCall,
        timeout: Duration,
    ) -> Result<(Vec<Verdict>, Duration), GlobalFailure> {
        let mut connection = self.manager(client)?;
        let mut invocation = self.script.prepare_invoke();
        for key in &call.keys {
            invocation.key(key);
        }
        for arg in &call.args {
            invocation.arg(*arg);
        }
        let started = Instant::now();
        let answer = tokio::time::timeout(
            timeout,
            invocation.invoke_async::<Vec<i64>>(&mut connection),
        )
        .await;
        let values = match answer {
            Err(_elapsed) => return Err(GlobalFailure::Timeout),
            Ok(Err(error)) => return Err(classify(&error)),
            Ok(Ok(values)) => values,
        };
        let verdicts = parse(&values, call.keys.len()).ok_or(GlobalFailure::Script)?;
        Ok((verdicts, started.elapsed()))
    }

    /// The connection manager, created at the first decision (inside the runtime it needs).
    fn manager(&self, client: &redis::Client) -> Result<ConnectionManager, GlobalFailure> {
        if let Some(manager) = self.manager.get() {
            return Ok(manager.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100))
            .set_exponent_base(2.0)
            .set_number_of_retries(5);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|_| GlobalFailure::Connection)?;
        // Two first decisions may race here; one manager wins, the other is dropped unused.
        Ok(self.manager.get_or_init(|| manager).clone())
    }
}

/// The Redis key of a rule's bucket: `portcullis:rl:<rule>:<values>` (see the module doc);
/// `values` has been fed the distinct values (`key::DigestSink`).
pub(crate) fn bucket_key(rule_id: &str, values: &sha1_smol::Sha1) -> String {
    const PREFIX: &str = "portcullis:rl:";
    let rule = sha1_smol::Sha1::from(rule_id).digest().bytes();
    let values = values.digest().bytes();
    let mut key = String::with_capacity(PREFIX.len() + 16 + 1 + 32);
    key.push_str(PREFIX);
    push_hex(&mut key, rule.get(..8).unwrap_or_default());
    key.push(':');
    push_hex(&mut key, values.get(..16).unwrap_or_default());
    key
}

fn push_hex(into: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        into.push(char::from(DIGITS[usize::from(byte >> 4)]));
        into.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// `[admitted, a, b]` per key (see `gcra.lua`) as verdicts; `None` if the shape is wrong.
fn parse(values: &[i64], keys: usize) -> Option<Vec<Verdict>> {
    if values.len() != keys * 3 {
        return None;
    }
    let time = |value: i64| u64::try_from(value).unwrap_or(0);
    let verdicts = values
        .chunks_exact(3)
        .map(|triple| match *triple {
            [1, remaining, reset] => Verdict {
                admitted: true,
                remaining: time(remaining),
                retry_after: 0,
                reset: time(reset),
            },
            [_, retry_after, reset] => Verdict {
                admitted: false,
                remaining: 0,
                retry_after: time(retry_after),
                reset: time(reset),
            },
            _ => Verdict {
                admitted: false,
                remaining: 0,
                retry_after: 0,
                reset: 0,
            },
        })
        .collect();
    Some(verdicts)
}

fn classify(error: &redis::RedisError) -> GlobalFailure {
    if error.is_timeout() {
        GlobalFailure::Timeout
    } else if error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
    {
        GlobalFailure::Connection
    } else {
        GlobalFailure::Script
    }
}

/// The URL without its password, for errors.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}
