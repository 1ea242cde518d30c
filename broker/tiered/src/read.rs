//! Cutting a fetch's answer out of a remote segment: where to start (the segment's offset
//! index), and whole batches from the one holding the wanted offset up to the byte budget (at
//! least one batch, as Kafka returns), checking the framing so that a corrupt object gives an
//! error, never a panic or garbage. Pure: the caller loads the bytes (a window of the
//! segment, in cached chunks) and asks again with more when told to.

use bytes::Bytes;

/// Bytes of a batch header up to and including the length field.
const LENGTH_END: usize = 12;
/// Offset of `lastOffsetDelta` in a RecordBatch v2 header.
const LAST_OFFSET_DELTA: usize = 23;
/// Bytes of the header this reader looks at.
const HEADER: usize = LAST_OFFSET_DELTA + 4;
/// Smallest valid RecordBatch v2.
const MIN_BATCH: usize = 61;

/// What a window of a segment gives a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cut {
    /// Whole batches (empty when the segment has none at or after the offset).
    Batches(Bytes),
    /// The window must reach this many bytes (from its start) to answer.
    NeedBytes(usize),
}

/// What a look at a window of a segment (bytes from a batch boundary) found, for
/// [`super::TieredStorage`] to read on until it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Window<T> {
    /// What was looked for.
    Found(T),
    /// The window must reach this many bytes (from its start) to answer.
    NeedBytes(usize),
}

impl From<Cut> for Window<Bytes> {
    fn from(cut: Cut) -> Self {
        match cut {
            Cut::Batches(batches) => Window::Found(batches),
            Cut::NeedBytes(n) => Window::NeedBytes(n),
        }
    }
}

/// Whole batches of `window` (bytes of a segment from a batch boundary; `to_segment_end`
/// when it reaches the segment's end) from the batch holding `offset`, at most `max_bytes`
/// unless `min_one` and the first batch alone is larger (Kafka gives the first partition of
/// a fetch with data at least one whole batch, the others nothing beyond the budget).
pub fn cut(
    window: &Bytes,
    to_segment_end: bool,
    base_offset: i64,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
) -> Result<Cut, String> {
    let mut position = 0usize;
    let mut start: Option<usize> = None;
    let done = |start: Option<usize>, end: usize| {
        Ok(Cut::Batches(
            start.map_or_else(Bytes::new, |first| window.slice(first..end)),
        ))
    };
    while position < window.len() {
        let Some(header) = window.get(position..position + HEADER) else {
            if to_segment_end {
                return Err(format!(
                    "truncated batch header at byte {position} of the window"
                ));
            }
            return match start {
                Some(_) => done(start, position),
                None => Ok(Cut::NeedBytes(position + MIN_BATCH.max(HEADER))),
            };
        };
        let batch_base = i64::from_be_bytes(read(header, 0)?);
        let length = i32::from_be_bytes(read(header, 8)?);
        let delta = i32::from_be_bytes(read(header, LAST_OFFSET_DELTA)?);
        let size = usize::try_from(length)
            .ok()
            .map(|l| l + LENGTH_END)
            .filter(|&s| s >= MIN_BATCH)
            .ok_or_else(|| format!("bad batch length {length} at byte {position}"))?;
        if batch_base < base_offset || delta < 0 {
            return Err(format!(
                "batch at byte {position} claims offset {batch_base}"
            ));
        }
        let first_wanted = start.is_none() && batch_base + i64::from(delta) >= offset;
        if first_wanted && !min_one && size > max_bytes {
            return Ok(Cut::Batches(Bytes::new()));
        }
        if position + size > window.len() {
            if to_segment_end {
                return Err(format!(
                    "batch at byte {position} runs past the segment's end"
                ));
            }
            return match start {
                Some(_) => done(start, position),
                None if first_wanted => Ok(Cut::NeedBytes(position + size)),
                None => Ok(Cut::NeedBytes(position + size + MIN_BATCH)),
            };
        }
        match start {
            None if first_wanted => start = Some(position),
            Some(first) if position + size - first > max_bytes => return done(start, position),
            _ => {}
        }
        position += size;
    }
    match start {
        None if !to_segment_end => Ok(Cut::NeedBytes(window.len() + max_bytes.max(MIN_BATCH))),
        _ => done(start, window.len()),
    }
}

