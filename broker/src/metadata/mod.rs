//! The broker's view of the cluster: the immutable [`ClusterImage`]s in a [`MetadataCache`]
//! (both on the replication floor), fed by a [`MetadataSource`] (`crate::standalone` for a
//! standalone broker, the Kubernetes objects of `crate::kube` in cluster mode). Handlers ask
//! the cache; none assumes it is the only broker. The sources sit above the replica manager
//! they drive.

pub mod elections;
pub mod reassignments;
mod source;
pub mod validate;

pub use source::{Growth, MetadataError, MetadataSource, TopicSpec};
pub use tributary_replication::metadata::{
    is_internal_topic, BrokerInfo, ClusterImage, Endpoint, IsrMember, MetadataCache,
    PartitionState, TopicImage, NO_LEADER,
};

/// The advertised address of each of the broker's listeners, as the image and the broker's
/// registration publish them.
pub fn advertised_endpoints(config: &crate::config::BrokerConfig) -> Vec<Endpoint> {
    config
        .listeners
        .all
        .iter()
        .map(|l| Endpoint {
            listener: l.name.clone(),
            host: l.advertised_host.clone(),
            port: l.advertised_port,
        })
        .collect()
}
