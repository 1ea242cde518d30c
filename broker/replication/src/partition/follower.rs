//! A replica's replication decisions as pure functions over small state, so each rule can be
//! tested step by step (Kafka's `AbstractFetcherThread.getOffsetTruncationState` and
//! `handleOutOfRangeError`, `Partition.makeLeader`/`makeFollower` and the divergence check of
//! `Partition.fetchRecords`); [`super::replication`] and the follower fetcher perform what
//! they decide:
//!
//! - a follower never truncates to its high watermark (KIP-101): after a restart or a change
//!   of leader it keeps its whole log and fetches from its end with the epoch of its last
//!   batch, and the leader says where the logs part ([`diverging_epoch`]);
//! - told where its last epoch ends on the leader, a follower cuts at the lower of that and
//!   where the same epoch ends here ([`truncation_offset`]); one that never had the leader's
//!   epoch cuts at most where its own older epoch ends and asks again with that epoch, so
//!   back-to-back elections converge in rounds (KIP-279);
//! - a follower out of the leader's range restarts at the leader's log start or cuts to the
//!   leader's high watermark ([`out_of_range`]); any other refusal (a fenced or unknown leader
//!   epoch, KIP-320) waits for new metadata;
//! - a new leader starts its epoch at its log end even without records and forgets what it
//!   knew of followers; a new follower resets the same and truncates nothing
//!   ([`leadership_change`]).

use kafka_protocol::error::ResponseError;

use super::Role;
use tributary_storage::{EpochEntry, PartitionLog};

/// What one replica's log tells the decisions: its offsets and its leader epoch cache.
#[derive(Debug, Clone, Copy)]
pub struct LocalLog<'a> {
    /// Each leader epoch of the log and its first offset, oldest first (KIP-101's cache).
    pub epochs: &'a [EpochEntry],
    /// First offset still held.
    pub log_start_offset: i64,
    /// Offset the next record gets.
    pub log_end_offset: i64,
    /// Offset below which records are committed, as this replica knows.
    pub high_watermark: i64,
}

impl<'a> LocalLog<'a> {
    /// The state of `log`, borrowed for one decision under the partition lock.
    pub fn of(log: &'a PartitionLog) -> LocalLog<'a> {
        LocalLog {
            epochs: log.epoch_entries(),
            log_start_offset: log.log_start_offset(),
            log_end_offset: log.log_end_offset(),
            high_watermark: log.high_watermark(),
        }
    }

    /// Where `epoch` ends in this log (Kafka's `LeaderEpochFileCache.endOffsetFor`): the
    /// largest epoch here at or below it and the first offset of the next larger one; the
    /// latest epoch ends at the log end; an epoch older than any here is answered with itself
    /// and the first epoch's start. `None` when `epoch` is undefined (negative), newer than
    /// every epoch here, or no epoch is known.
    pub fn end_of_epoch(&self, epoch: i32) -> Option<EpochEnd> {
        if epoch < 0 {
            return None;
        }
        let last = self.epochs.last()?;
        if last.epoch == epoch {
            return Some(EpochEnd {
                epoch,
                end_offset: self.log_end_offset,
            });
        }
        let higher = self.epochs.partition_point(|e| e.epoch <= epoch);
        let next = self.epochs.get(higher)?;
        let floor = higher
            .checked_sub(1)
            .and_then(|i| self.epochs.get(i))
            .map_or(epoch, |e| e.epoch);
        Some(EpochEnd {
            epoch: floor,
            end_offset: next.start_offset,
        })
    }

    /// Where the next fetch from the leader starts: this log's end, with the epoch of its last
    /// batch so the leader can tell whether the logs diverge (Fetch v12+).
    pub fn fetch_position(&self) -> FetchPosition {
        FetchPosition {
            fetch_offset: self.log_end_offset,
            last_fetched_epoch: self.epochs.last().map_or(-1, |e| e.epoch),
        }
    }
}

/// An epoch and the offset where it ends (an OffsetsForLeaderEpoch answer, or Fetch v12+'s
/// `DivergingEpoch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// The epoch, -1 if undefined.
    pub epoch: i32,
    /// Its end offset, -1 if undefined.
    pub end_offset: i64,
}

impl EpochEnd {
    /// Neither epoch nor offset known: on the wire, "no divergence".
    pub const UNDEFINED: EpochEnd = EpochEnd {
        epoch: -1,
        end_offset: -1,
    };

    /// Whether the answer names a divergence (either part defined).
    pub fn is_defined(self) -> bool {
        self.epoch >= 0 || self.end_offset >= 0
    }
}

/// Where a follower's fetch starts, as the leader checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchPosition {
    /// The follower's log end.
    pub fetch_offset: i64,
    /// Epoch of the follower's last batch, -1 if it has none (or sent none).
    pub last_fetched_epoch: i32,
}

