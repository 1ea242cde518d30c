//! Prometheus metrics, named after the JMX-exporter names Kafka operators already chart and
//! alert on (`kafka_server_brokertopicmetrics_*`, `kafka_network_requestmetrics_*`, ...).

use prometheus::{
    exponential_buckets, opts, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Registry,
};
use tributary_metrics::Registrar;

use crate::group::coordinator::GroupStats;

/// The broker's metrics; one instance per broker, registered in its own registry.
pub struct Metrics {
    registry: Registry,
    /// Bytes appended per topic.
    pub bytes_in: IntCounterVec,
    /// Bytes returned to fetches per topic.
    pub bytes_out: IntCounterVec,
    /// Record bytes of fetch responses sent from their segment files (`sendfile`).
    pub fetch_sendfile_bytes: IntCounter,
    /// Records appended per topic.
    pub messages_in: IntCounterVec,
    /// Produce requests refused per topic and error.
    pub failed_produce: IntCounterVec,
    /// Records refused by schema validation, per topic and reason.
    pub schema_refused_records: IntCounterVec,
    /// Schema registry lookups of schema validation, per outcome.
    pub schema_lookups: IntCounterVec,
    /// Schema ids schema validation found in its cache.
    pub schema_cache_hits: IntCounter,
    /// Requests per API.
    pub requests: IntCounterVec,
    /// Time from a request's arrival to its response being written, per API.
    pub request_seconds: HistogramVec,
    /// That time split by phase, per API (Kafka's LocalTimeMs, ResponseQueueTimeMs and
    /// RemoteTimeMs): `local`, the broker's own work on the request (decoding, checks,
    /// appends under the partition lock); `queued`, waiting for the responses before it on
    /// the connection to be written; `remote`, waiting after that (for replicas or the group
    /// commit, a fetch's long poll).
    pub request_phase_seconds: HistogramVec,
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
    /// Bytes of follower appends whose writeback was started as they were written.
    pub writeback_started_bytes: IntCounter,
    /// Consumer group lag per committed partition.
    pub consumer_lag: IntGaugeVec,
    /// Log size per partition.
    pub log_size: IntGaugeVec,
    /// Log end offset per partition.
    pub log_end_offset: IntGaugeVec,
    /// Log start offset per partition.
    pub log_start_offset: IntGaugeVec,
    /// Size of the file system holding the log directory, per directory.
    pub log_dir_total_bytes: IntGaugeVec,
    /// Bytes still free for the broker there: the disk-full alert's signal.
    pub log_dir_usable_bytes: IntGaugeVec,
    /// Groups this broker coordinates, by protocol (classic, consumer).
    pub groups: IntGaugeVec,
    /// Classic groups this broker coordinates, by state.
    pub classic_groups: IntGaugeVec,
    /// Consumer (KIP-848) groups this broker coordinates, by state.
    pub consumer_groups: IntGaugeVec,
    /// Rebalances started, by protocol.
    pub rebalances: IntCounterVec,
    /// Time from a rebalance's start until the group is stable again, by protocol.
    pub rebalance_seconds: HistogramVec,
    /// Share groups this broker coordinates, by state.
    pub share_groups: IntGaugeVec,
    /// Share sessions held (members fetching here).
    pub share_sessions: IntGauge,
    /// Records share group members acknowledged, by acknowledgement type.
    pub share_acknowledged: IntCounterVec,
    /// Records in flight in each share-partition led here.
    pub share_in_flight: IntGaugeVec,
    /// Records of each share-partition led here not yet done with, up to the high watermark.
    pub share_lag: IntGaugeVec,
    /// Records whose acquisition lock expired before their member acknowledged them.
    pub share_lock_expiries: IntCounter,
    /// Members of the share groups this broker coordinates.
    pub share_members: IntGauge,
    /// Records handed to share group members (each delivery counted).
    pub share_acquired: IntCounter,
    /// Records archived: rejected, gap-acknowledged or out of deliveries.
    pub share_archived: IntCounter,
}

