//! Share groups (KIP-932, Kafka's queues): several members read the same partitions, each
//! record handed to one member at a time under an acquisition lock and acknowledged,
//! released or rejected one by one.
//!
//! [`partition`] is the share-partition's state machine, which runs on the partition's
//! leader, [`session`] the share sessions a broker keeps per member, and [`assignor`] the
//! `simple` assignor spreading partitions over members; [`state`] is a share-partition's
//! durable state as the share coordinator keeps it, in the [`records`] of
//! `__share_group_state`, which the [`coordinator`] (a shard of the coordinator runtime,
//! beside the group and transaction coordinators) keeps. [`group`] decides a share group's
//! membership (ShareGroupHeartbeat), which the [`group_records`] of `__consumer_offsets`
//! persist; the [`manager`] runs the share-partitions a broker leads over its log and the
//! share coordinator.

pub mod assignor;
pub mod coordinator;
pub mod group;
pub mod group_records;
pub mod manager;
pub mod partition;
pub mod records;
pub mod session;
pub mod state;
