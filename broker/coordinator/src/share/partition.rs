//! A share-partition's in-flight records (Kafka's `SharePartition`), as pure decisions over
//! offsets: which records a member acquires, what its acknowledgements do, when locks expire,
//! and how the start offset advances. The caller reads the log, persists the state changes
//! this returns, and keeps time; nothing here does I/O.
//!
//! The window runs from the share-partition start offset (SPSO, the first record not yet in a
//! terminal state) to the last offset read in (SPEO). Each offset in it is AVAILABLE,
//! ACQUIRED by one member until its lock ends, or terminal (ACKNOWLEDGED, ARCHIVED), which
//! it never leaves. An acknowledgement is two steps, as in Kafka: [`SharePartition::acknowledge`]
//! validates it and marks its records busy, the caller makes the change durable, and
//! [`SharePartition::complete`] applies it (or rolls it back), so an acknowledged state is
//! never visible before it is durable and no busy record is handed out or acknowledged twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

#[cfg(test)]
pub(super) mod tests;

/// A record's state in the window, with Kafka's wire and storage codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// May be acquired.
    Available,
    /// Held by one member until its lock ends.
    Acquired,
    /// Accepted by its member: never delivered again.
    Acknowledged,
    /// Rejected, out of deliveries, or skipped: never delivered again.
    Archived,
}

impl RecordState {
    /// Kafka's code (0, 1, 2, 4).
    pub fn code(self) -> i8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    /// The state of Kafka's `code` as durable state holds it (never ACQUIRED: a lock does
    /// not outlive its leader).
    pub fn stored(code: i8) -> Option<RecordState> {
        match code {
            0 => Some(RecordState::Available),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    /// Whether the record is done with: the start offset may pass it.
    pub fn is_terminal(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// What a member says about a record it holds (Kafka's AcknowledgeType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckType {
    /// No record at this offset (compacted away, a marker, aborted data): archived.
    Gap,
    /// Processed: acknowledged for good.
    Accept,
    /// Give it back for another delivery (archived once out of deliveries).
    Release,
    /// Unprocessable: archived, never delivered again.
    Reject,
    /// Keep holding it: the lock starts again (ShareAcknowledge v2 with renewal enabled).
    Renew,
}

impl AckType {
    /// The type for Kafka's code, `None` for an unknown one.
    pub fn from_code(code: i8) -> Option<AckType> {
        match code {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            4 => Some(AckType::Renew),
            _ => None,
        }
    }
}

/// The group's limits a share-partition runs with (group configs over broker defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `share.record.lock.duration.ms`.
    pub lock_duration_ms: i64,
    /// `share.delivery.count.limit`: deliveries before a released or expired record is
    /// archived.
    pub delivery_count_limit: u16,
    /// `share.partition.max.record.locks`: offsets the window may span before only records
    /// already in it are handed out.
    pub max_in_flight: i64,
    /// `share.renew.acknowledge.enable`: whether RENEW is allowed.
    pub renew_enabled: bool,
}

impl Default for Limits {
    /// Kafka 4.3's defaults.
    fn default() -> Limits {
        Limits {
            lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            max_in_flight: 2_000,
            renew_enabled: false,
        }
    }
}

impl Limits {
    /// How many records one acquisition may take when it meets a record delivered
    /// `deliveries` times so far, in a batch of `batch_len` records; `None` when not throttled.
    /// From max(2, ceil(limit / 2)) deliveries on, each attempt takes half of the one before,
    /// and the last attempt takes the record alone, as Kafka 4.3 does: a poison record that
    /// makes its consumer release (or crash on) a whole batch ends up delivered alone and
    /// archived alone, the records around it consumed.
    pub fn throttled(&self, deliveries: u16, batch_len: u64) -> Option<usize> {
        let limit = self.delivery_count_limit;
        let from = limit.div_ceil(2).max(2);
        if deliveries < from {
            return None;
        }
        if deliveries.saturating_add(1) >= limit {
            return Some(1);
        }
        let halvings = u32::from(deliveries - from) + 1;
        let len = usize::try_from(batch_len).unwrap_or(usize::MAX);
        Some(len.checked_shr(halvings).unwrap_or(0).max(1))
    }
}

/// How much one fetch may acquire (ShareFetch v2's ShareAcquireMode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireMode {
    /// Whole batches; the record count is a soft limit checked at batch boundaries.
    BatchOptimized,
    /// At most the record count, as one contiguous range.
    RecordLimit,
}

/// The offsets of one batch a share fetch read from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedBatch {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// Data of an aborted transaction read under read_committed: archived, never handed out.
    pub aborted: bool,
}

