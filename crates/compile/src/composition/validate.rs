//! Everything a Composition must satisfy before it can be used, field by field: part names,
//! methods, templates (references resolved to indices), headers, pointers, durations, sizes,
//! the merge type, and dependencies without cycles. Every problem is reported, each naming its
//! field; nothing here looks at the store (backendRefs are resolved by the caller).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};
use model::composition::{CompositionPart, CompositionSpec, MAX_PART_NAME_LENGTH, MAX_PARTS};
use snapshot::composition::{
    DEFAULT_MAX_PART_BYTES, DEFAULT_TIMEOUT, Merge, PathPattern, RawPiece, RawReference, Template,
    dependency_order, is_name, is_pointer,
};

use super::template::{self, PatternScope, TemplateScope, resolve_header_value, resolve_target};
use crate::problems::{FieldPath, Problem, Problems};
use crate::{byte_size, duration};

/// A Composition as validated, without its parts' backends. Complete only when no problem was
/// reported: a part with a problem is left out of `parts`.
pub(super) struct Draft {
    pub(super) path_pattern: Option<PathPattern>,
    pub(super) parts: Vec<DraftPart>,
    pub(super) merge: Merge,
    pub(super) timeout: Duration,
    pub(super) max_part_bytes: usize,
}

/// A part as validated (see [`snapshot::composition::Part`]).
pub(super) struct DraftPart {
    pub(super) name: Arc<str>,
    pub(super) method: Method,
    pub(super) target: Template,
    pub(super) forward_headers: Vec<HeaderName>,
    pub(super) set_headers: Vec<(HeaderName, Template)>,
    pub(super) timeout: Option<Duration>,
    pub(super) required: bool,
    pub(super) select: Option<String>,
    pub(super) depends_on: Vec<usize>,
}

/// Validates `spec` (`at` is its path, `Composition ns/name spec`), reporting every problem.
pub(super) fn validate(at: &FieldPath, spec: &CompositionSpec, problems: &mut Problems) -> Draft {
    let pattern = path_pattern(at, spec, problems);
    let timeout = positive_duration(&at.field("timeout"), spec.timeout.as_deref(), problems)
        .unwrap_or(DEFAULT_TIMEOUT);
    let deadline = Deadline {
        timeout,
        is_default: spec.timeout.is_none(),
    };
    let max_part_bytes = max_part_bytes(at, spec, problems);
    let merge = merge(at, spec, problems);
    let list = at.field("parts");
    count_parts(&list, spec.parts.len(), problems);
    let names = part_names(&list, &spec.parts, problems);
    let mut parts = Vec::with_capacity(spec.parts.len());
    let mut depends_on = vec![Vec::new(); spec.parts.len()];
    for (index, part) in spec.parts.iter().enumerate() {
        let scope = TemplateScope {
            pattern: &pattern,
            parts: &names,
            this: index,
        };
        depends_on[index] = declared_reads(part, &names, index);
        if let Some(part) = validate_part(&list.index(index), part, &scope, deadline, problems) {
            parts.push(part);
        }
    }
    // From what the templates name, whatever else is wrong with them: a cycle is reported
    // with the other problems, not only once they are fixed.
    check_cycles(&list, &spec.parts, &depends_on, problems);
    let uses_path = parts.iter().any(|part| {
        let targets = std::iter::once(&part.target).chain(part.set_headers.iter().map(|h| &h.1));
        targets.flat_map(|t| &t.pieces).any(template::reads_path)
    });
    Draft {
        // Plain data for the data plane: no pattern when no template reads the path.
        path_pattern: match pattern {
            PatternScope::Valid(pattern) if uses_path => Some(pattern),
            _ => None,
        },
        parts,
        merge,
        timeout,
        max_part_bytes,
    }
}

/// The composition's deadline, which a part's timeout must not exceed.
#[derive(Clone, Copy)]
struct Deadline {
    timeout: Duration,
    /// Whether it is the default (`spec.timeout` not set), for the message.
    is_default: bool,
}

/// `spec.pathPattern`, parsed.
fn path_pattern(at: &FieldPath, spec: &CompositionSpec, problems: &mut Problems) -> PatternScope {
    let Some(text) = &spec.path_pattern else {
        return PatternScope::Absent;
    };
    match PathPattern::parse(text) {
        Ok(pattern) => PatternScope::Valid(pattern),
        Err(error) => {
            problems.report(at.field("pathPattern").problem(format!("{text:?} {error}")));
            PatternScope::Invalid
        }
    }
}

/// `spec.parts` (`list`): 1 to [`MAX_PARTS`] parts.
fn count_parts(list: &FieldPath, count: usize, problems: &mut Problems) {
    if count == 0 {
        problems.report(list.problem("at least one part is required"));
    } else if count > MAX_PARTS {
        problems.report(list.problem(format!("{count} parts; at most {MAX_PARTS} are allowed")));
    }
}

