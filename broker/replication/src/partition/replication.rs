//! Replication of one partition: the leader serving its followers' fetches (positions, high
//! watermark, ISR changes proposed for the metadata) and a follower appending what it fetched
//! and truncating where its log diverged from the leader's (KIP-101, KIP-279, KIP-595).
//! Decisions are the pure functions of [`super::isr`] (the leader's) and [`super::follower`]
//! (divergence, truncation, leadership changes); this module applies them under the
//! partition lock.

use bytes::Bytes;
use parking_lot::MutexGuard;

use super::follower::{self, CatchUp, FetchPosition, Held, LeaderPositions, LocalLog, Term};
use super::isr::{self, Follower, Followers, JoinCheck};
use super::{AppendError, FetchedData, Partition, Role, State};
use crate::partition::isr::IsrMember;
use crate::producer::{apply, AppliedBatch, BatchIdentity, ProducerSnapshot};
use tributary_storage::{
    marker_is_commit, BatchView, FlushDue, ReadPlan, Replicated, StorageError, Writeback,
};

/// The partition's replication state from the metadata, applied by the replica manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    /// This broker's id.
    pub me: i32,
    /// Leader or follower, and the leader epoch.
    pub role: Role,
    /// The assignment.
    pub replicas: Vec<i32>,
    /// The committed ISR.
    pub isr: Vec<IsrMember>,
    /// The partition epoch of that state (raised by every change of it).
    pub partition_epoch: i32,
}

/// An ISR change the leader asks the metadata to record; written only if the partition is
/// still at `leader_epoch` and `partition_epoch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrProposal {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The leader (this broker).
    pub leader: i32,
    /// Leader epoch the change is made under.
    pub leader_epoch: i32,
    /// Partition epoch the change is based on.
    pub partition_epoch: i32,
    /// The new ISR.
    pub isr: Vec<IsrMember>,
}

/// A follower's fetch as the leader sees it.
#[derive(Debug, Clone, Copy)]
pub struct ReplicaFetch {
    /// The follower's broker id.
    pub broker: i32,
    /// The follower process's incarnation (Fetch v15 ReplicaState.replica_epoch).
    pub incarnation: i64,
    /// The follower's log end.
    pub fetch_offset: i64,
    /// Epoch of the last batch the follower holds, -1 if unknown (Fetch v12+).
    pub last_fetched_epoch: i32,
    /// The incarnation the follower's broker is registered with now.
    pub registered_incarnation: Option<i64>,
}

/// The leader's answer to a follower's fetch, its batches read (`Bytes`) or planned on
/// their segment file ([`ReadPlan`]).
#[derive(Debug, Clone)]
pub enum ReplicaRead<R = Bytes> {
    /// Batches from the fetch offset up to the log end.
    Data(FetchedData<R>),
    /// The follower's log diverges: it ends `last_fetched_epoch` after this leader did, so it
    /// truncates to at most `end_offset` of `epoch` and fetches again (KIP-595).
    Diverging {
        /// The largest epoch the leader has at or below the follower's.
        epoch: i32,
        /// Where that epoch ends on the leader.
        end_offset: i64,
        /// The leader's high watermark.
        high_watermark: i64,
        /// The leader's log start offset.
        log_start_offset: i64,
    },
}

/// The leader's state for replication, kept under the partition lock.
#[derive(Debug, Default)]
pub(super) struct Replication {
    /// Whether the metadata's state was applied yet.
    applied: bool,
    me: i32,
    replicas: Vec<i32>,
    /// The committed ISR; empty on a standalone broker (the leader alone).
    isr: Vec<IsrMember>,
    partition_epoch: i32,
    /// An ISR change being written.
    pending: Option<Vec<IsrMember>>,
    followers: Followers,
    /// First offset of this leader's epoch.
    epoch_start_offset: i64,
}

impl Replication {
    /// The high watermark the leader's state allows, not below `current`.
    pub(super) fn high_watermark(&self, leader_end: i64, current: i64) -> i64 {
        let pending = self.pending.as_deref().unwrap_or_default();
        let isr = self.isr.iter().chain(pending);
        isr::high_watermark(self.me, leader_end, isr, &self.followers, current)
    }

