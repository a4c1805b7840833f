//! One config file's bookkeeping between rescans ([`FileState`]), and reading it
//! ([`Reading`]).
//!
//! Keeps no bytes. What it keeps: the file's stamp (to tell whether to read it again), a hash of
//! the bytes last read (to tell "same bytes" after a `touch`), the file's parsed documents in
//! order, each with the hash of its text (so a re-read parses only the documents whose text
//! changed and reuses the others, the same `Arc`s), its last good objects, and its report.

use std::io;
use std::path::Path;
use std::str::Utf8Error;
use std::time::SystemTime;

use model::Object;
use model::parse::{ParsedDocument, join_documents, parse_documents, split_documents};
use tracing::{debug, warn};

use crate::content_hash::{ContentHash, ContentHashMap, ContentHashSet, ContentHasher};
use crate::stamp::FileStamp;
use crate::update::FileReport;

/// What we know about one file.
#[derive(Debug, Default)]
pub(crate) struct FileState {
    /// The metadata the file had when last read.
    stamp: Option<FileStamp>,
    /// Whether the file must be read at the next rescan whatever its metadata: the last read
    /// failed, or it came so soon after a write that a later write could keep the stamp.
    is_stale: bool,
    /// Hash of the bytes last read; `None` when the last read failed.
    content: Option<ContentHash>,
    /// The parsed documents of the bytes last read, one per piece in order, each with the hash
    /// of its text. Invalid ones are kept in their place but never reused: they are parsed
    /// again (their outcome can depend on the file, a spent budget, and fixing them is the edit
    /// that follows).
    documents: Vec<(ContentHash, Box<ParsedDocument>)>,
    /// The objects of the last content that parsed.
    pub(crate) objects: Vec<Object>,
    /// Skipped documents of the last content that parsed.
    skipped: Vec<String>,
    /// Why the current content is not in use.
    error: Option<String>,
    /// Non-fatal problems: keys defined twice (written by the merge).
    pub(crate) warnings: Vec<String>,
}

/// A file's bytes as read, before parsing.
#[derive(Debug)]
pub(crate) enum Reading {
    /// The file was deleted between listing and reading.
    Gone,
    /// The file could not be read.
    Failed(io::Error),
    /// The bytes are not UTF-8.
    NotUtf8 {
        content: ContentHash,
        error: Utf8Error,
    },
    /// The text, cut into documents.
    Text(Text),
}

/// A file's text cut into pieces of one document each, with their hashes.
#[derive(Debug)]
pub(crate) struct Text {
    text: String,
    /// Each piece's end in `text` and the hash of its text, in order; pieces are consecutive.
    pieces: Vec<(usize, ContentHash)>,
    /// The hash of the whole text (of the pieces' hashes).
    content: ContentHash,
}

impl Reading {
    /// Reads `path` and, if it is UTF-8, cuts it into documents and hashes each.
    pub(crate) fn of(path: &Path, hasher: &ContentHasher) -> Reading {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Reading::Gone,
            Err(error) => return Reading::Failed(error),
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                return Reading::NotUtf8 {
                    content: hasher.hash(error.as_bytes()),
                    error: error.utf8_error(),
                };
            }
        };
        let mut end = 0;
        let pieces: Vec<(usize, ContentHash)> = split_documents(&text)
            .into_iter()
            .map(|piece| {
                end += piece.len();
                (end, hasher.hash(piece.as_bytes()))
            })
            .collect();
        let content = hasher.combine(pieces.iter().map(|(_, hash)| hash));
        Reading::Text(Text {
            text,
            pieces,
            content,
        })
    }
}

impl Text {
    /// The pieces' texts and hashes, in order.
    fn pieces(&self) -> impl Iterator<Item = (&str, ContentHash)> {
        let starts = std::iter::once(0).chain(self.pieces.iter().map(|(end, _)| *end));
        starts
            .zip(&self.pieces)
            .map(|(start, (end, hash))| (self.text.get(start..*end).unwrap_or(""), *hash))
    }

    /// The pieces that need parsing: none when `state` last read these same bytes, else those
    /// whose text `state` has no valid parsed document for, each text once.
    pub(crate) fn unparsed(&self, state: Option<&FileState>) -> Vec<(&str, ContentHash)> {
        let mut listed = ContentHashSet::default();
        let Some(state) = state else {
            return self
                .pieces()
                .filter(|(_, hash)| listed.insert(*hash))
                .collect();
        };
        if state.content == Some(self.content) {
            return Vec::new();
        }
        let (prefix, suffix) = common_ends(&state.documents, &self.pieces);
        let kept: ContentHashSet = state.documents[prefix..state.documents.len() - suffix]
            .iter()
            .filter(|(_, document)| document.is_valid())
            .map(|(hash, _)| *hash)
            .collect();
        self.pieces()
            .skip(prefix)
            .take(self.pieces.len() - prefix - suffix)
            .filter(|(_, hash)| !kept.contains(hash) && listed.insert(*hash))
            .collect()
    }
}

