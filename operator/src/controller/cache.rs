//! The controller's copy of every KafkaPartition: what the watch delivered, overlaid with what
//! the controller itself wrote and the watch has not delivered yet. Without the overlay, a
//! decision pass right after a burst of writes would decide again from the older objects and
//! spend a conflict (and a re-read) on each.
//!
//! Which copy is newer is told by the partition epoch, which every status write raises (the
//! resourceVersion is opaque and must not be compared). Safety never rests on this: a write
//! from a stale copy fails its resourceVersion precondition and is decided again.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::ResourceExt;
use tributary_crds::KafkaPartition;

/// Namespace and name of a KafkaPartition.
pub type PartitionKey = (String, String);

/// The key of `p`.
pub fn key_of(p: &KafkaPartition) -> PartitionKey {
    (p.namespace().unwrap_or_default(), p.name_any())
}

/// Partition epoch of `p`, `-1` before it has a status.
fn epoch(p: &KafkaPartition) -> i64 {
    p.status
        .as_ref()
        .map_or(-1, |s| i64::from(s.partition_epoch))
}

/// Watched KafkaPartitions plus the controller's own newer writes.
#[derive(Debug, Default)]
pub struct PartitionCache {
    watched: BTreeMap<PartitionKey, Arc<KafkaPartition>>,
    written: BTreeMap<PartitionKey, Arc<KafkaPartition>>,
    /// Keys seen since a re-list began.
    relisting: Option<BTreeMap<PartitionKey, Arc<KafkaPartition>>>,
}

impl PartitionCache {
    /// The watch delivered `p` (added or modified).
    pub fn apply(&mut self, p: KafkaPartition) {
        let k = key_of(&p);
        let p = Arc::new(p);
        if self.written.get(&k).is_some_and(|w| epoch(&p) >= epoch(w)) {
            self.written.remove(&k);
        }
        if let Some(seen) = &mut self.relisting {
            seen.insert(k.clone(), p.clone());
        }
        self.watched.insert(k, p);
    }

    /// The watch delivered the deletion of `p`.
    pub fn delete(&mut self, p: &KafkaPartition) {
        let k = key_of(p);
        self.watched.remove(&k);
        self.written.remove(&k);
    }

    /// The watch lists everything again.
    pub fn begin_relist(&mut self) {
        self.relisting = Some(BTreeMap::new());
    }

    /// The re-list is complete: it replaces what was watched.
    pub fn end_relist(&mut self) {
        if let Some(seen) = self.relisting.take() {
            self.written.retain(|k, _| seen.contains_key(k));
            self.watched = seen;
        }
    }

    /// The controller wrote `p` (the API server's answer).
    pub fn wrote(&mut self, p: KafkaPartition) {
        let k = key_of(&p);
        if self.watched.get(&k).is_some_and(|w| epoch(w) >= epoch(&p)) {
            return;
        }
        self.written.insert(k, Arc::new(p));
    }

    /// The newest copy of every partition known.
    pub fn current(&self) -> Vec<Arc<KafkaPartition>> {
        self.watched
            .iter()
            .map(|(k, w)| self.written.get(k).unwrap_or(w).clone())
            .collect()
    }

    /// Number of partitions watched.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    /// Whether no partition is watched.
    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_crds::{KafkaPartitionSpec, KafkaPartitionStatus};

    fn p(name: &str, rv: &str, partition_epoch: Option<i32>) -> KafkaPartition {
        let mut p = KafkaPartition::new(
            name,
            KafkaPartitionSpec {
                cluster_ref: "demo".into(),
                topic: "t".into(),
                topic_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                partition: 0,
                replicas: vec![0],
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
        );
        p.metadata.namespace = Some("ns".into());
        p.metadata.resource_version = Some(rv.into());
        p.status = partition_epoch.map(|partition_epoch| KafkaPartitionStatus {
            partition_epoch,
            ..KafkaPartitionStatus::default()
        });
        p
    }

    fn rv_of(c: &PartitionCache) -> Vec<String> {
        c.current()
            .iter()
            .map(|p| p.resource_version().unwrap_or_default())
            .collect()
    }

    #[test]
    fn own_writes_shadow_older_watched_copies_until_the_watch_catches_up() {
        let mut c = PartitionCache::default();
        c.apply(p("t-0", "1", None));
        c.wrote(p("t-0", "2", Some(0)));
        assert_eq!(rv_of(&c), ["2"], "the write is newer than no status");
        c.apply(p("t-0", "1", None));
        assert_eq!(rv_of(&c), ["2"], "a late event of the old copy");
        c.apply(p("t-0", "2", Some(0)));
        c.wrote(p("t-0", "2", Some(0)));
        assert_eq!(rv_of(&c), ["2"]);
        // Another writer moves on (the partition leader shrinks the ISR).
        c.apply(p("t-0", "3", Some(1)));
        assert_eq!(rv_of(&c), ["3"]);
        // A spec change keeps the epoch; the watched copy wins over an equal-epoch write.
        c.wrote(p("t-0", "4", Some(2)));
        c.apply(p("t-0", "5", Some(2)));
        assert_eq!(rv_of(&c), ["5"]);
    }

    #[test]
    fn deletions_and_relists_drop_what_is_gone() {
        let mut c = PartitionCache::default();
        c.apply(p("t-0", "1", Some(0)));
        c.apply(p("t-1", "2", Some(0)));
        c.wrote(p("t-1", "3", Some(1)));
        c.delete(&p("t-0", "1", Some(0)));
        assert_eq!(rv_of(&c), ["3"]);
        c.begin_relist();
        c.apply(p("t-2", "9", None));
        c.end_relist();
        assert_eq!(rv_of(&c), ["9"], "t-1 was deleted while unwatched");
        assert_eq!(c.len(), 1);
        assert!(!c.is_empty());
    }
}
