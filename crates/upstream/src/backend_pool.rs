//! Cleartext pools of their own for backends whose connection settings (connect timeout, idle
//! timeout, maximum connections, maximum connection duration) differ from the defaults.
//! Backends with default settings share [`Pools`]' pools at no extra cost. A TLS backend's TLS
//! pools (`tls_pool`) are built with the same connector and settings.
//!
//! The pools live in the backend's runtime and are rebuilt (lazily, on the next request) when
//! these settings change; the open-connection count is kept across rebuilds, so connections of
//! the previous pools still count against `maxConnections` until they close.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use crate::pool::{ConnectionLimits, CountingConnector, PlainPools, PoolSettings, Pools};
use snapshot::backend::policy::BackendPolicy;

/// The settings that decide which pools a backend's connections come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConnectionSettings {
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_connections: Option<u32>,
    max_connection_duration: Option<Duration>,
}

impl ConnectionSettings {
    pub(crate) fn of(policy: &BackendPolicy) -> ConnectionSettings {
        ConnectionSettings {
            connect_timeout: policy.connect_timeout,
            idle_timeout: policy.idle_timeout,
            max_connections: policy.limits.max_connections,
            max_connection_duration: policy.max_connection_duration,
        }
    }

    /// Whether a backend with these settings can use the shared pools.
    pub(crate) fn is_default(&self) -> bool {
        let defaults = BackendPolicy::default();
        self.connect_timeout == defaults.connect_timeout
            && self.idle_timeout == defaults.idle_timeout
            && self.max_connections.is_none()
            && self.max_connection_duration.is_none()
    }
}

/// A backend's own pools, built for one set of settings.
#[derive(Debug)]
pub(crate) struct OwnPools {
    settings: ConnectionSettings,
    pools: PlainPools,
    /// What the pools were built with; a TLS backend builds its TLS pools with them too.
    connector: CountingConnector,
    pool_settings: PoolSettings,
}

impl OwnPools {
    pub(crate) fn connector(&self) -> &CountingConnector {
        &self.connector
    }

    pub(crate) fn pool_settings(&self) -> &PoolSettings {
        &self.pool_settings
    }
}

impl std::ops::Deref for OwnPools {
    type Target = PlainPools;

    fn deref(&self) -> &PlainPools {
        &self.pools
    }
}

/// The slot in a backend's runtime.
#[derive(Debug, Default)]
pub(crate) struct BackendPools {
    current: ArcSwapOption<OwnPools>,
    /// Open connections of the backend's own pools (all generations).
    open: Arc<AtomicUsize>,
    build: Mutex<()>,
}

impl BackendPools {
    /// The pools for `policy`: `None` when the shared pools serve it; otherwise the backend's
    /// own, built (or rebuilt, when the settings changed) on first use.
    pub(crate) fn get(&self, policy: &BackendPolicy, shared: &Pools) -> Option<Arc<OwnPools>> {
        let settings = ConnectionSettings::of(policy);
        if settings.is_default() {
            return None;
        }
        if let Some(own) = self.current.load_full()
            && own.settings == settings
        {
            return Some(own);
        }
        let _building = self.build.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(own) = self.current.load_full()
            && own.settings == settings
        {
            return Some(own);
        }
        let own = Arc::new(self.build(settings, shared));
        self.current.store(Some(Arc::clone(&own)));
        Some(own)
    }

    fn build(&self, settings: ConnectionSettings, shared: &Pools) -> OwnPools {
        let limits = ConnectionLimits {
            open: Arc::clone(&self.open),
            max_connections: settings.max_connections.map(|max| max as usize),
        };
        let connector = CountingConnector::new(
            Arc::clone(shared.connector().metrics()),
            settings.connect_timeout,
            Some(limits),
        );
        let pool_settings = PoolSettings {
            connect_timeout: settings.connect_timeout,
            idle_timeout: settings.idle_timeout,
            max_idle_per_endpoint: shared.settings().max_idle_per_endpoint,
            max_connection_lifetime: settings.max_connection_duration,
        };
        OwnPools {
            pools: PlainPools::new(&connector, &pool_settings),
            settings,
            connector,
            pool_settings,
        }
    }

    /// Open connections of the backend's own pools.
    #[cfg(test)]
    pub(crate) fn open_connections(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
