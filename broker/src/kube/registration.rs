//! Broker registration: the Lease `<cluster>-broker-<id>` (Kafka's ephemeral broker znode).
//!
//! At every start the broker takes its Lease with a conditional write that raises the
//! incarnation epoch, so everything recorded under an earlier process (ISR membership) is
//! recognisable. It then renews every renew interval; the self-fence goes up when no renewal
//! sent within the renew deadline succeeded (measured on this process's monotonic clock from
//! the SEND time of the last success), and down again when one does. A broker whose Lease a
//! newer process took (a higher incarnation) stays fenced for good.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use parking_lot::Mutex;
use tributary_crds::lease::{held_spec, released_spec};
use tributary_crds::registration::{broker_lease_name, BrokerIncarnation, Endpoint, Registration};
use tributary_crds::update::{ConditionalUpdate, Decision, RetryPolicy, UpdateError};
use tributary_crds::CLUSTER_LABEL;

use super::catch_up::CatchUp;
use super::error::KubeError;
use crate::config::ClusterSettings;
use crate::fence::Fence;
use crate::metadata::MetadataCache;

/// How often the fence watchdog looks at the last renewal.
const FENCE_CHECK: Duration = Duration::from_millis(50);

/// This broker's registration as it is in Kubernetes.
pub struct Registrar {
    api: Api<Lease>,
    settings: ClusterSettings,
    name: String,
    me: Mutex<Registration>,
    fence: Arc<Fence>,
    /// The cluster as this broker sees it, whose applied images show what it still leads.
    metadata: Arc<MetadataCache>,
    /// What a renewal after a lapse waits for before the fence comes down (before the first
    /// image is applied nothing is led, so the empty image has caught up at once).
    catch_up: CatchUp,
    /// The renewal and fence-watch tasks, stopped at release.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Registrar {
    /// Registers broker `me.id` as a new incarnation: the incarnation in `me` is ignored and
    /// replaced by one above any the Lease recorded. `fence` goes up whenever the
    /// registration lapses; `metadata` is the image cache the broker's watches fill.
    pub async fn register(
        client: Client,
        settings: ClusterSettings,
        me: Registration,
        fence: Arc<Fence>,
        metadata: Arc<MetadataCache>,
    ) -> Result<Arc<Registrar>, KubeError> {
        let catch_up = CatchUp::new(
            client.clone(),
            &settings.namespace,
            &settings.name,
            metadata.clone(),
        );
        let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
        let name = broker_lease_name(&settings.name, me.id);
        // A fresh data directory is as old as the incarnation that first registers with it.
        let fresh_directory = me.directory_epoch.is_none();
        let now = MicroTime(Timestamp::now());
        let registered = ConditionalUpdate::new(&api, &name)
            .run(|existing| {
                let me = next_incarnation(&me, existing, fresh_directory);
                let lease = lease_for(&settings, &name, &me, existing.cloned(), &now);
                Decision::<_, _>::Replace(lease, me)
            })
            .await
            .map_err(|error| lease_error(&name, "register in", error))?;
        let me = registered.value;
        fence.valid_until(registered.read_at, settings.renew_deadline);
        tracing::info!(
            lease = name,
            incarnation = me.incarnation,
            "registered broker"
        );
        Ok(Arc::new(Registrar {
            api,
            settings,
            name,
            me: Mutex::new(me),
            fence,
            metadata,
            catch_up,
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// Announces a controlled shutdown in the Lease (renewals go on carrying it), so the
    /// controller moves this broker's leaderships to in-sync followers while it still serves.
    pub async fn begin_shutdown(&self) -> Result<(), KubeError> {
        self.me.lock().shutting_down = true;
        self.renew().await
    }

    /// Publishes `address` as this broker's advertised address on `listener` (`None`: leaves
    /// the listener out of the Lease), renewing at once when that changes what it says.
    pub async fn advertise(&self, listener: &str, address: Option<(String, i32)>) {
        let changed = self.amend(|me| {
            me.listeners.retain(|e| e.name != listener);
            if let Some((host, port)) = address {
                me.listeners.push(Endpoint {
                    name: listener.to_string(),
                    host,
                    port,
                });
            }
        });
        if changed {
            self.renew_now("publishing a listener's address").await;
        }
    }

    /// Says in the Lease that broker `peer`'s process `incarnation` refused this broker's
    /// connections (`None`: withdraws what it said of `peer`), so the controller fails over a
    /// dead leader without waiting for its Lease to run out. Returns whether that changed
    /// what the Lease says, which then wants [`Registrar::renew_now`]: the change is made
    /// here, in the caller's order, and any renewal carries the latest.
    pub fn report_refusal(&self, peer: i32, incarnation: Option<i64>) -> bool {
        self.amend(|me| {
            me.refused.retain(|p| p.id != peer);
            if let Some(incarnation) = incarnation {
                me.refused.insert(BrokerIncarnation {
                    id: peer,
                    incarnation,
                });
            }
        })
    }

    /// Renews at once because of `why`; a failure is logged and retried by the next tick,
    /// which carries the same registration.
    pub async fn renew_now(&self, why: &str) {
        if let Err(error) = self.renew().await {
            tracing::warn!(%error, "{why}");
        }
    }

    /// Applies `change` to what the Lease says; true if it changed anything.
    fn amend(&self, change: impl FnOnce(&mut Registration)) -> bool {
        let mut me = self.me.lock();
        let before = me.clone();
        change(&mut me);
        *me != before
    }

    /// Stops `tasks` with the renewals, at release.
    pub fn adopt(&self, tasks: Vec<tokio::task::JoinHandle<()>>) {
        self.tasks.lock().extend(tasks);
    }

    /// This process's incarnation epoch.
    pub fn incarnation(&self) -> i64 {
        self.me.lock().incarnation
    }

    /// The registered broker's id.
    pub fn broker_id(&self) -> i32 {
        self.me.lock().id
    }

    /// The image cache the registration's broker follows the cluster in.
    pub fn metadata(&self) -> &Arc<MetadataCache> {
        &self.metadata
    }

    /// Renews the Lease every renew interval and keeps the fence in step, until
    /// [`Registrar::release`].
    pub fn spawn(self: &Arc<Self>) {
        let watchdog = Arc::downgrade(self);
        let fence_task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(FENCE_CHECK).await;
                let Some(registrar) = watchdog.upgrade() else {
                    return;
                };
                registrar.check_fence();
            }
        });
        let renewer = Arc::downgrade(self);
        let interval = self.settings.renew_interval;
        let renew_task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(registrar) = renewer.upgrade() else {
                    return;
                };
                match registrar.renew().await {
                    Ok(()) => {}
                    Err(KubeError::Superseded { id, ours, theirs }) => {
                        tracing::error!(
                            id,
                            ours,
                            theirs,
                            "a newer process registered as this broker; staying fenced"
                        );
                        registrar.stop_tasks();
                        registrar.fence.revoke();
                        return;
                    }
                    Err(error) => tracing::warn!(%error, "Lease renewal failed; retrying"),
                }
                registrar.check_fence();
            }
        });
        self.tasks.lock().extend([fence_task, renew_task]);
    }

    fn stop_tasks(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }

    /// Logs the fence going up or down (the fence itself is a deadline, checked at use).
    fn check_fence(&self) {
        self.fence.report();
    }

    /// One renewal: a replace conditional on the resourceVersion read, so a newer
    /// incarnation's Lease is never overwritten; a lost race is left to the next tick.
    pub async fn renew(&self) -> Result<(), KubeError> {
        let lapsed = self.fence.is_fenced();
        let me = self.me.lock().clone();
        let now = MicroTime(Timestamp::now());
        let renewed = ConditionalUpdate::new(&self.api, &self.name)
            .policy(RetryPolicy::once())
            .run(|current| {
                let Some(lease) = current else {
                    return Decision::Abort(Renewal::Gone);
                };
                let theirs = incarnation_of(lease);
                if theirs != me.incarnation {
                    return Decision::Abort(Renewal::Superseded(theirs));
                }
                let lease = lease_for(&self.settings, &self.name, &me, Some(lease.clone()), &now);
                Decision::Replace(lease, ())
            })
            .await;
        match renewed {
            Ok(done) => {
                if lapsed {
                    self.catch_up.wait(self.settings.renew_interval).await?;
                }
                self.fence
                    .valid_until(done.read_at, self.settings.renew_deadline);
                Ok(())
            }
            // Lost a race with another writer: the next tick re-reads.
            Err(UpdateError::Exhausted { .. }) => Ok(()),
            Err(UpdateError::Aborted(Renewal::Superseded(theirs))) => Err(KubeError::Superseded {
                id: me.id,
                ours: me.incarnation,
                theirs,
            }),
            Err(UpdateError::Aborted(Renewal::Gone)) => Err(KubeError::Invalid(format!(
                "Lease {} is gone; this broker is no longer registered",
                self.name
            ))),
            Err(error) => Err(lease_error(&self.name, "renew", error)),
        }
    }

    /// Stops renewing and leading, and clears the Lease's holder so the controller re-elects
    /// this broker's partitions at once rather than after the Lease expires. A renewal sent
    /// just before the tasks stopped may still land after the read: a lost race reads again,
    /// within the conditional update's tries.
    pub async fn release(&self) -> Result<(), KubeError> {
        self.stop_tasks();
        self.fence.revoke();
        let incarnation = self.incarnation();
        ConditionalUpdate::new(&self.api, &self.name)
            .run(|current| match current {
                Some(lease) if incarnation_of(lease) == incarnation => {
                    let mut released = lease.clone();
                    released.spec = lease.spec.as_ref().map(released_spec);
                    Decision::<_, _>::Replace(released, ())
                }
                _ => Decision::Keep(()),
            })
            .await
            .map(drop)
            .map_err(|error| lease_error(&self.name, "release", error))
    }
}

