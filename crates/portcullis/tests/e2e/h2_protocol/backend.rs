//! The backend behind the gateway in these tests: HTTP/1.1 and h2c on one loopback port, serving
//! pattern bytes, echoing bodies, and recording what reached it.
//!
//! - `GET /bytes?size=N[&trailers=1]` (or `HEAD`): N bytes of [`super::pattern`] (seed 0), in 32 KiB
//!   frames; with `trailers=1` the body is followed by trailers `x-checksum` (the body's
//!   [`fnv`] hash, hex) and `x-trailer: done` (only an h2c connection carries them).
//! - `/echo...`: the request body back, whole.
//! - anything else: the body is read to its end and summarised as JSON (`received`, `hash`,
//!   `trailers`, `error`).
//!
//! Every request's path is recorded when its head arrives, and the outcome of reading its body
//! when that ends ([`BodyOutcome`]): a test can wait for a request to be in flight, and tell a
//! body that arrived whole from one that was cut off. It asserts nothing itself.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::fixture::eventually;

/// How long a test waits for the backend to see something.
const WAIT: Duration = Duration::from_secs(10);

/// Bytes per frame of a pattern response.
const CHUNK: usize = 32 * 1024;

/// FNV-1a, 64 bit, fed piece by piece.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fnv(u64);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(super) fn update(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(super) fn value(self) -> u64 {
        self.0
    }
}

/// The FNV-1a hash of `bytes`.
pub(super) fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = Fnv::new();
    hash.update(bytes);
    hash.value()
}

/// How reading a request body ended.
#[derive(Clone, Debug)]
pub(super) struct BodyOutcome {
    /// Body bytes read.
    pub(super) received: usize,
    /// Their FNV-1a hash.
    pub(super) hash: u64,
    /// The request's trailers, when it had any.
    pub(super) trailers: Option<HeaderMap>,
    /// Why the body stopped before its end, when it did.
    pub(super) error: Option<String>,
}

impl BodyOutcome {
    /// The body arrived to its end.
    pub(super) fn is_complete(&self) -> bool {
        self.error.is_none()
    }
}

/// One request that reached the backend.
#[derive(Clone, Debug)]
struct Arrival {
    path: String,
    /// `None` while its body is being read.
    body: Option<BodyOutcome>,
}

type Log = Arc<Mutex<Vec<Arrival>>>;

fn lock(log: &Log) -> std::sync::MutexGuard<'_, Vec<Arrival>> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running backend on 127.0.0.1 (see the module doc).
pub(super) struct BodyBackend {
    addr: SocketAddr,
    log: Log,
    accept: JoinHandle<()>,
}

impl BodyBackend {
    pub(super) async fn start() -> anyhow::Result<BodyBackend> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let log: Log = Arc::default();
        let accepting = Arc::clone(&log);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _peer)) = listener.accept().await {
                let log = Arc::clone(&accepting);
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&log), request));
                    let _ended = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(BodyBackend { addr, log, accept })
    }

    pub(super) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests to `path` whose head arrived.
    pub(super) fn heads(&self, path: &str) -> usize {
        lock(&self.log)
            .iter()
            .filter(|arrival| arrival.path == path)
            .count()
    }

    /// How the body of the first request to `path` ended, once it has.
    pub(super) fn outcome(&self, path: &str) -> Option<BodyOutcome> {
        lock(&self.log)
            .iter()
            .find(|arrival| arrival.path == path)
            .and_then(|arrival| arrival.body.clone())
    }

    /// Waits until a request to `path` is at the backend.
    pub(super) async fn wait_for_head(&self, path: &str) -> anyhow::Result<()> {
        eventually(WAIT, async || {
            anyhow::ensure!(
                self.heads(path) > 0,
                "no request to {path} reached the backend"
            );
            Ok(())
        })
        .await
    }

    /// Waits until the body of the request to `path` ended (whole or cut off).
    pub(super) async fn wait_for_outcome(&self, path: &str) -> anyhow::Result<BodyOutcome> {
        eventually(WAIT, async || {
            self.outcome(path)
                .with_context(|| format!("the backend is still reading the body of {path}"))
        })
        .await
    }
}

