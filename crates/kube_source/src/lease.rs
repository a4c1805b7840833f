//! [`LeaderElection`]: which replica writes status, through a `coordination.k8s.io/v1` Lease.
//!
//! Every replica serves traffic; only the holder of the Lease writes status. The holder renews
//! the Lease every third of its duration. Another replica takes it over when the Lease has not
//! changed for a whole duration by its own clock (it times what it observed, as client-go does,
//! so clocks need not agree), or at once when the holder released it on shutdown. Every write
//! names the `resourceVersion` read, so two replicas cannot both take over: one gets a conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

/// Where the Lease lives and who we are.
#[derive(Clone, Debug)]
pub struct LeaseOptions {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (unique per replica: pod name, or host name and process id).
    pub identity: String,
    /// How long a Lease not renewed stays with its holder (at least a second is used).
    pub duration: Duration,
}

/// This replica's identity: `$POD_NAME` when set (the Deployment sets it from the downward
/// API), else the host name and process id.
pub fn default_identity() -> String {
    if let Ok(pod) = std::env::var("POD_NAME")
        && !pod.is_empty()
    {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default();
    format!("{host}-{}", std::process::id())
}

/// A running election; dropping it stops the task (without releasing the Lease: see
/// [`LeaderElection::release`]).
pub struct LeaderElection {
    is_leader: watch::Receiver<bool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LeaderElection {
    /// Starts campaigning. Must run inside a tokio runtime.
    pub fn start(client: kube::Client, options: LeaseOptions) -> LeaderElection {
        let (sender, is_leader) = watch::channel(false);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let api: Api<Lease> = Api::namespaced(client, &options.namespace);
        let task = tokio::spawn(campaign(api, options, sender, stopped));
        LeaderElection {
            is_leader,
            stop: Some(stop),
            task,
        }
    }

    /// Whether this replica holds the Lease, as a channel that changes on transitions.
    pub fn is_leader(&self) -> watch::Receiver<bool> {
        self.is_leader.clone()
    }

    /// Stops campaigning and, if this replica holds the Lease, releases it so that another
    /// replica takes over at once (waits at most a second).
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), &mut self.task).await;
    }
}

impl Drop for LeaderElection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What this replica last saw of the Lease, and when (by its own clock).
struct Observed {
    record: (Option<String>, Option<MicroTime>, Option<i32>),
    since: Instant,
}

async fn campaign(
    api: Api<Lease>,
    options: LeaseOptions,
    is_leader: watch::Sender<bool>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    // A zero or tiny duration would renew in a hot loop: a second is the least.
    let options = LeaseOptions {
        duration: options.duration.max(Duration::from_secs(1)),
        ..options
    };
    let period = options.duration / 3;
    let mut observed: Option<Observed> = None;
    let mut last_renewed: Option<Instant> = None;
    loop {
        let leading = match try_acquire(&api, &options, &mut observed).await {
            Ok(leading) => {
                if leading {
                    last_renewed = Some(Instant::now());
                }
                leading
            }
            Err(error) => {
                tracing::warn!(lease = %options.name, %error, "cannot read or renew the Lease");
                // Without a renewal, leadership ends when the Lease would expire for others.
                last_renewed.is_some_and(|at| at.elapsed() < options.duration)
            }
        };
        if *is_leader.borrow() != leading {
            if leading {
                tracing::info!(lease = %options.name, identity = %options.identity, "became the leader: writing status");
            } else {
                tracing::info!(lease = %options.name, identity = %options.identity, "not the leader: status writes paused");
                last_renewed = None;
            }
            is_leader.send_replace(leading);
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            _ = &mut stopped => {
                if *is_leader.borrow() {
                    is_leader.send_replace(false);
                    if let Err(error) = release(&api, &options).await {
                        tracing::warn!(lease = %options.name, %error, "cannot release the Lease");
                    }
                }
                return;
            }
        }
    }
}

/// One round: creates, renews or takes over the Lease when it may. `Ok(true)` when this
/// replica holds it afterwards.
async fn try_acquire(
    api: &Api<Lease>,
    options: &LeaseOptions,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = MicroTime(Timestamp::now());
    let seconds = i32::try_from(options.duration.as_secs())
        .unwrap_or(i32::MAX)
        .max(1);
    let Some(mut lease) = api.get_opt(&options.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(options.name.clone()),
                namespace: Some(options.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(options.identity.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Another replica created it first.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let record = (
        spec.holder_identity.clone(),
        spec.renew_time.clone(),
        spec.lease_transitions,
    );
    let since = match observed.take() {
        Some(previous) if previous.record == record => previous.since,
        _ => Instant::now(),
    };
    *observed = Some(Observed {
        record: record.clone(),
        since,
    });
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    let is_ours = holder == options.identity;
    if !is_ours
        && !is_free(
            holder,
            since.elapsed(),
            spec.lease_duration_seconds,
            options,
        )
    {
        return Ok(false);
    }
    if !is_ours {
        spec.holder_identity = Some(options.identity.clone());
        spec.acquire_time = Some(now.clone());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds);
    spec.renew_time = Some(now);
    // `replace` sends the resourceVersion read: a concurrent change makes it a conflict.
    match api
        .replace(&options.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}

/// Whether a Lease held by `holder` (not us), whose record has not changed for `unchanged`
/// by our clock, may be taken over: it has no holder, or it has not been renewed for the
/// duration its holder wrote (`written_seconds`), and at least for our own. A replica configured
/// with a shorter duration must not take over before the holder's promise ends (client-go's
/// rule too).
fn is_free(
    holder: &str,
    unchanged: Duration,
    written_seconds: Option<i32>,
    options: &LeaseOptions,
) -> bool {
    let written = written_seconds
        .and_then(|seconds| u64::try_from(seconds).ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    holder.is_empty() || unchanged >= options.duration.max(written)
}

/// Gives the Lease up: no holder, so that another replica takes it at its next round.
async fn release(api: &Api<Lease>, options: &LeaseOptions) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&options.name).await? else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(options.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    api.replace(&options.name, &PostParams::default(), &lease)
        .await?;
    tracing::info!(lease = %options.name, "Lease released");
    Ok(())
}

#[cfg(test)]
mod tests;
