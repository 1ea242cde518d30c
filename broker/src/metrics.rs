//! Prometheus metrics, named after the JMX-exporter names Kafka operators already chart and
//! alert on (`kafka_server_brokertopicmetrics_*`, `kafka_network_requestmetrics_*`, ...).

use prometheus::{
    exponential_buckets, histogram_opts, opts, Encoder, Histogram, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};

/// The broker's metrics; one instance per broker, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// Bytes appended per topic.
    pub bytes_in: IntCounterVec,
    /// Bytes returned to fetches per topic.
    pub bytes_out: IntCounterVec,
    /// Records appended per topic.
    pub messages_in: IntCounterVec,
    /// Produce requests refused per topic and error.
    pub failed_produce: IntCounterVec,
    /// Requests per API.
    pub requests: IntCounterVec,
    /// Time from a request's arrival to its response being written, per API.
    pub request_seconds: HistogramVec,
    /// Requests that closed their connection (malformed, unknown API or version).
    pub rejected_requests: IntCounter,
    /// Open client connections.
    pub connections: IntGauge,
    /// Partitions hosted.
    pub partitions: IntGauge,
    /// Partitions with fewer in-sync replicas than replicas.
    pub under_replicated: IntGauge,
    /// Partitions without a leader.
    pub offline: IntGauge,
    /// ISR shrinks.
    pub isr_shrinks: IntCounter,
    /// ISR expansions.
    pub isr_expands: IntCounter,
    /// ISR changes a leader could not record (the metadata changed first, or the write failed).
    pub failed_isr_updates: IntCounter,
    /// Partitions this broker leads.
    pub leaders: IntGauge,
    /// Led partitions whose ISR is smaller than their min.insync.replicas.
    pub under_min_isr: IntGauge,
    /// Led partitions with a reassignment in progress.
    pub reassigning: IntGauge,
    /// The largest lag, in records, of any follower replica on this broker behind its
    /// leader's high watermark (Kafka's ReplicaFetcherManager MaxLag, clientId=Replica).
    pub replica_max_lag: IntGauge,
    /// Duration of each group-commit fsync.
    pub flush_seconds: Histogram,
    /// Consumer group lag per committed partition.
    pub consumer_lag: IntGaugeVec,
    /// Log size per partition.
    pub log_size: IntGaugeVec,
    /// Log end offset per partition.
    pub log_end_offset: IntGaugeVec,
    /// Log start offset per partition.
    pub log_start_offset: IntGaugeVec,
}