/// The leader's check of a follower's fetch (KIP-320, Kafka's
/// `validateFetchOffsetAndMaybeGetDivergingEpoch`): `Some` with the largest epoch the leader
/// has at or below the follower's last one, and where it ends on the leader, when the
/// follower's log cannot be a prefix of the leader's: the leader never had that epoch, or it
/// ended before the follower's log does. [`EpochEnd::UNDEFINED`] when the leader has no epoch
/// at or below it. `None` lets the fetch go on (also when the follower sent no epoch).
pub fn diverging_epoch(leader: &LocalLog<'_>, follower: FetchPosition) -> Option<EpochEnd> {
    if follower.last_fetched_epoch < 0 {
        return None;
    }
    let end = leader
        .end_of_epoch(follower.last_fetched_epoch)
        .unwrap_or(EpochEnd::UNDEFINED);
    let diverges =
        end.epoch != follower.last_fetched_epoch || end.end_offset < follower.fetch_offset;
    diverges.then_some(end)
}

/// Where a follower cuts its log when the leader says its log ends at `leader` (Kafka's
/// `getOffsetTruncationState`), never past this log's end:
///
/// - no end offset from the leader: at the high watermark, the only offset known committed;
/// - this log has the leader's epoch: at the lower of the two ends of that epoch;
/// - this log never had it (it only has an older one): at the lower of the leader's end and
///   where that older epoch ends here; the next fetch asks again with the older epoch;
/// - this log knows no epoch at or below it: at the lower of the leader's end and its own.
///
/// At or beyond the log end it cuts nothing.
pub fn truncation_offset(local: &LocalLog<'_>, leader: EpochEnd) -> i64 {
    if leader.end_offset < 0 {
        return local.high_watermark;
    }
    match local.end_of_epoch(leader.epoch) {
        Some(here) if here.epoch >= 0 && here.end_offset >= 0 => {
            leader.end_offset.min(here.end_offset)
        }
        _ => leader.end_offset.min(local.log_end_offset),
    }
}

/// The leader's answer for one partition of a follower's fetch, as the decisions need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderAnswer {
    /// The partition's error code, 0 for none.
    pub error_code: i16,
    /// Where the follower's last epoch ends on the leader; [`EpochEnd::UNDEFINED`] when the
    /// logs do not diverge.
    pub diverging: EpochEnd,
    /// The leader's high watermark (-1 if unknown).
    pub high_watermark: i64,
    /// The leader's log start offset (-1 if unknown).
    pub log_start_offset: i64,
}

/// Why a follower cuts its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The leader reported a diverging epoch.
    Diverged,
    /// The follower's fetch offset was beyond the leader's log.
    OutOfRange,
}

/// What a follower does with the leader's answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerStep {
    /// Append the records sent (none is fine) and follow the leader's positions
    /// ([`after_append`]).
    Append,
    /// Remove everything from `offset` on (nothing if the log ends there) and fetch again.
    Truncate {
        /// First offset removed.
        offset: i64,
        /// Why, for the log of a failure.
        cause: Cause,
    },
    /// Drop the whole log and restart it empty at `offset`, the leader's log start.
    RestartAt {
        /// The new log start.
        offset: i64,
    },
    /// The leader answered OFFSET_MOVED_TO_TIERED_STORAGE: rebuild from the remote log
    /// metadata (KIP-405) and restart the log at the leader's local log start.
    FromRemote {
        /// The leader's local log start, carried in the answer's log start offset.
        leader_local_start: i64,
    },
    /// Leave the partition out of fetches for a while: nothing here can fix the answer.
    BackOff,
}

/// The step for the leader's answer: an error goes to [`out_of_range`], a diverging epoch
/// to [`truncation_offset`]; anything else is appended. A diverging answer never also
/// appends, so it never moves the follower's positions (KIP-279).
pub fn next_step(local: &LocalLog<'_>, answer: &LeaderAnswer) -> FollowerStep {
    if answer.error_code != 0 {
        return out_of_range(local, answer);
    }
    if answer.diverging.is_defined() {
        return FollowerStep::Truncate {
            offset: truncation_offset(local, answer.diverging),
            cause: Cause::Diverged,
        };
    }
    FollowerStep::Append
}

/// What a follower does with an error answer (Kafka's `handleOutOfRangeError`): only
/// OFFSET_OUT_OF_RANGE is its to fix. Behind the leader's log start it restarts there; ahead
/// of the leader's high watermark it cuts to it (everything below it is committed, so the
/// leader has it) and copies the rest again. Any other error, a fenced or unknown leader
/// epoch included (KIP-320), backs off until the metadata moves on.
pub fn out_of_range(local: &LocalLog<'_>, answer: &LeaderAnswer) -> FollowerStep {
    if answer.error_code == ResponseError::OffsetMovedToTieredStorage.code() {
        // Behind the leader's local log, inside the remote log: rebuild from the bucket
        // rather than copy what it holds (KIP-405). Anything else is not this answer's.
        return if answer.log_start_offset > local.log_end_offset {
            FollowerStep::FromRemote {
                leader_local_start: answer.log_start_offset,
            }
        } else {
            FollowerStep::BackOff
        };
    }
    if answer.error_code != ResponseError::OffsetOutOfRange.code() {
        return FollowerStep::BackOff;
    }
    let end = local.log_end_offset;
    if answer.log_start_offset > end {
        FollowerStep::RestartAt {
            offset: answer.log_start_offset,
        }
    } else if answer.high_watermark >= 0 && answer.high_watermark < end {
        FollowerStep::Truncate {
            offset: answer.high_watermark,
            cause: Cause::OutOfRange,
        }
    } else {
        FollowerStep::BackOff
    }
}

