//! The decisions of tiered storage as pure functions of what the log and the manifest hold:
//! which local segments to upload and which remote segments total retention removes. The
//! uploader only carries them out.

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::manifest::{Manifest, RemoteSegment};
use tributary_storage::SegmentSummary;

/// The local segments to upload next, oldest first: closed (never the active one),
/// non-empty, wholly below `stable_end` (the last stable offset, itself at most the high
/// watermark, so nothing a new leader could truncate or an open transaction could still
/// change goes to the bucket) and ending past the remote log (a segment straddling its end,
/// as a new leader's may, goes too: otherwise its tail would never reach the bucket).
pub fn segments_to_upload<'a>(
    local: &'a [SegmentSummary],
    manifest: &Manifest,
    stable_end: i64,
) -> Vec<&'a SegmentSummary> {
    let copied_end = manifest.copied_end_offset().unwrap_or(i64::MIN);
    local
        .iter()
        .take_while(|s| !s.active && s.end_offset <= stable_end)
        .filter(|s| s.size_bytes > 0 && s.end_offset > s.base_offset)
        .filter(|s| s.end_offset > copied_end)
        .collect()
}

/// What total retention needs to know besides the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteRetention {
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: no limit).
    pub retention_bytes: i64,
    /// Bytes of the local segments the bucket does not hold yet: they count toward the
    /// partition's total size as in Kafka.
    pub local_only_bytes: u64,
    /// The clock.
    pub now_ms: i64,
}

/// The remote segments `retention.ms`/`retention.bytes` remove, oldest first: a prefix of the
/// remote log, as Kafka deletes remote segments in offset order.
pub fn remote_segments_to_delete(manifest: &Manifest, rules: RemoteRetention) -> Vec<Uuid> {
    let total = manifest.size_bytes() + rules.local_only_bytes;
    let mut excess = if rules.retention_bytes >= 0 {
        i128::from(total) - i128::from(rules.retention_bytes)
    } else {
        0
    };
    let mut doomed = Vec::new();
    for segment in manifest.readable() {
        let expired = (rules.retention_ms >= 0
            && rules.now_ms - segment.max_timestamp > rules.retention_ms)
            || segment.end_offset <= manifest.records_deleted_before;
        let oversize = rules.retention_bytes >= 0 && excess >= i128::from(segment.size_bytes);
        if !(expired || oversize) {
            break;
        }
        excess -= i128::from(segment.size_bytes);
        doomed.push(segment.id);
    }
    doomed
}

/// The answer to a follower whose fetch offset is outside the leader's local log: below the
/// local log start but at or above the remote log start, the remote log has it and the
/// follower rebuilds from there (OFFSET_MOVED_TO_TIERED_STORAGE, KIP-405); otherwise
/// OFFSET_OUT_OF_RANGE as without tiering.
pub fn follower_out_of_range(
    fetch_offset: i64,
    local_log_start: i64,
    remote_log_start: Option<i64>,
) -> ResponseError {
    match remote_log_start {
        Some(remote) if remote <= fetch_offset && fetch_offset < local_log_start => {
            ResponseError::OffsetMovedToTieredStorage
        }
        _ => ResponseError::OffsetOutOfRange,
    }
}

/// The remote segment a follower rebuilds from: the readable one holding the offset just
/// before the leader's local log start (Kafka's `buildRemoteLogAuxState`). Refused when the
/// remote log does not reach the leader's local log start without a gap: restarting there
/// would leave offsets neither the bucket nor the leader holds.
pub fn rebuild_target(
    manifest: &Manifest,
    leader_local_start: i64,
) -> Result<&RemoteSegment, String> {
    if leader_local_start <= 0 {
        return Err(format!(
            "the leader's local log starts at {leader_local_start}: nothing is remote"
        ));
    }
    let before = leader_local_start - 1;
    manifest.segment_for(before).ok_or_else(|| {
        format!(
            "no uploaded segment holds offset {before}, before the leader's local log start \
             (remote log [{:?}, {:?}))",
            manifest.log_start_offset(),
            manifest.copied_end_offset()
        )
    })
}

