//! Zero-copy fetch responses: a Fetch (or ShareFetch) response frame whose record sets are
//! ranges of segment files, sent from the file with `sendfile` on a plaintext connection, as Kafka sends its
//! `FileRecords` (`TransferableRecords`), instead of being read into memory and copied into
//! the frame.
//!
//! The frame is encoded as usual with a one-byte placeholder for each such record set, twice
//! with two different placeholder bytes: the bytes where the two encodings differ are exactly
//! the placeholders, in the response's order. Each placeholder's length prefix is then
//! rewritten for the real length and the frame is cut there into [`Part`]s: encoded bytes, the
//! file range, encoded bytes. What the client receives is byte for byte the frame the copy
//! path encodes ([`FrameParts::load`] builds it, for a connection that cannot send from files).
//!
//! A planned range stays what it was while the response waits to be sent: appends only add
//! bytes past it, a deleted or compacted segment stays readable through the open handle the
//! plan holds, and a truncation in place waits for a send under way and makes later sends of
//! the range fail ([`ReadPlan::while_unchanged`]), which closes the connection rather than send
//! other bytes (the frame's length was already sent).

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{FetchResponse, ShareFetchResponse};
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use prometheus::IntCounter;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter, Interest};
use tokio::net::TcpStream;

use crate::protocol::{encode_response, FrameError};
use crate::storage::ReadPlan;

/// Fetch versions from which record sets are COMPACT_RECORDS (an unsigned varint length + 1).
const FIRST_FLEXIBLE_FETCH: i16 = 12;
/// The most one `sendfile` call is asked for: a send stays short, so a truncation of the file
/// waiting for it does not wait long.
const MAX_SENDFILE_CHUNK: usize = 1 << 20;

/// One piece of a response frame.
#[derive(Debug, Clone)]
pub enum Part {
    /// Encoded bytes, sent as they are.
    Bytes(Bytes),
    /// A record set: whole batches of a segment file, sent from the file.
    File(ReadPlan),
}

/// A response frame (its size prefix included) as encoded bytes and segment file ranges.
#[derive(Debug, Clone)]
pub struct FrameParts {
    parts: Vec<Part>,
}

impl FrameParts {
    /// The parts, in the order they are sent.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The frame's length on the wire, size prefix included.
    pub fn len(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Bytes(bytes) => bytes.len(),
                Part::File(plan) => plan.length,
            })
            .sum()
    }

    /// True for a frame of no bytes (never one [`encode_fetch`] makes).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame in memory, its record sets read from their files: the copy path, for a
    /// connection that cannot send from files. Fails as [`ReadPlan::load`] does.
    pub fn load(&self) -> io::Result<Bytes> {
        let mut frame = BytesMut::with_capacity(self.len());
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) => frame.extend_from_slice(bytes),
                Part::File(plan) => frame.extend_from_slice(&plan.load()?),
            }
        }
        Ok(frame.freeze())
    }
}

/// The record sets of a response to send from their files: for each topic of its
/// `responses` and each of that topic's `partitions`, in order, the range whose batches the
/// partition carries, or `None` for a partition whose records (if any) are in the response
/// itself. Those partitions' `records` are empty until encoded.
pub type FileRecords = Vec<Vec<Option<ReadPlan>>>;

/// A response whose partitions carry record sets that may be sent from files.
pub trait RecordSets: Encodable + HeaderVersion {
    /// Whether `version` encodes record sets as COMPACT_RECORDS (an unsigned varint length
    /// + 1) rather than with an INT32 length.
    fn compact_records(version: i16) -> bool;
    /// The record set of the `p`-th partition of the `t`-th topic.
    fn records_mut(&mut self, t: usize, p: usize) -> Option<&mut Option<Bytes>>;
}

impl RecordSets for FetchResponse {
    fn compact_records(version: i16) -> bool {
        version >= FIRST_FLEXIBLE_FETCH
    }

    fn records_mut(&mut self, t: usize, p: usize) -> Option<&mut Option<Bytes>> {
        let partition = self.responses.get_mut(t)?.partitions.get_mut(p)?;
        Some(&mut partition.records)
    }
}

impl RecordSets for ShareFetchResponse {
    /// Flexible in every version.
    fn compact_records(_: i16) -> bool {
        true
    }

    fn records_mut(&mut self, t: usize, p: usize) -> Option<&mut Option<Bytes>> {
        let partition = self.responses.get_mut(t)?.partitions.get_mut(p)?;
        Some(&mut partition.records)
    }
}

/// What encoding a response with [`FileRecords`] gave.
#[derive(Debug)]
pub enum EncodedFetch {
    /// The whole frame in memory: no record set is sent from a file.
    Frame(Bytes),
    /// Encoded bytes and file ranges.
    Parts(FrameParts),
}

