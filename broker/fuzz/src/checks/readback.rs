//! Reading acknowledged partitions back: with the harness's own Fetch and the strict decoder
//! (every stored batch must decode cleanly, and the log end must match the records present),
//! and with kcat, a real consumer, which must read the whole partition without an error and
//! see as many records as the strict decoder.

use std::time::Duration;

use super::ledger::Ledger;
use super::strict::{check_record_set, Limits, Origin};
use super::tool::kcat_consume;
use super::Failure;
use crate::client::{self, Conn};
use crate::{Error, Result};

/// Offsets past the records present before the log end counts as jumped (gaps from deleted
/// records and aborted transactions' markers are far smaller in a fuzz run).
const JUMP_SLACK: i64 = 1 << 20;
/// Most fetches per partition (bounded loop).
const MAX_FETCHES: usize = 20_000;
/// How long kcat may take per partition.
const KCAT_TIMEOUT: Duration = Duration::from_secs(15);
/// kcat reads at once.
const KCAT_PARALLEL: usize = 12;

/// What reading one partition found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionRead {
    /// Batches that decoded cleanly.
    pub batches: u64,
    /// Data records in them (control records excluded), what a consumer should see.
    pub data_records: i64,
    /// Whether any batch was defective (then consumer counts are not compared).
    pub defective: bool,
}

/// Reads back every partition the ledger touched; returns the findings. kcat reads run a few
/// at a time: a partition whose offsets jumped can keep it busy until its timeout.
pub fn check_all(
    bootstrap: &str,
    ledger: &Ledger,
    limits: &Limits,
    kcat: &str,
) -> Result<Vec<Failure>> {
    let mut failures = Vec::new();
    let mut conn = Conn::connect(bootstrap, Duration::from_secs(30))?;
    let mut reads = Vec::new();
    for (topic, partition) in ledger.touched() {
        if let Some(read) =
            strict_read(&mut conn, &topic, partition, ledger, limits, &mut failures)?
        {
            reads.push((topic, partition, read));
        }
    }
    for chunk in reads.chunks(KCAT_PARALLEL) {
        let found: Vec<Option<Failure>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|(t, p, r)| {
                    let read = move || kcat_read(kcat, bootstrap, t, *p, r);
                    (t, *p, scope.spawn(move || crate::unwind::catch(read)))
                })
                .collect();
            handles
                .into_iter()
                .map(|(t, p, h)| {
                    // A panicking read is a finding, never swallowed.
                    let caught = h.join().unwrap_or_else(|payload| {
                        Err(crate::unwind::payload_text(payload.as_ref()))
                    });
                    caught.unwrap_or_else(|message| {
                        Some(Failure::HarnessPanic {
                            place: format!("the kcat read-back of {t}-{p}"),
                            // Named by the caller (`Failure::in_round`).
                            round: 0,
                            seed: 0,
                            message,
                            index: None,
                            case: None,
                            recent: Vec::new(),
                        })
                    })
                })
                .collect()
        });
        failures.extend(found.into_iter().flatten());
    }
    Ok(failures)
}

