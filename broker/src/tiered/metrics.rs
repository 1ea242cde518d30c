//! Tiered storage's Prometheus metrics: what the bucket holds, how far uploads lag, remote
//! fetches, failures by kind and upload latency (the signals an upload-lag alert needs).

use prometheus::{
    exponential_buckets, histogram_opts, opts, Histogram, IntCounterVec, IntGaugeVec, Registry,
};

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

impl TieredMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<TieredMetrics, prometheus::Error> {
        let partition = &["topic", "partition"];
        let gauge = |name: &str, help: &str| -> Result<IntGaugeVec, prometheus::Error> {
            let g = IntGaugeVec::new(opts!(name, help), partition)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(opts!(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let upload_seconds = Histogram::with_opts(histogram_opts!(
            "tributary_tiered_upload_seconds",
            "Time to upload one segment to remote storage",
            exponential_buckets(0.005, 2.0, 14)?
        ))?;
        registry.register(Box::new(upload_seconds.clone()))?;
        Ok(TieredMetrics {
            remote_bytes: gauge(
                "tributary_tiered_remote_log_bytes",
                "Bytes of the partition's log held in remote storage",
            )?,
            upload_lag_segments: gauge(
                "tributary_tiered_upload_lag_segments",
                "Closed stable segments of the partition not yet in remote storage",
            )?,
            upload_lag_bytes: gauge(
                "tributary_tiered_upload_lag_bytes",
                "Bytes of closed stable segments not yet in remote storage",
            )?,
            uploaded_bytes: counter(
                "tributary_tiered_uploaded_bytes_total",
                "Segment bytes copied to remote storage",
                &["topic"],
            )?,
            remote_fetches: counter(
                "tributary_tiered_remote_fetches_total",
                "Fetches answered from remote storage",
                &["topic"],
            )?,
            remote_fetch_errors: counter(
                "tributary_tiered_remote_fetch_errors_total",
                "Fetches of the remote log answered with a retriable error (the bucket failed or did not answer in time)",
                &["topic"],
            )?,
            errors: counter(
                "tributary_tiered_errors_total",
                "Remote storage failures by kind",
                &["kind"],
            )?,
            upload_seconds,
        })
    }
}
