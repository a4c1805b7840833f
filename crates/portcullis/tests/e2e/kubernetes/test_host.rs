//! [`TestHost`]: a network namespace the test creates, joined to the host by a veth pair, where
//! echo backends run on addresses of the benchmarking range 198.18.0.0/15.
//!
//! The API server refuses EndpointSlice addresses in the loopback range, so backends cannot
//! listen on 127.0.0.1; a namespace the test made is its own test host, removed on drop.
//! Needs root (`ip netns`, `ip link`).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

/// The env var that makes the `echo_backend` helper serve (`ADDR POD`).
pub(crate) const ECHO_BACKEND_ENV: &str = "PORTCULLIS_TEST_ECHO_BACKEND";

static HOSTS: AtomicU32 = AtomicU32::new(0);

/// A network namespace with addresses `.2` and `.3` of a /29 (the host side has `.1`).
pub(crate) struct TestHost {
    namespace: String,
    host_link: String,
    base: Ipv4Addr,
    backends: Vec<Child>,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {} failed (the Kubernetes tests need root for a network namespace): {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl TestHost {
    /// Creates the namespace and the veth pair; the /29 is chosen from the process id so that
    /// concurrent test processes do not collide.
    pub(crate) fn create() -> anyhow::Result<TestHost> {
        let index = std::process::id()
            .wrapping_mul(7)
            .wrapping_add(HOSTS.fetch_add(1, Ordering::Relaxed))
            % 16_384;
        let base = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + index * 8);
        let tag = format!("{index:x}");
        let host = TestHost {
            namespace: format!("pcl-k8s-{tag}"),
            host_link: format!("pclh{tag}"),
            base,
            backends: Vec::new(),
        };
        let peer = format!("pcln{tag}");
        ip(&["netns", "add", &host.namespace])?;
        ip(&[
            "link",
            "add",
            &host.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ])?;
        ip(&["link", "set", &peer, "netns", &host.namespace])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/29", host.address(1)),
            "dev",
            &host.host_link,
        ])?;
        ip(&["link", "set", &host.host_link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &host.namespace, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        for last in [2, 3] {
            inside(&[
                "addr",
                "add",
                &format!("{}/29", host.address(last)),
                "dev",
                &peer,
            ])?;
        }
        inside(&["link", "set", &peer, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(host)
    }

    /// Address `.last` of the /29.
    pub(crate) fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + u32::from(last))
    }

    /// Starts an echo backend answering as `pod` on `addr` inside the namespace (this test
    /// binary again, running its `echo_backend` helper), and waits until it accepts.
    pub(crate) async fn start_echo(&mut self, addr: SocketAddr, pod: &str) -> anyhow::Result<()> {
        let binary = std::env::current_exe().context("the test binary's path")?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(binary)
            .args([
                "kubernetes::echo_backend",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
            .env(ECHO_BACKEND_ENV, format!("{addr} {pod}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting the echo backend in the test namespace")?;
        self.backends.push(child);
        testkit::wait_for_port(addr, Duration::from_secs(10))
            .await
            .with_context(|| format!("echo backend {pod} on {addr}"))
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        for backend in &mut self.backends {
            let _ = backend.kill();
            let _ = backend.wait();
        }
        // Deleting the namespace deletes the veth pair with it.
        if let Err(error) = ip(&["netns", "del", &self.namespace]) {
            eprintln!("{error:#}");
        }
        let _ = ip(&["link", "del", &self.host_link]);
    }
}
