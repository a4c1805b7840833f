//! The allocator, mimalloc, and its upkeep.
//!
//! mimalloc gives memory back to the system late, and only when asked from the right thread:
//!
//! - a page left empty by frees is returned (purged) a second after it empties, and only from
//!   inside a later call into the allocator that frees a page;
//! - a block freed by another thread than the one that allocated it waits in its page's
//!   cross-thread list until the owning thread collects it, which it does when it allocates
//!   from that size class again;
//! - the last empty page of each size class is kept ("retired") for a while in case it is
//!   needed again.
//!
//! A gateway that goes quiet after a burst (its idle keep-alive connections hibernated,
//! `proxy/src/idle.rs`, their tasks and buffers freed on whichever worker thread ran them)
//! makes none of those calls, and its resident memory would stay at the burst's peak until
//! traffic returns. So once a second [`upkeep`] starts an epoch, and every runtime thread that
//! goes to sleep ([`on_thread_park`]) in a new epoch first collects its heap. A thread that was
//! already asleep is woken for it: the upkeep spawns tasks that do nothing, and the scheduler
//! wakes sleeping workers to run them.
//!
//! The control plane's bursts (loading a config, applying a change, freeing the old one) run
//! with the purge delay at zero (an [`EagerPurge`] guard, [`purge_eagerly`]): a page they free and reuse comes back
//! untouched, resident only where its new blocks are written, instead of resident whole.
//!
//! The collection is forced: empty pages go back to the system at once, retired ones too (a
//! normal collection keeps the retired pages for 16 more collections: about 100 bytes more
//! per idle connection in `bench/memory`). A busy thread collects once a second too; what it
//! returns then, the next burst maps again. It does not choose what to free: mimalloc does.

use std::cell::Cell;
use std::os::raw::c_long;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// mimalloc instead of the system allocator: a request allocates and frees many small objects
/// (header maps, body channels, futures) across threads, which glibc malloc serves slowly.
///
/// The `mimalloc` crate's allocator asks for every block through mimalloc's aligned entry
/// points. Their fast path is the plain one's, but when a size class's free list runs dry
/// (every few allocations of a class that a request allocates and frees once) they take a
/// detour that costs about a hundred instructions more than `mi_malloc`'s own slow path: for a
/// size that is not a power of two they over-allocate and align by hand. Every mimalloc block
/// is aligned to a word (8 bytes: blocks hold a free-list pointer, and size classes are whole
/// words), so a layout that asks no more than that goes through the plain entry points here,
/// and only a stricter alignment through the aligned ones.
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocator;

