//! The topics a consumer group can subscribe to, as the heartbeat sees them: the broker's
//! metadata image is the caller's, and the core gets only this snapshot (name, id and
//! partition count), so every decision is a function of its inputs.

use std::collections::BTreeMap;

use uuid::Uuid;

/// One topic: what an assignor needs of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic id (records and heartbeats name topics by id).
    pub id: Uuid,
    /// Topic name (subscriptions name topics by name).
    pub name: String,
    /// Partition count.
    pub partitions: i32,
}

/// A snapshot of the cluster's topics, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicsImage {
    by_name: BTreeMap<String, TopicMetadata>,
}

impl TopicsImage {
    /// A snapshot holding `topics`.
    pub fn new(topics: impl IntoIterator<Item = TopicMetadata>) -> TopicsImage {
        TopicsImage {
            by_name: topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    /// The topic named `name`.
    pub fn get(&self, name: &str) -> Option<&TopicMetadata> {
        self.by_name.get(name)
    }

    /// Every topic, by name order (regular expressions are matched against these).
    pub fn iter(&self) -> impl Iterator<Item = &TopicMetadata> + '_ {
        self.by_name.values()
    }
}
