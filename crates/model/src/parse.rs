//! Multi-document YAML → typed objects.
//!
//! A file's text is cut into its documents at document markers ([`split_documents`]), each
//! document is parsed on its own ([`parse_document`]), and [`join_documents`] puts the file back
//! together: numbers its documents, applies the file's limits and the all-or-nothing rule.
//! [`parse_documents`] does the three steps for one text. Parsing documents apart lets the file
//! source keep each document's objects and parse only the documents an edit changed, and parse
//! the documents of a large file on several threads.
//!
//! Each document is read as a generic value first, its `apiVersion`/`kind` picks the type, and
//! the typed deserialisation reports the failing field path. A file is all-or-nothing: one bad
//! document fails the whole file, so the source can keep that file's last good objects.
//!
//! The YAML parser runs under a serde-saphyr `Budget` per file (see `limits`): large files of
//! many small objects are fine, while alias bombs, deep nesting and oversized text are refused
//! with the name of the limit they hit. When a document is not YAML, or the file breaches a
//! limit, the file is parsed again as one stream for the error, so the message (its line,
//! column and snippet, or the limit) is the one the whole file gives.

mod document;
mod limits;
mod split;

pub use document::{ParsedDocument, decode_object, parse_document};
pub use limits::FileBudget;
pub use split::split_documents;

use document::{Decoded, decode_value, read_values};

use crate::kind::Object;

/// What one file yielded.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The objects of kinds we read, in document order.
    pub objects: Vec<Object>,
    /// `apiVersion kind name` of each document we skipped because we do not read its kind.
    pub skipped: Vec<String>,
}

/// Why a file could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not YAML.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// The text breaches one of the parser's limits (documents, nodes, nesting depth, aliases,
    /// text size); the message names the limit, e.g. `file has more than 100000 YAML documents
    /// (limit)`.
    #[error("{0}")]
    Limit(String),
    /// A document is YAML but not an object of its kind.
    #[error("document {document} ({object}): {message}")]
    Document {
        /// 1-based index of the document in the file.
        document: usize,
        /// `Kind namespace/name` as far as it could be read.
        object: String,
        /// What is wrong, with the field path.
        message: String,
    },
}

/// Parses a multi-document YAML text. Empty documents are ignored; kinds we do not read are
/// listed in [`Parsed::skipped`]. The same as [`join_documents`] over [`parse_document`] of each
/// of [`split_documents`], on the calling thread.
///
/// # Errors
///
/// The file's first problem: [`ParseError::Yaml`] or [`ParseError::Limit`] for the text, else
/// [`ParseError::Document`] for the first document that is not an object of its kind.
pub fn parse_documents(text: &str) -> Result<Parsed, ParseError> {
    let budget = FileBudget::new();
    let documents: Vec<ParsedDocument> = split_documents(text)
        .into_iter()
        .map(|piece| parse_document(piece, &budget))
        .collect();
    let documents: Vec<&ParsedDocument> = documents.iter().collect();
    join_documents(text, &documents)
}

/// Puts a file back together from its pieces: `documents` are [`parse_document`] of each piece
/// of [`split_documents`]`(text)`, in order (a piece's earlier parse may be reused when the piece
/// text is the same). The objects are the pieces' own (the same `Arc`s), in document order.
///
/// The file's limits are checked on what its pieces used together. If a piece is not YAML or
/// breaches a limit, or the pieces together breach one, `text` is parsed again as one stream
/// and that parse's result is returned: the error then gives the line and snippet within the
/// file, or names the limit, exactly as for the whole text.
///
/// # Errors
///
/// As [`parse_documents`]: documents are numbered from 1 within the file.
pub fn join_documents(text: &str, documents: &[&ParsedDocument]) -> Result<Parsed, ParseError> {
    if let [only] = documents {
        // One piece is the whole text (pieces cover it): its parse is the whole text's.
        return match &only.outcome {
            Ok(decoded) => collect(decoded, decoded.len()),
            Err(error) => Err(ParseError::clone(error)),
        };
    }
    let mut usage = limits::Usage::default();
    for document in documents {
        if document.outcome.is_err() {
            return parse_stream(text);
        }
        usage = usage.add(document.usage);
    }
    if !usage.is_within_budget() {
        return parse_stream(text);
    }
    collect(
        documents
            .iter()
            .filter_map(|document| document.outcome.as_ref().ok())
            .flatten(),
        documents.len(),
    )
}

/// Parses `text` as one YAML stream: the reference the pieces must agree with, and where their
/// errors are worded.
fn parse_stream(text: &str) -> Result<Parsed, ParseError> {
    let (values, _) = read_values(text);
    let decoded: Vec<Decoded> = values?.into_iter().map(decode_value).collect();
    collect(&decoded, decoded.len())
}

/// A file's decoded documents, in order, as its objects and skipped kinds; the first invalid
/// document, numbered from 1, fails the file.
/// `expected` is about how many there are: most documents are objects, and a 15,000-document
/// file's list is then allocated once, not grown fourteen times.
fn collect<'a>(
    documents: impl IntoIterator<Item = &'a Decoded>,
    expected: usize,
) -> Result<Parsed, ParseError> {
    let mut parsed = Parsed::default();
    parsed.objects.reserve(expected);
    for (index, decoded) in documents.into_iter().enumerate() {
        match decoded {
            Decoded::Empty => {}
            Decoded::Object(object) => parsed.objects.push(object.clone()),
            Decoded::Skipped(skipped) => parsed.skipped.push(skipped.to_string()),
            Decoded::Invalid(invalid) => {
                return Err(ParseError::Document {
                    document: index + 1,
                    object: invalid.object.clone(),
                    message: invalid.message.clone(),
                });
            }
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
