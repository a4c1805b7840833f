//! Route lookup cost, to show it is flat from 10 to 10,000 routes.
//!
//! Every table holds chains of nested prefixes (`/p0`, `/p0/p1`, ... ten deep) so a hit on the
//! deepest prefix walks the whole trie path, and a miss walks the host index and the trie root.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use router::{
    HostPattern, Method, PathMatch, RequestView, RouteOrder, RouteTable, RouteTableBuilder,
    RuleMatch,
};

const DEPTH: usize = 10;
const DEEPEST_PATH: &str = "/p0/p1/p2/p3/p4/p5/p6/p7/p8/p9/item/42";

/// `hosts` hostnames, each with `services` top-level services of `DEPTH` nested prefixes.
fn table(hosts: usize, services: usize) -> RouteTable<usize> {
    let mut builder = RouteTableBuilder::new();
    let mut id = 0;
    for host in 0..hosts {
        let pattern = [HostPattern::parse(&format!("h{host}.example.com"))];
        for service in 0..services {
            // Service 0 uses the plain `/p0/...` chain; the others are `/s{n}/p1/...`.
            let mut prefix = if service == 0 {
                String::new()
            } else {
                format!("/s{service}")
            };
            for depth in 0..DEPTH {
                if service == 0 || depth > 0 {
                    prefix.push_str(&format!("/p{depth}"));
                }
                let matching = RuleMatch {
                    path: PathMatch::prefix(&prefix),
                    ..RuleMatch::default()
                };
                let order = RouteOrder {
                    created: Some(0),
                    route: format!("ns/r{id}").into(),
                    rule: 0,
                    matching: 0,
                };
                builder.add(&pattern, matching, order, id);
                id += 1;
            }
        }
    }
    builder.build()
}

fn lookup(c: &mut Criterion, name: &str, table: &RouteTable<usize>, host: &str) {
    let headers = HeaderMap::new();
    let hit = RequestView {
        method: &Method::GET,
        host,
        path: DEEPEST_PATH,
        query: None,
        headers: &headers,
    };
    let miss = RequestView {
        path: "/nothing/here",
        ..hit
    };
    assert!(
        table.find(&hit).is_some(),
        "{name}: the hit request must match"
    );
    assert!(
        table.find(&miss).is_none(),
        "{name}: the miss request must not match"
    );
    c.bench_function(&format!("{name}/hit_deepest"), |b| {
        b.iter(|| black_box(table.find(black_box(&hit))).map(|h| *h.target))
    });
    c.bench_function(&format!("{name}/miss"), |b| {
        b.iter(|| black_box(table.find(black_box(&miss))).map(|h| *h.target))
    });
}

fn route_lookup(c: &mut Criterion) {
    let small = table(1, 1);
    assert_eq!(small.len(), 10);
    lookup(c, "10_routes", &small, "h0.example.com");

    let many_hosts = table(1_000, 1);
    assert_eq!(many_hosts.len(), 10_000);
    lookup(
        c,
        "10k_routes_1k_hosts",
        &many_hosts,
        "H777.example.com:443",
    );

    let one_host = table(1, 1_000);
    assert_eq!(one_host.len(), 10_000);
    lookup(c, "10k_prefixes_one_host", &one_host, "h0.example.com");
}

criterion_group!(benches, route_lookup);
criterion_main!(benches);