/// Parses the leader-epoch checkpoint an upload stores beside each segment (Kafka's text
/// format: version 0, the count, then `epoch start_offset` lines).
pub fn parse_epoch_checkpoint(bytes: &[u8]) -> Result<Vec<(i32, i64)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not text: {e}"))?;
    let mut lines = text.lines();
    let version = lines.next().map(str::trim);
    if version != Some("0") {
        return Err(format!("unknown checkpoint version {version:?}"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("no entry count")?;
    let mut entries = Vec::with_capacity(count.min(1024));
    for line in lines.by_ref().take(count) {
        let mut fields = line.split_whitespace();
        let parsed = (
            fields.next().and_then(|f| f.parse::<i32>().ok()),
            fields.next().and_then(|f| f.parse::<i64>().ok()),
        );
        let (Some(epoch), Some(start)) = parsed else {
            return Err(format!("bad entry {line:?}"));
        };
        if entries
            .last()
            .is_some_and(|&(e, s): &(i32, i64)| epoch <= e || start < s)
        {
            return Err(format!("entry {line:?} does not follow the one before"));
        }
        entries.push((epoch, start));
    }
    if entries.len() != count {
        return Err(format!("{} entries, {count} announced", entries.len()));
    }
    Ok(entries)
}

/// The entries of `checkpoint` that start below `offset` (those starting at or after it
/// come with the batches the follower fetches).
pub fn epochs_before(checkpoint: &[(i32, i64)], offset: i64) -> Vec<(i32, i64)> {
    checkpoint
        .iter()
        .filter(|&&(_, start)| start < offset)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::manifest::{RemoteSegment, SegmentState};

    fn local(base: i64, end: i64, active: bool) -> SegmentSummary {
        SegmentSummary {
            base_offset: base,
            end_offset: end,
            size_bytes: (end - base) as u64 * 10,
            max_timestamp: 1_000,
            active,
            log_path: PathBuf::new(),
            index_path: PathBuf::new(),
            time_index_path: PathBuf::new(),
        }
    }

    fn remote(base: i64, end: i64, max_timestamp: i64) -> RemoteSegment {
        RemoteSegment {
            id: Uuid::new_v4(),
            base_offset: base,
            end_offset: end,
            max_timestamp,
            size_bytes: 100,
            leader_epochs: Vec::new(),
            aborted: Vec::new(),
            state: SegmentState::CopySegmentFinished,
            producer_snapshot: false,
        }
    }

    fn manifest(segments: Vec<RemoteSegment>) -> Manifest {
        Manifest {
            segments,
            ..Manifest::default()
        }
    }

    #[test]
    fn only_closed_segments_below_the_stable_offset_are_uploaded() {
        let log = [
            local(0, 10, false),
            local(10, 20, false),
            local(20, 25, true),
        ];
        let empty = Manifest::default();
        let bases = |v: Vec<&SegmentSummary>| v.iter().map(|s| s.base_offset).collect::<Vec<_>>();
        assert_eq!(bases(segments_to_upload(&log, &empty, 100)), vec![0, 10]);
        assert_eq!(
            bases(segments_to_upload(&log, &empty, 19)),
            vec![0],
            "above the LSO"
        );
        assert_eq!(
            bases(segments_to_upload(&log, &empty, 9)),
            Vec::<i64>::new()
        );
        // The active segment never goes, even when all of it is stable.
        assert_eq!(bases(segments_to_upload(&log, &empty, 25)), vec![0, 10]);
    }

    #[test]
    fn segments_the_bucket_holds_are_not_uploaded_again() {
        let log = [
            local(0, 10, false),
            local(10, 20, false),
            local(20, 25, true),
        ];
        let m = manifest(vec![remote(0, 10, 0)]);
        let due = segments_to_upload(&log, &m, 100);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].base_offset, 10);
        // An unfinished upload does not count: the segment is due again.
        let mut started = remote(0, 10, 0);
        started.state = SegmentState::CopySegmentStarted;
        assert_eq!(
            segments_to_upload(&log, &manifest(vec![started]), 100).len(),
            2
        );
    }

    #[test]
    fn a_segment_straddling_the_remote_end_is_uploaded() {
        // A new leader whose segments end elsewhere than the old leader's did.
        let log = [local(0, 8, false), local(8, 15, false), local(15, 25, true)];
        let m = manifest(vec![remote(0, 10, 0)]);
        let due = segments_to_upload(&log, &m, 100);
        assert_eq!(
            due.iter().map(|s| s.base_offset).collect::<Vec<_>>(),
            vec![8]
        );
    }

    #[test]
    fn remote_retention_removes_the_oldest_segments_past_retention_ms() {
        let m = manifest(vec![
            remote(0, 10, 1_000),
            remote(10, 20, 5_000),
            remote(20, 30, 1_500),
        ]);
        let rules = RemoteRetention {
            retention_ms: 2_000,
            retention_bytes: -1,
            local_only_bytes: 0,
            now_ms: 4_000,
        };
        // Only a prefix: the third is old too, but the second is not.
        assert_eq!(remote_segments_to_delete(&m, rules), vec![m.segments[0].id]);
        let forever = RemoteRetention {
            retention_ms: -1,
            ..rules
        };
        assert!(remote_segments_to_delete(&m, forever).is_empty());
    }

    #[test]
    fn remote_retention_bytes_counts_the_local_only_part_too() {
        let m = manifest(vec![remote(0, 10, 0), remote(10, 20, 0), remote(20, 30, 0)]);
        let rules = RemoteRetention {
            retention_ms: -1,
            retention_bytes: 150,
            local_only_bytes: 50,
            now_ms: 0,
        };
        // 350 bytes in all, 200 over: two segments of 100 go.
        let doomed = remote_segments_to_delete(&m, rules);
        assert_eq!(doomed, vec![m.segments[0].id, m.segments[1].id]);
        let roomy = RemoteRetention {
            retention_bytes: 10_000,
            ..rules
        };
        assert!(remote_segments_to_delete(&m, roomy).is_empty());
    }

    #[test]
    fn segments_wholly_below_the_delete_records_point_are_deleted() {
        let mut m = manifest(vec![remote(0, 10, 0), remote(10, 20, 0), remote(20, 30, 0)]);
        m.delete_records_before(15);
        let rules = RemoteRetention {
            retention_ms: -1,
            retention_bytes: -1,
            local_only_bytes: 0,
            now_ms: 0,
        };
        assert_eq!(remote_segments_to_delete(&m, rules), vec![m.segments[0].id]);
    }

    #[test]
    fn remote_lookup_finds_the_segment_holding_an_offset() {
        let m = manifest(vec![remote(0, 10, 0), remote(10, 20, 0)]);
        assert_eq!(m.segment_for(0).map(|s| s.base_offset), Some(0));
        assert_eq!(m.segment_for(9).map(|s| s.base_offset), Some(0));
        assert_eq!(m.segment_for(10).map(|s| s.base_offset), Some(10));
        assert_eq!(m.segment_for(20), None);
        assert_eq!(m.log_start_offset(), Some(0));
        assert_eq!(m.copied_end_offset(), Some(20));
    }

    #[test]
    fn a_follower_rebuilds_from_the_segment_before_the_leaders_local_log_start() {
        let m = manifest(vec![remote(0, 10, 0), remote(10, 20, 0), remote(20, 30, 0)]);
        assert_eq!(rebuild_target(&m, 20).map(|s| s.base_offset), Ok(10));
        assert_eq!(rebuild_target(&m, 25).map(|s| s.base_offset), Ok(20));
        assert_eq!(rebuild_target(&m, 30).map(|s| s.base_offset), Ok(20));
        assert!(
            rebuild_target(&m, 31).is_err(),
            "a gap before the local log"
        );
        assert!(rebuild_target(&m, 0).is_err(), "nothing remote");
        // An unfinished upload is not rebuilt from.
        let mut started = remote(0, 10, 0);
        started.state = SegmentState::CopySegmentStarted;
        assert!(rebuild_target(&manifest(vec![started]), 5).is_err());
    }

    #[test]
    fn the_uploaded_epoch_checkpoint_parses_and_keeps_what_precedes_the_restart() {
        let parsed = parse_epoch_checkpoint(b"0\n3\n1 5\n2 15\n4 18\n").expect("parse");
        assert_eq!(parsed, vec![(1, 5), (2, 15), (4, 18)]);
        assert_eq!(epochs_before(&parsed, 18), vec![(1, 5), (2, 15)]);
        assert_eq!(epochs_before(&parsed, 16), vec![(1, 5), (2, 15)]);
        for bad in [
            &b"1\n0\n"[..],
            b"0\n2\n1 5\n",
            b"0\n1\nx 5\n",
            b"0\n2\n2 5\n1 6\n",
            b"",
            b"\xff",
        ] {
            assert!(parse_epoch_checkpoint(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_epoch_checkpoint(b"0\n0\n"), Ok(Vec::new()));
    }

    #[test]
    fn a_follower_below_the_local_log_but_inside_the_remote_log_is_sent_to_tiered_storage() {
        use ResponseError::{OffsetMovedToTieredStorage as Moved, OffsetOutOfRange as OutOfRange};
        assert_eq!(follower_out_of_range(0, 100, Some(0)), Moved);
        assert_eq!(follower_out_of_range(99, 100, Some(0)), Moved);
        assert_eq!(
            follower_out_of_range(5, 100, Some(10)),
            OutOfRange,
            "below the remote log"
        );
        assert_eq!(
            follower_out_of_range(5, 100, None),
            OutOfRange,
            "nothing remote"
        );
        assert_eq!(
            follower_out_of_range(150, 100, Some(0)),
            OutOfRange,
            "past the log end"
        );
    }
}
