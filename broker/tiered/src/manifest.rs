//! The remote log metadata of one partition: which segments the bucket holds and in which
//! state, kept as a JSON manifest object beside the segments.
//!
//! Why a manifest in the bucket rather than Kafka's `__remote_log_metadata` topic: the
//! bucket is the one store every replica reaches whatever its disk holds, so a replica with
//! an empty volume (or a new leader) learns the remote log from the bucket alone, with no
//! internal topic to replicate, compact and replay before the first remote read. Only the
//! partition leader writes it, one rewrite per finished upload or deletion (a few a minute,
//! not per record), and each write records the leader epoch, so a manifest written by a
//! newer leader is never overwritten by a deposed one (see [`Manifest::fenced_for`]).
//!
//! States follow KIP-405's `RemoteLogSegmentState`: an upload is recorded as
//! `CopySegmentStarted` under a fresh segment id before any byte is sent, and becomes
//! `CopySegmentFinished` only after every object of the segment is in the bucket. Readers
//! and retention see only finished segments; an entry left `CopySegmentStarted` by a crash
//! is an orphan whose objects are deleted before the upload is tried again under a new id,
//! so no offset is ever served from two segments.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use tributary_storage::AbortedRange;

/// Version of the manifest format, so a later format can be told apart.
pub const MANIFEST_VERSION: u32 = 1;

/// KIP-405's remote segment states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentState {
    /// The upload began; the segment is not readable and may be partly uploaded.
    CopySegmentStarted,
    /// Every object of the segment is uploaded: it is part of the remote log.
    CopySegmentFinished,
    /// Deletion began; the segment is no longer part of the remote log.
    DeleteSegmentStarted,
}

/// One aborted transaction inside a segment (the remote transaction index), so
/// READ_COMMITTED fetches from the bucket list them as local reads do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteAborted {
    /// Producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first record.
    pub first_offset: i64,
    /// Offset of its abort marker.
    pub last_offset: i64,
}

impl From<&AbortedRange> for RemoteAborted {
    fn from(a: &AbortedRange) -> Self {
        RemoteAborted {
            producer_id: a.producer_id,
            first_offset: a.first_offset,
            last_offset: a.last_offset,
        }
    }
}

impl From<&RemoteAborted> for AbortedRange {
    fn from(a: &RemoteAborted) -> Self {
        AbortedRange {
            producer_id: a.producer_id,
            first_offset: a.first_offset,
            last_offset: a.last_offset,
        }
    }
}

/// One segment of the remote log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSegment {
    /// Fresh per upload attempt, so the objects of an abandoned attempt never mix with those
    /// of the next.
    pub id: Uuid,
    /// First offset of the segment.
    pub base_offset: i64,
    /// Offset after its last record (exclusive end).
    pub end_offset: i64,
    /// Largest record timestamp, for `retention.ms`.
    pub max_timestamp: i64,
    /// Bytes of the `.log` object.
    pub size_bytes: u64,
    /// Leader epochs starting within the segment: (epoch, start offset).
    pub leader_epochs: Vec<(i32, i64)>,
    /// Aborted transactions whose range touches the segment.
    #[serde(default)]
    pub aborted: Vec<RemoteAborted>,
    /// Where the segment is in its life.
    pub state: SegmentState,
    /// Whether a producer snapshot (the state as of `end_offset`) was uploaded with it;
    /// manifests written before snapshots existed have none.
    #[serde(default)]
    pub producer_snapshot: bool,
}

impl RemoteSegment {
    /// Whether `offset` lies in this segment.
    pub fn contains(&self, offset: i64) -> bool {
        self.base_offset <= offset && offset < self.end_offset
    }

    /// Whether readers may use it.
    pub fn is_readable(&self) -> bool {
        self.state == SegmentState::CopySegmentFinished
    }
}

/// Why a manifest change was refused: each is a bug or a race the caller must not paper over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The segment id is not in the manifest.
    #[error("remote segment {0} is not in the manifest")]
    UnknownSegment(Uuid),
    /// The transition is not one KIP-405 allows from the segment's state.
    #[error("remote segment {id} cannot go from {from:?} to {to:?}")]
    BadTransition {
        /// The segment.
        id: Uuid,
        /// Its state.
        from: SegmentState,
        /// The state asked for.
        to: SegmentState,
    },
    /// A new segment would add no offset to those copied or being copied.
    #[error("remote segment [{base}, {end}) adds nothing to the remote log")]
    Overlap {
        /// Its base offset.
        base: i64,
        /// Its end offset.
        end: i64,
    },
}

