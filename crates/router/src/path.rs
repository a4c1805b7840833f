//! Request path normalization: the one path a request is matched, authorized and forwarded
//! with.
//!
//! A gateway that matches the raw path but forwards it to a backend that normalizes it can be
//! walked around: with only `/public` routed, `/public/../admin` matches `/public` and the
//! backend serves `/admin` (Envoy CVE-2019-9901, Istio CVE-2021-31920). [`normalize`] removes
//! that gap by turning every path into the form a backend would resolve it to, before the
//! router sees it:
//!
//! 1. percent-encoded unreserved characters (`%41`, `%2e`, `%7E`) are decoded and the hex
//!    digits of the remaining escapes are upper-cased (RFC 3986 §6.2.2.1-2);
//! 2. `%2F` and `%5C` (an escaped `/` or `\`) follow [`EscapedSlashes`] (rejected by default);
//! 3. runs of `/` collapse to one when [`PathPolicy::merge_slashes`] is on (the default);
//! 4. `.` and `..` segments are removed (RFC 3986 §5.2.4), never climbing above `/`.
//!
//! What cannot be normalized safely is rejected ([`PathRejection`], a 400): a raw `\`, `%00`,
//! a `%` not followed by two hex digits, percent-encoded bytes that are not UTF-8 (overlong
//! forms such as `%C0%AE` decode to `.` in lenient decoders), and a dot segment carrying
//! parameters (`..;x`, which Tomcat-style backends treat as `..`).
//!
//! Normalization is idempotent: a normalized path normalizes to itself. The common case, a path
//! with nothing to change, is recognized in one scan and costs no allocation.

use std::borrow::Cow;
use std::fmt;

/// What to do with `%2F` and `%5C` in a path (Envoy's `path_with_escaped_slashes_action`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EscapedSlashes {
    /// Leave them encoded and treat them as ordinary characters of a segment. Only safe when
    /// no backend decodes them into separators.
    KeepUnchanged,
    /// Answer 400 (the default).
    #[default]
    RejectRequest,
    /// Decode them to `/`, normalize, and redirect the client to the result.
    UnescapeAndRedirect,
    /// Decode them to `/`, normalize, and forward the result.
    UnescapeAndForward,
}

/// How paths of one listener are normalized (ClientTrafficPolicy `path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathPolicy {
    /// Collapse runs of `/` into one.
    pub merge_slashes: bool,
    /// What `%2F` and `%5C` do.
    pub escaped_slashes: EscapedSlashes,
}

impl Default for PathPolicy {
    fn default() -> PathPolicy {
        PathPolicy {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::RejectRequest,
        }
    }
}

/// Why a path was refused (400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathRejection {
    /// A `%` not followed by two hex digits.
    InvalidEscape,
    /// `%2F` or `%5C` under [`EscapedSlashes::RejectRequest`].
    EscapedSlash,
    /// A raw `\`.
    Backslash,
    /// `%00`.
    Nul,
    /// Percent-encoded bytes that do not form UTF-8 (overlong or truncated sequences).
    InvalidUtf8,
    /// A `.` or `..` segment with parameters (`..;x`).
    DotSegmentParameter,
}

impl fmt::Display for PathRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathRejection::InvalidEscape => "invalid percent-encoding in the path",
            PathRejection::EscapedSlash => "escaped slash (%2F or %5C) in the path",
            PathRejection::Backslash => "backslash in the path",
            PathRejection::Nul => "NUL (%00) in the path",
            PathRejection::InvalidUtf8 => "percent-encoded bytes in the path are not UTF-8",
            PathRejection::DotSegmentParameter => "dot segment with parameters in the path",
        })
    }
}

impl std::error::Error for PathRejection {}

/// A normalized path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NormalizedPath<'a> {
    /// The path to match and forward (borrowed when nothing changed).
    pub path: Cow<'a, str>,
    /// An escaped slash was decoded under [`EscapedSlashes::UnescapeAndRedirect`]: answer with a
    /// redirect to `path` instead of forwarding.
    pub redirect: bool,
}

/// Normalizes `path` (the path of a request target, without query) under `policy`. Paths that
/// do not start with `/` (`*` of `OPTIONS *`, the empty path of CONNECT) are returned as they
/// are.
pub fn normalize<'a>(
    path: &'a str,
    policy: &PathPolicy,
) -> Result<NormalizedPath<'a>, PathRejection> {
    if !path.starts_with('/') || is_normal(path.as_bytes(), policy) {
        return Ok(NormalizedPath {
            path: Cow::Borrowed(path),
            redirect: false,
        });
    }
    let (decoded, redirect) = decode(path, policy.escaped_slashes)?;
    let path = remove_dot_segments(&decoded, policy.merge_slashes)?;
    Ok(NormalizedPath {
        path: Cow::Owned(path),
        redirect,
    })
}

