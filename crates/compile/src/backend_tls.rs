//! BackendTLSPolicy (GEP-1897): which backends the gateway reaches over TLS, with what server
//! name and trust, and the policies' status.
//!
//! - **Targets**: a core `Service` (optionally one port, by `sectionName` = port name) or, as
//!   an implementation-specific extension, a `portcullis.dev` `Backend`. A policy naming a
//!   port beats one naming the whole Service for that port; two policies on the same target and
//!   section conflict, and the older one (then the first by namespace/name) wins: the other is
//!   `Accepted=False` `Conflicted` and has no effect.
//! - **Validation**: `hostname` is the SNI, and the verified name unless `subjectAltNames` are
//!   given (then only they are verified). Trust comes from `caCertificateRefs` (ConfigMap or
//!   Secret `ca.crt`, in the policy's namespace) or `wellKnownCACertificates: System`.
//! - **Failing closed**: a winning policy that cannot be used (no valid CA certificate, invalid
//!   settings) makes its backends unusable rather than cleartext: the backendRefs answer 500
//!   and the route's `ResolvedRefs` names the policy. A backend is never contacted in cleartext
//!   while a policy targets it.
//! - **Status**: one `status.ancestors[]` entry per Gateway whose HTTPRoutes or GRPCRoutes
//!   reference a targeted Service port (a rule's backendRefs, or a `requestMirror` /
//!   `externalAuth` filter's: Gateway API v1.6 lists those among the extended uses), with
//!   `Accepted` and `ResolvedRefs`.
//! - **Not honoured on L4 routes**: TLSRoute and TCPRoute backends resolve through the same
//!   table and carry the policy's settings, but the L4 path connects in clear; v1.6 makes
//!   re-encryption behind a `Terminate` TLSRoute an extended feature we do not claim yet
//!   (docs/architecture/gateway-api-v1.6.md).
//!
//! It builds [`UpstreamTls`] (rustls configs, one per Gateway client certificate); it does not
//! decide which listener presents which certificate (`client_certificate`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use model::Store;
use model::gateway_api::{BackendTlsPolicy, BackendTlsPolicyValidationSubjectAltNamesType};
use snapshot::backend::AppProtocol;
use snapshot::backend::tls::{ClientCertificate, UpstreamTls};
use snapshot::backend::tls::{SubjectAltName, TrustAnchors, UpstreamTlsSettings};

use crate::CompileOptions;
use crate::ancestors::{backend_uses, gateway_ancestor};
use crate::backend_ref::RefProblem;
use crate::ca_certificate::{CaCertificateRef, resolve_ca_certificates};
use crate::listener::Listeners;
use crate::problems::{FieldPath, Problem, Problems};
use crate::status::{Condition, ObjectStatus, StatusReport};

const PORTCULLIS_GROUP: &str = model::kind::PORTCULLIS_GROUP;

/// What a policy can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum TargetKind {
    /// A core Service (sectionName: a port name).
    Service,
    /// Our `Backend` kind (no sections).
    Backend,
}

/// A policy target: kind, namespace, name.
type TargetKey = (TargetKind, model::Name, String);

/// A target as a policy names it: kind, name (in the policy's namespace), sectionName.
type Target = (TargetKind, String, Option<String>);

/// Every BackendTLSPolicy, compiled, with the winner for each target and section. Equal
/// when the backends they apply to would get the same TLS (see `UpstreamTls`'s equality).
#[derive(Default, PartialEq)]
pub(crate) struct BackendTlsPolicies {
    policies: Vec<CompiledPolicy>,
    /// Per target: (sectionName, index of the winning policy).
    winners: HashMap<TargetKey, Vec<(Option<String>, usize)>>,
}

#[derive(PartialEq)]
struct CompiledPolicy {
    namespace: String,
    name: String,
    /// Targets that exist, with their sectionName.
    targets: Vec<Target>,
    /// Every target of a supported kind, found or not: where ancestors come from, so a policy
    /// on a missing port still shows its status on the Gateways using the Service.
    referenced: Vec<Target>,
    /// The TLS its backends get; `Err` makes them unusable (the problem says why).
    tls: Result<PolicyTls, Problem>,
    accepted: Condition,
    resolved_refs: Condition,
    /// Field-level problems, each with its reason.
    problems: Problems,
}

#[derive(PartialEq)]
struct PolicyTls {
    http1: Arc<UpstreamTls>,
    h2: Arc<UpstreamTls>,
}

