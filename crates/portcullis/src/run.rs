//! `portcullis run`: builds the runtime, wires the pipeline, handles signals.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use compile::CompileOptions;
use control::Controller;
use proxy::{DataPlane, ListenerManager, PolicyRuntime};
use source::{FileSource, SourceUpdate};
use telemetry::{AccessLog, Metrics};
use tokio::signal::unix::{SignalKind, signal};
use upstream::Registry;
use upstream::pool::{PoolSettings, Pools};

use crate::cli::RunArgs;

pub(crate) fn run(args: RunArgs) -> ExitCode {
    init_logging();
    // One usable CPU (e.g. pinned with taskset, or a 1-CPU container): a single-threaded
    // scheduler does the same work without work-stealing bookkeeping and cross-thread wakeups.
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let mut runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    runtime.enable_all().on_thread_park(memory::on_thread_park);
    let runtime = match runtime.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.spawn(memory::upkeep(threads));
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logs go to stderr; stdout carries the access log.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// `0.0.0.0`, plus `::` when the host can bind IPv6.
/// The platform's CA certificates, for BackendTLSPolicy `wellKnownCACertificates: System`.
/// Without them such policies are not accepted (their status says why), nothing else changes.
pub(crate) fn system_roots() -> Option<Arc<snapshot::backend::tls::SystemRoots>> {
    match upstream::load_system_roots() {
        Ok(roots) => Some(roots),
        Err(error) => {
            tracing::debug!(%error, "system CA certificates unavailable");
            None
        }
    }
}

fn default_bind_addresses() -> Vec<IpAddr> {
    let mut addresses = vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)];
    if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok() {
        addresses.push(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    }
    addresses
}

/// Loads and watches `--config`, if given: its current update and the channel of the next ones.
fn file_updates(args: &RunArgs) -> anyhow::Result<Option<Updates>> {
    let Some(config) = &args.config else {
        return Ok(None);
    };
    let source = FileSource::load(config)
        .with_context(|| format!("cannot read config {}", config.display()))?;
    let updates = source
        .watch(args.reload_debounce)
        .context("cannot watch the config")?;
    Ok(Some(updates))
}

/// The updates of the Kubernetes source (laid under `local`'s, when `--config` is given too),
/// once every watched kind has been listed, and the writer of status back to the API server.
async fn kubernetes_updates(
    args: &RunArgs,
    local: Option<Updates>,
) -> anyhow::Result<(Updates, KubernetesWriters)> {
    let client = kube_source::client(args.kubeconfig.as_deref()).await?;
    let options = kube_source::KubeOptions {
        namespaces: args.namespaces.clone(),
    };
    let source = kube_source::KubeSource::start(client, &options).await?;
    tracing::info!(namespaces = ?args.namespaces, "Kubernetes source started; not ready until every watched kind is listed");
    let election = kube_source::LeaderElection::start(
        source.client().clone(),
        kube_source::LeaseOptions {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: args
                .lease_identity
                .clone()
                .unwrap_or_else(kube_source::default_identity),
            duration: args.lease_duration,
        },
    );
    let status = source.status_writer(
        kube_source::StatusOptions {
            controller_name: args.controller_name.clone(),
            gateway_service: args.gateway_service.clone(),
        },
        election.is_leader(),
    );
    let cluster = source.synced().await?;
    let updates = match local {
        Some(local) => kube_source::follow_with_local(cluster, local),
        None => cluster,
    };
    Ok((updates, KubernetesWriters { status, election }))
}

/// Kubernetes mode's writers: the status writer, and the election that lets it write.
struct KubernetesWriters {
    status: kube_source::StatusWriter,
    election: kube_source::LeaderElection,
}

/// A source's updates: the current one is the latest.
type Updates = tokio::sync::watch::Receiver<Arc<SourceUpdate>>;

