//! Circuit breaking of one backend: concurrency limits and the error-rate breaker.
//!
//! Owns the admission decision ([`Breaker::admit`]) and the state it needs: requests in flight,
//! requests pending, and the error-rate state machine (`error_rate.rs`). It lives in the
//! backend's `BackendRuntime`, so it survives reloads; settings are read from the current
//! [`BackendPolicy`] on every call. It does not decide what an error is: the proxy reports each
//! attempt's outcome through the [`Admission`] guard.
//!
//! What the limits count:
//! - parallel: admitted requests whose [`Admission`] is alive, i.e. from admission until the
//!   proxy has the response head (or the attempt failed). Streaming response bodies are not
//!   counted.
//! - pending: admitted requests that have not received a response head yet
//!   ([`Admission::head_received`] ends it). Because the guard ends at the head too, pending
//!   and parallel differ only for callers that keep the guard past the head.
//! - `maxConnections` is not counted here: a cleartext backend with a limit gets pools of its
//!   own (`backend_pool`) whose connector counts the backend's open connections and refuses one
//!   beyond the limit (503 `overloaded-connections`, not counted against the backend); a TLS
//!   backend's TLS pools share that connector, so the limit holds for them too.

mod error_rate;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

use snapshot::backend::policy::BackendPolicy;

pub use error_rate::BreakerState;
use error_rate::{ErrorRate, Pass};

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// `maxParallelRequests` requests are in flight.
    Parallel,
    /// `maxPendingRequests` requests are waiting for a response head.
    Pending,
    /// The error-rate breaker is open (or half-open with every probe slot taken).
    BreakerOpen,
}

impl Rejection {
    /// The metric label: `parallel`, `pending` or `breaker-open`.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Parallel => "parallel",
            Rejection::Pending => "pending",
            Rejection::BreakerOpen => "breaker-open",
        }
    }
}

/// Breaker state of one backend (kept in its `BackendRuntime`).
#[derive(Debug)]
pub struct Breaker {
    parallel: AtomicU32,
    pending: AtomicU32,
    error_rate: ErrorRate,
}

impl Default for Breaker {
    fn default() -> Breaker {
        Breaker::new()
    }
}

impl Breaker {
    /// A closed breaker with nothing in flight.
    pub fn new() -> Breaker {
        Breaker {
            parallel: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            error_rate: ErrorRate::new(),
        }
    }

    /// Admits one request (one attempt) under `policy`, or says which limit rejects it. The
    /// error-rate breaker is asked first (an open breaker rejects without touching the counts),
    /// then the parallel and pending limits. Lock-free unless the breaker changes state.
    /// The admission keeps `policy`, whose error-rate settings judge its outcome.
    pub fn admit(self: &Arc<Self>, policy: Arc<BackendPolicy>) -> Result<Admission, Rejection> {
        let pass = self
            .error_rate
            .admit(policy.error_rate.as_ref())
            .ok_or(Rejection::BreakerOpen)?;
        if !take(&self.parallel, policy.limits.max_parallel_requests) {
            self.error_rate.abandon(pass);
            return Err(Rejection::Parallel);
        }
        if !take(&self.pending, policy.limits.max_pending_requests) {
            self.parallel.fetch_sub(1, Ordering::AcqRel);
            self.error_rate.abandon(pass);
            return Err(Rejection::Pending);
        }
        Ok(Admission {
            breaker: Arc::clone(self),
            policy,
            pass: Some(pass),
            is_pending: true,
        })
    }

    /// The error-rate breaker's state.
    pub fn state(&self) -> BreakerState {
        self.error_rate.state()
    }

    /// Admitted requests in flight now.
    pub fn parallel(&self) -> u32 {
        self.parallel.load(Ordering::Acquire)
    }

    /// Admitted requests without a response head now.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Acquire)
    }

    /// A JSON-ready view for `/endpoints`.
    pub fn view(&self) -> BreakerView {
        BreakerView {
            state: match self.state() {
                BreakerState::Closed => "closed",
                BreakerState::Open => "open",
                BreakerState::HalfOpen => "half-open",
            },
            parallel: self.parallel(),
            pending: self.pending(),
        }
    }
}

/// `/endpoints` view of a backend's breaker.
#[derive(Debug, Serialize)]
pub struct BreakerView {
    /// `closed`, `open` or `half-open`.
    pub state: &'static str,
    /// Admitted requests in flight.
    pub parallel: u32,
    /// Admitted requests without a response head.
    pub pending: u32,
}

/// Takes one unit of `counter` unless that would exceed `max` (`None`: unlimited, but counted).
fn take(counter: &AtomicU32, max: Option<u32>) -> bool {
    let previous = counter.fetch_add(1, Ordering::AcqRel);
    if max.is_some_and(|max| previous >= max) {
        counter.fetch_sub(1, Ordering::AcqRel);
        return false;
    }
    true
}

/// One admitted request. Dropping it ends the request's parallel (and pending) count; report
/// the outcome with [`Admission::record`] first, or the request counts as neither success nor
/// error (a cancelled request says nothing about the backend; a half-open probe slot is given
/// back).
#[derive(Debug)]
pub struct Admission {
    breaker: Arc<Breaker>,
    policy: Arc<BackendPolicy>,
    /// `None` once the outcome was recorded.
    pass: Option<Pass>,
    is_pending: bool,
}

impl Admission {
    /// The backend's settings the request was admitted with: the rest of the attempt (the
    /// pick, the outlier verdict) uses the same ones, without loading them again.
    pub fn policy(&self) -> &BackendPolicy {
        &self.policy
    }

    /// The response head arrived (or the attempt failed): the request is no longer pending.
    /// Idempotent.
    pub fn head_received(&mut self) {
        if std::mem::take(&mut self.is_pending) {
            self.breaker.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Reports the attempt's outcome to the error-rate breaker (under the settings it was
    /// admitted with) and ends the request. An error is a 5xx response or a gateway error
    /// (connect failure, reset, timeout). Returns the breaker's state afterwards.
    pub fn record(mut self, is_error: bool) -> BreakerState {
        if let Some(pass) = self.pass.take() {
            self.breaker
                .error_rate
                .record(self.policy.error_rate.as_ref(), pass, is_error);
        }
        self.breaker.state()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.head_received();
        self.breaker.parallel.fetch_sub(1, Ordering::AcqRel);
        if let Some(pass) = self.pass.take() {
            self.breaker.error_rate.abandon(pass);
        }
    }
}

#[cfg(test)]
mod tests;
