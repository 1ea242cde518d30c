//! A leader's log checked against the remote log metadata before it leads. A tiered partition
//! opened from disk may find its log missing, empty or short of what the bucket holds (its
//! directory lost, a new volume, a journal replay that stopped early). Its log must never start
//! below what the manifest says exists: [`opening`] decides, as a pure function of the manifest
//! and the local log end, whether the log is kept or restarted after the remote end (log
//! start = remote log start, local log start = next offset = remote end), with the remote log's
//! leader epochs and the producer state of its last segment; [`TieredStorage::check_leader`]
//! reads the manifest at the start of the leader's term and applies the decision (see
//! [`tributary_replication::partition::RemoteCheck`]). Until then the replica does not act as a leader.

use std::sync::Arc;

use super::error::TieredError;
use super::manifest::{Manifest, RemoteSegment};
use super::TieredStorage;
use tributary_replication::partition::{Partition, RemoteCheck, RemoteRestart, Role};

/// What a leader does with its local log, given the remote log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// Nothing is remote, or the local log reaches the remote end: lead from it as it is.
    Keep,
    /// The local log ends before the remote log does: restart it empty at `at`.
    RestartAfterRemote {
        /// The remote end (past the DeleteRecords point, if that is further): the local log
        /// start and the next offset handed out.
        at: i64,
        /// The remote log's leader epochs (epoch, start offset), oldest first.
        epochs: Vec<(i32, i64)>,
        /// The remote segment whose producer snapshot holds the producer state as of the
        /// remote end, if it was uploaded with one.
        snapshot_of: Option<RemoteSegment>,
    },
}

/// Whether a leader whose local log ends at `local_end` keeps it or restarts it after the
/// remote log `manifest` describes: no offset the remote log holds (or DeleteRecords removed
/// from it) may be handed out again.
pub fn opening(manifest: &Manifest, local_end: i64) -> Opening {
    // Past what the remote log holds, ever held (retention may have deleted every segment)
    // and DeleteRecords removed.
    let at = manifest.handed_out_end();
    if local_end >= at {
        return Opening::Keep;
    }
    let copied_end = manifest.copied_end_offset();
    Opening::RestartAfterRemote {
        at,
        epochs: remote_epochs(manifest),
        snapshot_of: manifest
            .readable()
            .find(|s| Some(s.end_offset) == copied_end && s.producer_snapshot)
            .cloned(),
    }
}

/// The leader epochs of the remote log, from its segments' entries: each epoch once, where it
/// first starts (a segment also names the epoch in force at its base).
fn remote_epochs(manifest: &Manifest) -> Vec<(i32, i64)> {
    let mut epochs: Vec<(i32, i64)> = Vec::new();
    for &(epoch, start) in manifest.readable().flat_map(|s| &s.leader_epochs) {
        if epochs.last().is_none_or(|&(last, _)| epoch > last) {
            epochs.push((epoch, start));
        }
    }
    epochs
}

impl TieredStorage {
    /// Checks the log of a partition this broker leads, if it awaits its remote log check:
    /// reads the manifest for the leader's term (as its first pass would), decides with
    /// [`opening`] and applies the decision. Nothing to do for a follower or a checked log;
    /// a role or log that changed meanwhile is checked again later.
    pub async fn check_leader(&self, partition: &Partition) -> Result<(), TieredError> {
        let role = partition.role();
        let Role::Leader { epoch } = role else {
            return Ok(());
        };
        if !partition.awaits_remote_log() {
            return Ok(());
        }
        let at = self.path_of(partition);
        let manifest = self.manifest_for_term(partition, &at, epoch).await?;
        let local_end = partition.with_log(|log| log.log_end_offset());
        let now_ms = tributary_storage::clock::now_ms();
        let checked = match opening(&manifest, local_end) {
            Opening::Keep => partition.finish_remote_check(RemoteCheck::Keep, role, now_ms),
            Opening::RestartAfterRemote {
                at: offset,
                epochs,
                snapshot_of,
            } => {
                let producers = match &snapshot_of {
                    Some(segment) => self.load_snapshot(&at, segment).await?,
                    None => None,
                };
                let restart = RemoteRestart {
                    local_end,
                    offset,
                    epochs: &epochs,
                    producers: producers.as_ref(),
                };
                partition.finish_remote_check(RemoteCheck::Restart(restart), role, now_ms)
            }
        }
        .map_err(|source| TieredError::LocalLog {
            path: partition.with_log(|log| log.dir().to_path_buf()),
            source,
        })?;
        if checked {
            let local_start = partition.with_log(|log| log.log_start_offset());
            partition.set_remote_copied_end(manifest.covered_end(local_start));
        }
        Ok(())
    }

