//! A share-partition's durable state as the share coordinator keeps it (Kafka's
//! `ShareCoordinatorShard` over `__share_group_state`): the start offset and the state ranges
//! of delivered records, the state epoch (a new one each time the state is initialized or
//! its offsets altered) and the highest leader epoch that has read or written it. Pure
//! decisions; every change comes back as the record to append, so replaying the records
//! rebuilds the same state.
//!
//! Fencing (pitfall 1: two holders after a leader change): a read or write from a leader
//! epoch below the highest seen is FENCED_LEADER_EPOCH, one with an older state epoch
//! FENCED_STATE_EPOCH; the share-partition's leader turns both into NOT_LEADER_OR_FOLLOWER.

use kafka_protocol::error::ResponseError;

use super::partition::{RecordState, StateRange};

/// After how many updates a write is stored as a whole snapshot again, as Kafka's share
/// coordinator does (`share.coordinator.snapshot.update.records.per.snapshot`).
pub const UPDATES_PER_SNAPSHOT: u32 = 500;

/// A change of one share-partition's state, as appended to the state topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRecord {
    /// The whole state (ShareSnapshot).
    Snapshot {
        /// Its number, counting every snapshot of the share-partition.
        snapshot_epoch: u16,
        /// The state epoch.
        state_epoch: i32,
        /// The highest leader epoch seen.
        leader_epoch: i32,
        /// The share-partition start offset.
        start_offset: i64,
        /// The ranges of delivered records.
        ranges: Vec<StateRange>,
    },
    /// A change on top of the last snapshot (ShareUpdate).
    Update {
        /// The snapshot it applies to.
        snapshot_epoch: u16,
        /// The writer's leader epoch.
        leader_epoch: i32,
        /// The new start offset, `None`: unchanged (-1 on the wire).
        start_offset: Option<i64>,
        /// The ranges written.
        ranges: Vec<StateRange>,
    },
}

/// Why a read or write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    /// From a leader epoch below the highest seen: a deposed leader.
    #[error("leader epoch {0} is older than the share-partition's")]
    LeaderEpoch(i32),
    /// From a state epoch below the current one: the state was initialized again since.
    #[error("state epoch {0} is older than the share-partition's")]
    StateEpoch(i32),
}

impl Fenced {
    /// The Kafka error the share coordinator answers.
    pub fn code(self) -> ResponseError {
        match self {
            Fenced::LeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
            Fenced::StateEpoch(_) => ResponseError::FencedStateEpoch,
        }
    }
}

/// One share-partition's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareState {
    state_epoch: i32,
    leader_epoch: i32,
    start_offset: i64,
    ranges: Vec<StateRange>,
    snapshot_epoch: u16,
    /// Updates written since the last snapshot.
    updates: u32,
}

impl ShareState {
    /// The state epoch.
    pub fn state_epoch(&self) -> i32 {
        self.state_epoch
    }

    /// The highest leader epoch seen.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The share-partition start offset.
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// The ranges of delivered records, in offset order, none below the start offset.
    pub fn ranges(&self) -> &[StateRange] {
        &self.ranges
    }

    /// How many offsets at or after the start offset are done with (acknowledged or
    /// archived): KIP-1226's delivery complete count, which share-partition lag leaves out.
    pub fn delivery_complete(&self) -> i64 {
        self.ranges
            .iter()
            .filter(|r| r.state.is_terminal() && r.last >= self.start_offset)
            .map(|r| r.last - r.first.max(self.start_offset) + 1)
            .sum()
    }

    /// InitializeShareGroupState (and AlterShareGroupOffsets): a fresh state at
    /// `start_offset` under `state_epoch`, which must not be older than the current one.
    pub fn initialize(
        current: Option<&ShareState>,
        state_epoch: i32,
        start_offset: i64,
    ) -> Result<StateRecord, Fenced> {
        if let Some(current) = current {
            if state_epoch < current.state_epoch {
                return Err(Fenced::StateEpoch(state_epoch));
            }
        }
        Ok(StateRecord::Snapshot {
            snapshot_epoch: current.map_or(0, |c| c.snapshot_epoch.wrapping_add(1)),
            state_epoch,
            leader_epoch: current.map_or(-1, |c| c.leader_epoch),
            start_offset,
            ranges: Vec::new(),
        })
    }