/// The table of every metric the broker exports, in the order of [`Metrics`]' fields.
mod defs {
    use tributary_metrics::Def;

    const TOPIC: &[&str] = &["topic"];
    const PARTITION: &[&str] = &["topic", "partition"];

    pub(super) const BYTES_IN: Def = Def {
        name: "kafka_server_brokertopicmetrics_bytesin_total",
        help: "Bytes appended by producers",
        labels: TOPIC,
    };
    pub(super) const BYTES_OUT: Def = Def {
        name: "kafka_server_brokertopicmetrics_bytesout_total",
        help: "Bytes returned to fetch requests",
        labels: TOPIC,
    };
    pub(super) const FETCH_SENDFILE_BYTES: Def = Def {
        name: "tributary_fetch_sendfile_bytes_total",
        help: "Record bytes of fetch responses sent from their segment files with sendfile (zero-copy) rather than copied through memory",
        labels: &[],
    };
    pub(super) const MESSAGES_IN: Def = Def {
        name: "kafka_server_brokertopicmetrics_messagesin_total",
        help: "Records appended by producers",
        labels: TOPIC,
    };
    pub(super) const FAILED_PRODUCE: Def = Def {
        name: "kafka_server_brokertopicmetrics_failedproducerequests_total",
        help: "Produce requests refused, per topic and error",
        labels: &["topic", "error"],
    };
    pub(super) const SCHEMA_REFUSED_RECORDS: Def = Def {
        name: "tributary_schema_validation_refused_records_total",
        help: "Records whose batch schema validation refused, per topic and reason",
        labels: &["topic", "reason"],
    };
    pub(super) const SCHEMA_LOOKUPS: Def = Def {
        name: "tributary_schema_validation_registry_lookups_total",
        help: "Schema registry lookups of schema validation: found, unknown (no such id) or error",
        labels: &["outcome"],
    };
    pub(super) const SCHEMA_CACHE_HITS: Def = Def {
        name: "tributary_schema_validation_cache_hits_total",
        help: "Schema ids schema validation answered from its cache",
        labels: &[],
    };
    pub(super) const REQUESTS: Def = Def {
        name: "kafka_network_requestmetrics_requests_total",
        help: "Requests received, per API",
        labels: &["request"],
    };
    pub(super) const REQUEST_SECONDS: Def = Def {
        name: "kafka_network_requestmetrics_request_duration_seconds",
        help: "Time from request arrival to response written, per API",
        labels: &["request"],
    };
    pub(super) const REQUEST_PHASE_SECONDS: Def = Def {
        name: "kafka_network_requestmetrics_phase_seconds",
        help: "Time of a request in each phase, per API: local (the broker's own work), \
               queued (behind earlier responses on its connection) and remote (waiting for \
               replicas, the group commit or a long poll)",
        labels: &["request", "phase"],
    };
    pub(super) const REJECTED_REQUESTS: Def = Def {
        name: "kafka_network_requestmetrics_rejected_total",
        help: "Requests that closed their connection: malformed, unknown API or version",
        labels: &[],
    };
    pub(super) const CONNECTIONS: Def = Def {
        name: "kafka_server_socketservermetrics_connections",
        help: "Open client connections",
        labels: &[],
    };
    pub(super) const PARTITIONS: Def = Def {
        name: "kafka_server_replicamanager_partitioncount",
        help: "Partitions hosted by this broker",
        labels: &[],
    };
    pub(super) const UNDER_REPLICATED: Def = Def {
        name: "kafka_server_replicamanager_underreplicatedpartitions",
        help: "Led partitions whose ISR is smaller than their replica set (replicas a reassignment adds not counted, KIP-352)",
        labels: &[],
    };
    pub(super) const OFFLINE: Def = Def {
        name: "kafka_controller_kafkacontroller_offlinepartitionscount",
        help: "Partitions without an active leader",
        labels: &[],
    };
    pub(super) const ISR_SHRINKS: Def = Def {
        name: "kafka_server_replicamanager_isrshrinks_total",
        help: "In-sync replica set shrinks",
        labels: &[],
    };
    pub(super) const ISR_EXPANDS: Def = Def {
        name: "kafka_server_replicamanager_isrexpands_total",
        help: "In-sync replica set expansions",
        labels: &[],
    };
    pub(super) const FAILED_ISR_UPDATES: Def = Def {
        name: "kafka_server_replicamanager_failedisrupdates_total",
        help: "ISR changes a leader could not record",
        labels: &[],
    };
    pub(super) const LEADERS: Def = Def {
        name: "kafka_server_replicamanager_leadercount",
        help: "Partitions this broker leads",
        labels: &[],
    };
    pub(super) const UNDER_MIN_ISR: Def = Def {
        name: "kafka_server_replicamanager_underminisrpartitioncount",
        help: "Led partitions with fewer in-sync replicas than min.insync.replicas",
        labels: &[],
    };
    pub(super) const REASSIGNING: Def = Def {
        name: "kafka_server_replicamanager_reassigningpartitions",
        help: "Led partitions with a reassignment in progress",
        labels: &[],
    };
    /// Registered with the constant label `client_id="Replica"`.
    pub(super) const REPLICA_MAX_LAG: Def = Def {
        name: "kafka_server_replicafetchermanager_maxlag",
        help: "Largest lag in records of a follower replica behind its leader's high watermark",
        labels: &[],
    };
    pub(super) const FLUSH_SECONDS: Def = Def {
        name: "kafka_log_logflushstats_flush_duration_seconds",
        help: "Duration of each group-commit fsync of a partition",
        labels: &[],
    };
    pub(super) const WRITEBACK_STARTED_BYTES: Def = Def {
        name: "tributary_log_writeback_started_bytes_total",
        help: "Bytes of follower appends whose writeback the broker started as they were written, so the page cache never holds a burst of them for the disk",
        labels: &[],
    };
    pub(super) const CONSUMER_LAG: Def = Def {
        name: "kafka_consumergroup_lag",
        help: "Records between a group's committed offset and the high watermark",
        labels: &["group", "topic", "partition"],
    };
    pub(super) const LOG_SIZE: Def = Def {
        name: "kafka_log_log_size",
        help: "Bytes on disk per partition",
        labels: PARTITION,
    };
    pub(super) const LOG_END_OFFSET: Def = Def {
        name: "kafka_log_log_logendoffset",
        help: "Log end offset per partition",
        labels: PARTITION,
    };
    pub(super) const LOG_START_OFFSET: Def = Def {
        name: "kafka_log_log_logstartoffset",
        help: "Log start offset per partition",
        labels: PARTITION,
    };
    pub(super) const LOG_DIR_TOTAL_BYTES: Def = Def {
        name: "tributary_log_dir_total_bytes",
        help: "Size of the file system holding the log directory (DescribeLogDirs TotalBytes)",
        labels: &["log_dir"],
    };
    pub(super) const LOG_DIR_USABLE_BYTES: Def = Def {
        name: "tributary_log_dir_usable_bytes",
        help: "Bytes the broker may still write to the log directory's file system \
               (DescribeLogDirs UsableBytes)",
        labels: &["log_dir"],
    };
    pub(super) const GROUPS: Def = Def {
        name: "kafka_server_group_coordinator_metrics_groups",
        help: "Groups this broker coordinates, by protocol",
        labels: &["protocol"],
    };
    pub(super) const CLASSIC_GROUPS: Def = Def {
        name: "kafka_server_group_coordinator_metrics_classic_groups",
        help: "Classic groups this broker coordinates, by state",
        labels: &["state"],
    };
    pub(super) const CONSUMER_GROUPS: Def = Def {
        name: "kafka_server_group_coordinator_metrics_consumer_groups",
        help: "Consumer protocol (KIP-848) groups this broker coordinates, by state",
        labels: &["state"],
    };
    pub(super) const REBALANCES: Def = Def {
        name: "kafka_server_group_coordinator_metrics_rebalance_total",
        help: "Rebalances started (classic: a new generation; consumer: a new group epoch)",
        labels: &["protocol"],
    };
    pub(super) const SHARE_GROUPS: Def = Def {
        name: "kafka_server_group_coordinator_metrics_share_groups",
        help: "Share groups this broker coordinates, by state",
        labels: &["state"],
    };
    pub(super) const SHARE_SESSIONS: Def = Def {
        name: "kafka_server_share_session_cache_share_sessions",
        help: "Share sessions this broker holds (share group members fetching here)",
        labels: &[],
    };
    pub(super) const SHARE_ACKNOWLEDGED: Def = Def {
        name: "kafka_server_share_group_metrics_record_acknowledgement_total",
        help: "Records share group members acknowledged, by type (accept, release, reject, gap)",
        labels: &["ack_type"],
    };
    pub(super) const SHARE_IN_FLIGHT: Def = Def {
        name: "kafka_server_share_partition_metrics_in_flight_message_count",
        help: "Records in flight (delivered, not yet done with) in each share-partition led here",
        labels: &["group", "topic", "partition"],
    };
    pub(super) const SHARE_LAG: Def = Def {
        name: "kafka_server_share_partition_metrics_lag",
        help: "Records of each share-partition led here not yet acknowledged or archived, up to the high watermark (KIP-1226)",
        labels: &["group", "topic", "partition"],
    };
    pub(super) const SHARE_LOCK_EXPIRIES: Def = Def {
        name: "kafka_server_share_group_metrics_acquisition_lock_timeout_total",
        help: "Records whose acquisition lock expired before their member acknowledged them",
        labels: &[],
    };
    pub(super) const SHARE_MEMBERS: Def = Def {
        name: "kafka_server_group_coordinator_metrics_share_group_members",
        help: "Members of the share groups this broker coordinates",
        labels: &[],
    };
    pub(super) const SHARE_ACQUIRED: Def = Def {
        name: "kafka_server_share_group_metrics_records_acquired_total",
        help: "Records handed to share group members under an acquisition lock (each delivery counted)",
        labels: &[],
    };
    pub(super) const SHARE_ARCHIVED: Def = Def {
        name: "kafka_server_share_group_metrics_records_archived_total",
        help: "Records of share-partitions led here archived: rejected, acknowledged as gaps, or out of deliveries (group.share.delivery.count.limit)",
        labels: &[],
    };
    pub(super) const REBALANCE_SECONDS: Def = Def {
        name: "kafka_server_group_coordinator_metrics_rebalance_duration_seconds",
        help: "Time from a rebalance's start until every member is at the new assignment",
        labels: &["protocol"],
    };
}