    /// Checks at once, each in a task of its own, the partitions led here whose logs await
    /// their remote log check (opened, or just become leader), rather than at the next pass;
    /// a check that fails is counted and tried again by the passes.
    pub fn check_leaders_now(self: &Arc<Self>, partitions: Vec<Arc<Partition>>) {
        let waiting = partitions
            .into_iter()
            .filter(|p| p.role().is_leader() && p.awaits_remote_log());
        for partition in waiting {
            let tiered = self.clone();
            tokio::spawn(async move {
                if let Err(error) = tiered.check_leader(&partition).await {
                    tiered.count_error(&error);
                    tracing::warn!(
                        ?partition,
                        %error,
                        "cannot check the log against the remote log yet; it does not lead until then"
                    );
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::segment;
    use crate::manifest::SegmentState;

    /// A remote segment: base, end, and its leader epochs (epoch, start).
    type Spec<'a> = (i64, i64, &'a [(i32, i64)]);

    /// A manifest of finished segments, each with a producer snapshot.
    fn remote(segments: &[Spec<'_>]) -> Manifest {
        let mut m = Manifest::default();
        for &(base, end, epochs) in segments {
            let mut s = segment(base, end);
            s.leader_epochs = epochs.to_vec();
            s.producer_snapshot = true;
            let id = s.id;
            m.start_copy(s).expect("start");
            m.finish_copy(id).expect("finish");
        }
        m
    }

    fn restart_at(opening: &Opening) -> Option<i64> {
        match opening {
            Opening::Keep => None,
            Opening::RestartAfterRemote { at, .. } => Some(*at),
        }
    }

    #[test]
    fn a_missing_empty_or_short_log_restarts_after_the_remote_end() {
        let m = remote(&[(0, 100, &[(0, 0)]), (100, 250, &[(0, 100), (2, 180)])]);
        for local_end in [0, 1, 99, 249] {
            assert_eq!(
                restart_at(&opening(&m, local_end)),
                Some(250),
                "{local_end}"
            );
        }
        let Opening::RestartAfterRemote {
            epochs,
            snapshot_of,
            ..
        } = opening(&m, 0)
        else {
            panic!("restart expected");
        };
        assert_eq!(
            epochs,
            vec![(0, 0), (2, 180)],
            "each epoch once, where it starts"
        );
        assert_eq!(
            snapshot_of.map(|s| (s.base_offset, s.end_offset)),
            Some((100, 250)),
            "the producer state as of the remote end"
        );
    }

    #[test]
    fn a_log_reaching_the_remote_end_is_kept() {
        let m = remote(&[(0, 100, &[(0, 0)]), (100, 250, &[(0, 100)])]);
        assert_eq!(
            opening(&m, 250),
            Opening::Keep,
            "ends where the bucket does"
        );
        assert_eq!(opening(&m, 400), Opening::Keep, "goes on past it");
        assert_eq!(
            opening(&Manifest::default(), 0),
            Opening::Keep,
            "nothing remote"
        );
    }

    #[test]
    fn unfinished_uploads_do_not_count_and_deleted_records_are_never_reused() {
        let mut m = remote(&[(0, 100, &[(0, 0)])]);
        let mut started = segment(100, 200);
        started.state = SegmentState::CopySegmentStarted;
        m.start_copy(started).expect("start");
        assert_eq!(
            restart_at(&opening(&m, 0)),
            Some(100),
            "the started upload holds nothing"
        );
        assert_eq!(opening(&m, 100), Opening::Keep);
        // DeleteRecords moved the log start past the remote end: those offsets were handed
        // out too.
        m.delete_records_before(130);
        assert_eq!(restart_at(&opening(&m, 100)), Some(130));
        let Opening::RestartAfterRemote { snapshot_of, .. } = opening(&m, 0) else {
            panic!("restart expected");
        };
        assert_eq!(snapshot_of.map(|s| s.end_offset), Some(100));
    }

    #[test]
    fn segments_without_snapshots_restart_without_producer_state() {
        let mut m = remote(&[(0, 100, &[(1, 0)])]);
        m.segments[0].producer_snapshot = false;
        let Opening::RestartAfterRemote { snapshot_of, .. } = opening(&m, 0) else {
            panic!("restart expected");
        };
        assert_eq!(snapshot_of, None);
    }

    #[test]
    fn a_remote_log_emptied_by_retention_or_delete_records_still_forbids_its_offsets() {
        // Every segment deleted (retention after DeleteRecords to the end, or retention.ms
        // on a quiet topic): the manifest holds no segment, yet 0..250 were handed out.
        let mut emptied = remote(&[(0, 100, &[(0, 0)]), (100, 250, &[(0, 100)])]);
        let ids: Vec<_> = emptied.segments.iter().map(|s| s.id).collect();
        for id in ids {
            emptied.start_delete(id).expect("start delete");
            emptied.remove(id).expect("remove");
        }
        assert_eq!(emptied.copied_end_offset(), None);
        assert_eq!(restart_at(&opening(&emptied, 0)), Some(250), "retention");
        assert_eq!(opening(&emptied, 250), Opening::Keep);

        let mut purged = Manifest::default();
        purged.delete_records_before(8000);
        assert_eq!(
            restart_at(&opening(&purged, 0)),
            Some(8000),
            "DeleteRecords"
        );
        let Opening::RestartAfterRemote {
            epochs,
            snapshot_of,
            ..
        } = opening(&purged, 0)
        else {
            panic!("restart expected");
        };
        assert!(epochs.is_empty() && snapshot_of.is_none());
    }

    #[test]
    fn the_furthest_upload_survives_a_json_round_trip_and_old_manifests_read_zero() {
        let m = remote(&[(0, 100, &[(0, 0)])]);
        assert_eq!(m.copied_end_ever, 100);
        let json = m.to_json().expect("encode");
        assert_eq!(
            Manifest::from_json(&json).expect("decode").copied_end_ever,
            100
        );
        let old = br#"{"version":1,"leader_epoch":0,"segments":[]}"#;
        assert_eq!(Manifest::from_json(old).expect("decode").copied_end_ever, 0);
    }
}
