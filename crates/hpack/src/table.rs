//! The indexing tables of RFC 7541 §2.3: the entries the decoder resolves indices against.
//!
//! Owns the dynamic table (a ring buffer, newest entry first, with §4.4 eviction) and the
//! lookup across the static and dynamic tables. Entries keep the already-parsed [`Field`], so
//! an indexed reference costs one clone. It does not read the wire format (`decoder` does).

use std::collections::VecDeque;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::decoder::DecoderError;
use crate::static_table::STATIC_ENTRIES;
use crate::{ENTRY_OVERHEAD, Field, Pseudo};

/// A field name as the decoder classified it.
#[derive(Clone, Debug)]
pub(crate) enum Name {
    /// One of the six pseudo-header names.
    Pseudo(Pseudo),
    /// A valid lowercase field name.
    Regular(HeaderName),
    /// A name no HTTP/2 message may carry (see [`Field::Malformed`]), of `length` octets.
    Malformed { length: usize },
}

/// A token character (RFC 9110 §5.6.2), uppercase letters included (refused later).
fn is_tchar(octet: u8) -> bool {
    octet.is_ascii_alphanumeric()
        || matches!(
            octet,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

impl Name {
    /// Classifies the octets of a name (RFC 9113 §8.2.1, §8.3).
    pub(crate) fn parse(octets: &[u8]) -> Name {
        if octets.first() == Some(&b':') {
            return match Pseudo::from_name(octets) {
                Some(pseudo) => Name::Pseudo(pseudo),
                None => Name::Malformed {
                    length: octets.len(),
                },
            };
        }
        // A token (RFC 9110 §5.1): RFC 9113 §8.2.1 only forbids controls, SP, uppercase and
        // non-ASCII, but a name beyond tchar (a `"`, which `http` takes) would go on to an
        // HTTP/1.1 upstream as a field no HTTP/1.1 parser accepts. `from_lowercase` refuses
        // uppercase octets instead of folding them, and the empty name.
        if !octets.iter().all(|&octet| is_tchar(octet)) {
            return Name::Malformed {
                length: octets.len(),
            };
        }
        match HeaderName::from_lowercase(octets) {
            Ok(name) => Name::Regular(name),
            Err(_) => Name::Malformed {
                length: octets.len(),
            },
        }
    }

    /// The length of the name in octets.
    fn len(&self) -> usize {
        match self {
            Name::Pseudo(pseudo) => pseudo.as_str().len(),
            Name::Regular(name) => name.as_str().len(),
            Name::Malformed { length } => *length,
        }
    }

    /// The field this name makes with `value`, [`Field::Malformed`] when either is invalid.
    pub(crate) fn with_value(&self, value: Bytes) -> Field {
        let size = field_size(self.len(), value.len());
        if !has_no_surrounding_whitespace(&value) {
            return Field::Malformed { size };
        }
        match self {
            Name::Pseudo(pseudo) if value.iter().all(|&octet| is_value_octet(octet)) => {
                Field::Pseudo(*pseudo, value)
            }
            Name::Regular(name) => match HeaderValue::from_maybe_shared(value) {
                Ok(value) => Field::Regular(name.clone(), value),
                Err(_) => Field::Malformed { size },
            },
            Name::Pseudo(_) | Name::Malformed { .. } => Field::Malformed { size },
        }
    }
}

/// RFC 7541 §4.1 size of a field with these lengths.
fn field_size(name_length: usize, value_length: usize) -> usize {
    // Lengths come from the input; saturating keeps 32-bit targets panic-free.
    name_length
        .saturating_add(value_length)
        .saturating_add(ENTRY_OVERHEAD)
}

/// RFC 9113 §8.2.1: a value must not start or end with SP or HTAB.
fn has_no_surrounding_whitespace(value: &[u8]) -> bool {
    let is_whitespace = |octet: &u8| *octet == b' ' || *octet == b'\t';
    !value.first().is_some_and(is_whitespace) && !value.last().is_some_and(is_whitespace)
}

/// The octets `HeaderValue` accepts: anything but controls and DEL, HTAB excepted.
fn is_value_octet(octet: u8) -> bool {
    (octet >= 0x20 && octet != 0x7f) || octet == b'\t'
}

/// One entry of either table.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// What an indexed reference (RFC 7541 §6.1) yields.
    pub(crate) field: Field,
    /// What a literal that indexes this entry's name (§6.2) takes as its name; may be valid
    /// when `field` is malformed because of its value.
    pub(crate) name: Name,
    /// RFC 7541 §4.1 size.
    pub(crate) size: usize,
}

impl Entry {
    /// The entry for `name` and `value`.
    pub(crate) fn new(name: Name, value: Bytes) -> Entry {
        let size = field_size(name.len(), value.len());
        Entry {
            field: name.with_value(value),
            name,
            size,
        }
    }
}

/// The dynamic table of RFC 7541 §2.3.2.
#[derive(Debug)]
pub(crate) struct DynamicTable {
    /// Newest first: dynamic index 62 is `entries[0]`.
    entries: VecDeque<Entry>,
    /// The sum of the entries' sizes, never above `capacity`.
    size: usize,
    /// The maximum size the peer's encoder last set (§4.2).
    capacity: usize,
}

impl DynamicTable {
    /// An empty table of `capacity` octets.
    pub(crate) fn new(capacity: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            capacity,
        }
    }

    /// The entry at `index` in the combined index space (§2.3.3): 1 to 61 static, then dynamic.
    ///
    /// Errors: [`DecoderError::InvalidIndex`] for 0 and anything past the dynamic table.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Result<&Entry, DecoderError> {
        let entry = match index.checked_sub(1) {
            Some(offset) if offset < STATIC_ENTRIES.len() => STATIC_ENTRIES.get(offset),
            Some(offset) => self.entries.get(offset - STATIC_ENTRIES.len()),
            None => None,
        };
        entry.ok_or(DecoderError::InvalidIndex { index })
    }

    /// Adds `entry` as the newest, evicting the oldest as needed (§4.4). An entry larger than the
    /// whole table empties it and is not added.
    pub(crate) fn insert(&mut self, entry: Entry) {
        if entry.size > self.capacity {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.capacity - entry.size);
        self.size += entry.size;
        self.entries.push_front(entry);
    }

    /// Applies a dynamic table size update (§4.3, §6.3), evicting as needed.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        self.evict_to(capacity);
    }

    /// Evicts the oldest entries until the size is at most `size`.
    fn evict_to(&mut self, size: usize) {
        while self.size > size {
            match self.entries.pop_back() {
                Some(evicted) => self.size -= evicted.size,
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// The sum of the entries' sizes (§4.1).
    #[cfg(test)]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The entries, newest first.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}
