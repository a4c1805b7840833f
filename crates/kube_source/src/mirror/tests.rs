use std::sync::Arc;

use kube::runtime::watcher::Event;
use model::{Kind, Object, ObjectKey};

use super::Mirror;
use crate::convert::Converted;
use crate::discovery::WatchedStream;

fn stream(kind: Kind) -> WatchedStream {
    WatchedStream {
        kind,
        namespace: None,
        name: None,
    }
}

fn slice(name: &str, address: &str) -> Converted {
    let document = serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "shop",
                     "labels": {"kubernetes.io/service-name": "cart"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address]}],
    });
    Converted {
        key: ObjectKey::new(Kind::EndpointSlice, "shop", name),
        object: model::parse::decode_object(document),
    }
}

fn service(name: &str) -> Converted {
    let document = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"ports": [{"port": 80}]},
    });
    Converted {
        key: ObjectKey::new(Kind::Service, "shop", name),
        object: model::parse::decode_object(document),
    }
}

fn list(mirror: &mut Mirror, stream: &WatchedStream, objects: Vec<Converted>) {
    mirror.apply(stream, Event::Init);
    for object in objects {
        mirror.apply(stream, Event::InitApply(object));
    }
    mirror.apply(stream, Event::InitDone);
}

/// A mirror of EndpointSlices and Services whose slices have listed (one slice, `cart-1`)
/// and whose Services have not.
fn slices_listed_services_not() -> (WatchedStream, WatchedStream, Mirror) {
    let slices = stream(Kind::EndpointSlice);
    let services = stream(Kind::Service);
    let mut mirror = Mirror::new([slices.clone(), services.clone()]);
    list(&mut mirror, &slices, vec![slice("cart-1", "198.18.0.2")]);
    (slices, services, mirror)
}

#[test]
fn nothing_is_published_until_every_stream_has_listed() {
    let (_, services, mut mirror) = slices_listed_services_not();
    assert!(mirror.publish().is_none(), "services have not listed yet");
    assert_eq!(mirror.unsynced().collect::<Vec<_>>(), [&services]);
    list(&mut mirror, &services, vec![]);
    let first = mirror.publish().expect("every stream listed");
    assert_eq!(first.generation, 1);
    assert_eq!(first.store.endpoint_slices.len(), 1);
    assert!(first.changed_kinds.contains(&Kind::EndpointSlice));
    assert!(mirror.publish().is_none(), "nothing changed since");
}

#[test]
fn a_relist_in_progress_is_not_published_and_replaces_the_stream_when_done() {
    let slices = stream(Kind::EndpointSlice);
    let mut mirror = Mirror::new([slices.clone()]);
    list(
        &mut mirror,
        &slices,
        vec![slice("cart-1", "198.18.0.2"), slice("cart-2", "198.18.0.3")],
    );
    let first = mirror.publish().expect("synced");
    // The watch is restarted (410 Gone, API server restart): a relist starts.
    mirror.apply(&slices, Event::Init);
    mirror.apply(&slices, Event::InitApply(slice("cart-1", "198.18.0.2")));
    assert!(
        mirror.publish().is_none(),
        "a partial list is never published"
    );
    mirror.apply(&slices, Event::InitDone);
    let after = mirror.publish().expect("cart-2 is gone");
    assert_eq!(after.store.endpoint_slices.len(), 1);
    assert_eq!(
        after.changed_kinds.iter().collect::<Vec<_>>(),
        [&Kind::EndpointSlice]
    );
    // The unchanged object keeps its Arc: the compiler compares it by pointer.
    let key = model::key("shop", "cart-1");
    assert!(Arc::ptr_eq(
        &first.store.endpoint_slices[&key],
        &after.store.endpoint_slices[&key]
    ));
}

#[test]
fn a_relist_of_equal_objects_publishes_nothing() {
    let slices = stream(Kind::EndpointSlice);
    let mut mirror = Mirror::new([slices.clone()]);
    list(&mut mirror, &slices, vec![slice("cart-1", "198.18.0.2")]);
    mirror.publish().expect("synced");
    list(&mut mirror, &slices, vec![slice("cart-1", "198.18.0.2")]);
    assert!(mirror.publish().is_none());
}

#[test]
fn an_event_shares_every_unchanged_object_with_the_previous_store() {
    let (slices, services, mut mirror) = slices_listed_services_not();
    list(&mut mirror, &services, vec![service("cart")]);
    let first = mirror.publish().expect("synced");
    mirror.apply(&slices, Event::Apply(slice("cart-1", "198.18.0.9")));
    let second = mirror.publish().expect("the slice moved");
    assert_eq!(
        second.changed_kinds.iter().collect::<Vec<_>>(),
        [&Kind::EndpointSlice]
    );
    let key = model::key("shop", "cart");
    assert!(Arc::ptr_eq(
        &first.store.services[&key],
        &second.store.services[&key]
    ));
    mirror.apply(&slices, Event::Delete(slice("cart-1", "198.18.0.9")));
    let third = mirror.publish().expect("the slice is gone");
    assert!(third.store.endpoint_slices.is_empty());
    assert_eq!(third.generation, 3);
    // Each update names the objects it changed; the first names none (everything is new).
    let cart_1 = ObjectKey::new(Kind::EndpointSlice, "shop", "cart-1");
    assert!(first.changed.is_none());
    assert_eq!(second.changed.as_deref(), Some(&[cart_1.clone()][..]));
    assert_eq!(third.changed.as_deref(), Some(&[cart_1][..]));
}

