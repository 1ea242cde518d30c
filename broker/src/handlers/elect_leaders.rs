//! ElectLeaders (KIP-460): preferred (type 0, and every v0 request) or unclean (type 1) leader
//! elections for the partitions named, or for every partition when the list is null. Each
//! partition is first judged from this broker's image ([`need`]); those that need an election
//! go to the cluster's controller ([`crate::metadata::elections::LeaderElections`]) and are
//! answered once it has acted or the request's timeout passed. A standalone broker leads every
//! partition as its only, preferred replica, so no election is ever needed there.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::refuse::Refuse;
use super::RequestContext;
use crate::metadata::elections::{need, ElectionError, ElectionType, Need};

/// One partition's answer.
type Answer = Result<(), ElectionError>;

/// Serves ElectLeaders (see the module documentation).
pub(crate) async fn elect(
    ctx: RequestContext,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let kind = match request.election_type {
        0 => ElectionType::Preferred,
        1 => ElectionType::Unclean,
        other => {
            tracing::info!(
                election_type = other,
                "ElectLeaders with an unknown election type"
            );
            return request.refuse(ResponseError::InvalidRequest);
        }
    };
    let every_partition = request.topic_partitions.is_none();
    let image = ctx.broker.metadata.image();
    let asked: Vec<(TopicName, i32)> = match request.topic_partitions {
        Some(topics) => topics
            .into_iter()
            .flat_map(|t| t.partitions.into_iter().map(move |p| (t.topic.clone(), p)))
            .collect(),
        None => image
            .topics()
            .flat_map(|t| {
                let name = TopicName(StrBytes::from_string(t.name.clone()));
                (0..t.partition_count()).map(move |p| (name.clone(), p))
            })
            .collect(),
    };
    let mut answers: BTreeMap<(String, i32), Answer> = BTreeMap::new();
    let mut to_elect = Vec::new();
    for (topic, p) in &asked {
        let key = (topic.as_str().to_owned(), *p);
        match need(kind, image.partition(&key.0, *p), &image.brokers) {
            Need::Elect => to_elect.push(key),
            Need::Answer(answer) => {
                answers.insert(key, Err(answer));
            }
        }
    }
    drop(image);
    if !to_elect.is_empty() {
        let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
        match &ctx.broker.elections {
            Some(elections) => answers.extend(elections.elect(kind, to_elect, timeout).await),
            None => answers.extend(to_elect.into_iter().map(|key| {
                let why = "a standalone broker has no other replica to elect";
                (key, Err(unavailable(kind, why)))
            })),
        }
    }
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for (topic, p) in asked {
        let answer = answers
            .get(&(topic.as_str().to_owned(), p))
            .cloned()
            .unwrap_or(Err(ElectionError::UnknownTopicOrPartition));
        // Electing every partition lists only those an election was held or tried for, as
        // Kafka's controller does.
        if every_partition && matches!(answer, Err(ElectionError::NotNeeded(_))) {
            continue;
        }
        let (code, message) = wire(&answer);
        if let Err(error) = &answer {
            tracing::info!(topic = %topic.as_str(), partition = p, %error, "leader election not held");
        }
        let result = PartitionResult::default()
            .with_partition_id(p)
            .with_error_code(code.map_or(0, |c| c.code()))
            .with_error_message(message.map(StrBytes::from_string));
        match results.last_mut() {
            Some(last) if last.topic == topic => last.partition_result.push(result),
            _ => results.push(
                ReplicaElectionResult::default()
                    .with_topic(topic)
                    .with_partition_result(vec![result]),
            ),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// The "cannot lead now" error of an election of `kind`.
fn unavailable(kind: ElectionType, why: &str) -> ElectionError {
    match kind {
        ElectionType::Preferred => ElectionError::PreferredNotAvailable(why.into()),
        ElectionType::Unclean => ElectionError::EligibleNotAvailable(why.into()),
    }
}

/// Kafka's error code and message for a partition's answer.
fn wire(answer: &Answer) -> (Option<ResponseError>, Option<String>) {
    let Err(error) = answer else {
        return (None, None);
    };
    let code = match error {
        ElectionError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        ElectionError::NotNeeded(_) => ResponseError::ElectionNotNeeded,
        ElectionError::PreferredNotAvailable(_) => ResponseError::PreferredLeaderNotAvailable,
        ElectionError::EligibleNotAvailable(_) => ResponseError::EligibleLeadersNotAvailable,
        ElectionError::TimedOut(_) => ResponseError::RequestTimedOut,
        ElectionError::Unavailable(_) => ResponseError::UnknownServerError,
    };
    (Some(code), Some(error.to_string()))
}

impl Refuse for ElectLeadersRequest {
    type Response = ElectLeadersResponse;
    fn refuse(self, error: ResponseError) -> ElectLeadersResponse {
        ElectLeadersResponse::default().with_error_code(error.code())
    }
}
