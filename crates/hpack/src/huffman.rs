//! Huffman-coded strings (RFC 7541 §5.2 and Appendix B), decoded four bits at a time.
//!
//! Owns the decoding state machine: its states are the internal nodes of the code tree (257
//! leaves, so 256 internal nodes), and each state has one transition per 4-bit input. The
//! machine is built from [`code_table::CODES`] at compile time, so a malformed table is a build
//! error and decoding does no setup and cannot panic. A string is refused when it contains the
//! EOS symbol, or when its padding is longer than 7 bits or is not a prefix of EOS (all ones).
//!
//! It does not encode: Portcullis sends no Huffman strings (`encoder` writes raw literals), so
//! the encoder here exists for tests only.

mod code_table;

use code_table::{CODES, EOS};

/// Why a Huffman-coded string was refused (RFC 7541 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HuffmanError {
    /// The string contained the EOS symbol.
    Eos,
    /// The string ended with more than 7 bits of padding.
    PaddingTooLong,
    /// The padding was not the leading bits of EOS (not all ones).
    PaddingNotEos,
}

/// The number of machine states: the internal nodes of the code tree.
const STATES: usize = 256;

/// The root of the code tree: the state between symbols.
const ROOT: u8 = 0;

/// A tree child that is a leaf carries this bit over its symbol; otherwise it is a node number.
/// Zero means "no child yet" while building (the root is never anyone's child).
const LEAF: u16 = 0x8000;

/// A transition's flag: it completed a symbol, which is in `symbol`.
const EMITS: u8 = 0b01;

/// A transition's flag: it completed EOS, so the string is refused.
const DECODES_EOS: u8 = 0b10;

/// What one 4-bit step from a state does.
#[derive(Clone, Copy)]
struct Transition {
    /// The state after the four bits.
    next: u8,
    /// The symbol completed on the way, when `flags` has [`EMITS`].
    symbol: u8,
    /// [`EMITS`], [`DECODES_EOS`] or neither: at most one symbol fits in four bits, as no code is
    /// shorter than five.
    flags: u8,
}

/// Whether a string may end in a state: the bits read since the last symbol are its padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    /// At most 7 bits, all ones (the root: no padding).
    Accepted,
    /// All ones, but 8 bits or more.
    TooLong,
    /// Some padding bit is zero.
    NotEos,
}

/// The decoding state machine.
struct Machine {
    /// `transitions[state][four bits]`.
    transitions: [[Transition; 16]; STATES],
    /// `endings[state]`: whether the input may stop there.
    endings: [Ending; STATES],
}

/// The code tree of [`CODES`], as built at compile time.
struct Tree {
    /// `children[node][bit]`: a node number, or [`LEAF`] with a symbol.
    children: [[u16; 2]; STATES],
    /// How many bits lead from the root to each node.
    depth: [u8; STATES],
    /// Whether every bit on the way from the root to each node is a one.
    is_all_ones: [bool; STATES],
}

/// Builds the code tree, refusing (at compile time) a table that is not a complete prefix code.
const fn build_tree() -> Tree {
    let mut tree = Tree {
        children: [[0; 2]; STATES],
        depth: [0; STATES],
        is_all_ones: [true; STATES],
    };
    let mut node_count = 1;
    let mut symbol = 0;
    while symbol < CODES.len() {
        let code = CODES[symbol];
        let mut node = ROOT as usize;
        let mut remaining = code.length as u32;
        // Every bit but the last leads to an internal node.
        while remaining > 1 {
            remaining -= 1;
            let bit = ((code.bits >> remaining) & 1) as usize;
            let child = tree.children[node][bit];
            if child == 0 {
                assert!(
                    node_count < STATES,
                    "257 leaves need exactly 256 internal nodes"
                );
                tree.children[node][bit] = node_count as u16;
                tree.depth[node_count] = tree.depth[node] + 1;
                tree.is_all_ones[node_count] = tree.is_all_ones[node] && bit == 1;
                node = node_count;
                node_count += 1;
            } else {
                assert!(child & LEAF == 0, "no code is a prefix of another");
                node = child as usize;
            }
        }
        let last = (code.bits & 1) as usize;
        assert!(tree.children[node][last] == 0, "no two codes are equal");
        tree.children[node][last] = LEAF | symbol as u16;
        symbol += 1;
    }
    let mut node = 0;
    while node < STATES {
        assert!(
            tree.children[node][0] != 0 && tree.children[node][1] != 0,
            "the code is complete: every internal node has two children"
        );
        node += 1;
    }
    tree
}

