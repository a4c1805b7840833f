//! A part's templates (its `path`, its `headers.set[].value`): parsed by
//! [`snapshot::composition::parse_template`], their references by name resolved to indices (a
//! path parameter of `pathPattern`, a part), and their literal text checked for where it goes
//! (a request target, a header value). Also the way back, a compiled template as text, for
//! `/config` and `explain`.

use std::collections::HashMap;
use std::str::FromStr;

use http::HeaderValue;
use http::uri::PathAndQuery;
use snapshot::composition::{
    Composition, PathPattern, Piece, RawPiece, RawReference, Reference, Template, parse_template,
};

use crate::problems::{FieldPath, Problem, Problems};

/// `spec.pathPattern` as templates see it.
pub(super) enum PatternScope {
    /// Not set: a template reading the path is an error.
    Absent,
    /// Set but invalid (reported): path references are not checked against it.
    Invalid,
    /// Set and valid.
    Valid(PathPattern),
}

/// What a part's templates may name.
pub(super) struct TemplateScope<'a> {
    /// The path parameters.
    pub(super) pattern: &'a PatternScope,
    /// Every part's index, by (valid, first) name.
    pub(super) parts: &'a HashMap<&'a str, usize>,
    /// The index of the part whose templates these are: it cannot read its own response.
    pub(super) this: usize,
}

/// A part's `path` (`at`): a request target that starts with `/`, whose literal text is valid
/// in a URL path and query. Every problem of it is reported.
pub(super) fn resolve_target(
    at: &FieldPath,
    text: &str,
    scope: &TemplateScope<'_>,
) -> Result<Template, Problems> {
    if !text.starts_with('/') {
        return Err(at.problem(format!("{text:?} must start with \"/\"")).into());
    }
    let template = resolve(at, text, scope)?;
    // Values are percent-encoded where they land (the runtime); the literal text must already
    // be a valid target on its own.
    let literal: String = template
        .pieces
        .iter()
        .map(|piece| match piece {
            Piece::Text(text) => text.as_str(),
            Piece::Value { .. } => "x",
        })
        .collect();
    if literal.contains('#') || PathAndQuery::from_str(&literal).is_err() {
        return Err(at
            .problem(format!(
                "{text:?} is not a valid request target (a path and an optional query, without \
                 spaces, control characters or a fragment)"
            ))
            .into());
    }
    Ok(template)
}

/// A `headers.set[].value` template (`at`): its literal text must be valid in a header value.
pub(super) fn resolve_header_value(
    at: &FieldPath,
    text: &str,
    scope: &TemplateScope<'_>,
) -> Result<Template, Problems> {
    let template = resolve(at, text, scope)?;
    let invalid = template.pieces.iter().any(|piece| match piece {
        Piece::Text(text) => HeaderValue::from_str(text).is_err(),
        Piece::Value { .. } => false,
    });
    if invalid {
        return Err(at
            .problem(format!("{text:?} is not a valid header value"))
            .into());
    }
    Ok(template)
}

/// Whether a piece reads a path parameter.
pub(super) fn reads_path(piece: &Piece) -> bool {
    matches!(
        piece,
        Piece::Value {
            reference: Reference::PathParam(_),
            ..
        }
    )
}

/// Parses `text` and resolves its references; every unknown name is reported.
fn resolve(at: &FieldPath, text: &str, scope: &TemplateScope<'_>) -> Result<Template, Problems> {
    let raw = parse_template(text).map_err(|error| at.problem(format!("{error} in {text:?}")))?;
    let mut problems = Problems::default();
    let mut pieces = Vec::with_capacity(raw.len());
    for piece in raw {
        match piece {
            RawPiece::Text(text) => pieces.push(Piece::Text(text)),
            RawPiece::Value {
                reference,
                in_query,
            } => {
                if let Some(reference) = problems.ok(resolve_reference(at, reference, scope)) {
                    pieces.push(Piece::Value {
                        reference,
                        in_query,
                    });
                }
            }
        }
    }
    problems.or_value(Template { pieces })
}

/// One reference by name → by index.
fn resolve_reference(
    at: &FieldPath,
    reference: RawReference,
    scope: &TemplateScope<'_>,
) -> Result<Reference, Problem> {
    match reference {
        RawReference::PathParam(name) => match scope.pattern {
            PatternScope::Absent => Err(at.problem(format!(
                "{{request.path.{name}}} needs spec.pathPattern to name the path's segments"
            ))),
            // The pattern's own problem is reported; the Composition is invalid already.
            PatternScope::Invalid => Ok(Reference::PathParam(0)),
            PatternScope::Valid(pattern) => pattern
                .index_of(&name)
                .map(Reference::PathParam)
                .ok_or_else(|| {
                    let names = if pattern.names().is_empty() {
                        "no parameter".to_owned()
                    } else {
                        pattern.names().join(", ")
                    };
                    at.problem(format!(
                        "unknown path parameter {name:?} in {{request.path.{name}}}: \
                         spec.pathPattern {pattern} names {names}"
                    ))
                }),
        },
        RawReference::Query(name) => Ok(Reference::Query(name)),
        RawReference::Header(name) => Ok(Reference::Header(name)),
        RawReference::Response { part, pointer } => match scope.parts.get(part.as_str()) {
            None => Err(at.problem(format!(
                "unknown part {part:?} in {{response.{part}.json{pointer}}}"
            ))),
            Some(&index) if index == scope.this => Err(at.problem(format!(
                "{{response.{part}.json{pointer}}} reads this part's own response"
            ))),
            Some(&index) => Ok(Reference::Response {
                part: index,
                pointer,
            }),
        },
    }
}

/// A compiled template of `composition` as it was written (`/prices/{response.product.json/sku}`),
/// names in place of indices and braces of literal text doubled.
pub(crate) fn template_text(template: &Template, composition: &Composition) -> String {
    let mut text = String::new();
    for piece in &template.pieces {
        match piece {
            Piece::Text(literal) => text.push_str(&literal.replace('{', "{{").replace('}', "}}")),
            Piece::Value { reference, .. } => {
                text.push('{');
                match reference {
                    Reference::PathParam(index) => {
                        let names = composition.path_pattern.as_ref().map(PathPattern::names);
                        let name = names.and_then(|names| names.get(*index));
                        text.push_str("request.path.");
                        text.push_str(name.map_or("?", String::as_str));
                    }
                    Reference::Query(name) => {
                        text.push_str("request.query.");
                        text.push_str(name);
                    }
                    Reference::Header(name) => {
                        text.push_str("request.header.");
                        text.push_str(name.as_str());
                    }
                    Reference::Response { part, pointer } => {
                        let name = composition.parts.get(*part).map_or("?", |p| &p.name);
                        text.push_str("response.");
                        text.push_str(name);
                        text.push_str(".json");
                        text.push_str(pointer);
                    }
                }
                text.push('}');
            }
        }
    }
    text
}
