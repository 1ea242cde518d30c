//! A client's record batch on its way to the log without a copy of its records: the fixed
//! header, which the broker rewrites (max timestamp, offsets, leader epoch, CRC), held apart
//! from the records after it, which stay the bytes of the request that carried them. The two
//! parts are written to the segment, and to the commit journal, with one vectored write.

use bytes::Bytes;

use crate::batch::{BatchView, BatchViewMut, HEADER_LEN};

/// One batch as a rewritable header and the shared records after it.
#[derive(Debug, Clone)]
pub struct SplitBatch {
    header: [u8; HEADER_LEN],
    records: Bytes,
}

impl SplitBatch {
    /// Splits `batch`, exactly one batch that [`BatchView::parse`] accepted, without copying
    /// its records; `None` when it is shorter than a header.
    pub fn new(batch: Bytes) -> Option<SplitBatch> {
        let header = batch.get(..HEADER_LEN)?.try_into().ok()?;
        Some(SplitBatch {
            header,
            records: batch.slice(HEADER_LEN..),
        })
    }

    /// The header's fields.
    pub fn view(&self) -> BatchView<'_> {
        BatchView::new_unchecked(&self.header)
    }

    /// The whole batch's size.
    pub fn len(&self) -> usize {
        HEADER_LEN + self.records.len()
    }

    /// Never: a batch has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The two parts, in the order they are stored.
    pub fn parts(&self) -> [&[u8]; 2] {
        [&self.header, &self.records]
    }

    /// Sets the base offset (not covered by the CRC).
    pub fn set_base_offset(&mut self, offset: i64) {
        self.header_mut().set_base_offset(offset);
    }

    /// Sets the partition leader epoch (not covered by the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.header_mut().set_partition_leader_epoch(epoch);
    }

    /// As [`BatchViewMut::set_max_timestamp`].
    pub fn set_max_timestamp(&mut self, max_timestamp: i64) {
        if self.view().max_timestamp() != max_timestamp {
            self.header_mut().write_max_timestamp(max_timestamp);
            self.update_crc();
        }
    }

    /// As [`BatchViewMut::set_log_append_time`].
    pub fn set_log_append_time(&mut self, now_ms: i64) {
        let view = self.view();
        if !(view.is_log_append_time() && view.max_timestamp() == now_ms) {
            self.header_mut().write_log_append_time(now_ms);
            self.update_crc();
        }
    }

    fn header_mut(&mut self) -> BatchViewMut<'_> {
        BatchViewMut::new_unchecked(&mut self.header)
    }

    fn update_crc(&mut self) {
        let crc = crc32c::crc32c_append(
            BatchView::new_unchecked(&self.header).crc_of_header_fields(),
            &self.records,
        );
        self.header_mut().write_crc(crc);
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::SplitBatch;
    use crate::batch::{BatchView, BatchViewMut};
    use crate::test_util::{batch, simple, BatchSpec};

    fn whole(split: &SplitBatch) -> Vec<u8> {
        split.parts().concat()
    }

    #[test]
    fn rewrites_match_those_of_the_whole_batch_and_keep_the_crc_valid() {
        let mut bytes: BytesMut = batch(&BatchSpec {
            timestamps: vec![10, 30, 20],
            ..BatchSpec::default()
        });
        // A client's header that disagrees with its records.
        BatchViewMut::new_unchecked(&mut bytes).set_max_timestamp(5);
        let mut split = SplitBatch::new(bytes.clone().freeze()).unwrap();
        let mut reference = bytes.to_vec();
        split.set_base_offset(42);
        split.set_partition_leader_epoch(7);
        split.set_max_timestamp(30);
        let mut view = BatchViewMut::new_unchecked(&mut reference);
        view.set_base_offset(42);
        view.set_partition_leader_epoch(7);
        view.set_max_timestamp(30);
        assert_eq!(whole(&split), reference);
        assert_eq!(
            BatchView::parse(&whole(&split)).unwrap().max_timestamp(),
            30
        );

        split.set_log_append_time(99);
        BatchViewMut::new_unchecked(&mut reference).set_log_append_time(99);
        assert_eq!(whole(&split), reference);
        let stamped = whole(&split);
        let view = BatchView::parse(&stamped).unwrap();
        assert!(view.is_log_append_time());
        assert_eq!(view.max_timestamp(), 99);
    }

    #[test]
    fn the_records_are_the_request_bytes_not_a_copy() {
        let bytes = simple(2, 1).freeze();
        let split = SplitBatch::new(bytes.clone()).unwrap();
        assert_eq!(split.parts()[1].as_ptr(), bytes[61..].as_ptr());
        assert_eq!(split.len(), bytes.len());
        assert!(SplitBatch::new(Bytes::from_static(&[0; 60])).is_none());
    }
}
