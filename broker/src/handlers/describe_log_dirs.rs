//! DescribeLogDirs: the size of every partition in the broker's one data directory.

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;

/// Describes the data directory; `topics: null` means every topic.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let registry = &ctx.broker.topics;
    let wanted: Vec<(std::sync::Arc<crate::topics::Topic>, Option<Vec<i32>>)> = match request.topics
    {
        None => registry.list().into_iter().map(|t| (t, None)).collect(),
        Some(list) => list
            .into_iter()
            .filter_map(|t| {
                registry
                    .get(&t.topic)
                    .map(|topic| (topic, Some(t.partitions)))
            })
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .map(|(topic, only)| {
            let partitions = topic
                .partitions
                .iter()
                .filter(|p| only.as_ref().is_none_or(|only| only.contains(&p.index())))
                .map(|p| {
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p.index())
                        .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                })
                .collect();
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.name().to_string())))
                .with_partitions(partitions)
        })
        .collect();
    let dir = ctx.broker.config.data_dir.clone();
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
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
