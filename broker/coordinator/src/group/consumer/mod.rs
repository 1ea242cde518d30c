//! Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat): the pure core, in the
//! shape of Kafka's group coordinator (`ConsumerGroup`, `CurrentAssignmentBuilder`,
//! `TargetAssignmentBuilder`, the server-side assignors) and its records. Every decision is a
//! function of the group, the request, the cluster's topics and `now`; it returns the
//! records to write and the response, and applies the records to the group the way a load
//! replays them.
//!
//! - State: [`group`] (epochs, members, subscribed topics, target assignment, who owns what),
//!   [`member`], [`assignment`] (partition sets), [`topics`] (the cluster as a heartbeat
//!   sees it), [`config`].
//! - Decisions: [`heartbeat`] (join, rejoin, subscription changes, fencing) with its
//!   [`request`] and response and the checks in [`validate`], [`leave`]
//!   (leaving and removal), [`target`] (new target assignments), [`reconcile`] (a member's
//!   step towards its target), [`subscription`] (what the group subscribes to),
//!   [`timeouts`] (session and rebalance deadlines), [`assignor`] (`uniform`, `range`).
//! - Migration: [`migration`] (a classic group upgraded to a consumer group and back, under
//!   `group.consumer.migration.policy`), [`classic`] (JoinGroup, SyncGroup, Heartbeat and
//!   LeaveGroup of classic members of a consumer group), [`embedded`] (the consumer protocol
//!   those carry).
//! - Persistence: [`records`] (record types 3 to 8 with Kafka's schemas) and [`replay`]
//!   (records into state).
//!
//! Wired by the group shard (`group::coordinator`) and the ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe handlers, when `group.coordinator.rebalance.protocols` enables it.

pub mod assignment;
pub mod assignor;
pub mod classic;
pub mod config;
pub mod embedded;
pub mod error;
pub mod group;
pub mod heartbeat;
pub mod leave;
pub mod member;
pub mod migration;
pub mod reconcile;
pub mod records;
pub mod replay;
pub mod request;
pub mod subscription;
pub mod target;
pub mod timeouts;
pub mod topics;
pub mod validate;

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod mixed_property_tests;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod tests;

pub use assignment::Assignment;
pub use config::{ConsumerGroupConfig, MigrationPolicy};
pub use error::HeartbeatError;
pub use group::{ConsumerGroup, ConsumerGroupState};
pub use member::{Member, MemberState};
pub use replay::ConsumerGroups;
pub use request::{Context, HeartbeatRequest, HeartbeatResponse, Outcome};
pub use topics::{TopicMetadata, TopicsImage};
