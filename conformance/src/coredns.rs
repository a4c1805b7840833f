//! The emulated `coredns` pod of the base manifests, and the DNS query `UDPRoute`'s simple test sends to it.
//!
//! The base manifests run CoreDNS with a Corefile that answers `foo.bar.com` with the `whoami` plugin and
//! forwards everything else to public resolvers. The emulation answers `foo.bar.com.` (any type) the way
//! `whoami` does: no answer records, and in the additional section the client's address (an `A` or `AAAA`
//! record) and its port (an `SRV` record for `_udp.<name>`). Every other name gets `SERVFAIL`, which is what
//! the forwarder gives without internet access. The client side ([`query`]) is what the suite's
//! `dns.Exchange` checks: a well-formed reply with the query's id.
//!
//! It owns only this much of DNS: one question per message, no name compression in queries, no TCP, no EDNS.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The name the Corefile's `whoami` block serves (fully qualified, lower case).
const WHOAMI_NAME: &str = "foo.bar.com.";

/// Record type A.
const TYPE_A: u16 = 1;
/// Record type AAAA.
const TYPE_AAAA: u16 = 28;
/// Record type SRV.
const TYPE_SRV: u16 = 33;
/// Class IN.
const CLASS_IN: u16 = 1;
/// Response code SERVFAIL.
const RCODE_SERVFAIL: u16 = 2;
/// A compression pointer to the question's name, which always starts right after the 12-byte header.
const QUESTION_NAME_POINTER: [u8; 2] = [0xc0, 0x0c];

/// A running emulated CoreDNS on one UDP socket; stops on drop.
pub(crate) struct CorednsServer {
    /// The bound address.
    addr: SocketAddr,
    /// Owns the socket.
    task: JoinHandle<()>,
}

impl CorednsServer {
    /// Binds an ephemeral UDP port of `ip` and starts answering on the current tokio runtime.
    pub(crate) async fn start(ip: Ipv4Addr) -> anyhow::Result<CorednsServer> {
        let socket = UdpSocket::bind(SocketAddr::from((ip, 0)))
            .await
            .with_context(|| format!("binding the emulated coredns to {ip}"))?;
        let addr = socket
            .local_addr()
            .context("reading the emulated coredns's bound address")?;
        let task = tokio::spawn(serve(socket));
        Ok(CorednsServer { addr, task })
    }

