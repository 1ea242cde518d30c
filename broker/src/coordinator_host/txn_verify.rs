//! Transaction verification on a partition leader (KIP-890 part 1, Kafka's
//! `AddPartitionsToTxnManager`): in cluster mode, before the first transactional batch of a
//! producer is appended to a partition where it has no open transaction, the leader asks the
//! producer's transaction coordinator (AddPartitionsToTxn v4, `verify_only`) whether the
//! partition is in the producer's ongoing transaction. A batch that arrives after its
//! transaction ended (a delayed retry of an aborted transaction) is refused instead of opening
//! a transaction no marker will ever close, which would hold the last stable offset back.
//!
//! The question is asked outside the partition lock; the answer is acted on under it only if
//! the partition's verification guard set before asking is still current (no marker of the
//! producer was written meanwhile), see [`crate::producer::TxnIndex::admits`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProduceRequest, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::partitioner::partition_for;
use crate::producer::VerificationGuard;
use crate::replica::ReplicaHost;
use crate::security::peer::PeerSecurity;
use crate::storage::BatchView;
use crate::txn::TransactionCoordinator;
use crate::txn::{ProducerRef, TRANSACTION_TOPIC};

/// The AddPartitionsToTxn version leaders verify with (the first with `verify_only`).
const VERIFY_VERSION: i16 = 4;

/// The AddPartitionsToTxn version leaders add partitions with for transactions v2 (Kafka's
/// `AddPartitionsToTxnManager` sends v5, TRANSACTION_ABORTABLE's).
const ADD_VERSION: i16 = 5;

/// How long a verification may take at most, whatever the produce request's timeout.
const MAX_VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long TxnOffsetCommit's verification may take (the request carries no timeout; the
/// client retries COORDINATOR_NOT_AVAILABLE).
const OFFSETS_VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// What verification needs of the broker beyond the append path's view (its configuration,
/// metadata and partitions): the transaction coordinator it hosts, and how to reach another.
pub(crate) trait VerifyHost: ReplicaHost {
    /// The transaction coordinator of this broker.
    fn txns(&self) -> &Arc<TransactionCoordinator>;
    /// The inter-broker listener's security, to ask another broker's coordinator.
    fn peer_security(&self) -> &Arc<PeerSecurity>;
}

/// What a verification decided for one partition of a produce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The coordinator confirmed the partition is in the producer's transaction: the batch
    /// is appended if this guard is still current under the partition lock.
    Verified(VerificationGuard),
    /// Refused with this code, already as the producer expects it ([`produce_error`]).
    Refused(ResponseError),
}

/// The verdicts of one produce request by (topic, partition); partitions not in it needed
/// no verification (not transactional, coordinated here, or already open on the partition).
pub(crate) type Verdicts = HashMap<(String, i32), Verdict>;

