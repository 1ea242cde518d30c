//! Tiered storage's Prometheus metrics: what the bucket holds, how far uploads lag, remote
//! fetches, failures by kind and upload latency (the signals an upload-lag alert needs).

use prometheus::{exponential_buckets, Histogram, IntCounterVec, IntGaugeVec, Registry};
use tributary_metrics::Registrar;

/// Registered in the broker's registry, exported with its other metrics.
#[derive(Clone)]
pub struct TieredMetrics {
    /// Bytes of the remote log per partition.
    pub remote_bytes: IntGaugeVec,
    /// Closed, stable segments not uploaded yet, per partition.
    pub upload_lag_segments: IntGaugeVec,
    /// Their bytes.
    pub upload_lag_bytes: IntGaugeVec,
    /// Segment bytes uploaded per topic.
    pub uploaded_bytes: IntCounterVec,
    /// Fetches served from the bucket per topic.
    pub remote_fetches: IntCounterVec,
    /// Fetches of the remote log answered with an error per topic: the bucket failed, or did
    /// not answer in time (Kafka's RemoteFetchErrorsPerSec).
    pub remote_fetch_errors: IntCounterVec,
    /// Failures by kind (store, corrupt, manifest, ...).
    pub errors: IntCounterVec,
    /// Time to upload one segment with its indexes and the manifest updates.
    pub upload_seconds: Histogram,
}

/// The table of tiered storage's metrics, in the order of [`TieredMetrics`]' fields.
mod defs {
    use tributary_metrics::Def;

    const PARTITION: &[&str] = &["topic", "partition"];
    const TOPIC: &[&str] = &["topic"];

    pub(super) const REMOTE_BYTES: Def = Def {
        name: "tributary_tiered_remote_log_bytes",
        help: "Bytes of the partition's log held in remote storage",
        labels: PARTITION,
    };
    pub(super) const UPLOAD_LAG_SEGMENTS: Def = Def {
        name: "tributary_tiered_upload_lag_segments",
        help: "Closed stable segments of the partition not yet in remote storage",
        labels: PARTITION,
    };
    pub(super) const UPLOAD_LAG_BYTES: Def = Def {
        name: "tributary_tiered_upload_lag_bytes",
        help: "Bytes of closed stable segments not yet in remote storage",
        labels: PARTITION,
    };
    pub(super) const UPLOADED_BYTES: Def = Def {
        name: "tributary_tiered_uploaded_bytes_total",
        help: "Segment bytes copied to remote storage",
        labels: TOPIC,
    };
    pub(super) const REMOTE_FETCHES: Def = Def {
        name: "tributary_tiered_remote_fetches_total",
        help: "Fetches answered from remote storage",
        labels: TOPIC,
    };
    pub(super) const REMOTE_FETCH_ERRORS: Def = Def {
        name: "tributary_tiered_remote_fetch_errors_total",
        help: "Fetches of the remote log answered with a retriable error (the bucket failed or did not answer in time)",
        labels: TOPIC,
    };
    pub(super) const ERRORS: Def = Def {
        name: "tributary_tiered_errors_total",
        help: "Remote storage failures by kind",
        labels: &["kind"],
    };
    pub(super) const UPLOAD_SECONDS: Def = Def {
        name: "tributary_tiered_upload_seconds",
        help: "Time to upload one segment to remote storage",
        labels: &[],
    };
}

impl TieredMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<TieredMetrics, prometheus::Error> {
        let r = Registrar(registry);
        Ok(TieredMetrics {
            remote_bytes: r.gauge_vec(&defs::REMOTE_BYTES)?,
            upload_lag_segments: r.gauge_vec(&defs::UPLOAD_LAG_SEGMENTS)?,
            upload_lag_bytes: r.gauge_vec(&defs::UPLOAD_LAG_BYTES)?,
            uploaded_bytes: r.counter_vec(&defs::UPLOADED_BYTES)?,
            remote_fetches: r.counter_vec(&defs::REMOTE_FETCHES)?,
            remote_fetch_errors: r.counter_vec(&defs::REMOTE_FETCH_ERRORS)?,
            errors: r.counter_vec(&defs::ERRORS)?,
            upload_seconds: r
                .histogram(&defs::UPLOAD_SECONDS, &exponential_buckets(0.005, 2.0, 14)?)?,
        })
    }
}