impl FetchedBatch {
    /// How many offsets the batch spans.
    pub fn offsets(&self) -> u64 {
        u64::try_from(self.last.saturating_sub(self.first).saturating_add(1)).unwrap_or(0)
    }
}

/// A range handed to a member (ShareFetch's AcquiredRecords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// How often its records have been delivered, this delivery included.
    pub delivery_count: u16,
}

/// A run of offsets in one durable state: what the share-group state persists (never
/// ACQUIRED, which a restart must not keep) and what a new leader restores from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRange {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// AVAILABLE, ACKNOWLEDGED or ARCHIVED.
    pub state: RecordState,
    /// Deliveries so far.
    pub delivery_count: u16,
}

/// One acknowledgement of a request: a range and one type for all of it, or one per offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRange {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// One type, or one per offset of the range.
    pub types: Vec<AckType>,
}

/// Why an acknowledgement was refused; nothing of the partition's list was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// Malformed: an empty or inverted range, types that do not fit it, offsets past what
    /// was ever handed out.
    #[error("invalid acknowledgement: {0}")]
    InvalidRequest(&'static str),
    /// The record is not held by this member now (another holds it, its lock ended, it is
    /// being acknowledged already, or RENEW is not enabled).
    #[error("offset {offset} is not held by this member")]
    InvalidRecordState {
        /// The first offending offset.
        offset: i64,
    },
}

impl AckError {
    /// The Kafka error the partition's acknowledgement answers.
    pub fn code(&self) -> ResponseError {
        match self {
            AckError::InvalidRequest(_) => ResponseError::InvalidRequest,
            AckError::InvalidRecordState { .. } => ResponseError::InvalidRecordState,
        }
    }
}

/// An acknowledgement validated and marked busy, waiting for its write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAck {
    /// Passed back to [`SharePartition::complete`].
    pub id: u64,
    /// The states to persist before the acknowledgement may be applied.
    pub changes: Vec<StateRange>,
    /// The start offset once it is applied, persisted with the changes.
    pub start_after: i64,
}

/// One offset of the window.
#[derive(Debug, Clone)]
struct Record {
    state: RecordState,
    delivery_count: u16,
    /// The holder while ACQUIRED.
    member: Option<Arc<str>>,
    /// When an ACQUIRED record's lock ends (ms on the caller's clock).
    lock_until: i64,
    /// An acknowledgement of it is being written.
    busy: bool,
}

impl Record {
    fn available(delivery_count: u16) -> Record {
        Record {
            state: RecordState::Available,
            delivery_count,
            member: None,
            lock_until: 0,
            busy: false,
        }
    }

    fn archived(delivery_count: u16) -> Record {
        Record {
            state: RecordState::Archived,
            ..Record::available(delivery_count)
        }
    }

    fn acquirable(&self) -> bool {
        self.state == RecordState::Available && !self.busy
    }

    fn held_by(&self, member: &str, now: i64) -> bool {
        self.state == RecordState::Acquired
            && !self.busy
            && now < self.lock_until
            && self.member.as_deref() == Some(member)
    }
}

/// A share-partition's window of in-flight records.
#[derive(Debug)]
pub struct SharePartition {
    /// SPSO: every offset below is done with.
    start: i64,
    /// One past the last offset read in (SPEO + 1).
    end: i64,
    /// Every offset in `start..end`.
    records: BTreeMap<i64, Record>,
    limits: Limits,
    pending: HashMap<u64, Vec<(i64, RecordState)>>,
    next_ack: u64,
}

