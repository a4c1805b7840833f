use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::*;

fn session(access_token: &str) -> Session {
    Session {
        access_token: access_token.to_owned(),
        refresh_token: Some("r2".to_owned()),
        id_token: None,
        claims: serde_json::Map::new(),
        expires_at: 0,
    }
}

#[tokio::test]
async fn concurrent_requests_of_one_session_share_one_refresh() {
    let renewals = Arc::new(Renewals::default());
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let renewals = Arc::clone(&renewals);
        let calls = Arc::clone(&calls);
        tasks.push(tokio::spawn(async move {
            renewals
                .renew("r1", async {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Some(session(&format!("at-{call}")))
                })
                .await
        }));
    }
    for task in tasks {
        let renewed = task.await.expect("the task does not panic");
        assert_eq!(renewed.map(|s| s.access_token).as_deref(), Some("at-0"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // Another session refreshes on its own.
    let other = renewals
        .renew("other", async { Some(session("at-other")) })
        .await;
    assert_eq!(other.map(|s| s.access_token).as_deref(), Some("at-other"));
}

#[tokio::test]
async fn a_failed_refresh_is_not_shared() {
    let renewals = Renewals::default();
    assert_eq!(renewals.renew("r1", async { None }).await, None);
    let second = renewals.renew("r1", async { Some(session("at")) }).await;
    assert_eq!(second.map(|s| s.access_token).as_deref(), Some("at"));
}
