//! `Composition` (`portcullis.dev/v1alpha1`) → [`snapshot::composition::Composition`]: the
//! parts' templates parsed and their names resolved to indices, their dependencies checked for
//! cycles, their backendRefs resolved, defaults applied; and the Composition's own status.
//!
//! An HTTPRoute rule names a Composition with an `ExtensionRef` filter (`group:
//! portcullis.dev, kind: Composition`), looked up in the route's namespace
//! ([`for_rule`], called by `filter`). Such a rule answers itself with the composed document:
//! its backendRefs, if it has any, are not used, so they are neither resolved nor reported
//! (`http_route::compile_rule`). The rule's other filters are compiled as usual and stay on it
//! (the data plane applies header modifiers and CORS around the composition); a
//! `RequestRedirect` on the same rule is an error (both answer the request). A backendRef's
//! filters and GRPCRoute rules cannot name one.
//!
//! What is fatal and what is not:
//! - a Composition that is not found, or is invalid (any problem of [`validate`]), makes each
//!   rule naming it answer 500: the filter must not be skipped (Gateway API
//!   `HTTPRouteFilter.extensionRef`). The route keeps `Accepted`, and its `ResolvedRefs` is
//!   False (`BackendNotFound`, or `InvalidComposition` with the Composition's problems);
//! - a part whose backendRef does not resolve is not: the part gets
//!   [`BackendTarget::Invalid`] and fails at run time (`backend-not-found`), and the
//!   Composition's `ResolvedRefs` says why. Its backendRefs resolve exactly as a route's do
//!   (`BackendTable::resolve`: kinds, Service ports, our `Backend`, BackendTLSPolicy and
//!   BackendTrafficPolicy); another namespace needs a ReferenceGrant there `from` group
//!   `portcullis.dev`, kind `Composition`.
//!
//! Each rule compiles the Composition it names on its own (its parts' backends take the rule's
//! BackendTrafficPolicy scope, as the rule's own backendRefs do), so the snapshot holds one
//! `Arc` per rule; the incremental compiler records the lookup (`ReadKey::Composition`) and
//! compiles the rule again when the Composition, or a Service or Backend of its parts, changes.
//! The Composition's status ([`status`]) is compiled once per Composition against a backend
//! table of its own: `Accepted` and `ResolvedRefs`, towards every Gateway of ours whose routes
//! name it (GEP-713 `ancestors`, as our policies report).

mod template;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use model::Store;
use model::composition::CompositionSpec;
use snapshot::composition::{Composition, Part};
use snapshot::{BackendTarget, DirectResponse};

use crate::ancestors::gateway_ancestor;
use crate::backend_ref::{BackendRefSpec, BackendTable, ReadKey, Referrer};
use crate::mirror::MirrorTargets;
use crate::problems::{FieldPath, Problems};
use crate::status::{Condition, ObjectStatus};

pub(crate) use template::template_text;
use validate::{Draft, validate};

/// The kind, as status, field paths and ReferenceGrants spell it.
pub(crate) const KIND: &str = "Composition";

/// A Composition compiled against a store and a backend table.
pub(crate) struct CompiledComposition {
    /// The composition, when it is valid (`invalid` is empty).
    pub(crate) composition: Option<Arc<Composition>>,
    /// Why it is not valid: every problem, each naming its field.
    pub(crate) invalid: Problems,
    /// The parts' backendRefs that do not resolve, each with its `ResolvedRefs` reason.
    pub(crate) refs: Problems,
}

/// Whether the parts' backendRefs are resolved when the Composition is invalid.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolve {
    /// Always: for its status, which reports every problem (against a table of its own).
    Always,
    /// Only when it is valid: for a rule, whose table should not gain backends nothing uses.
    WhenValid,
}

/// Compiles the Composition `namespace/name`: [`validate`], then its parts' backendRefs
/// through `backends` (see [`Resolve`]).
pub(crate) fn compile(
    store: &Store,
    (namespace, name): (&str, &str),
    spec: &CompositionSpec,
    backends: &mut BackendTable,
    resolve: Resolve,
) -> CompiledComposition {
    let at = FieldPath::object(KIND, namespace, name).field("spec");
    let mut invalid = Problems::default();
    let draft = validate(&at, spec, &mut invalid);
    let mut refs = Problems::default();
    let targets = if invalid.is_empty() || resolve == Resolve::Always {
        resolve_parts(store, namespace, &at, spec, backends, &mut refs)
    } else {
        Vec::new()
    };
    let composition = invalid.is_empty().then(|| {
        Arc::new(assemble(
            format!("{KIND} {namespace}/{name}"),
            draft,
            targets,
        ))
    });
    CompiledComposition {
        composition,
        invalid,
        refs,
    }
}

/// The snapshot's Composition from a draft without problems and its parts' backends (one per
/// part, in order).
fn assemble(name: String, draft: Draft, targets: Vec<BackendTarget>) -> Composition {
    let mut is_read = vec![false; draft.parts.len()];
    for read in draft.parts.iter().flat_map(|part| &part.depends_on) {
        if let Some(flag) = is_read.get_mut(*read) {
            *flag = true;
        }
    }
    let parts = draft
        .parts
        .into_iter()
        .zip(targets)
        .zip(is_read)
        .map(|((part, backend), is_read)| Part {
            name: part.name,
            backend,
            method: part.method,
            target: part.target,
            forward_headers: part.forward_headers,
            set_headers: part.set_headers,
            timeout: part.timeout,
            required: part.required,
            select: part.select,
            depends_on: part.depends_on,
            is_read,
        })
        .collect();
    Composition {
        name: name.into(),
        path_pattern: draft.path_pattern,
        parts,
        merge: draft.merge,
        timeout: draft.timeout,
        max_part_bytes: draft.max_part_bytes,
    }
}

