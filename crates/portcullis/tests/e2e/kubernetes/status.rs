//! Status write-back against a real API server, beyond the basics of
//! `status_is_written_back_for_our_objects_only_and_only_when_changed`: GatewayClass
//! `supportedFeatures`, Gateway addresses from `--gateway-service`, ListenerSet status,
//! BackendTLSPolicy ancestors next to another controller's; and, with two replicas, the writes
//! themselves counted through watches opened before the gateway starts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use futures_util::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use testkit::free_port;

use super::cluster::TestCluster;
use super::{PROPAGATION, find_condition, lease_holder, namespace, start_gateway};
use crate::fixture::manifest::{
    GATEWAY, GATEWAY_CLASS, NS, gateway, gateway_class, http_route, rule, service, service_ref,
};
use crate::fixture::{eventually, timed_load};

/// Our controller name (the default of `--controller-name`).
const OURS: &str = "portcullis.dev/gateway-controller";

/// Gateway `edge`: no `spec.addresses`, admits ListenerSets of its namespace.
fn edge_gateway(port: u16) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "edge", "namespace": NS},
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "allowedListeners": {"namespaces": {"from": "Same"}},
            "listeners": [{"name": "http", "protocol": "HTTP", "port": port}],
        },
    })
}

/// The Service clients reach the gateway through, as `deploy/gateway.yaml` has it.
fn gateway_service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "portcullis", "namespace": "portcullis-system"},
        "spec": {"type": "LoadBalancer",
                 "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
    })
}

/// The `status.ancestors` entry another controller wrote on the BackendTLSPolicy.
fn their_ancestor() -> Value {
    json!({
        "ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                        "namespace": NS, "name": "other-gw"},
        "controllerName": "example.com/other-controller",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "theirs", "observedGeneration": 1,
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
    })
}

/// The `status.ancestors` of `policy` as the API server holds them, once the other
/// controller's entry is found there as it wrote it.
async fn policy_ancestors(cluster: &TestCluster, policy: &Value) -> anyhow::Result<Vec<Value>> {
    let written = cluster.get(policy).await?;
    let ancestors = written["status"]["ancestors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(
        ancestors.contains(&their_ancestor()),
        "theirs changed: {ancestors:?}"
    );
    Ok(ancestors)
}