/// Starts verifying the transactional batches of `request` that need it, one request to the
/// producer's coordinator for all of them; `None` when none does (the produce proceeds at
/// once). Each such partition's guard is set before the coordinator is asked. From Produce
/// v12 (transactions v2, KIP-890 part 2) the coordinator is asked to add each partition not
/// yet in the producer's transaction instead, wherever it is: the client sends no
/// AddPartitionsToTxn.
pub(crate) fn start<H: VerifyHost + 'static>(
    broker: &Arc<H>,
    request: &ProduceRequest,
    version: i16,
) -> Option<BoxFuture<'static, Verdicts>> {
    let implicit = version >= 12;
    if !implicit
        && (broker.config().cluster.is_none()
            || !broker.config().transaction_partition_verification_enable)
    {
        return None;
    }
    // A transactional batch without an id is refused by the produce handler itself.
    let transactional_id = request.transactional_id.as_deref()?.to_string();
    let local = broker.config().cluster.is_none() || broker.txns().coordinates(&transactional_id);
    let mut producer: Option<ProducerRef> = None;
    let mut asked: Vec<((String, i32), VerificationGuard)> = Vec::new();
    let mut added_here: Vec<(String, i32)> = Vec::new();
    let mut verdicts = Verdicts::new();
    for topic in &request.topic_data {
        for data in &topic.partition_data {
            let Some(view) = data
                .records
                .as_deref()
                .and_then(|r| BatchView::header(r).ok())
            else {
                continue;
            };
            let this = ProducerRef {
                id: view.producer_id(),
                epoch: view.producer_epoch(),
            };
            if !view.is_transactional()
                || this.id < 0
                || (!implicit && broker.txns().coordinates_producer(this.id))
            {
                continue;
            }
            let key = (topic.name.to_string(), data.index);
            match producer {
                None => producer = Some(this),
                Some(p) if p.id == this.id && p.epoch == this.epoch => {}
                // One transactional id has one producer: the request is inconsistent.
                Some(_) => {
                    let refused = Verdict::Refused(ResponseError::InvalidProducerIdMapping);
                    verdicts.insert(key, refused);
                    continue;
                }
            }
            if implicit && local {
                // The append checks the coordinator's state under the partition lock.
                if broker.txns().check_produce(this, &key.0, key.1).is_err() {
                    added_here.push(key);
                }
                continue;
            }
            let Ok(partition) =
                broker
                    .replicas()
                    .leader(&broker.metadata().image(), &topic.name, data.index)
            else {
                continue;
            };
            if let Some(guard) = partition.start_verification(this.id) {
                asked.push((key, guard));
            }
        }
    }
    if asked.is_empty() && added_here.is_empty() && verdicts.is_empty() {
        return None;
    }
    let producer = producer?;
    let broker = broker.clone();
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0))
        .clamp(Duration::from_secs(1), MAX_VERIFY_TIMEOUT);
    Some(
        async move {
            if !added_here.is_empty() {
                let added = broker
                    .txns()
                    .add_partitions(&transactional_id, producer, &added_here)
                    .await;
                if let Err(error) = added {
                    tracing::info!(
                        transactional_id,
                        ?error,
                        "partitions not added to the transaction"
                    );
                    for key in added_here {
                        verdicts.insert(key, Verdict::Refused(produce_error(error)));
                    }
                }
            }
            if asked.is_empty() {
                return verdicts;
            }
            let partitions: Vec<(String, i32)> = asked.iter().map(|(k, _)| k.clone()).collect();
            let ask = Ask {
                transactional_id: &transactional_id,
                producer,
                partitions: &partitions,
                timeout,
                add: implicit,
            };
            let answers = ask_coordinator(&*broker, ask).await;
            for ((key, guard), answer) in asked.into_iter().zip(answers) {
                let verdict = match answer {
                    Ok(()) => Verdict::Verified(guard),
                    Err(error) => {
                        tracing::info!(
                            transactional_id,
                            topic = key.0,
                            partition = key.1,
                            ?error,
                            "transactional write not verified"
                        );
                        Verdict::Refused(produce_error(error))
                    }
                };
                verdicts.insert(key, verdict);
            }
            verdicts
        }
        .boxed(),
    )
}

/// The producer-facing code of a failed verification, as Kafka's `AddPartitionsToTxnManager`
/// and `ReplicaManager` translate the coordinator's: the retriable coordinator conditions
/// become NOT_ENOUGH_REPLICAS (which older clients retry without a metadata refresh), a
/// fenced producer INVALID_PRODUCER_EPOCH, and a refused inter-broker request
/// INVALID_TXN_STATE.
pub(crate) fn produce_error(coordinator: ResponseError) -> ResponseError {
    match coordinator {
        ResponseError::NetworkException
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator
        | ResponseError::ConcurrentTransactions => ResponseError::NotEnoughReplicas,
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        ResponseError::ClusterAuthorizationFailed => ResponseError::InvalidTxnState,
        other => other,
    }
}

/// TxnOffsetCommit's verification: the group's `__consumer_offsets` partition must be in
/// `producer`'s ongoing transaction (AddOffsetsToTxn put it there) before its offsets are
/// written as transactional records, so a late retry of an ended transaction cannot leave
/// records no marker will close. Asked of the coordinator wherever it is (only taken on
/// trust when the coordinator is another broker and verification is off). With `add`
/// (TxnOffsetCommit v5, transactions v2) the coordinator adds the partition and the group
/// instead: the client sends no AddOffsetsToTxn. Errors come as the group coordinator
/// answers them: what the client should retry after looking the coordinator up again is
/// COORDINATOR_NOT_AVAILABLE.
pub(crate) async fn verify_offsets(
    broker: &impl VerifyHost,
    transactional_id: &str,
    producer: ProducerRef,
    group: (&str, (String, i32)),
    add: bool,
) -> Result<(), ResponseError> {
    let (group_id, offsets_partition) = group;
    let partitions = [offsets_partition];
    let local = broker.config().cluster.is_none() || broker.txns().coordinates(transactional_id);
    let answer = if local && add {
        let [partition] = partitions;
        broker
            .txns()
            .add_offsets(transactional_id, producer, group_id, partition)
            .await
    } else if local {
        broker
            .txns()
            .verify_partitions(transactional_id, producer, &partitions)
            .and_then(|added| in_transaction(added.first().copied().unwrap_or(false)))
    } else if add || broker.config().transaction_partition_verification_enable {
        let ask = Ask {
            transactional_id,
            producer,
            partitions: &partitions,
            timeout: OFFSETS_VERIFY_TIMEOUT,
            add,
        };
        let answers = ask_coordinator(broker, ask).await;
        answers
            .into_iter()
            .next()
            .unwrap_or(Err(ResponseError::InvalidTxnState))
    } else {
        Ok(())
    };
    answer.map_err(|error| match error {
        ResponseError::NetworkException
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::NotCoordinator
        | ResponseError::ConcurrentTransactions
        | ResponseError::RequestTimedOut => ResponseError::CoordinatorNotAvailable,
        ResponseError::ClusterAuthorizationFailed => ResponseError::InvalidTxnState,
        other => other,
    })
}