/// The leader's positions a follower follows after appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderPositions {
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// The leader's log start offset.
    pub log_start_offset: i64,
}

/// How a follower's positions move after it appended what the leader sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Remove records below this offset: the leader's log start moved past this one's
    /// (retention, DeleteRecords), over records this replica knows are committed.
    pub delete_before: Option<i64>,
    /// The follower's new high watermark.
    pub high_watermark: i64,
}

/// Where a follower's log start and high watermark go after an append (`local` is the log
/// after it): the high watermark takes the leader's, bounded by what this log holds and
/// never moving back; the log start follows the leader's only over committed records.
pub fn after_append(local: &LocalLog<'_>, leader: LeaderPositions) -> CatchUp {
    let start = leader.log_start_offset;
    let delete_before =
        (start > local.log_start_offset && start <= local.high_watermark).then_some(start);
    let high_watermark = leader
        .high_watermark
        .min(local.log_end_offset)
        .max(local.high_watermark);
    CatchUp {
        delete_before,
        high_watermark,
    }
}

/// What a replica does when it is opened again (a restart): it keeps everything log recovery
/// kept, epochs included, and truncates nothing itself: as a follower its leader's answers
/// decide what to cut (KIP-101: never the high watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reopened {
    /// The high watermark it starts with: its log end (a single replica has committed all it
    /// holds; a follower's is then bounded by its leader's answers and truncations). Its first
    /// fetch starts from the log end with the epoch of its last batch
    /// ([`LocalLog::fetch_position`]).
    pub high_watermark: i64,
}

/// The decision for a replica reopened with `local` (see [`Reopened`]).
pub fn reopened(local: &LocalLog<'_>) -> Reopened {
    Reopened {
        high_watermark: local.log_end_offset,
    }
}

/// Whether a replica in `role` fetches from `leader`: only a follower of that leader. A
/// fetcher of a leader that lost the partition leaves it out from the next round, and the
/// fetch carries the role's epoch, which the leader fences (KIP-320).
pub fn follows(role: Role, leader: i32) -> bool {
    matches!(role, Role::Follower { leader: l, .. } if l == leader)
}

/// A role and the partition epoch of the metadata it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// Leader or follower, and the leader epoch.
    pub role: Role,
    /// The partition epoch (raised by every change of the partition's state).
    pub partition_epoch: i32,
}

/// What a replica holds when a new image is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Its role and the partition epoch of its ISR.
    pub term: Term,
    /// Whether any image was applied yet (the role alone comes from the open).
    pub applied: bool,
}

/// How a new image's role and ISR are applied (Kafka's `makeLeader` / `makeFollower`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeadershipChange {
    /// The role or leader epoch moves: producers waiting for commits and followers waiting
    /// for data are woken to learn it.
    pub role_changed: bool,
    /// The image's ISR and partition epoch replace the held ones, and an ISR change in flight
    /// is forgotten: on a new term, or when the image is at least as new as what is held (an
    /// older image never undoes an ISR change this leader wrote).
    pub take_isr: bool,
    /// A new term begins (new role, or the first image): forget what was known of followers.
    pub reset_followers: bool,
    /// Becoming leader at this epoch: record that the epoch starts at the log end even with
    /// no records in it (KIP-279), track the ISR's followers from now on, and remember the
    /// epoch's start offset for ISR admission.
    pub start_epoch: Option<i32>,
    /// The replica leads after the change: its high watermark is recomputed.
    pub recompute_high_watermark: bool,
}

/// The decision for applying `next` over `held`. A new follower truncates nothing here: its
/// first fetch learns from the leader where its log diverges (KIP-101).
pub fn leadership_change(held: Held, next: Term) -> LeadershipChange {
    let role_changed = held.term.role != next.role;
    let new_term = role_changed || !held.applied;
    let start_epoch = match next.role {
        Role::Leader { epoch } if new_term => Some(epoch),
        _ => None,
    };
    LeadershipChange {
        role_changed,
        take_isr: new_term || next.partition_epoch >= held.term.partition_epoch,
        reset_followers: new_term,
        start_epoch,
        recompute_high_watermark: next.role.is_leader(),
    }
}

#[cfg(test)]
mod tests;
