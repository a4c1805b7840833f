use std::collections::BTreeMap;

use model::Kind;

use super::{WATCHED, streams_of, unserved};

#[test]
fn namespaced_kinds_get_one_stream_per_namespace_and_referenced_kinds_none() {
    let namespaces = ["shop".to_owned(), "pay".to_owned()];
    let streams = streams_of(
        [Kind::GatewayClass, Kind::Backend, Kind::Secret],
        &namespaces,
    );
    let described: Vec<(Kind, Option<&str>)> = streams
        .iter()
        .map(|stream| (stream.kind, stream.namespace.as_deref()))
        .collect();
    assert_eq!(
        described,
        [
            (Kind::GatewayClass, None),
            (Kind::Backend, Some("shop")),
            (Kind::Backend, Some("pay")),
        ]
    );
    assert!(streams.iter().all(|stream| stream.name.is_none()));
    // Without --namespaces: one stream per kind.
    assert_eq!(streams_of([Kind::Backend], &[]).len(), 1);
}

#[test]
fn every_kind_is_unserved_until_discovered() {
    assert_eq!(unserved(&BTreeMap::new()), WATCHED);
}
