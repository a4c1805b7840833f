//! L4 cases: TCP and UDP exchanges with a Gateway listener, as `conformance/utils/tcp`, `conformance/utils/udp`
//! and the TCPRoute/UDPRoute tests make them.
//!
//! Owns the suite's client side of echo-basic's TCP and UDP modes and its waiting rules, transcribed:
//!
//! - TCP (`MakeTCPRequestAndExpectEventuallyValidResponse`): connect, read the welcome line, `PING` → `PONG`,
//!   `IS_TLS` → `false`, `TEST` → a JSON line. A connection or read error, or a line that is not JSON, is tried
//!   again (every 100 ms); the first exchange that completes decides: welcome, answers, namespace (exact) and
//!   pod (`<backend>-` prefix) must all be right. Then `samples` more `EchoSendOnce` exchanges must each succeed
//!   and reach the backend. A case without a backend is `ExpectEchoResponse`: `EchoSendOnce` (welcome line,
//!   `TEST`) until one succeeds.
//! - UDP (`ExpectEchoResponseFromBackend`): one datagram, tried every 100 ms until an answer reports the
//!   expected `service` and `namespace` (either may be unset). Then, for `samples`, rounds of that many
//!   datagrams every second until one round is answered completely; every answer must come from the backend
//!   (the pod name without its last two parts), or the case fails at once.
//! - DNS (`udproute-simple.go`): a query for the case's name every second until a reply to it arrives.
//! - Portcullis's additions (`expect`): `closed` (TCP: refused, or closed before any byte arrives) and
//!   `no_answer` (UDP/DNS: nothing comes back), each three times in a row like the HTTP cases.
//! - Weighted distribution after case 0, with `EchoSendOnce` (TCP) or `udpEchoSendOnce` (UDP) as the sender.
//!
//! All waiting is bounded by the runner's case deadline (10 s; the suite allows 30 s).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use testkit::{TcpEchoReport, tcp_echo, udp_echo};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::case::TestContext;
use crate::cases::{CaseSpec, ExchangeKind, L4Outcome};
use crate::convergence::{CASE_DEADLINE, CONSECUTIVE_PASSES, await_convergence};
use crate::coredns;
use crate::distribution::{Sampling, backend_name, check};

/// How long one exchange may take (`RequestTimeout`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause between tries of a TCP or UDP exchange that has not completed (`DefaultPollInterval`).
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The pause between DNS queries and between UDP sample rounds (the tests poll every second).
const SLOW_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The datagram `ExpectEchoResponse` sends.
const UDP_PROBE: &str = "gateway-api-conformance-udp-echo";

/// The datagram the UDP tests' `udpEchoSendOnce` sends.
const UDP_WEIGHT_PROBE: &str = "gateway-api-conformance-udp-weight\n";

/// How long `udpEchoSendOnce` waits for an answer.
const UDP_SEND_ONCE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a TCP connection may stay open without an answer before `closed` fails.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The welcome line of echo-basic's TCP mode.
const WELCOME_LINE: &str = tcp_echo::WELCOME_LINE;

/// Runs case `index`, an L4 exchange of `kind` with the listener at `addr`.
pub(crate) async fn run_l4_case(
    context: &TestContext<'_>,
    index: usize,
    case: &CaseSpec,
    kind: ExchangeKind,
    addr: SocketAddr,
) -> Result<(), String> {
    match (kind, case.expect) {
        (ExchangeKind::Tcp, L4Outcome::Answer) => expect_tcp_echo(case, addr).await?,
        (ExchangeKind::Tcp, L4Outcome::Closed) => {
            await_convergence(CASE_DEADLINE, CONSECUTIVE_PASSES, || expect_closed(addr)).await?
        }
        (ExchangeKind::Udp, L4Outcome::Answer) => expect_udp_echo(case, addr).await?,
        (ExchangeKind::Dns, L4Outcome::Answer) => expect_dns_reply(case, addr).await?,
        (ExchangeKind::Udp | ExchangeKind::Dns, L4Outcome::NoAnswer) => {
            let datagram = datagram(case, kind);
            await_convergence(CASE_DEADLINE, CONSECUTIVE_PASSES, || {
                expect_silence(addr, &datagram)
            })
            .await?
        }
        (kind, outcome) => {
            return Err(format!(
                "the runner has no {outcome:?} outcome for {kind:?} exchanges"
            ));
        }
    }
    if let Some(distribution) = context.test.distribution.as_ref().filter(|_| index == 0) {
        let sampling = Sampling::new(distribution);
        match kind {
            ExchangeKind::Tcp => check(&sampling, || tcp_send_once(addr)).await?,
            ExchangeKind::Udp => check(&sampling, || udp_send_once(addr)).await?,
            ExchangeKind::Dns => return Err("no weighted distribution over DNS".to_owned()),
        }
    }
    Ok(())
}

