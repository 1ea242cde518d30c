//! The latest [`ClusterImage`], shared: handlers read it without locks, the replica manager
//! and the coordinators watch it for changes.

use std::sync::Arc;

use tokio::sync::watch;

use super::image::ClusterImage;

/// Holds the current image and tells watchers when it is replaced.
#[derive(Debug)]
pub struct MetadataCache {
    current: watch::Sender<Arc<ClusterImage>>,
    /// The image the replica manager applied last, so a change can wait until it is in
    /// effect here and not only published.
    applied: watch::Sender<Arc<ClusterImage>>,
}

impl MetadataCache {
    /// A cache starting at `image`.
    pub fn new(image: ClusterImage) -> MetadataCache {
        let image = Arc::new(image);
        MetadataCache {
            current: watch::Sender::new(image.clone()),
            applied: watch::Sender::new(image),
        }
    }

    /// The current image.
    pub fn image(&self) -> Arc<ClusterImage> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every later image.
    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.current.subscribe()
    }

    /// Replaces the image, unless `image` is the current one (a change to the objects that
    /// the image does not show, such as a Lease renewal, wakes nobody).
    pub fn publish(&self, image: ClusterImage) {
        self.current.send_if_modified(|current| {
            let changed = **current != image;
            if changed {
                *current = Arc::new(image);
            }
            changed
        });
    }

    /// Records that the replica manager applied `image`.
    pub fn mark_applied(&self, image: Arc<ClusterImage>) {
        self.applied.send_replace(image);
    }

    /// A receiver of the last image applied, woken after each apply.
    pub fn subscribe_applied(&self) -> watch::Receiver<Arc<ClusterImage>> {
        self.applied.subscribe()
    }

    /// Replaces the image with `change` applied to a copy of it; concurrent updates are
    /// serialised, so none is lost.
    pub fn update(&self, change: impl FnOnce(&mut ClusterImage)) -> Arc<ClusterImage> {
        let mut published = None;
        self.current.send_modify(|current| {
            let mut next = ClusterImage::clone(current);
            change(&mut next);
            *current = Arc::new(next);
            published = Some(current.clone());
        });
        published.unwrap_or_else(|| self.image())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::{PartitionState, TopicImage};

    #[tokio::test]
    async fn watchers_see_each_update_and_readers_keep_their_snapshot() {
        let cache = MetadataCache::new(ClusterImage::new("c".into(), 0, vec![]));
        let mut watcher = cache.subscribe();
        let before = cache.image();
        cache.update(|image| {
            image.put_topic(Arc::new(TopicImage {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                configs: Default::default(),
                replication_factor: 1,
                partitions: vec![PartitionState::sole(0, 1, 0)],
            }))
        });
        assert!(watcher.has_changed().unwrap_or(false));
        assert!(watcher.borrow_and_update().topic("t").is_some());
        assert!(
            before.topic("t").is_none(),
            "an image never changes under its reader"
        );
    }
}
