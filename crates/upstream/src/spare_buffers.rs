//! Byte buffers kept per thread between the messages that need one.
//!
//! Every proxied HTTP/1.1 request writes its head into a buffer of its own (the connection
//! then takes it as its output buffer, and its previous one is free), and a response head
//! passed on as bytes ([`crate::RawHead`]) has one too. An allocation and a free cost about a
//! hundred instructions each time; a buffer taken from here and given back costs a few.
//! Bounded: a few buffers per thread, none larger than [`MAX_KEPT`].

use std::cell::RefCell;

/// Buffers kept per thread.
const KEPT: usize = 8;
/// A buffer larger than this is freed rather than kept (a large head is rare).
const MAX_KEPT: usize = 8 * 1024;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for at least `capacity` bytes.
pub(crate) fn take(capacity: usize) -> Vec<u8> {
    let kept = SPARE.with(|spare| spare.borrow_mut().pop());
    match kept {
        Some(mut buffer) => {
            buffer.reserve(capacity);
            buffer
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Keeps `buffer` for a later [`take`] on this thread, if there is room for it.
pub(crate) fn give_back(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 || buffer.capacity() > MAX_KEPT {
        return;
    }
    buffer.clear();
    // At thread exit the pool may be gone already: the buffer is then freed.
    let _ = SPARE.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < KEPT {
            spare.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty() {
        let mut buffer = take(100);
        buffer.extend_from_slice(b"head");
        let address = buffer.as_ptr();
        give_back(buffer);
        let again = take(10);
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), address);
        assert!(again.capacity() >= 100);
    }

    #[test]
    fn large_buffers_and_a_full_pool_are_not_kept() {
        give_back(Vec::with_capacity(MAX_KEPT + 1));
        for _ in 0..KEPT + 4 {
            give_back(Vec::with_capacity(64));
        }
        let kept = SPARE.with(|spare| spare.borrow().len());
        assert!(kept <= KEPT);
        assert!(SPARE.with(|spare| spare.borrow().iter().all(|b| b.capacity() <= MAX_KEPT)));
    }
}
