//! Widening the captured corpus at run time to every served API key and version: captured
//! requests re-encoded at the broker's other served versions (decoded at the captured version,
//! encoded at each other one; combinations kafka-protocol refuses are skipped), and requests
//! synthesized for the API keys no client sent (defaults with plausible names filled in).

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::Entry;
use crate::wire;

/// How many captured frames per (API, version, source) are re-encoded.
const EXEMPLARS: usize = 3;

/// The served (API, min version, max version) table, as ApiVersions reports it.
pub type Served = Vec<(ApiKey, i16, i16)>;

/// Captured frames plus their re-encodings and synthesized frames for every served version.
pub fn widen(captured: &[Entry], served: &Served, topic: &str, group: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = captured.to_vec();
    let mut seen: BTreeSet<(i16, i16)> = captured
        .iter()
        .map(|e| (e.api_key, e.api_version))
        .collect();
    let mut per_kind: BTreeMap<(i16, i16, &str), usize> = BTreeMap::new();
    for e in captured {
        let count = per_kind
            .entry((e.api_key, e.api_version, e.source.as_str()))
            .or_default();
        if *count >= EXEMPLARS {
            continue;
        }
        *count += 1;
        let Some((api, header, request)) = wire::decode_request(&e.frame) else {
            continue;
        };
        let Some(&(_, lo, hi)) = served.iter().find(|(a, _, _)| *a == api) else {
            continue;
        };
        for version in lo..=hi {
            if version == e.api_version {
                continue;
            }
            if let Some(frame) = reencode(api, &header, &request, version) {
                seen.insert((api as i16, version));
                out.push(Entry {
                    api_key: api as i16,
                    api_version: version,
                    source: format!("reencoded:{}", e.source),
                    frame,
                });
            }
        }
    }
    for &(api, lo, hi) in served {
        let Some(request) = synthesize(api, topic, group) else {
            continue;
        };
        for version in lo..=hi {
            if seen.contains(&(api as i16, version)) {
                continue;
            }
            let header = RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_client_id(Some(StrBytes::from_static_str("fz-synth")));
            if let Some(frame) = reencode(api, &header, &request, version) {
                out.push(Entry {
                    api_key: api as i16,
                    api_version: version,
                    source: "synthesized".into(),
                    frame,
                });
            }
        }
    }
    out
}

/// Encodes `request` at `version`, keeping only encodings that decode back to themselves.
fn reencode(
    api: ApiKey,
    header: &RequestHeader,
    request: &RequestKind,
    version: i16,
) -> Option<Vec<u8>> {
    let header = header.clone().with_request_api_version(version);
    let frame = wire::encode_with_header(api, &header, request).ok()?;
    wire::decode_request(&frame).map(|_| frame)
}

