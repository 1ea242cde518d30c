//! Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat): the pure core, in the
//! shape of Kafka's group coordinator (`ConsumerGroup`, the server-side assignors) and its
//! records.
//!
//! - State: [`group`] (epochs, members, subscribed topics, target assignment, who owns what),
//!   [`member`], [`assignment`] (partition sets), [`topics`] (the cluster as a heartbeat
//!   sees it), [`config`], [`error`].
//! - [`subscription`] (what the group subscribes to), [`assignor`] (`uniform`, `range`).
//! - Persistence: [`records`] (record types 3 to 8 with Kafka's schemas) and [`replay`]
//!   (records into state).
//!
//! Not wired into the request handlers or the coordinator shard yet.

pub mod assignment;
pub mod assignor;
pub mod config;
pub mod error;
pub mod group;
pub mod member;
pub mod records;
pub mod replay;
pub mod subscription;
pub mod topics;

pub use assignment::Assignment;
pub use config::ConsumerGroupConfig;
pub use error::HeartbeatError;
pub use group::{ConsumerGroup, ConsumerGroupState};
pub use member::{Member, MemberState};
pub use replay::ConsumerGroups;
pub use topics::{TopicMetadata, TopicsImage};