    /// The state held, with `role`.
    pub(super) fn leadership(&self, role: Role) -> Leadership {
        Leadership {
            me: self.me,
            role,
            replicas: self.replicas.clone(),
            isr: self.isr.clone(),
            partition_epoch: self.partition_epoch,
        }
    }
}

/// What a follower's append wrote, and what it leaves to be done off the request path.
#[derive(Debug)]
pub struct FollowerAppend {
    /// The batches written, if any.
    pub appended: Option<Replicated>,
    /// When the writes need an fsync by the topic's flush settings.
    pub flush: FlushDue,
    /// Writes whose writeback should start now: a follower's appends are not fsynced for
    /// acks, so the broker paces their writeback rather than leave them to pile up.
    pub writeback: Option<Writeback>,
}

impl Partition {
    /// Takes the partition's state from a new metadata image as [`follower::leadership_change`]
    /// decides: the role (becoming leader starts a new epoch in the log at its end, and resets
    /// what it knows of the followers), the assignment, and the ISR when the image's is newer
    /// than the one held.
    pub fn apply_leadership(&self, next: Leadership, now_ms: i64) {
        let mut state = self.state.lock();
        let mut role = self.role.write();
        let r = &mut state.replication;
        let held = Held {
            term: Term {
                role: *role,
                partition_epoch: r.partition_epoch,
            },
            applied: r.applied,
        };
        let change = follower::leadership_change(
            held,
            Term {
                role: next.role,
                partition_epoch: next.partition_epoch,
            },
        );
        if change.role_changed {
            tracing::info!(partition = ?self, from = ?*role, to = ?next.role, "replica role changes");
            *role = next.role;
        }
        r.applied = true;
        if change.take_isr {
            r.isr = next.isr;
            r.partition_epoch = next.partition_epoch;
            r.pending = None;
        }
        r.me = next.me;
        r.replicas = next.replicas;
        if change.reset_followers {
            r.followers.clear();
        }
        if let Some(epoch) = change.start_epoch {
            self.start_leading(&mut state, epoch, now_ms);
        }
        drop(role);
        if change.recompute_high_watermark {
            self.recompute_high_watermark(state);
        } else {
            drop(state);
        }
        if change.role_changed {
            // Producers waiting for their writes to commit, and followers waiting for data,
            // learn that leadership moved.
            self.high_watermark.send_modify(|_| {});
            self.log_end.send_modify(|_| {});
        }
    }

    /// Begins leading at `epoch`: the ISR's followers are tracked from now, and the epoch
    /// starts at the log end even before anything is written in it (KIP-279).
    pub(super) fn start_leading(&self, state: &mut State, epoch: i32, now_ms: i64) {
        let r = &mut state.replication;
        for m in r.isr.iter().filter(|m| m.broker != r.me) {
            r.followers
                .insert(m.broker, Follower::new(m.incarnation, now_ms));
        }
        if let Err(error) = state.log.start_epoch(epoch) {
            tracing::error!(partition = ?self, %error, "cannot record the new leader epoch");
        }
        state.replication.epoch_start_offset = state.log.log_end_offset();
    }

    /// The leader's high watermark after its state changed; wakes waiters when it moved.
    pub(super) fn recompute_high_watermark(&self, mut state: MutexGuard<'_, State>) {
        let end = state.log.log_end_offset();
        let hw = state
            .replication
            .high_watermark(end, state.log.high_watermark())
            .min(end);
        state.log.set_high_watermark(hw);
        drop(state);
        publish(&self.high_watermark, hw);
        publish(&self.log_end, end);
    }

