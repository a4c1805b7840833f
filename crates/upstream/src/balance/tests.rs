use std::net::SocketAddr;

use super::*;

fn set(weights: &[u32]) -> EndpointSet {
    EndpointSet::new(
        weights
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let addr: SocketAddr = format!("127.0.0.1:{}", 1000 + i).parse().expect("addr");
                Arc::new(EndpointRuntime::new(addr, *w))
            })
            .collect(),
    )
}

#[test]
fn equal_weights_rotate() {
    let endpoints = set(&[1, 1, 1]);
    let cursor = AtomicUsize::new(0);
    let ports: Vec<u16> = (0..6)
        .map(|_| pick(&endpoints, &cursor).expect("pick").addr().port())
        .collect();
    assert_eq!(ports, vec![1000, 1001, 1002, 1000, 1001, 1002]);
}

#[test]
fn zero_weight_is_never_picked() {
    let endpoints = set(&[3, 0, 1]);
    let cursor = AtomicUsize::new(0);
    let mut counts = [0u32; 3];
    for _ in 0..4000 {
        let port = pick(&endpoints, &cursor).expect("pick").addr().port();
        counts[usize::from(port - 1000)] += 1;
    }
    assert_eq!(counts[1], 0);
    assert!((2800..3200).contains(&counts[0]), "{counts:?}");
}

#[test]
fn empty_or_all_zero_picks_nothing() {
    let cursor = AtomicUsize::new(0);
    assert!(pick(&set(&[]), &cursor).is_none());
    assert!(pick(&set(&[0, 0]), &cursor).is_none());
}