    /// The address it listens on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for CorednsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers queries until aborted; datagrams that are not a query are dropped, as CoreDNS drops them.
async fn serve(socket: UdpSocket) {
    let mut buffer = vec![0; 512];
    loop {
        let Ok((length, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        if let Some(reply) = answer(&buffer[..length], peer) {
            let _sent = socket.send_to(&reply, peer).await;
        }
    }
}

/// A parsed DNS question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Question {
    /// The name, lower case, with the trailing dot.
    pub(crate) name: String,
    /// The record type.
    pub(crate) kind: u16,
    /// The class.
    pub(crate) class: u16,
    /// Where the question ends in the message.
    end: usize,
}

/// The reply to `query` from `peer`, or `None` when `query` is not a one-question query.
pub(crate) fn answer(query: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let question = parse_question(query)?;
    let is_whoami = question.name == WHOAMI_NAME;
    // QR, the query's opcode and RD; AA for the zone CoreDNS serves itself.
    let opcode_and_rd = u16::from_be_bytes([query[2], query[3]]) & 0x7900;
    let mut flags = 0x8000 | opcode_and_rd;
    if is_whoami {
        flags |= 0x0400;
    } else {
        flags |= RCODE_SERVFAIL;
    }
    let additional: u16 = if is_whoami { 2 } else { 0 };
    let mut reply = Vec::with_capacity(128);
    reply.extend_from_slice(&query[0..2]);
    reply.extend_from_slice(&flags.to_be_bytes());
    for count in [1u16, 0, 0, additional] {
        reply.extend_from_slice(&count.to_be_bytes());
    }
    reply.extend_from_slice(&query[12..question.end]);
    if is_whoami {
        let (kind, address): (u16, Vec<u8>) = match peer.ip() {
            IpAddr::V4(ip) => (TYPE_A, ip.octets().to_vec()),
            IpAddr::V6(ip) => (TYPE_AAAA, ip.octets().to_vec()),
        };
        push_record(&mut reply, &QUESTION_NAME_POINTER, kind, &address);
        let mut srv = vec![0, 0, 0, 0];
        srv.extend_from_slice(&peer.port().to_be_bytes());
        srv.push(0);
        push_record(
            &mut reply,
            &[4, b'_', b'u', b'd', b'p', 0xc0, 0x0c],
            TYPE_SRV,
            &srv,
        );
    }
    Some(reply)
}

/// Appends a class IN record with TTL 0.
fn push_record(message: &mut Vec<u8>, name: &[u8], kind: u16, data: &[u8]) {
    message.extend_from_slice(name);
    message.extend_from_slice(&kind.to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    message.extend_from_slice(&0u32.to_be_bytes());
    let length = u16::try_from(data.len()).unwrap_or(u16::MAX);
    message.extend_from_slice(&length.to_be_bytes());
    message.extend_from_slice(data);
}

/// The first question of `message` (uncompressed name), or `None` when it is malformed.
pub(crate) fn parse_question(message: &[u8]) -> Option<Question> {
    let mut at = 12;
    let mut name = String::new();
    loop {
        let length = usize::from(*message.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        if length > 63 {
            return None;
        }
        let label = message.get(at..at + length)?;
        name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        name.push('.');
        at += length;
    }
    if name.is_empty() {
        name.push('.');
    }
    let fixed = message.get(at..at + 4)?;
    Some(Question {
        name,
        kind: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        end: at + 4,
    })
}

/// A query for `name` (type A, class IN, recursion desired) with id `id`.
pub(crate) fn build_query(id: u16, name: &str) -> Vec<u8> {
    let mut message = Vec::with_capacity(32 + name.len());
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&0x0100u16.to_be_bytes());
    for count in [1u16, 0, 0, 0] {
        message.extend_from_slice(&count.to_be_bytes());
    }
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        message.push(u8::try_from(label.len()).unwrap_or(63).min(63));
        message.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    message.push(0);
    message.extend_from_slice(&TYPE_A.to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    message
}

/// What a reply said, in the terms the test's log uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    /// The response code (0 NOERROR, 2 SERVFAIL, ...).
    pub(crate) rcode: u16,
    /// Records in the answer and additional sections.
    pub(crate) records: u16,
}

/// Sends a query for `name` to `addr` from a fresh socket and waits up to `timeout` for the reply: what the
/// suite's `dns.Exchange` accepts (a reply, with the query's id; the response code is not checked).
pub(crate) async fn query(
    addr: SocketAddr,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let id: u16 = rand::random();
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))
        .await
        .context("binding a UDP client socket")?;
    socket
        .connect(addr)
        .await
        .with_context(|| format!("connecting a UDP socket to {addr}"))?;
    socket
        .send(&build_query(id, name))
        .await
        .with_context(|| format!("sending a DNS query to {addr}"))?;
    let mut buffer = vec![0; 4096];
    let length = match tokio::time::timeout(timeout, socket.recv(&mut buffer)).await {
        Ok(Ok(length)) => length,
        Ok(Err(error)) => bail!("receiving the DNS reply from {addr}: {error}"),
        Err(_elapsed) => bail!("no DNS reply from {addr} within {timeout:?}"),
    };
    parse_reply(&buffer[..length], id)
}

/// Checks that `message` is a reply to query `id` and summarises it.
pub(crate) fn parse_reply(message: &[u8], id: u16) -> anyhow::Result<Reply> {
    if message.len() < 12 {
        bail!("a {}-byte datagram is no DNS message", message.len());
    }
    let got_id = u16::from_be_bytes([message[0], message[1]]);
    if got_id != id {
        bail!("dns: id mismatch (sent {id}, got {got_id})");
    }
    let flags = u16::from_be_bytes([message[2], message[3]]);
    if flags & 0x8000 == 0 {
        bail!("the DNS message is a query, not a reply");
    }
    let count = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]);
    Ok(Reply {
        rcode: flags & 0x000f,
        records: count(6).saturating_add(count(10)),
    })
}

#[cfg(test)]
mod tests;