impl BackendTlsPolicies {
    /// Compiles every policy. `clients` are the Gateways' backend client certificates: every
    /// policy builds a config for each.
    pub(crate) fn compile(
        store: &Store,
        options: &CompileOptions,
        clients: &[Arc<ClientCertificate>],
    ) -> BackendTlsPolicies {
        let mut ordered: Vec<(&model::NamespacedName, &BackendTlsPolicy)> = store
            .backend_tls_policies
            .iter()
            .map(|(key, policy)| (key, policy.as_ref()))
            .collect();
        // GEP-1897 precedence: oldest first, then namespace/name.
        ordered.sort_by_key(|((namespace, name), policy)| {
            (
                policy
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0.as_second()),
                namespace.clone(),
                name.clone(),
            )
        });
        let mut compiled = BackendTlsPolicies::default();
        for ((namespace, name), policy) in ordered {
            let mut policy = compile_policy(store, options, clients, namespace, name, policy);
            let index = compiled.policies.len();
            let mut lost_to = Vec::new();
            for (kind, target, section) in &policy.targets {
                let key = (*kind, namespace.clone(), target.clone());
                let claims = compiled.winners.entry(key).or_default();
                match claims.iter().find(|(s, _)| s == section) {
                    Some((_, winner)) => lost_to.push(*winner),
                    None => claims.push((section.clone(), index)),
                }
            }
            if let Some(&winner) = lost_to.first() {
                let winner = &compiled.policies[winner];
                policy.accepted = Condition::no(
                    "Accepted",
                    "Conflicted",
                    format!(
                        "BackendTLSPolicy {}/{} targets the same backend and takes precedence (older, or first by name)",
                        winner.namespace, winner.name
                    ),
                );
            }
            compiled.policies.push(policy);
        }
        compiled
    }

    /// The TLS a backend gets: `None` when no policy targets it; an error when the winning
    /// policy is unusable (the backendRef must then fail, never go cleartext). `section` is
    /// the Service port's name.
    pub(crate) fn lookup(
        &self,
        kind: TargetKind,
        namespace: &str,
        name: &str,
        section: Option<&str>,
        protocol: AppProtocol,
    ) -> Option<Result<Arc<UpstreamTls>, RefProblem>> {
        let claims = self
            .winners
            .get(&(kind, namespace.into(), name.to_owned()))?;
        let by_section = section.and_then(|s| claims.iter().find(|(c, _)| c.as_deref() == Some(s)));
        let (_, index) = by_section.or_else(|| claims.iter().find(|(c, _)| c.is_none()))?;
        let policy = &self.policies[*index];
        Some(match &policy.tls {
            Ok(tls) => Ok(Arc::clone(match protocol {
                AppProtocol::H2c => &tls.h2,
                AppProtocol::Http1 | AppProtocol::WebSocket => &tls.http1,
            })),
            Err(why) => Err(RefProblem {
                reason: "InvalidBackendTLSPolicy",
                message: format!(
                    "BackendTLSPolicy {}/{} cannot be used, so the backend is not contacted: {why}",
                    policy.namespace, policy.name
                ),
            }),
        })
    }

    /// Records every policy's status: an ancestor entry per Gateway of ours whose routes use a
    /// backend the policy targets, and field-level problems.
    pub(crate) fn report(
        &self,
        store: &Store,
        options: &CompileOptions,
        listeners: &Listeners,
        status: &mut StatusReport,
    ) {
        if self.policies.is_empty() {
            return;
        }
        let uses = backend_uses(store, listeners);
        for policy in &self.policies {
            let mut object = ObjectStatus::new("BackendTLSPolicy", &policy.namespace, &policy.name);
            let mut ancestors = BTreeSet::new();
            for (kind, target, section) in &policy.referenced {
                let users = uses
                    .iter()
                    .filter(|u| u.is_of(*kind, &policy.namespace, target, section.as_deref()));
                for usage in users {
                    ancestors.extend(usage.gateways.iter().cloned());
                }
            }
            for gateway in ancestors {
                let conditions = vec![policy.accepted.clone(), policy.resolved_refs.clone()];
                object.ancestors.push(gateway_ancestor(
                    gateway,
                    None,
                    &options.controller_name,
                    conditions,
                ));
            }
            object.problems.extend(policy.problems.lines());
            // A conflict is not a field problem of the policy, but `check` must show it.
            if policy.accepted.reason == "Conflicted"
                || (policy.accepted.is_unhealthy() && policy.problems.is_empty())
            {
                let path = FieldPath::object("BackendTLSPolicy", &policy.namespace, &policy.name);
                let accepted = &policy.accepted;
                let problem = path
                    .problem(accepted.message.clone())
                    .because(accepted.reason);
                object.problems.push(problem.line());
            }
            status.objects.push(object);
        }
    }
}

