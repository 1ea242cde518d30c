//! Producer snapshots of remote segments (KIP-405 uploads one with each segment): the
//! producer state as of the segment's end, computed without the deleted part of the log, from
//! the snapshot of the remote segment before it (carried from the previous upload of the same
//! pass, else downloaded) plus this segment's batches, read from its local file before upload.
//! A follower rebuilt from the remote log starts its producer state from the snapshot of the
//! segment it restarts after (see [`TieredStorage::rebuild_plan_for`]).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::error::TieredError;
use super::manifest::{Manifest, RemoteSegment};
use super::store::PartitionPath;
use super::TieredStorage;
use tributary_replication::producer::{apply, AppliedBatch, BatchIdentity, ProducerSnapshot};
use tributary_storage::batch::HEADER_LEN;
use tributary_storage::{marker_is_commit, BatchView, SegmentSummary};

/// Suffix of a segment's producer snapshot object (Kafka's `.snapshot`).
pub const SNAPSHOT: &str = "snapshot";

/// The remote segment whose snapshot the state at the end of `[base, end)` starts from: the
/// readable one with a snapshot ending furthest within `[base, end]` (one ending exactly at
/// `base`, or, after a leader change, one this segment overlaps; only the batches past its
/// end are applied). None when the remote log has no such segment (the first upload, or
/// segments uploaded before snapshots were).
pub fn snapshot_base(manifest: &Manifest, base: i64, end: i64) -> Option<&RemoteSegment> {
    manifest
        .readable()
        .filter(|s| s.producer_snapshot && base <= s.end_offset && s.end_offset <= end)
        .max_by_key(|s| s.end_offset)
}

impl TieredStorage {
    /// The producer state as of the end of local `segment`, about to be uploaded: from
    /// `carried` (the snapshot the previous upload of this pass made) when it ends within the
    /// segment, else from the remote log's, else from nothing.
    pub(super) async fn producer_snapshot_for(
        &self,
        at: &PartitionPath,
        manifest: &Manifest,
        segment: &SegmentSummary,
        carried: Option<ProducerSnapshot>,
    ) -> Result<ProducerSnapshot, TieredError> {
        let within = |s: &ProducerSnapshot| {
            segment.base_offset <= s.end_offset && s.end_offset <= segment.end_offset
        };
        let start = match carried.filter(within) {
            Some(snapshot) => snapshot,
            None => match snapshot_base(manifest, segment.base_offset, segment.end_offset) {
                Some(previous) => self
                    .load_snapshot(at, previous)
                    .await?
                    .unwrap_or_else(|| ProducerSnapshot::empty(segment.base_offset)),
                None => ProducerSnapshot::empty(segment.base_offset),
            },
        };
        let (path, size, end) = (
            segment.log_path.clone(),
            segment.size_bytes,
            segment.end_offset,
        );
        tokio::task::spawn_blocking(move || advance(start, &path, size, end))
            .await
            .map_err(|e| TieredError::LocalRead {
                path: segment.log_path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// The snapshot uploaded with `segment`; None (with a warning) when it has none or it
    /// cannot be decoded: producer state then starts from the batches that follow, as it did
    /// before snapshots existed. A bucket that cannot be read is an error (try again later).
    pub(super) async fn load_snapshot(
        &self,
        at: &PartitionPath,
        segment: &RemoteSegment,
    ) -> Result<Option<ProducerSnapshot>, TieredError> {
        if !segment.producer_snapshot {
            return Ok(None);
        }
        let path = at.segment(segment.base_offset, segment.id, SNAPSHOT);
        let Some(bytes) = self.remote.get_optional(&path).await? else {
            tracing::warn!(%path, "a remote segment's producer snapshot is missing");
            return Ok(None);
        };
        match ProducerSnapshot::from_json(&bytes) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(error) => {
                tracing::warn!(%path, %error, "a remote segment's producer snapshot is corrupt");
                Ok(None)
            }
        }
    }

    /// Uploads a segment's snapshot.
    pub(super) async fn put_snapshot(
        &self,
        at: &PartitionPath,
        base_offset: i64,
        id: uuid::Uuid,
        snapshot: &ProducerSnapshot,
    ) -> Result<(), TieredError> {
        let path = at.segment(base_offset, id, SNAPSHOT);
        let json = snapshot.to_json().map_err(|e| TieredError::Corrupt {
            path: path.to_string(),
            reason: format!("cannot encode the producer snapshot: {e}"),
        })?;
        self.remote.put(&path, Bytes::from(json)).await
    }
}

/// `start` advanced over the batches of the segment file at `path` (its first `size` bytes)
/// from `start.end_offset` on, to `end`.
fn advance(
    start: ProducerSnapshot,
    path: &Path,
    size: u64,
    end: i64,
) -> Result<ProducerSnapshot, TieredError> {
    let local = |source| TieredError::LocalRead {
        path: PathBuf::from(path),
        source,
    };
    let (mut producers, mut txns) = start.restore();
    let mut file = std::fs::File::open(path).map_err(local)?;
    let mut position = 0u64;
    let mut header = [0u8; HEADER_LEN];
    while position < size {
        file.seek(SeekFrom::Start(position)).map_err(local)?;
        file.read_exact(&mut header).map_err(local)?;
        let view = BatchView::header(&header).map_err(|e| local(invalid(position, e)))?;
        let batch_size = view.size() as u64;
        if view.base_offset() >= start.end_offset {
            let control = if view.is_control() {
                let mut whole = vec![0u8; view.size()];
                file.seek(SeekFrom::Start(position)).map_err(local)?;
                file.read_exact(&mut whole).map_err(local)?;
                let parsed = BatchView::parse(&whole).map_err(|e| local(invalid(position, e)))?;
                Some(marker_is_commit(&parsed))
            } else {
                None
            };
            let batch = AppliedBatch {
                identity: BatchIdentity::of(&view),
                base_offset: view.base_offset(),
                transactional: view.is_transactional(),
                control,
            };
            apply(&mut producers, &mut txns, &batch);
        }
        position += batch_size;
    }
    Ok(ProducerSnapshot::capture(&producers, &txns, end))
}

fn invalid(position: u64, error: tributary_storage::BatchError) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("invalid batch at byte {position}: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::segment;

    #[test]
    fn the_base_is_the_snapshot_ending_furthest_inside_the_segment() {
        let mut m = Manifest::default();
        for (base, end, snap) in [(0, 10, true), (10, 20, true), (20, 30, false)] {
            let mut s = segment(base, end);
            s.producer_snapshot = snap;
            let id = s.id;
            m.start_copy(s).expect("start");
            m.finish_copy(id).expect("finish");
        }
        let end = |s: Option<&RemoteSegment>| s.map(|s| s.end_offset);
        assert_eq!(end(snapshot_base(&m, 20, 25)), Some(20), "adjacent");
        assert_eq!(end(snapshot_base(&m, 15, 25)), Some(20), "overlapping");
        assert_eq!(end(snapshot_base(&m, 5, 15)), Some(10));
        assert_eq!(end(snapshot_base(&m, 30, 40)), None, "no snapshot at 30");
        assert_eq!(end(snapshot_base(&m, 40, 50)), None, "a gap");
    }
}