#[test]
fn an_invalid_object_keeps_its_last_good_version_and_is_reported() {
    let slices = stream(Kind::EndpointSlice);
    let mut mirror = Mirror::new([slices.clone()]);
    list(&mut mirror, &slices, vec![slice("cart-1", "198.18.0.2")]);
    mirror.publish().expect("synced");
    let invalid = Converted {
        key: ObjectKey::new(Kind::EndpointSlice, "shop", "cart-1"),
        object: Err("EndpointSlice shop/cart-1: addressType: invalid type".to_owned()),
    };
    mirror.apply(&slices, Event::Apply(invalid.clone()));
    let update = mirror.publish().expect("the rejection is reported");
    assert_eq!(
        update.store.endpoint_slices.len(),
        1,
        "last good version kept"
    );
    let report = &update.files[0];
    assert_eq!(
        report.path.to_str(),
        Some("kubernetes/EndpointSlice/shop/cart-1")
    );
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("addressType"))
    );
    // Relisted while still invalid: the last good version survives the relist too.
    list(&mut mirror, &slices, vec![invalid]);
    assert!(mirror.publish().is_none());
    let Some(Object::EndpointSlice(kept)) =
        mirror
            .store
            .get(&ObjectKey::new(Kind::EndpointSlice, "shop", "cart-1"))
    else {
        panic!("the last good version is gone");
    };
    assert_eq!(kept.endpoints[0].addresses, ["198.18.0.2"]);
}

#[test]
fn an_object_stream_added_after_the_first_publication_does_not_hold_publishing() {
    let slices = stream(Kind::EndpointSlice);
    let mut mirror = Mirror::new([slices.clone()]);
    let secret = WatchedStream {
        kind: Kind::Secret,
        namespace: Some("shop".to_owned()),
        name: Some("cert".to_owned()),
    };
    // Added before the first publication: required.
    mirror.add_stream(secret.clone());
    list(&mut mirror, &slices, vec![slice("cart-1", "198.18.0.2")]);
    assert!(mirror.are_kinds_listed());
    assert!(
        mirror.publish().is_none(),
        "the referenced Secret has not listed yet"
    );
    list(&mut mirror, &secret, vec![]);
    mirror.publish().expect("everything listed");
    // Added later: never listed (say its list is forbidden), yet other changes publish.
    let later = WatchedStream {
        name: Some("other".to_owned()),
        ..secret.clone()
    };
    mirror.add_stream(later.clone());
    mirror.apply(&slices, Event::Apply(slice("cart-1", "198.18.0.3")));
    assert!(mirror.publish().is_some());
    // Removing a stream removes what it contributed.
    list(&mut mirror, &later, vec![secret_other()]);
    mirror.publish().expect("the secret arrived");
    mirror.remove_stream(&later);
    let after = mirror.publish().expect("the secret is gone");
    assert!(after.store.secrets.is_empty());
}

fn secret_other() -> Converted {
    let document = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "other", "namespace": "shop"},
        "type": "Opaque", "data": {},
    });
    Converted {
        key: ObjectKey::new(Kind::Secret, "shop", "other"),
        object: model::parse::decode_object(document),
    }
}

#[test]
fn a_kind_watched_after_the_first_publication_does_not_hold_publishing_or_references() {
    let slices = stream(Kind::EndpointSlice);
    let mut mirror = Mirror::new([slices.clone()]);
    list(&mut mirror, &slices, vec![slice("cart-1", "198.18.0.2")]);
    mirror.publish().expect("everything listed");
    // A CRD installed after the start: its kind's stream is added, and may never list (its
    // list forbidden by RBAC, say).
    let services = stream(Kind::Service);
    mirror.add_stream(services.clone());
    assert!(
        mirror.are_kinds_listed(),
        "references are still followed while the new kind has not listed"
    );
    mirror.apply(&slices, Event::Apply(slice("cart-1", "198.18.0.3")));
    assert!(mirror.publish().is_some(), "other changes still publish");
    // Its list arrives: its objects are published.
    list(&mut mirror, &services, vec![service("cart")]);
    let update = mirror.publish().expect("the new kind's objects");
    assert!(update.changed_kinds.contains(&Kind::Service));
    assert_eq!(update.store.services.len(), 1);
}

#[test]
fn a_store_its_consumer_let_go_is_reused_for_the_next_change_not_copied() {
    let (slices, services, mut mirror) = slices_listed_services_not();
    // Enough objects that catching up a spare costs less than a copy (see `StoreVersions`).
    let names = ["cart", "shop", "pay", "ship", "mail", "user", "auth", "cdn"];
    list(
        &mut mirror,
        &services,
        names.into_iter().map(service).collect(),
    );
    let first = mirror.publish().expect("synced");
    mirror.apply(&slices, Event::Apply(slice("cart-1", "198.18.0.3")));
    let second = mirror.publish().expect("moved");
    // The mirror keeps the first store as its spare; the consumer holds the second and lets
    // the first go, as the controller does.
    assert_eq!(Arc::strong_count(&first.store), 2);
    let first_store = Arc::as_ptr(&first.store);
    drop(first);
    mirror.apply(&slices, Event::Apply(slice("cart-1", "198.18.0.4")));
    let third = mirror.publish().expect("moved again");
    assert_eq!(
        Arc::as_ptr(&third.store),
        first_store,
        "the first store, caught up, is the third"
    );
    let key = model::key("shop", "cart-1");
    assert_eq!(
        third.store.endpoint_slices[&key],
        match slice("cart-1", "198.18.0.4").object {
            Ok(Object::EndpointSlice(slice)) => slice,
            _ => unreachable!("a valid slice"),
        }
    );
    assert!(!Arc::ptr_eq(&second.store, &third.store));
}