/// Why a renewal wrote nothing.
#[derive(Debug, thiserror::Error)]
enum Renewal {
    /// A newer process registered as this broker (its incarnation).
    #[error("a newer process (incarnation {0}) registered as this broker")]
    Superseded(i64),
    /// The Lease was deleted.
    #[error("the Lease is gone")]
    Gone,
}

/// A failed conditional update of the Lease, as the broker's Kubernetes error.
fn lease_error<E: std::fmt::Display>(name: &str, what: &str, error: UpdateError<E>) -> KubeError {
    match error {
        UpdateError::Read { source, .. } => KubeError::api(format!("read Lease {name}"), *source),
        UpdateError::Write { source, .. } => {
            KubeError::api(format!("{what} Lease {name}"), *source)
        }
        other => KubeError::Invalid(format!("{what} Lease {name}: {other}")),
    }
}

/// `me` as the incarnation after the one the `existing` Lease records (the first without
/// one), announcing no shutdown; a fresh data directory takes that incarnation as its epoch.
fn next_incarnation(
    me: &Registration,
    existing: Option<&Lease>,
    fresh_directory: bool,
) -> Registration {
    let mut next = me.clone();
    next.incarnation = existing.map_or(0, incarnation_of) + 1;
    next.shutting_down = false;
    if fresh_directory {
        next.directory_epoch = Some(next.incarnation);
    }
    next
}