async fn serve(args: RunArgs) -> anyhow::Result<()> {
    // Loading the config churns the heap; pages go back at once until start-up is over
    // (`memory::allocator::purge_eagerly`).
    let start_up = memory::allocator::purge_eagerly();
    let local = file_updates(&args)?;

    let metrics = Arc::new(Metrics::new());
    let registry = Arc::new(Registry::with_metrics(Arc::clone(&metrics)));
    registry.export_endpoint_latency(&metrics);
    let pools = Pools::new(Arc::clone(&metrics), &PoolSettings::default());
    let policies =
        PolicyRuntime::new(args.redis.as_deref(), Arc::clone(&metrics)).context("--redis")?;
    let tracer = start_tracer(&args, &metrics)?;
    let mut plane = DataPlane::new(pools, Arc::clone(&metrics), AccessLog::new(args.access_log))
        .with_policies(policies);
    if let Some(tracer) = &tracer {
        plane = plane.with_tracer(Arc::clone(tracer));
    }
    let plane = Arc::new(plane);
    let admin = AdminServer::start(&args, &metrics, &registry).await?;
    tracing::info!(admin = %args.admin, config = ?args.config, kubernetes = args.kubernetes, "portcullis starting");

    let descriptors = raise_descriptor_limit();
    tracing::info!(descriptors, max_connections = ?args.max_connections, "client connection limits");
    let mut listeners = ListenerManager::new(Arc::clone(&plane));
    if let Some(limit) = args.max_connections {
        listeners = listeners.with_connection_limit(limit);
    }
    let mut controller = Controller::new(
        compile_options(&args),
        registry,
        plane,
        listeners,
        Arc::clone(&admin.state),
        metrics,
    );
    // Kubernetes mode waits here for the first full sync, with the admin server up and /ready
    // answering 503.
    let (mut updates, kubernetes) = match (args.kubernetes, local) {
        (true, local) => {
            let (updates, writers) = kubernetes_updates(&args, local).await?;
            (updates, Some(writers))
        }
        (false, Some(local)) => (local, None),
        (false, None) => anyhow::bail!("--config or --kubernetes is required"),
    };
    let election = kubernetes.map(|KubernetesWriters { status, election }| {
        controller.on_status(move |report, store| status.publish(report, store));
        election
    });
    let initial = updates.borrow_and_update().clone();
    controller.apply(initial);
    // Start-up is over: what its compile freed, and its code, leave the resident set
    // (`crates/memory`). The controller runs on this thread, which is not a runtime worker:
    // the upkeep's collections never reach its heap, and what applying changes freed here
    // stayed resident (4 MB at 5,000 routes in one file after 30 edits).
    memory::allocator::collect();
    drop(start_up);
    match memory::release_control_plane_code() {
        Ok(bytes) => tracing::debug!(bytes, "start-up code released"),
        Err(error) => tracing::debug!(%error, "start-up code not released"),
    }
    follow_updates(&mut controller, updates).await?;
    if let Some(election) = election {
        // Another replica takes over status at once rather than after the Lease expires.
        election.release().await;
    }

    tracing::info!(drain = ?args.drain_timeout, "shutting down: draining connections");
    admin.state.set_ready(false);
    let remaining = controller
        .into_listeners()
        .shutdown(args.drain_timeout)
        .await;
    if remaining > 0 {
        tracing::warn!(
            remaining,
            "drain time over; closing the remaining connections"
        );
    }
    if let Some(tracer) = tracer {
        // Spans of the last requests go out before the process does.
        tracer.shutdown(TRACE_FLUSH_TIMEOUT).await;
    }
    admin.stop().await;
    tracing::info!("stopped");
    Ok(())
}

