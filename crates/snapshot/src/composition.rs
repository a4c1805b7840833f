//! A compiled `Composition` (`portcullis.dev/v1alpha1`): one client request answered by
//! several backend requests ("parts") whose JSON responses are merged into one document.
//!
//! An HTTPRoute rule names a Composition with an `ExtensionRef` filter; the rule then answers
//! with the composed document instead of forwarding (`proxy/src/compose.rs` runs it). Plain
//! data: the templates are parsed and their references resolved to indices by `compile`, which
//! reports every problem (unknown parts, cycles, backendRefs that do not resolve) by field.
//!
//! Templates (`Part::target` and the values of `Part::set_headers`) are text with references
//! in braces (`{{` and `}}` are literal braces):
//! - `{request.path.NAME}`: the request path's segment bound to `{NAME}` by the
//!   Composition's `pathPattern` (Gateway API path matches have no named segments);
//! - `{request.query.NAME}`: the first value of the query parameter `NAME` (percent-decoded);
//! - `{request.header.NAME}`: the request header `NAME` (the request as the rule's filters
//!   left it);
//! - `{response.PART.json}` or `{response.PART.json/POINTER}`: a value of part `PART`'s JSON
//!   response, by RFC 6901 JSON pointer (`/sku`, `/items/0/id`); a string gives its text, a
//!   number or boolean its JSON text. The part then runs after `PART` (its dependency).
//!
//! In a target, values are percent-encoded for where they land (a path segment before `?`, a
//! query component after it), so a value can never add a path segment or a parameter.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method};

use crate::BackendTarget;

/// The overall deadline when a Composition sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body of one part kept for merging, when a Composition sets none.
pub const DEFAULT_MAX_PART_BYTES: usize = 1024 * 1024;

/// A compiled Composition.
#[derive(Debug)]
pub struct Composition {
    /// `Composition namespace/name`: metrics, traces, error bodies.
    pub name: Arc<str>,
    /// Binds `{request.path.NAME}`; `None` when no template reads the path.
    pub path_pattern: Option<PathPattern>,
    /// The parts, in the order they were declared (the order of the merged document).
    pub parts: Vec<Part>,
    /// How the parts' documents become one.
    pub merge: Merge,
    /// The deadline of the whole composition, from the request's arrival: parts not done by
    /// then fail with `timeout`.
    pub timeout: Duration,
    /// The largest response body of one part (bytes); a larger one fails the part with
    /// `body-too-large`.
    pub max_part_bytes: usize,
}

/// How parts' documents are merged (`spec.merge.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// `Keyed`: `{"<part>": <its document, or null when it failed>, ...}` in part order, plus
    /// `"errors": [...]` when a part failed.
    Keyed,
    /// `Deep`: the parts' documents (JSON objects) merged into one, in part order: objects
    /// merge key by key, any other value of a later part replaces an earlier one (RFC 7396
    /// without its deletions); `"errors"` as for `Keyed`.
    Deep,
}

/// One backend request of a composition.
#[derive(Debug)]
pub struct Part {
    /// Its name: the key of its document under `Keyed`, the name templates use.
    pub name: Arc<str>,
    /// The backend (an index into `Snapshot::backends`), or why the backendRef cannot be used
    /// (the part then fails with `backend-not-found`).
    pub backend: BackendTarget,
    /// The request method (default GET).
    pub method: Method,
    /// The request target: path and optional query (default `/`).
    pub target: Template,
    /// Request headers whose values (when the client sent them) are copied into the part's
    /// request.
    pub forward_headers: Vec<HeaderName>,
    /// Request headers set from templates (after the forwarded ones; a `Host` here names
    /// the virtual host, which is otherwise the endpoint's address).
    pub set_headers: Vec<(HeaderName, Template)>,
    /// The time this part may take, retries included (`None`: the composition's deadline).
    pub timeout: Option<Duration>,
    /// Whether the composition fails (502 naming it) when this part does.
    pub required: bool,
    /// The piece of the part's JSON response to keep (RFC 6901; `None`: all of it).
    pub select: Option<String>,
    /// Indices of the parts whose responses its templates read (sorted, without repeats;
    /// `compile` guarantees they form no cycle).
    pub depends_on: Vec<usize>,
    /// Whether another part's templates read this part's response (it is among their
    /// `depends_on`): its document is then parsed when it arrives, not only validated.
    pub is_read: bool,
}

/// A template: text with references (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text, used as written.
    Text(String),
    /// A reference, substituted per request; `in_query` says whether it stands after the
    /// target's `?` (how a target encodes it).
    Value {
        /// What it reads.
        reference: Reference,
        /// Whether it stands after the target's first literal `?`.
        in_query: bool,
    },
}

/// What a template reference reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `{request.path.NAME}`: the index of `NAME` among the path pattern's parameters.
    PathParam(usize),
    /// `{request.query.NAME}`.
    Query(String),
    /// `{request.header.NAME}`.
    Header(HeaderName),
    /// `{response.PART.json/POINTER}`: part index and JSON pointer (`""`: the whole document).
    Response {
        /// The part's index.
        part: usize,
        /// RFC 6901 pointer (`""`: the whole document).
        pointer: String,
    },
}

