//! Guards against a generator so sparse that the table and the reference trivially agree.

use super::*;

/// Pseudo-random inputs (Knuth's MMIX LCG, so a failure replays).
fn inputs(count: usize, len: usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x5eed;
    (0..count)
        .map(|_| {
            (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    state.to_be_bytes()[0]
                })
                .collect()
        })
        .collect()
}

#[test]
fn random_inputs_agree_and_often_collide() {
    let (mut requests, mut matched, mut contested) = (0, 0, 0);
    for data in inputs(500, 512) {
        route_table(&data);
        let mut input = Unstructured::new(&data);
        let rules = generate::rules(&mut input, MAX_RULES).expect("enough bytes");
        for _ in 0..4 {
            let request = generate::request(&mut input).expect("enough bytes");
            let view = request.view();
            let candidates = rules.iter().filter(|r| r.matching.matches(&view)).count();
            requests += 1;
            matched += usize::from(reference::find(&rules, &view).is_some());
            contested += usize::from(candidates >= 2);
        }
    }
    assert!(
        matched * 4 > requests,
        "{matched} of {requests} requests matched"
    );
    assert!(
        contested * 8 > requests,
        "{contested} of {requests} had rivals"
    );
}
