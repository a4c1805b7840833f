use std::collections::HashSet;
use std::sync::Mutex;

use super::*;

#[test]
fn results_keep_the_order_of_the_items() {
    let items: Vec<usize> = (0..1_000).collect();
    let doubled = map_in_parallel(&items, |_| 1_024, |item| item * 2);
    assert_eq!(
        doubled,
        items.iter().map(|item| item * 2).collect::<Vec<_>>()
    );
}

#[test]
fn a_big_batch_runs_on_several_threads_and_a_small_one_on_the_caller() {
    let items: Vec<usize> = (0..64).collect();
    let threads = Mutex::new(HashSet::new());
    let record = |_: &usize| {
        threads
            .lock()
            .expect("not poisoned")
            .insert(thread::current().id());
    };
    map_in_parallel(&items, |_| MIN_PARALLEL_WORK, record);
    let parallelism = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    assert_eq!(
        threads.lock().expect("not poisoned").len(),
        parallelism.min(items.len())
    );

    threads.lock().expect("not poisoned").clear();
    map_in_parallel(&items, |_| 16, record);
    assert_eq!(
        *threads.lock().expect("not poisoned"),
        HashSet::from([thread::current().id()])
    );
}

#[test]
fn runs_are_contiguous_non_empty_and_about_equal() {
    let items: Vec<usize> = (0..10).collect();
    let weights = vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 91];
    let runs = runs_of_equal_weight(&items, &weights, 100, 3);
    assert_eq!(runs.len(), 3);
    assert_eq!(runs.concat(), items);
    assert!(runs.iter().all(|run| !run.is_empty()));
    assert_eq!(runs[2], &[9], "the heavy item is a run of its own");

    let even = vec![10; 10];
    let runs = runs_of_equal_weight(&items, &even, 100, 2);
    assert_eq!(runs, vec![&items[..5], &items[5..]]);
}