#[tokio::test]
async fn status_reports_features_service_addresses_listener_sets_and_policy_ancestors()
-> anyhow::Result<()> {
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let (port, edge_port, set_port) = (free_port(), free_port(), free_port());
    let listener_set = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "ListenerSet",
        "metadata": {"name": "extra", "namespace": NS},
        "spec": {"parentRef": {"name": "edge"},
                 "listeners": [{"name": "extra-http", "protocol": "HTTP", "port": set_port}]},
    });
    let mut set_route = http_route(
        "extra-route",
        &["extra.example"],
        vec![rule(vec![], vec![service_ref("cart")])],
    );
    set_route["spec"]["parentRefs"] = json!([{"group": "gateway.networking.k8s.io",
                                              "kind": "ListenerSet", "name": "extra"}]);
    let policy = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "BackendTLSPolicy",
        "metadata": {"name": "cart-tls", "namespace": NS},
        "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "cart"}],
                 "validation": {"hostname": "cart.example",
                                "caCertificateRefs": [{"group": "", "kind": "ConfigMap",
                                                       "name": "cart-ca"}]}},
    });
    let shop = http_route(
        "shop",
        &["shop.example"],
        vec![rule(vec![], vec![service_ref("cart")])],
    );
    for object in [
        namespace(NS),
        namespace("portcullis-system"),
        gateway_class(),
        gateway(port, None),
        edge_gateway(edge_port),
        listener_set.clone(),
        shop.clone(),
        set_route,
        service(NS, "cart", None),
        service(NS, "pay", None),
        policy.clone(),
        gateway_service(),
    ] {
        cluster.apply(&object).await?;
    }
    let mut their_status = policy.clone();
    their_status["status"] = json!({"ancestors": [their_ancestor()]});
    cluster
        .apply_status(&their_status, "other-controller")
        .await?;
    let cluster_ip = cluster.get(&gateway_service()).await?["spec"]["clusterIP"].clone();
    ensure!(
        cluster_ip.is_string(),
        "no clusterIP allocated: {cluster_ip}"
    );

    let process = start_gateway(
        &cluster.kubeconfig(),
        &[
            "--bind",
            "127.0.0.1",
            "--gateway-service",
            "portcullis-system/portcullis",
        ],
    )
    .await?;
    let checked = async {
        // The GatewayClass lists every feature of the one list in code, as `{name}` objects.
        let features: Vec<Value> = compile::SUPPORTED_FEATURES
            .iter()
            .map(|name| json!({"name": name}))
            .collect();
        eventually(PROPAGATION, async || {
            let class = cluster.get(&gateway_class()).await?;
            ensure!(
                class["status"]["supportedFeatures"] == json!(features),
                "{}",
                class["status"]
            );
            Ok(())
        })
        .await?;

        // spec.addresses win; a Gateway without them reports the Service's cluster IP (no load
        // balancer yet), and counts its ListenerSet.
        eventually(PROPAGATION, async || {
            let pinned = cluster.get(&gateway(port, None)).await?;
            ensure!(
                pinned["status"]["addresses"]
                    == json!([{"type": "IPAddress", "value": "127.0.0.1"}]),
                "{}",
                pinned["status"]
            );
            let edge = cluster.get(&edge_gateway(edge_port)).await?;
            ensure!(
                edge["status"]["addresses"] == json!([{"type": "IPAddress", "value": cluster_ip}]),
                "{}",
                edge["status"]
            );
            ensure!(
                edge["status"]["attachedListenerSets"] == 1,
                "{}",
                edge["status"]
            );
            Ok(())
        })
        .await?;

        // The ListenerSet: accepted and programmed, its listener with the route attached.
        eventually(PROPAGATION, async || {
            let set = cluster.get(&listener_set).await?;
            let status = &set["status"];
            for kind in ["Accepted", "Programmed"] {
                let condition = find_condition(&status["conditions"], kind).context(kind)?;
                ensure!(condition["status"] == "True", "{condition}");
                ensure!(condition["observedGeneration"] == set["metadata"]["generation"]);
            }
            ensure!(status["listeners"][0]["name"] == "extra-http", "{status}");
            ensure!(status["listeners"][0]["attachedRoutes"] == 1, "{status}");
            Ok(())
        })
        .await?;

        // The policy: our ancestors (the Gateways whose routes use the Service: `gw` directly,
        // `edge` through its ListenerSet) next to theirs, which stays byte for byte.
        eventually(PROPAGATION, async || {
            let ancestors = policy_ancestors(&cluster, &policy).await?;
            let ours: Vec<&Value> = ancestors
                .iter()
                .filter(|a| a["controllerName"] == OURS)
                .collect();
            let names: Vec<&Value> = ours.iter().map(|a| &a["ancestorRef"]["name"]).collect();
            ensure!(
                names == [GATEWAY, "edge"] || names == ["edge", GATEWAY],
                "{ancestors:?}"
            );
            ensure!(ancestors.len() == 3, "ancestors: {ancestors:?}");
            // The CA ConfigMap does not exist: the entries say so.
            for entry in ours {
                let resolved =
                    find_condition(&entry["conditions"], "ResolvedRefs").context("ResolvedRefs")?;
                ensure!(resolved["status"] == "False", "{resolved}");
            }
            Ok(())
        })
        .await?;

        // A load balancer is assigned: its ingress replaces the cluster IP.
        let mut balanced = gateway_service();
        balanced["status"] = json!({"loadBalancer": {"ingress": [
        {"ip": "203.0.113.7"}, {"hostname": "lb.example.net"}]}});
        cluster
            .apply_status(&balanced, "test-load-balancer")
            .await?;
        eventually(PROPAGATION, async || {
            let edge = cluster.get(&edge_gateway(edge_port)).await?;
            ensure!(
                edge["status"]["addresses"]
                    == json!([{"type": "IPAddress", "value": "203.0.113.7"},
                          {"type": "Hostname", "value": "lb.example.net"}]),
                "{}",
                edge["status"]
            );
            Ok(())
        })
        .await?;
        let pinned = cluster.get(&gateway(port, None)).await?;
        assert_eq!(
            pinned["status"]["addresses"],
            json!([{"type": "IPAddress", "value": "127.0.0.1"}])
        );

        // No route of `gw` uses the Service any more (the ListenerSet's route still does, but its
        // ancestor is `edge`): our `gw` entry goes, theirs stays.
        let mut moved = shop.clone();
        moved["spec"]["rules"] = json!([rule(vec![], vec![service_ref("pay")])]);
        cluster.apply(&moved).await?;
        eventually(PROPAGATION, async || {
            let ancestors = policy_ancestors(&cluster, &policy).await?;
            let ours: Vec<&Value> = ancestors
                .iter()
                .filter(|a| a["controllerName"] == OURS)
                .map(|a| &a["ancestorRef"]["name"])
                .collect();
            ensure!(ours == ["edge"], "ours: {ours:?}");
            ensure!(ancestors.len() == 2, "ancestors: {ancestors:?}");
            Ok(())
        })
        .await?;
        anyhow::Ok(())
    }
    .await;
    process.print_logs_on_error(&checked);
    checked
}

