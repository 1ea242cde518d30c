//! Producer id allocation that never hands out the same id twice, across restarts too: ids are
//! reserved in blocks whose end is persisted before any id of the block is used.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// Ids reserved per write of the checkpoint file.
const BLOCK: i64 = 1000;

/// Failure to persist the producer id block.
#[derive(Debug, thiserror::Error)]
pub enum IdAllocatorError {
    /// The checkpoint file could not be read or written.
    #[error("producer id checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids; thread-safe.
#[derive(Debug)]
pub struct IdAllocator {
    path: PathBuf,
    block: Mutex<Block>,
}

impl IdAllocator {
    /// Opens the allocator whose reservation lives in `path`; a missing file starts at 0.
    pub fn open(path: &Path) -> Result<IdAllocator, IdAllocatorError> {
        let start = match std::fs::read_to_string(path) {
            Ok(text) => text.trim().parse::<i64>().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => {
                return Err(IdAllocatorError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(IdAllocator {
            path: path.to_path_buf(),
            block: Mutex::new(Block {
                next: start,
                end: start,
            }),
        })
    }

    /// The next unused producer id.
    pub fn next_id(&self) -> Result<i64, IdAllocatorError> {
        let mut block = self.block.lock();
        if block.next >= block.end {
            let end = block.end + BLOCK;
            crate::fsutil::write_atomic(&self.path, end.to_string().as_bytes()).map_err(
                |source| IdAllocatorError::Io {
                    path: self.path.clone(),
                    source,
                },
            )?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("producer-ids");
        let first = IdAllocator::open(&path).unwrap();
        let a = first.next_id().unwrap();
        let b = first.next_id().unwrap();
        assert_ne!(a, b);
        let second = IdAllocator::open(&path).unwrap();
        let c = second.next_id().unwrap();
        assert!(c > b, "{c} must be above {b}");
    }
}
