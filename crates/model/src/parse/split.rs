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
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    let mut markers = 0_usize;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        let mut bytes = line.as_bytes();
        if offset == 0 {
            bytes = bytes.strip_prefix(BYTE_ORDER_MARK).unwrap_or(bytes);
        }
        if !is_plain_line(bytes) {
            return vec![text];
        }
        if is_marker(bytes, b"---") {
            markers += 1;
            if markers > MAX_DOCUMENTS {
                return vec![text];
            }
            push_piece(&mut pieces, text, start, offset);
            start = offset;
        } else if is_marker(bytes, b"...") {
            push_piece(&mut pieces, text, start, end);
            start = end;
        }
        offset = end;
    }
    push_piece(&mut pieces, text, start, text.len());
    pieces
}

/// Whether this cut may treat `line` (with its line break) as an ordinary line: not a
/// directive, no byte order mark at its start, and no carriage return before its end.
fn is_plain_line(line: &[u8]) -> bool {
    let content = line.strip_suffix(b"\n").unwrap_or(line);
    let content = content.strip_suffix(b"\r").unwrap_or(content);
    !(content.first() == Some(&b'%')
        || content.starts_with(BYTE_ORDER_MARK)
        || content.contains(&b'\r'))
}

/// Whether `line` is the document marker `marker` (`---` or `...`): the marker alone, or
/// followed by a space, a tab or the line break.
fn is_marker(line: &[u8], marker: &[u8]) -> bool {
    line.starts_with(marker)
        && matches!(
            line.get(marker.len()),
            None | Some(b' ' | b'\t' | b'\r' | b'\n')
        )
}

fn push_piece<'a>(pieces: &mut Vec<&'a str>, text: &'a str, start: usize, end: usize) {
    // `start` and `end` are line starts or ends, and lines end after a `\n`, so both are
    // character boundaries.
    if let Some(piece) = text.get(start..end)
        && !piece.is_empty()
    {
        pieces.push(piece);
    }
}
