//! A follower performing what [`follower::next_step`] decides for the leader's answer on one
//! partition: append with the leader's positions, truncate, restart the log, or wait.

use std::sync::Arc;

use kafka_protocol::messages::fetch_response::PartitionData;
use tributary_storage::clock::now_ms;
use tributary_storage::StorageError;

use super::key;
use super::lag::{fetch_lag, FetcherLag};
use crate::flusher::Flusher;
use crate::partition::follower::{self, Cause, EpochEnd, FollowerStep, LeaderAnswer, LocalLog};
use crate::partition::Partition;

/// What became of one partition's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    /// Done: fetch it again.
    Done,
    /// Leave it out of fetches for a while.
    Wait,
    /// Rebuild it from the remote log (KIP-405), which reads the bucket: the fetcher does
    /// that after the round ([`super::rebuild_from_remote`]).
    FromRemote {
        /// The leader's local log start.
        leader_local_start: i64,
    },
}

/// Applies the leader's answer for one partition as [`follower::next_step`] decides from the
/// replica's log.
pub(super) fn apply(
    flusher: &Flusher,
    partition: &Arc<Partition>,
    data: &PartitionData,
    lag: &FetcherLag,
) -> Applied {
    let answer = leader_answer(data);
    let step = partition.with_log(|log| follower::next_step(&LocalLog::of(log), &answer));
    if step != FollowerStep::Append {
        tracing::debug!(?partition, ?answer, ?step, "follower step");
    }
    let done = match step {
        FollowerStep::Append => append(flusher, partition, data, lag),
        FollowerStep::Truncate { offset, cause } => {
            let before = partition.fetch_position();
            let done = performed(partition, partition.truncate_replica(offset), cause);
            // The same divergence answered again would spin: wait, and say so.
            if done && partition.fetch_position() == before {
                tracing::warn!(
                    ?partition,
                    ?answer,
                    "truncation left the fetch position unchanged"
                );
                return Applied::Wait;
            }
            done
        }
        FollowerStep::RestartAt { offset } => {
            let result = partition.restart_replica_at(offset);
            performed(partition, result, Cause::OutOfRange)
        }
        FollowerStep::FromRemote { leader_local_start } => {
            return Applied::FromRemote { leader_local_start };
        }
        FollowerStep::BackOff => false,
    };
    if done {
        Applied::Done
    } else {
        Applied::Wait
    }
}

/// The parts of a partition's answer the follower's decisions read.
fn leader_answer(data: &PartitionData) -> LeaderAnswer {
    LeaderAnswer {
        error_code: data.error_code,
        diverging: EpochEnd {
            epoch: data.diverging_epoch.epoch,
            end_offset: data.diverging_epoch.end_offset,
        },
        high_watermark: data.high_watermark,
        log_start_offset: data.log_start_offset,
    }
}

/// Appends what the leader sent, with its positions, and records how far the replica still
/// lags; false when it could not.
fn append(
    flusher: &Flusher,
    partition: &Arc<Partition>,
    data: &PartitionData,
    lag: &FetcherLag,
) -> bool {
    let records = data.records.as_deref().unwrap_or_default();
    let now_ms = now_ms();
    match partition.append_from_leader(records, data.high_watermark, data.log_start_offset, now_ms)
    {
        Ok(done) => {
            flusher.after_write(partition, done.flush);
            if let Some(writeback) = done.writeback {
                flusher.start_writeback(writeback);
            }
            let end = partition.with_log(|log| log.log_end_offset());
            lag.record(key(partition), fetch_lag(data.high_watermark, end));
            true
        }
        Err(error) => {
            tracing::warn!(?partition, %error, "cannot append what the leader sent");
            false
        }
    }
}

/// Whether a truncation or restart went through (logged when not); false to back off.
fn performed(partition: &Partition, result: Result<(), StorageError>, cause: Cause) -> bool {
    let Err(error) = result else {
        return true;
    };
    match cause {
        Cause::Diverged => {
            tracing::error!(?partition, %error, "cannot truncate a diverged replica");
        }
        Cause::OutOfRange => {
            tracing::error!(?partition, %error, "cannot recover a replica out of the leader's range");
        }
    }
    false
}
