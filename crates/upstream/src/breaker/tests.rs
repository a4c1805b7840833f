use std::sync::Arc;
use std::time::Duration;

use super::{Breaker, BreakerState, Rejection};
use snapshot::backend::policy::{BackendPolicy, ConcurrencyLimits, ErrorRateSettings};

fn breaker_policy() -> Arc<BackendPolicy> {
    Arc::new(BackendPolicy {
        error_rate: Some(ErrorRateSettings {
            threshold: 0.5,
            min_requests: 4,
            window: Duration::from_secs(10),
            open_for: Duration::from_secs(5),
            half_open_requests: 2,
        }),
        ..BackendPolicy::default()
    })
}

fn run(breaker: &Arc<Breaker>, policy: &Arc<BackendPolicy>, is_error: bool) -> BreakerState {
    breaker
        .admit(Arc::clone(policy))
        .expect("the breaker admits")
        .record(is_error)
}

#[test]
fn parallel_limit_rejects_and_frees_on_drop() {
    let breaker = Arc::new(Breaker::new());
    let policy = Arc::new(BackendPolicy {
        limits: ConcurrencyLimits {
            max_parallel_requests: Some(2),
            ..ConcurrencyLimits::default()
        },
        ..BackendPolicy::default()
    });
    let first = breaker.admit(Arc::clone(&policy)).expect("first fits");
    let _second = breaker.admit(Arc::clone(&policy)).expect("second fits");
    let third = breaker.admit(Arc::clone(&policy));
    assert_eq!(third.err(), Some(Rejection::Parallel));
    drop(first);
    assert!(breaker.admit(Arc::clone(&policy)).is_ok());
    assert_eq!(breaker.parallel(), 1);
}

#[test]
fn pending_limit_counts_until_head() {
    let breaker = Arc::new(Breaker::new());
    let policy = Arc::new(BackendPolicy {
        limits: ConcurrencyLimits {
            max_pending_requests: Some(1),
            ..ConcurrencyLimits::default()
        },
        ..BackendPolicy::default()
    });
    let mut first = breaker.admit(Arc::clone(&policy)).expect("first fits");
    assert_eq!(
        breaker.admit(Arc::clone(&policy)).err(),
        Some(Rejection::Pending)
    );
    first.head_received();
    first.head_received(); // idempotent
    assert_eq!(breaker.pending(), 0);
    let _second = breaker
        .admit(Arc::clone(&policy))
        .expect("fits after the head");
    assert_eq!(breaker.parallel(), 2);
}

#[tokio::test(start_paused = true)]
async fn opens_at_threshold_after_min_requests() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    // Three errors alone are under min_requests.
    for _ in 0..3 {
        assert_eq!(run(&breaker, &policy, true), BreakerState::Closed);
    }
    assert_eq!(run(&breaker, &policy, true), BreakerState::Open);
    assert_eq!(
        breaker.admit(Arc::clone(&policy)).err(),
        Some(Rejection::BreakerOpen)
    );
}

#[tokio::test(start_paused = true)]
async fn stays_closed_under_threshold() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..10 {
        assert_eq!(run(&breaker, &policy, false), BreakerState::Closed);
        assert_eq!(run(&breaker, &policy, false), BreakerState::Closed);
        assert_eq!(run(&breaker, &policy, true), BreakerState::Closed);
    }
}

#[tokio::test(start_paused = true)]
async fn old_errors_slide_out_of_the_window() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..3 {
        run(&breaker, &policy, true);
    }
    tokio::time::advance(Duration::from_secs(11)).await;
    // The three old errors left the window: one new error of one request is under min.
    assert_eq!(run(&breaker, &policy, true), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn half_opens_after_open_for_and_closes_when_probes_pass() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..4 {
        run(&breaker, &policy, true);
    }
    tokio::time::advance(Duration::from_millis(4900)).await;
    assert!(breaker.admit(Arc::clone(&policy)).is_err());
    tokio::time::advance(Duration::from_millis(100)).await;
    let first = breaker.admit(Arc::clone(&policy)).expect("probe one");
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let second = breaker.admit(Arc::clone(&policy)).expect("probe two");
    assert_eq!(
        breaker.admit(Arc::clone(&policy)).err(),
        Some(Rejection::BreakerOpen)
    );
    assert_eq!(first.record(false), BreakerState::HalfOpen);
    assert_eq!(second.record(false), BreakerState::Closed);
    // The window was reset: one error does not reopen it.
    assert_eq!(run(&breaker, &policy, true), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn failed_probe_reopens() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..4 {
        run(&breaker, &policy, true);
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    let probe = breaker.admit(Arc::clone(&policy)).expect("probe");
    assert_eq!(probe.record(true), BreakerState::Open);
    assert!(breaker.admit(Arc::clone(&policy)).is_err());
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(breaker.admit(Arc::clone(&policy)).is_ok());
}

#[tokio::test(start_paused = true)]
async fn dropped_probe_gives_its_slot_back() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..4 {
        run(&breaker, &policy, true);
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    let first = breaker.admit(Arc::clone(&policy)).expect("probe one");
    let second = breaker.admit(Arc::clone(&policy)).expect("probe two");
    drop(second); // cancelled: neither success nor error
    assert_eq!(first.record(false), BreakerState::HalfOpen);
    let third = breaker.admit(Arc::clone(&policy)).expect("the freed slot");
    assert_eq!(third.record(false), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropped_admission_counts_as_neither() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..10 {
        drop(breaker.admit(Arc::clone(&policy)).expect("closed"));
    }
    for _ in 0..3 {
        run(&breaker, &policy, true);
    }
    // Only three requests were judged: still under min_requests.
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn removing_the_settings_closes_the_breaker() {
    let breaker = Arc::new(Breaker::new());
    let policy = breaker_policy();
    for _ in 0..4 {
        run(&breaker, &policy, true);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let plain = Arc::new(BackendPolicy::default());
    assert!(breaker.admit(plain).is_ok());
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[test]
fn the_window_is_allocated_only_once_an_error_rate_setting_counts_an_outcome() {
    let breaker = Arc::new(Breaker::new());
    // Without settings (nearly every backend) outcomes are not counted: no window.
    let plain = Arc::new(BackendPolicy::default());
    for is_error in [false, true, true] {
        assert_eq!(run(&breaker, &plain, is_error), BreakerState::Closed);
    }
    assert!(!breaker.error_rate.has_window());
    // Under settings it counts from the first outcome, and a policy change keeps the counts.
    let policy = breaker_policy();
    assert_eq!(run(&breaker, &policy, true), BreakerState::Closed);
    assert!(breaker.error_rate.has_window());
    assert_eq!(run(&breaker, &policy, true), BreakerState::Closed);
    assert_eq!(run(&breaker, &plain, false), BreakerState::Closed);
    assert_eq!(run(&breaker, &policy, false), BreakerState::Closed);
    // The fourth outcome under settings reaches min_requests with 2 of 4 errors: open.
    assert_eq!(run(&breaker, &policy, true), BreakerState::Open);
}
