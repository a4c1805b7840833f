//! Unit tests: GCRA arithmetic, selection and keys, the local store, headers, and whole local
//! decisions on tokio's paused clock. Redis is exercised in `crates/policy/tests/`.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{HeaderMap, HeaderName, Method, StatusCode};
use serde_json::json;
use snapshot::rate_limit::{
    GlobalLimits, Limit, PathSelector, Pattern, RateLimitPolicy, RateLimitRule, Selector,
    ValueMatch,
};
use telemetry::Metrics;

use super::gcra::{self, Rate};
use super::headers::{self, Quota};
use super::key::{self, HasherSink, RequestView};
use super::local::{BucketId, LocalBuckets, MAX_KEYS_PER_RULE, SHARDS, SWEEP_EVERY};
use super::{NANOS, RateLimiter};
use crate::{Identity, JwtIdentity};

const SECOND: u64 = NANOS;
const LABEL: &str = "RateLimitPolicy default/limits";

fn limit(requests: u64, period: Duration, burst: u64) -> Limit {
    Limit {
        requests,
        period,
        burst,
    }
}

fn rule(id: &str, limit: Limit, selectors: Vec<Selector>) -> RateLimitRule {
    RateLimitRule {
        id: Arc::from(format!("{LABEL} {id}")),
        selectors,
        limit,
        shadow: false,
    }
}

fn policy(local: Vec<RateLimitRule>, global: Option<GlobalLimits>) -> RateLimitPolicy {
    RateLimitPolicy {
        label: Arc::from(LABEL),
        local,
        global,
    }
}

fn request(method: Method, path: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("valid test request").into_parts().0
}

fn jwt(claims: serde_json::Value) -> Identity {
    let claims = match claims {
        serde_json::Value::Object(claims) => claims,
        _ => serde_json::Map::new(),
    };
    Identity {
        jwt: Some(JwtIdentity {
            provider: "main".into(),
            claims,
        }),
        client: None,
    }
}

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

/// Whether `rule` selects the request, and the key its distinct values make.
fn selects(rule: &RateLimitRule, parts: &Parts, identity: &Identity) -> Option<u64> {
    use std::hash::Hasher;
    let view = RequestView {
        parts,
        client_ip: CLIENT,
        identity,
    };
    let mut sink = HasherSink(std::hash::DefaultHasher::new());
    key::select(rule, view, &mut sink).then(|| sink.0.finish())
}

fn limiter() -> (RateLimiter, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let limiter = RateLimiter::new(None, Arc::clone(&metrics)).expect("no URL is valid");
    (limiter, metrics)
}

// --- GCRA arithmetic -------------------------------------------------------------------------

#[test]
fn a_full_bucket_admits_its_burst_at_once_then_one_per_interval() {
    let rate = Rate::new(&limit(10, Duration::from_secs(1), 10), NANOS);
    assert_eq!(rate.interval, SECOND / 10);
    let mut tat = None;
    for expected_remaining in (0..10).rev() {
        let (verdict, new_tat) = gcra::decide(tat, 0, rate);
        assert!(verdict.admitted);
        assert_eq!(verdict.remaining, expected_remaining);
        tat = new_tat;
    }
    let (refused, unchanged) = gcra::decide(tat, 0, rate);
    assert!(!refused.admitted);
    assert_eq!(unchanged, None, "a refused request is not counted");
    assert_eq!(refused.retry_after, SECOND / 10);
    assert_eq!(refused.reset, SECOND);
    // One interval later exactly one more fits.
    let (verdict, tat) = gcra::decide(tat, SECOND / 10, rate);
    assert!(verdict.admitted);
    assert_eq!(verdict.remaining, 0);
    assert!(!gcra::decide(tat, SECOND / 10, rate).0.admitted);
}

#[test]
fn a_small_burst_paces_requests() {
    // 60 per minute with a burst of 2: two at once, then one per second.
    let rate = Rate::new(&limit(60, Duration::from_secs(60), 2), NANOS);
    let (first, tat) = gcra::decide(None, 0, rate);
    let (second, tat) = gcra::decide(tat, 0, rate);
    let (third, _) = gcra::decide(tat, 0, rate);
    assert!(first.admitted && second.admitted && !third.admitted);
    assert_eq!(third.retry_after, SECOND);
    assert_eq!(first.remaining, 1);
}

