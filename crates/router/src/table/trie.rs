//! A path-element trie of `PathPrefix` matches: one lookup walks the request path once and
//! yields the prefix candidates longest first.
//!
//! Owns only the element-wise prefix semantics (`/abc` covers `/abc`, `/abc/` and `/abc/x`,
//! not `/abcd`). It stores opaque entry indexes and leaves their order within a node, and every
//! other condition, to the caller.

use std::collections::HashMap;

#[cfg(test)]
mod tests;

/// Trie keyed by path elements. A node at depth `n` stands for the element prefix
/// `/e1/e2/.../en`; the root stands for `""`, i.e. `PathPrefix /`.
#[derive(Debug, Default, Clone)]
pub(crate) struct PrefixTrie {
    root: Node,
}

#[derive(Debug, Default, Clone)]
struct Node {
    children: Children,
    /// Entries whose prefix ends at this node, in the caller's precedence order.
    entries: Vec<usize>,
}

/// Most nodes below the first level have one or two children, where comparing a few short
/// strings beats hashing the element; wide nodes switch to a hash map so lookup stays flat.
#[derive(Debug, Clone)]
enum Children {
    Few(Vec<(Box<str>, Node)>),
    Many(HashMap<Box<str>, Node>),
}

/// Widest node still searched linearly.
const MAX_LINEAR_CHILDREN: usize = 8;

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

impl Children {
    fn is_empty(&self) -> bool {
        match self {
            Children::Few(children) => children.is_empty(),
            Children::Many(children) => children.is_empty(),
        }
    }

    fn get(&self, element: &str) -> Option<&Node> {
        match self {
            Children::Few(children) => children
                .iter()
                .find(|(name, _)| &**name == element)
                .map(|(_, node)| node),
            Children::Many(children) => children.get(element),
        }
    }

    fn get_or_insert(&mut self, element: &str) -> &mut Node {
        if let Children::Few(children) = self
            && children.len() >= MAX_LINEAR_CHILDREN
            && !children.iter().any(|(name, _)| &**name == element)
        {
            *self = Children::Many(std::mem::take(children).into_iter().collect());
        }
        match self {
            Children::Few(children) => {
                let position = match children.iter().position(|(name, _)| &**name == element) {
                    Some(position) => position,
                    None => {
                        children.push((element.into(), Node::default()));
                        children.len() - 1
                    }
                };
                &mut children[position].1
            }
            Children::Many(children) => children.entry(element.into()).or_default(),
        }
    }
}

impl PrefixTrie {
    /// Adds `entry` under `elements`, the output of `matching::prefix_elements`: `""` or a string
    /// starting with `/`. Empty elements (`//`) are kept as elements of their own so the trie
    /// agrees byte for byte with `PathMatch::matches`.
    pub(crate) fn insert(&mut self, elements: &str, entry: usize) {
        let mut node = &mut self.root;
        if let Some(rest) = elements.strip_prefix('/') {
            for element in rest.split('/') {
                node = node.children.get_or_insert(element);
            }
        }
        node.entries.push(entry);
    }

    /// The first entry, deepest node first and in insertion order within a node, for which
    /// `accept` returns true, among the prefixes that cover `path`.
    ///
    /// Deepest first is longest first: a deeper node's prefix is strictly longer (as written,
    /// trailing slash included) than any shallower one, so this is the spec's "largest number of
    /// characters" order. Recursion depth is bounded by the deepest configured prefix, not by the
    /// request.
    pub(crate) fn find(&self, path: &str, mut accept: impl FnMut(usize) -> bool) -> Option<usize> {
        match path.strip_prefix('/') {
            Some(rest) => self.root.find(rest, &mut accept),
            // A path not starting with `/` (e.g. `*` in `OPTIONS *`) is covered only by `/`.
            None => self.root.first_accepted(&mut accept),
        }
    }
}

impl Node {
    /// `rest` is the request path after the `/` that ends this node's prefix.
    fn find(&self, rest: &str, accept: &mut impl FnMut(usize) -> bool) -> Option<usize> {
        if !self.children.is_empty() {
            let (element, tail) = match rest.split_once('/') {
                Some((element, tail)) => (element, Some(tail)),
                None => (rest, None),
            };
            if let Some(child) = self.children.get(element) {
                let found = match tail {
                    Some(tail) => child.find(tail, accept),
                    // The path ends inside this element, so no deeper prefix can cover it.
                    None => child.first_accepted(accept),
                };
                if found.is_some() {
                    return found;
                }
            }
        }
        self.first_accepted(accept)
    }

    fn first_accepted(&self, accept: &mut impl FnMut(usize) -> bool) -> Option<usize> {
        self.entries.iter().copied().find(|&entry| accept(entry))
    }
}
