//! Error answers to whole requests, for APIs at versions the codec knows but this broker does
//! not serve: the client gets UNSUPPORTED_VERSION in the response shape it expects instead of a
//! closed socket.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// A request that can be answered with one error for everything it asks.
pub(crate) trait Refuse {
    /// The response type of the request.
    type Response;
    /// The response carrying `error` for every item of the request.
    fn refuse(self, error: ResponseError) -> Self::Response;
}

impl Refuse for ProduceRequest {
    type Response = ProduceResponse;
    fn refuse(self, error: ResponseError) -> ProduceResponse {
        use produce_response::{PartitionProduceResponse, TopicProduceResponse};
        ProduceResponse::default().with_responses(
            self.topic_data
                .into_iter()
                .map(|t| {
                    TopicProduceResponse::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| {
                                    PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_error_code(error.code())
                                        .with_base_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }
}

impl Refuse for FetchRequest {
    type Response = FetchResponse;
    fn refuse(self, error: ResponseError) -> FetchResponse {
        FetchResponse::default().with_error_code(error.code())
    }
}

impl Refuse for ListOffsetsRequest {
    type Response = ListOffsetsResponse;
    fn refuse(self, error: ResponseError) -> ListOffsetsResponse {
        use list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
        ListOffsetsResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }
}

impl Refuse for MetadataRequest {
    type Response = MetadataResponse;
    fn refuse(self, error: ResponseError) -> MetadataResponse {
        use metadata_response::MetadataResponseTopic;
        MetadataResponse::default().with_topics(
            self.topics
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    MetadataResponseTopic::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}

impl Refuse for CreateTopicsRequest {
    type Response = CreateTopicsResponse;
    fn refuse(self, error: ResponseError) -> CreateTopicsResponse {
        use create_topics_response::CreatableTopicResult;
        CreateTopicsResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    CreatableTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}

impl Refuse for DeleteTopicsRequest {
    type Response = DeleteTopicsResponse;
    fn refuse(self, error: ResponseError) -> DeleteTopicsResponse {
        use delete_topics_response::DeletableTopicResult;
        let by_name = self
            .topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()));
        let by_state = self.topics.into_iter().map(|t| (t.name, t.topic_id));
        DeleteTopicsResponse::default().with_responses(
            by_name
                .chain(by_state)
                .map(|(name, id)| {
                    DeletableTopicResult::default()
                        .with_name(name)
                        .with_topic_id(id)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}

impl Refuse for DeleteRecordsRequest {
    type Response = DeleteRecordsResponse;
    fn refuse(self, error: ResponseError) -> DeleteRecordsResponse {
        use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
        DeleteRecordsResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    DeleteRecordsTopicResult::default()
                        .with_name(t.name)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    DeleteRecordsPartitionResult::default()
                                        .with_partition_index(p.partition_index)
                                        .with_low_watermark(-1)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }
}

impl Refuse for CreatePartitionsRequest {
    type Response = CreatePartitionsResponse;
    fn refuse(self, error: ResponseError) -> CreatePartitionsResponse {
        use create_partitions_response::CreatePartitionsTopicResult;
        CreatePartitionsResponse::default().with_results(
            self.topics
                .into_iter()
                .map(|t| {
                    CreatePartitionsTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}

impl Refuse for DescribeConfigsRequest {
    type Response = DescribeConfigsResponse;
    fn refuse(self, error: ResponseError) -> DescribeConfigsResponse {
        use describe_configs_response::DescribeConfigsResult;
        DescribeConfigsResponse::default().with_results(
            self.resources
                .into_iter()
                .map(|r| {
                    DescribeConfigsResult::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}

/// The legacy and incremental AlterConfigs share their response shape.
macro_rules! refuse_alter_configs {
    ($request:ty, $response:ty, $module:ident) => {
        impl Refuse for $request {
            type Response = $response;
            fn refuse(self, error: ResponseError) -> $response {
                use $module::AlterConfigsResourceResponse;
                <$response>::default().with_responses(
                    self.resources
                        .into_iter()
                        .map(|r| {
                            AlterConfigsResourceResponse::default()
                                .with_resource_type(r.resource_type)
                                .with_resource_name(r.resource_name)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
            }
        }
    };
}

refuse_alter_configs!(
    AlterConfigsRequest,
    AlterConfigsResponse,
    alter_configs_response
);
refuse_alter_configs!(
    IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
    incremental_alter_configs_response
);

impl Refuse for OffsetForLeaderEpochRequest {
    type Response = OffsetForLeaderEpochResponse;
    fn refuse(self, error: ResponseError) -> OffsetForLeaderEpochResponse {
        use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
        OffsetForLeaderEpochResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    OffsetForLeaderTopicResult::default()
                        .with_topic(t.topic)
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    EpochEndOffset::default()
                                        .with_partition(p.partition)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }
}

impl Refuse for DescribeClusterRequest {
    type Response = DescribeClusterResponse;
    fn refuse(self, error: ResponseError) -> DescribeClusterResponse {
        DescribeClusterResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(StrBytes::from_static_str("unsupported version")))
    }
}

impl Refuse for UpdateFeaturesRequest {
    type Response = UpdateFeaturesResponse;
    fn refuse(self, error: ResponseError) -> UpdateFeaturesResponse {
        super::update_features::failed(error, None)
    }
}

impl Refuse for DescribeTopicPartitionsRequest {
    type Response = DescribeTopicPartitionsResponse;
    fn refuse(self, error: ResponseError) -> DescribeTopicPartitionsResponse {
        super::describe_topic_partitions::refused(&self, error)
    }
}

impl Refuse for DescribeLogDirsRequest {
    type Response = DescribeLogDirsResponse;
    fn refuse(self, error: ResponseError) -> DescribeLogDirsResponse {
        DescribeLogDirsResponse::default().with_error_code(error.code())
    }
}

impl Refuse for InitProducerIdRequest {
    type Response = InitProducerIdResponse;
    fn refuse(self, error: ResponseError) -> InitProducerIdResponse {
        InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    }
}