#[test]
fn an_idle_bucket_is_a_fresh_bucket() {
    let rate = Rate::new(&limit(5, Duration::from_secs(1), 5), NANOS);
    let stale = gcra::decide(Some(3 * SECOND), 10 * SECOND, rate);
    let fresh = gcra::decide(None, 10 * SECOND, rate);
    assert_eq!(stale, fresh);
}

#[test]
fn zero_requests_refuse_everything_and_zero_burst_means_one() {
    let never = Rate::new(&limit(0, Duration::from_secs(1), 5), NANOS);
    let (verdict, _) = gcra::decide(None, 0, never);
    assert!(!verdict.admitted);
    assert_eq!(verdict.retry_after, SECOND);
    let paced = Rate::new(&limit(2, Duration::from_secs(1), 0), NANOS);
    assert_eq!(paced.capacity, paced.interval);
}

#[test]
fn a_refund_gives_back_one_interval_but_never_more_than_a_fresh_bucket() {
    let rate = Rate::new(&limit(10, Duration::from_secs(1), 10), NANOS);
    assert_eq!(gcra::refund(SECOND, 0, rate), SECOND - SECOND / 10);
    assert_eq!(gcra::refund(SECOND / 20, 0, rate), 0);
    assert_eq!(gcra::refund(5, 100, rate), 100);
}

#[test]
fn huge_limits_saturate_instead_of_overflowing() {
    let rate = Rate::new(
        &limit(1, Duration::from_secs(86_400 * 365 * 1000), u64::MAX),
        NANOS,
    );
    let (verdict, _) = gcra::decide(Some(u64::MAX - 1), u64::MAX - 2, rate);
    // The capacity saturates at u64::MAX: a bucket two units ahead still admits.
    assert_eq!(rate.capacity, u64::MAX);
    assert!(verdict.admitted);
    assert_eq!(gcra::duration_in(Duration::MAX, NANOS), u64::MAX);
}

// --- Selection and keys ----------------------------------------------------------------------

#[test]
fn a_rule_without_selectors_applies_to_every_request_in_one_bucket() {
    let all = rule("local[0]", limit(1, Duration::from_secs(1), 1), vec![]);
    let a = request(Method::GET, "/a", &[("x-api-key", "one")]);
    let b = request(Method::POST, "/b", &[]);
    let none = Identity::default();
    assert_eq!(selects(&all, &a, &none), selects(&all, &b, &none));
    assert!(selects(&all, &a, &none).is_some());
}

#[test]
fn distinct_header_values_make_distinct_buckets_and_a_missing_header_is_not_selected() {
    let per_key = rule(
        "local[0]",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::Header {
            name: HeaderName::from_static("x-api-key"),
            matching: ValueMatch::Distinct,
        }],
    );
    let none = Identity::default();
    let one = selects(
        &per_key,
        &request(Method::GET, "/", &[("x-api-key", "one")]),
        &none,
    );
    let two = selects(
        &per_key,
        &request(Method::GET, "/", &[("x-api-key", "two")]),
        &none,
    );
    let one_again = selects(
        &per_key,
        &request(Method::PUT, "/x", &[("x-api-key", "one")]),
        &none,
    );
    assert!(one.is_some() && two.is_some());
    assert_ne!(one, two);
    assert_eq!(one, one_again);
    assert_eq!(
        selects(&per_key, &request(Method::GET, "/", &[]), &none),
        None
    );
}

#[test]
fn distinct_values_are_length_prefixed() {
    let two = |name: &'static str| Selector::Header {
        name: HeaderName::from_static(name),
        matching: ValueMatch::Distinct,
    };
    let pair = rule(
        "local[0]",
        limit(1, Duration::from_secs(1), 1),
        vec![two("a"), two("b")],
    );
    let none = Identity::default();
    let left = selects(
        &pair,
        &request(Method::GET, "/", &[("a", "ab"), ("b", "c")]),
        &none,
    );
    let right = selects(
        &pair,
        &request(Method::GET, "/", &[("a", "a"), ("b", "bc")]),
        &none,
    );
    assert_ne!(left, right);
}

