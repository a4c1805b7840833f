//! DNS endpoints (Service `ExternalName`, `Backend` hostnames): resolved in a task per backend,
//! re-resolved when the shortest record TTL expires (clamped to 1 s .. 5 min).
//!
//! A failed lookup keeps the previous addresses of that name (serving stale beats serving
//! nothing) and retries after 5 s.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::registry::BackendRuntime;
use snapshot::backend::{EndpointTarget, TargetAddress};

const MIN_REFRESH: Duration = Duration::from_secs(1);
const MAX_REFRESH: Duration = Duration::from_secs(300);
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

fn resolver() -> Option<&'static TokioResolver> {
    static RESOLVER: OnceLock<Option<TokioResolver>> = OnceLock::new();
    RESOLVER
        .get_or_init(
            || match TokioResolver::builder_tokio().and_then(|b| b.build()) {
                Ok(resolver) => Some(resolver),
                Err(error) => {
                    tracing::error!(%error, "cannot read the system DNS configuration");
                    None
                }
            },
        )
        .as_ref()
}

pub(crate) fn spawn_resolver(
    runtime: Arc<BackendRuntime>,
    targets: Vec<EndpointTarget>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Last good addresses per target, so one failing name does not drop the others.
        let mut last_good: Vec<Vec<SocketAddr>> = vec![Vec::new(); targets.len()];
        loop {
            let mut next_refresh = Instant::now() + MAX_REFRESH;
            for (target, good) in targets.iter().zip(last_good.iter_mut()) {
                match &target.address {
                    TargetAddress::Ip(ip) => *good = vec![SocketAddr::new(*ip, target.port)],
                    TargetAddress::Dns(name) => match lookup(name, target.port).await {
                        Ok((addrs, valid_until)) => {
                            *good = addrs;
                            next_refresh = next_refresh.min(valid_until);
                        }
                        Err(error) => {
                            tracing::warn!(backend = %runtime.id(), %name, %error, "DNS lookup failed");
                            next_refresh = next_refresh.min(Instant::now() + RETRY_AFTER_FAILURE);
                        }
                    },
                }
            }
            let resolved: Vec<(SocketAddr, u32)> = targets
                .iter()
                .zip(&last_good)
                .flat_map(|(t, addrs)| addrs.iter().map(move |a| (*a, t.weight)))
                .collect();
            runtime.replace_endpoints(&resolved);
            let earliest = Instant::now() + MIN_REFRESH;
            tokio::time::sleep_until(next_refresh.max(earliest)).await;
        }
    })
}

async fn lookup(name: &str, port: u16) -> Result<(Vec<SocketAddr>, Instant), String> {
    // `localhost` and literal addresses never go to the network.
    if name.eq_ignore_ascii_case("localhost") {
        let addrs = vec![SocketAddr::from(([127, 0, 0, 1], port))];
        return Ok((addrs, Instant::now() + MAX_REFRESH));
    }
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok((
            vec![SocketAddr::new(ip, port)],
            Instant::now() + MAX_REFRESH,
        ));
    }
    let resolver = resolver().ok_or_else(|| "no DNS resolver".to_owned())?;
    let lookup = resolver.lookup_ip(name).await.map_err(|e| e.to_string())?;
    let valid_until = Instant::from_std(lookup.valid_until());
    let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
    if addrs.is_empty() {
        return Err(format!("{name} has no addresses"));
    }
    Ok((addrs, valid_until))
}
