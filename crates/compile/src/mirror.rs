//! The HTTPRoute `RequestMirror` filter: share validation and backendRef resolution into a
//! [`snapshot::Mirror`].
//!
//! A mirror's backendRef resolves exactly like a rule's (kinds, ReferenceGrant, Service ports,
//! our `Backend`) through [`BackendTable::resolve`], so the registry links its backend like any
//! other. A ref that does not resolve is reported (the route's `ResolvedRefs` becomes False)
//! and the mirror is left out; the rule keeps serving, as the API requires.

use model::Store;
use model::gateway_api::HttpRouteRulesFiltersRequestMirror;
use snapshot::{Mirror, MirrorShare};

use crate::backend_ref::{BackendRefSpec, BackendTable, Referrer};
use crate::problems::{FieldPath, Problem, Problems};

/// What a filter list needs to resolve its mirrors: the store, the route doing the
/// referencing, the snapshot's backend table, and where unresolvable refs are reported.
pub(crate) struct MirrorTargets<'a> {
    pub(crate) store: &'a Store,
    pub(crate) referrer: &'a Referrer<'a>,
    pub(crate) backends: &'a mut BackendTable,
    /// Every mirror ref that did not resolve, with its `ResolvedRefs` reason.
    pub(crate) problems: &'a mut Problems,
}

impl MirrorTargets<'_> {
    /// Compiles one `requestMirror` block (`at` is its field path). `Ok(None)`: the mirror is
    /// left out (its ref does not resolve, already reported; or its share is 0). `Err`: the
    /// block is invalid, which invalidates the rule.
    pub(crate) fn compile(
        &mut self,
        at: &FieldPath,
        spec: &HttpRouteRulesFiltersRequestMirror,
    ) -> Result<Option<Mirror>, Problem> {
        let share = share(at, spec)?;
        let backend_ref = &spec.backend_ref;
        let reference = BackendRefSpec {
            group: backend_ref.group.as_deref().unwrap_or(""),
            kind: backend_ref.kind.as_deref().unwrap_or("Service"),
            name: &backend_ref.name,
            namespace: backend_ref
                .namespace
                .as_deref()
                .unwrap_or(self.referrer.namespace),
            port: backend_ref.port,
        };
        let resolved = self.backends.resolve(
            self.store,
            self.referrer,
            &reference,
            &at.field("backendRef"),
        );
        match resolved {
            Ok(_) if share.is_never() => Ok(None),
            Ok(backend) => Ok(Some(Mirror::new(backend, share))),
            Err(problem) => {
                self.problems.report(problem);
                Ok(None)
            }
        }
    }
}

/// Validates one `requestMirror` block without resolving its backendRef: for the mirrors of a
/// filter list already known to be invalid, whose rule is dropped (see
/// `filter::compile_filters`).
pub(crate) fn validate(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersRequestMirror,
) -> Result<(), Problem> {
    share(at, spec).map(drop)
}

/// `percent` (0-100) or `fraction` (numerator <= denominator, denominator > 0, default 100);
/// neither means every request.
fn share(
    at: &FieldPath,
    spec: &HttpRouteRulesFiltersRequestMirror,
) -> Result<MirrorShare, Problem> {
    match (spec.percent, &spec.fraction) {
        (None, None) => Ok(MirrorShare::ALL),
        (Some(_), Some(_)) => Err(at.problem("only one of percent and fraction may be set")),
        (Some(percent), None) => u32::try_from(percent)
            .ok()
            .and_then(|percent| MirrorShare::new(percent, 100))
            .ok_or_else(|| {
                at.field("percent")
                    .problem(format!("{percent} is not between 0 and 100"))
            }),
        (None, Some(fraction)) => {
            let denominator = fraction.denominator.unwrap_or(100);
            let numerator = fraction.numerator;
            u32::try_from(numerator)
                .ok()
                .zip(u32::try_from(denominator).ok())
                .and_then(|(n, d)| MirrorShare::new(n, d))
                .ok_or_else(|| {
                    at.field("fraction").problem(format!(
                        "{numerator}/{denominator} must have 0 <= numerator <= denominator and denominator > 0"
                    ))
                })
        }
    }
}

#[cfg(test)]
mod tests;
