//! The Compositions' statuses, computed again after every change but one of EndpointSlices
//! alone: a few objects, each of which depends on its parts' Services, Backends and
//! ReferenceGrants and on the routes naming it (its ancestors), which any such step may change.

use std::sync::Arc;

use model::Store;

use super::{Compiler, Step};
use crate::ancestors::route_gateways;
use crate::backend_ref::{BackendTable, ReadKey};
use crate::changes::StoreChanges;
use crate::composition;
use crate::status::ObjectStatus;

impl Compiler {
    /// Computes every Composition's status again and puts them in `step` when any changed; a
    /// changed Composition counts as compiled again (one that is gone then has no status).
    pub(super) fn report_compositions(
        &mut self,
        store: &Store,
        changes: &StoreChanges,
        step: &mut Step,
    ) {
        let statuses = self.composition_statuses(store);
        if statuses != self.composition_statuses {
            step.statuses.extend(statuses.iter().cloned());
        }
        self.composition_statuses = statuses;
        step.recompiled.extend(
            changes
                .compositions
                .iter()
                .map(|(namespace, name)| format!("{} {namespace}/{name}", composition::KIND)),
        );
    }

    /// The status of every Composition of `store`, towards the Gateways of the routes of ours
    /// that named it (the units that looked it up). Its parts resolve against a backend table
    /// of its own, with the context's policies: the snapshot's table is not touched.
    pub(super) fn composition_statuses(&self, store: &Store) -> Vec<ObjectStatus> {
        if store.compositions.is_empty() {
            return Vec::new();
        }
        let mut table = BackendTable::with_tls_policies(Arc::clone(&self.context.tls_policies))
            .with_traffic_policies(Arc::clone(&self.context.traffic_policies));
        let listeners = &self.context.listeners;
        store
            .compositions
            .iter()
            .map(|((namespace, name), object)| {
                let read = ReadKey::Composition(namespace.clone(), name.clone());
                let readers = self.readers.get(&read).into_iter().flatten();
                let gateways = readers
                    .flat_map(|unit| {
                        let (kind, route_namespace, route) = &**unit;
                        route_gateways(store, listeners, kind.as_str(), route_namespace, route)
                    })
                    .collect();
                composition::status(
                    store,
                    (namespace, name),
                    &object.spec,
                    &mut table,
                    &self.options.controller_name,
                    gateways,
                )
            })
            .collect()
    }
}