/// Compiles one policy: its targets, its trust anchors and rustls configs, and its
/// `Accepted` and `ResolvedRefs` conditions. The first target or TLS problem decides
/// `Accepted`.
fn compile_policy(
    store: &Store,
    options: &CompileOptions,
    clients: &[Arc<ClientCertificate>],
    namespace: &str,
    name: &str,
    policy: &BackendTlsPolicy,
) -> CompiledPolicy {
    let path = FieldPath::object("BackendTLSPolicy", namespace, name);
    let mut problems = Problems::default();
    let (targets, referenced, mut rejection) =
        policy_targets(store, namespace, &path, policy, &mut problems);

    let at = path.field("spec.validation");
    let (trust, ref_problems) = trust_anchors(store, options, namespace, &at, policy);
    let resolved_refs = match ref_problems.first() {
        None => Condition::yes("ResolvedRefs", "ResolvedRefs", "all references resolved"),
        Some(first) => Condition::no(
            "ResolvedRefs",
            first.reason_or("InvalidCACertificateRef"),
            ref_problems.join(),
        ),
    };
    problems.extend(ref_problems);

    let tls = trust.and_then(|trust| policy_tls(&at, policy, trust, clients));
    if let Err(problem) = &tls {
        // Without a valid CA the reference problems above already say why.
        if problem.reason_or("Invalid") != "NoValidCACertificate" {
            problems.report(problem.clone());
        }
        rejection.get_or_insert_with(|| problem.clone());
    }
    let accepted = match rejection {
        None => Condition::yes("Accepted", "Accepted", "policy is accepted"),
        Some(problem) => Condition::no(
            "Accepted",
            problem.reason_or("Invalid"),
            problem.to_string(),
        ),
    };
    CompiledPolicy {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        targets,
        referenced,
        tls,
        accepted,
        resolved_refs,
        problems,
    }
}

/// The policy's targets that exist, every target of a supported kind (for ancestors), and the
/// first target problem (which rejects the policy). Every target problem is reported.
fn policy_targets(
    store: &Store,
    namespace: &str,
    path: &FieldPath,
    policy: &BackendTlsPolicy,
    problems: &mut Problems,
) -> (Vec<Target>, Vec<Target>, Option<Problem>) {
    let mut rejection = None;
    let mut targets = Vec::new();
    let mut referenced = Vec::new();
    let list = path.field("spec.targetRefs");
    for (index, target) in policy.spec.target_refs.iter().enumerate() {
        match resolve_target(store, namespace, &list.index(index), target) {
            Ok(found) => {
                referenced.push(found.clone());
                targets.push(found);
            }
            Err(problem) => {
                // A missing Service (or port) of a supported kind still has users: its
                // ancestors show why the policy does nothing.
                let kind = match (target.group.as_str(), target.kind.as_str()) {
                    ("", "Service") => Some(TargetKind::Service),
                    (PORTCULLIS_GROUP, "Backend") => Some(TargetKind::Backend),
                    _ => None,
                };
                if let Some(kind) = kind {
                    referenced.push((kind, target.name.clone(), None));
                }
                problems.report(problem.clone());
                rejection.get_or_insert(problem);
            }
        }
    }
    (targets, referenced, rejection)
}

/// The rustls side of a policy, for HTTP/1.1 and HTTP/2 backends.
fn policy_tls(
    at: &FieldPath,
    policy: &BackendTlsPolicy,
    trust: TrustAnchors,
    clients: &[Arc<ClientCertificate>],
) -> Result<PolicyTls, Problem> {
    let settings = UpstreamTlsSettings {
        server_name: policy.spec.validation.hostname.clone(),
        trust,
        subject_alt_names: subject_alt_names(at, policy)?,
    };
    let invalid = |e: String| at.problem(e).because("Invalid");
    let http1 = UpstreamTls::new(settings, clients, AppProtocol::Http1)
        .map_err(|e| invalid(e.to_string()))?;
    let h2 = http1
        .for_protocol(AppProtocol::H2c)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(PolicyTls {
        http1: Arc::new(http1),
        h2: Arc::new(h2),
    })
}

/// The target one `targetRefs` entry (`at`) names, in the policy's namespace: a Service
/// (optionally one port, by name) or our `Backend`. The problem carries the `Accepted` reason
/// (`TargetNotFound`, `Invalid`).
fn resolve_target(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    target: &model::gateway_api::BackendTlsPolicyTargetRefs,
) -> Result<Target, Problem> {
    let key = model::key(namespace, &target.name);
    let section = target.section_name.clone().filter(|s| !s.is_empty());
    match (target.group.as_str(), target.kind.as_str()) {
        ("", "Service") => {
            let Some(service) = store.services.get(&key) else {
                return Err(at
                    .problem(format!("Service {namespace}/{} not found", target.name))
                    .because("TargetNotFound"));
            };
            if let Some(section) = &section
                && !has_port_named(service, section)
            {
                return Err(at
                    .field("sectionName")
                    .problem(format!(
                        "Service {namespace}/{} has no port named {section:?}",
                        target.name
                    ))
                    .because("TargetNotFound"));
            }
            Ok((TargetKind::Service, target.name.clone(), section))
        }
        (PORTCULLIS_GROUP, "Backend") => {
            if !store.backends.contains_key(&key) {
                return Err(at
                    .problem(format!("Backend {namespace}/{} not found", target.name))
                    .because("TargetNotFound"));
            }
            if section.is_some() {
                return Err(at
                    .field("sectionName")
                    .problem("a Backend has no sections")
                    .because("Invalid"));
            }
            Ok((TargetKind::Backend, target.name.clone(), None))
        }
        (group, kind) => {
            let group = if group.is_empty() { "core" } else { group };
            Err(at
                .problem(format!(
                    "{group}/{kind} is not a supported target (core Service, portcullis.dev/Backend)"
                ))
                .because("Invalid"))
        }
    }
}