/// One question to a transaction coordinator about partitions of one producer's transaction.
struct Ask<'a> {
    transactional_id: &'a str,
    producer: ProducerRef,
    partitions: &'a [(String, i32)],
    timeout: Duration,
    /// Add the partitions (transactions v2) rather than only ask whether they are in.
    add: bool,
}

/// Asks the coordinator of `transactional_id` (the leader of its `__transaction_state`
/// partition, this broker or another) whether each partition is in `producer`'s ongoing
/// transaction, or with `add` to add them: one answer per partition, in order.
async fn ask_coordinator(broker: &impl VerifyHost, ask: Ask<'_>) -> Vec<Result<(), ResponseError>> {
    let Ask {
        transactional_id,
        producer,
        partitions,
        timeout,
        add,
    } = ask;
    let all = |error: ResponseError| vec![Err(error); partitions.len()];
    let (leader, address) = {
        let image = broker.metadata().image();
        let Some(count) = image
            .topic(TRANSACTION_TOPIC)
            .map(|t| t.partition_count())
            .filter(|n| *n > 0)
        else {
            // No transaction was ever begun in this cluster.
            return all(ResponseError::CoordinatorNotAvailable);
        };
        let index = partition_for(transactional_id, count);
        let Some(leader) = image
            .partition(TRANSACTION_TOPIC, index)
            .filter(|p| p.has_leader())
            .map(|p| p.leader)
        else {
            return all(ResponseError::CoordinatorNotAvailable);
        };
        let address = image
            .broker(leader)
            .map(|b| format!("{}:{}", b.host, b.port));
        (leader, address)
    };
    if leader == broker.config().broker_id {
        let txns = broker.txns();
        let answer = if add {
            txns.add_partitions(transactional_id, producer, partitions)
                .await
                .map(|()| vec![true; partitions.len()])
        } else {
            txns.verify_partitions(transactional_id, producer, partitions)
        };
        return match answer {
            Ok(added) => added.into_iter().map(in_transaction).collect(),
            Err(error) => all(error),
        };
    }
    let Some(address) = address else {
        return all(ResponseError::CoordinatorNotAvailable);
    };
    let request = coordinator_request(transactional_id, producer, partitions, !add);
    let version = if add { ADD_VERSION } else { VERIFY_VERSION };
    let answer: Result<AddPartitionsToTxnResponse, _> = crate::peer::call(
        &address,
        broker.peer_security().clone(),
        ApiKey::AddPartitionsToTxn,
        version,
        &request,
        timeout,
    )
    .await;
    match answer {
        Ok(answer) => read_answer(&answer, transactional_id, partitions),
        Err(error) => {
            tracing::warn!(%error, transactional_id, "transaction verification not answered");
            all(ResponseError::NetworkException)
        }
    }
}

fn in_transaction(added: bool) -> Result<(), ResponseError> {
    if added {
        Ok(())
    } else {
        Err(ResponseError::TransactionAbortable)
    }
}

/// The first Produce version whose clients know TRANSACTION_ABORTABLE (KIP-890).
pub(crate) const PRODUCE_ABORTABLE_VERSION: i16 = 11;

/// The first TxnOffsetCommit version whose clients know TRANSACTION_ABORTABLE (KIP-890).
pub(crate) const TXN_OFFSET_COMMIT_ABORTABLE_VERSION: i16 = 4;

/// `error` as a client that may not know TRANSACTION_ABORTABLE must see it: older clients get
/// INVALID_TXN_STATE for a partition not in the transaction, as Kafka's
/// `AddPartitionsToTxnManager` answers them.
pub(crate) fn for_client(error: ResponseError, knows_abortable: bool) -> ResponseError {
    if error == ResponseError::TransactionAbortable && !knows_abortable {
        ResponseError::InvalidTxnState
    } else {
        error
    }
}

