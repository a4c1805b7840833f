use std::net::SocketAddr;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use snapshot::backend::policy::HashKey;

fn endpoints(weights: &[u32]) -> Vec<Arc<EndpointRuntime>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let addr: SocketAddr = format!("127.0.0.1:{}", 1000 + i).parse().expect("addr");
            Arc::new(EndpointRuntime::new(addr, *w))
        })
        .collect()
}

fn set(weights: &[u32]) -> EndpointSet {
    EndpointSet::new(endpoints(weights))
}

fn policy(balancer: Balancer) -> BackendPolicy {
    BackendPolicy {
        balancer,
        ..BackendPolicy::default()
    }
}

fn context(headers: &http::HeaderMap) -> PickContext<'_> {
    PickContext {
        headers,
        client: IpAddr::from([192, 0, 2, 1]),
        now: Instant::now(),
    }
}

/// Picks `n` times with a fixed seed and counts picks per endpoint (by port offset).
fn counts(set: &EndpointSet, policy: &BackendPolicy, n: usize) -> Vec<usize> {
    let cursor = AtomicUsize::new(0);
    let headers = http::HeaderMap::new();
    let mut rng = StdRng::seed_from_u64(7);
    let mut counts = vec![0; set.endpoints().len()];
    for _ in 0..n {
        let endpoint = pick_with(
            set,
            policy,
            &cursor,
            &context(&headers),
            Instant::now(),
            &mut rng,
        )
        .expect("pick");
        counts[usize::from(endpoint.addr().port() - 1000)] += 1;
    }
    counts
}

/// Fails one active probe with a threshold of 1: the endpoint is unhealthy.
fn mark_unavailable(endpoint: &EndpointRuntime) {
    let health = snapshot::backend::policy::ActiveHealth {
        probe: snapshot::backend::policy::Probe::Tcp,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        unhealthy_threshold: 1,
        healthy_threshold: 1,
    };
    endpoint.health().record_probe(false, &health);
    assert!(!endpoint.is_available());
}

fn all_balancers() -> Vec<Balancer> {
    vec![
        Balancer::PeakEwma,
        Balancer::RoundRobin,
        Balancer::Random,
        Balancer::LeastRequest,
        Balancer::ConsistentHash(HashKey::SourceIp),
    ]
}

#[test]
fn equal_weights_rotate() {
    let endpoints = set(&[1, 1, 1]);
    let cursor = AtomicUsize::new(0);
    let headers = http::HeaderMap::new();
    let policy = policy(Balancer::RoundRobin);
    let ports: Vec<u16> = (0..6)
        .map(|_| {
            pick(&endpoints, &policy, &cursor, &context(&headers))
                .expect("pick")
                .addr()
                .port()
        })
        .collect();
    assert_eq!(ports, vec![1000, 1001, 1002, 1000, 1001, 1002]);
}

#[test]
fn round_robin_interleaves_weights() {
    let endpoints = endpoints(&[5, 1, 1]);
    let schedule = round_robin::schedule(&endpoints);
    assert_eq!(&*schedule, &[0, 0, 0, 1, 2, 0, 0]);
}

#[test]
fn round_robin_respects_weights() {
    let counts = counts(&set(&[3, 1, 0]), &policy(Balancer::RoundRobin), 4000);
    assert_eq!(counts, vec![3000, 1000, 0]);
}

#[test]
fn random_respects_weights() {
    let counts = counts(&set(&[3, 0, 1]), &policy(Balancer::Random), 4000);
    assert_eq!(counts[1], 0);
    assert!((2800..3200).contains(&counts[0]), "{counts:?}");
}

/// Picks `n` times, one pick per tick, holding each request in flight for `hold` ticks and
/// observing 1 ms for every response; counts picks per endpoint.
fn simulate(
    set: &EndpointSet,
    policy: &BackendPolicy,
    now: Instant,
    n: u64,
    hold: u64,
) -> Vec<usize> {
    let cursor = AtomicUsize::new(0);
    let mut rng = StdRng::seed_from_u64(5);
    let mut in_flight: Vec<(u64, crate::endpoint::InFlight)> = Vec::new();
    let mut counts = vec![0; set.endpoints().len()];
    for tick in 0..n {
        in_flight.retain(|(done, _)| *done > tick);
        let mut headers = http::HeaderMap::new();
        headers.insert("x-user", tick.to_string().parse().expect("value"));
        let context = PickContext {
            headers: &headers,
            client: IpAddr::from([10, 0, (tick / 256 % 256) as u8, (tick % 256) as u8]),
            now,
        };
        let endpoint = pick_with(set, policy, &cursor, &context, now, &mut rng).expect("pick");
        counts[usize::from(endpoint.addr().port() - 1000)] += 1;
        endpoint.observe_latency(Duration::from_millis(1));
        in_flight.push((tick + hold, endpoint.start_request()));
    }
    counts
}