impl Template {
    /// The parts whose responses this template reads.
    pub fn parts_read(&self) -> impl Iterator<Item = usize> + '_ {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Value {
                reference: Reference::Response { part, .. },
                ..
            } => Some(*part),
            _ => None,
        })
    }
}

/// A template as written, its references by name (`compile` resolves them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawPiece {
    /// Literal text.
    Text(String),
    /// A reference by name, and whether it stands after the first literal `?`.
    Value {
        /// What it reads.
        reference: RawReference,
        /// Whether it stands after the first literal `?`.
        in_query: bool,
    },
}

/// A reference as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawReference {
    /// `request.path.NAME`.
    PathParam(String),
    /// `request.query.NAME`.
    Query(String),
    /// `request.header.NAME` (validated as a header name).
    Header(HeaderName),
    /// `response.PART.json` with its pointer.
    Response {
        /// The part's name.
        part: String,
        /// RFC 6901 pointer (`""`: the whole document).
        pointer: String,
    },
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// A `{` without its `}`, at byte `at`.
    Unclosed {
        /// Byte offset of the `{`.
        at: usize,
    },
    /// A `}` that closes nothing (write `}}` for a literal one).
    StrayBrace {
        /// Byte offset of the `}`.
        at: usize,
    },
    /// A reference that is none of the four forms.
    UnknownReference {
        /// The text between the braces.
        reference: String,
    },
    /// `{request.header.NAME}` with an invalid header name.
    InvalidHeaderName {
        /// The name as written.
        name: String,
    },
    /// A JSON pointer that is neither empty nor starts with `/`, or has a bad `~` escape.
    InvalidPointer {
        /// The pointer as written.
        pointer: String,
    },
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Unclosed { at } => write!(f, "the `{{` at byte {at} is not closed"),
            TemplateError::StrayBrace { at } => {
                write!(
                    f,
                    "the `}}` at byte {at} closes nothing (write `}}}}` for a brace)"
                )
            }
            TemplateError::UnknownReference { reference } => write!(
                f,
                "unknown reference {{{reference}}}: expected request.path.NAME, \
                 request.query.NAME, request.header.NAME or response.PART.json[/POINTER]"
            ),
            TemplateError::InvalidHeaderName { name } => {
                write!(f, "{name:?} is not a valid header name")
            }
            TemplateError::InvalidPointer { pointer } => write!(
                f,
                "{pointer:?} is not a JSON pointer (RFC 6901: empty, or `/` then tokens, \
                 `~0` and `~1` the only escapes)"
            ),
        }
    }
}

/// Parses a template into literal text and references by name. `{{` and `}}` are literal
/// braces; a `?` in literal text starts the query (pieces after it have `in_query`).
pub fn parse_template(text: &str) -> Result<Vec<RawPiece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut in_query = false;
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'{' if bytes.get(at + 1) == Some(&b'{') => {
                literal.push('{');
                at += 2;
            }
            b'}' if bytes.get(at + 1) == Some(&b'}') => {
                literal.push('}');
                at += 2;
            }
            b'}' => return Err(TemplateError::StrayBrace { at }),
            b'{' => {
                let Some(length) = text[at + 1..].find('}') else {
                    return Err(TemplateError::Unclosed { at });
                };
                let reference = parse_reference(&text[at + 1..at + 1 + length])?;
                if !literal.is_empty() {
                    pieces.push(RawPiece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(RawPiece::Value {
                    reference,
                    in_query,
                });
                at += length + 2;
            }
            _ => {
                // Copy up to the next brace in one step (UTF-8 stays whole: braces are ASCII).
                let next = text[at..]
                    .find(['{', '}'])
                    .map_or(bytes.len(), |offset| at + offset);
                let chunk = &text[at..next];
                in_query |= chunk.contains('?');
                literal.push_str(chunk);
                at = next;
            }
        }
    }
    if !literal.is_empty() {
        pieces.push(RawPiece::Text(literal));
    }
    Ok(pieces)
}

/// One reference, without its braces.
fn parse_reference(reference: &str) -> Result<RawReference, TemplateError> {
    let unknown = || TemplateError::UnknownReference {
        reference: reference.to_owned(),
    };
    if let Some(name) = reference.strip_prefix("request.path.") {
        return is_name(name)
            .then(|| RawReference::PathParam(name.to_owned()))
            .ok_or_else(unknown);
    }
    if let Some(name) = reference.strip_prefix("request.query.") {
        return (!name.is_empty())
            .then(|| RawReference::Query(name.to_owned()))
            .ok_or_else(unknown);
    }
    if let Some(name) = reference.strip_prefix("request.header.") {
        return HeaderName::from_bytes(name.as_bytes())
            .map(RawReference::Header)
            .map_err(|_| TemplateError::InvalidHeaderName {
                name: name.to_owned(),
            });
    }
    let Some(rest) = reference.strip_prefix("response.") else {
        return Err(unknown());
    };
    let Some((part, pointer)) = rest.split_once(".json") else {
        return Err(unknown());
    };
    if !is_name(part) {
        return Err(unknown());
    }
    if !is_pointer(pointer) {
        return Err(TemplateError::InvalidPointer {
            pointer: pointer.to_owned(),
        });
    }
    Ok(RawReference::Response {
        part: part.to_owned(),
        pointer: pointer.to_owned(),
    })
}

