//! What the replica layer needs of the broker around it, as a trait the broker implements:
//! the append path and the follower fetchers work through it, so this layer depends on no
//! broker type and the broker can be built from it without a circle.

use crate::config::BrokerConfig;
use crate::flusher::Flusher;
use crate::metadata::MetadataCache;

use super::ReplicaManager;

/// The broker's parts every write to a hosted partition goes through.
pub trait ReplicaHost: Send + Sync {
    /// The effective configuration (fsync settings, topic defaults, this broker's id).
    fn config(&self) -> &BrokerConfig;

    /// The cluster as this broker sees it: which partitions exist, and their ISRs.
    fn metadata(&self) -> &MetadataCache;

    /// The partitions this broker hosts.
    fn replicas(&self) -> &ReplicaManager;

    /// The group-commit fsync queue the writes are made durable through.
    fn flusher(&self) -> &Flusher;
}

/// A shared host is a host: callers holding the broker in an `Arc` pass it as it is.
impl<T: ReplicaHost + ?Sized> ReplicaHost for std::sync::Arc<T> {
    fn config(&self) -> &BrokerConfig {
        (**self).config()
    }

    fn metadata(&self) -> &MetadataCache {
        (**self).metadata()
    }

    fn replicas(&self) -> &ReplicaManager {
        (**self).replicas()
    }

    fn flusher(&self) -> &Flusher {
        (**self).flusher()
    }
}
