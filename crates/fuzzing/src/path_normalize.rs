//! Target `path_normalize`: request path normalization (`router::path::normalize`).
//!
//! The first input byte picks the [`PathPolicy`] (bit 0: `merge_slashes`, bits 1-2:
//! [`EscapedSlashes`]), the rest is the path (invalid UTF-8 is replaced, as the normalizer only
//! sees `&str`). For a path starting with `/` that is accepted, the output must be what a
//! backend would resolve it to, so that routing and forwarding agree:
//!
//! - it starts with `/`, has no `.` or `..` segment, no `\`, and no `//` when merging slashes;
//! - it contains `%2F` or `%5C` only under `KeepUnchanged`, and every `%` starts an escape of
//!   two upper-case hex digits;
//! - normalizing it again gives it back unchanged, with no redirect (idempotence);
//! - a redirect is asked for only under `UnescapeAndRedirect`.
//!
//! A path not starting with `/` comes back unchanged. And since a path without escaped slashes
//! does not depend on the escaped-slash policy, every policy that accepts a path the
//! `RejectRequest` policy accepts must agree with it.

use router::path::{EscapedSlashes, PathPolicy, normalize};

/// Normalizes the path in `data[1..]` under the policy picked by `data[0]` and checks the
/// invariants above.
///
/// # Panics
/// When an invariant does not hold (or the normalizer itself panics).
pub fn path_normalize(data: &[u8]) {
    let Some((&selector, path)) = data.split_first() else {
        return;
    };
    let path = String::from_utf8_lossy(path);
    let policy = policy(selector);
    let Ok(normalized) = normalize(&path, &policy) else {
        return;
    };
    let output = normalized.path.as_ref();
    if !path.starts_with('/') {
        assert_eq!(output, path, "a path without a leading / is left alone");
        assert!(!normalized.redirect);
        return;
    }
    check_shape(output, &policy);
    if normalized.redirect {
        assert_eq!(
            policy.escaped_slashes,
            EscapedSlashes::UnescapeAndRedirect,
            "redirect for {path:?} under {policy:?}"
        );
    }
    let again = normalize(output, &policy)
        .unwrap_or_else(|why| panic!("{path:?} -> {output:?} is rejected again ({why:?})"));
    assert_eq!(
        again.path, output,
        "not idempotent: {path:?} under {policy:?}"
    );
    assert!(
        !again.redirect,
        "{output:?} redirects again under {policy:?}"
    );
    if policy.escaped_slashes == EscapedSlashes::RejectRequest {
        check_policies_agree(&path, policy.merge_slashes, output);
    }
}

/// The policy the first input byte selects; the other bits are ignored.
fn policy(selector: u8) -> PathPolicy {
    let escaped_slashes = match (selector >> 1) & 3 {
        0 => EscapedSlashes::KeepUnchanged,
        1 => EscapedSlashes::RejectRequest,
        2 => EscapedSlashes::UnescapeAndRedirect,
        _ => EscapedSlashes::UnescapeAndForward,
    };
    PathPolicy {
        merge_slashes: selector & 1 == 1,
        escaped_slashes,
    }
}

/// The output invariants of an accepted path that started with `/`.
fn check_shape(output: &str, policy: &PathPolicy) {
    assert!(output.starts_with('/'), "{output:?} lost its leading /");
    assert!(!output.contains('\\'), "backslash in {output:?}");
    if policy.merge_slashes {
        assert!(!output.contains("//"), "{output:?} has // under {policy:?}");
    }
    assert!(
        output[1..].split('/').all(|s| s != "." && s != ".."),
        "dot segment in {output:?}"
    );
    let bytes = output.as_bytes();
    for (i, _) in output.match_indices('%') {
        let escape = bytes.get(i + 1..i + 3);
        let is_upper_hex = |b: &u8| b.is_ascii_digit() || (b'A'..=b'F').contains(b);
        assert!(
            escape.is_some_and(|e| e.iter().all(is_upper_hex)),
            "bad escape at {i} in {output:?}"
        );
        let is_slash = matches!(escape, Some(b"2F" | b"5C"));
        assert!(
            !is_slash || policy.escaped_slashes == EscapedSlashes::KeepUnchanged,
            "escaped slash kept in {output:?} under {policy:?}"
        );
    }
}

/// A path the `RejectRequest` policy accepts has no escaped slash, so every other escaped-slash
/// policy with the same `merge_slashes` must give the same output and no redirect.
fn check_policies_agree(path: &str, merge_slashes: bool, expected: &str) {
    for escaped_slashes in [
        EscapedSlashes::KeepUnchanged,
        EscapedSlashes::UnescapeAndRedirect,
        EscapedSlashes::UnescapeAndForward,
    ] {
        let policy = PathPolicy {
            merge_slashes,
            escaped_slashes,
        };
        let other = normalize(path, &policy);
        assert!(
            other
                .as_ref()
                .is_ok_and(|n| n.path == expected && !n.redirect),
            "{path:?}: RejectRequest gives {expected:?}, {policy:?} gives {other:?}"
        );
    }
}