/// Encodes `response` as the frame answering request `correlation_id` at `version`, the
/// record sets `files` names sent from their files ([`FileRecords`]). Fails as
/// [`encode_response`] does, or when `files` does not match the response's shape; the
/// partitions sent from files are left with placeholder records.
pub fn encode_fetch<R: RecordSets>(
    correlation_id: i32,
    version: i16,
    response: &mut R,
    files: &FileRecords,
) -> Result<EncodedFetch, FrameError> {
    let planned: Vec<(usize, usize)> = files
        .iter()
        .enumerate()
        .flat_map(|(t, partitions)| {
            partitions
                .iter()
                .enumerate()
                .filter(|(_, plan)| plan.as_ref().is_some_and(|p| !p.is_empty()))
                .map(move |(p, _)| (t, p))
        })
        .collect();
    if planned.is_empty() {
        return encode_response(correlation_id, version, response).map(EncodedFetch::Frame);
    }
    let mismatch = || FrameError::Encode("file record sets do not match the response".into());
    let placeholders = |response: &mut R, byte: &'static [u8; 1]| {
        for &(t, p) in &planned {
            *response.records_mut(t, p).ok_or_else(mismatch)? = Some(Bytes::from_static(byte));
        }
        Ok::<(), FrameError>(())
    };
    placeholders(response, &[0x00])?;
    let zeros = encode_response(correlation_id, version, response)?;
    placeholders(response, &[0xff])?;
    let ones = encode_response(correlation_id, version, response)?;
    if zeros.len() != ones.len() {
        return Err(mismatch());
    }
    let at: Vec<usize> = (0..zeros.len()).filter(|&i| zeros[i] != ones[i]).collect();
    if at.len() != planned.len() {
        return Err(mismatch());
    }
    let plans = planned.iter().map(|&(t, p)| files[t][p].clone());
    let flexible = R::compact_records(version);
    let placeholder_prefix: &[u8] = if flexible { &[2] } else { &[0, 0, 0, 1] };
    let mut parts = Vec::with_capacity(2 * at.len() + 1);
    let mut head = BytesMut::with_capacity(zeros.len() + 4 * at.len());
    let mut size = u64::from(u32::from_be_bytes(
        zeros[..4].try_into().map_err(|_| mismatch())?,
    ));
    head.put_u32(0); // the frame's size, once known
    let mut from = 4;
    for (position, plan) in at.into_iter().zip(plans) {
        let plan = plan.ok_or_else(mismatch)?;
        let prefix_at = position
            .checked_sub(placeholder_prefix.len())
            .filter(|&start| start >= from)
            .ok_or_else(mismatch)?;
        if &zeros[prefix_at..position] != placeholder_prefix {
            return Err(mismatch());
        }
        head.extend_from_slice(&zeros[from..prefix_at]);
        let before = head.len();
        if flexible {
            let length = u32::try_from(plan.length)
                .ok()
                .and_then(|l| l.checked_add(1))
                .ok_or_else(mismatch)?;
            put_unsigned_varint(&mut head, length);
        } else {
            head.put_i32(i32::try_from(plan.length).map_err(|_| mismatch())?);
        }
        let prefix = (head.len() - before) as u64;
        size = size - placeholder_prefix.len() as u64 - 1 + prefix + plan.length as u64;
        parts.push(Part::Bytes(head.split().freeze()));
        parts.push(Part::File(plan));
        from = position + 1;
    }
    head.extend_from_slice(&zeros[from..]);
    parts.push(Part::Bytes(head.freeze()));
    let size = u32::try_from(size)
        .ok()
        .filter(|&s| i32::try_from(s).is_ok())
        .ok_or_else(|| FrameError::Encode("response too large".into()))?;
    let Some(Part::Bytes(first)) = parts.first_mut() else {
        return Err(mismatch());
    };
    let mut sized = BytesMut::from(&first[..]);
    sized[..4].copy_from_slice(&size.to_be_bytes());
    *first = sized.freeze();
    Ok(EncodedFetch::Parts(FrameParts { parts }))
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// The connection a writer sends on, when it is a plain TCP stream that file ranges can be
/// sent to with `sendfile`.
pub trait SendsFiles {
    /// The TCP stream, unless the writer transforms what it sends (TLS).
    fn tcp_stream(&self) -> Option<&TcpStream> {
        None
    }
}

impl SendsFiles for tokio::net::tcp::OwnedWriteHalf {
    fn tcp_stream(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<S> SendsFiles for tokio::io::WriteHalf<S> {}

/// Holds back (`on`) or lets go (`off`) the partial segments of `writer`'s TCP stream
/// (`TCP_CORK`): while responses with file ranges are written, each flush before a `sendfile`
/// and each short encoded part would otherwise leave as a packet of its own on a `TCP_NODELAY`
/// socket. True when the stream is a plain TCP stream and took the setting.
pub fn cork<W: SendsFiles>(writer: &W, on: bool) -> bool {
    let Some(stream) = writer.tcp_stream() else {
        return false;
    };
    match rustix::net::sockopt::set_tcp_cork(stream, on) {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, on, "cannot set TCP_CORK");
            false
        }
    }
}