fn t(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A request for `api` with defaults and plausible names (None for APIs it cannot build).
pub fn synthesize(api: ApiKey, topic: &str, group: &str) -> Option<RequestKind> {
    let g = || GroupId(StrBytes::from_string(group.to_string()));
    let txn = || TransactionalId(StrBytes::from_static_str("fz-txn"));
    macro_rules! default_of {
        ($($key:ident => $ty:ty),* $(,)?) => {
            match api {
                $(ApiKey::$key => Some(RequestKind::$key(<$ty>::default())),)*
                _ => None,
            }
        };
    }
    let named = match api {
        ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(1))
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(t(topic))
                    .with_partition_indexes(vec![0])])]),
        ),
        ApiKey::ElectLeaders => {
            RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(Some(
                vec![
            TopicPartitions::default().with_topic(t(topic)).with_partitions(vec![0]),
        ],
            )))
        }
        ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(
            AlterPartitionReassignmentsRequest::default().with_topics(vec![
                ReassignableTopic::default()
                    .with_name(t(topic))
                    .with_partitions(vec![
                        ReassignablePartition::default().with_replicas(Some(vec![BrokerId(0)]))
                    ]),
            ]),
        ),
        ApiKey::DescribeProducers => {
            RequestKind::DescribeProducers(DescribeProducersRequest::default().with_topics(vec![
            TopicRequest::default().with_name(t(topic)).with_partition_indexes(vec![0]),
        ]))
        }
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochRequest::default().with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(t(topic))
                    .with_partitions(vec![OffsetForLeaderPartition::default()]),
            ]),
        ),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(
            DescribeTransactionsRequest::default().with_transactional_ids(vec![txn()]),
        ),
        ApiKey::DeleteGroups => {
            RequestKind::DeleteGroups(DeleteGroupsRequest::default().with_groups_names(vec![g()]))
        }
        ApiKey::DescribeGroups => {
            RequestKind::DescribeGroups(DescribeGroupsRequest::default().with_groups(vec![g()]))
        }
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(
            OffsetDeleteRequest::default()
                .with_group_id(g())
                .with_topics(vec![OffsetDeleteRequestTopic::default()
                    .with_name(t(topic))
                    .with_partitions(vec![OffsetDeleteRequestPartition::default()])]),
        ),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(
            FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(group.to_string()))
                .with_coordinator_keys(vec![StrBytes::from_string(group.to_string())]),
        ),
        _ => {
            return default_of!(
                Produce => ProduceRequest, Fetch => FetchRequest, ListOffsets => ListOffsetsRequest,
                Metadata => MetadataRequest, OffsetCommit => OffsetCommitRequest,
                OffsetFetch => OffsetFetchRequest, JoinGroup => JoinGroupRequest,
                Heartbeat => HeartbeatRequest, LeaveGroup => LeaveGroupRequest,
                SyncGroup => SyncGroupRequest, ListGroups => ListGroupsRequest,
                ApiVersions => ApiVersionsRequest, CreateTopics => CreateTopicsRequest,
                DeleteTopics => DeleteTopicsRequest, DeleteRecords => DeleteRecordsRequest,
                InitProducerId => InitProducerIdRequest, AddPartitionsToTxn => AddPartitionsToTxnRequest,
                AddOffsetsToTxn => AddOffsetsToTxnRequest, EndTxn => EndTxnRequest,
                TxnOffsetCommit => TxnOffsetCommitRequest, DescribeAcls => DescribeAclsRequest,
                CreateAcls => CreateAclsRequest, DeleteAcls => DeleteAclsRequest,
                DescribeConfigs => DescribeConfigsRequest, AlterConfigs => AlterConfigsRequest,
                AlterReplicaLogDirs => AlterReplicaLogDirsRequest, DescribeLogDirs => DescribeLogDirsRequest,
                CreatePartitions => CreatePartitionsRequest,
                IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
                ListPartitionReassignments => ListPartitionReassignmentsRequest,
                DescribeClientQuotas => DescribeClientQuotasRequest,
                AlterClientQuotas => AlterClientQuotasRequest,
                DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
                AlterUserScramCredentials => AlterUserScramCredentialsRequest,
                DescribeCluster => DescribeClusterRequest, ListTransactions => ListTransactionsRequest,
                DescribeTopicPartitions => DescribeTopicPartitionsRequest,
            );
        }
    };
    Some(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> Served {
        vec![
            (ApiKey::Metadata, 0, 12),
            (ApiKey::WriteTxnMarkers, 1, 1),
            (ApiKey::ListTransactions, 0, 1),
        ]
    }

    #[test]
    fn a_captured_request_is_reencoded_at_every_other_served_version() {
        let req = RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![])));
        let frame = wire::encode_request(ApiKey::Metadata, 9, 1, "kcat", &req).unwrap();
        let captured = [Entry {
            api_key: 3,
            api_version: 9,
            source: "kcat".into(),
            frame,
        }];
        let wide = widen(&captured, &served(), "t", "g");
        let versions: BTreeSet<i16> = wide
            .iter()
            .filter(|e| e.api_key == 3)
            .map(|e| e.api_version)
            .collect();
        assert_eq!(
            versions,
            (0..=12).collect(),
            "every served Metadata version"
        );
        for e in &wide {
            let (_, header, _) =
                wire::decode_request(&e.frame).expect("every widened frame decodes");
            assert_eq!(header.request_api_version, e.api_version);
        }
    }

    #[test]
    fn apis_no_client_sent_are_synthesized() {
        let wide = widen(&[], &served(), "t", "g");
        let keys: BTreeSet<(i16, &str)> = wide
            .iter()
            .map(|e| (e.api_key, e.source.as_str()))
            .collect();
        assert!(keys.contains(&(ApiKey::WriteTxnMarkers as i16, "synthesized")));
        assert!(keys.contains(&(ApiKey::ListTransactions as i16, "synthesized")));
    }
}
