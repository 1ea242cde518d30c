//! Producer id allocation that never hands out the same id twice, across restarts and across
//! brokers: ids are taken in blocks, and a block is durably reserved where the cluster keeps
//! producer ids (a file in the data directory on a standalone broker, a Kubernetes object in
//! cluster mode, as Kafka's AllocateProducerIds) before any id of it is used.

use std::ops::Range;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use futures::FutureExt;

/// Ids a standalone broker reserves at once (Kafka's block size).
const BLOCK: i64 = 1000;

/// Failure to reserve a block of producer ids.
#[derive(Debug, thiserror::Error)]
pub enum IdAllocatorError {
    /// The checkpoint file could not be read or written.
    #[error("producer id checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cluster's producer id object could not be updated.
    #[error("cannot reserve producer ids: {0}")]
    Cluster(String),
}

/// Where blocks of producer ids are reserved.
pub trait BlockSource: Send + Sync {
    /// Reserves the next block; durable (never handed out again) before it returns.
    fn next_block(&self) -> BoxFuture<'_, Result<Range<i64>, IdAllocatorError>>;
}

/// Hands out producer ids from reserved blocks.
pub struct IdAllocator {
    source: Box<dyn BlockSource>,
    block: tokio::sync::Mutex<Range<i64>>,
}

impl IdAllocator {
    /// An allocator reserving its blocks from `source`.
    pub fn new(source: Box<dyn BlockSource>) -> IdAllocator {
        IdAllocator {
            source,
            block: tokio::sync::Mutex::new(0..0),
        }
    }

    /// The next unused producer id.
    pub async fn next_id(&self) -> Result<i64, IdAllocatorError> {
        let mut block = self.block.lock().await;
        if block.is_empty() {
            *block = self.source.next_block().await?;
        }
        let id = block.start;
        block.start += 1;
        Ok(id)
    }
}

/// Blocks reserved in a file of the data directory (standalone): the file holds the end of
/// the last block reserved.
#[derive(Debug)]
pub struct FileBlocks {
    path: PathBuf,
    reserved: parking_lot::Mutex<i64>,
}

impl FileBlocks {
    /// Blocks reserved in `path`; a missing file starts at 0.
    pub fn open(path: &Path) -> Result<FileBlocks, IdAllocatorError> {
        let end = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<i64>().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(IdAllocatorError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(FileBlocks {
            path: path.to_path_buf(),
            reserved: parking_lot::Mutex::new(end),
        })
    }
}

impl BlockSource for FileBlocks {
    fn next_block(&self) -> BoxFuture<'_, Result<Range<i64>, IdAllocatorError>> {
        let mut reserved = self.reserved.lock();
        let start = *reserved;
        let end = start + BLOCK;
        let written =
            tributary_storage::durable_file::write_atomic(&self.path, end.to_string().as_bytes())
                .map(|()| {
                    *reserved = end;
                    start..end
                })
                .map_err(|source| IdAllocatorError::Io {
                    path: self.path.clone(),
                    source,
                });
        async move { written }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocator(path: &Path) -> IdAllocator {
        IdAllocator::new(Box::new(FileBlocks::open(path).expect("open")))
    }

    #[tokio::test]
    async fn ids_are_unique_across_blocks_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("producer-ids");
        let first = allocator(&path);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..BLOCK + 5 {
            assert!(seen.insert(first.next_id().await.expect("id")));
        }
        let second = allocator(&path);
        let after = second.next_id().await.expect("id");
        assert!(
            seen.iter().all(|&id| id < after),
            "{after} is above every earlier id"
        );
    }
}
