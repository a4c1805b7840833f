//! Runs the selected tests: per test, emulated backends, a config directory (or, with `--kubernetes`, objects
//! in the API server) and one gateway process, then the cases. Tests run `--jobs` at a time (each on its own
//! loopback addresses; one at a time in Kubernetes mode); results print in file order.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream;
use serde_json::Value;
use testkit::{GatewayProcess, TempConfigDir};
use tokio::time::Instant;

use crate::case::{TestContext, label, run_case};
use crate::cases::TestSpec;
use crate::config_dir;
use crate::exchange::Clients;
use crate::kubernetes::KubernetesMode;
use crate::manifests::{self, GatewayEndpoints};
use crate::report::{CaseOutcome, TestOutcome, summary};
use crate::runtime_change;
use crate::status_check::StatusSource;
use crate::timestamp;
use crate::tls::TlsMaterial;
use crate::workload::Workloads;

/// The note that marks a test whose Go code writes EndpointSlices while it runs (`HTTPRouteServiceTypes`).
const RUNTIME_SLICES_NOTE: &str = "EndpointSlices at runtime";

/// What the command line decided.
pub(crate) struct RunSettings {
    /// The gateway binary.
    pub(crate) binary: PathBuf,
    /// The suite folder.
    pub(crate) suite_dir: PathBuf,
    /// Print every case.
    pub(crate) verbose: bool,
    /// Tests at once.
    pub(crate) jobs: usize,
    /// Where to keep a copy of each test's config.
    pub(crate) keep_config: Option<PathBuf>,
    /// Kubernetes mode: `Some(None)` starts an API server, `Some(Some(kubeconfig))` uses that one.
    pub(crate) kubernetes: Option<Option<PathBuf>>,
}

/// Shared by every test of the run.
struct Shared<'a> {
    /// The command line.
    settings: &'a RunSettings,
    /// The certificates.
    tls: TlsMaterial,
    /// The HTTP clients.
    clients: Clients,
    /// The API server and the backends' namespace, in Kubernetes mode.
    kubernetes: Option<KubernetesMode>,
}

/// Runs `tests` (each with its index in `cases.json`), prints the report, and returns whether all passed.
pub(crate) async fn run_all(
    settings: &RunSettings,
    tests: &[(usize, TestSpec)],
) -> anyhow::Result<bool> {
    let kubernetes = match &settings.kubernetes {
        Some(kubeconfig) => Some(KubernetesMode::start(kubeconfig.clone()).await?),
        None => None,
    };
    // The tests' objects share names (the base manifests): one test at a time in one API server.
    let jobs = if kubernetes.is_some() {
        1
    } else {
        settings.jobs
    };
    let shared = Shared {
        settings,
        tls: TlsMaterial::generate()?,
        clients: Clients::new(),
        kubernetes,
    };
    let mut outcomes = stream::iter(tests)
        .map(|(index, test)| run_test(&shared, *index, test))
        .buffered(jobs);
    let (mut passed, mut failed) = (0, 0);
    let mut stdout = std::io::stdout();
    while let Some(outcome) = outcomes.next().await {
        if outcome.is_pass() {
            passed += 1;
        } else {
            failed += 1;
        }
        writeln!(stdout, "{}", outcome.render(settings.verbose)).context("writing the report")?;
        stdout.flush().context("writing the report")?;
    }
    writeln!(stdout, "{}", summary(passed, failed)).context("writing the report")?;
    drop(outcomes);
    drop(shared);
    Ok(failed == 0)
}

/// One test, start to finish; never fails, a problem becomes a failed outcome.
async fn run_test(shared: &Shared<'_>, index: usize, test: &TestSpec) -> TestOutcome {
    let started = Instant::now();
    let mut outcome = TestOutcome {
        name: test.name.clone(),
        total: test.cases.len(),
        cases: Vec::new(),
        test_failure: None,
        verbose_detail: None,
        gateway_tail: None,
        elapsed: Duration::ZERO,
        status_objects: None,
    };
    // What was applied to the API server (Kubernetes mode), removed again whatever happens.
    let mut applied = Vec::new();
    match prepare(shared, index, test, &mut applied).await {
        Err(error) => {
            outcome.test_failure = Some(format!("setup: {}", summarize(&format!("{error:#}"))));
            outcome.verbose_detail = Some(format!("{error:#}"));
        }
        Ok(mut environment) => {
            outcome.cases = run_cases(shared, test, &mut environment).await;
            // Objects a runtime change created are the test's too: removed with the others.
            applied.append(&mut environment.created);
            // A gateway that died mid-test explains every later failure; say so rather than blame the cases.
            if let Ok(status) = environment.gateway.wait_exit(Duration::ZERO).await {
                outcome.test_failure =
                    Some(format!("the gateway exited during the test ({status})"));
                let stderr = environment.gateway.stderr_text();
                outcome.gateway_tail = Some(last_lines(&stderr, GATEWAY_TAIL_LINES));
                outcome.verbose_detail = Some(stderr);
            } else if let Some(kubernetes) = &shared.kubernetes {
                match kubernetes
                    .compare_status(&shared.settings.binary, &environment.documents)
                    .await
                {
                    Ok(objects) => outcome.status_objects = Some(objects),
                    Err(error) => outcome.test_failure = Some(format!("{error:#}")),
                }
            }
        }
    }
    if let Some(kubernetes) = &shared.kubernetes
        && let Err(error) = kubernetes.clean_up(&applied).await
        && outcome.test_failure.is_none()
    {
        outcome.test_failure = Some(format!("cleaning up: {error:#}"));
    }
    outcome.elapsed = started.elapsed();
    outcome
}

