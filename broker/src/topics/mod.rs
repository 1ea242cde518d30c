//! Topics: names, configuration, the registry of topics and their partitions, and where the
//! registry is persisted.

pub mod config;
pub mod dynamic;
pub mod names;
mod registry;
mod store;

pub use registry::{RegistryError, Topic, TopicRegistry, TopicSpec};
pub use store::{LocalStore, MetadataStore, StoreError, TopicRecord};