/// The remote log of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// Leader epoch of the broker that last wrote it.
    pub leader_epoch: i32,
    /// Segments ordered by base offset.
    pub segments: Vec<RemoteSegment>,
    /// Offset DeleteRecords moved the log start to: nothing below it is served, and segments
    /// wholly below it are deleted.
    #[serde(default)]
    pub records_deleted_before: i64,
    /// The furthest end any finished upload reached: retention deleting every remote segment
    /// does not lower it, so a leader that lost its local log still knows which offsets were
    /// handed out. Manifests written before it existed read 0 (their segments say instead).
    #[serde(default)]
    pub copied_end_ever: i64,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            version: MANIFEST_VERSION,
            leader_epoch: -1,
            segments: Vec::new(),
            records_deleted_before: 0,
            copied_end_ever: 0,
        }
    }
}

impl Manifest {
    /// Decodes a manifest object.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Encodes it for the bucket.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec_pretty(self)
    }

    /// Whether a leader at `epoch` must not write this manifest: a newer leader wrote it.
    pub fn fenced_for(&self, epoch: i32) -> bool {
        self.leader_epoch > epoch
    }

    /// Records the start of an upload (KIP-405 COPY_SEGMENT_STARTED). Refused unless it
    /// adds offsets past every segment present (in any state but DELETE_SEGMENT_STARTED): the
    /// same range is never uploaded twice, while a segment that starts inside the remote log
    /// and ends past it (a new leader's segments need not end where the old leader's did) is
    /// accepted; readers take the first segment holding an offset, and the replicas' bytes
    /// of any offset below the high watermark are the same.
    pub fn start_copy(&mut self, mut segment: RemoteSegment) -> Result<(), ManifestError> {
        let end = self
            .segments
            .iter()
            .filter(|s| s.state != SegmentState::DeleteSegmentStarted)
            .map(|s| s.end_offset)
            .max();
        if end.is_some_and(|end| segment.end_offset <= end)
            || segment.end_offset <= segment.base_offset
        {
            return Err(ManifestError::Overlap {
                base: segment.base_offset,
                end: segment.end_offset,
            });
        }
        segment.state = SegmentState::CopySegmentStarted;
        let at = self
            .segments
            .partition_point(|s| s.base_offset <= segment.base_offset);
        self.segments.insert(at, segment);
        Ok(())
    }

    /// Marks an upload complete (COPY_SEGMENT_FINISHED): the segment joins the remote log.
    pub fn finish_copy(&mut self, id: Uuid) -> Result<(), ManifestError> {
        self.transition(
            id,
            SegmentState::CopySegmentStarted,
            SegmentState::CopySegmentFinished,
        )?;
        if let Some(end) = self.copied_end_offset() {
            self.copied_end_ever = self.copied_end_ever.max(end);
        }
        Ok(())
    }

    /// The first offset never handed out as far as the remote log knows: past every segment
    /// it holds or ever held, and past the DeleteRecords point. 0 when it knows of none.
    pub fn handed_out_end(&self) -> i64 {
        self.copied_end_offset()
            .unwrap_or(0)
            .max(self.copied_end_ever)
            .max(self.records_deleted_before)
    }

    /// Marks a finished segment for deletion (DELETE_SEGMENT_STARTED): it leaves the remote
    /// log before its objects are deleted, so no reader is sent to a half-deleted segment.
    pub fn start_delete(&mut self, id: Uuid) -> Result<(), ManifestError> {
        self.transition(
            id,
            SegmentState::CopySegmentFinished,
            SegmentState::DeleteSegmentStarted,
        )
    }

    /// Drops a segment whose objects are deleted (DELETE_SEGMENT_FINISHED), or an orphaned
    /// upload after its objects were cleaned up.
    pub fn remove(&mut self, id: Uuid) -> Result<RemoteSegment, ManifestError> {
        let at = self
            .segments
            .iter()
            .position(|s| s.id == id)
            .ok_or(ManifestError::UnknownSegment(id))?;
        Ok(self.segments.remove(at))
    }

    fn transition(
        &mut self,
        id: Uuid,
        from: SegmentState,
        to: SegmentState,
    ) -> Result<(), ManifestError> {
        let segment = self
            .segments
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(ManifestError::UnknownSegment(id))?;
        if segment.state != from {
            return Err(ManifestError::BadTransition {
                id,
                from: segment.state,
                to,
            });
        }
        segment.state = to;
        Ok(())
    }

    /// Entries a crash or a deposed leader left behind (uploads never finished, deletions
    /// never completed): their objects are to be deleted and the entries removed before new
    /// uploads start.
    pub fn leftovers(&self) -> Vec<RemoteSegment> {
        self.segments
            .iter()
            .filter(|s| !s.is_readable())
            .cloned()
            .collect()
    }

    /// The readable segments, by base offset.
    pub fn readable(&self) -> impl Iterator<Item = &RemoteSegment> {
        self.segments.iter().filter(|s| s.is_readable())
    }

    /// First offset of the remote log (KIP-405's remote log start), if it has any record at
    /// or above the DeleteRecords point.
    pub fn log_start_offset(&self) -> Option<i64> {
        self.readable()
            .find(|s| s.end_offset > self.records_deleted_before)
            .map(|s| s.base_offset.max(self.records_deleted_before))
    }

    /// Moves the log start to `offset` (DeleteRecords); never backwards.
    pub fn delete_records_before(&mut self, offset: i64) {
        self.records_deleted_before = self.records_deleted_before.max(offset);
    }

    /// Offset after the last uploaded record: local retention may delete what lies below it.
    pub fn copied_end_offset(&self) -> Option<i64> {
        self.readable().map(|s| s.end_offset).max()
    }

    /// Where the remote log stops covering the local log without a gap, starting from the
    /// local log start: local retention may delete local segments ending at or below it.
    /// Offsets below the remote log start count as covered (the remote log expired them by
    /// retention or DeleteRecords); [`i64::MIN`] when nothing is uploaded.
    pub fn covered_end(&self, local_log_start: i64) -> i64 {
        let Some(remote_start) = self.log_start_offset() else {
            return i64::MIN;
        };
        let mut end = local_log_start.max(remote_start);
        for segment in self.readable() {
            if segment.base_offset <= end && segment.end_offset > end {
                end = segment.end_offset;
            }
        }
        end
    }

    /// Bytes the remote log holds.
    pub fn size_bytes(&self) -> u64 {
        self.readable().map(|s| s.size_bytes).sum()
    }

    /// The readable segment holding `offset`, unless DeleteRecords removed it.
    pub fn segment_for(&self, offset: i64) -> Option<&RemoteSegment> {
        if offset < self.records_deleted_before {
            return None;
        }
        self.readable().find(|s| s.contains(offset))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn segment(base: i64, end: i64) -> RemoteSegment {
        RemoteSegment {
            id: Uuid::new_v4(),
            base_offset: base,
            end_offset: end,
            max_timestamp: 1_000 + base,
            size_bytes: (end - base) as u64 * 100,
            leader_epochs: vec![(0, base)],
            aborted: Vec::new(),
            state: SegmentState::CopySegmentFinished,
            producer_snapshot: false,
        }
    }

    #[test]
    fn a_segment_is_readable_only_between_finished_copy_and_started_delete() {
        let mut m = Manifest::default();
        let s = segment(0, 10);
        let id = s.id;
        m.start_copy(s).expect("start");
        assert_eq!(m.segment_for(5), None, "a started upload is not readable");
        assert_eq!(m.copied_end_offset(), None);
        m.finish_copy(id).expect("finish");
        assert_eq!(m.segment_for(5).map(|s| s.id), Some(id));
        assert_eq!(m.copied_end_offset(), Some(10));
        assert!(matches!(
            m.finish_copy(id),
            Err(ManifestError::BadTransition { .. })
        ));
        m.start_delete(id).expect("delete");
        assert_eq!(
            m.segment_for(5),
            None,
            "a segment being deleted is not readable"
        );
        assert_eq!(m.log_start_offset(), None);
        assert_eq!(m.remove(id).map(|s| s.id), Ok(id));
        assert!(m.segments.is_empty());
        assert_eq!(m.remove(id), Err(ManifestError::UnknownSegment(id)));
    }

    #[test]
    fn an_upload_must_extend_the_remote_log_so_no_range_is_uploaded_twice() {
        let mut m = Manifest::default();
        m.start_copy(segment(0, 10)).expect("first");
        for (base, end) in [(0, 10), (5, 10), (2, 8), (10, 10)] {
            assert!(
                matches!(
                    m.start_copy(segment(base, end)),
                    Err(ManifestError::Overlap { .. })
                ),
                "[{base}, {end})"
            );
        }
        m.start_copy(segment(10, 20)).expect("adjacent");
        // A new leader's segment straddling the end adds offsets: accepted.
        m.start_copy(segment(18, 30)).expect("straddling");
        assert_eq!(m.segments.len(), 3);
    }

    #[test]
    fn local_segments_are_covered_up_to_the_first_gap_from_the_local_log_start() {
        let mut m = Manifest::default();
        assert_eq!(
            m.covered_end(0),
            i64::MIN,
            "nothing uploaded: nothing covered"
        );
        for (base, end) in [(0, 10), (10, 20), (18, 30), (40, 50)] {
            let s = segment(base, end);
            let id = s.id;
            m.start_copy(s).expect("start");
            m.finish_copy(id).expect("finish");
        }
        assert_eq!(m.covered_end(0), 30, "up to the gap at 30");
        assert_eq!(m.covered_end(12), 30);
        assert_eq!(
            m.covered_end(35),
            35,
            "a local start in the gap covers nothing more"
        );
        // Offsets the remote log expired (below its start) count as covered.
        let first = m.segments[0].id;
        m.start_delete(first).expect("delete");
        m.remove(first).expect("remove");
        assert_eq!(m.covered_end(0), 30);
        let mut started = segment(50, 60);
        started.state = SegmentState::CopySegmentStarted;
        m.start_copy(started).expect("start");
        assert_eq!(m.covered_end(45), 50, "an unfinished upload covers nothing");
    }

    #[test]
    fn unfinished_entries_are_leftovers_to_clean_up() {
        let mut m = Manifest::default();
        let done = segment(0, 10);
        let done_id = done.id;
        m.start_copy(done).expect("start");
        m.finish_copy(done_id).expect("finish");
        let orphan = segment(10, 20);
        let orphan_id = orphan.id;
        m.start_copy(orphan).expect("start");
        let leftovers = m.leftovers();
        assert_eq!(leftovers.len(), 1);
        assert_eq!(leftovers[0].id, orphan_id);
        m.remove(orphan_id).expect("remove");
        // The retry under a new id fits where the orphan was.
        m.start_copy(segment(10, 20)).expect("retry");
    }

    #[test]
    fn the_manifest_round_trips_through_json_with_kafka_state_names() {
        let mut m = Manifest {
            leader_epoch: 3,
            ..Manifest::default()
        };
        let mut s = segment(0, 10);
        s.aborted.push(RemoteAborted {
            producer_id: 7,
            first_offset: 2,
            last_offset: 4,
        });
        let id = s.id;
        m.start_copy(s).expect("start");
        m.finish_copy(id).expect("finish");
        m.start_copy(segment(10, 20)).expect("start");
        let json = m.to_json().expect("encode");
        let text = String::from_utf8(json.clone()).expect("utf-8");
        assert!(text.contains("COPY_SEGMENT_FINISHED"), "{text}");
        assert!(text.contains("COPY_SEGMENT_STARTED"), "{text}");
        assert_eq!(Manifest::from_json(&json).expect("decode"), m);
        assert!(Manifest::from_json(b"{not json").is_err());
    }

    #[test]
    fn delete_records_moves_the_remote_log_start_and_hides_what_lies_below() {
        let mut m = Manifest::default();
        for (base, end) in [(0, 10), (10, 20)] {
            let s = segment(base, end);
            let id = s.id;
            m.start_copy(s).expect("start");
            m.finish_copy(id).expect("finish");
        }
        m.delete_records_before(5);
        assert_eq!(m.log_start_offset(), Some(5));
        assert_eq!(m.segment_for(4), None);
        assert_eq!(m.segment_for(5).map(|s| s.base_offset), Some(0));
        m.delete_records_before(3);
        assert_eq!(m.records_deleted_before, 5, "never backwards");
        m.delete_records_before(20);
        assert_eq!(m.log_start_offset(), None, "nothing left remotely");
        let old = br#"{"version":1,"leader_epoch":0,"segments":[]}"#;
        let decoded = Manifest::from_json(old).expect("a manifest without the field");
        assert_eq!(decoded.records_deleted_before, 0);
    }

    #[test]
    fn segments_recorded_before_producer_snapshots_decode_without_one() {
        let old = br#"{"version":1,"leader_epoch":0,"segments":[{
            "id":"6c9e6bd3-3c0b-4e39-8f7e-5d1c1ad5f001","base_offset":0,"end_offset":10,
            "max_timestamp":5,"size_bytes":100,"leader_epochs":[[0,0]],
            "state":"COPY_SEGMENT_FINISHED"}]}"#;
        let decoded = Manifest::from_json(old).expect("an older manifest");
        assert!(!decoded.segments[0].producer_snapshot);
        let mut with = decoded.clone();
        with.segments[0].producer_snapshot = true;
        let json = with.to_json().expect("encode");
        assert_eq!(Manifest::from_json(&json).expect("decode"), with);
    }

    #[test]
    fn a_manifest_from_a_newer_leader_fences_older_ones() {
        let m = Manifest {
            leader_epoch: 5,
            ..Manifest::default()
        };
        assert!(m.fenced_for(4));
        assert!(!m.fenced_for(5));
        assert!(!m.fenced_for(6));
    }
}
