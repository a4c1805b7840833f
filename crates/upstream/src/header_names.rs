//! The header names one HTTP/1.1 connection's peer wrote, kept between its messages.
//!
//! A peer writes the same names, spelled the same way and in the same order, in message after
//! message: a backend's `Server`, `Date`, `Content-Type`, `Content-Length`; a client's `Host`,
//! `User-Agent`, `Accept`. Turning a name's bytes into a [`HeaderName`] lowercases them and
//! looks them up among the standard names (about 140 instructions), and a name that is not
//! standard is copied into an allocation. A name already seen at the same position costs one
//! comparison of its bytes instead. Both the gateway's HTTP/1.1 server (request heads) and
//! its HTTP/1.1 client (response heads) keep one per connection.
//!
//! It also keeps where a head's values are ([`NameCache::collect`]), so that the head's bytes
//! can be split off the connection's read buffer without a copy once the parser's borrow of
//! them ends, and the values sliced from them.

use std::ops::Range;

use http::header::{HeaderName, InvalidHeaderName};

/// Names remembered per connection; fields past this many are parsed every time.
const POSITIONS: usize = 24;

/// Names by the position of their field in the last heads, with their bytes as written.
#[derive(Debug, Default)]
pub struct NameCache {
    slots: Vec<Slot>,
    /// The fields of the head being read (kept for its capacity between heads).
    fields: Vec<Field>,
}

/// A field of a head: its name, and where its value is in the head's bytes.
#[derive(Debug)]
pub struct Field {
    /// The name.
    pub name: HeaderName,
    /// The value's place in the bytes the head was parsed from.
    pub value: Range<usize>,
}

/// A field name that is not a token (its position in the head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidName {
    /// Index of the field in the head.
    pub position: usize,
}

#[derive(Debug)]
struct Slot {
    written: Box<[u8]>,
    name: HeaderName,
}

impl NameCache {
    /// Names the fields `parsed` from `head` and notes where their values are in it. The
    /// fields are then taken in order with [`take_fields`](Self::take_fields).
    pub fn collect(
        &mut self,
        head: &[u8],
        parsed: &[httparse::Header<'_>],
    ) -> Result<(), InvalidName> {
        self.fields.clear();
        let base = head.as_ptr().addr();
        for (position, field) in parsed.iter().enumerate() {
            let name = self
                .name(position, field.name.as_bytes())
                .map_err(|_| InvalidName { position })?;
            let start = field.value.as_ptr().addr() - base;
            self.fields.push(Field {
                name,
                value: start..start + field.value.len(),
            });
        }
        Ok(())
    }

    /// The fields of the last [`collect`](Self::collect), in order.
    pub fn take_fields(&mut self) -> std::vec::Drain<'_, Field> {
        self.fields.drain(..)
    }

    /// The name of the field at `position` of a head, written as `bytes`.
    pub fn name(&mut self, position: usize, bytes: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
        if let Some(slot) = self.slots.get(position)
            && *slot.written == *bytes
        {
            return Ok(slot.name.clone());
        }
        let name = HeaderName::from_bytes(bytes)?;
        if position < POSITIONS {
            let slot = Slot {
                written: bytes.into(),
                name: name.clone(),
            };
            // Positions fill in order: a new slot is the next one (a name after a gap is not
            // kept).
            if position < self.slots.len() {
                self.slots[position] = slot;
            } else if position == self.slots.len() {
                self.slots.push(slot);
            }
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_seen_at_its_position_is_the_same_name() {
        let mut cache = NameCache::default();
        for _ in 0..3 {
            assert_eq!(
                cache.name(0, b"Content-Length").expect("a valid name"),
                "content-length"
            );
            assert_eq!(
                cache.name(1, b"X-Custom").expect("a valid name"),
                "x-custom"
            );
        }
        assert_eq!(cache.slots.len(), 2);
    }

    #[test]
    fn a_different_name_at_a_position_replaces_it() {
        let mut cache = NameCache::default();
        assert_eq!(cache.name(0, b"Date").expect("a valid name"), "date");
        assert_eq!(cache.name(0, b"Server").expect("a valid name"), "server");
        assert_eq!(cache.name(0, b"Server").expect("a valid name"), "server");
        assert_eq!(cache.slots[0].name, "server");
        // Spelling counts: the bytes are compared as written.
        assert_eq!(cache.name(0, b"SERVER").expect("a valid name"), "server");
        assert_eq!(&*cache.slots[0].written, b"SERVER");
    }

    #[test]
    fn collected_fields_say_where_their_values_are() {
        let text = b"Host: a.test\r\nX-Long: value two\r\n\r\n";
        let mut parsed = [httparse::EMPTY_HEADER; 4];
        let httparse::Status::Complete((_, parsed)) =
            httparse::parse_headers(text, &mut parsed).expect("valid")
        else {
            panic!("complete");
        };
        let mut cache = NameCache::default();
        cache.collect(text, parsed).expect("valid names");
        let fields: Vec<_> = cache
            .take_fields()
            .map(|field| (field.name, &text[field.value]))
            .collect();
        assert_eq!(
            fields,
            [
                (HeaderName::from_static("host"), &b"a.test"[..]),
                (HeaderName::from_static("x-long"), &b"value two"[..]),
            ]
        );
    }

    #[test]
    fn invalid_names_are_refused_and_not_kept() {
        let mut cache = NameCache::default();
        assert!(cache.name(0, b"bad name").is_err());
        assert!(cache.slots.is_empty());
        assert!(cache.name(0, b"").is_err());
    }

    #[test]
    fn positions_beyond_the_limit_are_parsed_every_time() {
        let mut cache = NameCache::default();
        for position in 0..POSITIONS + 5 {
            let written = format!("x-field-{position}");
            assert_eq!(
                cache
                    .name(position, written.as_bytes())
                    .expect("a valid name"),
                written.as_str()
            );
        }
        assert_eq!(cache.slots.len(), POSITIONS);
        // A gap (a position never filled) is not kept either.
        let mut cache = NameCache::default();
        cache.name(3, b"host").expect("a valid name");
        assert!(cache.slots.is_empty());
    }
}