/// How the pieces of a new text line up with the documents kept from the last read: how many
/// at the start, and then at the end, are the same valid documents, in the same order. An edit
/// changes a few documents somewhere in the file: the others are found by comparing hashes in
/// order (a few nanoseconds each), and only the pieces between the two ends are looked up.
fn common_ends(
    kept: &[(ContentHash, Box<ParsedDocument>)],
    pieces: &[(usize, ContentHash)],
) -> (usize, usize) {
    let same =
        |(kept, document): &(ContentHash, Box<ParsedDocument>),
         (_, piece): &(usize, ContentHash)| { kept == piece && document.is_valid() };
    let prefix = kept
        .iter()
        .zip(pieces)
        .take_while(|(kept, piece)| same(kept, piece))
        .count();
    let suffix = kept[prefix..]
        .iter()
        .rev()
        .zip(pieces[prefix..].iter().rev())
        .take_while(|(kept, piece)| same(kept, piece))
        .count();
    (prefix, suffix)
}

impl FileState {
    /// Whether the next rescan must read this file: it is stale, or its metadata differ from
    /// `stamp`.
    pub(crate) fn needs_reading(&self, stamp: &FileStamp) -> bool {
        self.is_stale || self.stamp.as_ref() != Some(stamp)
    }

    /// Forgets that the file is stale, as if its last read were long after its last write.
    #[cfg(test)]
    pub(crate) fn mark_fresh(&mut self) {
        self.is_stale = false;
    }

    /// Takes in a new reading of the file (not [`Reading::Gone`]), made when its metadata were
    /// `stamp`; `parsed` holds the parsed documents [`Text::unparsed`] asked for. `now` is when
    /// the rescan started. Returns the file's previous objects when its objects changed.
    pub(crate) fn take_reading(
        &mut self,
        path: &Path,
        reading: Reading,
        stamp: FileStamp,
        now: SystemTime,
        parsed: &mut ContentHashMap<Box<ParsedDocument>>,
    ) -> Option<Vec<Object>> {
        self.stamp = Some(stamp);
        self.is_stale = stamp.is_recent(now);
        match reading {
            Reading::Gone => None,
            Reading::Failed(error) => {
                warn!(path = %path.display(), %error, "cannot read config file; keeping its last good objects");
                self.stamp = None;
                self.is_stale = true;
                self.content = None;
                self.error = Some(format!("cannot read: {error}"));
                None
            }
            Reading::NotUtf8 { content, error } => {
                if self.content != Some(content) {
                    self.content = Some(content);
                    self.fail(path, format!("not UTF-8: {error}"));
                }
                None
            }
            Reading::Text(text) => {
                if self.content == Some(text.content) {
                    // Same bytes: same objects (the same `Arc`s) and the same report.
                    return None;
                }
                self.content = Some(text.content);
                self.parse(path, &text, parsed)
            }
        }
    }

    /// Puts the file together from its kept and newly parsed documents.
    fn parse(
        &mut self,
        path: &Path,
        text: &Text,
        parsed: &mut ContentHashMap<Box<ParsedDocument>>,
    ) -> Option<Vec<Object>> {
        // The documents at both ends stay where they are; those between are taken from the
        // kept ones between the ends, or from the newly parsed ones, by hash.
        let mut documents = std::mem::take(&mut self.documents);
        let (prefix, suffix) = common_ends(&documents, &text.pieces);
        let tail: Vec<(ContentHash, Box<ParsedDocument>)> =
            documents.drain(documents.len() - suffix..).collect();
        let mut between: ContentHashMap<Box<ParsedDocument>> = documents
            .drain(prefix..)
            .filter(|(_, document)| document.is_valid())
            .collect();
        documents.reserve_exact(text.pieces.len() - prefix);
        // Where each document taken between the ends went, for a text repeated there.
        let mut placed: ContentHashMap<usize> = ContentHashMap::default();
        let mut complete = true;
        for (_, hash) in &text.pieces[prefix..text.pieces.len() - suffix] {
            let document = match between.remove(hash).or_else(|| parsed.remove(hash)) {
                Some(document) => {
                    placed.insert(*hash, documents.len());
                    document
                }
                None => match placed.get(hash) {
                    Some(&at) => documents[at].1.clone(),
                    None => {
                        complete = false;
                        continue;
                    }
                },
            };
            documents.push((*hash, document));
        }
        documents.extend(tail);
        let result = if complete {
            let ordered: Vec<&ParsedDocument> = documents
                .iter()
                .map(|(_, document)| document.as_ref())
                .collect();
            join_documents(&text.text, &ordered)
        } else {
            // Unreachable: every piece was kept or parsed. Parse the text rather than guess.
            parse_documents(&text.text)
        };
        self.documents = documents;
        match result {
            Ok(parsed) => {
                for document in &parsed.skipped {
                    debug!(path = %path.display(), %document, "skipping a kind Portcullis does not read");
                }
                self.skipped = parsed.skipped;
                self.error = None;
                Some(std::mem::replace(&mut self.objects, parsed.objects))
            }
            Err(error) => {
                self.fail(path, error.to_string());
                None
            }
        }
    }

    fn fail(&mut self, path: &Path, error: String) {
        warn!(path = %path.display(), %error, "config file does not parse; keeping its last good objects");
        self.error = Some(error);
    }

    /// The file's report.
    pub(crate) fn report(&self, path: &Path) -> FileReport {
        FileReport {
            path: path.to_path_buf(),
            objects: self.objects.len(),
            skipped: self.skipped.clone(),
            error: self.error.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// What the report says apart from the path and the warnings (which the merge writes), to
    /// tell whether a reading changed it.
    pub(crate) fn outcome(&self) -> (usize, Vec<String>, Option<String>) {
        (self.objects.len(), self.skipped.clone(), self.error.clone())
    }
}

#[cfg(test)]
mod tests;
