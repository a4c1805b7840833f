//! [`BackendHost`]: a network namespace the runner creates for the emulated pods in Kubernetes mode, joined to
//! the host by a veth pair, with a tokio runtime whose one thread lives inside it.
//!
//! The API server refuses EndpointSlice addresses in the loopback range, so the echo backends cannot listen on
//! 127.0.0.1 there. They listen on an address of the benchmarking range 198.18.0.0/15 inside the namespace
//! instead: a socket belongs to the network namespace of the thread that creates it, so everything spawned on
//! [`BackendHost::run`] binds inside. The namespace (and with it the veth pair) is removed on drop. Needs root.

use std::future::Future;
use std::net::Ipv4Addr;
use std::process::Command;
use std::thread::JoinHandle;

use anyhow::{Context, bail};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
use tokio::sync::oneshot;

/// The network namespace, its veth pair and the runtime thread inside it.
pub(crate) struct BackendHost {
    /// `ip netns` name.
    namespace: String,
    /// The host end of the veth pair.
    host_link: String,
    /// The first address of the /29: the host end has `.1`, the namespace `.2`.
    base: Ipv4Addr,
    /// Spawns onto the runtime inside the namespace.
    runtime: tokio::runtime::Handle,
    /// Ends the runtime thread (dropping every task on it).
    stop: Option<oneshot::Sender<()>>,
    /// The runtime thread.
    thread: Option<JoinHandle<()>>,
}

/// Runs `ip <args>`.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !output.status.success() {
        bail!(
            "ip {} failed (--kubernetes needs root for its network namespace): {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A /29 of 198.18.0.0/15 that no interface of the host uses yet (the e2e tests make namespaces in the same
/// range), picked from the process id.
fn free_subnet() -> anyhow::Result<Ipv4Addr> {
    let output = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .context("running ip -o -4 addr show")?;
    let listing = String::from_utf8_lossy(&output.stdout).into_owned();
    let used: Vec<Ipv4Addr> = listing
        .split_whitespace()
        .filter_map(|word| word.split_once('/').and_then(|(ip, _)| ip.parse().ok()))
        .collect();
    let range = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    let start = std::process::id().wrapping_mul(13) % 16_384;
    for offset in 0..16_384 {
        let base = range + ((start + offset) % 16_384) * 8;
        if !used.iter().any(|address| u32::from(*address) & !7 == base) {
            return Ok(Ipv4Addr::from(base));
        }
    }
    bail!("every /29 of 198.18.0.0/15 is in use on this host")
}

impl BackendHost {
    /// Creates the namespace `pcl-conf-<pid>`, the veth pair, and the runtime thread inside the namespace.
    pub(crate) fn create() -> anyhow::Result<BackendHost> {
        let base = free_subnet()?;
        let tag = std::process::id();
        let namespace = format!("pcl-conf-{tag}");
        let host_link = format!("pclch{tag}");
        let peer = format!("pclcn{tag}");
        ip(&["netns", "add", &namespace])?;
        let mut host = BackendHost {
            namespace,
            host_link,
            base,
            runtime: tokio::runtime::Handle::current(),
            stop: None,
            thread: None,
        };
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
        let host_address = format!("{}/29", host.address_at(1));
        ip(&["addr", "add", &host_address, "dev", &host.host_link])?;
        ip(&["link", "set", &host.host_link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", host.namespace.as_str(), "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/29", host.address()),
            "dev",
            &peer,
        ])?;
        inside(&["link", "set", &peer, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        host.start_runtime()?;
        Ok(host)
    }

    /// Starts the thread that enters the namespace and runs a current-thread runtime until [`Drop`].
    fn start_runtime(&mut self) -> anyhow::Result<()> {
        let path = format!("/run/netns/{}", self.namespace);
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        let (handles, handle) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("backend-netns".to_owned())
            .spawn(move || {
                let runtime = move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(LinkNameSpaceType::Network),
                )
                .context("entering the backends' network namespace (setns)")
                .and_then(|()| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .context("starting the backends' runtime")
                });
                match runtime {
                    Ok(runtime) => {
                        let _ = handles.send(Ok(runtime.handle().clone()));
                        // Serves every task spawned through the handle until the host is dropped.
                        let _ = runtime.block_on(stopped);
                    }
                    Err(error) => {
                        let _ = handles.send(Err(error));
                    }
                }
            })
            .context("starting the backends' thread")?;
        self.thread = Some(thread);
        self.stop = Some(stop);
        self.runtime = handle
            .recv()
            .context("the backends' thread ended before it started its runtime")??;
        Ok(())
    }

    /// The namespace's address, where the backends listen.
    pub(crate) fn address(&self) -> Ipv4Addr {
        self.address_at(2)
    }

    fn address_at(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + u32::from(last))
    }

    /// Runs `future` on the runtime inside the namespace (so every socket it creates is the namespace's) and
    /// returns its output.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.runtime
            .spawn(future)
            .await
            .context("a task of the backends' runtime failed")
    }
}

impl Drop for BackendHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // Deleting the namespace deletes the veth pair with it.
        if let Err(error) = ip(&["netns", "del", &self.namespace]) {
            eprintln!("conformance: {error:#}");
        }
        let _ = ip(&["link", "del", &self.host_link]);
    }
}
