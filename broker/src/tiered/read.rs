//! Cutting a fetch's answer out of a remote segment's bytes: whole batches from the one
//! holding the wanted offset, up to the byte budget (at least one batch, as Kafka returns),
//! checking the framing so a corrupt object gives an error, never a panic or garbage.

use bytes::Bytes;

/// Bytes of a batch header up to and including the length field.
const LENGTH_END: usize = 12;
/// Offset of `lastOffsetDelta` in a RecordBatch v2 header.
const LAST_OFFSET_DELTA: usize = 23;
/// Smallest valid RecordBatch v2.
const MIN_BATCH: usize = 61;

/// Whole batches of `segment` (which starts at `base_offset`) from the batch holding
/// `offset`, at most `max_bytes` unless the first batch alone is larger (then only it).
/// Returns an empty slice when no batch at or after `offset` exists.
pub fn batches_from(
    segment: &Bytes,
    base_offset: i64,
    offset: i64,
    max_bytes: usize,
) -> Result<Bytes, String> {
    let mut position = 0usize;
    let mut start = None;
    while position < segment.len() {
        let header = segment
            .get(position..position + LAST_OFFSET_DELTA + 4)
            .ok_or_else(|| format!("truncated batch header at byte {position}"))?;
        let batch_base = i64::from_be_bytes(read(header, 0)?);
        let length = i32::from_be_bytes(read(header, 8)?);
        let delta = i32::from_be_bytes(read(header, LAST_OFFSET_DELTA)?);
        let size = usize::try_from(length)
            .ok()
            .map(|l| l + LENGTH_END)
            .filter(|&s| s >= MIN_BATCH && position + s <= segment.len())
            .ok_or_else(|| format!("bad batch length {length} at byte {position}"))?;
        if batch_base < base_offset || delta < 0 {
            return Err(format!(
                "batch at byte {position} claims offset {batch_base}"
            ));
        }
        match start {
            None if batch_base + i64::from(delta) >= offset => start = Some(position),
            Some(first) if position + size - first > max_bytes => {
                return Ok(segment.slice(first..position));
            }
            _ => {}
        }
        position += size;
    }
    Ok(start.map_or_else(Bytes::new, |first| segment.slice(first..position)))
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

    #[test]
    fn reads_start_at_the_batch_holding_the_offset_and_stop_at_the_budget() {
        let s = segment();
        assert_eq!(batches_from(&s, 100, 100, 10_000).map(|b| b.len()), Ok(240));
        assert_eq!(batches_from(&s, 100, 107, 10_000).map(|b| b.len()), Ok(170));
        assert_eq!(batches_from(&s, 100, 104, 150).map(|b| b.len()), Ok(150));
        // At least one batch, whatever the budget.
        assert_eq!(batches_from(&s, 100, 112, 1).map(|b| b.len()), Ok(90));
        assert_eq!(batches_from(&s, 100, 115, 1_000).map(|b| b.len()), Ok(0));
    }

    #[test]
    fn corrupt_segments_are_errors() {
        let s = segment();
        assert!(
            batches_from(&s.slice(..100), 100, 100, 10_000).is_err(),
            "truncated"
        );
        let mut bad = s.to_vec();
        bad[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(batches_from(&Bytes::from(bad), 100, 100, 10_000).is_err());
        assert!(batches_from(&Bytes::from_static(b"garbage"), 0, 0, 10).is_err());
        assert!(
            batches_from(&s, 200, 200, 10_000).is_err(),
            "offsets below the base"
        );
    }
}