/// Where to start reading a segment for `offset`: the position of the last entry of its
/// offset index (Kafka's format: relative offset u32, position u32, big-endian) at or below
/// the offset, or 0 without an index or with one that points past the segment.
pub fn start_position(index: &[u8], base_offset: i64, offset: i64, segment_size: u64) -> u64 {
    let Ok(relative) = u32::try_from(offset - base_offset) else {
        return 0;
    };
    let mut position = 0u64;
    for entry in index.chunks_exact(8) {
        let (Ok(rel), Ok(pos)) = (read::<4>(entry, 0), read::<4>(entry, 4)) else {
            break;
        };
        if u32::from_be_bytes(rel) > relative {
            break;
        }
        position = u64::from(u32::from_be_bytes(pos));
    }
    if position < segment_size {
        position
    } else {
        0
    }
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], String> {
    bytes
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "short header".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A framed batch of `size` bytes at `base` holding `count` offsets (only the fields the
    /// reader looks at are filled).
    fn batch(base: i64, count: i32, size: usize) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[0..8].copy_from_slice(&base.to_be_bytes());
        b[8..12].copy_from_slice(&((size - LENGTH_END) as i32).to_be_bytes());
        b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(count - 1).to_be_bytes());
        b
    }

    fn segment() -> Bytes {
        let mut s = batch(100, 5, 70);
        s.extend(batch(105, 5, 80));
        s.extend(batch(110, 5, 90));
        Bytes::from(s)
    }

    fn len(c: Result<Cut, String>) -> Result<usize, String> {
        match c? {
            Cut::Batches(b) => Ok(b.len()),
            Cut::NeedBytes(n) => Err(format!("needs {n}")),
        }
    }

    #[test]
    fn reads_start_at_the_batch_holding_the_offset_and_stop_at_the_budget() {
        let s = segment();
        assert_eq!(len(cut(&s, true, 100, 100, 10_000, true)), Ok(240));
        assert_eq!(len(cut(&s, true, 100, 107, 10_000, true)), Ok(170));
        assert_eq!(len(cut(&s, true, 100, 104, 150, true)), Ok(150));
        // At least one batch, whatever the budget.
        assert_eq!(len(cut(&s, true, 100, 112, 1, true)), Ok(90));
        assert_eq!(len(cut(&s, true, 100, 115, 1_000, true)), Ok(0));
    }

    #[test]
    fn a_window_short_of_the_first_batch_asks_for_more_and_otherwise_returns_whole_batches() {
        let s = segment();
        // The first wanted batch is cut: more is needed, up to its end.
        assert_eq!(
            cut(&s.slice(..100), false, 100, 107, 10_000, true),
            Ok(Cut::NeedBytes(150))
        );
        assert_eq!(
            cut(&s.slice(..20), false, 100, 100, 10_000, true),
            Ok(Cut::NeedBytes(61))
        );
        // A later batch is cut: the whole ones are the answer.
        assert_eq!(
            len(cut(&s.slice(..200), false, 100, 100, 10_000, true)),
            Ok(150)
        );
        // Nothing wanted in the window yet.
        assert!(matches!(
            cut(&s.slice(..150), false, 100, 112, 10, true),
            Ok(Cut::NeedBytes(_))
        ));
    }

    #[test]
    fn without_min_one_a_first_batch_over_the_budget_gives_nothing() {
        let s = segment();
        let cut_at = |offset, max| cut(&s, true, 100, offset, max, false);
        assert_eq!(
            len(cut_at(112, 89)),
            Ok(0),
            "the 90-byte batch does not fit"
        );
        assert_eq!(len(cut_at(112, 90)), Ok(90));
        assert_eq!(
            len(cut_at(100, 160)),
            Ok(150),
            "whole batches within the budget"
        );
        assert_eq!(len(cut_at(100, 69)), Ok(0));
        // Without the whole batch in the window, none is asked for when it cannot fit.
        assert_eq!(
            cut(&s.slice(..100), false, 100, 107, 79, false),
            Ok(Cut::Batches(Bytes::new()))
        );
        assert_eq!(
            cut(&s.slice(..100), false, 100, 107, 80, false),
            Ok(Cut::NeedBytes(150))
        );
    }

    #[test]
    fn corrupt_segments_are_errors() {
        let s = segment();
        assert!(
            cut(&s.slice(..100), true, 100, 100, 10_000, true).is_err(),
            "truncated"
        );
        let mut bad = s.to_vec();
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(cut(&Bytes::from(bad), true, 100, 100, 10_000, true).is_err());
        assert!(cut(&Bytes::from_static(b"garbage"), true, 0, 0, 10, true).is_err());
        assert!(
            cut(&s, true, 200, 200, 10_000, true).is_err(),
            "offsets below the base"
        );
        assert!(cut(&Bytes::from(vec![0xff; 300]), false, 0, 0, 10, true).is_err());
    }

    #[test]
    fn the_index_gives_the_last_indexed_position_at_or_below_the_offset() {
        let mut index = Vec::new();
        for (rel, pos) in [(4u32, 70u32), (9, 150)] {
            index.extend_from_slice(&rel.to_be_bytes());
            index.extend_from_slice(&pos.to_be_bytes());
        }
        assert_eq!(start_position(&index, 100, 100, 240), 0);
        assert_eq!(start_position(&index, 100, 104, 240), 70);
        assert_eq!(start_position(&index, 100, 108, 240), 70);
        assert_eq!(start_position(&index, 100, 112, 240), 150);
        assert_eq!(
            start_position(&index, 100, 112, 100),
            0,
            "past the segment: ignored"
        );
        assert_eq!(start_position(&[], 100, 112, 240), 0);
        assert_eq!(
            start_position(&index[..5], 100, 112, 240),
            0,
            "a torn entry"
        );
    }
}