/// A kind the write counter watches.
struct Counted {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
}

/// The kinds whose status the two-replica test counts.
const COUNTED: [Counted; 3] = [
    Counted {
        group: "gateway.networking.k8s.io",
        kind: "GatewayClass",
        plural: "gatewayclasses",
    },
    Counted {
        group: "gateway.networking.k8s.io",
        kind: "Gateway",
        plural: "gateways",
    },
    Counted {
        group: "gateway.networking.k8s.io",
        kind: "HTTPRoute",
        plural: "httproutes",
    },
];

/// What the watches saw, per object (`Kind name`).
#[derive(Default)]
struct WriteLog {
    /// The generation and status last seen.
    last: BTreeMap<String, (Value, Value)>,
    /// Changes of `status` without a change of generation: status writes.
    status_writes: BTreeMap<String, usize>,
    /// Changes of generation: spec edits.
    spec_edits: BTreeMap<String, usize>,
    /// Status writes after which field manager `portcullis` owned no status field.
    not_ours: Vec<String>,
    /// Watches that ended or failed (the counts are then incomplete).
    ended: Vec<String>,
}

/// Every status write to the objects of [`COUNTED`], seen by watches opened from a list (so
/// from a known resourceVersion on, without gaps).
#[derive(Clone, Default)]
struct StatusWrites {
    log: Arc<Mutex<WriteLog>>,
}

impl StatusWrites {
    /// Lists each counted kind and watches it from there.
    async fn start(client: kube::Client) -> anyhow::Result<StatusWrites> {
        let writes = StatusWrites::default();
        for counted in COUNTED {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(counted.group, "v1", counted.kind),
                counted.plural,
            );
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let list = api.list(&ListParams::default()).await?;
            for object in &list.items {
                writes.observe(counted.kind, object);
            }
            let version = list
                .metadata
                .resource_version
                .context("list resourceVersion")?;
            let mut events = api
                .watch(&WatchParams::default().timeout(290), &version)
                .await?
                .boxed();
            let writes_task = writes.clone();
            tokio::spawn(async move {
                while let Some(event) = events.next().await {
                    match event {
                        Ok(WatchEvent::Added(object) | WatchEvent::Modified(object)) => {
                            writes_task.observe(counted.kind, &object);
                        }
                        Ok(WatchEvent::Deleted(_) | WatchEvent::Bookmark(_)) => {}
                        Ok(WatchEvent::Error(error)) => {
                            writes_task.ended(format!("{}: {error}", counted.kind));
                            return;
                        }
                        Err(error) => {
                            writes_task.ended(format!("{}: {error}", counted.kind));
                            return;
                        }
                    }
                }
                writes_task.ended(format!("{}: watch ended", counted.kind));
            });
        }
        Ok(writes)
    }

    fn log(&self) -> std::sync::MutexGuard<'_, WriteLog> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn observe(&self, kind: &str, object: &DynamicObject) {
        let key = format!(
            "{kind} {}",
            object.metadata.name.as_deref().unwrap_or_default()
        );
        let generation = json!(object.metadata.generation);
        let status = object.data["status"].clone();
        let by_us = object
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|entry| {
                entry.manager.as_deref() == Some("portcullis")
                    && entry.subresource.as_deref() == Some("status")
            });
        let mut log = self.log();
        if let Some((last_generation, last_status)) = log.last.get(&key).cloned() {
            if last_generation != generation {
                *log.spec_edits.entry(key.clone()).or_default() += 1;
            } else if last_status != status {
                *log.status_writes.entry(key.clone()).or_default() += 1;
                if !by_us {
                    log.not_ours.push(key.clone());
                }
            }
        }
        log.last.insert(key, (generation, status));
    }

    fn ended(&self, why: String) {
        self.log().ended.push(why);
    }

    /// Status writes per object so far; fails when a watch ended (the counts would be short)
    /// or a write was not ours.
    fn counts(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        let log = self.log();
        ensure!(log.ended.is_empty(), "a watch ended: {:?}", log.ended);
        ensure!(
            log.not_ours.is_empty(),
            "status written by another manager: {:?}",
            log.not_ours
        );
        Ok(log.status_writes.clone())
    }

    fn spec_edits(&self, key: &str) -> usize {
        self.log().spec_edits.get(key).copied().unwrap_or(0)
    }
}

