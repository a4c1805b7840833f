//! Connection control frames as raw frames (RFC 9113 §6.5, §6.7, §6.9): PING answered with its
//! payload, SETTINGS acknowledged, and WINDOW_UPDATEs of zero refused on a stream (stream
//! error) and on the connection (connection error).

use anyhow::{Context as _, bail, ensure};

use super::backend::BodyBackend;
use super::raw::{
    Block, RawConnection, code, code_name, flag, frame, headers, kind, ping, settings,
    window_update,
};
use super::{Upstream, gateway_to};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_its_payload_back_and_settings_get_acknowledged() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    // Everything the gateway owes for the opening (its ACK of our SETTINGS) is read here.
    connection.ping_pong(*b"opening!").await?;

    // An ACK from the client is not answered (RFC 9113 §6.7); the PING after it is, with its
    // own payload; the new SETTINGS are acknowledged, empty, before it (§6.5.3).
    let mut frames = frame(kind::PING, flag::ACK, 0, b"no reply");
    frames.extend(settings(&[(0x4, 100_000), (0x5, 32_768)]));
    frames.extend(ping(*b"\x01\x02\x03\x04\xfb\xfc\xfd\xfe"));
    connection.send(&frames).await?;
    let mut acknowledgements = Vec::new();
    loop {
        let frame = connection
            .next_frame()
            .await?
            .context("the gateway closed the connection")?;
        match frame.kind {
            kind::SETTINGS => acknowledgements.push(frame),
            kind::PING => {
                ensure!(
                    frame.has(flag::ACK)
                        && frame.stream == 0
                        && frame.payload[..] == *b"\x01\x02\x03\x04\xfb\xfc\xfd\xfe",
                    "PING is answered by PING ACK with the same payload, got {frame}"
                );
                break;
            }
            kind::WINDOW_UPDATE => {}
            _ => bail!("{frame} instead of PING ACK"),
        }
    }
    ensure!(
        acknowledgements.len() == 1
            && acknowledgements[0].has(flag::ACK)
            && acknowledgements[0].payload.is_empty(),
        "one empty SETTINGS ACK before the PING ACK, got {}",
        acknowledgements
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_updates_of_zero_reset_the_stream_or_close_the_connection() -> anyhow::Result<()> {
    let backend = BodyBackend::start().await?;
    let gateway = gateway_to(backend.addr(), Upstream::Http1).await?;
    let mut connection = RawConnection::open(gateway.listener()).await?;
    // Stream 1 stays open: its body is still to come.
    connection
        .send(&headers(1, &Block::request("POST", "/upload/zero"), false))
        .await?;
    connection.send(&window_update(1, 0)).await?;
    let answer = connection
        .next_on_stream(1)
        .await
        .context("waiting for RST_STREAM after a WINDOW_UPDATE of 0 on stream 1")?;
    ensure!(
        answer.is_reset(1, code::PROTOCOL_ERROR),
        "WINDOW_UPDATE of 0 on a stream is a stream error PROTOCOL_ERROR (RFC 9113 §6.9), got {answer}"
    );
    connection.ping_pong(*b"stream-0").await?;

    connection.send(&window_update(0, 0)).await?;
    let goaway = connection
        .goaway()
        .await
        .context("waiting for GOAWAY after a WINDOW_UPDATE of 0 on the connection")?;
    ensure!(
        goaway.error_code() == Some(code::PROTOCOL_ERROR) && goaway.first_word() == Some(1),
        "WINDOW_UPDATE of 0 on the connection is a connection error PROTOCOL_ERROR (RFC 9113 \
         §6.9), expected GOAWAY({}) with last stream 1, got {goaway}",
        code_name(code::PROTOCOL_ERROR)
    );
    connection.closed().await
}
