//! Command-line interface.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use telemetry::AccessLogFormat;

/// Portcullis: a Kubernetes Gateway API gateway.
///
/// Reads Gateway API resources (GatewayClass, Gateway, HTTPRoute, ReferenceGrant, ...) plus
/// Services, EndpointSlices, Secrets, Namespaces and Portcullis' own kinds from YAML or from a
/// Kubernetes API server, and serves the traffic they describe.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway on a config file or directory, reloading it on change, or on the
    /// objects of a Kubernetes API server (--kubernetes), writing their status back.
    Run(RunArgs),
    /// Compile a config offline, print every object's status conditions, and exit non-zero
    /// when any object is unhealthy (not Accepted, references not resolved, not Programmed).
    Check(CheckArgs),
    /// Explain which socket, listener, route, rule, filters, policies, backends and endpoints a
    /// request would hit in a config, and why every other route did not serve it. Exits 0 when
    /// a rule matches, 1 when none does (no socket, no listener, refused path, no rule), 2 on
    /// bad input (URL, header, unknown gateway, unreadable config).
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// YAML file or directory (all *.yaml / *.yml below it, multi-document). Watched: edits
    /// apply without a restart; a file that fails to parse keeps its last good objects.
    /// Required unless --kubernetes is given; with --kubernetes, its objects are local
    /// overrides: an object in both (same kind, namespace and name) is the file's.
    #[arg(
        long,
        short = 'c',
        env = "PORTCULLIS_CONFIG",
        required_unless_present = "kubernetes"
    )]
    pub(crate) config: Option<PathBuf>,

    /// Read the config from a Kubernetes API server: watch Gateway API objects, Services,
    /// EndpointSlices, Namespaces, and the Secrets and ConfigMaps they reference; write status
    /// back (one replica, elected by a Lease). /ready answers 503 until every
    /// watched kind has been listed once. Uses the in-cluster service account unless
    /// --kubeconfig is given.
    #[arg(long, env = "PORTCULLIS_KUBERNETES")]
    pub(crate) kubernetes: bool,

    /// Redis server for the global limits of RateLimitPolicies, shared by every replica
    /// (`redis://[user:password@]host:port[/db]`; TLS to Redis, `rediss://`, is not built in and
    /// is refused). Without it, a policy with `global` limits is not accepted. A Redis that is
    /// down at start or later is not an error: each policy's `failureMode` applies until it
    /// answers again.
    #[arg(long, value_name = "URL", env = "PORTCULLIS_REDIS_URL")]
    pub(crate) redis: Option<String>,

    /// With --kubernetes: the kubeconfig file to use (its current context) instead of the
    /// in-cluster config. Ignored without --kubernetes.
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// With --kubernetes: read only these namespaces (comma-separated; default: all).
    /// GatewayClasses and Namespaces are always read cluster-wide.
    #[arg(
        long,
        value_name = "NS,...",
        value_delimiter = ',',
        requires = "kubernetes"
    )]
    pub(crate) namespaces: Vec<String>,

    /// With --kubernetes: the namespace of the coordination.k8s.io Lease that elects the one
    /// replica writing status (every replica serves traffic).
    #[arg(long, default_value = "default", env = "POD_NAMESPACE")]
    pub(crate) lease_namespace: String,

    /// With --kubernetes: the Lease's name.
    #[arg(long, default_value = "portcullis")]
    pub(crate) lease_name: String,

    /// With --kubernetes: how long the Lease stays with a replica that stopped renewing it
    /// (it renews every third of it); another replica takes over after that.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub(crate) lease_duration: Duration,

    /// With --kubernetes: this replica's identity in the Lease (default: $POD_NAME, else host
    /// name and process id).
    #[arg(long, requires = "kubernetes")]
    pub(crate) lease_identity: Option<String>,

    /// With --kubernetes: the Service clients reach the gateway through (NAMESPACE/NAME, e.g.
    /// the LoadBalancer Service of deploy/gateway.yaml). Gateways without spec.addresses report
    /// its load balancer's ingress IPs and hostnames in status.addresses, or its cluster IPs
    /// while it has none. Default: none (such Gateways report no address unless --bind names
    /// specific ones). Gateways with spec.addresses report those. Ignored without --kubernetes.
    #[arg(
        long,
        value_name = "NAMESPACE/NAME",
        env = "PORTCULLIS_GATEWAY_SERVICE"
    )]
    pub(crate) gateway_service: Option<kube_source::GatewayService>,

    /// Admin server address: /ready, /healthz, /metrics, /status, /config, /endpoints,
    /// /explain.
    #[arg(long, default_value = "127.0.0.1:9901", env = "PORTCULLIS_ADMIN")]
    pub(crate) admin: SocketAddr,

    /// Address(es) listeners of Gateways without spec.addresses bind on. Repeat the flag for
    /// several. Default: 0.0.0.0 and, where the host has IPv6, ::.
    #[arg(long = "bind", value_name = "ADDR")]
    pub(crate) bind: Vec<IpAddr>,

    /// GatewayClasses with this spec.controllerName are handled by this gateway.
    #[arg(long, default_value = compile::DEFAULT_CONTROLLER_NAME, env = "PORTCULLIS_CONTROLLER_NAME")]
    pub(crate) controller_name: String,

    /// Access log to stdout: one JSON line per request (json), or none (off).
    #[arg(long, default_value = "json", value_parser = parse_access_log)]
    pub(crate) access_log: AccessLogFormat,

    /// OpenTelemetry collector to send traces to (OTLP): for gRPC its URL
    /// (`http://collector:4317`), for HTTP/protobuf its base URL (`http://collector:4318`;
    /// `/v1/traces` is added). Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else
    /// $OTEL_EXPORTER_OTLP_ENDPOINT; with none of them, tracing is off. Only plain http://.
    #[arg(long, value_name = "URL")]
    pub(crate) otlp_endpoint: Option<String>,

    /// OTLP transport: grpc or http/protobuf. Default: $OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    /// else $OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf.
    #[arg(long, value_name = "PROTOCOL")]
    pub(crate) otlp_protocol: Option<telemetry::trace::OtlpProtocol>,

    /// Which requests are traced: an OpenTelemetry sampler name, with its ratio after a colon
    /// (e.g. parentbased_traceidratio:0.01). Default: $OTEL_TRACES_SAMPLER with
    /// $OTEL_TRACES_SAMPLER_ARG, else parentbased_always_on. A Gateway's ClientTrafficPolicy
    /// `tracing.samplingFraction` replaces it for its listeners.
    #[arg(long, value_name = "SAMPLER")]
    pub(crate) trace_sampler: Option<telemetry::trace::Sampler>,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before exit.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub(crate) drain_timeout: Duration,

    /// How long a config file still being written (changed, not yet closed) may stay quiet
    /// before it is read anyway. A file closed after writing, renamed into place, created
    /// or removed is read at once.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub(crate) reload_debounce: Duration,

    /// Client connections all listeners keep open together at most; beyond it new connections
    /// are closed at accept. Whatever is set, the file descriptor limit (raised to its hard
    /// limit at start) caps it too: half of it after a reserve of up to 256, because every
    /// client connection may need an upstream one, and the admin server, config files and DNS
    /// need descriptors as well.
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,

    /// Worker threads (default: one per CPU).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// YAML file or directory to check.
    #[arg(long, short = 'c')]
    pub(crate) config: PathBuf,

    /// GatewayClasses with this spec.controllerName are checked.
    #[arg(long, default_value = compile::DEFAULT_CONTROLLER_NAME)]
    pub(crate) controller_name: String,

    /// Print the status as JSON (the same document as the admin /status) instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    /// Check as `run --redis URL` would (only whether one is given matters: RateLimitPolicies
    /// with `global` limits need it). Nothing connects to it.
    #[arg(long, value_name = "URL", env = "PORTCULLIS_REDIS_URL")]
    pub(crate) redis: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// YAML file or directory of the config.
    #[arg(long, short = 'c')]
    pub(crate) config: PathBuf,

    /// Only sockets with a listener of this Gateway are candidates (NAMESPACE/NAME).
    #[arg(long, value_name = "NAMESPACE/NAME")]
    pub(crate) gateway: Option<String>,

    /// Request method (GET, POST, ...).
    pub(crate) method: String,

    /// Absolute URL (`http://host[:port]/path?query`). Without a port, the scheme's default
    /// port is preferred, else a socket with a listener for the host.
    pub(crate) url: String,

    /// A request header, NAME:VALUE (repeatable). A Host header replaces the URL's host.
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub(crate) headers: Vec<String>,

    /// Print the explanation as JSON (the same document as the admin /explain).
    #[arg(long)]
    pub(crate) json: bool,

    /// GatewayClasses with this spec.controllerName are ours.
    #[arg(long, default_value = compile::DEFAULT_CONTROLLER_NAME)]
    pub(crate) controller_name: String,

    /// Compile as `run --redis URL` would (see `check --redis`). Nothing connects to it.
    #[arg(long, value_name = "URL", env = "PORTCULLIS_REDIS_URL")]
    pub(crate) redis: Option<String>,
}

fn parse_access_log(value: &str) -> Result<AccessLogFormat, String> {
    value
        .parse()
        .map_err(|_| format!("{value:?}: expected json or off"))
}
