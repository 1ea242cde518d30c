//! Keeping one led partition's remote log in step with its local log: clean up what a crash
//! left, upload the segments that are due, record the upload end for local retention, and
//! apply total retention to the bucket. Every manifest change is written before the step it
//! enables (STARTED before the first byte, DELETE_STARTED before the first deletion).

use std::time::Instant;

use bytes::Bytes;
use uuid::Uuid;

use super::error::TieredError;
use super::manifest::{Manifest, RemoteAborted, RemoteSegment, SegmentState};
use super::plan::{remote_segments_to_delete, segments_to_upload, RemoteRetention};
use super::snapshots::SNAPSHOT;
use super::store::{PartitionPath, EPOCHS, INDEX, LOG, TIME_INDEX};
use super::TieredStorage;
use tributary_replication::partition::{Partition, TieringView};
use tributary_replication::producer::ProducerSnapshot;
use tributary_storage::SegmentSummary;

impl TieredStorage {
    /// One pass over a partition this broker leads whose topic is tiered.
    pub(super) async fn sync_partition(
        &self,
        partition: &Partition,
        now_ms: i64,
    ) -> Result<(), TieredError> {
        let epoch = partition.leader_epoch();
        let at = self.path_of(partition);
        let mut manifest = self.manifest_for_term(partition, &at, epoch).await?;
        if manifest.leader_epoch < epoch {
            // Claim the manifest for this term first: with stores that cannot update
            // conditionally, the deposed leader's epoch-guarded writes stop here.
            manifest.leader_epoch = epoch;
            self.save(partition, &at, &manifest).await?;
            self.sweep_orphans(&at, &manifest).await;
        }
        let leftovers = manifest.leftovers();
        if !leftovers.is_empty() {
            for segment in &leftovers {
                self.delete_segment_objects(&at, segment).await?;
                manifest.remove(segment.id)?;
            }
            self.save(partition, &at, &manifest).await?;
        }
        let view = partition.tiering_view(0);
        let mut carried = None;
        let due: Vec<SegmentSummary> =
            segments_to_upload(&view.segments, &manifest, view.stable_end)
                .into_iter()
                .cloned()
                .collect();
        self.report_lag(partition, &due);
        for (done, segment) in due.iter().enumerate() {
            let started = Instant::now();
            let snapshot = self
                .producer_snapshot_for(&at, &manifest, segment, carried.take())
                .await?;
            self.upload(partition, &at, &mut manifest, segment, &view, &snapshot)
                .await?;
            carried = Some(snapshot);
            self.metrics
                .upload_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics
                .uploaded_bytes
                .with_label_values(&[partition.topic()])
                .inc_by(segment.size_bytes);
            partition.set_remote_copied_end(manifest.covered_end(view.local_log_start));
            self.report_lag(partition, &due[done + 1..]);
        }
        partition.set_remote_copied_end(manifest.covered_end(view.local_log_start));
        self.expire(partition, &at, &mut manifest, &view, now_ms)
            .await?;
        self.metrics
            .remote_bytes
            .with_label_values(&[partition.topic(), &partition.index().to_string()])
            .set(i64::try_from(manifest.size_bytes()).unwrap_or(i64::MAX));
        Ok(())
    }

    /// Copies one closed segment: STARTED in the manifest, the objects (with the producer
    /// state as of its end), then FINISHED.
    async fn upload(
        &self,
        partition: &Partition,
        at: &PartitionPath,
        manifest: &mut Manifest,
        segment: &SegmentSummary,
        view: &TieringView,
        snapshot: &ProducerSnapshot,
    ) -> Result<(), TieredError> {
        let id = Uuid::new_v4();
        let epochs: Vec<(i32, i64)> = epochs_for(&view.epochs, segment);
        manifest.start_copy(RemoteSegment {
            id,
            base_offset: segment.base_offset,
            end_offset: segment.end_offset,
            max_timestamp: segment.max_timestamp,
            size_bytes: segment.size_bytes,
            leader_epochs: epochs.clone(),
            aborted: view
                .aborted
                .iter()
                .filter(|a| {
                    a.last_offset >= segment.base_offset && a.first_offset < segment.end_offset
                })
                .map(RemoteAborted::from)
                .collect(),
            state: SegmentState::CopySegmentStarted,
            producer_snapshot: true,
        })?;
        self.save(partition, at, manifest).await?;
        let base = segment.base_offset;
        self.remote
            .put_file(
                &at.segment(base, id, LOG),
                &segment.log_path,
                segment.size_bytes,
            )
            .await?;
        for (path, suffix) in [
            (&segment.index_path, INDEX),
            (&segment.time_index_path, TIME_INDEX),
        ] {
            if let Some(bytes) = read_optional(path).await? {
                self.remote
                    .put(&at.segment(base, id, suffix), bytes)
                    .await?;
            }
        }
        self.remote
            .put(&at.segment(base, id, EPOCHS), epoch_checkpoint(&epochs))
            .await?;
        self.put_snapshot(at, base, id, snapshot).await?;
        manifest.finish_copy(id)?;
        self.save(partition, at, manifest).await?;
        tracing::info!(
            partition = ?partition,
            base_offset = base,
            end_offset = segment.end_offset,
            bytes = segment.size_bytes,
            segment_id = %id,
            "uploaded segment to remote storage"
        );
        Ok(())
    }