impl SharePartition {
    /// An empty window starting at `start` (from `share.auto.offset.reset` or the stored
    /// start offset).
    pub fn new(start: i64, limits: Limits) -> SharePartition {
        SharePartition {
            start,
            end: start,
            records: BTreeMap::new(),
            limits,
            pending: HashMap::new(),
            next_ack: 0,
        }
    }

    /// The window as the share-group state stored it: `start` and the ranges written.
    /// Offsets between ranges are AVAILABLE, never delivered (acquisitions are not stored).
    pub fn restore(start: i64, stored: &[StateRange], limits: Limits) -> SharePartition {
        let mut partition = SharePartition::new(start, limits);
        for range in stored {
            for offset in range.first.max(start)..=range.last {
                partition.fill_to(offset);
                let record = match range.state {
                    RecordState::Acknowledged | RecordState::Archived => Record {
                        state: range.state,
                        ..Record::available(range.delivery_count)
                    },
                    // A stored acquisition cannot outlive its leader: available again.
                    RecordState::Available | RecordState::Acquired => {
                        Record::available(range.delivery_count)
                    }
                };
                partition.records.insert(offset, record);
                partition.end = partition.end.max(offset + 1);
            }
        }
        partition.advance_start();
        partition
    }

    /// SPSO.
    pub fn start_offset(&self) -> i64 {
        self.start
    }

    /// One past the last offset read in.
    pub fn end_offset(&self) -> i64 {
        self.end
    }

    /// Offsets the window spans (what `share.partition.max.record.locks` bounds).
    pub fn in_flight(&self) -> i64 {
        self.end - self.start
    }

    /// The limits in force; a group config change applies to later acquisitions.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The state of `offset` in the window (`None` outside it).
    pub fn state(&self, offset: i64) -> Option<(RecordState, u16)> {
        self.records
            .get(&offset)
            .map(|r| (r.state, r.delivery_count))
    }

    /// Where the next fetch reads: the first acquirable record in the window, else the end
    /// while the window may still grow; `None` when nothing can be acquired now.
    pub fn fetch_offset(&self) -> Option<i64> {
        self.records
            .iter()
            .find(|(_, r)| r.acquirable())
            .map(|(offset, _)| *offset)
            .or_else(|| (self.in_flight() < self.limits.max_in_flight).then_some(self.end))
    }