    /// ReadShareGroupState from a leader at `leader_epoch`: refused from a deposed leader;
    /// otherwise the epoch is recorded (so the previous leader's writes are fenced from now
    /// on) by the returned record, when it is new.
    pub fn read(&self, leader_epoch: i32) -> Result<Option<StateRecord>, Fenced> {
        if leader_epoch < self.leader_epoch {
            return Err(Fenced::LeaderEpoch(leader_epoch));
        }
        Ok((leader_epoch > self.leader_epoch).then(|| self.update(leader_epoch, None, Vec::new())))
    }

    /// The whole state as a new snapshot: written for a share-partition whose last snapshot
    /// lies far back in the log, so the records before it can be deleted.
    pub fn snapshot(&self) -> StateRecord {
        StateRecord::Snapshot {
            snapshot_epoch: self.snapshot_epoch.wrapping_add(1),
            state_epoch: self.state_epoch,
            leader_epoch: self.leader_epoch,
            start_offset: self.start_offset,
            ranges: self.ranges.clone(),
        }
    }

    /// WriteShareGroupState: `ranges` and an optional new start offset from the leader at
    /// `leader_epoch` of the state at `state_epoch`. Every [`UPDATES_PER_SNAPSHOT`]th write
    /// is stored as a whole snapshot.
    pub fn write(
        &self,
        state_epoch: i32,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: &[StateRange],
    ) -> Result<StateRecord, Fenced> {
        if state_epoch < self.state_epoch {
            return Err(Fenced::StateEpoch(state_epoch));
        }
        if leader_epoch < self.leader_epoch {
            return Err(Fenced::LeaderEpoch(leader_epoch));
        }
        if self.updates + 1 < UPDATES_PER_SNAPSHOT {
            return Ok(self.update(leader_epoch, start_offset, ranges.to_vec()));
        }
        let start = start_offset.unwrap_or(self.start_offset);
        Ok(StateRecord::Snapshot {
            snapshot_epoch: self.snapshot_epoch.wrapping_add(1),
            state_epoch: self.state_epoch,
            leader_epoch,
            start_offset: start,
            ranges: combine(&self.ranges, ranges, start),
        })
    }

    /// Applies a record read back (or just appended): the one way the state changes.
    pub fn apply(&mut self, record: &StateRecord) {
        match record {
            StateRecord::Snapshot {
                snapshot_epoch,
                state_epoch,
                leader_epoch,
                start_offset,
                ranges,
            } => {
                *self = ShareState {
                    state_epoch: *state_epoch,
                    leader_epoch: *leader_epoch,
                    start_offset: *start_offset,
                    ranges: combine(&[], ranges, *start_offset),
                    snapshot_epoch: *snapshot_epoch,
                    updates: 0,
                }
            }
            StateRecord::Update {
                snapshot_epoch,
                leader_epoch,
                start_offset,
                ranges,
            } => {
                if *snapshot_epoch != self.snapshot_epoch {
                    // An update of an older snapshot: a newer one already holds it.
                    return;
                }
                self.leader_epoch = self.leader_epoch.max(*leader_epoch);
                if let Some(start) = start_offset {
                    self.start_offset = (*start).max(self.start_offset);
                }
                self.ranges = combine(&self.ranges, ranges, self.start_offset);
                self.updates += 1;
            }
        }
    }

    fn update(
        &self,
        leader_epoch: i32,
        start_offset: Option<i64>,
        ranges: Vec<StateRange>,
    ) -> StateRecord {
        StateRecord::Update {
            snapshot_epoch: self.snapshot_epoch,
            leader_epoch,
            start_offset,
            ranges,
        }
    }
}

