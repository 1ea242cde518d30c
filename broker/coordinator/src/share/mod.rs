//! Share groups (KIP-932, Kafka's queues): several members read the same partitions, each
//! record handed to one member at a time under an acquisition lock and acknowledged,
//! released or rejected one by one.
//!
//! [`partition`] is the share-partition's state machine, which runs on the partition's
//! leader, [`session`] the share sessions a broker keeps per member, and [`assignor`] the
//! `simple` assignor spreading partitions over members. The group membership and the durable
//! share-partition state are to be shards of the coordinator runtime beside the group and
//! transaction coordinators.

pub mod assignor;
pub mod partition;
pub mod session;
