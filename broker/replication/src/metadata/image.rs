//! What the broker knows of the cluster at one moment: brokers, topics and every partition's
//! replicas, leader, epochs and ISR. An image is immutable and replaced whole, so a request
//! reads one consistent view without locks, and the replica manager compares two images to
//! find what changed. A standalone broker's image is "one case in the data": it is the only
//! broker, the controller, and the leader of everything with an ISR of itself.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use uuid::Uuid;

pub use crate::partition::isr::IsrMember;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Rack, for rack-aware clients and placement.
    pub rack: Option<String>,
    /// Incarnation epoch: raised at every start of the broker process (KIP-841's broker
    /// epoch), so an ISR entry of an earlier incarnation is recognisable.
    pub incarnation: i64,
    /// Every listener's advertised address; `host`/`port` are the inter-broker listener's.
    pub endpoints: Vec<Endpoint>,
}

/// A listener's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Listener name, upper case.
    pub listener: String,
    /// Host its clients connect to.
    pub host: String,
    /// Port its clients connect to.
    pub port: i32,
}

impl BrokerInfo {
    /// The address clients of `listener` reach this broker at: that listener's, or
    /// `host:port` from a broker that advertises no listeners (an older broker). `None` when
    /// it advertises others but not this one (an external listener whose address is not
    /// known yet): clients of that listener cannot reach it, and Kafka leaves it out.
    pub fn endpoint(&self, listener: &str) -> Option<(&str, i32)> {
        match self.endpoints.iter().find(|e| e.listener == listener) {
            Some(e) => Some((e.host.as_str(), e.port)),
            None if self.endpoints.is_empty() => Some((self.host.as_str(), self.port)),
            None => None,
        }
    }
}

/// One partition's replication state (Kafka's PartitionRegistration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Brokers holding a replica; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// The leader, or [`NO_LEADER`].
    pub leader: i32,
    /// Raised at every leadership change; fences requests of older leaders.
    pub leader_epoch: i32,
    /// Raised at every change of this state; conditional writes compare it.
    pub partition_epoch: i32,
    /// In-sync replicas.
    pub isr: Vec<IsrMember>,
    /// Replicas a reassignment in progress adds (in `replicas`; empty when none is).
    pub adding: Vec<i32>,
    /// Replicas a reassignment in progress removes (in `replicas`; empty when none is).
    pub removing: Vec<i32>,
}

/// The leader id of a partition without one.
pub const NO_LEADER: i32 = -1;

impl PartitionState {
    /// A partition led by `broker` alone, as on a standalone broker.
    pub fn sole(broker: i32, incarnation: i64, leader_epoch: i32) -> PartitionState {
        PartitionState {
            replicas: vec![broker],
            leader: broker,
            leader_epoch,
            partition_epoch: leader_epoch,
            isr: vec![IsrMember {
                broker,
                incarnation,
            }],
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// Whether the ISR is smaller than the replica set the partition had before any
    /// reassignment in progress (KIP-352: a replica being added is not missing).
    pub fn is_under_replicated(&self) -> bool {
        self.isr.len() < self.replicas.len().saturating_sub(self.adding.len())
    }

    /// Whether `broker` holds a replica.
    pub fn has_replica(&self, broker: i32) -> bool {
        self.replicas.contains(&broker)
    }

    /// The ISR's broker ids, in order.
    pub fn isr_ids(&self) -> Vec<i32> {
        self.isr.iter().map(|m| m.broker).collect()
    }

    /// Whether the partition has a leader.
    pub fn has_leader(&self) -> bool {
        self.leader != NO_LEADER
    }
}

/// A topic: identity, configs and partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Kafka topic name.
    pub name: String,
    /// Topic id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
    /// Replication factor asked for.
    pub replication_factor: i16,
    /// Partitions by index.
    pub partitions: Vec<PartitionState>,
}

impl TopicImage {
    /// The partition `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&PartitionState> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }

    /// Partition count.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    /// Whether this is one of Kafka's internal topics, which clients may read but not write.
    pub fn is_internal(&self) -> bool {
        is_internal_topic(&self.name)
    }
}

/// Whether `name` is one of Kafka's internal topics.
pub fn is_internal_topic(name: &str) -> bool {
    matches!(
        name,
        "__consumer_offsets" | "__transaction_state" | "__share_group_state"
    )
}

/// The whole cluster as this broker sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterImage {
    /// Cluster id (Metadata v2+).
    pub cluster_id: String,
    /// The lowest registered broker: the controller clients are told of by a broker that is
    /// not registered itself (see [`ClusterImage::controller_for`]).
    pub controller_id: i32,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Registered but fenced brokers by id (a Lease released at a clean shutdown): left out
    /// of Metadata, listed by DescribeCluster v2 when asked (KIP-1073).
    pub fenced_brokers: BTreeMap<i32, BrokerInfo>,
    topics: BTreeMap<String, Arc<TopicImage>>,
    ids: HashMap<Uuid, String>,
}

impl ClusterImage {
    /// An image without topics.
    pub fn new(cluster_id: String, controller_id: i32, brokers: Vec<BrokerInfo>) -> Self {
        ClusterImage {
            cluster_id,
            controller_id,
            brokers: brokers.into_iter().map(|b| (b.id, b)).collect(),
            fenced_brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            ids: HashMap::new(),
        }
    }