/// Builds the 4-bit state machine from the code tree.
const fn build_machine() -> Machine {
    let tree = build_tree();
    let mut machine = Machine {
        transitions: [[Transition {
            next: ROOT,
            symbol: 0,
            flags: 0,
        }; 16]; STATES],
        endings: [Ending::Accepted; STATES],
    };
    let mut state = 0;
    while state < STATES {
        let mut nibble = 0;
        while nibble < 16 {
            let mut node = state;
            let mut flags = 0;
            let mut symbol = 0;
            let mut remaining = 4;
            while remaining > 0 {
                remaining -= 1;
                let child = tree.children[node][(nibble >> remaining) & 1];
                if child & LEAF == 0 {
                    node = child as usize;
                    continue;
                }
                let decoded = (child & !LEAF) as usize;
                if decoded == EOS {
                    flags |= DECODES_EOS;
                } else {
                    assert!(flags & EMITS == 0, "no code is shorter than five bits");
                    flags |= EMITS;
                    symbol = decoded as u8;
                }
                node = ROOT as usize;
            }
            machine.transitions[state][nibble] = Transition {
                next: node as u8,
                symbol,
                flags,
            };
            nibble += 1;
        }
        machine.endings[state] = if !tree.is_all_ones[state] {
            Ending::NotEos
        } else if tree.depth[state] > 7 {
            Ending::TooLong
        } else {
            Ending::Accepted
        };
        state += 1;
    }
    machine
}

/// The machine, built once by the compiler (about 13 KB of read-only data).
static MACHINE: Machine = build_machine();

/// Decodes `src`, handing each decoded octet to `emit` in order.
///
/// On an error some octets may already have been emitted; the caller drops them.
pub(crate) fn decode(src: &[u8], mut emit: impl FnMut(u8)) -> Result<(), HuffmanError> {
    let mut state = ROOT;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            // Both indices are in range by their types: a u8 state and a nibble below 16.
            let transition = MACHINE.transitions[usize::from(state)][usize::from(nibble & 0x0f)];
            if transition.flags != 0 {
                if transition.flags & DECODES_EOS != 0 {
                    return Err(HuffmanError::Eos);
                }
                emit(transition.symbol);
            }
            state = transition.next;
        }
    }
    match MACHINE.endings[usize::from(state)] {
        Ending::Accepted => Ok(()),
        Ending::TooLong => Err(HuffmanError::PaddingTooLong),
        Ending::NotEos => Err(HuffmanError::PaddingNotEos),
    }
}

/// Appends the Huffman code of `src` to `dst`, padded with the leading bits of EOS.
#[cfg(test)]
pub(crate) fn encode(src: &[u8], dst: &mut Vec<u8>) {
    let mut pending: u64 = 0;
    let mut pending_bits = 0u32;
    for &byte in src {
        let code = CODES[usize::from(byte)];
        pending = (pending << code.length) | u64::from(code.bits);
        pending_bits += u32::from(code.length);
        while pending_bits >= 8 {
            pending_bits -= 8;
            dst.push((pending >> pending_bits) as u8);
        }
    }
    if pending_bits > 0 {
        let padding = 8 - pending_bits;
        dst.push(((pending << padding) as u8) | ((1u8 << padding) - 1));
    }
}

#[cfg(test)]
mod tests;
