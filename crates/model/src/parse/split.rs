//! Cutting a file's text into its YAML documents, so that each can be parsed (and kept) on its
//! own.
//!
//! Only document markers at the start of a line cut: YAML forbids `---` and `...` followed by a
//! space, a tab or a line break at column 0 inside any scalar or collection (YAML 1.2
//! `c-forbidden`), so such a line always ends the document before it. Texts whose structure the
//! cut cannot be sure of stay whole (see [`split_documents`]).

use super::limits::MAX_DOCUMENTS;

/// The UTF-8 byte order mark, which YAML allows before any document.
const BYTE_ORDER_MARK: &[u8] = "\u{feff}".as_bytes();

/// Cuts `text` into pieces of at most one YAML document each.
///
/// A line that is `---`, or starts with `--- ` or `---` and a tab, starts a piece (the marker
/// line belongs to the document it opens, which may begin on it: `--- {a: 1}`). A line that is
/// `...` (or starts with `... ` or `...` and a tab) ends the piece it is in. The pieces are
/// consecutive, non-empty slices of `text` that, concatenated, give `text` back. A piece holds
/// one document, or none: the comments before the first marker, an empty `---`.
///
/// Returns `text` as one piece (parsed as a whole, as before pieces existed) when cutting could
/// change its meaning or its limits:
/// - a directive line (`%YAML`, `%TAG`) applies to the document after it, so cutting could
///   separate the two;
/// - a carriage return that does not end a line, or a byte order mark that starts a line after
///   the first, could hide a marker or a directive from this line-by-line cut;
/// - more `---` markers than the document limit: the whole text's parse refuses it by name
///   after reading that many documents, where cutting would first list them all.
pub fn split_documents(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    if has_lone_carriage_return(bytes) {
        return vec![text];
    }
    // A byte order mark starts the first line; its content follows.
    let first_line = if bytes.starts_with(BYTE_ORDER_MARK) {
        BYTE_ORDER_MARK.len()
    } else {
        0
    };
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut markers = 0_usize;
    for (line, content) in std::iter::once((0, first_line))
        .chain(candidate_lines(bytes).into_iter().map(|line| (line, line)))
    {
        let Some(rest) = bytes.get(content..) else {
            continue;
        };
        match rest.first() {
            Some(b'%') => return vec![text],
            Some(0xEF) if line != 0 && rest.starts_with(BYTE_ORDER_MARK) => return vec![text],
            Some(b'-') if is_marker(rest, b"---") => {
                markers += 1;
                if markers > MAX_DOCUMENTS {
                    return vec![text];
                }
                push_piece(&mut pieces, text, start, line);
                start = line;
            }
            Some(b'.') if is_marker(rest, b"...") => {
                let line_end =
                    memchr::memchr(b'\n', rest).map_or(text.len(), |newline| content + newline + 1);
                push_piece(&mut pieces, text, start, line_end);
                start = line_end;
            }
            _ => {}
        }
    }
    push_piece(&mut pieces, text, start, text.len());
    pieces
}

/// The starts of the lines after the first whose first byte can matter to the cut (`-`, `.`,
/// `%`, or the first byte of a byte order mark), in order. A 15,000-document file has 150,000
/// lines but a few tens of thousands of these: one pass of `memchr` over the line feeds, a
/// byte compared at each, and the cut visits only these (it visited every line, and that was a
/// fifth of a rescan of such a file).
fn candidate_lines(bytes: &[u8]) -> Vec<usize> {
    memchr::memchr_iter(b'\n', bytes)
        .map(|newline| newline + 1)
        .filter(|line| matches!(bytes.get(*line), Some(b'-' | b'.' | b'%' | 0xEF)))
        .collect()
}

/// Whether `text` has a carriage return that is not followed by a line feed: YAML reads it as
/// a line break, which this cut (by line feeds) would miss.
fn has_lone_carriage_return(text: &[u8]) -> bool {
    // `memchr`'s vectorised search, each carriage return found checked: the slice's `contains`
    // searched a word at a time (a millisecond of a 4 MB file's rescan), then every byte again.
    memchr::memchr_iter(b'\r', text).any(|index| text.get(index + 1) != Some(&b'\n'))
}

/// Whether the line at the start of `line` is the document marker `marker`: the marker alone,
/// or followed by a space, a tab or the line break.
fn is_marker(line: &[u8], marker: &[u8]) -> bool {
    line.starts_with(marker)
        && matches!(
            line.get(marker.len()),
            None | Some(b' ' | b'\t' | b'\r' | b'\n')
        )
}

fn push_piece<'a>(pieces: &mut Vec<&'a str>, text: &'a str, start: usize, end: usize) {
    // `start` and `end` are line starts or ends (after a `\n`), or the text's start or end, so
    // both are character boundaries.
    if let Some(piece) = text.get(start..end)
        && !piece.is_empty()
    {
        pieces.push(piece);
    }
}