    /// Serves a follower's fetch on the leader: the divergence check, then the follower's
    /// new position (which may advance the high watermark and qualify it for the ISR), then
    /// batches up to the log end. Returns an ISR change to write, if one became due.
    pub fn read_for_follower(
        &self,
        fetch: ReplicaFetch,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<(ReplicaRead, Option<IsrProposal>), StorageError> {
        let (read, proposal) = self.plan_for_follower(fetch, max_bytes, now_ms)?;
        let read = match read {
            ReplicaRead::Data(planned) => ReplicaRead::Data(self.load(planned)?),
            ReplicaRead::Diverging {
                epoch,
                end_offset,
                high_watermark,
                log_start_offset,
            } => ReplicaRead::Diverging {
                epoch,
                end_offset,
                high_watermark,
                log_start_offset,
            },
        };
        Ok((read, proposal))
    }

    /// [`Partition::read_for_follower`] without reading: the batches as a range of their
    /// segment file, for [`Partition::load`] or to be sent from the file.
    pub fn plan_for_follower(
        &self,
        fetch: ReplicaFetch,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<(ReplicaRead<ReadPlan>, Option<IsrProposal>), StorageError> {
        let mut state = self.state.lock();
        let log_start_offset = state.log.log_start_offset();
        let position = FetchPosition {
            fetch_offset: fetch.fetch_offset,
            last_fetched_epoch: fetch.last_fetched_epoch,
        };
        if let Some(diverging) = follower::diverging_epoch(&LocalLog::of(&state.log), position) {
            // The follower's state stays as it was: it has not got a position yet (KIP-279).
            return Ok((
                ReplicaRead::Diverging {
                    epoch: diverging.epoch,
                    end_offset: diverging.end_offset,
                    high_watermark: state.log.high_watermark(),
                    log_start_offset,
                },
                None,
            ));
        }
        let end = state.log.log_end_offset();
        let plan = state
            .log
            .read_plan(fetch.fetch_offset, max_bytes, end, true)?;
        let current_hw = state.log.high_watermark();
        let r = &mut state.replication;
        // A fetch from an incarnation older than the one registered now comes from a process
        // already replaced (its fetchers still running while it shuts down): it is answered,
        // but what the leader knows of the broker is its successor's, for the high watermark
        // and the ISR alike (KIP-903's broker epoch check). Otherwise the two processes'
        // fetches take turns resetting it, and the ISR flips between their incarnations.
        let superseded = fetch
            .registered_incarnation
            .is_some_and(|registered| fetch.incarnation < registered);
        if !superseded {
            r.followers
                .entry(fetch.broker)
                .or_insert_with(|| Follower::new(fetch.incarnation, now_ms))
                .on_fetch(fetch.incarnation, fetch.fetch_offset, end, now_ms);
        }
        let hw = r.high_watermark(end, current_hw).min(end);
        let proposal = if superseded {
            None
        } else {
            self.propose_expansion(&mut state, fetch, hw)
        };
        state.log.set_high_watermark(hw);
        let last_stable_offset = state.last_stable_offset();
        drop(state);
        publish(&self.high_watermark, hw);
        let data = FetchedData {
            records: plan,
            high_watermark: hw,
            log_start_offset,
            last_stable_offset,
            aborted: Vec::new(),
        };
        Ok((ReplicaRead::Data(data), proposal))
    }

    fn propose_expansion(
        &self,
        state: &mut State,
        fetch: ReplicaFetch,
        hw: i64,
    ) -> Option<IsrProposal> {
        let Role::Leader { epoch } = *self.role.read() else {
            return None;
        };
        let r = &mut state.replication;
        if r.pending.is_some() || r.isr.is_empty() || self.fenced() {
            return None;
        }
        let follower = r.followers.get(&fetch.broker)?;
        let check = JoinCheck {
            high_watermark: hw,
            epoch_start_offset: r.epoch_start_offset,
            registered_incarnation: fetch.registered_incarnation,
        };
        let next = isr::expanded(&r.isr, &r.replicas, fetch.broker, follower, check)?;
        r.pending = Some(next.clone());
        Some(IsrProposal {
            topic: self.topic.clone(),
            partition: self.index,
            leader: r.me,
            leader_epoch: epoch,
            partition_epoch: r.partition_epoch,
            isr: next,
        })
    }

    /// The ISR without followers that lagged for `max_lag_ms`, if any did and no other change
    /// is being written (Kafka's `maybeShrinkIsr`, run periodically by the leader).
    pub fn propose_shrink(&self, now_ms: i64, max_lag_ms: i64) -> Option<IsrProposal> {
        let Role::Leader { epoch } = *self.role.read() else {
            return None;
        };
        let mut state = self.state.lock();
        let r = &mut state.replication;
        if r.pending.is_some() || r.isr.is_empty() || self.fenced() {
            return None;
        }
        let next = isr::shrunk(r.me, &r.isr, &r.followers, now_ms, max_lag_ms)?;
        r.pending = Some(next.clone());
        let me = r.me;
        let base = r.partition_epoch;
        drop(state);
        Some(IsrProposal {
            topic: self.topic.clone(),
            partition: self.index,
            leader: me,
            leader_epoch: epoch,
            partition_epoch: base,
            isr: next,
        })
    }

    /// Ends an ISR change: recorded at `written` (the new partition epoch) or refused (None;
    /// the metadata changed under it and the next image tells how).
    pub fn isr_change_done(&self, proposal: &IsrProposal, written: Option<i32>) {
        let mut state = self.state.lock();
        let r = &mut state.replication;
        if r.pending.as_ref() != Some(&proposal.isr) {
            return;
        }
        r.pending = None;
        if let Some(epoch) = written {
            if epoch > r.partition_epoch {
                r.isr = proposal.isr.clone();
                r.partition_epoch = epoch;
            }
        }
        if self.role.read().is_leader() {
            self.recompute_high_watermark(state);
        }
    }

    /// How many replicas the committed ISR holds (the leader alone when it has none).
    pub fn isr_size(&self) -> usize {
        self.state.lock().replication.isr.len().max(1)
    }

    /// Whether `broker` is in the committed ISR (as the leader records it, or as a follower
    /// last learned it from the metadata).
    pub fn is_in_sync(&self, broker: i32) -> bool {
        let state = self.state.lock();
        state.replication.isr.iter().any(|m| m.broker == broker)
    }

    /// Where this replica's log ends and the epoch of its last batch (-1 if none), for the
    /// next fetch from the leader.
    pub fn fetch_position(&self) -> (i64, i32) {
        let state = self.state.lock();
        let position = LocalLog::of(&state.log).fetch_position();
        (position.fetch_offset, position.last_fetched_epoch)
    }

    /// The first offset of the current leader epoch (where this leader began).
    pub fn epoch_start_offset(&self) -> i64 {
        self.state.lock().replication.epoch_start_offset
    }

    /// Appends batches fetched from the leader on a follower, keeping their offsets and
    /// epochs, rebuilding producer and transaction state from them, and taking the leader's
    /// high watermark (bounded by this log's end) and log start offset.
    pub fn append_from_leader(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
        now_ms: i64,
    ) -> Result<FollowerAppend, AppendError> {
        let mut state = self.state.lock();
        let role = *self.role.read();
        if role.is_leader() {
            return Err(AppendError::NotLeader { role });
        }
        let appended = if records.is_empty() {
            None
        } else {
            state.held_journal.clear();
            state.log.append_replicated(records, now_ms)?
        };
        if let Some(new) = appended {
            remember_producers(&mut state, records, new.base_offset);
        }
        let leader = LeaderPositions {
            high_watermark: leader_high_watermark,
            log_start_offset: leader_log_start,
        };
        let CatchUp {
            delete_before,
            high_watermark: hw,
        } = follower::after_append(&LocalLog::of(&state.log), leader);
        if let Some(start) = delete_before {
            state.log.delete_records(start)?;
            state.txns.drop_before(start);
        }
        state.log.set_high_watermark(hw);
        let flush = state.log.flush_due();
        let writeback = appended
            .is_some()
            .then(|| state.log.writeback_due())
            .flatten();
        let retired = state.log.take_retired();
        drop(state);
        publish(&self.high_watermark, hw);
        super::delete_off_the_workers(retired);
        Ok(FollowerAppend {
            appended,
            flush,
            writeback,
        })
    }

    /// Removes everything from `offset` on (a follower whose log diverged from its new
    /// leader's) and rebuilds producer and transaction state from what stays; nothing while
    /// this replica leads.
    pub fn truncate_replica(&self, offset: i64) -> Result<(), StorageError> {
        // A leader's log is the truth: an answer to a fetch sent while it followed changes
        // nothing (it would drop the epoch this leader just started).
        if self.role.read().is_leader() {
            return Ok(());
        }
        let mut state = self.state.lock();
        if offset >= state.log.log_end_offset() {
            // No record goes, but an epoch this replica started as leader without appending
            // may, or its fetches would report it forever.
            return state.log.truncate_to(offset);
        }
        tracing::info!(partition = ?self, from = state.log.log_end_offset(), to = offset, "truncating a diverged replica");
        state.log.truncate_to(offset)?;
        self.after_truncation(state, None)
    }

    /// Drops the whole log and restarts it at `offset` (a follower behind the leader's log
    /// start).
    pub fn restart_replica_at(&self, offset: i64) -> Result<(), StorageError> {
        let mut state = self.state.lock();
        tracing::info!(partition = ?self, offset, "restarting a replica at the leader's log start");
        state.log.truncate_fully_and_start_at(offset)?;
        self.after_truncation(state, None)
    }

    /// KIP-405's follower rebuild: drops the whole log, restarts it at `offset` (the leader's
    /// local log start) with the leader-epoch entries read from the remote segment before
    /// it. Only while the replica still follows in `expected` (the rebuild read the bucket
    /// without the lock; a replica that became leader meanwhile keeps its log): false then.
    /// Producer state starts from `producers`, the snapshot uploaded with that segment (as
    /// of its end), so producers whose batches are only remote stay known; without one (a
    /// segment uploaded before snapshots were), from the empty log.
    pub fn restart_replica_from_remote(
        &self,
        offset: i64,
        epochs: &[(i32, i64)],
        producers: Option<&ProducerSnapshot>,
        expected: Role,
    ) -> Result<bool, StorageError> {
        let mut state = self.state.lock();
        if *self.role.read() != expected || !matches!(expected, Role::Follower { .. }) {
            return Ok(false);
        }
        tracing::info!(
            partition = ?self,
            offset,
            epochs = epochs.len(),
            "restarting a replica at the leader's local log start from the remote log"
        );
        state.log.truncate_fully_and_start_at(offset)?;
        state.log.restore_epochs(epochs)?;
        self.after_truncation(state, producers)?;
        Ok(true)
    }

    /// Producer state after the log was cut: rebuilt from what is left, or, when the log
    /// restarted empty past the remote log, from the snapshot `seed`.
    fn after_truncation(
        &self,
        mut state: MutexGuard<'_, State>,
        seed: Option<&ProducerSnapshot>,
    ) -> Result<(), StorageError> {
        let end = state.log.log_end_offset();
        let (producers, txns) = super::rebuild_producer_state(&state.log, seed)?;
        state.producers = producers;
        state.txns = txns;
        // The log no longer is the one the journal's held batches were replayed against.
        state.held_journal.clear();
        state.journal.end = state.journal.end.min(end);
        state.journal.queued.retain(|(base, _)| *base < end);
        let hw = state.log.high_watermark();
        drop(state);
        self.durable
            .fetch_min(end, std::sync::atomic::Ordering::AcqRel);
        publish(&self.high_watermark, hw);
        Ok(())
    }
}

/// Sets a watched offset, waking its watchers only when it moved.
fn publish(channel: &tokio::sync::watch::Sender<i64>, offset: i64) {
    channel.send_if_modified(|current| {
        let moved = *current != offset;
        *current = offset;
        moved
    });
}

/// Producer and transaction state of batches a follower just appended from `from` on.
fn remember_producers(state: &mut State, records: &[u8], from: i64) {
    let mut pos = 0;
    while let Some(view) = records
        .get(pos..)
        .and_then(|rest| BatchView::header(rest).ok())
    {
        let start = pos;
        pos += view.size();
        if view.base_offset() < from {
            continue;
        }
        let control = view.is_control().then(|| {
            records
                .get(start..pos)
                .and_then(|bytes| BatchView::parse(bytes).ok())
                .and_then(|v| marker_is_commit(&v))
        });
        let batch = AppliedBatch {
            identity: BatchIdentity::of(&view),
            base_offset: view.base_offset(),
            transactional: view.is_transactional(),
            control,
        };
        apply(&mut state.producers, &mut state.txns, &batch);
    }
}
