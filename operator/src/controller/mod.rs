//! The Kafka controller role: broker liveness from Lease renewals the controller itself
//! observes, leader elections and ISR maintenance for every KafkaPartition, written with
//! resourceVersion preconditions. Only the operator replica holding the leader Lease runs it.
//!
//! - [`liveness`]: which brokers are alive, by this process's clock (pure).
//! - [`election`]: what one partition's status should become after failures (pure).
//! - [`preferred`]: preferred-replica and unclean elections on demand (pure).
//! - [`balance`]: auto leader rebalancing: settings and the per-broker imbalance check (pure).
//! - [`reassign`]: completing partition reassignments (pure).
//! - [`plan`]: what one pass does to one partition: failover, reassignment completion,
//!   election requests, rebalancing (pure).
//! - [`cache`]: the partitions as watched, overlaid with the controller's own newer writes.
//! - [`writer`]: conditional writes, re-read and planned again on conflict, bounded concurrency.
//! - [`run`](mod@run): the watches and the decision loop.

pub mod balance;
pub mod cache;
pub mod election;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod liveness;
pub mod plan;
pub mod preferred;
pub mod reassign;
pub mod run;
pub mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

pub use run::run;

/// The brokers the active controller last saw alive, per `(namespace, cluster)`, so the
/// KafkaCluster status says which are registered by the same judgement elections use.
#[derive(Debug, Default)]
pub struct LiveBrokers {
    by_cluster: Mutex<BTreeMap<(String, String), BTreeSet<i32>>>,
    /// A pass has published since the role (re)started: an absent broker is dead, not unknown.
    judged: AtomicBool,
}

impl LiveBrokers {
    /// Replaces the whole picture (after a decision pass).
    pub fn publish(&self, by_cluster: BTreeMap<(String, String), BTreeSet<i32>>) {
        *self.lock() = by_cluster;
        self.judged.store(true, Ordering::SeqCst);
    }

    /// Forgets everything (the controller role stopped: it no longer knows).
    pub fn clear(&self) {
        self.judged.store(false, Ordering::SeqCst);
        self.lock().clear();
    }

    /// Live broker ids of `cluster` in `namespace`, or `None` before the controller's first
    /// pass: a rolling update must not take "not seen yet" for "dead" and restart a broker
    /// that is recovering.
    pub fn judged(&self, namespace: &str, cluster: &str) -> Option<BTreeSet<i32>> {
        self.judged
            .load(Ordering::SeqCst)
            .then(|| self.of(namespace, cluster))
    }

    /// Live broker ids of `cluster` in `namespace`.
    pub fn of(&self, namespace: &str, cluster: &str) -> BTreeSet<i32> {
        self.lock()
            .get(&(namespace.to_owned(), cluster.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), BTreeSet<i32>>> {
        self.by_cluster
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
