//! A small HTTP/2 client that writes frames by hand and reads the gateway's frames back one by
//! one, for what a real client library would refuse to send or would hide: malformed requests,
//! floods, and exact flow-control accounting.
//!
//! Frames are built by the functions of [`frame`], request header blocks by [`Block`];
//! response header blocks are decoded with [`hpack::Decoder`]. The client never checks the
//! gateway's behaviour itself: it returns frames, and the tests decide.

mod block;
mod frame;

use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(super) use block::Block;
pub(super) use frame::{
    Frame, PREFACE, code, code_name, data, flag, frame, headers, kind, padded_data, ping,
    rst_stream, setting, settings, split_block, window_update,
};

/// How long one read may wait for the gateway's next frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A response read off a raw connection.
#[derive(Debug)]
pub(super) struct RawResponse {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) trailers: Option<Vec<(String, String)>>,
}

impl RawResponse {
    /// The value of response header `name` (the first, when there are several).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as the echo backend's JSON reply.
    pub(super) fn echo(&self) -> anyhow::Result<testkit::EchoReply> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "not an echo reply ({}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as JSON.
    pub(super) fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "not JSON ({}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A client connection that speaks frames by hand.
///
/// It keeps the gateway's receive windows as the client sees them (RFC 9113 §6.9): every
/// WINDOW_UPDATE it reads, on whichever path, adds to them, and [`RawConnection::data_frames`]
/// takes from them. Frames read while waiting for a window ([`RawConnection::wait_for_window`])
/// are kept for the next reads.
pub(super) struct RawConnection {
    stream: TcpStream,
    buffer: BytesMut,
    decoder: hpack::Decoder,
    /// The parameters of the gateway's first SETTINGS.
    settings: Vec<(u16, u32)>,
    /// Frames read and not yet handed out.
    stashed: VecDeque<Frame>,
    /// What the gateway lets the client send: on the connection, and on each stream that
    /// sent or was granted something (the others have `initial_window`).
    connection_window: i64,
    stream_windows: HashMap<u32, i64>,
    initial_window: i64,
}

impl RawConnection {
    /// Connects, sends the preface and an empty SETTINGS in one write (the listener tells
    /// HTTP/2 from HTTP/1.1 by the first 24 bytes), reads the gateway's SETTINGS and
    /// acknowledges them.
    pub(super) async fn open(addr: SocketAddr) -> anyhow::Result<RawConnection> {
        RawConnection::open_with(addr, &[]).await
    }

    /// [`RawConnection::open`] with the client's SETTINGS carrying `parameters`.
    pub(super) async fn open_with(
        addr: SocketAddr,
        parameters: &[(u16, u32)],
    ) -> anyhow::Result<RawConnection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut connection = RawConnection {
            stream,
            buffer: BytesMut::new(),
            decoder: hpack::Decoder::new(4096),
            settings: Vec::new(),
            stashed: VecDeque::new(),
            connection_window: i64::from(super::DEFAULT_WINDOW),
            stream_windows: HashMap::new(),
            initial_window: i64::from(super::DEFAULT_WINDOW),
        };
        let mut opening = PREFACE.to_vec();
        opening.extend(settings(parameters));
        connection.send(&opening).await?;
        loop {
            let frame = connection
                .next_frame()
                .await?
                .context("the gateway closed the connection before its SETTINGS")?;
            ensure!(
                frame.kind == kind::SETTINGS,
                "the gateway's first frame is {frame}, not SETTINGS (RFC 9113 §3.4)"
            );
            if frame.has(flag::ACK) {
                continue;
            }
            connection.settings = frame
                .payload
                .chunks_exact(6)
                .map(|p| {
                    let id = u16::from_be_bytes([p[0], p[1]]);
                    (id, u32::from_be_bytes([p[2], p[3], p[4], p[5]]))
                })
                .collect();
            if let Some(window) = connection.setting(setting::INITIAL_WINDOW_SIZE) {
                connection.initial_window = i64::from(window);
            }
            break;
        }
        connection
            .send(&frame(kind::SETTINGS, flag::ACK, 0, &[]))
            .await?;
        Ok(connection)
    }