#[test]
fn header_exact_regex_and_absent_select() {
    let header = |matching| Selector::Header {
        name: HeaderName::from_static("x-tier"),
        matching,
    };
    let pattern = Pattern(regex::Regex::new("^(?:gold|silver)$").expect("valid regex"));
    let exact = rule(
        "e",
        limit(1, Duration::from_secs(1), 1),
        vec![header(ValueMatch::Exact("gold".into()))],
    );
    let regex = rule(
        "r",
        limit(1, Duration::from_secs(1), 1),
        vec![header(ValueMatch::RegularExpression(pattern))],
    );
    let absent = rule(
        "a",
        limit(1, Duration::from_secs(1), 1),
        vec![header(ValueMatch::Absent)],
    );
    let none = Identity::default();
    let gold = request(Method::GET, "/", &[("x-tier", "gold")]);
    let silver = request(Method::GET, "/", &[("x-tier", "silver")]);
    let bare = request(Method::GET, "/", &[]);
    assert!(selects(&exact, &gold, &none).is_some());
    assert!(selects(&exact, &silver, &none).is_none());
    assert!(selects(&regex, &silver, &none).is_some());
    assert!(
        selects(
            &regex,
            &request(Method::GET, "/", &[("x-tier", "golden")]),
            &none
        )
        .is_none()
    );
    assert!(selects(&regex, &bare, &none).is_none());
    assert!(selects(&absent, &bare, &none).is_some());
    assert!(selects(&absent, &gold, &none).is_none());
}

#[test]
fn source_cidr_selects_by_network_and_splits_per_address_when_distinct() {
    let network = "10.0.0.0/8".parse().expect("valid network");
    let outside = "192.168.0.0/16".parse().expect("valid network");
    let distinct = rule(
        "d",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::SourceCidr {
            network,
            distinct: true,
        }],
    );
    let foreign = rule(
        "f",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::SourceCidr {
            network: outside,
            distinct: false,
        }],
    );
    let parts = request(Method::GET, "/", &[]);
    let none = Identity::default();
    assert!(selects(&distinct, &parts, &none).is_some());
    assert!(selects(&foreign, &parts, &none).is_none());
    let bare = rule("b", limit(1, Duration::from_secs(1), 1), vec![]);
    assert_ne!(
        selects(&distinct, &parts, &none),
        selects(&bare, &parts, &none)
    );
}

#[test]
fn jwt_claims_select_and_a_request_without_a_jwt_is_never_selected() {
    let by_sub = rule(
        "s",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::JwtClaim {
            name: "sub".into(),
            matching: ValueMatch::Distinct,
        }],
    );
    let without_plan = rule(
        "p",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::JwtClaim {
            name: "org.plan".into(),
            matching: ValueMatch::Absent,
        }],
    );
    let parts = request(Method::GET, "/", &[]);
    let ana = jwt(json!({"sub": "ana", "org": {"plan": "pro"}}));
    let bob = jwt(json!({"sub": "bob"}));
    let numeric = jwt(json!({"sub": 42}));
    assert_ne!(
        selects(&by_sub, &parts, &ana),
        selects(&by_sub, &parts, &bob)
    );
    assert!(selects(&by_sub, &parts, &numeric).is_some());
    assert!(selects(&by_sub, &parts, &Identity::default()).is_none());
    assert!(selects(&without_plan, &parts, &ana).is_none());
    assert!(selects(&without_plan, &parts, &bob).is_some());
    assert!(selects(&without_plan, &parts, &Identity::default()).is_none());
}