fn incarnation_of(lease: &Lease) -> i64 {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(tributary_crds::registration::INCARNATION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The Lease holding `me`: `existing` (keeping its resourceVersion, labels and other
/// annotations) with this broker as holder, renewed at `now`.
fn lease_for(
    settings: &ClusterSettings,
    name: &str,
    me: &Registration,
    existing: Option<Lease>,
    now: &MicroTime,
) -> Lease {
    let mut lease = existing.unwrap_or_else(|| Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(settings.namespace.clone()),
            ..ObjectMeta::default()
        },
        spec: None,
    });
    lease
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(CLUSTER_LABEL.to_string(), settings.name.clone());
    let annotations = lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.remove(tributary_crds::registration::SHUTTING_DOWN_ANNOTATION);
    annotations.remove(tributary_crds::registration::RACK_ANNOTATION);
    annotations.remove(tributary_crds::registration::REFUSED_ANNOTATION);
    annotations.extend(me.annotations());
    let renew = lease
        .spec
        .as_ref()
        .is_some_and(|s| s.holder_identity.as_deref() == Some(settings.pod_name.as_str()));
    let spec = held_spec(
        lease.spec.as_ref(),
        &settings.pod_name,
        settings.lease_duration,
        renew,
        now.0,
    );
    lease.spec = Some(spec);
    lease
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(directory_epoch: Option<i64>) -> Registration {
        Registration {
            id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
            incarnation: 0,
            shutting_down: true,
            directory_epoch,
            listeners: Vec::new(),
            refused: Default::default(),
        }
    }

    fn lease(incarnation: &str) -> Lease {
        let mut lease = Lease::default();
        lease.metadata.annotations = Some(
            [(
                tributary_crds::registration::INCARNATION_ANNOTATION.to_owned(),
                incarnation.to_owned(),
            )]
            .into(),
        );
        lease
    }

    #[test]
    fn each_start_registers_the_incarnation_after_the_one_recorded() {
        let first = next_incarnation(&me(None), None, true);
        assert_eq!((first.incarnation, first.directory_epoch), (1, Some(1)));
        assert!(!first.shutting_down);
        let again = next_incarnation(&me(Some(1)), Some(&lease("4")), false);
        assert_eq!((again.incarnation, again.directory_epoch), (5, Some(1)));
        let fresh_disk = next_incarnation(&me(None), Some(&lease("4")), true);
        assert_eq!(fresh_disk.directory_epoch, Some(5));
        let unreadable = next_incarnation(&me(Some(1)), Some(&lease("x")), false);
        assert_eq!(unreadable.incarnation, 1);
    }
}
