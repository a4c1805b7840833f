//! Mirror checks: whether the mirror backends' echo logs show the mirrored request (`ExpectMirroredRequest`),
//! and, for percentage mirrors, whether the right share of requests was mirrored.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::cases::MirrorSpec;
use crate::exchange::REQUEST_TIMEOUT;
use crate::workload::Workloads;

/// How often the logs are read.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Requests per percentage sample, and in flight at once (the suite's constants).
const SAMPLE_REQUESTS: usize = 500;
/// Requests in flight at once during a percentage sample.
const SAMPLE_CONCURRENCY: usize = 10;
/// Samples taken before a percentage check fails.
const SAMPLES: usize = 5;
/// Allowed relative deviation of the mirrored count, in percent.
const TOLERANCE_PERCENT: f64 = 5.0;

/// Waits up to the request timeout until every mirror backend has logged `request_uri`.
pub(crate) async fn expect_mirrored(
    workloads: &Workloads,
    mirrors: &[&MirrorSpec],
    request_uri: &str,
) -> Result<(), String> {
    let give_up = Instant::now() + REQUEST_TIMEOUT;
    loop {
        let missing: Vec<String> = mirrors
            .iter()
            .filter(|mirror| !workloads.has_logged(&mirror.namespace, &mirror.name, request_uri))
            .map(|mirror| format!("{}/{}", mirror.namespace, mirror.name))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        if Instant::now() >= give_up {
            return Err(format!(
                "expected the request {request_uri} to be mirrored to {missing:?}, but their echo logs do not show \
                 it after {REQUEST_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The suite's percentage-mirror check: send [`SAMPLE_REQUESTS`] requests (each must pass on its own, through
/// `send_one`), then count how many reached each mirror; up to [`SAMPLES`] samples.
pub(crate) async fn expect_mirrored_share<F, Fut>(
    workloads: &Workloads,
    mirrors: &[&MirrorSpec],
    request_uri: &str,
    send_one: F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut last_failure = String::new();
    for sample in 1..=SAMPLES {
        let before: Vec<usize> = mirrors
            .iter()
            .map(|mirror| workloads.count_logged(&mirror.namespace, &mirror.name, request_uri))
            .collect();
        send_batch(&send_one).await?;
        // Mirrors are fire-and-forget: give the last copies a moment to land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut errors = Vec::new();
        for (mirror, before) in mirrors.iter().zip(before) {
            let count =
                workloads.count_logged(&mirror.namespace, &mirror.name, request_uri) - before;
            let expected =
                SAMPLE_REQUESTS as f64 * f64::from(mirror.percent.unwrap_or(100)) / 100.0;
            let (low, high) = (
                expected * (1.0 - TOLERANCE_PERCENT / 100.0),
                expected * (1.0 + TOLERANCE_PERCENT / 100.0),
            );
            let count = count as f64;
            if count < low || count > high {
                errors.push(format!(
                    "{}/{} got {count} mirrored copies of {SAMPLE_REQUESTS} requests, want between {low} and {high}",
                    mirror.namespace, mirror.name
                ));
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        last_failure = format!("sample {sample}/{SAMPLES}: {}", errors.join("; "));
    }
    Err(format!(
        "percentage mirror distribution not met: {last_failure}"
    ))
}

/// Sends [`SAMPLE_REQUESTS`] requests, [`SAMPLE_CONCURRENCY`] at a time; stops at the first failure.
async fn send_batch<F, Fut>(send_one: &F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let worker = || async {
        while !stop.load(Ordering::SeqCst) && next.fetch_add(1, Ordering::SeqCst) < SAMPLE_REQUESTS
        {
            if let Err(error) = send_one().await {
                stop.store(true, Ordering::SeqCst);
                failure
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .get_or_insert(error);
            }
        }
    };
    join_all((0..SAMPLE_CONCURRENCY).map(|_| worker())).await;
    match failure
        .into_inner()
        .unwrap_or_else(|poison| poison.into_inner())
    {
        Some(error) => Err(format!("a mirrored request failed: {error}")),
        None => Ok(()),
    }
}
