use std::sync::Arc;

use snapshot::MirrorShare;

use super::MirrorWindow;

/// A deterministic stand-in for random numbers (SplitMix64).
fn numbers(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed;
    move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn always_and_never_need_no_draw() {
    let always = MirrorWindow::new(MirrorShare::ALL);
    let never = MirrorWindow::new(MirrorShare::new(0, 1).expect("valid"));
    let mut next = numbers(1);
    for _ in 0..100 {
        assert!(always.fires(next()));
        assert!(!never.fires(next()));
    }
}

#[test]
fn every_window_mirrors_exactly_the_share() {
    let mirror = MirrorWindow::new(MirrorShare::new(20, 100).expect("valid"));
    let mut next = numbers(7);
    // 1/5 after reduction: each window of 5 requests has exactly one copy.
    for _ in 0..200 {
        let copies = (0..5).filter(|_| mirror.fires(next())).count();
        assert_eq!(copies, 1);
    }
}

#[test]
fn positions_within_a_window_vary() {
    let mirror = MirrorWindow::new(MirrorShare::new(1, 4).expect("valid"));
    let mut next = numbers(3);
    let mut positions = [0usize; 4];
    for _ in 0..400 {
        for count in &mut positions {
            if mirror.fires(next()) {
                *count += 1;
            }
        }
    }
    assert_eq!(positions.iter().sum::<usize>(), 400);
    assert!(
        positions.iter().all(|count| *count > 50),
        "each position should take a fair part of the copies: {positions:?}"
    );
}

#[test]
fn concurrent_draws_keep_the_share() {
    let mirror = Arc::new(MirrorWindow::new(MirrorShare::new(35, 100).expect("valid")));
    let threads: Vec<_> = (0..4)
        .map(|seed| {
            let mirror = Arc::clone(&mirror);
            std::thread::spawn(move || {
                let mut next = numbers(seed);
                (0..1000).filter(|_| mirror.fires(next())).count()
            })
        })
        .collect();
    let copies: usize = threads
        .into_iter()
        .map(|thread| thread.join().expect("no panic"))
        .sum();
    // 4000 requests are 200 whole windows of 20 with 7 copies each.
    assert_eq!(copies, 1400);
}