#[test]
fn two_choices_spread_load_by_weight() {
    for balancer in [Balancer::LeastRequest, Balancer::PeakEwma] {
        let counts = simulate(
            &set(&[3, 1, 0]),
            &policy(balancer),
            Instant::now(),
            10_000,
            20,
        );
        assert_eq!(counts[2], 0, "{counts:?}");
        assert!((7000..8500).contains(&counts[0]), "{counts:?}");
    }
}

#[test]
fn zero_weight_is_never_picked() {
    for balancer in all_balancers() {
        let counts = counts(&set(&[3, 0, 1]), &policy(balancer.clone()), 2000);
        assert_eq!(counts[1], 0, "{balancer:?}: {counts:?}");
    }
}

#[test]
fn empty_or_all_zero_picks_nothing() {
    let cursor = AtomicUsize::new(0);
    let headers = http::HeaderMap::new();
    for balancer in all_balancers() {
        let policy = policy(balancer);
        assert!(pick(&set(&[]), &policy, &cursor, &context(&headers)).is_none());
        assert!(pick(&set(&[0, 0]), &policy, &cursor, &context(&headers)).is_none());
    }
}

#[test]
fn peak_ewma_avoids_a_slow_endpoint() {
    let set = set(&[1, 1, 1]);
    // Warm the estimates: endpoint 2 is 10x slower than its peers.
    for _ in 0..20 {
        set.endpoints()[0].observe_latency(Duration::from_millis(1));
        set.endpoints()[1].observe_latency(Duration::from_millis(1));
        set.endpoints()[2].observe_latency(Duration::from_millis(10));
    }
    let counts = counts(&set, &policy(Balancer::PeakEwma), 10_000);
    assert!(counts[2] < 1000, "{counts:?}");
    let round_robin = counts_of(&set, Balancer::RoundRobin);
    assert!((3300..3400).contains(&round_robin[2]), "{round_robin:?}");
}

fn counts_of(set: &EndpointSet, balancer: Balancer) -> Vec<usize> {
    counts(set, &policy(balancer), 10_000)
}

#[test]
fn peak_ewma_with_load_sends_slow_endpoint_under_ten_percent() {
    // Requests stay in flight for their latency: the fast endpoints carry more load, and still
    // the slow one gets under 10%.
    let set = set(&[1, 1, 1]);
    let policy = policy(Balancer::PeakEwma);
    let cursor = AtomicUsize::new(0);
    let headers = http::HeaderMap::new();
    let mut rng = StdRng::seed_from_u64(3);
    let latency = [1u64, 1, 10];
    let mut in_flight: Vec<(u64, crate::endpoint::InFlight)> = Vec::new();
    let mut counts = [0usize; 3];
    // One request per 0.1 ms of simulated time.
    for tick in 0..10_000u64 {
        in_flight.retain(|(done, _)| *done > tick);
        let endpoint = pick_with(
            &set,
            &policy,
            &cursor,
            &context(&headers),
            Instant::now(),
            &mut rng,
        )
        .expect("pick");
        let index = usize::from(endpoint.addr().port() - 1000);
        counts[index] += 1;
        endpoint.observe_latency(Duration::from_millis(latency[index]));
        in_flight.push((tick + latency[index] * 10, endpoint.start_request()));
    }
    assert!(counts[2] < 1000, "{counts:?}");
}

#[test]
fn least_request_prefers_idle_endpoints() {
    let set = set(&[1, 1, 1]);
    let _busy: Vec<_> = (0..5).map(|_| set.endpoints()[0].start_request()).collect();
    let counts = counts_of(&set, Balancer::LeastRequest);
    // Endpoint 0 is only picked when drawn twice, which two distinct draws never do.
    assert_eq!(counts[0], 0, "{counts:?}");
}

#[test]
fn latency_estimate_peaks_then_decays_toward_observations() {
    let endpoint = &endpoints(&[1])[0];
    endpoint.observe_latency(Duration::from_millis(50));
    assert!(endpoint.latency_estimate() >= Duration::from_millis(49));
    // A faster answer right after barely moves the peak (decay over microseconds).
    endpoint.observe_latency(Duration::from_millis(1));
    assert!(endpoint.latency_estimate() > Duration::from_millis(40));
}

fn hash_policy() -> BackendPolicy {
    policy(Balancer::ConsistentHash(HashKey::Header(
        http::HeaderName::from_static("x-user"),
    )))
}

/// The endpoint (port) each of `keys` users maps to.
fn owners(set: &EndpointSet, policy: &BackendPolicy, keys: usize) -> Vec<u16> {
    let cursor = AtomicUsize::new(0);
    let mut rng = StdRng::seed_from_u64(1);
    (0..keys)
        .map(|user| {
            let mut headers = http::HeaderMap::new();
            headers.insert("x-user", user.to_string().parse().expect("value"));
            pick_with(
                set,
                policy,
                &cursor,
                &context(&headers),
                Instant::now(),
                &mut rng,
            )
            .expect("pick")
            .addr()
            .port()
        })
        .collect()
}

#[test]
fn consistent_hash_is_stable_and_spread() {
    let set = set(&[1, 1, 1, 1]);
    let first = owners(&set, &hash_policy(), 4000);
    assert_eq!(first, owners(&set, &hash_policy(), 4000));
    for port in 1000..1004 {
        let share = first.iter().filter(|p| **p == port).count();
        assert!((600..1400).contains(&share), "{port}: {share}");
    }
}

