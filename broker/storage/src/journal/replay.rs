//! Reading the journal at start-up: every intact record, in the order the rounds ran, indexed
//! by partition so each partition's recovery can re-append what its segments lost.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use uuid::Uuid;

use super::record::{self, BLOCK, HEADER_LEN};
use super::JournaledBatches;

/// The journal's intact records, found at start-up.
#[derive(Debug, Default)]
pub struct Replay {
    file: Option<File>,
    /// Per partition, its entries in round order.
    entries: HashMap<(Uuid, i32), Vec<Located>>,
    /// Highest round number seen.
    last_seq: u64,
}

/// One entry's batches within the file.
#[derive(Debug, Clone, Copy)]
struct Located {
    base_offset: i64,
    position: u64,
    len: usize,
}

impl Replay {
    /// Scans the journal at `path` (none there: nothing to replay). Records are tried at every
    /// block; torn, overwritten or never-written blocks fail their magic number or CRC and are
    /// passed over.
    pub fn scan(path: &Path) -> io::Result<Replay> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replay::default()),
            Err(e) => return Err(e),
        };
        let size = file.metadata()?.len();
        let mut records = Vec::new();
        let mut header = [0u8; HEADER_LEN];
        let mut buf = Vec::new();
        let mut position = 0;
        while position + HEADER_LEN as u64 <= size {
            file.read_exact_at(&mut header, position)?;
            let Some(found) = record::decode_header(&header) else {
                position += BLOCK;
                continue;
            };
            if position + found.len() > size {
                position += BLOCK;
                continue;
            }
            buf.resize(found.len() as usize, 0);
            file.read_exact_at(&mut buf, position)?;
            let entries = found
                .verifies(&buf)
                .then(|| record::decode_entries(&found, &buf))
                .flatten();
            match entries {
                Some(entries) => {
                    records.push((found.seq, position, entries));
                    position += record::padded(found.len());
                }
                None => position += BLOCK,
            }
        }
        records.sort_by_key(|(seq, _, _)| *seq);
        let mut replay = Replay {
            last_seq: records.last().map_or(0, |(seq, _, _)| *seq),
            ..Replay::default()
        };
        for (_, position, entries) in records {
            for entry in entries {
                replay
                    .entries
                    .entry((entry.topic_id, entry.partition))
                    .or_default()
                    .push(Located {
                        base_offset: entry.base_offset,
                        position: position + entry.start as u64,
                        len: entry.len,
                    });
            }
        }
        replay.file = Some(file);
        Ok(replay)
    }

    /// The highest round number in the journal (0 if none): new rounds continue after it.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The batches journaled for a partition at or after offset `from` (its log end after
    /// recovery), as `(base offset, batches)` in the order they were appended.
    pub fn batches_from(
        &self,
        topic_id: Uuid,
        partition: i32,
        from: i64,
    ) -> io::Result<JournaledBatches> {
        let (Some(file), Some(entries)) = (&self.file, self.entries.get(&(topic_id, partition)))
        else {
            return Ok(Vec::new());
        };
        entries
            .iter()
            .filter(|e| e.base_offset >= from)
            .map(|e| {
                let mut batches = vec![0; e.len];
                file.read_exact_at(&mut batches, e.position)?;
                Ok((e.base_offset, batches))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;

    use uuid::Uuid;

    use super::Replay;
    use crate::journal::record::tests::encoded;
    use crate::journal::record::{Entry, BLOCK};

    fn entry(id: Uuid, base_offset: i64, batches: &[u8]) -> Entry<'_> {
        Entry {
            topic_id: id,
            partition: 0,
            base_offset,
            batches: [batches, &[]],
        }
    }

    #[test]
    fn hostile_journal_files_are_scanned_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let id = Uuid::nil();
        let mut two = encoded(1, &[entry(id, 0, b"batches")]);
        two.extend(encoded(2, &[entry(id, 7, b"more"), entry(id, 9, b"")]));
        crate::hostile::never_panics(
            vec![two],
            crate::journal::record::tests::seal_record,
            |bytes| {
                std::fs::write(&path, bytes).unwrap();
                if let Ok(replay) = Replay::scan(&path) {
                    for partition in [0, 1] {
                        let _ = replay.batches_from(id, partition, 0);
                    }
                }
            },
        );
    }

    #[test]
    fn intact_records_are_found_in_round_order_and_torn_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(8 * BLOCK).unwrap();
        let id = Uuid::new_v4();
        let other = Uuid::new_v4();
        // Written after wrapping: the newer round sits before the older one.
        file.write_all_at(&encoded(8, &[entry(id, 20, b"newer")]), 0)
            .unwrap();
        let older = encoded(7, &[entry(id, 10, b"older"), entry(other, 0, b"x")]);
        file.write_all_at(&older, 2 * BLOCK).unwrap();
        let mut out = encoded(9, &[entry(id, 30, b"torn")]);
        out.truncate(30);
        file.write_all_at(&out, 5 * BLOCK).unwrap();

        let replay = Replay::scan(&path).unwrap();
        assert_eq!(replay.last_seq(), 8);
        let batches = replay.batches_from(id, 0, 0).unwrap();
        assert_eq!(
            batches,
            vec![(10, b"older".to_vec()), (20, b"newer".to_vec())]
        );
        assert_eq!(
            replay.batches_from(id, 0, 15).unwrap(),
            vec![(20, b"newer".to_vec())]
        );
        assert_eq!(replay.batches_from(other, 0, 0).unwrap().len(), 1);
        assert!(replay
            .batches_from(Uuid::new_v4(), 0, 0)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_missing_journal_replays_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let replay = Replay::scan(&dir.path().join("absent")).unwrap();
        assert_eq!(replay.last_seq(), 0);
        assert!(replay.batches_from(Uuid::nil(), 0, 0).unwrap().is_empty());
    }
}
