//! Prometheus metrics: reconcile counts, errors by kind, durations per controller, whether
//! this replica is the leader, and the controller role's work (partition leadership changes
//! by kind, conditional writes and their conflicts, election requests answered, offline and
//! preferred-leader-imbalanced partitions, live brokers), named after what Kafka's controller
//! reports (OfflinePartitionsCount, PreferredReplicaImbalanceCount, elections by kind), and
//! rolling updates (brokers still to restart, what a roll waits for, restarts). Served on
//! `/metrics` by [`crate::http`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus::{
    Histogram, HistogramTimer, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Registry,
};
use tributary_metrics::Registrar;

use crate::controller::election::Change;

/// Results of a controller write, as labelled in `tributary_operator_controller_writes_total`.
const WRITE_RESULTS: [&str; 4] = ["ok", "conflict", "error", "refused"];

/// Per-cluster partition counts one controller pass publishes as gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterCounts {
    /// Partitions without a leader (Kafka's OfflinePartitionsCount).
    pub offline: i64,
    /// Partitions whose leader is not their preferred replica, offline ones included (Kafka's
    /// PreferredReplicaImbalanceCount).
    pub imbalanced: i64,
    /// Partitions with a reassignment in progress, not completing in this pass.
    pub reassigning: i64,
}

/// The table of every metric the operator exports, in the order of [`Metrics`]' fields.
mod defs {
    use tributary_metrics::Def;

    const CLUSTER: &[&str] = &["namespace", "cluster"];

    pub(super) const RECONCILES: Def = Def {
        name: "tributary_operator_reconciles_total",
        help: "Reconciles started, by controller",
        labels: &["controller"],
    };
    pub(super) const RECONCILE_ERRORS: Def = Def {
        name: "tributary_operator_reconcile_errors_total",
        help: "Reconciles that failed, by controller and error kind",
        labels: &["controller", "error"],
    };
    pub(super) const RECONCILE_DURATION: Def = Def {
        name: "tributary_operator_reconcile_duration_seconds",
        help: "Reconcile duration, by controller",
        labels: &["controller"],
    };
    pub(super) const RECONCILE_BUCKETS: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    pub(super) const LEADER: Def = Def {
        name: "tributary_operator_leader",
        help: "1 when this replica is the active operator",
        labels: &[],
    };
    pub(super) const READY: Def = Def {
        name: "tributary_operator_ready",
        help: "1 when the Kubernetes API answers and the CRDs are installed (same as /readyz)",
        labels: &[],
    };
    pub(super) const PARTITION_CHANGES: Def = Def {
        name: "tributary_operator_partition_changes_total",
        help: "KafkaPartition status changes the controller wrote, by kind (initial, clean, unclean, preferred, offline, isr_shrink, reassignment): leader elections by kind, and the other transitions",
        labels: &["change"],
    };
    pub(super) const CONTROLLER_WRITES: Def = Def {
        name: "tributary_operator_controller_writes_total",
        help: "Conditional KafkaPartition status writes by the controller, by result (a conflict is re-read and decided again)",
        labels: &["result"],
    };
    pub(super) const OFFLINE_PARTITIONS: Def = Def {
        name: "tributary_operator_offline_partitions",
        help: "Partitions without a leader, as the active controller sees them",
        labels: CLUSTER,
    };
    pub(super) const IMBALANCED_PARTITIONS: Def = Def {
        name: "tributary_operator_preferred_replica_imbalance",
        help: "Partitions whose leader is not their preferred (first) replica, offline ones included, as the active controller sees them",
        labels: CLUSTER,
    };
    pub(super) const REASSIGNING_PARTITIONS: Def = Def {
        name: "kafka_controller_kafkacontroller_activereassignmentcount",
        help: "Partitions with a reassignment in progress (spec.addingReplicas or spec.removingReplicas set), as the active controller sees them",
        labels: CLUSTER,
    };
    pub(super) const ELECTION_REQUESTS: Def = Def {
        name: "tributary_operator_election_requests_total",
        help: "Election requests (the tributary.dev/elect-leader annotation, Kafka's ElectLeaders) answered, by election type and result (elected, not_needed, not_possible, invalid)",
        labels: &["type", "result"],
    };
    pub(super) const LIVE_BROKERS: Def = Def {
        name: "tributary_operator_live_brokers",
        help: "Brokers whose Lease the active controller sees renewed",
        labels: CLUSTER,
    };
    pub(super) const CONTROLLER_PASS: Def = Def {
        name: "tributary_operator_controller_pass_duration_seconds",
        help: "Time from deciding to the last write of a controller pass that changed partitions",
        labels: &[],
    };
    pub(super) const CONTROLLER_PASS_BUCKETS: &[f64] =
        &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
    pub(super) const ROLL_PENDING: Def = Def {
        name: "tributary_operator_roll_pending_brokers",
        help: "Brokers of a rolling update whose pods still run an older StatefulSet revision",
        labels: CLUSTER,
    };
    pub(super) const ROLL_WAITING: Def = Def {
        name: "tributary_operator_roll_waiting",
        help: "1 while a rolling update cannot restart a broker for this reason (BrokerRestarting, BrokerNotReady, BrokerNotRegistered: a restart in progress; BrokerNotInSync, BrokerRecovering, MinInSyncReplicas: held up by the cluster's state)",
        labels: &["namespace", "cluster", "reason"],
    };
    pub(super) const BROKER_RESTARTS: Def = Def {
        name: "tributary_operator_broker_restarts_total",
        help: "Broker pods the operator deleted to roll them, by kind (outdated, stuck)",
        labels: &["namespace", "cluster", "kind"],
    };
}