/// `base` with `top` written over it (later writes win where they overlap), nothing below
/// `start`, never-delivered AVAILABLE offsets left out, neighbours in one state merged.
pub fn combine(base: &[StateRange], top: &[StateRange], start: i64) -> Vec<StateRange> {
    let mut out: Vec<StateRange> = base.to_vec();
    for t in top.iter().filter(|t| t.first <= t.last) {
        let mut next = Vec::with_capacity(out.len() + 2);
        for b in out {
            if b.last < t.first || b.first > t.last {
                next.push(b);
                continue;
            }
            if b.first < t.first {
                next.push(StateRange {
                    last: t.first - 1,
                    ..b
                });
            }
            if b.last > t.last {
                next.push(StateRange {
                    first: t.last + 1,
                    ..b
                });
            }
        }
        next.push(*t);
        out = next;
    }
    out.sort_by_key(|r| r.first);
    let mut merged: Vec<StateRange> = Vec::with_capacity(out.len());
    for mut r in out {
        if r.last < start || (r.state == RecordState::Available && r.delivery_count == 0) {
            continue;
        }
        r.first = r.first.max(start);
        match merged.last_mut() {
            Some(m)
                if m.last + 1 == r.first
                    && m.state == r.state
                    && m.delivery_count == r.delivery_count =>
            {
                m.last = r.last
            }
            _ => merged.push(r),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(first: i64, last: i64, state: RecordState, delivery_count: u16) -> StateRange {
        StateRange {
            first,
            last,
            state,
            delivery_count,
        }
    }

    use RecordState::{Acknowledged as Acked, Archived, Available};

    fn initialized(state_epoch: i32, start: i64) -> ShareState {
        let mut state = ShareState::default();
        let record = ShareState::initialize(None, state_epoch, start).expect("initialized");
        state.apply(&record);
        state
    }

    #[test]
    fn later_writes_win_where_ranges_overlap() {
        let base = [r(0, 9, Available, 1)];
        let top = [r(3, 4, Acked, 1), r(9, 12, Archived, 2)];
        assert_eq!(
            combine(&base, &top, 0),
            vec![
                r(0, 2, Available, 1),
                r(3, 4, Acked, 1),
                r(5, 8, Available, 1),
                r(9, 12, Archived, 2)
            ]
        );
        assert_eq!(
            combine(&base, &top, 4),
            vec![
                r(4, 4, Acked, 1),
                r(5, 8, Available, 1),
                r(9, 12, Archived, 2)
            ],
            "nothing below the start offset"
        );
        assert_eq!(
            combine(
                &[r(0, 1, Acked, 1)],
                &[r(2, 3, Acked, 1), r(5, 5, Available, 0)],
                0
            ),
            vec![r(0, 3, Acked, 1)],
            "neighbours merge; never-delivered offsets are not stored"
        );
    }

    #[test]
    fn writes_replay_into_the_same_state_and_snapshots_come_back_periodically() {
        let mut state = initialized(0, 10);
        let mut records = Vec::new();
        for i in 0..UPDATES_PER_SNAPSHOT {
            let offset = 10 + i64::from(i);
            let record = state
                .write(0, 3, Some(offset), &[r(offset, offset + 1, Acked, 1)])
                .expect("written");
            state.apply(&record);
            records.push(record);
        }
        assert!(
            matches!(records.last(), Some(StateRecord::Snapshot { .. })),
            "the 500th write is a snapshot"
        );
        assert_eq!(
            records
                .iter()
                .filter(|r| matches!(r, StateRecord::Snapshot { .. }))
                .count(),
            1
        );
        let last = 10 + i64::from(UPDATES_PER_SNAPSHOT) - 1;
        assert_eq!(state.start_offset(), last);
        assert_eq!(state.ranges(), &[r(last, last + 1, Acked, 1)]);
        // Replaying the log from the snapshot on gives the same state.
        let mut replayed = initialized(0, 10);
        for record in &records {
            replayed.apply(record);
        }
        assert_eq!(replayed, state);
    }

    #[test]
    fn a_deposed_leader_and_an_old_state_are_fenced() {
        let mut state = initialized(2, 0);
        let claimed = state.read(5).expect("read").expect("recorded");
        state.apply(&claimed);
        assert_eq!(state.leader_epoch(), 5);
        assert_eq!(state.read(5), Ok(None), "nothing new to record");
        assert_eq!(
            state.write(2, 4, None, &[]).map_err(Fenced::code),
            Err(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            state.read(4).map_err(Fenced::code),
            Err(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            state.write(1, 5, None, &[]).map_err(Fenced::code),
            Err(ResponseError::FencedStateEpoch)
        );
        assert!(
            state.write(2, 6, None, &[]).is_ok(),
            "a newer leader writes"
        );
        assert_eq!(
            ShareState::initialize(Some(&state), 1, 0).map_err(Fenced::code),
            Err(ResponseError::FencedStateEpoch)
        );
    }

    #[test]
    fn initializing_again_starts_over_at_the_new_offset() {
        let mut state = initialized(0, 0);
        let written = state
            .write(0, 1, None, &[r(0, 4, Acked, 1)])
            .expect("written");
        state.apply(&written);
        let again = ShareState::initialize(Some(&state), 1, 100).expect("initialized");
        state.apply(&again);
        assert_eq!(
            (state.state_epoch(), state.start_offset(), state.ranges()),
            (1, 100, &[][..])
        );
        assert_eq!(state.leader_epoch(), 1, "the leader epoch seen stays");
        // An update written against the old snapshot no longer applies.
        state.apply(&written);
        assert!(state.ranges().is_empty());
    }
}