/// What the suite sends: the case's payload, else the probe of its kind (a DNS name for DNS).
fn datagram(case: &CaseSpec, kind: ExchangeKind) -> Vec<u8> {
    match (&case.payload, kind) {
        (Some(payload), ExchangeKind::Dns) => coredns::build_query(rand::random(), payload),
        (Some(payload), _) => payload.as_bytes().to_vec(),
        (None, ExchangeKind::Dns) => coredns::build_query(rand::random(), "foo.bar.com."),
        (None, _) => UDP_PROBE.as_bytes().to_vec(),
    }
}

/// The four answers of one complete TCP exchange.
struct TcpSession {
    /// The first line.
    welcome: String,
    /// The answer to `PING`.
    pong: String,
    /// The answer to `IS_TLS`, newline removed.
    is_tls: String,
    /// The parsed answer to `TEST`.
    report: TcpEchoReport,
}

/// `MakeTCPRequestAndExpectEventuallyValidResponse`, then `samples` × `EchoSendOnce`; without a `backend`,
/// `ExpectEchoResponse` (any pod's answer to `TEST` will do).
async fn expect_tcp_echo(case: &CaseSpec, addr: SocketAddr) -> Result<(), String> {
    let Some(backend) = case.backend.as_deref() else {
        return retry_until_complete(|| tcp_send_once(addr))
            .await
            .map(|_pod| ());
    };
    let session = retry_until_complete(|| tcp_session(addr)).await?;
    let mut mismatches = Vec::new();
    if session.welcome != WELCOME_LINE {
        mismatches.push(format!("welcome line {:?}", session.welcome));
    }
    if session.pong != "PONG\n" {
        mismatches.push(format!("PING answered {:?}", session.pong));
    }
    if session.is_tls != "false" {
        mismatches.push(format!("IS_TLS answered {:?}, want false", session.is_tls));
    }
    if session.report.namespace != case.namespace {
        mismatches.push(format!(
            "namespace {:?}, want {:?}",
            session.report.namespace, case.namespace
        ));
    }
    if !session.report.pod.starts_with(&format!("{backend}-")) {
        mismatches.push(format!(
            "pod {:?} does not start with {backend}-",
            session.report.pod
        ));
    }
    if !mismatches.is_empty() {
        return Err(format!(
            "the first complete TCP exchange was wrong: {}",
            mismatches.join("; ")
        ));
    }
    for sample in 1..=case.samples.unwrap_or(0) {
        let pod = tcp_send_once(addr)
            .await
            .map_err(|error| format!("TCP echo request {sample} failed: {error}"))?;
        if !pod.starts_with(&format!("{backend}-")) {
            return Err(format!(
                "TCP echo request {sample} reached {pod:?}; only {backend} should receive traffic"
            ));
        }
    }
    Ok(())
}