/// How long shutdown waits for the last spans to reach the collector.
const TRACE_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the trace exporter when a collector is configured (flags, else `OTEL_*`).
fn start_tracer(
    args: &RunArgs,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<Arc<telemetry::trace::Tracer>>> {
    let flags = telemetry::trace::TracingFlags {
        endpoint: args.otlp_endpoint.clone(),
        protocol: args.otlp_protocol,
        sampler: args.trace_sampler,
    };
    let Some(settings) =
        telemetry::trace::TracingSettings::resolve(flags, |name| std::env::var(name).ok())
            .map_err(|error| anyhow::anyhow!("tracing: {error}"))?
    else {
        return Ok(None);
    };
    let tracer = telemetry::trace::Tracer::start(&settings, Arc::clone(metrics))?;
    tracing::info!(
        endpoint = settings.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"),
        protocol = ?settings.protocol,
        sampler = %settings.sampler,
        "tracing on"
    );
    Ok(Some(Arc::new(tracer)))
}

/// What `compile` needs from the command line (and the one piece of I/O it cannot do).
fn compile_options(args: &RunArgs) -> CompileOptions {
    let default_addresses = if args.bind.is_empty() {
        default_bind_addresses()
    } else {
        args.bind.clone()
    };
    CompileOptions {
        controller_name: args.controller_name.as_str().into(),
        default_addresses,
        generation: 0,
        system_roots: system_roots(),
        redis: args.redis.is_some(),
    }
}

/// How long the config must be quiet before the code that applied its changes leaves the
/// resident set again.
const CODE_RELEASE_QUIET: Duration = Duration::from_secs(1);

/// Applies config updates until SIGTERM or SIGINT (then returns `Ok`), retrying failed binds
/// every 2 s, and releases the code that applied them once they stop. An error when the config
/// watcher stops.
async fn follow_updates(
    controller: &mut Controller,
    mut updates: tokio::sync::watch::Receiver<Arc<SourceUpdate>>,
) -> anyhow::Result<()> {
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut bind_retry = tokio::time::interval(Duration::from_secs(2));
    // Applying a change runs code the request path never does (parsing, compiling): about
    // 7 MiB of the binary at 5,000 routes, resident until released. Once the config has been
    // quiet for a second it is released as start-up's code was (`crates/memory`); the next
    // change maps what it runs again, from the page cache.
    let release = tokio::time::sleep(CODE_RELEASE_QUIET);
    tokio::pin!(release);
    // Also a second after start: the code that ran since the release above (the watcher's
    // first pass, this loop's set-up) leaves the resident set too (about 2 MiB), and this
    // thread's heap is collected again.
    let mut release_due = true;
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    anyhow::bail!("the config watcher stopped");
                }
                let update = updates.borrow_and_update().clone();
                // Only while applying: the workers serve meanwhile, and eager purging costs
                // them page faults (`memory::allocator::purge_eagerly`).
                let applying = memory::allocator::purge_eagerly();
                controller.apply(update);
                drop(applying);
                release.as_mut().reset(tokio::time::Instant::now() + CODE_RELEASE_QUIET);
                release_due = true;
            }
            () = &mut release, if release_due => {
                release_due = false;
                // As at start: this thread's heap, which only applying changes uses.
                memory::allocator::collect_eagerly();
                match memory::release_control_plane_code() {
                    Ok(bytes) => tracing::debug!(bytes, "code of the last config change released"),
                    Err(error) => tracing::debug!(%error, "code of the last config change not released"),
                }
            }
            _ = bind_retry.tick(), if controller.has_bind_errors() => controller.retry_binds(),
            _ = terminate.recv() => return Ok(()),
            _ = interrupt.recv() => return Ok(()),
        }
    }
}

/// The admin HTTP server, running until [`AdminServer::stop`].
struct AdminServer {
    state: Arc<admin::AdminState>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl AdminServer {
    /// Binds `--admin` and serves the admin API: readiness, metrics, status, config, and the
    /// registry's endpoints.
    async fn start(
        args: &RunArgs,
        metrics: &Arc<Metrics>,
        registry: &Arc<Registry>,
    ) -> anyhow::Result<AdminServer> {
        let endpoints_registry = Arc::clone(registry);
        let state = Arc::new(admin::AdminState::new(Arc::clone(metrics), move || {
            endpoints_registry.view()
        }));
        let listener = tokio::net::TcpListener::bind(args.admin)
            .await
            .with_context(|| format!("cannot listen on the admin address {}", args.admin))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(admin::serve(listener, Arc::clone(&state), async move {
            let _ = stopped.await;
        }));
        Ok(AdminServer { state, stop, task })
    }

    /// Stops accepting admin requests (waiting up to 1 s for the server to finish).
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
    }
}

/// Raises the soft descriptor limit to the hard one (as Go's runtime does); returns the limit
/// in force.
fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the file descriptor limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}
