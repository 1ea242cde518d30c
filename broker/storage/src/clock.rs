//! The one wall clock: record timestamps, retention, transaction and offset expiry
//! all read it here, so tests and later a simulated clock have one place to change.
//! Durations between local events use `Instant` instead; no decision trusts another
//! machine's clock.

/// Milliseconds since the Unix epoch, as Kafka stamps records.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
