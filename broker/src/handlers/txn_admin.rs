//! ListTransactions, DescribeTransactions, DescribeProducers and WriteTxnMarkers (KIP-664):
//! what the Admin client and kafka-transactions.sh show of the coordinator's transactional ids
//! and of the producers writing each partition, to find hanging transactions and abort them.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    describe_producers_response, describe_transactions_response, list_transactions_response,
    write_txn_markers_request, write_txn_markers_response, DescribeProducersRequest,
    DescribeProducersResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::{topic_lookup, RequestContext};
use crate::acl::{Operation, ResourceType};
use crate::clock::now_ms;
use crate::txn::{Marker, ProducerRef, TxnState, MARKER_TIMEOUT};

const STATES: [TxnState; 6] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
];

/// ListTransactions: the transactional ids this broker coordinates matching every filter
/// given (states, producer ids, open for at least `duration_filter` ms, v2: the whole id
/// matching `transactional_id_pattern`, KIP-1152); COORDINATOR_LOAD_IN_PROGRESS while a
/// partition of them is loading, and INVALID_REGULAR_EXPRESSION for a pattern that does not
/// compile, as Kafka answers.
pub(crate) async fn list(
    ctx: RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    if ctx.broker.txns.is_loading() {
        return request.refuse(ResponseError::CoordinatorLoadInProgress);
    }
    let pattern = match id_pattern(request.transactional_id_pattern.as_deref()) {
        Ok(pattern) => pattern,
        Err(error) => {
            tracing::info!(%error, "ListTransactions refused: invalid transactional id pattern");
            return request.refuse(ResponseError::InvalidRegularExpression);
        }
    };
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = now_ms();
    let states = ctx
        .broker
        .txns
        .snapshot()
        .into_iter()
        .filter(|(id, _)| ctx.sees(Operation::Describe, ResourceType::TransactionalId, id))
        .filter(|(id, txn)| {
            let state_ok = request.state_filters.is_empty()
                || request
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == txn.state.name());
            let producer_ok = request.producer_id_filters.is_empty()
                || request
                    .producer_id_filters
                    .contains(&ProducerId(txn.producer_id));
            let duration_ok = request.duration_filter < 0
                || (txn.state == TxnState::Ongoing
                    && now.saturating_sub(txn.started_ms) >= request.duration_filter);
            let id_ok = pattern.as_ref().is_none_or(|p| p.is_match(id));
            state_ok && producer_ok && duration_ok && id_ok
        })
        .map(|(id, txn)| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(txn.producer_id))
                .with_transaction_state(StrBytes::from_static_str(txn.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}

/// The compiled ListTransactions v2 id filter: none when absent or empty; matching the whole
/// id, as Java's `Matcher.matches` does.
fn id_pattern(pattern: Option<&str>) -> Result<Option<regex::Regex>, regex::Error> {
    match pattern {
        None | Some("") => Ok(None),
        Some(p) => regex::Regex::new(&format!("^(?:{p})$")).map(Some),
    }
}

/// DescribeTransactions: state, timeout, producer and partitions of each id asked about;
/// NOT_COORDINATOR (or COORDINATOR_LOAD_IN_PROGRESS) for ids another broker coordinates.
pub(crate) async fn describe(
    ctx: RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let state = describe_transactions_response::TransactionState::default()
                .with_transactional_id(id.clone())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            if !ctx.may(Operation::Describe, ResourceType::TransactionalId, &id) {
                return state
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            let txn = match ctx.broker.txns.describe(&id) {
                Ok(Some(txn)) => txn,
                Ok(None) => {
                    return state
                        .with_error_code(ResponseError::TransactionalIdNotFound.code())
                        .with_transaction_state(StrBytes::from_static_str("Dead"))
                }
                Err(error) => return state.with_error_code(error.code()),
            };
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in &txn.partitions {
                topics.entry(topic).or_default().push(*partition);
            }
            state
                .with_transaction_state(StrBytes::from_static_str(txn.state.name()))
                .with_transaction_timeout_ms(txn.timeout_ms)
                .with_transaction_start_time_ms(if txn.state == TxnState::Ongoing {
                    txn.started_ms
                } else {
                    -1
                })
                .with_producer_id(ProducerId(txn.producer_id))
                .with_producer_epoch(txn.producer_epoch)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(topic, partitions)| {
                            describe_transactions_response::TopicData::default()
                                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

/// DescribeProducers: the producers of each partition asked about, with their epoch, last
/// sequence and timestamp, and where their open transaction started.
pub(crate) async fn describe_producers(
    ctx: RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let allowed = ctx.check_topic(Operation::Read, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let response = describe_producers_response::PartitionResponse::default()
                        .with_partition_index(index);
                    match allowed.and_then(|()| topic_lookup::leader(&ctx.broker, &t.name, index)) {
                        Err(code) => response.with_error_code(code.code()),
                        Ok(partition) => response.with_active_producers(
                            partition
                                .producers()
                                .into_iter()
                                .map(|(p, txn_start)| {
                                    describe_producers_response::ProducerState::default()
                                        .with_producer_id(ProducerId(p.producer_id))
                                        .with_producer_epoch(i32::from(p.epoch))
                                        .with_last_sequence(p.last_sequence)
                                        .with_last_timestamp(p.last_timestamp)
                                        .with_coordinator_epoch(-1)
                                        .with_current_txn_start_offset(txn_start)
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            describe_producers_response::TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

impl Refuse for DescribeProducersRequest {
    type Response = DescribeProducersResponse;
    fn refuse(self, error: ResponseError) -> DescribeProducersResponse {
        DescribeProducersResponse::default().with_topics(
            self.topics
                .into_iter()
                .map(|t| {
                    describe_producers_response::TopicResponse::default()
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|&p| {
                                    describe_producers_response::PartitionResponse::default()
                                        .with_partition_index(p)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                        .with_name(t.name)
                })
                .collect(),
        )
    }
}

impl Refuse for WriteTxnMarkersRequest {
    type Response = WriteTxnMarkersResponse;
    fn refuse(self, error: ResponseError) -> WriteTxnMarkersResponse {
        use write_txn_markers_response::{
            WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
        };
        let topic = |t: write_txn_markers_request::WritableTxnMarkerTopic| {
            WritableTxnMarkerTopicResult::default()
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|&p| {
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(p)
                                .with_error_code(error.code())
                        })
                        .collect(),
                )
                .with_name(t.name)
        };
        WriteTxnMarkersResponse::default().with_markers(
            self.markers
                .into_iter()
                .map(|m| {
                    WritableTxnMarkerResult::default()
                        .with_producer_id(m.producer_id)
                        .with_topics(m.topics.into_iter().map(topic).collect())
                })
                .collect(),
        )
    }
}

impl Refuse for ListTransactionsRequest {
    type Response = ListTransactionsResponse;
    fn refuse(self, error: ResponseError) -> ListTransactionsResponse {
        ListTransactionsResponse::default().with_error_code(error.code())
    }
}

impl Refuse for DescribeTransactionsRequest {
    type Response = DescribeTransactionsResponse;
    fn refuse(self, error: ResponseError) -> DescribeTransactionsResponse {
        DescribeTransactionsResponse::default().with_transaction_states(
            self.transactional_ids
                .into_iter()
                .map(|id| {
                    describe_transactions_response::TransactionState::default()
                        .with_transactional_id(id)
                        .with_error_code(error.code())
                })
                .collect(),
        )
    }
}

/// WriteTxnMarkers: writes the COMMIT or ABORT markers asked for (Admin.abortTransaction and
/// `kafka-transactions.sh abort` end a hanging transaction this way) and answers once each is
/// on disk, with an error per partition.
pub(crate) async fn write_markers(
    ctx: RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let broker = &ctx.broker;
    let now = now_ms();
    let mut markers = Vec::with_capacity(request.markers.len());
    for marker in request.markers {
        let mut topics = Vec::with_capacity(marker.topics.len());
        for wanted in marker.topics {
            let mut partitions = Vec::with_capacity(wanted.partition_indexes.len());
            for index in wanted.partition_indexes {
                let end = Marker {
                    producer: ProducerRef {
                        id: marker.producer_id.0,
                        epoch: marker.producer_epoch,
                    },
                    commit: marker.transaction_result,
                    transaction_version: marker.transaction_version,
                };
                let written = crate::coordinator_host::append_local_marker(
                    broker,
                    &wanted.name,
                    index,
                    end,
                    now,
                );
                let code = match written {
                    Ok(Some(write)) => {
                        let write = broker.after_marker(
                            write,
                            &wanted.name,
                            index,
                            end.producer,
                            end.commit,
                        );
                        write.committed(MARKER_TIMEOUT).await.err()
                    }
                    Ok(None) => Some(ResponseError::UnknownTopicOrPartition),
                    Err(code) => Some(code),
                };
                partitions.push(
                    write_txn_markers_response::WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code.map_or(0, |c| c.code())),
                );
            }
            topics.push(
                write_txn_markers_response::WritableTxnMarkerTopicResult::default()
                    .with_name(wanted.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            write_txn_markers_response::WritableTxnMarkerResult::default()
                .with_producer_id(marker.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