/// The alignment every mimalloc block has.
const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: the entry points are mimalloc's, and each keeps `GlobalAlloc`'s contract for the
// layouts sent to it: the plain ones return blocks aligned to a word at least, and are given
// only layouts whose alignment is at most a word; the aligned ones take the layout's
// alignment; `mi_free` takes any block of either (mimalloc finds the block's page from the
// pointer, aligned or not); `realloc` keeps the old layout's alignment the same way.
// Allocation failure is a null pointer from mimalloc, as `GlobalAlloc` wants. Tested in
// `allocator/tests.rs` (alignments from 1 to 4 KiB, sizes across the small, medium and
// large size classes, zeroed allocation and reallocation that keep contents).
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: see the impl; no precondition beyond a valid layout.
        unsafe {
            if layout.align() <= WORD {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if layout.align() <= WORD {
                libmimalloc_sys::mi_zalloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator (the caller's contract), so from mimalloc.
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout` (the caller's contract); the
        // new block keeps its alignment.
        unsafe {
            if layout.align() <= WORD {
                libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// The current epoch; a thread collects once per epoch.
static EPOCH: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The epoch this thread last collected in.
    static COLLECTED: Cell<u64> = const { Cell::new(0) };
}

/// Starts an epoch a second, and wakes `workers` sleeping runtime threads so that each
/// collects in it. Spawn it once on the gateway's runtime.
pub async fn upkeep(workers: usize) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        EPOCH.fetch_add(1, Ordering::Relaxed);
        // The thread running this will sleep again and collect; the others are woken by
        // tasks that do nothing but be scheduled. Two per worker: a worker keeps the first task
        // it spawns in its own next-task slot without waking anyone, the second wakes a
        // sleeping worker.
        if workers > 1 {
            for _ in 0..2 * workers {
                tokio::spawn(async {});
            }
        }
    }
}

/// The runtime's `on_thread_park` hook: a thread about to sleep collects its heap, at most
/// once per epoch. The common call (no new epoch) is a load and a compare.
pub fn on_thread_park() {
    let epoch = EPOCH.load(Ordering::Relaxed);
    if COLLECTED.get() != epoch {
        COLLECTED.set(epoch);
        collect();
    }
}

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_t`, `mimalloc.h`; the bindings
/// name no constant for it). A test checks it reads mimalloc's documented default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The purge delay mimalloc started with (ms), read before the first change.
static LAZY_PURGE_DELAY: std::sync::OnceLock<c_long> = std::sync::OnceLock::new();

/// How many [`EagerPurge`] guards are alive. The setting is process-wide and the control
/// plane's bursts overlap (the control loop applies a change while the file watcher collects
/// its thread's heap): the delay goes back only when the last burst ends.
static EAGER_BURSTS: Mutex<usize> = Mutex::new(0);

/// A control-plane burst during which empty pages go back to the system at once (see
/// [`purge_eagerly`]); mimalloc's purge delay comes back when the last such guard is dropped.
#[must_use = "eager purging ends when the guard is dropped"]
#[derive(Debug)]
pub struct EagerPurge(());

/// From now until the returned guard (and every other one) is dropped, a page left empty goes
/// back to the system at once rather than after the purge delay. For the control plane's
/// bursts (loading and applying a config, freeing the old one): they free and allocate pages
/// by the thousand, and a page reused while still resident stays resident whole however little
/// of it its new size class uses; purged at once, it comes back as untouched memory, resident
/// only where it is written. At 5,000 routes that is about 4 MiB of the idle resident set. Not
/// for the request path: there it turns page reuse into a page fault each time (0.8 per HTTP/2
/// request under load), so callers keep the guard to the burst. The setting is process-wide: a
/// worker that frees a page meanwhile purges it at once too.
pub fn purge_eagerly() -> EagerPurge {
    let mut bursts = EAGER_BURSTS.lock().unwrap_or_else(PoisonError::into_inner);
    if *bursts == 0 {
        let _ = LAZY_PURGE_DELAY.get_or_init(|| mi_option_get(PURGE_DELAY));
        mi_option_set(PURGE_DELAY, 0);
    }
    *bursts += 1;
    EagerPurge(())
}

impl Drop for EagerPurge {
    fn drop(&mut self) {
        let mut bursts = EAGER_BURSTS.lock().unwrap_or_else(PoisonError::into_inner);
        *bursts = bursts.saturating_sub(1);
        if *bursts == 0
            && let Some(&lazy) = LAZY_PURGE_DELAY.get()
        {
            mi_option_set(PURGE_DELAY, lazy);
        }
    }
}

/// [`collect`] with empty pages purged at once: what a quiet control plane does with the heap
/// its last burst freed.
pub fn collect_eagerly() {
    let _eager = purge_eagerly();
    collect();
}

fn mi_option_get(option: libmimalloc_sys::mi_option_t) -> c_long {
    // SAFETY: reading an option has no preconditions (any thread, any time).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_get(option)
    }
}

fn mi_option_set(option: libmimalloc_sys::mi_option_t, value: c_long) {
    // SAFETY: options are atomics that mimalloc reads where it uses them; setting one has no
    // preconditions (any thread, any time).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(option, value);
    }
}

/// Collects the calling thread's heap (forced): frees that other threads made to its pages are
/// taken in, and the pages left empty go back to the system.
pub fn collect() {
    // SAFETY: `mi_collect` has no preconditions: it works on the calling thread's own heap (it
    // initialises it if the thread has none), may be called at any time from any thread, and
    // touches no memory of ours. With another global allocator it only collects mimalloc's own
    // (unused) heap.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

#[cfg(test)]
mod tests;
