//! Weighted-distribution checks (`conformance/utils/weight` in the suite): send many requests, take the backend
//! name from each answering pod, and compare the shares with the expected weights.
//!
//! The suite also sleeps a random time of up to one second before some requests ("entropy"); that is left out
//! to keep a run short, the random `X-Jitter` header / metadata is kept.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::cases::Distribution;

/// How long all samples of one check may take together.
const CHECK_DEADLINE: Duration = Duration::from_secs(60);

/// The sampling parameters of one check, defaults applied.
pub(crate) struct Sampling {
    /// Requests per sample.
    requests: usize,
    /// Requests in flight at once.
    concurrency: usize,
    /// Allowed absolute deviation of a share.
    tolerance: f64,
    /// Samples taken at most.
    max_samples: usize,
    /// Backend name to expected share.
    weights: BTreeMap<String, f64>,
}

impl Sampling {
    /// The parameters of `distribution`, with the suite's defaults (500 requests, 10 at once, ±0.05).
    pub(crate) fn new(distribution: &Distribution) -> Self {
        Self {
            requests: distribution.requests.unwrap_or(500).max(1),
            concurrency: distribution.concurrency.unwrap_or(10).max(1),
            tolerance: distribution.tolerance.unwrap_or(0.05),
            max_samples: distribution.max_retries.unwrap_or(10).max(1),
            weights: distribution.weights.clone(),
        }
    }
}

/// Samples until the shares are within tolerance, at most `max_samples` times. `send` makes one request and
/// returns the answering pod's name, or why the request failed.
pub(crate) async fn check<F, Fut>(sampling: &Sampling, send: F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let give_up = Instant::now() + CHECK_DEADLINE;
    let mut last_failure = String::new();
    for sample in 1..=sampling.max_samples {
        match take_sample(sampling, &send).await {
            Ok(()) => return Ok(()),
            Err(failure) => {
                last_failure = format!("sample {sample}/{}: {failure}", sampling.max_samples)
            }
        }
        if Instant::now() >= give_up {
            break;
        }
    }
    Err(format!("weighted distribution not met: {last_failure}"))
}

/// One sample of `sampling.requests` requests.
async fn take_sample<F, Fut>(sampling: &Sampling, send: &F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let seen: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let worker = || async {
        while !stop.load(Ordering::SeqCst)
            && next.fetch_add(1, Ordering::SeqCst) < sampling.requests
        {
            let outcome = send().await.and_then(|pod| {
                let backend = backend_name(&pod);
                if sampling.weights.contains_key(&backend) {
                    Ok(backend)
                } else {
                    Err(format!(
                        "request was handled by an unexpected pod {pod:?} (backend {backend:?})"
                    ))
                }
            });
            match outcome {
                Ok(backend) => {
                    *seen
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .entry(backend)
                        .or_default() += 1;
                }
                Err(error) => {
                    stop.store(true, Ordering::SeqCst);
                    failure
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .get_or_insert(error);
                }
            }
        }
    };
    join_all((0..sampling.concurrency).map(|_| worker())).await;
    if let Some(error) = failure
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner())
    {
        return Err(format!("error while sending requests: {error}"));
    }
    let seen = seen
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner());
    evaluate(sampling, &seen)
}

/// Compares the counts with the weights, as the suite does: the number of backends that got traffic, then each
/// backend's share.
fn evaluate(sampling: &Sampling, seen: &BTreeMap<String, usize>) -> Result<(), String> {
    let mut errors = Vec::new();
    let active = sampling
        .weights
        .values()
        .filter(|weight| **weight > 0.0)
        .count();
    if seen.len() != active {
        errors.push(format!(
            "expected {active} backends to receive traffic, but got {} ({seen:?})",
            seen.len()
        ));
    }
    for (backend, want) in &sampling.weights {
        let count = seen.get(backend).copied().unwrap_or(0);
        if count == 0 && *want != 0.0 {
            errors.push(format!(
                "expected traffic to hit backend {backend:?}, but none was received"
            ));
            continue;
        }
        let got = count as f64 / sampling.requests as f64;
        if (got - want).abs() > sampling.tolerance {
            errors.push(format!(
                "backend {backend:?} got {got:.3} of the traffic, want {want} (+/-{})",
                sampling.tolerance
            ));
        }
    }
    errors.sort();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The backend (Deployment) name of a pod: the pod name without its last two `-` parts.
pub(crate) fn backend_name(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    if parts.len() < 3 {
        return pod.to_owned();
    }
    parts[..parts.len() - 2].join("-")
}

#[cfg(test)]
mod tests;