/// Metric construction failed (a duplicate or invalid name: a programming error caught by the
/// unit test below).
#[derive(Debug, thiserror::Error)]
#[error("cannot register metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    /// Creates every metric of the `defs` table and registers it.
    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new();
        let r = Registrar(&registry);
        Ok(Metrics {
            bytes_in: r.counter_vec(&defs::BYTES_IN)?,
            bytes_out: r.counter_vec(&defs::BYTES_OUT)?,
            fetch_sendfile_bytes: r.counter(&defs::FETCH_SENDFILE_BYTES)?,
            messages_in: r.counter_vec(&defs::MESSAGES_IN)?,
            failed_produce: r.counter_vec(&defs::FAILED_PRODUCE)?,
            schema_refused_records: r.counter_vec(&defs::SCHEMA_REFUSED_RECORDS)?,
            schema_lookups: r.counter_vec(&defs::SCHEMA_LOOKUPS)?,
            schema_cache_hits: r.counter(&defs::SCHEMA_CACHE_HITS)?,
            requests: r.counter_vec(&defs::REQUESTS)?,
            request_seconds: r.histogram_vec(
                &defs::REQUEST_SECONDS,
                &exponential_buckets(0.0001, 2.0, 18)?,
            )?,
            request_phase_seconds: r.histogram_vec(
                &defs::REQUEST_PHASE_SECONDS,
                &exponential_buckets(0.00005, 2.0, 20)?,
            )?,
            flush_seconds: r.histogram(
                &defs::FLUSH_SECONDS,
                &exponential_buckets(0.00005, 2.0, 18)?,
            )?,
            writeback_started_bytes: r.counter(&defs::WRITEBACK_STARTED_BYTES)?,
            rejected_requests: r.counter(&defs::REJECTED_REQUESTS)?,
            connections: r.gauge(&defs::CONNECTIONS)?,
            partitions: r.gauge(&defs::PARTITIONS)?,
            under_replicated: r.gauge(&defs::UNDER_REPLICATED)?,
            reassigning: r.gauge(&defs::REASSIGNING)?,
            offline: r.gauge(&defs::OFFLINE)?,
            isr_shrinks: r.counter(&defs::ISR_SHRINKS)?,
            isr_expands: r.counter(&defs::ISR_EXPANDS)?,
            failed_isr_updates: r.counter(&defs::FAILED_ISR_UPDATES)?,
            leaders: r.gauge(&defs::LEADERS)?,
            under_min_isr: r.gauge(&defs::UNDER_MIN_ISR)?,
            // Kafka's clientId tag, in the snake_case Prometheus asks of label names.
            replica_max_lag: r.register(IntGauge::with_opts(
                opts!(defs::REPLICA_MAX_LAG.name, defs::REPLICA_MAX_LAG.help)
                    .const_label("client_id", "Replica"),
            )?)?,
            consumer_lag: r.gauge_vec(&defs::CONSUMER_LAG)?,
            log_size: r.gauge_vec(&defs::LOG_SIZE)?,
            log_end_offset: r.gauge_vec(&defs::LOG_END_OFFSET)?,
            log_start_offset: r.gauge_vec(&defs::LOG_START_OFFSET)?,
            log_dir_total_bytes: r.gauge_vec(&defs::LOG_DIR_TOTAL_BYTES)?,
            log_dir_usable_bytes: r.gauge_vec(&defs::LOG_DIR_USABLE_BYTES)?,
            groups: r.gauge_vec(&defs::GROUPS)?,
            classic_groups: r.gauge_vec(&defs::CLASSIC_GROUPS)?,
            consumer_groups: r.gauge_vec(&defs::CONSUMER_GROUPS)?,
            rebalances: r.counter_vec(&defs::REBALANCES)?,
            rebalance_seconds: r.histogram_vec(
                &defs::REBALANCE_SECONDS,
                &exponential_buckets(0.01, 2.0, 16)?,
            )?,
            share_groups: r.gauge_vec(&defs::SHARE_GROUPS)?,
            share_sessions: r.gauge(&defs::SHARE_SESSIONS)?,
            share_acknowledged: r.counter_vec(&defs::SHARE_ACKNOWLEDGED)?,
            share_in_flight: r.gauge_vec(&defs::SHARE_IN_FLIGHT)?,
            share_lag: r.gauge_vec(&defs::SHARE_LAG)?,
            share_lock_expiries: r.counter(&defs::SHARE_LOCK_EXPIRIES)?,
            share_members: r.gauge(&defs::SHARE_MEMBERS)?,
            share_acquired: r.counter(&defs::SHARE_ACQUIRED)?,
            share_archived: r.counter(&defs::SHARE_ARCHIVED)?,
            registry,
        })
    }

    /// The registry, so subsystems that exist only when configured (tiered storage)
    /// register their metrics into the same exposition.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        tributary_metrics::encode(&self.registry).unwrap_or_else(|error| {
            tracing::error!(%error, "cannot encode metrics");
            String::new()
        })
    }

    /// Publishes the groups a scrape counted and the rebalances they went through.
    pub fn record_groups(&self, stats: &GroupStats) {
        for (protocol, by_state, gauge) in [
            ("classic", &stats.classic, &self.classic_groups),
            ("consumer", &stats.consumer, &self.consumer_groups),
        ] {
            gauge.reset();
            for (state, n) in by_state {
                gauge.with_label_values(&[state]).set(*n);
            }
            self.groups
                .with_label_values(&[protocol])
                .set(by_state.values().sum());
        }
        for (protocol, taken) in [
            ("classic", &stats.classic_rebalances),
            ("consumer", &stats.consumer_rebalances),
        ] {
            self.rebalances
                .with_label_values(&[protocol])
                .inc_by(taken.started);
            let seconds = self.rebalance_seconds.with_label_values(&[protocol]);
            for ms in &taken.finished_ms {
                seconds.observe(*ms as f64 / 1000.0);
            }
        }
    }

    /// Publishes the capacity of the file system holding `dir` (nothing when it cannot be
    /// asked: an unknown value must neither fire nor silence the disk-full alert).
    pub fn record_log_dir(&self, dir: &std::path::Path) {
        let label = [dir.display().to_string()];
        let label = [label[0].as_str()];
        match crate::disk::statvfs_bytes(dir) {
            Some((total, usable)) => {
                self.log_dir_total_bytes
                    .with_label_values(&label)
                    .set(total);
                self.log_dir_usable_bytes
                    .with_label_values(&label)
                    .set(usable);
            }
            None => {
                let _ = self.log_dir_total_bytes.remove_label_values(&label);
                let _ = self.log_dir_usable_bytes.remove_label_values(&label);
            }
        }
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

    #[test]
    fn the_log_dir_capacity_is_exported_and_vanishes_when_unknown() {
        let metrics = Metrics::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        metrics.record_log_dir(dir.path());
        let text = metrics.render();
        let label = format!("{{log_dir=\"{}\"}}", dir.path().display());
        assert!(
            text.contains(&format!("tributary_log_dir_total_bytes{label}")),
            "{text}"
        );
        assert!(text.contains(&format!("tributary_log_dir_usable_bytes{label}")));
        let path = dir.path().to_path_buf();
        drop(dir);
        metrics.record_log_dir(&path);
        assert!(!metrics.render().contains("tributary_log_dir_usable_bytes{"));
    }

    /// promtool's lint: only histograms and summaries end in `_count`, `_sum` or `_bucket`,
    /// and counters end in `_total`.
    #[test]
    fn metric_names_pass_prometheus_naming_rules() {
        use prometheus::proto::MetricType;
        let metrics = Metrics::new().unwrap();
        metrics.record_groups(&GroupStats::default());
        for family in metrics.registry.gather() {
            let name = family.name();
            match family.get_field_type() {
                MetricType::COUNTER => assert!(name.ends_with("_total"), "{name}"),
                MetricType::HISTOGRAM | MetricType::SUMMARY => {}
                _ => assert!(
                    !["_count", "_sum", "_bucket", "_total"]
                        .iter()
                        .any(|s| name.ends_with(s)),
                    "{name}"
                ),
            }
        }
    }

    #[test]
    fn groups_are_published_by_protocol_and_state() {
        let metrics = Metrics::new().unwrap();
        let mut stats = GroupStats::default();
        stats.classic.insert("Stable", 2);
        stats.consumer.insert("Reconciling", 1);
        stats.classic_rebalances.started = 3;
        stats.classic_rebalances.finished_ms = vec![250];
        metrics.record_groups(&stats);
        stats.classic.clear();
        stats.classic.insert("Empty", 1);
        metrics.record_groups(&stats);
        let text = metrics.render();
        for line in [
            "kafka_server_group_coordinator_metrics_groups{protocol=\"classic\"} 1",
            "kafka_server_group_coordinator_metrics_groups{protocol=\"consumer\"} 1",
            "kafka_server_group_coordinator_metrics_classic_groups{state=\"Empty\"} 1",
            "kafka_server_group_coordinator_metrics_consumer_groups{state=\"Reconciling\"} 1",
            "kafka_server_group_coordinator_metrics_rebalance_total{protocol=\"classic\"} 6",
            "kafka_server_group_coordinator_metrics_rebalance_duration_seconds_count{protocol=\"classic\"} 2",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            !text.contains("classic_groups{state=\"Stable\"}"),
            "a state no group is in any more is gone"
        );
    }
}
