use std::time::Duration;

use http::{Method, StatusCode};
use snapshot::{Backoff, RetryTriggers};

use super::{allows_retry, pause};
use crate::error::ProxyError;

fn http_route_triggers() -> RetryTriggers {
    RetryTriggers {
        connect_failure: true,
        reset: true,
        timeout: true,
        status_codes: vec![500],
        ..RetryTriggers::default()
    }
}

#[test]
fn idempotent_requests_retry_on_every_trigger() {
    let triggers = http_route_triggers();
    let get = Method::GET;
    assert!(allows_retry(
        &triggers,
        &get,
        Err(&ProxyError::Connect("refused".into()))
    ));
    assert!(allows_retry(
        &triggers,
        &get,
        Err(&ProxyError::Reset("closed".into()))
    ));
    assert!(allows_retry(&triggers, &get, Err(&ProxyError::Timeout)));
    assert!(allows_retry(
        &triggers,
        &get,
        Ok(StatusCode::INTERNAL_SERVER_ERROR)
    ));
    assert!(!allows_retry(&triggers, &get, Ok(StatusCode::BAD_GATEWAY)));
    assert!(!allows_retry(&triggers, &get, Ok(StatusCode::OK)));
}

#[test]
fn non_idempotent_requests_retry_only_on_connect_failure() {
    let triggers = http_route_triggers();
    for method in [Method::POST, Method::PATCH] {
        assert!(allows_retry(
            &triggers,
            &method,
            Err(&ProxyError::Connect("refused".into()))
        ));
        assert!(allows_retry(
            &triggers,
            &method,
            Err(&ProxyError::NoEndpoints)
        ));
        assert!(!allows_retry(
            &triggers,
            &method,
            Err(&ProxyError::Reset("closed".into()))
        ));
        assert!(!allows_retry(&triggers, &method, Err(&ProxyError::Timeout)));
        assert!(!allows_retry(
            &triggers,
            &method,
            Ok(StatusCode::INTERNAL_SERVER_ERROR)
        ));
    }
}

#[test]
fn breaker_rejections_are_never_retried() {
    let triggers = RetryTriggers {
        server_error: true,
        gateway_error: true,
        ..http_route_triggers()
    };
    assert!(!allows_retry(
        &triggers,
        &Method::GET,
        Err(&ProxyError::CircuitOpen)
    ));
    assert!(!allows_retry(
        &triggers,
        &Method::GET,
        Err(&ProxyError::OverloadedParallel)
    ));
}

#[test]
fn status_classes_follow_their_triggers() {
    let gateway = RetryTriggers {
        gateway_error: true,
        ..RetryTriggers::default()
    };
    assert!(allows_retry(
        &gateway,
        &Method::GET,
        Ok(StatusCode::SERVICE_UNAVAILABLE)
    ));
    assert!(!allows_retry(
        &gateway,
        &Method::GET,
        Ok(StatusCode::INTERNAL_SERVER_ERROR)
    ));
    assert!(!allows_retry(
        &gateway,
        &Method::GET,
        Err(&ProxyError::Timeout)
    ));
    let server = RetryTriggers {
        server_error: true,
        ..RetryTriggers::default()
    };
    assert!(allows_retry(
        &server,
        &Method::GET,
        Ok(StatusCode::INTERNAL_SERVER_ERROR)
    ));
    assert!(!allows_retry(
        &server,
        &Method::GET,
        Ok(StatusCode::TOO_MANY_REQUESTS)
    ));
}

#[test]
fn fixed_backoff_always_pauses_base() {
    let backoff = Backoff::fixed(Duration::from_millis(100));
    let mut rng = rand::rng();
    for retry in 0..5 {
        assert_eq!(pause(&backoff, retry, &mut rng), Duration::from_millis(100));
    }
    assert_eq!(pause(&Backoff::default(), 3, &mut rng), Duration::ZERO);
}

#[test]
fn exponential_backoff_stays_between_base_and_cap() {
    let backoff = Backoff {
        base: Duration::from_millis(25),
        max: Duration::from_millis(250),
    };
    assert_eq!(backoff.cap(0), Duration::from_millis(25));
    assert_eq!(backoff.cap(2), Duration::from_millis(100));
    assert_eq!(backoff.cap(10), Duration::from_millis(250));
    assert_eq!(backoff.cap(u32::MAX), Duration::from_millis(250));
    let mut rng = rand::rng();
    for retry in 0..8 {
        let drawn = pause(&backoff, retry, &mut rng);
        assert!(
            drawn >= backoff.base && drawn <= backoff.cap(retry),
            "{drawn:?}"
        );
    }
}
