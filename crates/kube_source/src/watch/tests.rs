use std::time::Duration;

use super::ReconnectBackoff;

#[test]
fn reconnect_delays_double_up_to_four_seconds_and_reset() {
    let mut backoff = ReconnectBackoff::default();
    let delays: Vec<Duration> = backoff.by_ref().take(8).collect();
    let ceilings = [200, 400, 800, 1600, 3200, 4000, 4000, 4000];
    for (delay, ceiling) in delays.iter().zip(ceilings) {
        let ceiling = Duration::from_millis(ceiling);
        assert!(
            *delay <= ceiling && *delay >= ceiling * 3 / 4,
            "{delay:?} for {ceiling:?}"
        );
    }
    backoff.reset();
    assert!(
        backoff
            .next()
            .is_some_and(|d| d <= Duration::from_millis(200))
    );
}
