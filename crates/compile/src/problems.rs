//! Where a config problem is and what it is: the one way compile reports problems.
//!
//! - [`FieldPath`] names an object and a field in it as an operator reads them:
//!   `HTTPRoute shop/cart rules[1].backendRefs[0]`. Call sites build it step by step
//!   (`route.field("rules").index(1).field("backendRefs").index(0)`) instead of formatting.
//! - [`Problem`] is one thing wrong at a path, with the Gateway API condition reason it carries
//!   when it has one (`BackendNotFound`, `RefNotPermitted`, `InvalidCertificateRef`, ...).
//! - [`Problems`] collects every problem of an object or section, so compile reports all of
//!   them, not just the first (STYLE §1).
//!
//! It only renders text. It does not decide conditions: each object kind turns its problems
//! into its own `Accepted`/`ResolvedRefs` conditions and `problems` lines, because the spec
//! gives each kind its own reasons.

use std::fmt;

/// An object and a field path in it, rendered as `Kind namespace/name field.sub[0].leaf`.
///
/// Each step copies the path once (one allocation, exactly sized): paths are built per object,
/// rule and list entry while compiling, never per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FieldPath {
    text: String,
    /// Whether a field follows the object label yet: the first field is set off by a space
    /// (`HTTPRoute a/b rules`), the next ones by a dot (`rules[0].filters`).
    has_field: bool,
}

impl FieldPath {
    /// The root of an object's paths: `Kind namespace/name`.
    pub(crate) fn object(kind: &str, namespace: &str, name: &str) -> FieldPath {
        FieldPath {
            text: format!("{kind} {namespace}/{name}"),
            has_field: false,
        }
    }

    /// The path of a field below this one. `name` may hold several dotted steps at once
    /// (`"spec.targetRefs"`, `"healthCheck.active.timeout"`).
    pub(crate) fn field(&self, name: &str) -> FieldPath {
        let separator = if self.has_field { '.' } else { ' ' };
        let mut text = String::with_capacity(self.text.len() + 1 + name.len());
        text.push_str(&self.text);
        text.push(separator);
        text.push_str(name);
        FieldPath {
            text,
            has_field: true,
        }
    }

    /// The path of one entry of this list field: `rules[1]`.
    pub(crate) fn index(&self, index: usize) -> FieldPath {
        FieldPath {
            text: format!("{}[{index}]", self.text),
            has_field: self.has_field,
        }
    }

    /// A problem at this path, rendered `{path}: {message}`.
    pub(crate) fn problem(&self, message: impl Into<String>) -> Problem {
        Problem {
            at: self.clone(),
            joint: ": ",
            message: message.into(),
            reason: None,
        }
    }

    /// A problem whose message reads on from the path as one sentence, rendered
    /// `{path} {rest}`: `... healthCheck.active.timeout must not exceed interval`.
    pub(crate) fn sentence(&self, rest: impl Into<String>) -> Problem {
        Problem {
            joint: " ",
            ..self.problem(rest)
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A path already rendered, as unit tests name their own roots (`"r"`, `"at"`); the next field
/// is set off by a dot.
#[cfg(test)]
impl From<&str> for FieldPath {
    fn from(text: &str) -> FieldPath {
        FieldPath {
            text: text.to_owned(),
            has_field: true,
        }
    }
}

/// One problem: where, what, and the condition reason it carries, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    at: FieldPath,
    /// `": "` or `" "`: see [`FieldPath::problem`] and [`FieldPath::sentence`].
    joint: &'static str,
    message: String,
    reason: Option<&'static str>,
}

impl Problem {
    /// The same problem carrying the spec's condition reason for it (`BackendNotFound`).
    pub(crate) fn because(self, reason: &'static str) -> Problem {
        Problem {
            reason: Some(reason),
            ..self
        }
    }

    /// The condition reason the problem carries, or `otherwise` where the caller decides it
    /// (a BackendTrafficPolicy's problems all make it `Invalid`).
    pub(crate) fn reason_or(&self, otherwise: &'static str) -> &'static str {
        self.reason.unwrap_or(otherwise)
    }

    /// The problem as a `problems` line of `/status`: the message, then the reason in
    /// parentheses when it carries one.
    pub(crate) fn line(&self) -> String {
        match self.reason {
            Some(reason) => format!("{self} ({reason})"),
            None => self.to_string(),
        }
    }
}

/// The problem as a condition message: path and message, without the reason (the condition
/// has its own).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.at, self.joint, self.message)
    }
}

/// Every problem found so far, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    /// Records one problem.
    pub(crate) fn report(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Like [`Result::ok`], but an error is recorded rather than dropped: the value when
    /// there is one, so the caller can go on checking the rest.
    pub(crate) fn ok<T>(&mut self, result: Result<T, Problem>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(problem) => {
                self.report(problem);
                None
            }
        }
    }

    /// Records every problem of `other`, after the ones already here.
    pub(crate) fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    /// Whether nothing was found.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first problem found: the one whose reason a condition takes.
    pub(crate) fn first(&self) -> Option<&Problem> {
        self.0.first()
    }

    /// The problems as one condition message: `a; b` (no reasons).
    pub(crate) fn join(&self) -> String {
        self.join_with(Problem::to_string)
    }

    /// The problems as one condition message with each one's reason: `a (X); b (Y)`.
    pub(crate) fn join_lines(&self) -> String {
        self.join_with(Problem::line)
    }

    /// The problems as `problems` lines of `/status` (see [`Problem::line`]).
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.iter().map(Problem::line).collect()
    }

    /// `value` when nothing was found, else every problem.
    pub(crate) fn or_value<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    fn join_with(&self, render: impl Fn(&Problem) -> String) -> String {
        self.0.iter().map(render).collect::<Vec<_>>().join("; ")
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Problems {
        Problems(vec![problem])
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests;
