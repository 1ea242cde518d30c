//! DeleteRecords: advances partitions' log start offsets (AdminClient.deleteRecords).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{topic_lookup, RequestContext};
use crate::acl::Operation;
use crate::error_codes::storage_code;

/// Deletes records before each requested offset (-1 means up to the high watermark).
pub(crate) async fn handle(
    ctx: RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let allowed = ctx.check_topic(Operation::Delete, &topic.name);
            let partitions = topic
                .partitions
                .iter()
                .map(|wanted| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(wanted.partition_index)
                        .with_low_watermark(-1);
                    let outcome = allowed
                        .and_then(|()| {
                            topic_lookup::leader(&ctx.broker, &topic.name, wanted.partition_index)
                        })
                        .and_then(|p| {
                            p.delete_records(wanted.offset).map_err(|error| {
                                tracing::info!(%error, "delete records refused");
                                storage_code(&error)
                            })
                        });
                    match outcome {
                        Ok(low_watermark) => result.with_low_watermark(low_watermark),
                        Err(code) => result.with_error_code(code.code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