/// Whether `path` has nothing to normalize: no `%`, no `\`, no dot segment, no empty segment
/// (when merging). One pass, no allocation.
fn is_normal(path: &[u8], policy: &PathPolicy) -> bool {
    let mut segment_start = 0;
    for (i, &byte) in path.iter().enumerate() {
        match byte {
            b'%' | b'\\' => return false,
            b'/' => {
                if i > 0 && !segment_is_plain(&path[segment_start..i], policy, false) {
                    return false;
                }
                segment_start = i + 1;
            }
            _ => {}
        }
    }
    segment_is_plain(&path[segment_start..], policy, true)
}

/// A segment (without its slashes) that normalization leaves alone. The last segment may be
/// empty (a trailing slash).
fn segment_is_plain(segment: &[u8], policy: &PathPolicy, last: bool) -> bool {
    match segment {
        [] => last || !policy.merge_slashes,
        [b'.'] | [b'.', b'.'] => false,
        [b'.', b';', ..] | [b'.', b'.', b';', ..] => false,
        _ => true,
    }
}

/// Step 1 and 2: percent-decoding of unreserved characters (and of escaped slashes when the
/// policy unescapes them), validation of every escape. Returns the decoded path and whether an
/// escaped slash was decoded under `UnescapeAndRedirect`.
fn decode(path: &str, slashes: EscapedSlashes) -> Result<(String, bool), PathRejection> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut redirect = false;
    // Consecutive percent-encoded bytes >= 0x80, checked as UTF-8 when the run ends.
    let mut high_run: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'\\' {
            return Err(PathRejection::Backslash);
        }
        if byte != b'%' {
            check_utf8_run(&mut high_run)?;
            // Copy the run of plain characters up to the next escape or backslash at once.
            let end = bytes[i..]
                .iter()
                .position(|&b| b == b'%' || b == b'\\')
                .map_or(bytes.len(), |p| i + p);
            out.push_str(&path[i..end]);
            i = end;
            continue;
        }
        let value = match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(&hi), Some(&lo)) => match (hex(hi), hex(lo)) {
                (Some(hi), Some(lo)) => hi << 4 | lo,
                _ => return Err(PathRejection::InvalidEscape),
            },
            _ => return Err(PathRejection::InvalidEscape),
        };
        i += 3;
        if value >= 0x80 {
            high_run.push(value);
            push_escape(&mut out, value);
            continue;
        }
        check_utf8_run(&mut high_run)?;
        match value {
            0 => return Err(PathRejection::Nul),
            b'/' | b'\\' => match slashes {
                EscapedSlashes::KeepUnchanged => push_escape(&mut out, value),
                EscapedSlashes::RejectRequest => return Err(PathRejection::EscapedSlash),
                EscapedSlashes::UnescapeAndRedirect => {
                    redirect = true;
                    out.push('/');
                }
                EscapedSlashes::UnescapeAndForward => out.push('/'),
            },
            v if is_unreserved(v) => out.push(char::from(v)),
            v => push_escape(&mut out, v),
        }
    }
    check_utf8_run(&mut high_run)?;
    Ok((out, redirect))
}

fn check_utf8_run(run: &mut Vec<u8>) -> Result<(), PathRejection> {
    if run.is_empty() {
        return Ok(());
    }
    let valid = std::str::from_utf8(run).is_ok();
    run.clear();
    if valid {
        Ok(())
    } else {
        Err(PathRejection::InvalidUtf8)
    }
}

fn push_escape(out: &mut String, value: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(value >> 4)]));
    out.push(char::from(HEX[usize::from(value & 0xf)]));
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3 unreserved characters.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Steps 3 and 4 on a decoded path that starts with `/`.
fn remove_dot_segments(path: &str, merge_slashes: bool) -> Result<String, PathRejection> {
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = path[1..].split('/').peekable();
    // Whether the result ends with `/`: the last input segment was empty, `.` or `..`.
    let mut trailing_slash = false;
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => trailing_slash = last,
            ".." => {
                kept.pop();
                trailing_slash = last;
            }
            s if s.starts_with(".;") || s.starts_with("..;") => {
                return Err(PathRejection::DotSegmentParameter);
            }
            "" if merge_slashes || last => trailing_slash = last,
            s => {
                kept.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
