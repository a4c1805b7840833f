//! Static table tests: the entries against RFC 7541 Appendix A and the encoder's lookups.

use http::HeaderName;

use super::{STATIC_ENTRIES, name_index, status_index};
use crate::table::Name;
use crate::{Field, Pseudo};

#[test]
fn table_has_the_sixty_one_entries_of_appendix_a() {
    assert_eq!(STATIC_ENTRIES.len(), 61);
    let spelled = |index: usize| match &STATIC_ENTRIES[index - 1].field {
        Field::Pseudo(pseudo, value) => (pseudo.as_str().to_owned(), value.to_vec()),
        Field::Regular(name, value) => (name.as_str().to_owned(), value.as_bytes().to_vec()),
        Field::Malformed { .. } => panic!("static entry {index} is malformed"),
    };
    assert_eq!(spelled(1), (":authority".to_owned(), b"".to_vec()));
    assert_eq!(spelled(2), (":method".to_owned(), b"GET".to_vec()));
    assert_eq!(spelled(7), (":scheme".to_owned(), b"https".to_vec()));
    assert_eq!(spelled(14), (":status".to_owned(), b"500".to_vec()));
    assert_eq!(
        spelled(16),
        ("accept-encoding".to_owned(), b"gzip, deflate".to_vec())
    );
    assert_eq!(spelled(31), ("content-type".to_owned(), b"".to_vec()));
    assert_eq!(spelled(52), ("refresh".to_owned(), b"".to_vec()));
    assert_eq!(spelled(61), ("www-authenticate".to_owned(), b"".to_vec()));
}

#[test]
fn entry_sizes_and_names_agree_with_fields() {
    for (offset, entry) in STATIC_ENTRIES.iter().enumerate() {
        assert_eq!(entry.size, entry.field.size(), "index {}", offset + 1);
        match (&entry.name, &entry.field) {
            (Name::Pseudo(name), Field::Pseudo(pseudo, _)) => assert_eq!(name, pseudo),
            (Name::Regular(name), Field::Regular(field_name, _)) => assert_eq!(name, field_name),
            other => panic!("index {}: name and field disagree: {other:?}", offset + 1),
        }
    }
}

#[test]
fn name_index_finds_every_regular_entry() {
    for (offset, entry) in STATIC_ENTRIES.iter().enumerate() {
        if let Name::Regular(name) = &entry.name {
            assert_eq!(name_index(name), Some(offset + 1), "{name}");
        }
    }
    assert_eq!(name_index(&HeaderName::from_static("x-request-id")), None);
    assert_eq!(name_index(&HeaderName::from_static("connection")), None);
}

#[test]
fn status_index_finds_the_seven_static_codes() {
    for (offset, entry) in STATIC_ENTRIES.iter().enumerate() {
        if let Field::Pseudo(Pseudo::Status, code) = &entry.field {
            let code: u16 = std::str::from_utf8(code)
                .ok()
                .and_then(|text| text.parse().ok())
                .expect("static :status values are numbers");
            assert_eq!(status_index(code), Some(offset + 1));
        }
    }
    assert_eq!(status_index(201), None);
    assert_eq!(status_index(302), None);
}