/// Resolves every part's backendRef (`spec.parts[i].backendRef`) as a route's backendRef
/// resolves, the Composition being the referrer. One target per part, in order; a ref that
/// does not resolve is reported in `refs` and gets a 500 its part fails with.
fn resolve_parts(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    spec: &CompositionSpec,
    backends: &mut BackendTable,
    refs: &mut Problems,
) -> Vec<BackendTarget> {
    let referrer = Referrer {
        group: model::kind::PORTCULLIS_GROUP,
        kind: KIND,
        namespace,
    };
    let list = at.field("parts");
    spec.parts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            let backend_ref = &part.backend_ref;
            let reference = BackendRefSpec {
                group: backend_ref.group.as_deref().unwrap_or(""),
                kind: backend_ref.kind.as_deref().unwrap_or("Service"),
                name: &backend_ref.name,
                namespace: backend_ref.namespace.as_deref().unwrap_or(namespace),
                port: backend_ref.port,
            };
            let ref_at = list.index(index).field("backendRef");
            match backends.resolve(store, &referrer, &reference, &ref_at) {
                Ok(index) => BackendTarget::Backend(index),
                Err(problem) => {
                    let body = format!("no backend for part {:?}: {problem}\n", part.name);
                    refs.report(problem);
                    BackendTarget::Invalid(internal_error(body))
                }
            }
        })
        .collect()
}

/// The Composition an HTTPRoute rule's `ExtensionRef` filter (at `at`) names, in the route's
/// namespace, compiled for that rule (its parts' backends in `targets.backends`). `Err`: the
/// 500 the rule answers instead, because the Composition is not found or is invalid; the
/// problem is reported in `targets.problems` (the route's `ResolvedRefs`).
pub(crate) fn for_rule(
    at: &FieldPath,
    name: &str,
    targets: &mut MirrorTargets<'_>,
) -> Result<Arc<Composition>, DirectResponse> {
    let namespace = targets.referrer.namespace;
    targets
        .backends
        .read(ReadKey::Composition(namespace.into(), name.into()));
    let key = model::key(namespace, name);
    let Some(object) = targets.store.compositions.get(&key) else {
        let problem = at
            .problem(format!("{KIND} {namespace}/{name} not found"))
            .because("BackendNotFound");
        let body = format!("this rule's Composition cannot be used: {problem}\n");
        targets.problems.report(problem);
        return Err(internal_error(body));
    };
    let compiled = compile(
        targets.store,
        (namespace, name),
        &object.spec,
        targets.backends,
        Resolve::WhenValid,
    );
    if let Some(composition) = compiled.composition {
        return Ok(composition);
    }
    let problem = at
        .problem(format!(
            "{KIND} {namespace}/{name} is not valid: {}",
            compiled.invalid.join()
        ))
        .because("InvalidComposition");
    let body = format!("this rule's Composition cannot be used: {problem}\n");
    targets.problems.report(problem);
    Err(internal_error(body))
}

/// A 500 with a plain-text body saying why (the Gateway API's answer for what cannot be
/// served).
fn internal_error(body: String) -> DirectResponse {
    DirectResponse {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        body: Bytes::from(body),
    }
}

/// The status of the Composition `namespace/name`: `Accepted` (False, reason `Invalid`, with
/// every problem of [`validate`]) and `ResolvedRefs` (False with the first unresolved part's
/// reason), with one `problems` line each, towards each of `gateways` (the Gateways of ours
/// whose routes name it). `backends` is a table of its own: nothing it resolves reaches the
/// snapshot.
pub(crate) fn status(
    store: &Store,
    (namespace, name): (&str, &str),
    spec: &CompositionSpec,
    backends: &mut BackendTable,
    controller_name: &Arc<str>,
    gateways: BTreeSet<model::NamespacedName>,
) -> ObjectStatus {
    let compiled = compile(store, (namespace, name), spec, backends, Resolve::Always);
    let mut status = ObjectStatus::new(KIND, namespace, name);
    status.conditions.push(if compiled.invalid.is_empty() {
        Condition::yes("Accepted", "Accepted", "the composition is valid")
    } else {
        Condition::no("Accepted", "Invalid", compiled.invalid.join())
    });
    status.conditions.push(match compiled.refs.first() {
        None => Condition::yes("ResolvedRefs", "ResolvedRefs", "all references resolved"),
        Some(first) => Condition::no(
            "ResolvedRefs",
            first.reason_or("BackendNotFound"),
            compiled.refs.join_lines(),
        ),
    });
    status.problems = compiled.invalid.lines();
    status.problems.extend(compiled.refs.lines());
    status.ancestors = gateways
        .into_iter()
        .map(|gateway| gateway_ancestor(gateway, None, controller_name, status.conditions.clone()))
        .collect();
    status
}