/// The operator's metrics and readiness flag.
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
    /// Mirrors `/readyz` so an alert can see an operator stuck before it can reconcile.
    ready_gauge: IntGauge,
    ready: AtomicBool,
    partition_changes: IntCounterVec,
    controller_writes: IntCounterVec,
    offline_partitions: IntGaugeVec,
    imbalanced_partitions: IntGaugeVec,
    reassigning_partitions: IntGaugeVec,
    election_requests: IntCounterVec,
    live_brokers: IntGaugeVec,
    controller_pass: Histogram,
    roll_pending: IntGaugeVec,
    roll_waiting: IntGaugeVec,
    broker_restarts: IntCounterVec,
}

impl Metrics {
    /// Registers every metric of the `defs` table in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let r = Registrar(&registry);
        let metrics = Metrics {
            reconciles: r.counter_vec(&defs::RECONCILES)?,
            errors: r.counter_vec(&defs::RECONCILE_ERRORS)?,
            duration: r.histogram_vec(&defs::RECONCILE_DURATION, defs::RECONCILE_BUCKETS)?,
            leader: r.gauge(&defs::LEADER)?,
            ready_gauge: r.gauge(&defs::READY)?,
            ready: AtomicBool::new(false),
            partition_changes: r.counter_vec(&defs::PARTITION_CHANGES)?,
            controller_writes: r.counter_vec(&defs::CONTROLLER_WRITES)?,
            offline_partitions: r.gauge_vec(&defs::OFFLINE_PARTITIONS)?,
            imbalanced_partitions: r.gauge_vec(&defs::IMBALANCED_PARTITIONS)?,
            reassigning_partitions: r.gauge_vec(&defs::REASSIGNING_PARTITIONS)?,
            election_requests: r.counter_vec(&defs::ELECTION_REQUESTS)?,
            live_brokers: r.gauge_vec(&defs::LIVE_BROKERS)?,
            controller_pass: r.histogram(&defs::CONTROLLER_PASS, defs::CONTROLLER_PASS_BUCKETS)?,
            roll_pending: r.gauge_vec(&defs::ROLL_PENDING)?,
            roll_waiting: r.gauge_vec(&defs::ROLL_WAITING)?,
            broker_restarts: r.counter_vec(&defs::BROKER_RESTARTS)?,
            registry,
        };
        metrics.create_known_series();
        Ok(metrics)
    }

    /// Series exist at zero from the start, so `rate()` and `increase()` see the first
    /// reconcile (or change, or write) instead of treating it as the beginning of the series.
    /// Controllers' series come from the operator's list ([`Metrics::controller_known`]).
    fn create_known_series(&self) {
        for change in Change::ALL {
            self.partition_changes.with_label_values(&[change.label()]);
        }
        for result in WRITE_RESULTS {
            self.controller_writes.with_label_values(&[result]);
        }
    }

    /// Publishes a cluster's rolling update: brokers still to restart and the reasons it waits
    /// for (every known reason is set, to 1 or 0, so an alert can watch one series).
    pub fn set_roll(&self, namespace: &str, cluster: &str, pending: usize, waiting: &[&str]) {
        self.roll_pending
            .with_label_values(&[namespace, cluster])
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        for reason in crate::cluster::roll::Blocker::REASONS {
            self.roll_waiting
                .with_label_values(&[namespace, cluster, reason])
                .set(i64::from(waiting.contains(&reason)));
        }
    }

    /// Whether the roll of `cluster` waits for `reason` (for tests).
    pub fn roll_waiting(&self, namespace: &str, cluster: &str, reason: &str) -> i64 {
        self.roll_waiting
            .with_label_values(&[namespace, cluster, reason])
            .get()
    }

    /// Counts a broker pod deleted to roll it (`kind`: `outdated` or `stuck`).
    pub fn broker_restarted(&self, namespace: &str, cluster: &str, kind: &str) {
        self.broker_restarts
            .with_label_values(&[namespace, cluster, kind])
            .inc();
    }

    /// Broker pods of `cluster` deleted to roll them so far, of `kind`.
    pub fn broker_restarts(&self, namespace: &str, cluster: &str, kind: &str) -> u64 {
        self.broker_restarts
            .with_label_values(&[namespace, cluster, kind])
            .get()
    }

    /// Creates `controller`'s reconcile series at zero, so `rate()` sees its first reconcile:
    /// the operator names the controllers it runs ([`crate::run::CONTROLLERS`]); this module
    /// knows none of them.
    pub fn controller_known(&self, controller: &str) {
        self.reconciles.with_label_values(&[controller]);
        self.duration.with_label_values(&[controller]);
    }

    /// Counts a reconcile and times it until the returned timer drops.
    pub fn reconcile_started(&self, controller: &str) -> HistogramTimer {
        self.reconciles.with_label_values(&[controller]).inc();
        self.duration.with_label_values(&[controller]).start_timer()
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, controller: &str, error: &crate::Error) {
        self.errors
            .with_label_values(&[controller, error.metric_label()])
            .inc();
    }

    /// Reconciles started so far for `controller` (for tests and logs).
    pub fn reconciles(&self, controller: &str) -> u64 {
        self.reconciles.with_label_values(&[controller]).get()
    }

    /// Failures so far for `controller` and error kind.
    pub fn errors(&self, controller: &str, kind: &str) -> u64 {
        self.errors.with_label_values(&[controller, kind]).get()
    }

    /// Counts a partition status change the controller wrote.
    pub fn partition_changed(&self, change: Change) {
        self.partition_changes
            .with_label_values(&[change.label()])
            .inc();
    }

    /// Partition status changes of `change` so far.
    pub fn partition_changes(&self, change: Change) -> u64 {
        self.partition_changes
            .with_label_values(&[change.label()])
            .get()
    }

    /// Counts a controller write attempt by result (`ok`, `conflict`, `error`, `refused`).
    pub fn controller_write(&self, result: &str) {
        self.controller_writes.with_label_values(&[result]).inc();
    }

    /// Controller write attempts with `result` so far.
    pub fn controller_writes(&self, result: &str) -> u64 {
        self.controller_writes.with_label_values(&[result]).get()
    }

    /// Sets the live-broker, offline-partition and imbalance gauges from one controller pass;
    /// clusters no longer seen lose their series.
    pub fn set_controller_gauges(
        &self,
        live: &BTreeMap<(String, String), BTreeSet<i32>>,
        counts: &BTreeMap<(String, String), ClusterCounts>,
    ) {
        self.live_brokers.reset();
        self.offline_partitions.reset();
        self.imbalanced_partitions.reset();
        self.reassigning_partitions.reset();
        for ((ns, cluster), ids) in live {
            self.live_brokers
                .with_label_values(&[ns.as_str(), cluster.as_str()])
                .set(i64::try_from(ids.len()).unwrap_or(i64::MAX));
        }
        for ((ns, cluster), c) in counts {
            let labels = [ns.as_str(), cluster.as_str()];
            self.offline_partitions
                .with_label_values(&labels)
                .set(c.offline);
            self.imbalanced_partitions
                .with_label_values(&labels)
                .set(c.imbalanced);
            self.reassigning_partitions
                .with_label_values(&labels)
                .set(c.reassigning);
        }
    }

    /// Partitions of `cluster` in `namespace` with a reassignment in progress at the last pass.
    pub fn reassigning_partitions(&self, namespace: &str, cluster: &str) -> i64 {
        self.reassigning_partitions
            .with_label_values(&[namespace, cluster])
            .get()
    }

    /// Preferred-replica imbalanced partitions of `cluster` in `namespace` at the last pass.
    pub fn preferred_replica_imbalance(&self, namespace: &str, cluster: &str) -> i64 {
        self.imbalanced_partitions
            .with_label_values(&[namespace, cluster])
            .get()
    }

    /// Counts an answered election request by election type and result.
    pub fn election_request(&self, election_type: &str, result: &str) {
        self.election_requests
            .with_label_values(&[election_type, result])
            .inc();
    }

    /// Election requests of `election_type` answered with `result` so far.
    pub fn election_requests(&self, election_type: &str, result: &str) -> u64 {
        self.election_requests
            .with_label_values(&[election_type, result])
            .get()
    }

    /// Offline partitions of `cluster` in `namespace` at the last controller pass.
    pub fn offline_partitions(&self, namespace: &str, cluster: &str) -> i64 {
        self.offline_partitions
            .with_label_values(&[namespace, cluster])
            .get()
    }

    /// Records a controller pass that wrote `writes` partitions.
    pub fn controller_pass_finished(&self, took: Duration, writes: usize) {
        self.controller_pass.observe(took.as_secs_f64());
        tracing::debug!(?took, writes, "controller pass finished");
    }

    /// Marks the operator ready (CRDs present, loops started or standing by).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        self.ready_gauge.set(i64::from(ready));
    }

    /// Readiness for `/readyz`.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        tributary_metrics::encode(&self.registry)
    }
}
