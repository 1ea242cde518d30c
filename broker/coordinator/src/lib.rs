//! What every coordinator shares (Kafka's group-coordinator runtime, whose shards are the
//! group, transaction and share coordinators): the [`runtime`] that serves the partitions of
//! a coordinator's internal topic this broker leads (ownership, loading by replay, the
//! install-under-one-lock rule, unloading when leadership moves), and the [`codec`] helpers
//! the record schemas are written with. The group and transaction coordinators are shards of
//! it; a new coordinator (KIP-848's consumer groups) is a third shard, not a third copy.

pub mod codec;
pub mod group;
pub(crate) mod runtime;
pub mod txn;

pub(crate) use runtime::{Replay, Runtime, Shard};