#[test]
fn consistent_hash_removal_moves_only_the_removed_share() {
    let all = endpoints(&[1; 10]);
    let before = owners(&EndpointSet::new(all.clone()), &hash_policy(), 10_000);
    let mut fewer = all.clone();
    let removed = fewer.remove(4).addr().port();
    let after = owners(&EndpointSet::new(fewer), &hash_policy(), 10_000);
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    // Only the removed endpoint's keys move (about 1/10).
    assert!(
        before
            .iter()
            .zip(&after)
            .all(|(b, a)| b == a || *b == removed)
    );
    assert!((500..1500).contains(&moved), "{moved}");
}

#[test]
fn consistent_hash_keys_by_cookie_and_falls_back_to_client_ip() {
    let set = set(&[1, 1, 1, 1]);
    let policy = policy(Balancer::ConsistentHash(HashKey::Cookie {
        name: "session".to_owned(),
        ttl: None,
    }));
    let cursor = AtomicUsize::new(0);
    let mut rng = StdRng::seed_from_u64(1);
    let mut owner = |headers: &http::HeaderMap, client: [u8; 4]| {
        let context = PickContext {
            headers,
            client: IpAddr::from(client),
            now: Instant::now(),
        };
        pick_with(&set, &policy, &cursor, &context, Instant::now(), &mut rng)
            .expect("pick")
            .addr()
    };
    let mut with_cookie = http::HeaderMap::new();
    with_cookie.insert(
        http::header::COOKIE,
        "a=1; session=abc".parse().expect("value"),
    );
    let from_one = owner(&with_cookie, [192, 0, 2, 1]);
    assert_eq!(from_one, owner(&with_cookie, [192, 0, 2, 99]));
    let without = http::HeaderMap::new();
    let by_ip = owner(&without, [192, 0, 2, 7]);
    assert_eq!(by_ip, owner(&without, [192, 0, 2, 7]));
}

#[test]
fn consistent_hash_passes_over_unavailable_endpoints() {
    let set = set(&[1, 1, 1]);
    let hash = hash_policy();
    let before = owners(&set, &hash, 3000);
    let down = set.endpoints()[1].addr().port();
    mark_unavailable(&set.endpoints()[1]);
    let after = owners(&set, &hash, 3000);
    assert!(!after.contains(&down));
    assert!(before.iter().zip(&after).all(|(b, a)| b == a || *b == down));
}

#[test]
fn slow_start_ramps_a_new_endpoint() {
    let window = Duration::from_secs(10);
    let endpoints = endpoints(&[1, 1]);
    let created = endpoints[1].created();
    let weigher = |age: Duration| Weigher::new(&endpoints, Some(window), created + age);
    assert_eq!(weigher(Duration::ZERO).ramp(&endpoints[1]), 100);
    assert_eq!(weigher(Duration::from_secs(5)).ramp(&endpoints[1]), 500);
    assert_eq!(weigher(Duration::from_secs(10)).ramp(&endpoints[1]), 1000);
    assert_eq!(weigher(Duration::from_secs(60)).weight(&endpoints[1]), 1000);
}

#[test]
fn slow_start_applies_to_every_balancer() {
    let window = Duration::from_millis(10);
    let mut all = endpoints(&[1]);
    // A second endpoint that appears after the first is past the window, judged at 25% ramp.
    std::thread::sleep(Duration::from_millis(20));
    all.extend(endpoints(&[1, 1]).into_iter().skip(1));
    let set = EndpointSet::new(all);
    let now = set.endpoints()[1].created() + Duration::from_micros(2500);
    for balancer in all_balancers() {
        let policy = BackendPolicy {
            slow_start: Some(window),
            ..policy(balancer.clone())
        };
        let young = simulate(&set, &policy, now, 10_000, 20)[1];
        // Ramp 25%: a share of about 0.25 / 1.25 = 20% instead of 50% (consistent hashing
        // keeps 25% of the young endpoint's own keys: 12.5%).
        assert!((1000..2800).contains(&young), "{balancer:?}: {young}");
    }
}

#[test]
fn all_unavailable_falls_back_to_all() {
    let set = set(&[1, 1]);
    for endpoint in set.endpoints() {
        mark_unavailable(endpoint);
    }
    for balancer in all_balancers() {
        // Every pick still finds an endpoint (`counts` fails otherwise).
        let counts = counts(&set, &policy(balancer.clone()), 1000);
        assert_eq!(counts.iter().sum::<usize>(), 1000, "{balancer:?}");
    }
}

#[test]
fn unavailable_endpoints_are_skipped() {
    let set = set(&[1, 1, 1]);
    mark_unavailable(&set.endpoints()[0]);
    for balancer in all_balancers() {
        let counts = counts(&set, &policy(balancer.clone()), 1000);
        assert_eq!(counts[0], 0, "{balancer:?}: {counts:?}");
    }
}
