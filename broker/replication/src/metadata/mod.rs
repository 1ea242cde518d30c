//! The cluster as a broker sees it at one moment: immutable [`ClusterImage`]s of brokers,
//! topics and every partition's replicas, leader, epochs and ISR, held by a
//! [`MetadataCache`] that handlers read without locks and the replica manager and the
//! coordinators watch. The broker's metadata sources (a standalone broker's files, the
//! Kubernetes objects in cluster mode) build the images; this floor only holds them.

mod cache;
mod image;

pub use cache::MetadataCache;
pub use image::{
    is_internal_topic, BrokerInfo, ClusterImage, Endpoint, IsrMember, PartitionState, TopicImage,
    NO_LEADER,
};
