//! DeleteRecords: advances partitions' log start offsets (AdminClient.deleteRecords).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse, TopicName};

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
                    (wanted.partition_index, wanted.offset, outcome, result)
                })
                .collect::<Vec<_>>();
            (topic.name, partitions)
        })
        .collect::<Vec<_>>();
    let mut answers = Vec::with_capacity(topics.len());
    for (name, partitions) in topics {
        let mut results = Vec::with_capacity(partitions.len());
        for (index, offset, outcome, result) in partitions {
            let outcome = match outcome {
                Ok(local_start) => remote_delete(&ctx, &name, index, offset, local_start).await,
                Err(code) => Err(code),
            };
            results.push(match outcome {
                Ok(low_watermark) => result.with_low_watermark(low_watermark),
                Err(code) => result.with_error_code(code.code()),
            });
        }
        answers.push(
            DeleteRecordsTopicResult::default()
                .with_name(name)
                .with_partitions(results),
        );
    }
    DeleteRecordsResponse::default().with_topics(answers)
}

/// On a tiered topic, moves the remote log start too, so nothing below the new start is
/// served from the bucket; returns the partition's log start (the local one otherwise).
async fn remote_delete(
    ctx: &RequestContext,
    topic: &TopicName,
    index: i32,
    offset: i64,
    local_start: i64,
) -> Result<i64, ResponseError> {
    let Some(tiered) = &ctx.broker.tiered else {
        return Ok(local_start);
    };
    let Ok(partition) = topic_lookup::leader(&ctx.broker, topic, index) else {
        return Ok(local_start);
    };
    if !partition.with_log(|log| log.config().remote_storage) {
        return Ok(local_start);
    }
    let target = if offset == -1 {
        partition.with_log(|log| log.high_watermark())
    } else {
        offset
    };
    tiered
        .delete_records(&partition, target, local_start)
        .await
        .map_err(|error| {
            tiered.count_error(&error);
            tracing::warn!(?partition, %error, "cannot move the remote log start");
            ResponseError::KafkaStorageError
        })
}
