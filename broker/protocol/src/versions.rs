//! The API versions this broker implements: the single source for ApiVersions and for rejecting
//! requests at versions it does not serve.

use kafka_protocol::messages::ApiKey;

/// Every served API with its inclusive version range (the Kafka 3.9 level, intersected with what
/// each handler implements and tests cover).
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 11),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::ListConfigResources, 0, 1),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::DescribeLogDirs, 1, 5),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::UpdateFeatures, 0, 2),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::OffsetCommit, 2, 10),
    (ApiKey::OffsetFetch, 1, 10),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::WriteTxnMarkers, 1, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::ElectLeaders, 0, 2),
    (ApiKey::AlterPartitionReassignments, 0, 1),
    (ApiKey::ListPartitionReassignments, 0, 0),
    (ApiKey::DescribeClientQuotas, 0, 1),
    (ApiKey::AlterClientQuotas, 0, 1),
    (ApiKey::AlterReplicaLogDirs, 1, 2),
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
    (ApiKey::CreateDelegationToken, 1, 3),
    (ApiKey::RenewDelegationToken, 1, 2),
    (ApiKey::ExpireDelegationToken, 1, 2),
    (ApiKey::DescribeDelegationToken, 1, 3),
];

/// The APIs of the consumer group protocol (KIP-848), served and advertised only when
/// `group.coordinator.rebalance.protocols` lists `consumer`, as Kafka 3.7-3.9 did.
/// ConsumerGroupHeartbeat v1 (KIP-1082) is v0 with the member id chosen by the client.
pub(super) const CONSUMER_PROTOCOL_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// Share groups' APIs (KIP-932): the client APIs at v1 (ShareFetch and ShareAcknowledge to v2,
/// Kafka 4.2's acquire modes and RENEW), the offsets admin APIs at v0, and the
/// share coordinator's inter-broker APIs at v0 (which Kafka's brokers also list to clients).
pub(super) const SHARE_GROUP_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ShareGroupHeartbeat, 1, 1),
    (ApiKey::ShareGroupDescribe, 1, 1),
    (ApiKey::ShareFetch, 1, 2),
    (ApiKey::ShareAcknowledge, 1, 2),
    (ApiKey::DescribeShareGroupOffsets, 0, 1),
    (ApiKey::AlterShareGroupOffsets, 0, 0),
    (ApiKey::DeleteShareGroupOffsets, 0, 0),
    (ApiKey::InitializeShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupState, 0, 0),
    (ApiKey::WriteShareGroupState, 0, 1),
    (ApiKey::DeleteShareGroupState, 0, 0),
    (ApiKey::ReadShareGroupStateSummary, 0, 1),
];

/// Transactions v2 (KIP-890 part 2): the versions these APIs are advertised to, instead of
/// [`SUPPORTED_APIS`]'s, while `transaction.version` is 2, as Kafka caps Produce at v11 below
/// it. Produce v12 adds a transactional batch's partition to its transaction, EndTxn v5 bumps
/// the producer epoch, TxnOffsetCommit v5 adds the group's offsets partition, and
/// AddOffsetsToTxn v4, like the v4s of EndTxn and TxnOffsetCommit, admits
/// TRANSACTION_ABORTABLE. Produce v13 is v12 naming topics by id.
pub(super) const TRANSACTIONS_V2_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::EndTxn, 0, 5),
];

/// Which optional sets of APIs a broker serves and advertises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiSets {
    /// The consumer group protocol's ([`CONSUMER_PROTOCOL_APIS`]).
    pub consumer_protocol: bool,
    /// Share groups' ([`SHARE_GROUP_APIS`]).
    pub share_groups: bool,
    /// Transactions v2's versions ([`TRANSACTIONS_V2_APIS`]).
    pub transactions_v2: bool,
}

impl ApiSets {
    /// Every optional set: what dispatch can route.
    pub const ALL: ApiSets = ApiSets {
        consumer_protocol: true,
        share_groups: true,
        transactions_v2: true,
    };

    /// The sets of a broker: the consumer group protocol and share groups as configured.
    pub fn of(consumer_protocol: bool, share_groups: bool) -> ApiSets {
        ApiSets {
            consumer_protocol,
            share_groups,
            transactions_v2: false,
        }
    }

    /// These sets with transactions v2's versions on or off (`transaction.version` 2).
    pub fn with_transactions_v2(self, transactions_v2: bool) -> ApiSets {
        ApiSets {
            transactions_v2,
            ..self
        }
    }
}

/// APIs advertised from a lower version than they serve, as Apache Kafka 4.0 does for Produce
/// (KAFKA-18659): librdkafka before 2.11.1 turns compression off, silently, unless the
/// broker advertises Produce from v0. A request below the served range is still refused
/// (the connection closes with the reason, as Kafka's socket server does); clients pick the
/// highest version both sides know, so none sends one.
const ADVERTISED_FROM: &[(ApiKey, i16)] = &[(ApiKey::Produce, 0)];

/// The lowest version ApiVersions advertises for `api`, served from `served_min`.
pub fn advertised_min(api: ApiKey, served_min: i16) -> i16 {
    ADVERTISED_FROM
        .iter()
        .find(|(key, _)| *key == api)
        .map_or(served_min, |&(_, min)| min.min(served_min))
}

/// APIs served but not advertised: client telemetry (KIP-714), which Kafka leaves out of
/// ApiVersions unless a metrics receiver is configured, yet answers when a client calls it.
const UNADVERTISED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::GetTelemetrySubscriptions, 0, 0),
    (ApiKey::PushTelemetry, 0, 0),
];

/// Every API advertised in ApiVersions, with the optional sets `sets` enables.
pub fn served_apis(sets: ApiSets) -> impl Iterator<Item = &'static (ApiKey, i16, i16)> {
    let when = |on: bool, apis: &'static [(ApiKey, i16, i16)]| if on { apis } else { &[] };
    let v2 = when(sets.transactions_v2, TRANSACTIONS_V2_APIS);
    SUPPORTED_APIS
        .iter()
        .map(move |entry| {
            v2.iter()
                .find(|(key, _, _)| *key == entry.0)
                .unwrap_or(entry)
        })
        .chain(when(sets.consumer_protocol, CONSUMER_PROTOCOL_APIS))
        .chain(when(sets.share_groups, SHARE_GROUP_APIS))
}

/// Every API dispatch may serve, whatever the configuration: the advertised ones, every
/// optional set and the unadvertised ones.
pub fn routed_apis() -> impl Iterator<Item = &'static (ApiKey, i16, i16)> {
    served_apis(ApiSets::ALL).chain(UNADVERTISED_APIS)
}

/// The served version range of `api` given the optional sets enabled.
pub fn served_range(api: ApiKey, sets: ApiSets) -> Option<(i16, i16)> {
    served_apis(sets)
        .chain(UNADVERTISED_APIS)
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
}

/// The served version range of `api`, if it is served at all.
pub fn supported_range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
}
