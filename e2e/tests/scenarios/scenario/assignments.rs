//! Partition assignments as the KafkaPartition objects record them (`spec.replicas`, the
//! reassignment in progress, `status.isr`), read and watched by the scenarios that move
//! replicas (scaling, reassignment).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use kube::api::{DynamicObject, ListParams};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::Value;

use crate::env::wait;

use super::replicated::Replicated;
use super::READY;

/// One partition's assignment as its KafkaPartition records it.
#[derive(Clone, Debug)]
pub(crate) struct Assigned {
    /// The object's name (`<topic>-<partition>`).
    pub(crate) name: String,
    /// `spec.replicas` (during a reassignment, the original and the added replicas).
    pub(crate) replicas: Vec<i64>,
    /// `spec.addingReplicas`.
    pub(crate) adding: Vec<i64>,
    /// `spec.removingReplicas`.
    pub(crate) removing: Vec<i64>,
    /// `status.isr` broker ids.
    pub(crate) isr: Vec<i64>,
    /// `status.leader`, or -1.
    pub(crate) leader: i64,
}

impl Assigned {
    fn of(obj: &DynamicObject) -> Assigned {
        let ids = |v: &Value| -> Vec<i64> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .collect()
        };
        let spec = &obj.data["spec"];
        let status = &obj.data["status"];
        Assigned {
            name: obj.name_any(),
            replicas: ids(&spec["replicas"]),
            adding: ids(&spec["addingReplicas"]),
            removing: ids(&spec["removingReplicas"]),
            isr: status["isr"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["brokerId"].as_i64())
                .collect(),
            leader: status["leader"].as_i64().unwrap_or(-1),
        }
    }

    /// A reassignment is in progress.
    pub(crate) fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// Settled, with every replica in sync.
    pub(crate) fn in_sync(&self) -> bool {
        let isr: BTreeSet<i64> = self.isr.iter().copied().collect();
        let replicas: BTreeSet<i64> = self.replicas.iter().copied().collect();
        !self.reassigning() && isr == replicas
    }
}

/// Reads the KafkaPartition objects of a scenario's namespace.
#[derive(Clone)]
pub(crate) struct Assignments(Api<DynamicObject>);

impl Assignments {
    pub(crate) fn new(cluster: &Replicated) -> Assignments {
        Assignments(cluster.partition_objects())
    }

    pub(crate) async fn now(&self) -> Option<Vec<Assigned>> {
        let list = self.0.list(&ListParams::default()).await.ok()?;
        Some(list.items.iter().map(Assigned::of).collect())
    }

    /// Waits until every partition is settled and in sync and `accept` takes them.
    pub(crate) async fn settle(
        &self,
        what: &str,
        accept: impl Fn(&[Assigned]) -> bool,
    ) -> Vec<Assigned> {
        wait(what, READY, || async {
            let all = self.now().await?;
            (all.iter().all(Assigned::in_sync) && accept(&all)).then_some(all)
        })
        .await
    }
}

/// Replicas per broker id.
pub(crate) fn counts(all: &[Assigned]) -> BTreeMap<i64, usize> {
    let mut counts = BTreeMap::new();
    for p in all {
        for r in &p.replicas {
            *counts.entry(*r).or_default() += 1;
        }
    }
    counts
}

/// What a [`MoveWatch`] saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct Moves {
    /// The most reassignments in progress at once.
    pub(crate) most: usize,
    /// Every state a partition was seen in while a reassignment was in progress.
    pub(crate) reassigning: Vec<Assigned>,
}

/// Watches every change to the namespace's KafkaPartition objects, so no reassignment goes
/// unseen however quickly it completes, until stopped.
pub(crate) struct MoveWatch {
    seen: Arc<Mutex<Moves>>,
    task: tokio::task::JoinHandle<()>,
}

impl MoveWatch {
    pub(crate) fn start(assignments: &Assignments) -> MoveWatch {
        let seen = Arc::new(Mutex::new(Moves::default()));
        let into = seen.clone();
        let events = watcher(assignments.0.clone(), watcher::Config::default());
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            let mut moving = BTreeSet::new();
            while let Some(event) = events.next().await {
                let object = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    Ok(watcher::Event::Delete(o)) => {
                        moving.remove(&o.name_any());
                        continue;
                    }
                    _ => continue,
                };
                let assigned = Assigned::of(&object);
                let mut seen = into.lock().unwrap_or_else(PoisonError::into_inner);
                if assigned.reassigning() {
                    moving.insert(assigned.name.clone());
                    seen.reassigning.push(assigned);
                } else {
                    moving.remove(&assigned.name);
                }
                seen.most = seen.most.max(moving.len());
            }
        });
        MoveWatch { seen, task }
    }

    /// What was seen.
    pub(crate) fn stop(self) -> Moves {
        self.task.abort();
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