#[test]
fn clients_paths_and_methods_select() {
    let by_client = rule(
        "c",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::Client {
            matching: ValueMatch::Exact("acme".into()),
        }],
    );
    let api = rule(
        "p",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::Path {
            matching: PathSelector::Prefix("/api/".into()),
        }],
    );
    let per_path = rule(
        "d",
        limit(1, Duration::from_secs(1), 1),
        vec![Selector::Path {
            matching: PathSelector::Distinct,
        }],
    );
    let login = rule(
        "l",
        limit(1, Duration::from_secs(1), 1),
        vec![
            Selector::Path {
                matching: PathSelector::Exact("/login".into()),
            },
            Selector::Methods(vec![Method::POST]),
        ],
    );
    let acme = Identity {
        jwt: None,
        client: Some("acme".into()),
    };
    let none = Identity::default();
    let get = |path| request(Method::GET, path, &[]);
    assert!(selects(&by_client, &get("/"), &acme).is_some());
    assert!(selects(&by_client, &get("/"), &none).is_none());
    assert!(selects(&api, &get("/api"), &none).is_some());
    assert!(selects(&api, &get("/api/v1"), &none).is_some());
    assert!(selects(&api, &get("/apix"), &none).is_none());
    assert_ne!(
        selects(&per_path, &get("/a"), &none),
        selects(&per_path, &get("/b"), &none)
    );
    assert!(selects(&login, &request(Method::POST, "/login", &[]), &none).is_some());
    assert!(selects(&login, &get("/login"), &none).is_none());
    assert!(selects(&login, &request(Method::POST, "/login/x", &[]), &none).is_none());
}

#[test]
fn path_prefixes_match_whole_segments() {
    assert!(key::path_has_prefix("/", "/"));
    assert!(key::path_has_prefix("/anything", "/"));
    assert!(key::path_has_prefix("/api", "/api"));
    assert!(key::path_has_prefix("/api/", "/api"));
    assert!(key::path_has_prefix("/api/x", "/api/"));
    assert!(!key::path_has_prefix("/apix", "/api"));
    assert!(!key::path_has_prefix("/ap", "/api"));
}

#[test]
fn redis_keys_are_deterministic_bounded_and_per_rule() {
    let digest = |values: &[&[u8]]| {
        let mut sink = key::DigestSink(sha1_smol::Sha1::new());
        for value in values {
            key::KeySink::feed(&mut sink, value);
        }
        sink.0
    };
    let long = vec![b'x'; 100_000];
    let a = super::global::bucket_key("rule one", &digest(&[b"client"]));
    let again = super::global::bucket_key("rule one", &digest(&[b"client"]));
    let other_rule = super::global::bucket_key("rule two", &digest(&[b"client"]));
    let huge = super::global::bucket_key("rule one", &digest(&[&long]));
    assert_eq!(a, again);
    assert_ne!(a, other_rule);
    assert!(a.starts_with("portcullis:rl:"));
    assert_eq!(a.len(), "portcullis:rl:".len() + 16 + 1 + 32);
    assert_eq!(huge.len(), a.len());
}

// --- The local store -------------------------------------------------------------------------

#[test]
fn a_flood_of_distinct_keys_is_capped_and_idle_keys_are_swept() {
    let store = LocalBuckets::new();
    let rule = store.rule_hash("flooded");
    let rate = Rate::new(&limit(1, Duration::from_secs(1), 1), NANOS);
    let mut overflow_refused = 0;
    for key in 0..(MAX_KEYS_PER_RULE as u64 * 2) {
        let key = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        if !store.acquire(BucketId { rule, key }, rate, 0).admitted {
            overflow_refused += 1;
        }
    }
    assert!(store.keys_of(rule) <= MAX_KEYS_PER_RULE);
    assert!(store.keys_of(rule) > MAX_KEYS_PER_RULE * 9 / 10);
    // The keys that found no room share one overflow bucket per shard, which the flood drains.
    assert!(overflow_refused >= MAX_KEYS_PER_RULE - 2 * SHARDS);
    // Once every bucket is full again (idle), the next access sweeps its shard's share.
    let later = SWEEP_EVERY + SECOND;
    for shard_key in 0..(SHARDS as u64 * 64) {
        let key = (shard_key << 58) | shard_key;
        store.acquire(BucketId { rule, key }, rate, later);
    }
    assert!(
        store.keys_of(rule) <= SHARDS * 64,
        "{}",
        store.keys_of(rule)
    );
}

