use super::*;

fn norm(path: &str) -> Result<String, PathRejection> {
    normalize(path, &PathPolicy::default()).map(|n| n.path.into_owned())
}

fn with(
    path: &str,
    merge_slashes: bool,
    escaped_slashes: EscapedSlashes,
) -> Result<NormalizedPath<'_>, PathRejection> {
    normalize(
        path,
        &PathPolicy {
            merge_slashes,
            escaped_slashes,
        },
    )
}

#[test]
fn plain_paths_are_borrowed_unchanged() {
    for path in ["/", "/a", "/a/b/", "/a.b/c..d/.e", "/public/x-y_z~"] {
        let normalized = normalize(path, &PathPolicy::default()).expect("accepted");
        assert!(
            matches!(normalized.path, Cow::Borrowed(p) if p == path),
            "{path}"
        );
        assert!(!normalized.redirect);
    }
}

#[test]
fn dot_segments_are_removed_without_climbing_above_the_root() {
    let cases = [
        ("/public/../admin", "/admin"),
        ("/public/./../admin", "/admin"),
        ("/./admin", "/admin"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/..", "/"),
        ("/../../admin", "/admin"),
        ("/a/../../b/./c/..", "/b/"),
    ];
    for (input, expected) in cases {
        assert_eq!(norm(input).as_deref(), Ok(expected), "{input}");
    }
}

#[test]
fn encoded_unreserved_characters_are_decoded_and_reserved_ones_upper_cased() {
    let cases = [
        ("/public/%2e%2e/admin", "/admin"),
        ("/public/%2E%2E/admin", "/admin"),
        ("/public/.%2e/admin", "/admin"),
        ("/%61dmin", "/admin"),
        ("/a%7eb", "/a~b"),
        ("/a%3bb", "/a%3Bb"),
        ("/a%20b", "/a%20b"),
        // Double encoding decodes once: the backend sees `%2e`, not a dot segment.
        ("/public/%252e%252e/admin", "/public/%252e%252e/admin"),
        ("/caf%C3%A9", "/caf%C3%A9"),
    ];
    for (input, expected) in cases {
        assert_eq!(norm(input).as_deref(), Ok(expected), "{input}");
    }
}

#[test]
fn slashes_merge_by_default_and_not_when_disabled() {
    assert_eq!(norm("//admin").as_deref(), Ok("/admin"));
    assert_eq!(norm("/a///b//").as_deref(), Ok("/a/b/"));
    let kept = with("//admin//x", false, EscapedSlashes::RejectRequest).expect("accepted");
    assert_eq!(kept.path, "//admin//x");
    let dotted = with("//a/..//b", false, EscapedSlashes::RejectRequest).expect("accepted");
    assert_eq!(dotted.path, "///b");
}

#[test]
fn unsafe_paths_are_rejected() {
    let cases = [
        ("/public/..%2fadmin", PathRejection::EscapedSlash),
        ("/public%2F..%2Fadmin", PathRejection::EscapedSlash),
        ("/public/..%5cadmin", PathRejection::EscapedSlash),
        ("/public\\..\\admin", PathRejection::Backslash),
        ("/a%00b", PathRejection::Nul),
        ("/a%zz", PathRejection::InvalidEscape),
        ("/a%2", PathRejection::InvalidEscape),
        ("/a%", PathRejection::InvalidEscape),
        ("/%c0%ae%c0%ae/admin", PathRejection::InvalidUtf8),
        ("/%e0%80%ae", PathRejection::InvalidUtf8),
        ("/%C3", PathRejection::InvalidUtf8),
        ("/public/..;/admin", PathRejection::DotSegmentParameter),
        ("/public/%2e%2e;x/admin", PathRejection::DotSegmentParameter),
        ("/.;/admin", PathRejection::DotSegmentParameter),
    ];
    for (input, expected) in cases {
        assert_eq!(norm(input), Err(expected), "{input}");
    }
}

#[test]
fn escaped_slash_actions() {
    let keep = with("/public/..%2fadmin", true, EscapedSlashes::KeepUnchanged).expect("accepted");
    assert_eq!(keep.path, "/public/..%2Fadmin");
    assert!(!keep.redirect);
    let forward = with(
        "/public/..%2fadmin",
        true,
        EscapedSlashes::UnescapeAndForward,
    )
    .expect("accepted");
    assert_eq!(forward.path, "/admin");
    assert!(!forward.redirect);
    let redirect = with("/a%5Cb", true, EscapedSlashes::UnescapeAndRedirect).expect("accepted");
    assert_eq!(redirect.path, "/a/b");
    assert!(redirect.redirect);
}

#[test]
fn paths_without_a_leading_slash_are_left_alone() {
    assert_eq!(norm("*").as_deref(), Ok("*"));
    assert_eq!(norm("").as_deref(), Ok(""));
}

/// A small deterministic generator (xorshift) over an alphabet of the characters that matter.
fn random_paths(count: usize) -> Vec<String> {
    const PIECES: &[&str] = &[
        "/", "/", ".", "..", "a", "b", "%2e", "%2E", "%2f", "%5c", "%41", "%3b", ";", "%25",
        "%c3%a9", "%c0", "~", "-", "//", "%", "%0", "x%20y", "\\",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 12) as usize;
            let mut path = String::from("/");
            for _ in 0..len {
                path.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            path
        })
        .collect()
}

#[test]
fn normalization_is_idempotent_and_leaves_no_dot_segments() {
    let policies = [
        PathPolicy::default(),
        PathPolicy {
            merge_slashes: false,
            escaped_slashes: EscapedSlashes::KeepUnchanged,
        },
        PathPolicy {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::UnescapeAndForward,
        },
    ];
    let mut accepted = 0;
    for path in random_paths(10_000) {
        for policy in &policies {
            let Ok(once) = normalize(&path, policy) else {
                continue;
            };
            accepted += 1;
            let twice = normalize(&once.path, policy).expect("a normalized path is accepted");
            assert_eq!(twice.path, once.path, "not idempotent for {path:?}");
            assert!(!twice.redirect);
            for segment in once.path.split('/') {
                assert!(
                    segment != "." && segment != "..",
                    "{path:?} -> {:?}",
                    once.path
                );
            }
            assert!(!once.path.contains('\\'));
            if policy.merge_slashes {
                assert!(!once.path.contains("//"), "{path:?} -> {:?}", once.path);
            }
        }
    }
    assert!(
        accepted > 5_000,
        "the generator must exercise accepted paths too ({accepted})"
    );
}
