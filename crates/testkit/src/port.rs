//! Loopback port helpers.
//!
//! Owns picking ports that are free right now, holding a port closed, and waiting for a listener to appear.
//! [`free_port`] cannot reserve a port for a listener: between it returning and the caller binding, another
//! process may take it, so callers that spawn a process on the port should treat a bind failure as retryable.
//! A port that must *refuse* connections can be held, though: see [`ClosedPort`].

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::bail;
use tokio::time::Instant;

/// How often [`wait_for_port`] retries a connection.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Returns a TCP port on 127.0.0.1 that had nothing listening on it when this call returned.
///
/// It binds `127.0.0.1:0`, reads the port the kernel chose and closes the listener again.
///
/// # Panics
///
/// Panics when the machine cannot bind a loopback socket at all; no test can run in that case.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("binding 127.0.0.1:0 succeeds on any machine that can run tests");
    listener
        .local_addr()
        .expect("a bound listener has a local address")
        .port()
}

/// A loopback port that refuses connections for as long as this value lives.
///
/// The port is bound but not listening, so a connection to it is refused, and while it stays bound
/// nothing else can take it: no test beside this one can start listening there, and the kernel
/// does not pick it as the local port of an outgoing connection (which, to the port itself,
/// would connect to itself). A port that was merely free once gives neither guarantee.
#[derive(Debug)]
pub struct ClosedPort {
    socket: tokio::net::TcpSocket,
}

impl ClosedPort {
    /// Binds a fresh port on 127.0.0.1 without listening on it.
    ///
    /// # Panics
    ///
    /// Panics when the machine cannot bind a loopback socket at all; no test can run in that case.
    #[must_use]
    pub fn reserve() -> ClosedPort {
        let socket = tokio::net::TcpSocket::new_v4()
            .expect("creating a TCP socket succeeds on any machine that can run tests");
        socket
            .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .expect("binding 127.0.0.1:0 succeeds on any machine that can run tests");
        ClosedPort { socket }
    }

    /// The refusing address.
    ///
    /// # Panics
    ///
    /// Never in practice: a bound socket has a local address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.socket
            .local_addr()
            .expect("a bound socket has a local address")
    }
}

/// Waits until a TCP connection to `addr` succeeds, retrying every 20 ms.
///
/// # Errors
///
/// Returns an error naming `addr` and the last connection error when `timeout` passes first.
pub async fn wait_for_port(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt =
            tokio::time::timeout(POLL_INTERVAL * 5, tokio::net::TcpStream::connect(addr)).await;
        let last_error = match attempt {
            Ok(Ok(_stream)) => return Ok(()),
            Ok(Err(error)) => error.to_string(),
            Err(_elapsed) => "connect timed out".to_owned(),
        };
        if Instant::now() >= deadline {
            bail!("nothing accepted connections on {addr} within {timeout:?}: {last_error}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
