//! OffsetDelete: removes committed offsets of topics the group no longer consumes.

use std::collections::HashMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::refuse::Refuse;
use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};

/// Answers an OffsetDelete request.
pub(crate) async fn handle(
    ctx: RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    if !ctx.may(Operation::Delete, ResourceType::Group, &request.group_id) {
        return request.refuse(ResponseError::GroupAuthorizationFailed);
    }
    let mut errors: HashMap<(String, i32), ResponseError> = HashMap::new();
    let mut wanted = Vec::new();
    for topic in &request.topics {
        let readable = ctx.may(Operation::Read, ResourceType::Topic, &topic.name);
        for p in &topic.partitions {
            let tp = (topic.name.to_string(), p.partition_index);
            if !readable {
                errors.insert(tp, ResponseError::TopicAuthorizationFailed);
            } else if topic_lookup::exists(&ctx.broker, &topic.name, p.partition_index).is_ok() {
                wanted.push(tp);
            } else {
                errors.insert(tp, ResponseError::UnknownTopicOrPartition);
            }
        }
    }
    match ctx
        .broker
        .groups
        .delete_offsets(&request.group_id, wanted.clone())
        .await
    {
        Err(error) => return OffsetDeleteResponse::default().with_error_code(error.code()),
        Ok(results) => {
            for (tp, result) in wanted.into_iter().zip(results) {
                if let Err(error) = result {
                    errors.insert(tp, error);
                }
            }
        }
    }
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            OffsetDeleteResponseTopic::default()
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = errors
                                .get(&(name.clone(), p.partition_index))
                                .map_or(0, |e| e.code());
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
                .with_name(t.name)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

impl Refuse for OffsetDeleteRequest {
    type Response = OffsetDeleteResponse;
    fn refuse(self, error: ResponseError) -> OffsetDeleteResponse {
        OffsetDeleteResponse::default().with_error_code(error.code())
    }
}
