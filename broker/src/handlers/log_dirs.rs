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

/// Name of the remote tier's log directory in DescribeLogDirs: the storage URL with its scheme
/// replaced by `remote://` (`s3://logs/prod` becomes `remote://logs/prod`).
///
/// Kafka reports local directories only (its `ReplicaInfo.size` and capacity fields leave the
/// remote tier out, KAFKA-19527), so a Kafka tool has no remote shape to follow. Redpanda
/// reports the bucket as one more directory named `remote://<bucket>`, which `rpk` and
/// Redpanda Console already recognise (and never count as local disk); the same convention
/// here lets those tools show remote bytes, and Kafka's own tools list it as one more
/// directory without breaking.
pub(crate) fn remote_log_dir(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    format!("remote://{rest}")
}

/// The hosted partitions of each requested topic (`None`: every topic), by topic name.
type Wanted = Vec<(String, Vec<Arc<Partition>>)>;

fn wanted(ctx: &RequestContext, request: DescribeLogDirsRequest) -> Wanted {
    let mut hosted: BTreeMap<String, Vec<Arc<Partition>>> = BTreeMap::new();
    for p in ctx.broker.replicas.all() {
        hosted.entry(p.topic().to_string()).or_default().push(p);
    }
    let only: Vec<(String, Option<Vec<i32>>)> = match request.topics {
        None => hosted.keys().map(|t| (t.clone(), None)).collect(),
        Some(list) => list
            .into_iter()
            .filter(|t| hosted.contains_key(t.topic.as_str()))
            .map(|t| (t.topic.to_string(), Some(t.partitions)))
            .collect(),
    };
    only.into_iter()
        .map(|(topic, only)| {
            let partitions = hosted
                .get(&topic)
                .into_iter()
                .flatten()
                .filter(|p| only.as_ref().is_none_or(|only| only.contains(&p.index())))
                .cloned()
                .collect();
            (topic, partitions)
        })
        .collect()
}

/// One directory's topics, each partition with the size `size` gives it (none: left out).
fn topics_with(
    wanted: &Wanted,
    size: impl Fn(&Partition) -> Option<u64>,
) -> Vec<DescribeLogDirsTopic> {
    wanted
        .iter()
        .filter_map(|(topic, partitions)| {
            let partitions: Vec<_> = partitions
                .iter()
                .filter_map(|p| {
                    let bytes = size(p)?;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p.index())
                            .with_partition_size(i64::try_from(bytes).unwrap_or(i64::MAX)),
                    )
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions)
            })
        })
        .collect()
}

/// A directory's result, with capacity from v4 on (-1 is Kafka's "unknown") and, from v5,
/// `is_cordoned` (KIP-1066) false: this broker has no log directory cordoning (Kafka's
/// `cordoned.log.dirs`), so it never stops placing partitions on a directory.
fn dir_result(
    version: i16,
    name: String,
    topics: Vec<DescribeLogDirsTopic>,
    (total, usable): (i64, i64),
) -> DescribeLogDirsResult {
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(name))
        .with_topics(topics);
    match version {
        4.. => result
            .with_total_bytes(total)
            .with_usable_bytes(usable)
            .with_is_cordoned(false),
        _ => result,
    }
}

/// Describes the data directory (local bytes of every hosted replica, as Kafka does) and,
/// with tiered storage on, the remote tier as a second directory (see [`remote_log_dir`]):
/// there each tiered partition this broker leads reports its remote log's bytes, so summing
/// over brokers counts each remote log once; capacity -1 (a bucket has none). A partition
/// whose manifest this broker has not read yet is left out rather than reported empty.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let version = ctx.version();
    let wanted = wanted(&ctx, request);
    let local = topics_with(&wanted, |p| Some(p.size_bytes()));
    let dir = absolute(&ctx.broker.config.data_dir);
    let mut results = vec![dir_result(
        version,
        dir.display().to_string(),
        local,
        crate::disk::capacity(&dir),
    )];
    if let Some(tiered) = &ctx.broker.tiered {
        let remote = topics_with(&wanted, |p| {
            let tiered_here = p.role().is_leader() && p.with_log(|l| l.config().remote_storage);
            tiered_here.then(|| tiered.remote_size(p)).flatten()
        });
        results.push(dir_result(
            version,
            remote_log_dir(tiered.url()),
            remote,
            (-1, -1),
        ));
    }
    DescribeLogDirsResponse::default().with_results(results)
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

#[cfg(test)]
mod tests {
    use super::remote_log_dir;

    #[test]
    fn the_remote_directory_is_named_after_the_storage_url() {
        assert_eq!(remote_log_dir("s3://logs/prod/a"), "remote://logs/prod/a");
        assert_eq!(remote_log_dir("s3://logs"), "remote://logs");
        assert_eq!(remote_log_dir("file:///var/tiered"), "remote:///var/tiered");
    }
}
