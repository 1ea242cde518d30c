//! The broker's view of the cluster: immutable [`ClusterImage`]s in a [`MetadataCache`],
//! fed by a [`MetadataSource`] (`local` for a standalone broker, Kubernetes objects in
//! cluster mode). Handlers ask the cache; none assumes it is the only broker.

mod cache;
pub mod elections;
mod image;
pub mod local;
pub mod reassignments;
mod source;
pub mod validate;

pub use cache::MetadataCache;
pub use image::{
    is_internal_topic, BrokerInfo, ClusterImage, Endpoint, IsrMember, PartitionState, TopicImage,
    NO_LEADER,
};
pub use source::{Growth, MetadataError, MetadataSource, TopicSpec};