    /// Acquires for `member` what `batches` (read from [`SharePartition::fetch_offset`],
    /// in offset order) hold that is acquirable, at most about `max_records` as `mode`
    /// says, each with a lock until `now` plus the lock duration. Offsets between batches
    /// (compacted away) are acquired with them and acknowledged as gaps by the client.
    pub fn acquire(
        &mut self,
        member: &str,
        batches: &[FetchedBatch],
        mode: AcquireMode,
        max_records: usize,
        now: i64,
    ) -> Vec<Acquired> {
        let member: Arc<str> = Arc::from(member);
        let lock_until = now.saturating_add(self.limits.lock_duration_ms);
        let mut taken: Vec<(i64, u16)> = Vec::new();
        // Offsets the log no longer has (compacted away) from where the fetch read on are
        // acquired with the batches around them, so the window never stalls on them.
        let mut previous_last: Option<i64> = self.fetch_offset().map(|from| from - 1);
        // Records redelivered often (a poison record among them?) go out in ever smaller
        // acquisitions: the first such record met sets how many this call may take.
        let mut cap: Option<usize> = None;
        'batches: for batch in batches {
            if batch.last < batch.first || batch.last < self.start {
                continue;
            }
            if mode == AcquireMode::BatchOptimized && taken.len() >= max_records {
                break;
            }
            let from = previous_last.map_or(batch.first, |last| (last + 1).min(batch.first));
            previous_last = Some(batch.last);
            for offset in from.max(self.start)..=batch.last {
                if mode == AcquireMode::RecordLimit && taken.len() >= max_records {
                    break 'batches;
                }
                let in_batch = offset >= batch.first;
                if offset >= self.end {
                    // New offsets up to the cap (`share.partition.max.record.locks`), in both
                    // modes: a batch that would pass it is cut there, as Kafka 4.3 does.
                    if self.in_flight() >= self.limits.max_in_flight {
                        break 'batches;
                    }
                    self.fill_to(offset);
                    self.end = offset + 1;
                    self.records.insert(offset, Record::available(0));
                }
                let Some(record) = self.records.get_mut(&offset) else {
                    continue;
                };
                if !record.acquirable() {
                    if mode == AcquireMode::RecordLimit && !taken.is_empty() {
                        break 'batches;
                    }
                    continue;
                }
                let spent = record.delivery_count >= self.limits.delivery_count_limit;
                if (in_batch && batch.aborted) || spent {
                    // read_committed: an aborted transaction's records are never handed out;
                    // nor is a record out of deliveries (its last lock died with a leader, or
                    // the limit was lowered).
                    *record = Record::archived(record.delivery_count);
                    if mode == AcquireMode::RecordLimit && !taken.is_empty() {
                        break 'batches;
                    }
                    continue;
                }
                if let Some(n) = self
                    .limits
                    .throttled(record.delivery_count, batch.offsets())
                {
                    if cap.is_none() && !taken.is_empty() {
                        // Left for the next acquisition, which starts with them.
                        break 'batches;
                    }
                    let cap = *cap.get_or_insert(n);
                    if taken.len() >= cap {
                        break 'batches;
                    }
                } else if cap.is_some_and(|cap| taken.len() >= cap) {
                    break 'batches;
                }
                record.state = RecordState::Acquired;
                record.delivery_count = record.delivery_count.saturating_add(1);
                record.member = Some(member.clone());
                record.lock_until = lock_until;
                taken.push((offset, record.delivery_count));
            }
        }
        self.advance_start();
        ranges(&taken)
    }

    /// Validates `acks` of `member` (all or none: one bad range refuses the partition's
    /// whole list) and marks their records busy. RENEW restarts locks at once (nothing to
    /// persist); the rest waits for the returned changes to be durable, then
    /// [`SharePartition::complete`]. Offsets below the start are done with and skipped.
    pub fn acknowledge(
        &mut self,
        member: &str,
        acks: &[AckRange],
        now: i64,
    ) -> Result<PendingAck, AckError> {
        let mut plan: Vec<(i64, AckType)> = Vec::new();
        for ack in acks {
            if ack.last < ack.first {
                return Err(AckError::InvalidRequest("last offset before first offset"));
            }
            let count = ack
                .last
                .checked_sub(ack.first)
                .and_then(|d| usize::try_from(d).ok())
                .and_then(|d| d.checked_add(1))
                .unwrap_or(usize::MAX);
            if ack.types.len() != 1 && ack.types.len() != count {
                return Err(AckError::InvalidRequest(
                    "acknowledge types must be one for the range or one per offset",
                ));
            }
            if ack.last >= self.end {
                return Err(AckError::InvalidRequest(
                    "acknowledged offsets were never delivered",
                ));
            }
            // Offsets below the start are done already (Kafka ignores them): never walked,
            // however far below the range begins.
            for offset in ack.first.max(self.start)..=ack.last {
                let i = offset
                    .checked_sub(ack.first)
                    .and_then(|d| usize::try_from(d).ok())
                    .unwrap_or(usize::MAX);
                let kind = ack.types.get(i).or(ack.types.first()).copied();
                let Some(kind) = kind else {
                    return Err(AckError::InvalidRequest("no acknowledge type"));
                };
                if plan.last().is_some_and(|(o, _)| *o >= offset) {
                    return Err(AckError::InvalidRequest(
                        "acknowledged ranges overlap or are out of order",
                    ));
                }
                let held = self
                    .records
                    .get(&offset)
                    .is_some_and(|r| r.held_by(member, now));
                if !held || (kind == AckType::Renew && !self.limits.renew_enabled) {
                    return Err(AckError::InvalidRecordState { offset });
                }
                plan.push((offset, kind));
            }
        }
        let lock_until = now.saturating_add(self.limits.lock_duration_ms);
        let limit = self.limits.delivery_count_limit;
        let mut targets = Vec::new();
        let mut changes = Vec::new();
        for (offset, kind) in plan {
            let Some(record) = self.records.get_mut(&offset) else {
                continue;
            };
            let target = match kind {
                AckType::Renew => {
                    record.lock_until = lock_until;
                    continue;
                }
                AckType::Accept => RecordState::Acknowledged,
                AckType::Gap | AckType::Reject => RecordState::Archived,
                AckType::Release => released(record.delivery_count, limit),
            };
            record.busy = true;
            targets.push((offset, target));
            changes.push((offset, target, record.delivery_count));
        }
        let start_after = self.start_after(&targets);
        let id = self.next_ack;
        self.next_ack += 1;
        self.pending.insert(id, targets);
        Ok(PendingAck {
            id,
            changes: state_ranges(&changes),
            start_after,
        })
    }

    /// Where the start offset will be once `targets` are applied (nothing else changing).
    fn start_after(&self, targets: &[(i64, RecordState)]) -> i64 {
        let terminal_target = |offset: i64| {
            targets
                .binary_search_by_key(&offset, |(o, _)| *o)
                .ok()
                .and_then(|i| targets.get(i))
                .is_some_and(|(_, state)| state.is_terminal())
        };
        let mut start = self.start;
        while start < self.end {
            let done = match self.records.get(&start) {
                Some(r) if r.busy => terminal_target(start),
                Some(r) => r.state.is_terminal(),
                None => true,
            };
            if !done {
                break;
            }
            start += 1;
        }
        start
    }

    /// Ends acknowledgement `id`: applied when its write `committed`, rolled back to ACQUIRED
    /// otherwise (and expired at once if the lock ended meanwhile). Returns the states to
    /// persist for records that expired on the rollback.
    pub fn complete(&mut self, id: u64, committed: bool, now: i64) -> Vec<StateRange> {
        let Some(targets) = self.pending.remove(&id) else {
            return Vec::new();
        };
        for (offset, target) in targets {
            let Some(record) = self.records.get_mut(&offset) else {
                continue;
            };
            record.busy = false;
            if committed {
                record.state = target;
                record.member = None;
            }
        }
        let expired = if committed {
            Vec::new()
        } else {
            self.expire_locks(now)
        };
        self.advance_start();
        expired
    }

    /// Ends the locks that ran out by `now`: their records become AVAILABLE again, or
    /// ARCHIVED once out of deliveries. Returns the states to persist (the expiry stands even
    /// when that write fails).
    pub fn expire_locks(&mut self, now: i64) -> Vec<StateRange> {
        let limit = self.limits.delivery_count_limit;
        let mut changes = Vec::new();
        for (offset, record) in self.records.iter_mut() {
            if record.state == RecordState::Acquired && !record.busy && record.lock_until <= now {
                let state = released(record.delivery_count, limit);
                *record = Record {
                    state,
                    ..Record::available(record.delivery_count)
                };
                changes.push((*offset, state, record.delivery_count));
            }
        }
        self.advance_start();
        state_ranges(&changes)
    }

    /// Records in the window done with (acknowledged or archived): with the start offset,
    /// what share-partition lag leaves out (KIP-1226).
    pub fn delivery_complete(&self) -> i64 {
        let done = self
            .records
            .values()
            .filter(|r| r.state.is_terminal())
            .count();
        i64::try_from(done).unwrap_or(i64::MAX)
    }

    /// The earliest lock deadline, for the caller's timer.
    pub fn next_lock_deadline(&self) -> Option<i64> {
        self.records
            .values()
            .filter(|r| r.state == RecordState::Acquired && !r.busy)
            .map(|r| r.lock_until)
            .min()
    }

    /// Gives back what `member` holds (its share session closed or it left the group): the
    /// records become AVAILABLE with the delivery that never happened taken back
    /// (KAFKA-17541). Records being acknowledged are left to their acknowledgement.
    pub fn release_member(&mut self, member: &str) -> Vec<StateRange> {
        let mut changes = Vec::new();
        for (offset, record) in self.records.iter_mut() {
            if record.state == RecordState::Acquired
                && !record.busy
                && record.member.as_deref() == Some(member)
            {
                *record = Record::available(record.delivery_count.saturating_sub(1));
                changes.push((*offset, RecordState::Available, record.delivery_count));
            }
        }
        state_ranges(&changes)
    }

    /// Moves the window up to the log's start offset (retention or DeleteRecords passed it):
    /// what lay below is gone, and acknowledgements of it are skipped.
    pub fn move_start(&mut self, log_start: i64) {
        if log_start <= self.start {
            return;
        }
        let kept = self.records.split_off(&log_start);
        let busy: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, targets)| targets.iter().any(|(o, _)| *o < log_start))
            .map(|(id, _)| *id)
            .collect();
        for id in busy {
            if let Some(targets) = self.pending.get_mut(&id) {
                targets.retain(|(o, _)| *o >= log_start);
            }
        }
        self.records = kept;
        self.start = log_start;
        self.end = self.end.max(log_start);
        self.advance_start();
    }

    /// The window as the share-group state stores it: the start offset and every record
    /// delivered or done with (an ACQUIRED record as AVAILABLE with its count, since a lock
    /// never outlives its leader).
    pub fn snapshot(&self) -> (i64, Vec<StateRange>) {
        let states: Vec<(i64, RecordState, u16)> = self
            .records
            .iter()
            .filter(|(_, r)| r.state != RecordState::Available || r.delivery_count > 0)
            .map(|(offset, r)| {
                let state = match r.state {
                    RecordState::Acquired => RecordState::Available,
                    other => other,
                };
                (*offset, state, r.delivery_count)
            })
            .collect();
        (self.start, state_ranges(&states))
    }

    /// Fills offsets from the end up to `offset` (exclusive) as AVAILABLE, never delivered.
    fn fill_to(&mut self, offset: i64) {
        while self.end < offset {
            self.records.insert(self.end, Record::available(0));
            self.end += 1;
        }
    }

    /// Moves the start past the leading records that are done with.
    fn advance_start(&mut self) {
        while self.start < self.end {
            match self.records.get(&self.start) {
                Some(r) if r.state.is_terminal() && !r.busy => {
                    self.records.remove(&self.start);
                    self.start += 1;
                }
                None => self.start += 1,
                Some(_) => break,
            }
        }
    }
}

/// AVAILABLE while deliveries remain, ARCHIVED after `limit`.
fn released(delivery_count: u16, limit: u16) -> RecordState {
    if delivery_count >= limit {
        RecordState::Archived
    } else {
        RecordState::Available
    }
}

/// Consecutive offsets with one delivery count as ranges.
fn ranges(taken: &[(i64, u16)]) -> Vec<Acquired> {
    let mut out: Vec<Acquired> = Vec::new();
    for &(offset, count) in taken {
        match out.last_mut() {
            Some(r) if r.last + 1 == offset && r.delivery_count == count => r.last = offset,
            _ => out.push(Acquired {
                first: offset,
                last: offset,
                delivery_count: count,
            }),
        }
    }
    out
}

/// Consecutive offsets with one state and count as ranges.
fn state_ranges(states: &[(i64, RecordState, u16)]) -> Vec<StateRange> {
    let mut out: Vec<StateRange> = Vec::new();
    for &(offset, state, count) in states {
        match out.last_mut() {
            Some(r) if r.last + 1 == offset && r.state == state && r.delivery_count == count => {
                r.last = offset
            }
            _ => out.push(StateRange {
                first: offset,
                last: offset,
                state,
                delivery_count: count,
            }),
        }
    }
    out
}
