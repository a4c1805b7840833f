//! [`UnitSet`]: the units behind one index entry (a Service's readers, a backend's holders, a
//! hostname's routes), one held inline.

use std::collections::BTreeSet;

use super::UnitKey;

/// A sorted set of units. Most Services, backends and hostnames have one route, and a
/// `BTreeSet` of one key allocates a whole node (about 100 bytes for an 8-byte key): one key is
/// held inline, more in a `BTreeSet`.
#[derive(Debug, Default)]
pub(super) enum UnitSet {
    #[default]
    Empty,
    One(UnitKey),
    Many(BTreeSet<UnitKey>),
}

impl UnitSet {
    /// Adds `key`; `false` when it was there.
    pub(super) fn insert(&mut self, key: UnitKey) -> bool {
        match self {
            UnitSet::Empty => {
                *self = UnitSet::One(key);
                true
            }
            UnitSet::One(only) if *only == key => false,
            UnitSet::One(only) => {
                let only = only.clone();
                *self = UnitSet::Many(BTreeSet::from([only, key]));
                true
            }
            UnitSet::Many(keys) => keys.insert(key),
        }
    }

    /// Removes `key`; `false` when it was not there.
    pub(super) fn remove(&mut self, key: &UnitKey) -> bool {
        match self {
            UnitSet::One(only) if only == key => {
                *self = UnitSet::Empty;
                true
            }
            UnitSet::Empty | UnitSet::One(_) => false,
            UnitSet::Many(keys) => {
                let removed = keys.remove(key);
                if keys.len() <= 1 {
                    *self = keys.pop_first().map_or(UnitSet::Empty, UnitSet::One);
                }
                removed
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        matches!(self, UnitSet::Empty)
    }

    /// The units, in order.
    pub(super) fn iter(&self) -> Iter<'_> {
        match self {
            UnitSet::Empty => Iter::One(None),
            UnitSet::One(only) => Iter::One(Some(only)),
            UnitSet::Many(keys) => Iter::Many(keys.iter()),
        }
    }
}

/// The units of a [`UnitSet`], in order.
pub(super) enum Iter<'a> {
    One(Option<&'a UnitKey>),
    Many(std::collections::btree_set::Iter<'a, UnitKey>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a UnitKey;

    fn next(&mut self) -> Option<&'a UnitKey> {
        match self {
            Iter::One(only) => only.take(),
            Iter::Many(keys) => keys.next(),
        }
    }
}

impl<'a> IntoIterator for &'a UnitSet {
    type Item = &'a UnitKey;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::UnitKind;
    use super::*;

    fn key(name: &str) -> UnitKey {
        Arc::new((UnitKind::Http, "ns".into(), name.into()))
    }

    fn names(set: &UnitSet) -> Vec<&str> {
        set.iter().map(|key| key.2.as_str()).collect()
    }

    #[test]
    fn holds_one_inline_and_more_in_order() {
        let mut set = UnitSet::default();
        assert!(set.is_empty());
        assert!(set.insert(key("b")));
        assert!(matches!(set, UnitSet::One(_)));
        assert!(!set.insert(key("b")));
        assert!(set.insert(key("c")));
        assert!(set.insert(key("a")));
        assert_eq!(names(&set), ["a", "b", "c"]);
        assert!(set.remove(&key("b")));
        assert!(!set.remove(&key("b")));
        assert!(set.remove(&key("a")));
        assert!(matches!(set, UnitSet::One(_)), "back inline: {set:?}");
        assert_eq!(names(&set), ["c"]);
        assert!(!set.remove(&key("x")));
        assert!(set.remove(&key("c")));
        assert!(set.is_empty());
        assert_eq!(names(&set), Vec::<&str>::new());
    }
}
