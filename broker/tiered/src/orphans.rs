//! Orphaned objects: segment objects in a partition's prefix that its manifest does not name.
//! A deposed leader that went on uploading after its successor removed its unfinished entry
//! leaves them, and so may a crash between an upload and the manifest write that would have
//! named it. Nothing ever reads them; they only cost storage, so a leader sweeps them at the
//! start of its term.
//!
//! Only objects older than [`ORPHAN_GRACE`] (by the bucket's modification time) go: every
//! leader names a segment in the manifest before it writes its first byte, so an object
//! written after the manifest this term read (a newer leader's upload in flight, should this
//! broker already be deposed) is never deleted, and the margin also absorbs clock skew
//! between the broker and the bucket.

use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path;
use uuid::Uuid;

use super::error::TieredError;
use super::manifest::Manifest;
use super::store::PartitionPath;
use super::TieredStorage;

/// How old an unnamed object must be before it is deleted.
pub const ORPHAN_GRACE: Duration = Duration::from_secs(15 * 60);

/// One object of a partition's prefix as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name.
    pub path: Path,
    /// When the bucket last modified it, in ms since the epoch.
    pub modified_ms: i64,
}

/// The segment id a segment object's name carries (`{base:020}-{id}.{suffix}`); None for
/// anything else (the manifest, objects this broker does not name).
pub fn segment_id_of(path: &Path) -> Option<Uuid> {
    let name = path.filename()?;
    let (stem, _suffix) = name.split_once('.')?;
    let (base, id) = stem.split_once('-')?;
    if base.len() != 20 || !base.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Uuid::parse_str(id).ok()
}

/// The listed objects to delete: segment objects of ids `manifest` does not hold, last
/// modified before `now_ms - grace`.
pub fn orphans(manifest: &Manifest, listed: &[Listed], now_ms: i64, grace: Duration) -> Vec<Path> {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now_ms.saturating_sub(grace_ms);
    listed
        .iter()
        .filter(|o| o.modified_ms < cutoff)
        .filter(|o| {
            segment_id_of(&o.path).is_some_and(|id| manifest.segments.iter().all(|s| s.id != id))
        })
        .map(|o| o.path.clone())
        .collect()
}

impl TieredStorage {
    /// Deletes the partition's orphaned objects (see the module docs) as `manifest`, read
    /// by this term, names its segments; returns how many. A failure only leaves them for
    /// the next term: it is logged, never fatal to the pass.
    pub(super) async fn sweep_orphans(&self, at: &PartitionPath, manifest: &Manifest) -> usize {
        match self.try_sweep_orphans(at, manifest).await {
            Ok(deleted) => deleted,
            Err(error) => {
                self.count_error(&error);
                tracing::warn!(%error, "could not delete orphaned remote objects; next term tries again");
                0
            }
        }
    }

    async fn try_sweep_orphans(
        &self,
        at: &PartitionPath,
        manifest: &Manifest,
    ) -> Result<usize, TieredError> {
        let dir = at.dir();
        let listed: Vec<Listed> = self
            .objects
            .list(Some(&dir))
            .map_ok(|meta| Listed {
                path: meta.location,
                modified_ms: meta.last_modified.timestamp_millis(),
            })
            .try_collect()
            .await
            .map_err(|source| TieredError::Store {
                op: "list",
                path: dir.to_string(),
                source,
            })?;
        let doomed = orphans(
            manifest,
            &listed,
            tributary_storage::clock::now_ms(),
            ORPHAN_GRACE,
        );
        for path in &doomed {
            match self.objects.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(source) => {
                    return Err(TieredError::Store {
                        op: "delete",
                        path: path.to_string(),
                        source,
                    })
                }
            }
            tracing::info!(%path, "deleted an orphaned remote object");
        }
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::segment;

    #[test]
    fn only_old_segment_objects_the_manifest_does_not_name_are_orphans() {
        let mut manifest = Manifest::default();
        let kept = segment(0, 10);
        let mut started = segment(10, 20);
        started.state = crate::manifest::SegmentState::CopySegmentStarted;
        let (kept_id, started_id, orphan_id) = (kept.id, started.id, Uuid::new_v4());
        manifest.segments = vec![kept, started];
        let at = PartitionPath::new("p", "t", Uuid::nil(), 0);
        let name = |id, suffix| at.segment(0, id, suffix);
        let old = 1_000;
        let listed = [
            (name(kept_id, "log"), old),
            (name(started_id, "index"), old),
            (name(orphan_id, "log"), old),
            (name(orphan_id, "snapshot"), old),
            (name(Uuid::new_v4(), "log"), 1_000_000),
            (at.manifest(), old),
            (Path::from("p/t/0/notes.txt"), old),
        ]
        .map(|(path, modified_ms)| Listed { path, modified_ms });
        let grace = Duration::from_secs(60);
        let now = 1_000_000 + 60_000;
        assert_eq!(
            orphans(&manifest, &listed, now, grace),
            vec![name(orphan_id, "log"), name(orphan_id, "snapshot")],
            "fresh objects, named ones, the manifest and foreign names stay"
        );
        assert_eq!(orphans(&manifest, &listed, now + 1, grace).len(), 3);
    }

    #[test]
    fn segment_ids_are_read_from_object_names() {
        let id = Uuid::new_v4();
        let at = PartitionPath::new("", "t", Uuid::nil(), 3);
        assert_eq!(
            segment_id_of(&at.segment(42, id, "leader-epoch-checkpoint")),
            Some(id)
        );
        assert_eq!(segment_id_of(&at.manifest()), None);
        assert_eq!(segment_id_of(&Path::from(format!("x/42-{id}.log"))), None);
        assert_eq!(
            segment_id_of(&Path::from("x/00000000000000000042-nope.log")),
            None
        );
    }
}