/// Tries `attempt` every [`POLL_INTERVAL`] until it completes, within the case deadline.
async fn retry_until_complete<T, F, Fut>(mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let give_up = Instant::now() + CASE_DEADLINE;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if Instant::now() + POLL_INTERVAL >= give_up => {
                return Err(format!(
                    "{error} (no complete exchange within {CASE_DEADLINE:?}, {tries} tries)"
                ));
            }
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// One connection through the whole line protocol; an error means it did not complete.
async fn tcp_session(addr: SocketAddr) -> Result<TcpSession, String> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|error| format!("client could not connect to {addr}: {error}"))?;
        let mut stream = BufReader::new(stream);
        let welcome = read_line(&mut stream).await?;
        let pong = command(&mut stream, "PING").await?;
        let is_tls = command(&mut stream, "IS_TLS").await?;
        let test = command(&mut stream, "TEST").await?;
        let report: TcpEchoReport = serde_json::from_str(&test)
            .map_err(|error| format!("TEST answered {test:?}, not JSON: {error}"))?;
        Ok(TcpSession {
            welcome,
            pong,
            is_tls: is_tls.trim_end_matches('\n').to_owned(),
            report,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no complete exchange with {addr} within {REQUEST_TIMEOUT:?}"))?
}

/// Sends `name` and a newline, and reads the answer line.
async fn command(stream: &mut BufReader<TcpStream>, name: &str) -> Result<String, String> {
    stream
        .get_mut()
        .write_all(format!("{name}\n").as_bytes())
        .await
        .map_err(|error| format!("writing {name}: {error}"))?;
    read_line(stream).await
}

/// Reads one line, newline included (like Go's `ReadString('\n')`, which fails without one).
async fn read_line(stream: &mut BufReader<TcpStream>) -> Result<String, String> {
    let mut line = Vec::new();
    stream
        .read_until(b'\n', &mut line)
        .await
        .map_err(|error| format!("reading: {error}"))?;
    if line.last() != Some(&b'\n') {
        return Err(format!(
            "the connection closed after {:?}",
            String::from_utf8_lossy(&line)
        ));
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// `tcp.EchoSendOnce`: the answering pod.
async fn tcp_send_once(addr: SocketAddr) -> Result<String, String> {
    let report = tcp_echo::identify(addr, REQUEST_TIMEOUT)
        .await
        .map_err(|error| format!("{error:#}"))?;
    if report.pod.is_empty() {
        return Err("TCP echo response missing pod name".to_owned());
    }
    Ok(report.pod)
}

/// One connection that must be refused, or closed before any byte arrives.
async fn expect_closed(addr: SocketAddr) -> Result<(), String> {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(_refused) => return Ok(()),
    };
    let mut buffer = [0; 256];
    match tokio::time::timeout(CLOSE_TIMEOUT, stream.read(&mut buffer)).await {
        Ok(Ok(0) | Err(_)) => Ok(()),
        Ok(Ok(length)) => Err(format!(
            "the connection was answered: {:?}",
            String::from_utf8_lossy(&buffer[..length])
        )),
        Err(_elapsed) => Err(format!(
            "the connection stayed open without an answer for {CLOSE_TIMEOUT:?}; want it closed"
        )),
    }
}

/// `ExpectEchoResponseFromBackend`, then the sample rounds of the multiple-routes test.
async fn expect_udp_echo(case: &CaseSpec, addr: SocketAddr) -> Result<(), String> {
    let payload = case.payload.as_deref().unwrap_or(UDP_PROBE).as_bytes();
    let service = case.service.as_deref().unwrap_or("");
    retry_until_complete(|| async {
        let report = udp_echo::identify(addr, payload, REQUEST_TIMEOUT)
            .await
            .map_err(|error| format!("UDP echo probe: {error:#}"))?;
        if !service.is_empty() && report.service != service {
            return Err(format!(
                "UDP echo response service={:?} did not match expected {service:?} (pod {:?})",
                report.service, report.pod
            ));
        }
        if !case.namespace.is_empty() && report.namespace != case.namespace {
            return Err(format!(
                "UDP echo response namespace={:?} did not match expected {:?} (pod {:?})",
                report.namespace, case.namespace, report.pod
            ));
        }
        Ok(())
    })
    .await?;
    let Some(samples) = case.samples else {
        return Ok(());
    };
    let backend = case.backend.as_deref().unwrap_or("");
    let give_up = Instant::now() + CASE_DEADLINE;
    loop {
        let mut round_failure = None;
        for probe in 1..=samples {
            match udp_send_once(addr).await {
                Ok(pod) if backend_name(&pod) == backend => {}
                Ok(pod) => {
                    return Err(format!(
                        "UDP traffic reached unexpected backend {:?} (pod {pod:?}); only {backend} should \
                         receive traffic",
                        backend_name(&pod)
                    ));
                }
                Err(error) => {
                    round_failure = Some(format!("UDP probe {probe} failed: {error}"));
                    break;
                }
            }
        }
        match round_failure {
            None => return Ok(()),
            Some(failure) if Instant::now() + SLOW_POLL_INTERVAL >= give_up => {
                return Err(format!(
                    "{failure} (no complete round within {CASE_DEADLINE:?})"
                ));
            }
            Some(_) => tokio::time::sleep(SLOW_POLL_INTERVAL).await,
        }
    }
}

/// The UDP tests' `udpEchoSendOnce`: the answering pod.
async fn udp_send_once(addr: SocketAddr) -> Result<String, String> {
    let report = udp_echo::identify(addr, UDP_WEIGHT_PROBE.as_bytes(), UDP_SEND_ONCE_TIMEOUT)
        .await
        .map_err(|error| format!("{error:#}"))?;
    if report.pod.is_empty() {
        return Err("UDP echo response missing pod name".to_owned());
    }
    Ok(report.pod)
}

/// `udproute-simple.go`: a DNS query every second until one is answered.
async fn expect_dns_reply(case: &CaseSpec, addr: SocketAddr) -> Result<(), String> {
    let name = case.payload.as_deref().unwrap_or("foo.bar.com.");
    let give_up = Instant::now() + CASE_DEADLINE;
    loop {
        match coredns::query(addr, name, UDP_SEND_ONCE_TIMEOUT).await {
            Ok(_reply) => return Ok(()),
            Err(error) if Instant::now() + SLOW_POLL_INTERVAL >= give_up => {
                return Err(format!(
                    "failed to perform DNS query: {error:#} (for {CASE_DEADLINE:?})"
                ));
            }
            Err(_) => tokio::time::sleep(SLOW_POLL_INTERVAL).await,
        }
    }
}

/// One datagram that must get no answer within `udpEchoSendOnce`'s timeout (a refused receive, an ICMP
/// port-unreachable, counts as none).
async fn expect_silence(addr: SocketAddr, datagram: &[u8]) -> Result<(), String> {
    match udp_echo::exchange(addr, datagram, UDP_SEND_ONCE_TIMEOUT).await {
        Err(_silence) => Ok(()),
        Ok(answer) => Err(format!(
            "a datagram came back: {:?}",
            String::from_utf8_lossy(&answer)
        )),
    }
}

#[cfg(test)]
mod tests;