/// Fetches a partition from its log start to its high watermark through the strict decoder.
/// None when the topic is gone (deleted by a fuzzed DeleteTopics).
fn strict_read(
    conn: &mut Conn,
    topic: &str,
    partition: i32,
    ledger: &Ledger,
    limits: &Limits,
    failures: &mut Vec<Failure>,
) -> Result<Option<PartitionRead>> {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    let mut read = PartitionRead::default();
    let mut offset = 0i64;
    let mut max_bytes = 8 << 20;
    let mut start = None;
    for _ in 0..MAX_FETCHES {
        let f = client::fetch(conn, topic, partition, offset, max_bytes)?;
        match f.error_code {
            0 => {}
            UNKNOWN_TOPIC_OR_PARTITION | 100 => return Ok(None),
            OFFSET_OUT_OF_RANGE if offset < f.log_start_offset => {
                offset = f.log_start_offset;
                continue;
            }
            e => {
                return Err(Error::Setup(format!(
                    "reading back {topic}-{partition} at {offset}: error {e}"
                )))
            }
        }
        let start = *start.get_or_insert(f.log_start_offset.max(0));
        if offset >= f.high_watermark {
            // Offsets come from the broker: nothing here may overflow on a hostile one.
            let spanned = f.high_watermark.saturating_sub(start);
            let present = read.data_records.saturating_add(read.batches as i64);
            if spanned > present.saturating_add(JUMP_SLACK) {
                failures.push(Failure::OffsetJump {
                    topic: topic.to_string(),
                    partition,
                    log_end: f.high_watermark,
                    records: read.data_records,
                });
            }
            return Ok(Some(read));
        }
        let checked = check_record_set(&f.records, limits, Origin::Fetched);
        if checked.is_empty() {
            if f.records.is_empty() || max_bytes >= 256 << 20 {
                // Nothing more to read below the high watermark: treat as the end.
                return Ok(Some(read));
            }
            max_bytes = (max_bytes * 4).min(256 << 20);
            continue;
        }
        for batch in checked {
            match batch {
                Ok(info) => {
                    read.batches += 1;
                    if !info.is_control() {
                        // Consumers skip the records of the first batch below the log start
                        // (DeleteRecords moves it inside a batch); producer batches number
                        // their records contiguously from the base offset.
                        let below = start
                            .saturating_sub(info.header.base_offset)
                            .clamp(0, i64::from(info.records));
                        read.data_records = read
                            .data_records
                            .saturating_add(i64::from(info.records) - below);
                    }
                    offset = info.next_offset();
                }
                Err((base, defect)) => {
                    read.defective = true;
                    let base = base.unwrap_or(offset);
                    failures.push(Failure::StoredInvalid {
                        topic: topic.to_string(),
                        partition,
                        offset: base,
                        defect: defect.to_string(),
                        acked_by: ledger.at(topic, partition, base).map(|a| a.case.clone()),
                    });
                    offset = skip_past(&f.records, base).max(base.saturating_add(1));
                }
            }
        }
    }
    Ok(Some(read))
}

/// The offset after a defective batch, from its header's lastOffsetDelta when readable.
fn skip_past(records: &[u8], base: i64) -> i64 {
    let mut pos: usize = 0;
    while pos.saturating_add(27) <= records.len() {
        let b = &records[pos..];
        let batch_base = i64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let len = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        if batch_base == base {
            let delta = i32::from_be_bytes([b[23], b[24], b[25], b[26]]);
            return base
                .saturating_add(i64::from(delta.max(0)))
                .saturating_add(1);
        }
        pos = pos
            .saturating_add(12)
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
    }
    base.saturating_add(1)
}

/// kcat reads the whole partition; it must exit cleanly without errors and, when every batch
/// was valid, print as many records as the strict decoder counted.
fn kcat_read(
    kcat: &str,
    bootstrap: &str,
    topic: &str,
    partition: i32,
    read: &PartitionRead,
) -> Option<Failure> {
    let fail = |detail: String| Failure::Consumer {
        tool: "kcat",
        topic: topic.to_string(),
        partition,
        detail,
    };
    let out = kcat_consume(
        kcat,
        bootstrap,
        topic,
        partition,
        &[
            "-f",
            "%o\\n",
            "-X",
            "fetch.message.max.bytes=16777216",
            "-X",
            "check.crcs=true",
        ],
        KCAT_TIMEOUT,
    );
    let out = match out {
        Ok(o) => o,
        Err(e) => return Some(fail(e)),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("error"))
        .take(5)
        .collect();
    if !out.status.success() || !errors.is_empty() {
        return Some(fail(format!("{}; {}", out.status, errors.join(" | "))));
    }
    let seen = String::from_utf8_lossy(&out.stdout).lines().count() as i64;
    (!read.defective && seen != read.data_records).then(|| {
        fail(format!(
            "read {seen} records, the strict decoder {}",
            read.data_records
        ))
    })
}