#[test]
fn retain_forgets_rules_that_left_the_config() {
    let store = LocalBuckets::new();
    let rate = Rate::new(&limit(1, Duration::from_secs(1), 1), NANOS);
    let kept = store.rule_hash("kept");
    let gone = store.rule_hash("gone");
    store.acquire(BucketId { rule: kept, key: 1 }, rate, 0);
    store.acquire(BucketId { rule: gone, key: 2 }, rate, 0);
    store.retain(&HashSet::from([Arc::from("kept")]));
    assert_eq!(store.keys_of(kept), 1);
    assert_eq!(store.keys_of(gone), 0);
    // The kept rule kept its counter: its bucket is still empty.
    assert!(
        !store
            .acquire(BucketId { rule: kept, key: 1 }, rate, 0)
            .admitted
    );
}

// --- Headers ---------------------------------------------------------------------------------

fn quota(rule: &str) -> Quota {
    Quota {
        policy: Arc::from(LABEL),
        rule: Arc::from(rule),
        requests: 100,
        window: Duration::from_secs(60),
        remaining: 42,
        reset: Duration::from_millis(12_300),
    }
}

#[test]
fn quota_headers_follow_the_structured_field_draft() {
    let mut map = HeaderMap::new();
    quota(&format!("{LABEL} local[0]")).headers(&mut map);
    assert_eq!(
        map.get("ratelimit-policy").and_then(|v| v.to_str().ok()),
        Some("\"local[0]\";q=100;w=60")
    );
    assert_eq!(
        map.get("ratelimit").and_then(|v| v.to_str().ok()),
        Some("\"local[0]\";r=42;t=13")
    );
}

#[test]
fn policy_names_are_escaped_sf_strings() {
    assert_eq!(quota("other \"id\"").name(), "other \"id\"");
    assert_eq!(
        headers::structured_string("a\"b\\c\u{e9}"),
        "\"a\\\"b\\\\c?\""
    );
    assert_eq!(headers::whole_seconds(Duration::from_millis(1)), 1);
    assert_eq!(headers::whole_seconds(Duration::from_secs(2)), 2);
    assert_eq!(headers::whole_seconds(Duration::ZERO), 0);
}

// --- Whole decisions (paused clock) ----------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_local_limit_admits_its_burst_then_refuses_with_headers() {
    let (limiter, metrics) = limiter();
    let policy = policy(
        vec![rule(
            "local[0]",
            limit(10, Duration::from_secs(1), 10),
            vec![],
        )],
        None,
    );
    let parts = request(Method::GET, "/", &[]);
    let none = Identity::default();
    for remaining in (0..10).rev() {
        let quota = limiter
            .check(&policy, &parts, CLIENT, &none)
            .await
            .expect("admitted");
        assert_eq!(quota.map(|quota| quota.remaining), Some(remaining));
    }
    let denial = limiter
        .check(&policy, &parts, CLIENT, &none)
        .await
        .expect_err("refused");
    assert_eq!(denial.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(denial.reason, "rate-limited");
    let header = |name: &str| {
        denial
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        header("ratelimit-policy").as_deref(),
        Some("\"local[0]\";q=10;w=1")
    );
    assert_eq!(header("ratelimit").as_deref(), Some("\"local[0]\";r=0;t=1"));
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(limiter.check(&policy, &parts, CLIENT, &none).await.is_ok());
    assert!(limiter.check(&policy, &parts, CLIENT, &none).await.is_err());
    let text = metrics.encode();
    assert!(text.contains("result=\"limited\""), "{text}");
    assert!(text.contains("scope=\"local\""), "{text}");
}

#[tokio::test(start_paused = true)]
async fn shadow_rules_never_refuse_and_are_not_shown() {
    let (limiter, metrics) = limiter();
    let mut shadow = rule("local[0]", limit(1, Duration::from_secs(60), 1), vec![]);
    shadow.shadow = true;
    let policy = policy(vec![shadow], None);
    let parts = request(Method::GET, "/", &[]);
    for _ in 0..5 {
        let admitted = limiter
            .check(&policy, &parts, CLIENT, &Identity::default())
            .await;
        assert!(matches!(admitted, Ok(None)));
    }
    assert!(metrics.encode().contains("result=\"shadow_limited\""));
}