/// Runs the cases of a started test: all at once, or one after another when the test changes the config
/// between cases (`runtime_change`).
async fn run_cases(
    shared: &Shared<'_>,
    test: &TestSpec,
    environment: &mut Environment,
) -> Vec<CaseOutcome> {
    let changes = runtime_change::changes(test);
    let results = if changes.is_empty() {
        let context = environment.context(shared, test);
        join_all(
            test.cases
                .iter()
                .enumerate()
                .map(|(index, case)| run_case(&context, index, case)),
        )
        .await
    } else {
        let mut results = Vec::new();
        for (index, case) in test.cases.iter().enumerate() {
            let mut changed = Ok(());
            for change in changes.iter().filter(|change| change.before_case == index) {
                changed = environment.change(shared, change).await;
                if changed.is_err() {
                    break;
                }
            }
            let result = match changed {
                Ok(_) => run_case(&environment.context(shared, test), index, case).await,
                Err(error) => Err(error),
            };
            results.push(result);
        }
        results
    };
    test.cases
        .iter()
        .zip(results)
        .enumerate()
        .map(|(index, (case, result))| CaseOutcome {
            label: label(index, case),
            result,
        })
        .collect()
}

/// A started test: keep it alive while the cases run; dropping it stops the gateway and the backends.
struct Environment {
    /// The gateway; dropped first so that it stops before its backends.
    gateway: GatewayProcess,
    /// Where each Gateway listens.
    gateways: GatewayEndpoints,
    /// The echo backends.
    workloads: Workloads,
    /// The objects in the config file (or in the API server).
    documents: Vec<Value>,
    /// The config the gateway reads; `None` in Kubernetes mode.
    config: Option<TempConfigDir>,
    /// Kubernetes mode: objects a runtime change created in the API server (deleted after the test).
    created: Vec<Value>,
}

impl Environment {
    /// What the cases see of this environment.
    fn context<'a>(&'a self, shared: &'a Shared<'_>, test: &'a TestSpec) -> TestContext<'a> {
        let status = match &shared.kubernetes {
            Some(kubernetes) => StatusSource::Cluster(kubernetes.cluster(), &self.documents),
            None => StatusSource::Admin(&self.gateway),
        };
        TestContext {
            test,
            gateways: &self.gateways,
            workloads: &self.workloads,
            clients: &shared.clients,
            tls: &shared.tls,
            status,
        }
    }

    /// Applies one runtime change to the config file, or through the API in Kubernetes mode.
    async fn change(
        &mut self,
        shared: &Shared<'_>,
        change: &runtime_change::RuntimeChange,
    ) -> Result<(), String> {
        let describe =
            |error: anyhow::Error| format!("runtime change {change:?} failed: {error:#}");
        tokio::time::sleep(change.pause).await;
        let before = self.documents.clone();
        match &change.action {
            runtime_change::Action::DeleteFromManifest { kind, manifest } => {
                let manifest_objects =
                    manifests::load_file(&shared.settings.suite_dir, manifest).map_err(describe)?;
                if runtime_change::delete_from_manifest(
                    kind,
                    &manifest_objects,
                    &mut self.documents,
                ) == 0
                {
                    return Err(format!("runtime change {change:?} found nothing to delete"));
                }
            }
            runtime_change::Action::Delete(reference) => {
                if runtime_change::delete(reference, &mut self.documents) == 0 {
                    return Err(format!("runtime change {change:?} found nothing to delete"));
                }
            }
            runtime_change::Action::Create(object) => {
                let mut object = object.clone();
                if shared.kubernetes.is_none() {
                    // The API server would stamp it now; the routes' precedence depends on it.
                    manifests::stamp_creation(std::slice::from_mut(&mut object), &timestamp::now());
                }
                self.documents.push(object);
            }
        }
        match (&self.config, &shared.kubernetes) {
            (Some(config), _) => config_dir::rewrite(config, &self.documents).map_err(describe),
            (None, Some(kubernetes)) => {
                for object in before
                    .iter()
                    .filter(|object| !self.documents.contains(object))
                {
                    kubernetes
                        .cluster()
                        .delete(object)
                        .await
                        .map_err(describe)?;
                }
                for object in self
                    .documents
                    .iter()
                    .filter(|object| !before.contains(object))
                {
                    kubernetes.cluster().apply(object).await.map_err(describe)?;
                    self.created.push(object.clone());
                }
                Ok(())
            }
            (None, None) => {
                Err("a test without a config directory outside Kubernetes mode".to_owned())
            }
        }
    }
}

