//! [`KubeSourceError`]: why the Kubernetes source cannot start.

/// Why the Kubernetes source cannot start. Once started it does not fail: watch errors are
/// retried with backoff and logged.
#[derive(Debug, thiserror::Error)]
pub enum KubeSourceError {
    /// No kubeconfig or in-cluster config could be read.
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    /// API discovery failed (the API server is unreachable or refused us).
    #[error("cannot discover the API group {group:?}: {message}")]
    Discovery {
        /// The API group being discovered ("" for core).
        group: String,
        /// What went wrong.
        message: String,
    },
    /// The source task stopped before the first full sync.
    #[error("the Kubernetes source stopped before its first full sync")]
    Stopped,
}
