//! The suite's `AwaitConvergence`: repeat an attempt until it passes several times in a row, within a deadline.
//!
//! A failed attempt is followed by a one-second pause, a passed one by none, exactly as in the suite. The
//! deadline is checked between attempts, so an attempt in flight is never cut short.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// Passes in a row needed (`RequiredConsecutiveSuccesses`).
pub(crate) const CONSECUTIVE_PASSES: usize = 3;

/// How long one case may take to converge. The suite allows 30 s (`MaxTimeToConsistency`); 10 s keeps a run
/// short, and the gateway is already serving its whole config when `/ready` answers.
pub(crate) const CASE_DEADLINE: Duration = Duration::from_secs(10);

/// The pause after a failed attempt.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Runs `attempt` until it passes `threshold` times in a row; on timeout, the error carries the last failure.
pub(crate) async fn await_convergence<F, Fut>(
    deadline: Duration,
    threshold: usize,
    mut attempt: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let start = Instant::now();
    let give_up = start + deadline;
    let mut passes = 0;
    let mut attempts = 0;
    let mut last_failure = String::new();
    loop {
        if Instant::now() >= give_up {
            return Err(timed_out(
                deadline,
                attempts,
                passes,
                threshold,
                &last_failure,
            ));
        }
        attempts += 1;
        match attempt().await {
            Ok(()) => {
                passes += 1;
                if passes >= threshold {
                    return Ok(());
                }
            }
            Err(failure) => {
                passes = 0;
                last_failure = failure;
                if Instant::now() + RETRY_DELAY >= give_up {
                    tokio::time::sleep_until(give_up).await;
                } else {
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }
}

/// The error of a case that did not converge.
fn timed_out(
    deadline: Duration,
    attempts: usize,
    passes: usize,
    threshold: usize,
    last_failure: &str,
) -> String {
    if last_failure.is_empty() {
        format!(
            "only {passes}/{threshold} consecutive passes within {deadline:?} ({attempts} attempts)"
        )
    } else {
        format!(
            "{last_failure} (no {threshold} consecutive passes within {deadline:?}, {attempts} attempts)"
        )
    }
}
