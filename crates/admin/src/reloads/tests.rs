use super::*;

fn reload(generation: u64, file_errors: &[&str], problems: &[&str]) -> ReloadRecord {
    ReloadRecord {
        generation,
        at: UNIX_EPOCH + Duration::from_secs(1_000),
        elapsed: Duration::from_micros(2_500),
        compiled: true,
        file_errors: file_errors.iter().map(|e| (*e).to_owned()).collect(),
        problems: problems.iter().map(|p| (*p).to_owned()).collect(),
        problem_count: problems.len(),
    }
}

#[test]
fn the_outcome_says_whether_a_file_was_rejected_or_objects_have_problems() {
    let log = ReloadLog::default();
    log.record(reload(1, &[], &[]));
    log.record(reload(2, &[], &["HTTPRoute a/b: Service a/x not found"]));
    log.record(reload(3, &["config.yaml: bad YAML"], &[]));
    let view = log.view();
    let outcomes: Vec<&str> = view
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|reload| reload["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["ok", "problems", "rejected"]);
    assert_eq!(view[0]["at_unix_ms"], 1_000_000);
    assert_eq!(view[0]["elapsed_ms"], 2.5);
    assert_eq!(view[2]["file_errors"][0], "config.yaml: bad YAML");
}

#[test]
fn the_log_keeps_the_last_reloads_oldest_first() {
    let log = ReloadLog::default();
    for generation in 1..=(RELOADS_KEPT as u64 + 3) {
        log.record(reload(generation, &[], &[]));
    }
    let records = log.records();
    assert_eq!(records.len(), RELOADS_KEPT);
    assert_eq!(records[0].generation, 4);
    assert_eq!(
        records.last().map(|r| r.generation),
        Some(RELOADS_KEPT as u64 + 3)
    );
}

#[test]
fn only_the_first_problems_are_kept_but_all_are_counted() {
    let log = ReloadLog::default();
    let many: Vec<String> = (0..1000).map(|i| format!("problem {i}")).collect();
    let mut record = reload(1, &[], &[]);
    record.problems = many;
    record.problem_count = 1000;
    log.record(record);
    let kept = &log.records()[0];
    assert_eq!(kept.problems.len(), PROBLEMS_KEPT);
    assert_eq!(kept.problem_count, 1000);
    assert_eq!(log.view()[0]["outcome"], "problems");
}