#[tokio::test(start_paused = true)]
async fn a_refused_request_costs_the_other_rules_nothing() {
    let (limiter, _) = limiter();
    let generous = rule("local[0]", limit(3, Duration::from_secs(60), 3), vec![]);
    let strict = rule(
        "local[1]",
        limit(1, Duration::from_secs(60), 1),
        vec![Selector::Header {
            name: HeaderName::from_static("x-strict"),
            matching: ValueMatch::Distinct,
        }],
    );
    let policy = policy(vec![generous, strict], None);
    let strict_request = request(Method::GET, "/", &[("x-strict", "yes")]);
    let plain = request(Method::GET, "/", &[]);
    let none = Identity::default();
    assert!(
        limiter
            .check(&policy, &strict_request, CLIENT, &none)
            .await
            .is_ok()
    );
    for _ in 0..5 {
        assert!(
            limiter
                .check(&policy, &strict_request, CLIENT, &none)
                .await
                .is_err()
        );
    }
    // `local[0]` counted only the one admitted request: two more fit.
    let quota = limiter
        .check(&policy, &plain, CLIENT, &none)
        .await
        .expect("admitted");
    assert_eq!(quota.map(|quota| quota.remaining), Some(1));
    assert!(limiter.check(&policy, &plain, CLIENT, &none).await.is_ok());
    assert!(limiter.check(&policy, &plain, CLIENT, &none).await.is_err());
}

#[tokio::test(start_paused = true)]
async fn the_tightest_rule_is_the_quota_shown() {
    let (limiter, _) = limiter();
    let wide = rule("local[0]", limit(100, Duration::from_secs(1), 100), vec![]);
    let narrow = rule(
        "local[1] narrow",
        limit(5, Duration::from_secs(1), 5),
        vec![],
    );
    let policy = policy(vec![wide, narrow], None);
    let quota = limiter
        .check(
            &policy,
            &request(Method::GET, "/", &[]),
            CLIENT,
            &Identity::default(),
        )
        .await
        .expect("admitted")
        .expect("two rules applied");
    assert_eq!(quota.name(), "local[1] narrow");
    assert_eq!(quota.remaining, 4);
}