/// The AddPartitionsToTxn of one transaction (`verify_only`, or adding for transactions v2),
/// its partitions grouped by topic.
fn coordinator_request(
    transactional_id: &str,
    producer: ProducerRef,
    partitions: &[(String, i32)],
    verify_only: bool,
) -> AddPartitionsToTxnRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, index) in partitions {
        topics.entry(topic).or_default().push(*index);
    }
    let topics = topics
        .into_iter()
        .map(|(name, indexes)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                .with_partitions(indexes)
        })
        .collect();
    AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(
                transactional_id.to_owned(),
            )))
            .with_producer_id(ProducerId(producer.id))
            .with_producer_epoch(producer.epoch)
            .with_verify_only(verify_only)
            .with_topics(topics),
    ])
}

/// Each partition's outcome in the coordinator's answer; a partition the answer leaves out
/// counts as not verified.
fn read_answer(
    answer: &AddPartitionsToTxnResponse,
    transactional_id: &str,
    partitions: &[(String, i32)],
) -> Vec<Result<(), ResponseError>> {
    let code = |c: i16| ResponseError::try_from_code(c).map_or(Ok(()), Err);
    if answer.error_code != 0 {
        return vec![code(answer.error_code); partitions.len()];
    }
    let codes: HashMap<(&str, i32), i16> = answer
        .results_by_transaction
        .iter()
        .filter(|t| &*t.transactional_id == transactional_id)
        .flat_map(|t| &t.topic_results)
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(move |p| ((&*t.name.0, p.partition_index), p.partition_error_code))
        })
        .collect();
    partitions
        .iter()
        .map(
            |(topic, index)| match codes.get(&(topic.as_str(), *index)) {
                Some(&c) => code(c),
                None => Err(ResponseError::InvalidTxnState),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
    };

    #[test]
    fn coordinator_errors_reach_the_producer_as_kafka_maps_them() {
        assert_eq!(
            produce_error(ResponseError::NotCoordinator),
            ResponseError::NotEnoughReplicas
        );
        assert_eq!(
            produce_error(ResponseError::NetworkException),
            ResponseError::NotEnoughReplicas
        );
        assert_eq!(
            produce_error(ResponseError::ConcurrentTransactions),
            ResponseError::NotEnoughReplicas
        );
        assert_eq!(
            produce_error(ResponseError::ProducerFenced),
            ResponseError::InvalidProducerEpoch
        );
        assert_eq!(
            produce_error(ResponseError::ClusterAuthorizationFailed),
            ResponseError::InvalidTxnState
        );
        assert_eq!(
            produce_error(ResponseError::InvalidTxnState),
            ResponseError::InvalidTxnState
        );
    }

    #[test]
    fn the_answer_is_read_per_partition_and_omissions_are_not_verified() {
        let producer = ProducerRef { id: 4, epoch: 2 };
        let asked = [
            ("a".to_string(), 0),
            ("a".to_string(), 1),
            ("b".to_string(), 0),
        ];
        let request = coordinator_request("tx", producer, &asked, true);
        let txn = &request.transactions[0];
        assert!(txn.verify_only);
        assert_eq!((txn.producer_id.0, txn.producer_epoch), (4, 2));
        assert_eq!(txn.topics.len(), 2, "grouped by topic");
        let partition = |index: i32, code: ResponseError| {
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(index)
                .with_partition_error_code(if index == 0 { 0 } else { code.code() })
        };
        let answer = AddPartitionsToTxnResponse::default().with_results_by_transaction(vec![
            AddPartitionsToTxnResult::default()
                .with_transactional_id(TransactionalId(StrBytes::from_static_str("tx")))
                .with_topic_results(vec![AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(StrBytes::from_static_str("a")))
                    .with_results_by_partition(vec![
                        partition(0, ResponseError::InvalidTxnState),
                        partition(1, ResponseError::InvalidTxnState),
                    ])]),
        ]);
        assert_eq!(
            read_answer(&answer, "tx", &asked),
            vec![
                Ok(()),
                Err(ResponseError::InvalidTxnState),
                Err(ResponseError::InvalidTxnState),
            ]
        );
        let refused = AddPartitionsToTxnResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        assert_eq!(
            read_answer(&refused, "tx", &asked[..1]),
            vec![Err(ResponseError::ClusterAuthorizationFailed)]
        );
    }
}