/// Loads the manifests, starts the backends, writes the config (or applies the objects, pushing each to
/// `applied`) and starts the gateway.
async fn prepare(
    shared: &Shared<'_>,
    index: usize,
    test: &TestSpec,
    applied: &mut Vec<Value>,
) -> anyhow::Result<Environment> {
    let mut objects = manifests::load(&shared.settings.suite_dir, &test.manifests)?;
    let block = u8::try_from(index).context("more than 256 tests in cases.json")?;
    let gateways = manifests::assign_gateway_addresses(&mut objects, block)?;
    let runtime_slices = match test
        .notes
        .as_deref()
        .filter(|notes| notes.contains(RUNTIME_SLICES_NOTE))
    {
        Some(notes) => {
            let source = runtime_slice_source(notes).with_context(|| {
                format!("cannot tell from the notes which pods the runtime EndpointSlices point at: {notes:?}")
            })?;
            let namespace = test
                .gateway
                .split_once('/')
                .map_or("default", |(namespace, _)| namespace);
            Some((namespace.to_owned(), source.to_owned()))
        }
        None => None,
    };
    let (workloads, objects, slices) = match &shared.kubernetes {
        // The backends' sockets must be made inside the network namespace: on its runtime.
        Some(kubernetes) => {
            let ip = kubernetes.host().address();
            kubernetes
                .host()
                .run(start_workloads(objects, ip, runtime_slices))
                .await??
        }
        None => start_workloads(objects, Ipv4Addr::LOCALHOST, runtime_slices).await?,
    };
    let mut documents = vec![manifests::gateway_class()];
    documents.extend(objects);
    documents.extend(slices);
    documents.extend(shared.tls.secret_objects());
    let binary = &shared.settings.binary;
    let (gateway, config) = match &shared.kubernetes {
        Some(kubernetes) => {
            kubernetes.apply(&documents, applied).await?;
            if let Some(keep) = &shared.settings.keep_config {
                keep_config(&config_dir::write(&documents)?, keep, test)?;
            }
            let lease = format!("conformance-{index}");
            let gateway = kubernetes
                .start_gateway(binary, &lease)
                .await
                .context("starting the gateway")?;
            (gateway, None)
        }
        None => {
            // The API server stamps every object it creates; route precedence (the oldest route wins a
            // listener) depends on it, and a runtime change may create a newer one.
            manifests::stamp_creation(&mut documents, &timestamp::now());
            let config = config_dir::write(&documents)?;
            if let Some(keep) = &shared.settings.keep_config {
                keep_config(&config, keep, test)?;
            }
            let gateway = GatewayProcess::start(binary, config.path(), &["--access-log", "off"])
                .await
                .context("starting the gateway")?;
            (gateway, Some(config))
        }
    };
    Ok(Environment {
        gateway,
        gateways,
        workloads,
        documents,
        config,
        created: Vec::new(),
    })
}

/// Starts the emulated pods of `objects` on `ip` (filling the runtime EndpointSlices from the pods of
/// `runtime_slices`, `(namespace, service)`, when the test writes some), on the current runtime; returns the
/// pods, the objects and the EndpointSlices.
async fn start_workloads(
    mut objects: Vec<Value>,
    ip: Ipv4Addr,
    runtime_slices: Option<(String, String)>,
) -> anyhow::Result<(Workloads, Vec<Value>, Vec<Value>)> {
    let (mut workloads, slices) = Workloads::start(&objects, ip).await?;
    if let Some((namespace, source)) = &runtime_slices {
        workloads
            .fill_empty_slices(&mut objects, (namespace, source))
            .await?;
    }
    Ok((workloads, objects, slices))
}

/// Copies the test's config to `<keep>/<test>.yaml`.
fn keep_config(config: &TempConfigDir, keep: &Path, test: &TestSpec) -> anyhow::Result<()> {
    std::fs::create_dir_all(keep).with_context(|| format!("creating {}", keep.display()))?;
    let copy = keep.join(format!("{}.yaml", test.name));
    std::fs::copy(config.path().join(config_dir::FILE_NAME), &copy)
        .with_context(|| format!("copying the config to {}", copy.display()))?;
    Ok(())
}

/// The Service named in "... pointing at <service> pods ...".
fn runtime_slice_source(notes: &str) -> Option<&str> {
    let (_, rest) = notes.split_once("pointing at ")?;
    let (service, _) = rest.split_once(" pods")?;
    (!service.is_empty() && !service.contains(' ')).then_some(service)
}

/// The first line of a multi-line error, plus its last line when that differs (for a gateway that did not
/// start, the last line of its stderr usually says why).
fn summarize(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|line| !line.is_empty());
    let first = lines.next().unwrap_or("");
    match lines.next_back() {
        Some(last) => format!("{first} ... {last}"),
        None => first.to_owned(),
    }
}

/// How many of its last lines of stderr a gateway that exited mid-test leaves in the report.
const GATEWAY_TAIL_LINES: usize = 15;

/// The last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}