    /// The controller id to tell a client asking broker `me`: `me` itself when it is
    /// registered. Any broker serves the controller's requests, and the broker answering is
    /// alive, while the image's choice may be a broker that died and whose Lease is not yet
    /// released: an admin client would wait for it until its calls time out. Kafka's brokers
    /// likewise answer with an alive broker, not a fixed one.
    pub fn controller_for(&self, me: i32) -> i32 {
        if self.brokers.contains_key(&me) {
            me
        } else {
            self.controller_id
        }
    }

    /// This image with `topic` added or replaced.
    pub fn with_topic(mut self, topic: TopicImage) -> Self {
        self.put_topic(Arc::new(topic));
        self
    }

    /// Adds or replaces `topic`.
    pub fn put_topic(&mut self, topic: Arc<TopicImage>) {
        if let Some(old) = self.topics.get(&topic.name) {
            self.ids.remove(&old.id);
        }
        self.ids.insert(topic.id, topic.name.clone());
        self.topics.insert(topic.name.clone(), topic);
    }

    /// Removes the topic `name`, returning it.
    pub fn remove_topic(&mut self, name: &str) -> Option<Arc<TopicImage>> {
        let topic = self.topics.remove(name)?;
        self.ids.remove(&topic.id);
        Some(topic)
    }

    /// Topic by name.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    /// Topic by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&Arc<TopicImage>> {
        self.ids.get(id).and_then(|name| self.topics.get(name))
    }

    /// The registered brokers a client of `listener` can reach, with that listener's address,
    /// by id: what Metadata and DescribeCluster both list (brokers without the listener are
    /// left out, as Kafka answers).
    pub fn reachable_brokers<'a>(
        &'a self,
        listener: &'a str,
    ) -> impl Iterator<Item = (&'a BrokerInfo, &'a str, i32)> + 'a {
        self.brokers
            .values()
            .filter_map(move |b| b.endpoint(listener).map(|(host, port)| (b, host, port)))
    }

    /// Every topic, by name.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics.values()
    }

    /// The state of partition `index` of topic `name`.
    pub fn partition(&self, name: &str, index: i32) -> Option<&PartitionState> {
        self.topic(name)?.partition(index)
    }

    /// How many brokers are registered.
    pub fn broker_count(&self) -> usize {
        self.brokers.len()
    }

    /// A registered broker.
    pub fn broker(&self, id: i32) -> Option<&BrokerInfo> {
        self.brokers.get(&id)
    }

    /// Partitions (topic, index, state) with a replica on `broker`.
    pub fn replicas_of(
        &self,
        broker: i32,
    ) -> impl Iterator<Item = (&Arc<TopicImage>, i32, &PartitionState)> {
        self.topics.values().flat_map(move |t| {
            (0..)
                .zip(&t.partitions)
                .filter(move |(_, p)| p.has_replica(broker))
                .map(move |(i, p)| (t, i, p))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, partitions: Vec<PartitionState>) -> TopicImage {
        TopicImage {
            name: name.into(),
            id: Uuid::new_v4(),
            configs: BTreeMap::new(),
            replication_factor: 1,
            partitions,
        }
    }

    #[test]
    fn topics_are_found_by_name_and_id_and_replaced_whole() {
        let a = topic("a", vec![PartitionState::sole(0, 1, 0)]);
        let id = a.id;
        let image = ClusterImage::new("c".into(), 0, vec![]).with_topic(a);
        assert_eq!(image.topic_by_id(&id).map(|t| t.name.as_str()), Some("a"));
        let mut replaced = topic("a", vec![]);
        replaced.id = Uuid::new_v4();
        let image = image.with_topic(replaced);
        assert!(
            image.topic_by_id(&id).is_none(),
            "the old id no longer resolves"
        );
        assert_eq!(image.topics().count(), 1);
    }

    #[test]
    fn a_broker_finds_the_partitions_it_replicates() {
        let on = |replicas: Vec<i32>| PartitionState {
            leader: replicas[0],
            replicas,
            ..PartitionState::sole(0, 1, 0)
        };
        let image = ClusterImage::new("c".into(), 0, vec![])
            .with_topic(topic("a", vec![on(vec![0, 1]), on(vec![1, 2])]))
            .with_topic(topic("b", vec![on(vec![2, 0])]));
        let mine: Vec<(String, i32)> = image
            .replicas_of(0)
            .map(|(t, i, _)| (t.name.clone(), i))
            .collect();
        assert_eq!(mine, [("a".to_string(), 0), ("b".to_string(), 0)]);
        assert!(image.partition("a", 1).is_some_and(|p| !p.has_replica(0)));
        assert!(image.partition("a", 2).is_none());
    }

    #[test]
    fn a_sole_replica_leads_with_an_isr_of_itself() {
        let p = PartitionState::sole(3, 9, 4);
        assert_eq!((p.leader, p.leader_epoch, p.isr_ids()), (3, 4, vec![3]));
        assert_eq!(p.isr[0].incarnation, 9);
        assert!(p.has_leader());
    }
}
