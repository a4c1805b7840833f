//! [`map_in_parallel`]: a batch of independent jobs on the machine's cores, results in order.
//!
//! Used to read and parse many files, or the many documents of one big file, at start-up and on
//! big rescans. A small batch (one edited document) stays on the calling thread: starting a
//! thread costs more than parsing a small document. Threads are scoped to the call
//! (`std::thread::scope`), so nothing outlives a rescan and nothing idles between rescans.

use std::num::NonZeroUsize;
use std::sync::OnceLock;
use std::thread;

/// Below this much work in all (bytes of text to parse, say), a batch runs on the calling
/// thread: about a millisecond of YAML parsing.
const MIN_PARALLEL_WORK: usize = 64 * 1024;

/// The least work worth a thread of its own.
const MIN_THREAD_WORK: usize = 32 * 1024;

/// `work` applied to each of `items`, results in the order of `items`.
///
/// When the items' total `weight` is large, they run on up to
/// `std::thread::available_parallelism()` threads (the calling thread included), each taking a
/// contiguous run of about equal weight. A thread that cannot be started leaves its run to the
/// calling thread. A panic in `work` is resumed on the calling thread, as if it had run there.
pub(crate) fn map_in_parallel<T, R>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let weights: Vec<usize> = items.iter().map(weight).collect();
    let total = weights
        .iter()
        .fold(0_usize, |sum, w| sum.saturating_add(*w));
    let threads = if total < MIN_PARALLEL_WORK || items.len() < 2 {
        1
    } else {
        cores().min(total / MIN_THREAD_WORK).min(items.len())
    };
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let runs = runs_of_equal_weight(items, &weights, total, threads);
    let Some((first, rest)) = runs.split_first() else {
        return Vec::new();
    };
    let work = &work;
    thread::scope(|scope| {
        let started: Vec<_> = rest
            .iter()
            .map(|run| {
                thread::Builder::new()
                    .name("config-parse".to_owned())
                    .spawn_scoped(scope, move || run.iter().map(work).collect::<Vec<R>>())
            })
            .collect();
        let mut results: Vec<R> = Vec::with_capacity(items.len());
        results.extend(first.iter().map(work));
        for (run, started) in rest.iter().zip(started) {
            match started {
                Ok(handle) => match handle.join() {
                    Ok(part) => results.extend(part),
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                // At the thread limit: this run is done here instead.
                Err(_) => results.extend(run.iter().map(work)),
            }
        }
        results
    })
}

/// The cores this process may use, asked once: `available_parallelism` reads the cgroup's
/// quota files on every call, which cost a rescan of one edited file more than its parse.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// `items` cut into `runs` contiguous runs of about equal total weight (none empty).
fn runs_of_equal_weight<'a, T>(
    items: &'a [T],
    weights: &[usize],
    total: usize,
    runs: usize,
) -> Vec<&'a [T]> {
    let mut cut = Vec::with_capacity(runs);
    let mut start = 0;
    let mut sum = 0_usize;
    for (index, weight) in weights.iter().enumerate() {
        sum = sum.saturating_add(*weight);
        // End a run once it reaches its share of the total, or when each run left needs one
        // of the items left, keeping at least one item for each run left.
        let share = total / runs * (cut.len() + 1);
        let runs_left = runs - cut.len() - 1;
        let items_left = items.len() - (index + 1);
        if runs_left > 0 && items_left >= runs_left && (sum >= share || items_left == runs_left) {
            cut.push(&items[start..=index]);
            start = index + 1;
        }
    }
    if start < items.len() {
        cut.push(&items[start..]);
    }
    cut
}

#[cfg(test)]
mod tests;