    /// Deletes the remote segments past `retention.ms`/`retention.bytes`.
    async fn expire(
        &self,
        partition: &Partition,
        at: &PartitionPath,
        manifest: &mut Manifest,
        view: &TieringView,
        now_ms: i64,
    ) -> Result<(), TieredError> {
        if !view.config.delete {
            return Ok(());
        }
        let copied_end = manifest.copied_end_offset().unwrap_or(i64::MIN);
        let local_only_bytes = view
            .segments
            .iter()
            .filter(|s| s.base_offset >= copied_end)
            .map(|s| s.size_bytes)
            .sum();
        let doomed = remote_segments_to_delete(
            manifest,
            RemoteRetention {
                retention_ms: view.config.retention_ms,
                retention_bytes: view.config.retention_bytes,
                local_only_bytes,
                now_ms,
            },
        );
        for id in doomed {
            manifest.start_delete(id)?;
            self.save(partition, at, manifest).await?;
            let segment = manifest.remove(id)?;
            self.delete_segment_objects(at, &segment).await?;
            self.save(partition, at, manifest).await?;
            tracing::info!(
                partition = ?partition,
                base_offset = segment.base_offset,
                end_offset = segment.end_offset,
                "deleted remote segment by retention"
            );
        }
        Ok(())
    }

    /// Deletes every object of a remote segment, its producer snapshot included; objects
    /// already gone are fine (a retried deletion).
    pub(super) async fn delete_segment_objects(
        &self,
        at: &PartitionPath,
        segment: &RemoteSegment,
    ) -> Result<(), TieredError> {
        self.remote.delete_segment(at, segment).await?;
        let path = at.segment(segment.base_offset, segment.id, SNAPSHOT);
        match self.objects.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(TieredError::Store {
                op: "delete",
                path: path.to_string(),
                source,
            }),
        }
    }

    pub(super) fn report_lag(&self, partition: &Partition, due: &[SegmentSummary]) {
        let labels = [partition.topic(), &partition.index().to_string()];
        let bytes: u64 = due.iter().map(|s| s.size_bytes).sum();
        self.metrics
            .upload_lag_segments
            .with_label_values(&labels)
            .set(i64::try_from(due.len()).unwrap_or(i64::MAX));
        self.metrics
            .upload_lag_bytes
            .with_label_values(&labels)
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
}

/// The epochs that apply within a segment: the one in force at its base, and any starting
/// inside it.
fn epochs_for(epochs: &[(i32, i64)], segment: &SegmentSummary) -> Vec<(i32, i64)> {
    let first = epochs
        .iter()
        .rposition(|&(_, start)| start <= segment.base_offset)
        .unwrap_or(0);
    epochs
        .iter()
        .skip(first)
        .filter(|&&(_, start)| start < segment.end_offset)
        .copied()
        .collect()
}

/// Kafka's leader-epoch checkpoint text: version, count, then `epoch offset` lines.
fn epoch_checkpoint(epochs: &[(i32, i64)]) -> Bytes {
    let mut text = format!("0\n{}\n", epochs.len());
    for (epoch, offset) in epochs {
        text.push_str(&format!("{epoch} {offset}\n"));
    }
    Bytes::from(text)
}

/// A whole file, or none if it does not exist (an index not written yet).
async fn read_optional(path: &std::path::Path) -> Result<Option<Bytes>, TieredError> {
    match tokio::fs::read(path).await {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TieredError::LocalRead {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_carries_the_epoch_in_force_at_its_base_and_those_starting_inside() {
        let segment = SegmentSummary {
            base_offset: 10,
            end_offset: 20,
            size_bytes: 1,
            max_timestamp: 0,
            active: false,
            log_path: Default::default(),
            index_path: Default::default(),
            time_index_path: Default::default(),
        };
        let epochs = [(0, 0), (1, 5), (2, 15), (3, 20)];
        assert_eq!(epochs_for(&epochs, &segment), vec![(1, 5), (2, 15)]);
        assert_eq!(
            &epoch_checkpoint(&[(1, 5), (2, 15)])[..],
            b"0\n2\n1 5\n2 15\n"
        );
    }
}
