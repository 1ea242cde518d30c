//! ElectLeaders and ListPartitionReassignments on a standalone broker: every partition is
//! led by its only (and preferred) replica and nothing is ever being reassigned, so elections
//! are never needed and the reassignment list is empty, as Kafka answers for such a cluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    ElectLeadersRequest, ElectLeadersResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::{topic_lookup, RequestContext};

/// ElectLeaders: ELECTION_NOT_NEEDED for every existing partition asked about; with no
/// partitions named (all of them), nothing needs an election, so nothing is listed.
pub(crate) async fn elect(
    ctx: RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let results = request
        .topic_partitions
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let found = topic_lookup::by_name(&ctx.broker, &t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    let (code, message) = match topic_lookup::partition(found.as_ref(), p) {
                        Ok(_) => (
                            ResponseError::ElectionNotNeeded,
                            "the preferred replica already leads",
                        ),
                        Err(code) => (code, "no such partition"),
                    };
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_static_str(message)))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic)
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// ListPartitionReassignments: none is ever in progress.
pub(crate) async fn list_reassignments(
    _ctx: RequestContext,
    _request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default()
}

impl Refuse for ElectLeadersRequest {
    type Response = ElectLeadersResponse;
    fn refuse(self, error: ResponseError) -> ElectLeadersResponse {
        ElectLeadersResponse::default().with_error_code(error.code())
    }
}

impl Refuse for ListPartitionReassignmentsRequest {
    type Response = ListPartitionReassignmentsResponse;
    fn refuse(self, error: ResponseError) -> ListPartitionReassignmentsResponse {
        ListPartitionReassignmentsResponse::default().with_error_code(error.code())
    }
}