/// Writes `frame` to `writer`: its encoded bytes through the buffer, its file ranges with
/// `sendfile` on a plain TCP stream (counted in `sent_from_files`), else read and written
/// (the copy path, as also when a file cannot be sent from). An error closes the connection.
pub async fn write_parts<W: AsyncWrite + SendsFiles + Unpin>(
    writer: &mut BufWriter<W>,
    frame: &FrameParts,
    sent_from_files: &IntCounter,
) -> io::Result<()> {
    for part in frame.parts() {
        match part {
            Part::Bytes(bytes) => writer.write_all(bytes).await?,
            Part::File(plan) if writer.get_ref().tcp_stream().is_some() => {
                writer.flush().await?;
                if let Some(stream) = writer.get_ref().tcp_stream() {
                    send_file(stream, plan, sent_from_files).await?;
                }
            }
            Part::File(plan) => writer.write_all(&plan.load()?).await?,
        }
    }
    Ok(())
}

/// Sends the range `plan` names from its file to `stream` with `sendfile`, as the socket
/// takes it; what `sendfile` cannot send (a file system without it) is read and written.
pub async fn send_file(
    stream: &TcpStream,
    plan: &ReadPlan,
    sent_from_files: &IntCounter,
) -> io::Result<()> {
    let end = plan.position + plan.length as u64;
    let mut offset = plan.position;
    while offset < end {
        let want = usize::try_from(end - offset)
            .unwrap_or(usize::MAX)
            .min(MAX_SENDFILE_CHUNK);
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            plan.while_unchanged(|file| {
                let mut at = offset;
                rustix::fs::sendfile(stream, file, Some(&mut at), want).map_err(io::Error::from)
            })
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the segment file ends before the range planned from it",
                ))
            }
            Ok(n) => {
                offset += n as u64;
                sent_from_files.inc_by(n as u64);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if cannot_sendfile(&e) => {
                tracing::debug!(error = %e, "sendfile not possible here; copying the record set");
                return copy_rest(stream, plan, offset).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `sendfile` failed because it cannot work with these descriptors (not because of
/// the connection or the range).
fn cannot_sendfile(error: &io::Error) -> bool {
    let errno = error.raw_os_error();
    errno == Some(rustix::io::Errno::INVAL.raw_os_error())
        || errno == Some(rustix::io::Errno::NOSYS.raw_os_error())
        || errno == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
}

/// Reads the range of `plan` from `offset` on and writes it to `stream`.
async fn copy_rest(stream: &TcpStream, plan: &ReadPlan, offset: u64) -> io::Result<()> {
    let end = plan.position + plan.length as u64;
    let len = usize::try_from(end - offset).map_err(io::Error::other)?;
    let mut rest = vec![0; len];
    plan.while_unchanged(|file| {
        std::os::unix::fs::FileExt::read_exact_at(file, &mut rest, offset)
    })?;
    let mut written = 0;
    while written < rest.len() {
        stream.writable().await?;
        match stream.try_write(&rest[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpSocket};

    use super::*;
    use crate::storage::test_util::{append, batch, open, BatchSpec};
    use crate::storage::{LogConfig, PartitionLog};

    /// Socket buffers small enough that a few MiB cannot all be in flight: a send stays
    /// under way until the reader reads.
    const SMALL_BUFFER: u32 = 64 * 1024;

    /// A connected pair of plain TCP streams with small buffers: (sending, receiving).
    async fn pair() -> (TcpStream, TcpStream) {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(SMALL_BUFFER).expect("rcvbuf");
        socket
            .bind("127.0.0.1:0".parse().expect("address"))
            .expect("bind");
        let listener: TcpListener = socket.listen(1).expect("listen");
        let address = listener.local_addr().expect("address");
        let client = TcpSocket::new_v4().expect("socket");
        client.set_send_buffer_size(SMALL_BUFFER).expect("sndbuf");
        let (sending, accepted) = tokio::join!(client.connect(address), listener.accept());
        (sending.expect("connect"), accepted.expect("accept").0)
    }

    /// A log of `count` batches of 512 KiB (each one's bytes depending on its timestamp), in
    /// segments of `segment_bytes`.
    fn big_log(dir: &std::path::Path, count: usize, segment_bytes: u64) -> PartitionLog {
        let mut log = open(
            dir,
            LogConfig {
                segment_bytes,
                max_message_bytes: 2 << 20,
                ..LogConfig::default()
            },
        );
        for i in 0..count {
            append(&mut log, big_batch(1_000 + i as i64));
        }
        log.set_high_watermark(log.log_end_offset());
        log
    }

    fn big_batch(timestamp: i64) -> bytes::BytesMut {
        batch(&BatchSpec {
            records: 32,
            value_len: 16 << 10,
            timestamp,
            ..BatchSpec::default()
        })
    }

    /// Starts sending `plan` on `sending`; returns once the send is under way and stalled on
    /// the receiver, with the task sending it.
    async fn stalled_send(
        sending: TcpStream,
        plan: &ReadPlan,
        counter: &IntCounter,
    ) -> tokio::task::JoinHandle<io::Result<()>> {
        let (task_plan, task_counter) = (plan.clone(), counter.clone());
        let task = tokio::spawn(async move {
            let sent = send_file(&sending, &task_plan, &task_counter).await;
            drop(sending);
            sent
        });
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = counter.get();
            if now > 0 && now == last {
                break;
            }
            last = now;
        }
        assert!(
            (counter.get() as usize) < plan.length,
            "the send must still be under way ({} of {} bytes sent)",
            counter.get(),
            plan.length
        );
        task
    }

    async fn read_all(mut receiving: TcpStream) -> Vec<u8> {
        let mut received = Vec::new();
        let _ = receiving.read_to_end(&mut received).await;
        received
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_under_way_keeps_its_bytes_when_the_segment_is_deleted_and_rolled_past() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = big_log(dir.path(), 8, 3 << 20);
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        assert!(plan.length > 2 << 20, "the first segment's batches");
        let expected = plan.load().expect("load");
        let counter = IntCounter::new("sent", "sent").expect("counter");
        let (sending, receiving) = pair().await;
        let task = stalled_send(sending, &plan, &counter).await;
        // The planned segment goes: rolled past, then deleted (DeleteRecords), and the
        // next segments are written with other bytes.
        for i in 0..8 {
            append(&mut log, big_batch(9_000 + i));
        }
        log.set_high_watermark(log.log_end_offset());
        let end = log.log_end_offset();
        log.delete_records(end - 1).expect("delete records");
        assert!(log.log_start_offset() > 0);
        assert!(!dir.path().join(format!("{:020}.log", 0)).exists());
        let received = read_all(receiving).await;
        task.await.expect("task").expect("the send completes");
        assert_eq!(received.len(), expected.len());
        assert!(
            received == expected[..],
            "the bytes sent are the planned ones"
        );
        assert_eq!(counter.get() as usize, expected.len());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_send_under_way_stops_rather_than_send_bytes_a_truncation_rewrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = big_log(dir.path(), 8, 64 << 20);
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        let expected = plan.load().expect("load");
        let counter = IntCounter::new("sent", "sent").expect("counter");
        let (sending, receiving) = pair().await;
        let task = stalled_send(sending, &plan, &counter).await;
        // A follower's truncation: everything from the second batch goes, and other batches
        // take its place in the same file.
        log.truncate_to(32).expect("truncate");
        for i in 0..7 {
            append(&mut log, big_batch(7_000 + i));
        }
        assert_eq!(log.log_end_offset(), 8 * 32);
        let received = read_all(receiving).await;
        let sent = task.await.expect("task");
        assert!(sent.is_err(), "the send must fail: {sent:?}");
        assert!(received.len() < expected.len());
        assert!(
            received == expected[..received.len()],
            "only planned bytes were sent ({} bytes)",
            received.len()
        );
    }

    #[tokio::test]
    async fn a_plain_tcp_stream_is_corked_and_uncorked_and_other_streams_are_left_alone() {
        let (sending, _receiving) = pair().await;
        let (_, write_half) = sending.into_split();
        assert!(cork(&write_half, true), "a plain TCP stream takes TCP_CORK");
        let corked = rustix::net::sockopt::tcp_cork(write_half.as_ref()).expect("getsockopt");
        assert!(corked);
        assert!(cork(&write_half, false));
        let corked = rustix::net::sockopt::tcp_cork(write_half.as_ref()).expect("getsockopt");
        assert!(!corked, "let go, nothing is held back");
        let (_, other) = tokio::io::split(tokio::io::empty());
        assert!(
            !cork(&other, true),
            "a stream that is not plain TCP (TLS) is not corked"
        );
    }

    #[tokio::test]
    async fn a_range_cut_before_it_is_sent_sends_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = big_log(dir.path(), 2, 64 << 20);
        let plan = log.read_plan(0, usize::MAX, i64::MAX, true).expect("plan");
        log.truncate_to(0).expect("truncate");
        let counter = IntCounter::new("sent", "sent").expect("counter");
        let (sending, receiving) = pair().await;
        let sent = send_file(&sending, &plan, &counter).await;
        drop(sending);
        assert!(sent.is_err());
        assert!(read_all(receiving).await.is_empty());
        assert_eq!(counter.get(), 0);
    }
}
