use super::*;

const DEBOUNCE: Duration = Duration::from_millis(50);

fn path(name: &str) -> PathBuf {
    PathBuf::from(format!("/config/{name}"))
}

fn schedule_with(events: &[(&str, Writer, Instant)]) -> Schedule {
    let mut pending = Pending::default();
    for (name, writer, at) in events {
        pending.record(path(name), *writer, *at);
    }
    let mut schedule = Schedule::default();
    schedule.take(&mut pending);
    schedule
}

#[test]
fn a_finished_write_is_due_at_once() {
    let start = Instant::now();
    let mut schedule = schedule_with(&[("a.yaml", Writer::Done, start)]);
    let changes = schedule.due(start, DEBOUNCE).expect("due at once");
    assert_eq!(changes.named, HashSet::from([path("a.yaml")]));
    assert!(changes.deferred.is_empty() && !changes.everything);
    assert!(schedule.due(start, DEBOUNCE).is_none(), "taken");
    assert_eq!(schedule.next_due(DEBOUNCE), None);
}

#[test]
fn a_write_without_close_waits_for_the_debounce_and_others_do_not() {
    let start = Instant::now();
    let mut schedule = schedule_with(&[
        ("a.yaml", Writer::Writing, start),
        ("b.yaml", Writer::Done, start),
    ]);
    let changes = schedule.due(start, DEBOUNCE).expect("b is due");
    assert_eq!(changes.named, HashSet::from([path("b.yaml")]));
    assert_eq!(changes.deferred, HashSet::from([path("a.yaml")]));
    assert_eq!(schedule.next_due(DEBOUNCE), Some(start + DEBOUNCE));

    assert!(schedule.due(start + DEBOUNCE / 2, DEBOUNCE).is_none());
    let changes = schedule
        .due(start + DEBOUNCE, DEBOUNCE)
        .expect("quiet for the debounce");
    assert_eq!(changes.named, HashSet::from([path("a.yaml")]));
    assert!(changes.deferred.is_empty());
}

#[test]
fn a_close_after_writes_ends_the_wait() {
    let start = Instant::now();
    let mut schedule = schedule_with(&[("a.yaml", Writer::Writing, start)]);
    assert!(schedule.due(start, DEBOUNCE).is_none());
    let mut pending = Pending::default();
    pending.record(
        path("a.yaml"),
        Writer::Done,
        start + Duration::from_millis(1),
    );
    schedule.take(&mut pending);
    let changes = schedule
        .due(start + Duration::from_millis(1), DEBOUNCE)
        .expect("closed");
    assert_eq!(changes.named, HashSet::from([path("a.yaml")]));
}

#[test]
fn a_write_after_a_create_waits() {
    // A new file: created (done), then written before the rescan took the events.
    let start = Instant::now();
    let mut pending = Pending::default();
    pending.record(path("a.yaml"), Writer::Done, start);
    pending.record(path("a.yaml"), Writer::Writing, start);
    let mut schedule = Schedule::default();
    schedule.take(&mut pending);
    assert!(schedule.due(start, DEBOUNCE).is_none());
    let safety_net = schedule.safety_net();
    assert_eq!(safety_net.deferred, HashSet::from([path("a.yaml")]));
}

#[test]
fn lost_events_read_everything_once_quiet() {
    let start = Instant::now();
    let mut pending = Pending::default();
    pending.record_lost(start);
    let mut schedule = Schedule::default();
    schedule.take(&mut pending);
    assert!(schedule.due(start, DEBOUNCE).is_none());
    assert_eq!(schedule.next_due(DEBOUNCE), Some(start + DEBOUNCE));
    let changes = schedule.due(start + DEBOUNCE, DEBOUNCE).expect("due");
    assert!(changes.everything);
    assert!(schedule.due(start + DEBOUNCE, DEBOUNCE).is_none(), "once");
}

#[test]
fn only_completed_saves_are_settled() {
    let start = Instant::now();
    let mut pending = Pending::default();
    assert!(!pending.is_settled(), "nothing recorded");
    pending.record(path("a.yaml"), Writer::Closed, start);
    pending.record(path("b.yaml"), Writer::Closed, start);
    assert!(pending.is_settled(), "two files renamed into place");
    // A create may be followed by writes: the burst is gathered.
    pending.record(path("c.yaml"), Writer::Done, start);
    assert!(!pending.is_settled(), "a create");
    pending.record(path("c.yaml"), Writer::Closed, start);
    assert!(pending.is_settled(), "then closed");
    pending.record(path("c.yaml"), Writer::Writing, start);
    assert!(!pending.is_settled(), "written again");
    pending.record(path("c.yaml"), Writer::Closed, start);
    pending.record_lost(start);
    assert!(!pending.is_settled(), "lost events");
    // A closed file is read at once, like any finished write.
    let mut schedule = Schedule::default();
    let mut pending = Pending::default();
    pending.record(path("a.yaml"), Writer::Closed, start);
    schedule.take(&mut pending);
    let changes = schedule.due(start, DEBOUNCE).expect("closed: due at once");
    assert_eq!(changes.named, HashSet::from([path("a.yaml")]));
}
