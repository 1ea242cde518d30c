//! What an Apache Kafka 4.3 broker listener advertises, API by API, held against what this
//! broker advertises: every difference is either closed or listed here with its reason, so the
//! gap to Kafka 4.3 is a table that cannot go stale.

use kafka_protocol::messages::ApiKey;

use crate::versions::{advertised_min, served_apis, ApiSets};

/// Kafka 4.3.0's broker listener: each API with the lowest version it advertises and its
/// latest stable version (from the 4.3.0 message schemas; unstable versions left out). Produce
/// is advertised from v0 (KAFKA-18659). Controller-only APIs (the KRaft quorum's Vote,
/// BeginQuorumEpoch, EndQuorumEpoch, AlterPartition, Envelope, FetchSnapshot,
/// BrokerRegistration, BrokerHeartbeat, AllocateProducerIds, ControllerRegistration,
/// AssignReplicasToDirs, UpdateRaftVoter, UnregisterController) are not on it.
const KAFKA_4_3_BROKER_LISTENER: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 11),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 2),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::DescribeLogDirs, 1, 5),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::CreateDelegationToken, 1, 3),
    (ApiKey::RenewDelegationToken, 1, 2),
    (ApiKey::ExpireDelegationToken, 1, 2),
    (ApiKey::DescribeDelegationToken, 1, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::DescribeQuorum, 0, 2),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::UnregisterBroker, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::GetTelemetrySubscriptions, 0, 0),
    (ApiKey::PushTelemetry, 0, 0),
    (ApiKey::ListConfigResources, 0, 1),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 2),
    (ApiKey::ShareAcknowledge, 1, 2),
    (ApiKey::AddRaftVoter, 0, 1),
    (ApiKey::RemoveRaftVoter, 0, 0),
    (ApiKey::InitializeShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupState, 0, 0),
    (ApiKey::WriteShareGroupState, 0, 1),
    (ApiKey::DeleteShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupStateSummary, 0, 1),
    (ApiKey::DescribeShareGroupOffsets, 0, 1),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
];

/// Where this broker's ApiVersions differs from Kafka 4.3's broker listener, and why.
const DIFFERENCES: &[(ApiKey, &str)] = &[
    // For good: the cluster's metadata lives in Kubernetes objects, not a KRaft quorum.
    (ApiKey::DescribeQuorum, "no KRaft quorum to describe"),
    (ApiKey::AddRaftVoter, "no KRaft quorum to change"),
    (ApiKey::RemoveRaftVoter, "no KRaft quorum to change"),
    (
        ApiKey::UnregisterBroker,
        "a broker is unregistered by the operator deleting its Lease at scale-down",
    ),
    (
        ApiKey::GetTelemetrySubscriptions,
        "served but, as Kafka does without a client metrics receiver, not advertised",
    ),
    (
        ApiKey::PushTelemetry,
        "served but, as Kafka does without a client metrics receiver, not advertised",
    ),
];

/// Kafka 4.3 broker listener APIs the vendored codec does not know (so neither served nor
/// advertised): key, name, and why.
const UNKNOWN_TO_THE_CODEC: &[(i16, &str, &str)] = &[
    (
        88,
        "StreamsGroupHeartbeat",
        "streams groups (KIP-1071) are not built",
    ),
    (
        89,
        "StreamsGroupDescribe",
        "streams groups (KIP-1071) are not built",
    ),
    (
        93,
        "GetReplicaLogInfo",
        "an internal call of eligible leader replicas' recovery (KIP-966), which is not built",
    ),
];

/// This broker's advertised range of `api` with every optional API set on, as a new cluster
/// has them.
fn advertised(api: ApiKey) -> Option<(i16, i16)> {
    served_apis(ApiSets::ALL)
        .find(|(key, _, _)| *key == api)
        .map(|&(key, min, max)| (advertised_min(key, min), max))
}

#[test]
fn api_versions_matches_kafka_4_3_key_by_key_but_for_the_listed_differences() {
    let mut unexplained = Vec::new();
    let mut stale = Vec::new();
    for &(api, min, max) in KAFKA_4_3_BROKER_LISTENER {
        let same = advertised(api) == Some((min, max));
        let listed = DIFFERENCES.iter().any(|(key, _)| *key == api);
        if !same && !listed {
            unexplained.push((api, advertised(api), (min, max)));
        }
        if same && listed {
            stale.push(api);
        }
    }
    assert!(
        unexplained.is_empty(),
        "differences from Kafka 4.3 (ours, Kafka's): {unexplained:?}"
    );
    assert!(
        stale.is_empty(),
        "listed as differences but now as Kafka 4.3 advertises them: {stale:?}"
    );
    let beyond: Vec<ApiKey> = served_apis(ApiSets::ALL)
        .map(|(key, _, _)| *key)
        .filter(|key| !KAFKA_4_3_BROKER_LISTENER.iter().any(|(k, _, _)| k == key))
        .collect();
    assert!(
        beyond.is_empty(),
        "advertised, but not by Kafka 4.3's broker listener: {beyond:?}"
    );
    for (key, name, why) in UNKNOWN_TO_THE_CODEC {
        assert!(
            ApiKey::try_from(*key).is_err(),
            "the codec now knows {name} ({why}): move it to the table"
        );
    }
}