impl Drop for BodyBackend {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn handle(log: Log, request: Request<Incoming>) -> Result<Response<Reply>, Infallible> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let index = {
        let mut log = lock(&log);
        log.push(Arrival {
            path: path.clone(),
            body: None,
        });
        log.len() - 1
    };
    if matches!(*request.method(), Method::GET | Method::HEAD) && path.starts_with("/bytes") {
        let parameter = |name: &str| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let size = parameter("size")
            .and_then(|size| size.parse().ok())
            .unwrap_or(0);
        let trailers = parameter("trailers").as_deref() == Some("1");
        lock(&log)[index].body = Some(BodyOutcome {
            received: 0,
            hash: fnv(&[]),
            trailers: None,
            error: None,
        });
        return Ok(Response::new(Reply::Pattern(PatternBody {
            offset: 0,
            total: size,
            hash: Fnv::new(),
            trailers,
        })));
    }
    let echo = path.starts_with("/echo");
    let (outcome, body) = read_body(request.into_body(), echo).await;
    let summary = json!({
        "received": outcome.received,
        "hash": outcome.hash,
        "trailers": outcome.trailers.as_ref().map(|trailers| {
            trailers
                .iter()
                .map(|(name, value)| {
                    (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
                })
                .collect::<BTreeMap<_, _>>()
        }),
        "error": outcome.error,
    });
    lock(&log)[index].body = Some(outcome);
    let reply = if echo {
        Bytes::from(body)
    } else {
        Bytes::from(summary.to_string())
    };
    Ok(Response::new(Reply::Whole(Full::new(reply))))
}

/// Reads a body frame by frame (keeping its bytes when `keep`).
async fn read_body(mut body: Incoming, keep: bool) -> (BodyOutcome, Vec<u8>) {
    let mut outcome = BodyOutcome {
        received: 0,
        hash: 0,
        trailers: None,
        error: None,
    };
    let mut hash = Fnv::new();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => match frame.into_data() {
                Ok(data) => {
                    outcome.received += data.len();
                    hash.update(&data);
                    if keep {
                        kept.extend_from_slice(&data);
                    }
                }
                Err(frame) => outcome.trailers = frame.into_trailers().ok(),
            },
            Err(error) => {
                outcome.error = Some(error.to_string());
                break;
            }
        }
    }
    outcome.hash = hash.value();
    (outcome, kept)
}

/// A response body: whole, or a pattern.
enum Reply {
    Whole(Full<Bytes>),
    Pattern(PatternBody),
}

/// `total` pattern bytes in [`CHUNK`] frames, then trailers when asked for.
struct PatternBody {
    offset: usize,
    total: usize,
    hash: Fnv,
    trailers: bool,
}

impl Body for Reply {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let pattern = match self.get_mut() {
            Reply::Whole(full) => return Pin::new(full).poll_frame(cx),
            Reply::Pattern(pattern) => pattern,
        };
        if pattern.offset < pattern.total {
            let end = (pattern.offset + CHUNK).min(pattern.total);
            let chunk: Vec<u8> = (pattern.offset..end)
                .map(|index| super::pattern_byte(0, index))
                .collect();
            pattern.hash.update(&chunk);
            pattern.offset = end;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))));
        }
        if std::mem::take(&mut pattern.trailers) {
            let mut trailers = HeaderMap::new();
            let checksum = format!("{:016x}", pattern.hash.value());
            if let Ok(value) = HeaderValue::from_str(&checksum) {
                trailers.insert("x-checksum", value);
            }
            trailers.insert("x-trailer", HeaderValue::from_static("done"));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Whole(full) => full.is_end_stream(),
            Reply::Pattern(pattern) => pattern.offset >= pattern.total && !pattern.trailers,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Whole(full) => full.size_hint(),
            Reply::Pattern(pattern) => {
                SizeHint::with_exact((pattern.total - pattern.offset) as u64)
            }
        }
    }
}