/// The line the status writer logs after a round that wrote something.
const WROTE: &str = "status written";

#[tokio::test]
async fn two_replicas_write_each_status_once_and_nothing_while_quiet() -> anyhow::Result<()> {
    const ROUTES: usize = 3;
    let _one_at_a_time = timed_load().await;
    let cluster = TestCluster::start().await?;
    let port = free_port();
    let route = |index: usize| {
        http_route(
            &format!("r{index}"),
            &[&format!("r{index}.example")],
            vec![rule(vec![], vec![service_ref("cart")])],
        )
    };
    // No spec.addresses: each replica binds its own --bind address (two processes, one host).
    let mut unbound = gateway(port, None);
    unbound["spec"]
        .as_object_mut()
        .context("spec")?
        .remove("addresses");
    let mut objects = vec![
        namespace(NS),
        gateway_class(),
        unbound,
        service(NS, "cart", None),
    ];
    objects.extend((0..ROUTES).map(route));
    for object in &objects {
        cluster.apply(object).await?;
    }
    let writes = StatusWrites::start(cluster.client()).await?;

    let replica = async |identity: &str, bind: &str| {
        let flags = [
            "--bind",
            bind,
            "--lease-identity",
            identity,
            "--lease-duration",
            "9s",
        ];
        start_gateway(&cluster.kubeconfig(), &flags).await
    };
    let first = replica("replica-a", "127.0.0.1").await?;
    let second = replica("replica-b", "127.0.0.2").await?;

    // Every object gets our status, once.
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    expected.insert(format!("GatewayClass {GATEWAY_CLASS}"), 1);
    expected.insert(format!("Gateway {GATEWAY}"), 1);
    for index in 0..ROUTES {
        expected.insert(format!("HTTPRoute r{index}"), 1);
    }
    eventually(PROPAGATION, async || {
        let counts = writes.counts()?;
        ensure!(
            expected.keys().all(|key| counts.contains_key(key)),
            "written so far: {counts:?}"
        );
        Ok(())
    })
    .await?;

    // Quiet: two Lease renewals (every third of the 9 s duration, long enough that a loaded
    // machine does not lose the Lease), and nothing is written again by either replica.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(writes.counts()?, expected, "status writes per object");

    // Exactly one replica wrote: the Lease holder.
    let holder = lease_holder(&cluster).await?.context("no Lease holder")?;
    let (leader, follower) = if holder == "replica-a" {
        (&first, &second)
    } else {
        (&second, &first)
    };
    assert!(
        leader.stderr_text().contains(WROTE),
        "the leader wrote nothing"
    );
    assert!(
        !follower.stderr_text().contains(WROTE),
        "the follower wrote status:\n{}",
        follower.stderr_text()
    );

    // A spec edit of one route: one write of that route's status, none of anything else.
    let mut edited = route(1);
    edited["spec"]["hostnames"] = json!(["r1.example", "www.r1.example"]);
    cluster.apply(&edited).await?;
    expected.insert("HTTPRoute r1".to_owned(), 2);
    eventually(PROPAGATION, async || {
        let counts = writes.counts()?;
        ensure!(counts.get("HTTPRoute r1") == Some(&2), "{counts:?}");
        Ok(())
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        writes.counts()?,
        expected,
        "status writes per object after the edit"
    );
    assert_eq!(writes.spec_edits("HTTPRoute r1"), 1);
    let written = cluster.get(&edited).await?;
    let accepted = find_condition(&written["status"]["parents"][0]["conditions"], "Accepted")
        .context("Accepted")?;
    assert_eq!(accepted["observedGeneration"], 2, "{accepted}");
    assert!(
        !follower.stderr_text().contains(WROTE),
        "the follower wrote status after the edit"
    );
    Ok(())
}
