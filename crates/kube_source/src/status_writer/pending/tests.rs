use std::sync::Arc;

use compile::{ObjectStatus, StatusChange, StatusReport};
use model::{Kind, ObjectKey, Store};

use super::{Handed, Known};

fn route(name: &str) -> ObjectStatus {
    ObjectStatus::new("HTTPRoute", "shop", name)
}

fn key(kind: Kind, name: &str) -> ObjectKey {
    ObjectKey::new(kind, "shop", name)
}

fn full(objects: Vec<ObjectStatus>) -> StatusChange {
    StatusChange::Full(StatusReport { objects })
}

fn taken(known: &mut Known, changes: Vec<StatusChange>) -> Vec<ObjectKey> {
    let mut handed = Handed::default();
    for change in changes {
        handed.add(change, Arc::new(Store::new()));
    }
    known.take(handed)
}

#[test]
fn a_full_report_replaces_everything_and_marks_it_dirty() {
    let mut known = Known::default();
    taken(&mut known, vec![full(vec![route("a"), route("b")])]);
    known.dirty.clear();
    let gone = taken(
        &mut known,
        vec![full(vec![
            route("b"),
            ObjectStatus::new("Gateway", "shop", "gw"),
        ])],
    );
    assert_eq!(gone, vec![key(Kind::HttpRoute, "a")]);
    assert_eq!(known.statuses.len(), 2);
    assert_eq!(known.dirty.len(), 2);
}

#[test]
fn a_partial_change_touches_only_its_objects_and_removes_the_recompiled_without_status() {
    let mut known = Known::default();
    taken(
        &mut known,
        vec![full(vec![route("a"), route("b"), route("c")])],
    );
    known.dirty.clear();
    let mut edited = route("a");
    edited.problems.push("edited".to_owned());
    let gone = taken(
        &mut known,
        vec![StatusChange::Partial {
            statuses: vec![edited],
            recompiled: vec!["HTTPRoute shop/a".to_owned(), "HTTPRoute shop/b".to_owned()],
        }],
    );
    assert_eq!(gone, vec![key(Kind::HttpRoute, "b")], "b was deleted");
    assert_eq!(
        known.dirty.iter().collect::<Vec<_>>(),
        vec![&key(Kind::HttpRoute, "a")],
        "only the edited route is dirty"
    );
    assert_eq!(
        known.statuses[&key(Kind::HttpRoute, "a")].problems,
        ["edited"]
    );
    assert!(known.statuses.contains_key(&key(Kind::HttpRoute, "c")));
}

#[test]
fn changes_handed_over_before_the_writer_takes_them_are_summed() {
    let mut known = Known::default();
    taken(&mut known, vec![full(vec![route("a"), route("b")])]);
    known.dirty.clear();
    // Two steps before the writer wakes: neither is lost, the later one wins per object.
    let mut second = route("a");
    second.problems.push("second".to_owned());
    taken(
        &mut known,
        vec![
            StatusChange::Partial {
                statuses: vec![route("a"), route("new")],
                recompiled: vec![
                    "HTTPRoute shop/a".to_owned(),
                    "HTTPRoute shop/new".to_owned(),
                ],
            },
            StatusChange::Partial {
                statuses: vec![second],
                recompiled: vec!["HTTPRoute shop/a".to_owned()],
            },
        ],
    );
    assert_eq!(
        known.statuses[&key(Kind::HttpRoute, "a")].problems,
        ["second"]
    );
    assert!(known.statuses.contains_key(&key(Kind::HttpRoute, "new")));
    assert_eq!(known.dirty.len(), 2);
}

#[test]
fn marking_a_kind_marks_only_its_objects() {
    let mut known = Known::default();
    taken(
        &mut known,
        vec![full(vec![
            ObjectStatus::new("GatewayClass", "", "portcullis"),
            ObjectStatus::new("Gateway", "shop", "gw"),
            ObjectStatus::new("Gateway", "zoo", "edge"),
            ObjectStatus::new("ListenerSet", "shop", "extra"),
            route("a"),
        ])],
    );
    known.dirty.clear();
    known.mark_kind(Kind::Gateway);
    let kinds: Vec<Kind> = known.dirty.iter().map(|key| key.kind).collect();
    assert_eq!(kinds, [Kind::Gateway, Kind::Gateway]);
    known.mark_all();
    assert_eq!(known.dirty.len(), 5);
}