/// Metric construction failed (a duplicate or invalid name: a programming error caught by the
/// unit test below).
#[derive(Debug, thiserror::Error)]
#[error("cannot register metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates and registers every broker metric.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let topic = &["topic"];
        let partition = &["topic", "partition"];
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(opts!(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(opts!(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let request_seconds = HistogramVec::new(
            histogram_opts!(
                "kafka_network_requestmetrics_request_duration_seconds",
                "Time from request arrival to response written, per API",
                exponential_buckets(0.0001, 2.0, 18)?
            ),
            &["request"],
        )?;
        registry.register(Box::new(request_seconds.clone()))?;
        let flush_seconds = Histogram::with_opts(histogram_opts!(
            "kafka_log_logflushstats_flush_duration_seconds",
            "Duration of each group-commit fsync of a partition",
            exponential_buckets(0.00005, 2.0, 18)?
        ))?;
        registry.register(Box::new(flush_seconds.clone()))?;
        Ok(Metrics {
            bytes_in: counter_vec(
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Bytes appended by producers",
                topic,
            )?,
            bytes_out: counter_vec(
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Bytes returned to fetch requests",
                topic,
            )?,
            messages_in: counter_vec(
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended by producers",
                topic,
            )?,
            failed_produce: counter_vec(
                "kafka_server_brokertopicmetrics_failedproducerequests_total",
                "Produce requests refused, per topic and error",
                &["topic", "error"],
            )?,
            requests: counter_vec(
                "kafka_network_requestmetrics_requests_total",
                "Requests received, per API",
                &["request"],
            )?,
            request_seconds,
            flush_seconds,
            rejected_requests: counter(
                "kafka_network_requestmetrics_rejected_total",
                "Requests that closed their connection: malformed, unknown API or version",
            )?,
            connections: gauge(
                "kafka_server_socketservermetrics_connections",
                "Open client connections",
            )?,
            partitions: gauge(
                "kafka_server_replicamanager_partitioncount",
                "Partitions hosted by this broker",
            )?,
            under_replicated: gauge(
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Led partitions whose ISR is smaller than their replica set (replicas a reassignment adds not counted, KIP-352)",
            )?,
            reassigning: gauge(
                "kafka_server_replicamanager_reassigningpartitions",
                "Led partitions with a reassignment in progress",
            )?,
            offline: gauge(
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without an active leader",
            )?,
            isr_shrinks: counter(
                "kafka_server_replicamanager_isrshrinks_total",
                "In-sync replica set shrinks",
            )?,
            isr_expands: counter(
                "kafka_server_replicamanager_isrexpands_total",
                "In-sync replica set expansions",
            )?,
            failed_isr_updates: counter(
                "kafka_server_replicamanager_failedisrupdates_total",
                "ISR changes a leader could not record",
            )?,
            leaders: gauge(
                "kafka_server_replicamanager_leadercount",
                "Partitions this broker leads",
            )?,
            under_min_isr: gauge(
                "kafka_server_replicamanager_underminisrpartitioncount",
                "Led partitions with fewer in-sync replicas than min.insync.replicas",
            )?,
            replica_max_lag: {
                let g = IntGauge::with_opts(
                    opts!(
                        "kafka_server_replicafetchermanager_maxlag",
                        "Largest lag in records of a follower replica behind its leader's high watermark"
                    )
                    // Kafka's clientId tag, in the snake_case Prometheus asks of label names.
                    .const_label("client_id", "Replica"),
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            consumer_lag: gauge_vec(
                "kafka_consumergroup_lag",
                "Records between a group's committed offset and the high watermark",
                &["group", "topic", "partition"],
            )?,
            log_size: gauge_vec(
                "kafka_log_log_size",
                "Bytes on disk per partition",
                partition,
            )?,
            log_end_offset: gauge_vec(
                "kafka_log_log_logendoffset",
                "Log end offset per partition",
                partition,
            )?,
            log_start_offset: gauge_vec(
                "kafka_log_log_logstartoffset",
                "Log start offset per partition",
                partition,
            )?,
            registry,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(%error, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Drops the series of a deleted topic.
    pub fn forget_topic(&self, topic: &str, partitions: i32) {
        for p in 0..partitions {
            self.forget_partition(topic, p);
        }
        for vec in [&self.bytes_in, &self.bytes_out, &self.messages_in] {
            let _ = vec.remove_label_values(&[topic]);
        }
    }

    /// Drops the series of a replica this broker no longer hosts.
    pub fn forget_partition(&self, topic: &str, index: i32) {
        let index = index.to_string();
        for vec in [&self.log_size, &self.log_end_offset, &self.log_start_offset] {
            let _ = vec.remove_label_values(&[topic, &index]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_register_and_render() {
        let metrics = Metrics::new().unwrap();
        metrics.bytes_in.with_label_values(&["t"]).inc_by(10);
        metrics
            .request_seconds
            .with_label_values(&["Produce"])
            .observe(0.001);
        let text = metrics.render();
        assert!(text.contains("kafka_server_brokertopicmetrics_bytesin_total{topic=\"t\"} 10"));
        assert!(text.contains("kafka_network_requestmetrics_request_duration_seconds_bucket"));
        metrics.replica_max_lag.set(12);
        assert!(metrics
            .render()
            .contains("kafka_server_replicafetchermanager_maxlag{client_id=\"Replica\"} 12"));
    }
}
