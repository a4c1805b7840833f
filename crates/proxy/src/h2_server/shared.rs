//! What a connection shares with the futures and tasks that serve its streams.
//!
//! The connection's task polls every stream itself (the request future through the stack,
//! then the response body), so most of a stream is the connection's alone. Two things cross
//! over: **wake-ups** (a stream's future is woken by the upstream's socket, a timer or
//! another task: [`StreamWaker`] queues the stream on the connection's [`ReadyQueue`] and
//! wakes the connection's task), and, for a stream with a request body or a tunnel, the
//! bytes themselves ([`StreamShared`]): the body may be read by another task (an upstream
//! HTTP/2 connection's, a mirror's), and a tunnel's two halves are copied by the upgrade
//! task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Wake, Waker};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use http::HeaderMap;

use super::frame::ErrorCode;

/// The streams woken since the connection last looked, and the connection's own waker.
#[derive(Default)]
pub(super) struct ReadyQueue {
    keys: Mutex<Vec<usize>>,
    connection: AtomicWaker,
    /// The connection's task is in its poll and looks at the queue before it returns: a
    /// wake-up then needs no wake of the task (which would poll it once more for nothing).
    polling: AtomicBool,
}

impl ReadyQueue {
    fn push(&self, key: usize) {
        lock(&self.keys).push(key);
        if !self.polling.load(Ordering::SeqCst) {
            self.connection.wake();
        }
    }

    /// The connection's task starts polling with this waker.
    pub(super) fn enter(&self, waker: &Waker) {
        self.connection.register(waker);
        self.polling.store(true, Ordering::SeqCst);
    }

    /// The connection's task is about to return `Pending`: from here on wake-ups wake it.
    /// `false` when streams were woken meanwhile (the task polls on instead).
    pub(super) fn leave(&self) -> bool {
        self.polling.store(false, Ordering::SeqCst);
        if lock(&self.keys).is_empty() {
            return true;
        }
        self.polling.store(true, Ordering::SeqCst);
        false
    }

    /// Moves the woken streams' keys into `into` (emptied first).
    pub(super) fn take(&self, into: &mut Vec<usize>) {
        into.clear();
        std::mem::swap(&mut *lock(&self.keys), into);
    }
}

/// A stream's waker: queues the stream (once until the connection polls it) and wakes the
/// connection.
pub(super) struct StreamWaker {
    key: usize,
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl StreamWaker {
    /// The waker of the stream at `key` in the connection's table, and its handle.
    pub(super) fn new(key: usize, queue: &Arc<ReadyQueue>) -> (Arc<StreamWaker>, Waker) {
        let stream = Arc::new(StreamWaker {
            key,
            queued: AtomicBool::new(false),
            queue: Arc::clone(queue),
        });
        let waker = Waker::from(Arc::clone(&stream));
        (stream, waker)
    }

    /// The connection is about to poll the stream: wake-ups from here on queue it again.
    pub(super) fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }
}

impl Wake for StreamWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.key);
        }
    }
}

/// A stream's bytes between the connection and whoever reads its request body or uses its
/// tunnel.
pub(crate) struct StreamShared {
    state: Mutex<SharedState>,
}

/// See [`StreamShared`].
pub(super) struct SharedState {
    // From the client.
    /// DATA payloads not yet read.
    pub(super) received: VecDeque<Bytes>,
    pub(super) trailers: Option<HeaderMap>,
    /// The client ended the stream (END_STREAM).
    pub(super) received_end: bool,
    /// The stream failed: reset by the client (its code), or by the gateway, or the
    /// connection is gone.
    pub(super) failed: Option<ErrorCode>,
    pub(super) reader: Option<Waker>,
    /// Nobody reads the body any more: what arrives is given back to the windows at once.
    pub(super) reader_gone: bool,
    /// Bytes read since the connection last looked: window to give back.
    pub(super) released: usize,
    // To the client (a tunnel's writes).
    pub(super) outgoing: VecDeque<Bytes>,
    pub(super) outgoing_len: usize,
    /// The writer shut its side down: END_STREAM after `outgoing`.
    pub(super) outgoing_end: bool,
    pub(super) writer: Option<Waker>,
    /// Wakes the connection for this stream.
    pub(super) stream: Waker,
}

impl StreamShared {
    pub(super) fn new(stream: Waker) -> Arc<StreamShared> {
        Arc::new(StreamShared {
            state: Mutex::new(SharedState {
                received: VecDeque::new(),
                trailers: None,
                received_end: false,
                failed: None,
                reader: None,
                reader_gone: false,
                released: 0,
                outgoing: VecDeque::new(),
                outgoing_len: 0,
                outgoing_end: false,
                writer: None,
                stream,
            }),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, SharedState> {
        lock(&self.state)
    }

    /// The stream is over for whoever reads or writes it (`code`: why, when it did not end
    /// well): both are woken.
    pub(super) fn fail(&self, code: ErrorCode) {
        let (reader, writer) = {
            let mut state = self.lock();
            if state.failed.is_none() {
                state.failed = Some(code);
            }
            (state.reader.take(), state.writer.take())
        };
        reader.into_iter().chain(writer).for_each(Waker::wake);
    }
}

impl SharedState {
    /// Wakes whoever waits to read.
    pub(super) fn wake_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }
}

/// A poisoned lock is still usable here: every state change is a single field write.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