/// A part or path parameter name: `[A-Za-z0-9_-]+`.
pub fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An RFC 6901 JSON pointer: empty, or `/`-separated tokens where `~` is followed by 0 or 1.
pub fn is_pointer(pointer: &str) -> bool {
    if pointer.is_empty() {
        return true;
    }
    if !pointer.starts_with('/') {
        return false;
    }
    let bytes = pointer.as_bytes();
    bytes
        .iter()
        .enumerate()
        .all(|(at, b)| *b != b'~' || matches!(bytes.get(at + 1), Some(b'0' | b'1')))
}

/// `pathPattern`: literal segments and `{NAME}` segments that bind one path segment each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    segments: Vec<PatternSegment>,
    /// The parameter names, in order (a [`Reference::PathParam`] is an index here).
    names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    Literal(String),
    /// The index of its name in `names`.
    Param(usize),
}

/// Why a `pathPattern` does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// It does not start with `/`.
    NotAbsolute,
    /// A segment mixes text and a parameter, or a parameter name is not `[A-Za-z0-9_-]+`.
    InvalidSegment(String),
    /// Two parameters have one name.
    DuplicateName(String),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::NotAbsolute => write!(f, "must start with `/`"),
            PatternError::InvalidSegment(segment) => write!(
                f,
                "segment {segment:?}: a segment is literal text without braces, or one \
                 `{{NAME}}` (NAME of letters, digits, `_` and `-`)"
            ),
            PatternError::DuplicateName(name) => write!(f, "{{{name}}} appears twice"),
        }
    }
}

impl PathPattern {
    /// Parses `/products/{id}/reviews/{review}`.
    pub fn parse(pattern: &str) -> Result<PathPattern, PatternError> {
        let Some(rest) = pattern.strip_prefix('/') else {
            return Err(PatternError::NotAbsolute);
        };
        let mut segments = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for segment in rest.split('/') {
            match segment
                .strip_prefix('{')
                .and_then(|inner| inner.strip_suffix('}'))
            {
                Some(name) if is_name(name) => {
                    if names.iter().any(|known| known == name) {
                        return Err(PatternError::DuplicateName(name.to_owned()));
                    }
                    segments.push(PatternSegment::Param(names.len()));
                    names.push(name.to_owned());
                }
                Some(_) => return Err(PatternError::InvalidSegment(segment.to_owned())),
                None if segment.contains(['{', '}']) => {
                    return Err(PatternError::InvalidSegment(segment.to_owned()));
                }
                None => segments.push(PatternSegment::Literal(segment.to_owned())),
            }
        }
        Ok(PathPattern { segments, names })
    }

    /// The parameter names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of parameter `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|known| known == name)
    }

    /// The segments of `path` (normalized, without query) bound to each parameter, in the
    /// order of [`PathPattern::names`]; `None` when the path does not fit the pattern (same
    /// number of segments, literals equal, parameters not empty). Values are as they appear in
    /// the path (still percent-encoded).
    pub fn bind<'p>(&self, path: &'p str) -> Option<Vec<&'p str>> {
        let rest = path.strip_prefix('/')?;
        let mut values = vec![""; self.names.len()];
        let mut found = rest.split('/');
        for segment in &self.segments {
            let value = found.next()?;
            match segment {
                PatternSegment::Literal(literal) if literal == value => {}
                PatternSegment::Literal(_) => return None,
                PatternSegment::Param(_) if value.is_empty() => return None,
                PatternSegment::Param(index) => values[*index] = value,
            }
        }
        found.next().is_none().then_some(values)
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for segment in &self.segments {
            match segment {
                PatternSegment::Literal(literal) => write!(f, "/{literal}")?,
                PatternSegment::Param(index) => write!(f, "/{{{}}}", self.names[*index])?,
            }
        }
        Ok(())
    }
}

/// The parts' indices in an order where every part comes after those it depends on, or the
/// names of parts on a cycle (`depends_on` lists per part). Kahn's algorithm, ties in
/// declaration order.
pub fn dependency_order(depends_on: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let count = depends_on.len();
    let mut waiting: Vec<usize> = depends_on.iter().map(Vec::len).collect();
    let mut order = Vec::with_capacity(count);
    let mut done = vec![false; count];
    while order.len() < count {
        let Some(next) = (0..count).find(|&part| !done[part] && waiting[part] == 0) else {
            return Err((0..count).filter(|&part| !done[part]).collect());
        };
        done[next] = true;
        order.push(next);
        for (part, needs) in depends_on.iter().enumerate() {
            if !done[part] {
                waiting[part] -= needs.iter().filter(|&&need| need == next).count();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests;
