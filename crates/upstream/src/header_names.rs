//! The header names one HTTP/1.1 connection's peer wrote, kept between its messages.
//!
//! A peer writes the same names, spelled the same way and in the same order, in message after
//! message: a backend's `Server`, `Date`, `Content-Type`, `Content-Length`; a client's `Host`,
//! `User-Agent`, `Accept`. Turning a name's bytes into a [`HeaderName`] lowercases them and
//! looks them up among the standard names (about 140 instructions), and a name that is not
//! standard is copied into an allocation. A name already seen at the same position costs one
//! comparison of its bytes instead. Both the gateway's HTTP/1.1 server (request heads) and
//! its HTTP/1.1 client (response heads) keep one per connection.

use http::header::{HeaderName, InvalidHeaderName};

/// Names remembered per connection; fields past this many are parsed every time.
const POSITIONS: usize = 24;

/// Names by the position of their field in the last heads, with their bytes as written.
#[derive(Debug, Default)]
pub struct NameCache {
    slots: Vec<Slot>,
}

#[derive(Debug)]
struct Slot {
    written: Box<[u8]>,
    name: HeaderName,
}

impl NameCache {
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
