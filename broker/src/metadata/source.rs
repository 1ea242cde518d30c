//! Where the cluster's metadata lives and where admin changes go: a data-directory file on a
//! standalone broker ([`super::local`]), Kubernetes objects in cluster mode. Handlers ask the
//! source to change topics and read the outcome from the [`super::MetadataCache`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::TopicImage;
use crate::storage::StorageError;
use crate::topics::StoreError;

/// Why a metadata change was refused or failed; the handlers map these to Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The name breaks Kafka's naming rules.
    #[error("{0}")]
    InvalidName(String),
    /// A topic of that name exists.
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    /// No topic of that name.
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    /// Bad partition count.
    #[error("{0}")]
    InvalidPartitions(String),
    /// Bad replication factor.
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// Bad config override.
    #[error("{0}")]
    InvalidConfig(String),
    /// Replica assignments that name unknown brokers or are inconsistent.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// The request would pass a partition limit (per request or per broker).
    #[error("{0}")]
    PolicyViolation(String),
    /// A partition log could not be opened or removed.
    #[error("storage failure: {0}")]
    Storage(#[from] StorageError),
    /// Topic metadata could not be saved.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The change was made but did not take effect in time (the object stays, as in Kafka).
    #[error("{0}")]
    TimedOut(String),
    /// The cluster's metadata store could not be reached or refused the change.
    #[error("{0}")]
    Unavailable(String),
}

/// A request to create a topic, before defaults are applied.
#[derive(Debug, Clone, Default)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count (-1 for the broker default).
    pub partitions: i32,
    /// Replication factor (-1 for the broker default).
    pub replication_factor: i16,
    /// Config overrides.
    pub configs: BTreeMap<String, String>,
    /// Replicas of each partition chosen by the client (empty: the cluster places them).
    pub assignments: Vec<Vec<i32>>,
}

/// Changes to the cluster's topics. Every method returns once the change is visible in the
/// metadata cache (and, for new partitions, their leaders serve them), failed, or `timeout`
/// passed (a standalone broker finishes at once).
pub trait MetadataSource: Send + Sync {
    /// Checks a creation and applies defaults without making it (CreateTopics with
    /// `validate_only`).
    fn validate_create(&self, spec: &TopicSpec) -> Result<TopicImage, MetadataError>;

    /// Creates a topic.
    fn create_topic(
        &self,
        spec: TopicSpec,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Arc<TopicImage>, MetadataError>>;

    /// Deletes a topic and, on every broker, its data.
    fn delete_topic<'a>(
        &'a self,
        name: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Arc<TopicImage>, MetadataError>>;

    /// Grows a topic to `change.count` partitions (never shrinks).
    fn create_partitions<'a>(
        &'a self,
        name: &'a str,
        change: Growth,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), MetadataError>>;

    /// Replaces a topic's config overrides.
    fn set_topic_configs<'a>(
        &'a self,
        name: &'a str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<(), MetadataError>>;

    /// Makes sure a topic the broker needs itself exists, as Kafka creates its internal
    /// topics on first use: the topic if it exists now, `None` while its creation is under
    /// way (callers answer a retriable error meanwhile).
    fn ensure_topic(&self, spec: TopicSpec) -> Result<Option<Arc<TopicImage>>, MetadataError>;

    /// Applies changed broker-wide topic defaults (dynamic broker configs) to the partitions
    /// of every topic that does not override them.
    fn reapply_defaults(&self);
}

/// A partition count increase (CreatePartitions).
#[derive(Debug, Clone, Default)]
pub struct Growth {
    /// The new partition count.
    pub count: i32,
    /// Replicas of each new partition chosen by the client (empty: the cluster places them).
    pub assignments: Vec<Vec<i32>>,
    /// Only check that the change would be accepted.
    pub validate_only: bool,
}
