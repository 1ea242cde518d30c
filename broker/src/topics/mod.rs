//! Topics: names, configuration (per topic and broker-wide dynamic defaults), and the file a
//! standalone broker keeps its topics in.

pub mod alter;
pub mod config;
pub mod describe;
pub use tributary_replication::topic_names as names;
mod store;

pub use store::{LocalStore, MetadataStore, StoreError, TopicRecord};