/// Whether a Service has a port of this name (a `sectionName`).
fn has_port_named(service: &model::core::Service, name: &str) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .any(|p| p.name.as_deref() == Some(name))
}

/// The trust anchors, or why there are none (with its `Accepted` reason), plus the problems
/// of individual CA references (for `ResolvedRefs`). `at` is `spec.validation`.
fn trust_anchors(
    store: &Store,
    options: &CompileOptions,
    namespace: &str,
    at: &FieldPath,
    policy: &BackendTlsPolicy,
) -> (Result<TrustAnchors, Problem>, Problems) {
    let validation = &policy.spec.validation;
    let refs = validation
        .ca_certificate_refs
        .as_deref()
        .unwrap_or_default();
    let well_known = validation
        .well_known_ca_certificates
        .as_deref()
        .filter(|w| !w.is_empty());
    let invalid = |at: &FieldPath, message: String| Err(at.problem(message).because("Invalid"));
    let system = at.field("wellKnownCACertificates");
    let trust = match (refs.is_empty(), well_known) {
        (false, None) => return referenced_trust(store, namespace, at, refs),
        (false, Some(_)) => invalid(
            at,
            "set caCertificateRefs or wellKnownCACertificates, not both".to_owned(),
        ),
        (true, None) => invalid(
            at,
            "caCertificateRefs or wellKnownCACertificates is required".to_owned(),
        ),
        (true, Some("System")) => match &options.system_roots {
            Some(roots) => Ok(TrustAnchors::System(Arc::clone(roots))),
            None => invalid(
                &system,
                "the system CA certificates could not be loaded at startup".to_owned(),
            ),
        },
        (true, Some(other)) => invalid(&system, format!("{other:?} is not supported (System is)")),
    };
    (trust, Problems::default())
}

/// Trust from `caCertificateRefs`. Some references may be invalid: the valid ones are trusted
/// (ResolvedRefs says which are not). With none valid the policy is unusable and its backends
/// are not contacted.
fn referenced_trust(
    store: &Store,
    namespace: &str,
    at: &FieldPath,
    refs: &[model::gateway_api::BackendTlsPolicyValidationCaCertificateRefs],
) -> (Result<TrustAnchors, Problem>, Problems) {
    let mut certificates = Vec::new();
    let mut problems = Problems::default();
    let list = at.field("caCertificateRefs");
    for (index, reference) in refs.iter().enumerate() {
        let reference = CaCertificateRef {
            group: &reference.group,
            kind: &reference.kind,
            name: &reference.name,
            namespace,
        };
        let found = resolve_ca_certificates(store, &list.index(index), &reference, "InvalidKind");
        certificates.extend(problems.ok(found).into_iter().flatten());
    }
    let trust = if certificates.is_empty() {
        Err(list
            .problem(format!("no valid CA certificate: {}", problems.join()))
            .because("NoValidCACertificate"))
    } else {
        Ok(TrustAnchors::Certificates(certificates))
    };
    (trust, problems)
}

/// `subjectAltNames` (below `at`, `spec.validation`): the names verified instead of
/// `hostname`.
fn subject_alt_names(
    at: &FieldPath,
    policy: &BackendTlsPolicy,
) -> Result<Vec<SubjectAltName>, Problem> {
    let entries = policy
        .spec
        .validation
        .subject_alt_names
        .as_deref()
        .unwrap_or_default();
    let list = at.field("subjectAltNames");
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let invalid = |message: &str| list.index(index).problem(message).because("Invalid");
            match entry.r#type {
                BackendTlsPolicyValidationSubjectAltNamesType::Hostname => entry
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .map(SubjectAltName::Hostname)
                    .ok_or_else(|| invalid("type Hostname needs hostname")),
                BackendTlsPolicyValidationSubjectAltNamesType::Uri => entry
                    .uri
                    .clone()
                    .filter(|u| u.contains(':'))
                    .map(SubjectAltName::Uri)
                    .ok_or_else(|| invalid("type URI needs a uri with a scheme")),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