    /// The value of parameter `id` in the gateway's SETTINGS.
    pub(super) fn setting(&self, id: u16) -> Option<u32> {
        self.settings
            .iter()
            .find(|(candidate, _)| *candidate == id)
            .map(|(_, value)| *value)
    }

    pub(super) async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream
            .write_all(bytes)
            .await
            .context("writing frames to the gateway")
    }

    /// The next frame, or `None` once the gateway closed the connection.
    pub(super) async fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        if let Some(frame) = self.stashed.pop_front() {
            return Ok(Some(frame));
        }
        self.read_frame().await
    }

    /// What `stream` may send now: the smaller of its window and the connection's.
    pub(super) fn window(&self, stream: u32) -> i64 {
        let stream = self
            .stream_windows
            .get(&stream)
            .copied()
            .unwrap_or(self.initial_window);
        stream.min(self.connection_window)
    }

    /// Reads the gateway's frames (kept for later reads) until `stream` may send `needed`
    /// bytes. A GOAWAY, a RST_STREAM of `stream` or the connection's end first is an error,
    /// and so is a gateway that gives no window back within the frame timeout.
    pub(super) async fn wait_for_window(
        &mut self,
        stream: u32,
        needed: usize,
    ) -> anyhow::Result<()> {
        let needed = i64::try_from(needed)?;
        while self.window(stream) < needed {
            let frame = self.read_frame().await.with_context(|| {
                format!(
                    "waiting for the gateway to give back its receive window: stream {stream} \
                     needs {needed} bytes, the windows allow {} (connection {})",
                    self.window(stream),
                    self.connection_window
                )
            })?;
            let Some(frame) = frame else {
                bail!("the gateway closed the connection while stream {stream} waited for window");
            };
            if frame.kind == kind::GOAWAY
                || (frame.kind == kind::RST_STREAM && frame.stream == stream)
            {
                bail!("the gateway sent {frame} while stream {stream} waited for window");
            }
            if frame.kind != kind::WINDOW_UPDATE {
                self.stashed.push_back(frame);
            }
        }
        Ok(())
    }

    /// DATA frames (at most [`super::MAX_FRAME_SIZE`] bytes each) carrying `payload` on
    /// `stream`, taken from the windows; END_STREAM on the last when `end_stream`. The
    /// windows must allow them ([`RawConnection::wait_for_window`]).
    pub(super) fn data_frames(
        &mut self,
        stream: u32,
        payload: &[u8],
        end_stream: bool,
    ) -> anyhow::Result<Vec<u8>> {
        self.take_window(stream, payload.len())?;
        let mut frames = Vec::new();
        let mut chunks = payload.chunks(super::MAX_FRAME_SIZE).peekable();
        if chunks.peek().is_none() {
            return Ok(data(stream, &[], end_stream));
        }
        while let Some(chunk) = chunks.next() {
            frames.extend(data(stream, chunk, end_stream && chunks.peek().is_none()));
        }
        Ok(frames)
    }

    /// Takes `length` bytes of flow-controlled frames on `stream` from the windows, which must
    /// allow them.
    pub(super) fn take_window(&mut self, stream: u32, length: usize) -> anyhow::Result<()> {
        let length = i64::try_from(length)?;
        ensure!(
            length <= self.window(stream),
            "test bug: {length} bytes on stream {stream} beyond the gateway's window {}",
            self.window(stream)
        );
        self.connection_window -= length;
        *self
            .stream_windows
            .entry(stream)
            .or_insert(self.initial_window) -= length;
        Ok(())
    }

    /// Sends `body` on `stream` as fast as the gateway's windows allow, waiting for its
    /// WINDOW_UPDATEs whenever they are closed; END_STREAM on the last frame when
    /// `end_stream`.
    pub(super) async fn send_body(
        &mut self,
        stream: u32,
        body: &[u8],
        end_stream: bool,
    ) -> anyhow::Result<()> {
        if body.is_empty() && !end_stream {
            return Ok(());
        }
        let mut sent = 0;
        loop {
            let left = body.len() - sent;
            if left > 0 {
                self.wait_for_window(stream, 1)
                    .await
                    .with_context(|| format!("{sent} of {} body bytes sent", body.len()))?;
            }
            let allowed = usize::try_from(self.window(stream)).unwrap_or(0);
            let chunk = left.min(allowed).min(super::MAX_FRAME_SIZE);
            let last = sent + chunk == body.len();
            let frames = self.data_frames(stream, &body[sent..sent + chunk], end_stream && last)?;
            self.send(&frames).await?;
            sent += chunk;
            if last {
                return Ok(());
            }
        }
    }

    /// Reads one frame off the socket (WINDOW_UPDATEs are counted here).
    async fn read_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        let frame = self.read_from_socket().await?;
        if let Some(frame) = &frame
            && frame.kind == kind::WINDOW_UPDATE
        {
            let increment = i64::from(frame.first_word().unwrap_or(0));
            if frame.stream == 0 {
                self.connection_window += increment;
            } else {
                *self
                    .stream_windows
                    .entry(frame.stream)
                    .or_insert(self.initial_window) += increment;
            }
        }
        Ok(frame)
    }

    async fn read_from_socket(&mut self) -> anyhow::Result<Option<Frame>> {
        loop {
            if self.buffer.len() >= 9 {
                let length = usize::from(self.buffer[0]) << 16
                    | usize::from(self.buffer[1]) << 8
                    | usize::from(self.buffer[2]);
                if self.buffer.len() >= 9 + length {
                    let head = self.buffer.split_to(9);
                    let payload = self.buffer.split_to(length).freeze();
                    return Ok(Some(Frame {
                        length,
                        kind: head[3],
                        flags: head[4],
                        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]])
                            & 0x7fff_ffff,
                        payload,
                    }));
                }
            }
            self.buffer.reserve(16 * 1024 + 9);
            let read = tokio::time::timeout(FRAME_TIMEOUT, self.stream.read_buf(&mut self.buffer))
                .await
                .with_context(|| format!("no frame from the gateway within {FRAME_TIMEOUT:?}"))?;
            match read {
                Ok(0) => {
                    ensure!(
                        self.buffer.is_empty(),
                        "the connection closed inside a frame ({} bytes left)",
                        self.buffer.len()
                    );
                    return Ok(None);
                }
                Ok(_) => {}
                // A close with our bytes unread is a reset; what came before it was read.
                Err(error) if error.kind() == ErrorKind::ConnectionReset => return Ok(None),
                Err(error) => return Err(error).context("reading from the gateway"),
            }
        }
    }

    /// The next frame on `stream`, skipping connection-level frames (SETTINGS, PING),
    /// WINDOW_UPDATEs (counted as they are read) and other streams' frames. A GOAWAY or the
    /// connection's end first is an error.
    pub(super) async fn next_on_stream(&mut self, stream: u32) -> anyhow::Result<Frame> {
        loop {
            let Some(frame) = self.next_frame().await? else {
                bail!("the gateway closed the connection before a frame on stream {stream}");
            };
            if frame.kind == kind::GOAWAY {
                bail!("the gateway sent {frame} before a frame on stream {stream}");
            }
            if frame.stream == stream && frame.kind != kind::WINDOW_UPDATE {
                return Ok(frame);
            }
        }
    }

    /// Reads until GOAWAY and returns it (other frames are skipped).
    pub(super) async fn goaway(&mut self) -> anyhow::Result<Frame> {
        loop {
            match self.next_frame().await? {
                Some(frame) if frame.kind == kind::GOAWAY => return Ok(frame),
                Some(_) => {}
                None => bail!("the gateway closed the connection without GOAWAY"),
            }
        }
    }

    /// Reads until the gateway closes the connection (its frames are skipped).
    pub(super) async fn closed(&mut self) -> anyhow::Result<()> {
        while self.next_frame().await?.is_some() {}
        Ok(())
    }

    /// Sends PING and reads until its ACK: the connection is alive and every frame the gateway
    /// wrote before the ACK has been read. A GOAWAY or RST_STREAM met on the way is an error.
    pub(super) async fn ping_pong(&mut self, payload: [u8; 8]) -> anyhow::Result<()> {
        self.send(&ping(payload)).await?;
        loop {
            let Some(frame) = self.next_frame().await? else {
                bail!("the gateway closed the connection instead of answering PING");
            };
            match frame.kind {
                kind::PING if frame.has(flag::ACK) && frame.payload[..] == payload => return Ok(()),
                kind::GOAWAY | kind::RST_STREAM => {
                    bail!("the gateway sent {frame} before PING ACK")
                }
                _ => {}
            }
        }
    }

    /// The response on `stream`: its head (HEADERS and CONTINUATION frames), its DATA (whose
    /// windows are given back as they arrive) and its trailers. A RST_STREAM is an error.
    pub(super) async fn response(&mut self, stream: u32) -> anyhow::Result<RawResponse> {
        let (head, mut ended) = self.header_block(stream).await?;
        let status = head
            .iter()
            .find(|(name, _)| name == ":status")
            .and_then(|(_, value)| value.parse().ok())
            .with_context(|| format!("a response head without :status: {head:?}"))?;
        let mut response = RawResponse {
            status,
            headers: head,
            body: Vec::new(),
            trailers: None,
        };
        while !ended {
            let frame = self.next_on_stream(stream).await?;
            match frame.kind {
                kind::DATA => {
                    response.body.extend_from_slice(&frame.payload);
                    ended = frame.has(flag::END_STREAM);
                    let length = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX);
                    if length > 0 {
                        let mut updates = window_update(0, length);
                        if !ended {
                            updates.extend(window_update(stream, length));
                        }
                        self.send(&updates).await?;
                    }
                }
                kind::HEADERS => {
                    ensure!(
                        frame.has(flag::END_STREAM),
                        "trailers without END_STREAM: {frame}"
                    );
                    let fields = self.finish_block(stream, frame, &mut Vec::new()).await?;
                    response.trailers = Some(fields);
                    ended = true;
                }
                _ => bail!("{frame} in the response on stream {stream}"),
            }
        }
        Ok(response)
    }

    /// A header block on `stream` (the next frame must be its HEADERS), decoded, and whether
    /// it ended the stream.
    pub(super) async fn header_block(
        &mut self,
        stream: u32,
    ) -> anyhow::Result<(Vec<(String, String)>, bool)> {
        let (fields, ended, _frames) = self.header_block_frames(stream).await?;
        Ok((fields, ended))
    }

    /// [`RawConnection::header_block`], and the frames that carried it, without payloads.
    pub(super) async fn header_block_frames(
        &mut self,
        stream: u32,
    ) -> anyhow::Result<(Vec<(String, String)>, bool, Vec<Frame>)> {
        let first = self.next_on_stream(stream).await?;
        ensure!(
            first.kind == kind::HEADERS,
            "expected a response head on stream {stream}, got {first}"
        );
        let ended = first.has(flag::END_STREAM);
        let mut frames = Vec::new();
        let fields = self.finish_block(stream, first, &mut frames).await?;
        Ok((fields, ended, frames))
    }

    /// Joins HEADERS `first` with its CONTINUATION frames (each noted in `frames`, without
    /// its payload) and decodes the block.
    async fn finish_block(
        &mut self,
        stream: u32,
        first: Frame,
        frames: &mut Vec<Frame>,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let mut block = BytesMut::from(&first.payload[..]);
        let mut complete = first.has(flag::END_HEADERS);
        frames.push(first.without_payload());
        while !complete {
            let next = self
                .next_frame()
                .await?
                .context("the connection closed inside a header block")?;
            ensure!(
                next.kind == kind::CONTINUATION && next.stream == stream,
                "{next} inside the header block of stream {stream} (RFC 9113 §6.10)"
            );
            block.extend_from_slice(&next.payload);
            complete = next.has(flag::END_HEADERS);
            frames.push(next.without_payload());
        }
        let mut fields = Vec::new();
        let mut malformed = false;
        let decoded = self
            .decoder
            .decode(&block.freeze(), usize::MAX, |field| match field {
                hpack::Field::Pseudo(pseudo, value) => fields.push((
                    pseudo.as_str().to_owned(),
                    String::from_utf8_lossy(&value).into_owned(),
                )),
                hpack::Field::Regular(name, value) => fields.push((
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )),
                hpack::Field::Malformed { .. } => malformed = true,
            })
            .map_err(|error| anyhow::anyhow!("the gateway's header block: {error}"))?;
        ensure!(
            decoded == hpack::Decoded::Complete && !malformed,
            "the gateway wrote a header block HTTP/2 does not allow: {fields:?}"
        );
        Ok(fields)
    }
}
