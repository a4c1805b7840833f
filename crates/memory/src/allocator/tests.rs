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