/// `spec.maxPartBytes`: a byte size of at least 1 (default 1 MiB).
fn max_part_bytes(at: &FieldPath, spec: &CompositionSpec, problems: &mut Problems) -> usize {
    let Some(quantity) = &spec.max_part_bytes else {
        return DEFAULT_MAX_PART_BYTES;
    };
    let at = at.field("maxPartBytes");
    match byte_size::parse(quantity) {
        Ok(0) => problems.report(at.problem("must be at least 1 byte")),
        Ok(bytes) => match usize::try_from(bytes) {
            Ok(bytes) => return bytes,
            Err(_) => problems.report(at.problem(format!("{bytes} bytes is too large"))),
        },
        Err(error) => problems.report(at.problem(error)),
    }
    DEFAULT_MAX_PART_BYTES
}

/// `spec.merge.type`: `Keyed` (default) or `Deep`.
fn merge(at: &FieldPath, spec: &CompositionSpec, problems: &mut Problems) -> Merge {
    match spec.merge.as_ref().and_then(|merge| merge.kind.as_deref()) {
        None | Some("Keyed") => Merge::Keyed,
        Some("Deep") => Merge::Deep,
        Some(other) => {
            problems.report(
                at.field("merge.type")
                    .problem(format!("{other:?} is not a merge type (Keyed or Deep)")),
            );
            Merge::Keyed
        }
    }
}

/// A duration field (`at`) that must be more than zero when set.
fn positive_duration(
    at: &FieldPath,
    text: Option<&str>,
    problems: &mut Problems,
) -> Option<Duration> {
    let text = text?;
    match duration::parse(text) {
        Ok(duration) if duration.is_zero() => {
            problems.report(at.problem(format!("{text:?} must be more than 0s")));
            None
        }
        Ok(duration) => Some(duration),
        Err(error) => {
            problems.report(at.problem(error));
            None
        }
    }
}

/// Each part's index by name (the first of a repeated name), after checking that every name is
/// a part name (`[A-Za-z0-9_-]`, at most 63 characters) used once.
fn part_names<'a>(
    list: &FieldPath,
    parts: &'a [CompositionPart],
    problems: &mut Problems,
) -> HashMap<&'a str, usize> {
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let at = list.index(index).field("name");
        let name = part.name.as_str();
        if !is_name(name) || name.len() > MAX_PART_NAME_LENGTH {
            problems.report(at.problem(format!(
                "{name:?} is not a part name (letters, digits, \"_\" and \"-\", at most \
                 {MAX_PART_NAME_LENGTH} characters)"
            )));
            continue;
        }
        if let Some(first) = names.get(name) {
            problems.report(at.problem(format!(
                "{name:?} is already the name of parts[{first}] (part names are unique)"
            )));
            continue;
        }
        names.insert(name, index);
    }
    names
}

/// The other parts whose responses `part`'s templates name (sorted, without repeats), read
/// from the templates that parse; unknown names and its own are left to the template checks.
fn declared_reads(part: &CompositionPart, names: &HashMap<&str, usize>, this: usize) -> Vec<usize> {
    let values = part
        .headers
        .iter()
        .flat_map(|h| h.set.iter().map(|set| set.value.as_str()));
    let mut reads: Vec<usize> = std::iter::once(part.path.as_deref().unwrap_or("/"))
        .chain(values)
        .filter_map(|text| snapshot::composition::parse_template(text).ok())
        .flatten()
        .filter_map(|piece| match piece {
            RawPiece::Value {
                reference: RawReference::Response { part, .. },
                ..
            } => names.get(part.as_str()).copied(),
            _ => None,
        })
        .filter(|&read| read != this)
        .collect();
    reads.sort_unstable();
    reads.dedup();
    reads
}

/// One part (`at` is `spec.parts[i]`); `None` when it has a problem (reported).
fn validate_part(
    at: &FieldPath,
    part: &CompositionPart,
    scope: &TemplateScope<'_>,
    deadline: Deadline,
    problems: &mut Problems,
) -> Option<DraftPart> {
    let mut local = Problems::default();
    let method = local.ok(method(&at.field("method"), part.method.as_deref()));
    let target_at = at.field("path");
    let target = match resolve_target(&target_at, part.path.as_deref().unwrap_or("/"), scope) {
        Ok(target) => Some(target),
        Err(found) => {
            local.extend(found);
            None
        }
    };
    let (forward_headers, set_headers) = headers(&at.field("headers"), part, scope, &mut local);
    let timeout = positive_duration(&at.field("timeout"), part.timeout.as_deref(), &mut local);
    if let Some(timeout) = timeout
        && timeout > deadline.timeout
    {
        let limit = deadline.timeout;
        let default = if deadline.is_default {
            ", its default"
        } else {
            ""
        };
        local.report(at.field("timeout").sentence(format!(
            "({timeout:?}) must not exceed spec.timeout ({limit:?}{default})"
        )));
    }
    if let Some(select) = &part.select
        && !is_pointer(select)
    {
        local.report(at.field("select").problem(format!(
            "{select:?} is not a JSON pointer (RFC 6901: empty, or \"/\" then tokens, \"~0\" and \
             \"~1\" the only escapes)"
        )));
    }
    let valid = local.is_empty();
    problems.extend(local);
    let (method, target) = (method?, target?);
    if !valid {
        return None;
    }
    let mut depends_on: Vec<usize> = target
        .parts_read()
        .chain(set_headers.iter().flat_map(|(_, value)| value.parts_read()))
        .collect();
    depends_on.sort_unstable();
    depends_on.dedup();
    Some(DraftPart {
        name: part.name.as_str().into(),
        method,
        target,
        forward_headers,
        set_headers,
        timeout,
        required: part.required.unwrap_or(false),
        select: part.select.clone().filter(|select| !select.is_empty()),
        depends_on,
    })
}

