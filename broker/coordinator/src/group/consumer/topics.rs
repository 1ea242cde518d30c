//! The topics a consumer group can subscribe to, as the heartbeat sees them: the broker's
//! metadata image is the caller's, and the core gets only this snapshot (name, id and
//! partition count), so every decision is a function of its inputs.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Topics regular expressions may not match: those the heartbeating member may not
    /// DESCRIBE (Kafka resolves regexes to authorized topics only).
    hidden_from_regex: BTreeSet<String>,
}

impl TopicsImage {
    /// A snapshot holding `topics`.
    pub fn new(topics: impl IntoIterator<Item = TopicMetadata>) -> TopicsImage {
        TopicsImage {
            by_name: topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
            hidden_from_regex: BTreeSet::new(),
        }
    }

    /// This snapshot with the topics `visible` refuses left out of regex matches (topic names
    /// subscribed explicitly still resolve: the request was refused if it named one the
    /// member may not describe).
    pub fn hide_from_regex(mut self, visible: impl Fn(&str) -> bool) -> TopicsImage {
        self.hidden_from_regex = self
            .by_name
            .keys()
            .filter(|name| !visible(name))
            .cloned()
            .collect();
        self
    }

    /// Whether a regular expression may match `name`.
    pub fn regex_may_match(&self, name: &str) -> bool {
        !self.hidden_from_regex.contains(name)
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
