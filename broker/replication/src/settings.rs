//! What the replica manager takes from the broker's configuration: who it is, where replicas
//! live, and how a topic's overrides resolve into what its partitions run with. The broker
//! builds it from its configuration, so nothing below the broker reads broker keys.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::partition::TopicSettings;

/// Resolves a topic's config overrides, the broker's defaults filling the rest.
pub type ResolveTopicSettings = dyn Fn(&BTreeMap<String, String>) -> TopicSettings + Send + Sync;

/// The broker's settings the replica manager needs.
#[derive(Clone)]
pub struct ReplicaSettings {
    /// This broker's node id: which replicas of an image are its own.
    pub broker_id: i32,
    /// The data directory, holding one directory per hosted replica.
    pub data_dir: PathBuf,
    /// Whether tiered storage is configured: a tiered topic's replica opened from disk then
    /// leads only once its log was checked against the remote log.
    pub tiered: bool,
    /// A topic's settings from its overrides.
    pub topic_settings: Arc<ResolveTopicSettings>,
}

impl ReplicaSettings {
    /// The settings a topic with `overrides` runs with.
    pub fn resolve(&self, overrides: &BTreeMap<String, String>) -> TopicSettings {
        (self.topic_settings)(overrides)
    }
}

impl fmt::Debug for ReplicaSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaSettings")
            .field("broker_id", &self.broker_id)
            .field("data_dir", &self.data_dir)
            .field("tiered", &self.tiered)
            .finish_non_exhaustive()
    }
}
