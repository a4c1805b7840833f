//! A standalone echo backend (the Gateway API conformance echo protocol), for the quickstart
//! and for trying Portcullis by hand:
//!
//! ```text
//! echo-server --listen 127.0.0.1:3001 --pod shop-v1 [--namespace shop] [--h2c-only]
//! ```
//!
//! It answers every request with a JSON description of what it received (path, host, headers,
//! and which "pod" answered) until it is interrupted.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use testkit::{EchoConfig, EchoMode, EchoServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen: Option<SocketAddr> = None;
    let mut pod = "echo".to_owned();
    let mut namespace = "default".to_owned();
    let mut mode = EchoMode::Http;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = Some(args.next().context("--listen needs ADDR")?.parse()?),
            "--pod" => pod = args.next().context("--pod needs NAME")?,
            "--namespace" => namespace = args.next().context("--namespace needs NAME")?,
            "--h2c-only" => mode = EchoMode::H2cOnly,
            "-h" | "--help" => {
                println!(
                    "usage: echo-server --listen ADDR [--pod NAME] [--namespace NS] [--h2c-only]"
                );
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let bind = listen.context("--listen ADDR is required")?;
    let mut config = EchoConfig::new(pod.clone(), namespace);
    config.bind = bind;
    config.mode = mode;
    let server = EchoServer::start(config).await?;
    eprintln!("echo-server {pod} listening on {}", server.addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
