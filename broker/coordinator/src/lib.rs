//! What every coordinator shares (Kafka's group-coordinator runtime, whose shards are the
//! group, transaction and share coordinators): the [`runtime`] that serves the partitions of
//! a coordinator's internal topic this broker leads (ownership, loading by replay, the
//! install-under-one-lock rule, unloading when leadership moves), the [`log`] it reads and
//! writes that topic through (a trait the broker implements over its partitions), the
//! [`partitioner`] that maps a key to its partition, and the [`codec`] helpers the record
//! schemas are written with. The [`group`] and [`txn`] coordinators are shards of it; a new
//! coordinator is another shard, not another copy.
//!
//! The crate sits on the storage floor only: what a coordinator needs of the broker comes
//! through [`log::CoordinatorLog`] and [`txn::TxnHost`].

pub mod codec;
pub mod group;
pub mod log;
pub mod offset_commit;
pub mod partitioner;
pub(crate) mod runtime;
pub mod share;
pub mod txn;

pub(crate) use runtime::{Replay, Runtime, Shard};
