//! What the replica layer above the append path needs of the broker around it, as a trait the
//! broker implements: the coordinators' hosts work through it, so they depend on no broker
//! type and the broker can be built from them without a circle. (The follower fetchers, on
//! the replication floor, have their own `FetcherHost`.)

use tributary_replication::append::AppendHost;

use crate::config::BrokerConfig;

/// The broker's parts every write to a hosted partition goes through, and its configuration.
pub trait ReplicaHost: AppendHost {
    /// The effective configuration (this broker's id, replication settings, topic defaults).
    fn config(&self) -> &BrokerConfig;
}

/// A shared host is a host: callers holding the broker in an `Arc` pass it as it is.
impl<T: ReplicaHost + ?Sized> ReplicaHost for std::sync::Arc<T> {
    fn config(&self) -> &BrokerConfig {
        (**self).config()
    }
}