/// `method` (`at`): an HTTP method token, `GET` when absent. `CONNECT` asks for a tunnel, not a
/// document: refused.
fn method(at: &FieldPath, text: Option<&str>) -> Result<Method, Problem> {
    let Some(text) = text else {
        return Ok(Method::GET);
    };
    match Method::from_bytes(text.as_bytes()) {
        Ok(method) if method == Method::CONNECT => {
            Err(at.problem("CONNECT opens a tunnel; a part requests a document"))
        }
        Ok(method) => Ok(method),
        Err(_) => Err(at.problem(format!(
            "{text:?} is not an HTTP method (a token such as GET or POST)"
        ))),
    }
}

/// Headers of the connection, not of the request (RFC 9110 section 7.6.1), and the body's
/// length: the part's request framing is the data plane's, so they are neither forwarded nor
/// set.
const CONNECTION_HEADERS: [&str; 8] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A header name a part may forward or set (`at`).
fn part_header(at: FieldPath, name: &str) -> Result<HeaderName, Problem> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| at.problem(format!("{name:?} is not a valid header name")))?;
    if CONNECTION_HEADERS.contains(&header.as_str()) {
        return Err(at.problem(format!(
            "{name:?} belongs to the connection, not the request: the gateway frames a part's request itself"
        )));
    }
    Ok(header)
}

/// `headers.forward` (header names) and `headers.set` (a name and a value template each).
fn headers(
    at: &FieldPath,
    part: &CompositionPart,
    scope: &TemplateScope<'_>,
    problems: &mut Problems,
) -> (Vec<HeaderName>, Vec<(HeaderName, Template)>) {
    let Some(spec) = &part.headers else {
        return (Vec::new(), Vec::new());
    };
    let mut forward = Vec::with_capacity(spec.forward.len());
    for (index, name) in spec.forward.iter().enumerate() {
        if let Some(name) = problems.ok(part_header(at.field("forward").index(index), name)) {
            forward.push(name);
        }
    }
    let mut set = Vec::with_capacity(spec.set.len());
    for (index, header) in spec.set.iter().enumerate() {
        let entry = at.field("set").index(index);
        let name = problems.ok(part_header(entry.field("name"), &header.name));
        let value = match resolve_header_value(&entry.field("value"), &header.value, scope) {
            Ok(value) => Some(value),
            Err(found) => {
                problems.extend(found);
                None
            }
        };
        if let (Some(name), Some(value)) = (name, value) {
            set.push((name, value));
        }
    }
    (forward, set)
}

/// Reports every dependency cycle among the parts, naming the parts on it (`depends_on`: the
/// parts each part's templates read; a part with a problem reads none).
fn check_cycles(
    list: &FieldPath,
    parts: &[CompositionPart],
    depends_on: &[Vec<usize>],
    problems: &mut Problems,
) {
    let Err(stuck) = dependency_order(depends_on) else {
        return;
    };
    // `stuck` holds the parts on a cycle and those waiting on one: report the cycles.
    let mut reported = vec![false; parts.len()];
    for &start in &stuck {
        if reported[start] {
            continue;
        }
        let Some(cycle) = cycle_through(start, depends_on) else {
            continue;
        };
        for &member in &cycle {
            reported[member] = true;
        }
        let steps: Vec<String> = cycle
            .iter()
            .zip(cycle.iter().cycle().skip(1))
            .map(|(&from, &to)| format!("{} reads {}", parts[from].name, parts[to].name))
            .collect();
        problems.report(list.problem(format!(
            "dependency cycle: {} (a part runs after the parts whose responses it reads)",
            steps.join(", ")
        )));
    }
}

/// The shortest cycle through `start` (its parts in order, each reading the next, the last
/// reading `start`), if `start` is on one. Breadth-first over `depends_on`.
fn cycle_through(start: usize, depends_on: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut previous: Vec<Option<usize>> = vec![None; depends_on.len()];
    let mut queue = std::collections::VecDeque::from([start]);
    let mut seen = vec![false; depends_on.len()];
    seen[start] = true;
    while let Some(part) = queue.pop_front() {
        for &next in &depends_on[part] {
            if next == start {
                let mut cycle = vec![part];
                while let Some(before) = previous[*cycle.last()?] {
                    cycle.push(before);
                }
                cycle.reverse();
                return Some(cycle);
            }
            if !seen[next] {
                seen[next] = true;
                previous[next] = Some(part);
                queue.push_back(next);
            }
        }
    }
    None
}