#[tokio::test]
async fn global_rules_without_redis_apply_their_failure_mode() {
    let (limiter, metrics) = limiter();
    let global = |fail_open| GlobalLimits {
        rules: vec![rule(
            "global[0]",
            limit(1, Duration::from_secs(1), 1),
            vec![],
        )],
        fail_open,
        timeout: Duration::from_millis(50),
    };
    let parts = request(Method::GET, "/", &[]);
    let none = Identity::default();
    let open = policy(vec![], Some(global(true)));
    for _ in 0..3 {
        assert!(matches!(
            limiter.check(&open, &parts, CLIENT, &none).await,
            Ok(None)
        ));
    }
    let closed = policy(vec![], Some(global(false)));
    let denial = limiter
        .check(&closed, &parts, CLIENT, &none)
        .await
        .expect_err("fails closed");
    assert_eq!(denial.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(denial.reason, "rate-limit-unavailable");
    let text = metrics.encode();
    assert!(text.contains("reason=\"not_configured\""), "{text}");
    assert!(text.contains("result=\"failed_open\""), "{text}");
    assert!(text.contains("result=\"failed_closed\""), "{text}");
}

#[test]
fn a_bad_redis_url_is_an_error_without_its_password() {
    let error = RateLimiter::new(Some("http://user:secret@host"), Arc::new(Metrics::new()))
        .expect_err("not a Redis URL");
    let text = error.to_string();
    assert!(!text.contains("secret"), "{text}");
    assert!(RateLimiter::new(Some("redis://127.0.0.1:1"), Arc::new(Metrics::new())).is_ok());
}

// --- The Redis breaker -----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_on_connection_errors_and_repeated_timeouts_and_probes_alone() {
    use super::breaker::{Breaker, PAUSE, TIMEOUTS_TO_OPEN};
    use super::global::GlobalFailure;
    let timeout = Duration::from_millis(50);
    let breaker = Breaker::new();
    assert!(breaker.admit(timeout).is_ok());
    // One slow answer does not fail the traffic that follows.
    for _ in 1..TIMEOUTS_TO_OPEN {
        breaker.failed(GlobalFailure::Timeout);
        assert!(breaker.admit(timeout).is_ok());
    }
    breaker.failed(GlobalFailure::Timeout);
    assert_eq!(breaker.admit(timeout), Err(GlobalFailure::Timeout));
    breaker.succeeded();
    assert!(breaker.admit(timeout).is_ok());
    // A connection error opens it at once, for PAUSE.
    breaker.failed(GlobalFailure::Connection);
    assert!(breaker.is_open());
    assert_eq!(breaker.admit(timeout), Err(GlobalFailure::Connection));
    tokio::time::advance(PAUSE + Duration::from_millis(1)).await;
    // Then one decision probes while the others still fail fast.
    assert!(breaker.admit(timeout).is_ok());
    assert_eq!(breaker.admit(timeout), Err(GlobalFailure::Connection));
    // A probe that times out reopens it.
    breaker.failed(GlobalFailure::Timeout);
    assert_eq!(breaker.admit(timeout), Err(GlobalFailure::Timeout));
    tokio::time::advance(PAUSE + Duration::from_millis(1)).await;
    assert!(breaker.admit(timeout).is_ok());
    breaker.succeeded();
    assert!(!breaker.is_open());
    assert!(breaker.admit(timeout).is_ok() && breaker.admit(timeout).is_ok());
}

#[tokio::test(start_paused = true)]
async fn refunds_reach_every_rule_however_many_counted() {
    let (limiter, _) = limiter();
    let mut rules: Vec<RateLimitRule> = (0..6)
        .map(|index| {
            rule(
                &format!("local[{index}]"),
                limit(2, Duration::from_secs(60), 2),
                vec![],
            )
        })
        .collect();
    rules.push(rule(
        "local[6]",
        limit(1, Duration::from_secs(60), 1),
        vec![Selector::Header {
            name: HeaderName::from_static("x-strict"),
            matching: ValueMatch::Exact("1".into()),
        }],
    ));
    let policy = policy(rules, None);
    let strict = request(Method::GET, "/", &[("x-strict", "1")]);
    let plain = request(Method::GET, "/", &[]);
    let none = Identity::default();
    assert!(limiter.check(&policy, &strict, CLIENT, &none).await.is_ok());
    for _ in 0..3 {
        assert!(
            limiter
                .check(&policy, &strict, CLIENT, &none)
                .await
                .is_err()
        );
    }
    // Each of the six counted one request: one more fits in each, not zero.
    assert!(limiter.check(&policy, &plain, CLIENT, &none).await.is_ok());
    assert!(limiter.check(&policy, &plain, CLIENT, &none).await.is_err());
}

#[test]
fn concurrent_requests_never_exceed_a_local_limit() {
    let (limiter, _) = limiter();
    let limiter = Arc::new(limiter);
    // 100 per hour: during this test no new request accrues; exactly the burst is admitted.
    let policy = Arc::new(policy(
        vec![rule(
            "local[0]",
            limit(100, Duration::from_secs(3600), 100),
            vec![],
        )],
        None,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .expect("a runtime");
    let admitted: usize = runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, policy) = (Arc::clone(&limiter), Arc::clone(&policy));
                tokio::spawn(async move {
                    let parts = request(Method::GET, "/", &[]);
                    let mut admitted = 0;
                    for _ in 0..1000 {
                        if limiter
                            .check(&policy, &parts, CLIENT, &Identity::default())
                            .await
                            .is_ok()
                        {
                            admitted += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.expect("task finished");
        }
        total
    });
    assert_eq!(admitted, 100);
}
