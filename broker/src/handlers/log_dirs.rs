//! DescribeLogDirs and AlterReplicaLogDirs for the broker's one data directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::partition::Partition;

/// The absolute path of `dir`, as log directories are named to clients.
fn absolute(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Describes the data directory; `topics: null` means every topic.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let mut hosted: BTreeMap<String, Vec<Arc<Partition>>> = BTreeMap::new();
    for p in ctx.broker.replicas.all() {
        hosted.entry(p.topic().to_string()).or_default().push(p);
    }
    let wanted: Vec<(String, Option<Vec<i32>>)> = match request.topics {
        None => hosted.keys().map(|t| (t.clone(), None)).collect(),
        Some(list) => list
            .into_iter()
            .filter(|t| hosted.contains_key(t.topic.as_str()))
            .map(|t| (t.topic.to_string(), Some(t.partitions)))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .map(|(topic, only)| {
            let partitions = hosted
                .get(&topic)
                .into_iter()
                .flatten()
                .filter(|p| only.as_ref().is_none_or(|only| only.contains(&p.index())))
                .map(|p| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index())
                        .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                })
                .collect();
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic)))
                .with_partitions(partitions)
        })
        .collect();
    let dir = absolute(&ctx.broker.config.data_dir);
    // -1 is Kafka's "unknown" when the file system cannot be asked.
    let (total, usable) = rustix::fs::statvfs(&dir).map_or((-1, -1), |fs| {
        let size =
            |blocks: u64| i64::try_from(blocks.saturating_mul(fs.f_frsize)).unwrap_or(i64::MAX);
        (size(fs.f_blocks), size(fs.f_bavail))
    });
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    // Capacity fields exist from v4 on.
    let result = if ctx.version() >= 4 {
        result.with_total_bytes(total).with_usable_bytes(usable)
    } else {
        result
    };
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// AlterReplicaLogDirs: with one data directory every replica already is where it can be, so
/// moving one there succeeds and does nothing, as in Kafka; another directory is
/// LOG_DIR_NOT_FOUND and a partition this broker does not host REPLICA_NOT_AVAILABLE.
pub(crate) async fn alter(
    ctx: RequestContext,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    // The name DescribeLogDirs reports, or the configured one; a client's path is never
    // resolved on the filesystem.
    let configured = ctx.broker.config.data_dir.clone();
    let ours = absolute(&configured);
    let replicas = &ctx.broker.replicas;
    answer_each(request, |path, topic, index| {
        if Path::new(path) != ours && Path::new(path) != configured {
            tracing::info!(path, "AlterReplicaLogDirs to an unknown log directory");
            return Some(ResponseError::LogDirNotFound);
        }
        let hosted = replicas.get(topic, index).is_some();
        (!hosted).then_some(ResponseError::ReplicaNotAvailable)
    })
}

/// The response giving each requested (directory, topic, partition) the error `decide` says.
fn answer_each(
    request: AlterReplicaLogDirsRequest,
    decide: impl Fn(&str, &TopicName, i32) -> Option<ResponseError>,
) -> AlterReplicaLogDirsResponse {
    let mut results = Vec::new();
    for dir in request.dirs {
        for topic in dir.topics {
            let partitions = topic
                .partitions
                .iter()
                .map(|&index| {
                    let error = decide(dir.path.as_str(), &topic.name, index);
                    AlterReplicaLogDirPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            results.push(
                AlterReplicaLogDirTopicResult::default()
                    .with_topic_name(topic.name)
                    .with_partitions(partitions),
            );
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}

impl Refuse for AlterReplicaLogDirsRequest {
    type Response = AlterReplicaLogDirsResponse;
    fn refuse(self, error: ResponseError) -> AlterReplicaLogDirsResponse {
        answer_each(self, |_, _, _| Some(error))
    }
}
