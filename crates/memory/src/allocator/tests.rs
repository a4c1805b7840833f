//! `collect` gives back what another thread freed: the allocator's behaviour that the upkeep
//! exists for, measured in this process's resident memory.

use std::time::Duration;

use super::{Allocator, collect};

#[global_allocator]
static ALLOCATOR: Allocator = Allocator;

/// Resident anonymous memory of this process, in KiB.
fn resident_anonymous_kib() -> u64 {
    crate::status_kib("RssAnon")
}

#[test]
fn collect_returns_blocks_that_another_thread_freed() {
    const BLOCKS: usize = 4_000;
    const BLOCK: usize = 16 * 1024;
    // Allocated (and touched) here, freed on another thread: the pages stay this thread's,
    // full of blocks waiting in their cross-thread lists.
    let blocks: Vec<Box<[u8]>> = (0..BLOCKS)
        .map(|i| vec![u8::try_from(i % 251).unwrap_or(0) | 1; BLOCK].into_boxed_slice())
        .collect();
    let with_blocks = resident_anonymous_kib();
    std::thread::spawn(move || drop(blocks))
        .join()
        .expect("the freeing thread does not panic");
    let freed_elsewhere = resident_anonymous_kib();
    // A collection frees the pages; a second one, after mimalloc's one-second purge delay,
    // returns them to the system.
    collect();
    std::thread::sleep(Duration::from_millis(1_200));
    collect();
    let collected = resident_anonymous_kib();
    let total_kib = u64::try_from(BLOCKS * BLOCK / 1024).unwrap_or(u64::MAX);
    assert!(
        freed_elsewhere + total_kib / 2 > with_blocks,
        "freeing on another thread already returned the memory ({with_blocks} → \
         {freed_elsewhere} KiB): the test shows nothing"
    );
    assert!(
        collected + total_kib / 2 < freed_elsewhere,
        "collect returned too little: {freed_elsewhere} → {collected} KiB of {total_kib} KiB freed"
    );
}

/// Values with alignments above a word, which take mimalloc's aligned entry points.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(C, align(4096))]
struct Align4096(u8);

fn aligned_to<T>(address: *const T, alignment: usize) -> bool {
    address.addr().is_multiple_of(alignment)
}

#[test]
fn blocks_have_their_layouts_alignment_and_keep_contents_when_they_grow() {
    // Sizes across mimalloc's small (≤ 1 KiB), medium and large classes, through the plain
    // entry points (alignment ≤ a word) and the aligned ones.
    for size in [1, 7, 8, 24, 100, 640, 1_000, 1_025, 5_000, 70_000, 3 << 20] {
        // alloc_zeroed (plain): zeroed, and growing (realloc) keeps the bytes.
        let mut bytes = vec![0u8; size];
        assert!(bytes.iter().all(|&b| b == 0), "vec![0; {size}] is zeroed");
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::try_from(i % 251).unwrap_or(0);
        }
        bytes.reserve_exact(size * 3);
        assert!(
            bytes
                .iter()
                .enumerate()
                .all(|(i, &b)| b == u8::try_from(i % 251).unwrap_or(0)),
            "growing {size} bytes kept them"
        );
        let words: Vec<u64> = (0..size as u64).collect();
        assert!(
            aligned_to(words.as_ptr(), 8),
            "{size} words are word-aligned"
        );
        // The aligned entry points: 64 bytes, growing; 4 KiB.
        let mut wide: Vec<Align64> = Vec::with_capacity(size.div_ceil(64));
        wide.extend(
            (0..size.div_ceil(64)).map(|i| Align64([u8::try_from(i % 251).unwrap_or(0); 64])),
        );
        assert!(aligned_to(wide.as_ptr(), 64), "{size}: 64-byte alignment");
        let before = wide.clone();
        wide.reserve_exact(wide.len() * 4 + 1);
        assert!(
            aligned_to(wide.as_ptr(), 64),
            "{size}: 64-byte alignment after growing"
        );
        assert_eq!(wide, before, "growing 64-byte-aligned values kept them");
        let page = vec![Align4096(1); size.div_ceil(4096)];
        assert!(aligned_to(page.as_ptr(), 4096), "{size}: 4 KiB alignment");
    }
}

#[test]
fn purging_eagerly_sets_mimallocs_purge_delay_to_zero_until_the_last_burst_ends() {
    // The option's place in mimalloc's enum is ours to get right: its documented default
    // (1,000 ms, unless the environment sets it) proves we read the purge delay.
    let lazy = super::mi_option_get(super::PURGE_DELAY);
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        assert_eq!(
            lazy,
            1_000,
            "option {} is not mimalloc's purge delay",
            super::PURGE_DELAY
        );
    }
    let eager = super::purge_eagerly();
    assert_eq!(super::mi_option_get(super::PURGE_DELAY), 0);
    // An overlapping burst (another thread's) keeps it at zero until both have ended.
    let overlapping = super::purge_eagerly();
    drop(eager);
    assert_eq!(super::mi_option_get(super::PURGE_DELAY), 0);
    drop(overlapping);
    assert_eq!(super::mi_option_get(super::PURGE_DELAY), lazy);
}
