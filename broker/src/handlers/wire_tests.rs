//! Every non-group API at every version ApiVersions advertises, through `dispatch` and back
//! through the response decoder: each answer must encode at the client's version (fields a
//! version lacks left unset) and carry the expected outcome.

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::records::Compression;

use super::group_wire_tests::{broker, call, s, topic};
use super::topic_id_wire_tests::produce_topic;
use crate::protocol::supported_range;
use crate::storage::test_util::{encode, record};

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = supported_range(api).unwrap();
    min..=max
}

/// One plain (non-transactional) batch of one record.
pub(super) fn plain_batch() -> Bytes {
    batch(1)
}

pub(super) fn batch(records: i64) -> Bytes {
    let keys: Vec<Option<String>> = (0..records).map(|i| Some(format!("k{i}"))).collect();
    keyed_batch(&keys)
}

/// One uncompressed batch with a record per key (`None`: a keyless record).
fn keyed_batch(keys: &[Option<String>]) -> Bytes {
    let records: Vec<_> = (0..)
        .zip(keys)
        .map(|(i, key)| record(i, key.as_deref(), Some("value")))
        .collect();
    encode(&records, Compression::None).freeze()
}

#[tokio::test]
async fn a_compacted_topic_refuses_keyless_records_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let configs = [("cleanup.policy".to_string(), "compact".to_string())].into();
    crate::test_support::set_configs(&b, "t", configs);
    let keys = [Some("a".to_string()), None, Some("c".to_string()), None];
    let topic_id = crate::test_support::topic(&b, "t").unwrap().id;
    for v in versions(ApiKey::Produce) {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![produce_topic(v, "t", topic_id).with_partition_data(
                vec![produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(keyed_batch(&keys)))],
            )]);
        let response: ProduceResponse = call(&b, ApiKey::Produce, v, &request).await;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 87, "Produce v{v}: INVALID_RECORD");
        let named: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
        let want: Vec<i32> = if v >= 8 { vec![1, 3] } else { vec![] };
        assert_eq!(named, want, "Produce v{v}");
    }
    let all_keyed = [Some("a".to_string()), Some("b".to_string())];
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(keyed_batch(&all_keyed))),
            ])]);
    let response: ProduceResponse = call(&b, ApiKey::Produce, 11, &request).await;
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, 0),
        "nothing was written before"
    );
}

#[tokio::test]
async fn produce_fetch_and_offsets_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let topic_id = crate::test_support::topic(&b, "t").unwrap().id;
    let mut expected_offset = 0;
    for v in versions(ApiKey::Produce) {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![produce_topic(v, "t", topic_id).with_partition_data(
                vec![produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(2)))],
            )]);
        let response: ProduceResponse = call(&b, ApiKey::Produce, v, &request).await;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(
            (p.error_code, p.base_offset),
            (0, expected_offset),
            "Produce v{v}"
        );
        expected_offset += 2;
    }
    for v in versions(ApiKey::Fetch) {
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(if v < 13 { topic("t") } else { topic("") })
                .with_topic_id(if v >= 13 { topic_id } else { uuid::Uuid::nil() })
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(3)
                    .with_partition_max_bytes(1 << 20)])]);
        let response: FetchResponse = call(&b, ApiKey::Fetch, v, &request).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, expected_offset, "Fetch v{v}");
        let records = p.records.as_ref().unwrap();
        // The answer starts with the whole batch holding offset 3.
        let base = i64::from_be_bytes(records[..8].try_into().unwrap());
        let last = base + i64::from(i32::from_be_bytes(records[23..27].try_into().unwrap()));
        assert!(
            (base..=last).contains(&3),
            "Fetch v{v}: batch {base}..={last}"
        );
    }
    for v in versions(ApiKey::ListOffsets) {
        let mut cases = vec![(-2, 0), (-1, expected_offset), (1_001, 1)];
        if v >= 8 {
            cases.push((-4, 0)); // earliest local: the log start without tiered storage
        }
        if v >= 9 {
            cases.push((-5, -1)); // latest tiered: none without tiered storage
        }
        for (timestamp, want) in cases {
            let request = crate::test_support::list_offsets_request("t", 0, timestamp);
            let response: ListOffsetsResponse = call(&b, ApiKey::ListOffsets, v, &request).await;
            let p = &response.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.offset),
                (0, want),
                "ListOffsets v{v} ts {timestamp}"
            );
        }
    }
    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(topic("t"))
                .with_partitions(vec![
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_leader_epoch(0),
                ]),
        ]);
        let response: OffsetForLeaderEpochResponse =
            call(&b, ApiKey::OffsetForLeaderEpoch, v, &request).await;
        let p = &response.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.end_offset),
            (0, expected_offset),
            "OffsetForLeaderEpoch v{v}"
        );
    }
    for v in versions(ApiKey::DeleteRecords) {
        let request = DeleteRecordsRequest::default().with_topics(vec![
            delete_records_request::DeleteRecordsTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(1)
                        .with_offset(0),
                ]),
        ]);
        let response: DeleteRecordsResponse = call(&b, ApiKey::DeleteRecords, v, &request).await;
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "DeleteRecords v{v}"
        );
    }
}

#[tokio::test]
async fn metadata_and_admin_apis_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    for v in versions(ApiKey::ApiVersions) {
        let response: ApiVersionsResponse =
            call(&b, ApiKey::ApiVersions, v, &ApiVersionsRequest::default()).await;
        assert_eq!(response.error_code, 0, "ApiVersions v{v}");
        assert!(!response.api_keys.is_empty());
    }
    for v in versions(ApiKey::Metadata) {
        let request = MetadataRequest::default()
            .with_include_topic_authorized_operations(v >= 8)
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(topic("t")))]));
        let response: MetadataResponse = call(&b, ApiKey::Metadata, v, &request).await;
        assert_eq!(response.topics[0].error_code, 0, "Metadata v{v}");
        assert_eq!(response.topics[0].partitions.len(), 2, "Metadata v{v}");
        if v >= 8 {
            // READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS:
            // what Kafka defines for topics, without CLUSTER_ACTION.
            let ops = response.topics[0].topic_authorized_operations;
            assert_eq!(ops, 0b1101_1111_1000, "Metadata v{v}");
        }
    }
    for v in versions(ApiKey::CreateTopics) {
        let name = format!("created-v{v}");
        let create = |validate_only| {
            CreateTopicsRequest::default()
                .with_validate_only(validate_only)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(topic(&name))
                    .with_num_partitions(3)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("60000"))),
                    ])])
        };
        let checked: CreateTopicsResponse = call(&b, ApiKey::CreateTopics, v, &create(true)).await;
        assert_eq!(
            checked.topics[0].error_code, 0,
            "CreateTopics v{v} validate_only"
        );
        assert!(
            crate::test_support::topic(&b, &name).is_none(),
            "validate_only created v{v}"
        );
        let created: CreateTopicsResponse = call(&b, ApiKey::CreateTopics, v, &create(false)).await;
        assert_eq!(created.topics[0].error_code, 0, "CreateTopics v{v}");
        let again: CreateTopicsResponse = call(&b, ApiKey::CreateTopics, v, &create(false)).await;
        assert_eq!(
            again.topics[0].error_code, 36,
            "CreateTopics v{v}: TOPIC_ALREADY_EXISTS"
        );
    }
    for v in versions(ApiKey::CreatePartitions) {
        let request = CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic("created-v2"))
                .with_count(4 + i32::from(v)),
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic("missing"))
                .with_count(2),
        ]);
        let response: CreatePartitionsResponse =
            call(&b, ApiKey::CreatePartitions, v, &request).await;
        let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![0, 3], "CreatePartitions v{v}");
    }
    for v in versions(ApiKey::DescribeConfigs) {
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(v >= 1)
            .with_include_documentation(v >= 3)
            .with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("created-v2")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(s("0")),
            ]);
        let response: DescribeConfigsResponse =
            call(&b, ApiKey::DescribeConfigs, v, &request).await;
        let retention = response.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        assert_eq!(
            retention.value.as_deref(),
            Some("60000"),
            "DescribeConfigs v{v}"
        );
        assert_eq!(
            response.results[1].error_code, 0,
            "DescribeConfigs v{v} broker"
        );
        let secret = response.results[1]
            .configs
            .iter()
            .find(|c| c.name.as_str() == "delegation.token.secret.key")
            .expect("the delegation token secret is described");
        assert_eq!(secret.value, None, "a secret's value is never sent (v{v})");
        assert!(secret.is_sensitive || v == 0, "DescribeConfigs v{v}");
    }
    for v in versions(ApiKey::AlterConfigs) {
        let request = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("created-v2"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s(&format!("{}", 70_000 + i32::from(v)))))]),
        ]);
        let response: AlterConfigsResponse = call(&b, ApiKey::AlterConfigs, v, &request).await;
        assert_eq!(response.responses[0].error_code, 0, "AlterConfigs v{v}");
    }
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("created-v2"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_config_operation(2)
                        .with_value(Some(s("compact"))),
                ]),
        ]);
        let response: IncrementalAlterConfigsResponse =
            call(&b, ApiKey::IncrementalAlterConfigs, v, &request).await;
        assert_eq!(
            response.responses[0].error_code, 0,
            "IncrementalAlterConfigs v{v}"
        );
    }
    let configs = &crate::test_support::topic(&b, "created-v2")
        .unwrap()
        .configs;
    assert_eq!(
        configs.get("cleanup.policy").map(String::as_str),
        Some("delete,compact")
    );
    for v in versions(ApiKey::DescribeCluster) {
        let response: DescribeClusterResponse = call(
            &b,
            ApiKey::DescribeCluster,
            v,
            &DescribeClusterRequest::default(),
        )
        .await;
        assert_eq!(
            (response.error_code, response.brokers.len()),
            (0, 1),
            "DescribeCluster v{v}"
        );
    }
    for v in versions(ApiKey::DescribeLogDirs) {
        let response: DescribeLogDirsResponse = call(
            &b,
            ApiKey::DescribeLogDirs,
            v,
            &DescribeLogDirsRequest::default().with_topics(None),
        )
        .await;
        assert!(
            !response.results[0].topics.is_empty(),
            "DescribeLogDirs v{v}"
        );
    }
    for v in versions(ApiKey::InitProducerId) {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
            .with_transaction_timeout_ms(60_000);
        let response: InitProducerIdResponse = call(&b, ApiKey::InitProducerId, v, &request).await;
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        assert!(response.producer_id.0 >= 0);
    }
    for v in versions(ApiKey::DeleteTopics) {
        let name = format!("created-v{}", v + 1);
        let request = if v >= 6 {
            DeleteTopicsRequest::default()
                .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(topic(&name)))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![topic(&name)])
        };
        let response: DeleteTopicsResponse = call(&b, ApiKey::DeleteTopics, v, &request).await;
        assert_eq!(response.responses[0].error_code, 0, "DeleteTopics v{v}");
        assert!(crate::test_support::topic(&b, &name).is_none());
    }
}

#[tokio::test]
async fn versions_the_codec_knows_but_we_do_not_serve_get_unsupported_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    // At transaction.version 1, whose table this is.
    let downgraded = super::txn_v2_wire_tests::set_transaction_version(&b, 1).await;
    assert_eq!(downgraded, 0);
    let unsupported = kafka_protocol::error::ResponseError::UnsupportedVersion.code();
    let (_, max) = supported_range(ApiKey::Produce).unwrap();
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(1))),
            ])]);
    let response: ProduceResponse = call(&b, ApiKey::Produce, max + 1, &request).await;
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        unsupported
    );
    assert_eq!(
        crate::test_support::partition(&b, "t", 0).with_log(|l| l.log_end_offset()),
        0
    );
    // EndTxn v4-v5 are transactions v2's, which the codec knows and this broker does not serve.
    let (_, max) = supported_range(ApiKey::EndTxn).unwrap();
    let request = EndTxnRequest::default().with_transactional_id(TransactionalId(s("t")));
    let response: EndTxnResponse = call(&b, ApiKey::EndTxn, max + 1, &request).await;
    assert_eq!(response.error_code, unsupported);
}

#[tokio::test]
async fn acl_apis_answer_security_disabled_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let disabled = kafka_protocol::error::ResponseError::SecurityDisabled.code();
    for v in versions(ApiKey::DescribeAcls) {
        let r: DescribeAclsResponse =
            call(&b, ApiKey::DescribeAcls, v, &DescribeAclsRequest::default()).await;
        assert_eq!(r.error_code, disabled, "DescribeAcls v{v}");
    }
    for v in versions(ApiKey::CreateAcls) {
        let request = CreateAclsRequest::default()
            .with_creations(vec![create_acls_request::AclCreation::default()]);
        let r: CreateAclsResponse = call(&b, ApiKey::CreateAcls, v, &request).await;
        assert_eq!(r.results.len(), 1, "CreateAcls v{v}");
        assert_eq!(r.results[0].error_code, disabled, "CreateAcls v{v}");
    }
    for v in versions(ApiKey::DeleteAcls) {
        let request = DeleteAclsRequest::default()
            .with_filters(vec![delete_acls_request::DeleteAclsFilter::default()]);
        let r: DeleteAclsResponse = call(&b, ApiKey::DeleteAcls, v, &request).await;
        assert_eq!(r.filter_results[0].error_code, disabled, "DeleteAcls v{v}");
    }
}

#[tokio::test]
async fn elections_are_never_needed_and_nothing_is_reassigned() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    for v in versions(ApiKey::ElectLeaders) {
        let request = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(Some(vec![elect_leaders_request::TopicPartitions::default(
            )
            .with_topic(topic("t"))
            .with_partitions(vec![0, 9])]));
        let r: ElectLeadersResponse = call(&b, ApiKey::ElectLeaders, v, &request).await;
        let codes: Vec<i16> = r.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| p.error_code)
            .collect();
        let not_needed = kafka_protocol::error::ResponseError::ElectionNotNeeded.code();
        let unknown = kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(codes, vec![not_needed, unknown], "ElectLeaders v{v}");
        // Every partition (a null list): none needed an election, so none is listed.
        let every = ElectLeadersRequest::default().with_topic_partitions(None);
        let r: ElectLeadersResponse = call(&b, ApiKey::ElectLeaders, v, &every).await;
        assert_eq!(r.replica_election_results.len(), 0, "ElectLeaders v{v}");
    }
    let unknown_type = ElectLeadersRequest::default().with_election_type(2);
    let r: ElectLeadersResponse = call(&b, ApiKey::ElectLeaders, 2, &unknown_type).await;
    let invalid = kafka_protocol::error::ResponseError::InvalidRequest.code();
    assert_eq!(
        r.error_code, invalid,
        "an election type Kafka does not know"
    );
    let r: ListPartitionReassignmentsResponse = call(
        &b,
        ApiKey::ListPartitionReassignments,
        0,
        &ListPartitionReassignmentsRequest::default(),
    )
    .await;
    assert_eq!((r.error_code, r.topics.len()), (0, 0));
}

/// A produce request of `records` to partition `index` of topic `t`.
pub(super) fn produce_request(index: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic("t"))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(index)
                    .with_records(Some(records)),
            ])])
}

/// Produces one batch of `records` to partition `index` of "t" with `acks`.
async fn produce_to(
    b: &std::sync::Arc<crate::broker::Broker>,
    index: i32,
    acks: i16,
    records: i64,
) {
    let request = produce_request(index, acks, batch(records));
    let response: ProduceResponse = call(b, ApiKey::Produce, 9, &request).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

#[tokio::test]
async fn writes_nobody_waits_on_are_fsynced_as_flush_messages_and_flush_ms_say() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let partition = |i: i32| crate::test_support::partition(&b, "t", i);
    let durable = |i: i32| partition(i).durable_offset();
    let reaches = |i: i32, end: i64| {
        let partition = partition(i);
        async move {
            matches!(
                tokio::time::timeout(Duration::from_secs(5), partition.wait_durable(end)).await,
                Ok(true)
            )
        }
    };

    // Kafka's defaults: acks=1 is answered after the write and the OS decides when it reaches
    // the disk; acks=all waits for the group-commit fsync.
    produce_to(&b, 0, 1, 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(durable(0), 0, "no fsync for acks=1 by default");
    produce_to(&b, 0, -1, 2).await;
    assert_eq!(durable(0), 5, "acks=all answered once durable");

    // flush.messages: the write that reaches the count starts an fsync.
    let configs = [("flush.messages".to_string(), "4".to_string())].into();
    crate::test_support::set_configs(&b, "t", configs);
    produce_to(&b, 1, 1, 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(durable(1), 0, "below flush.messages");
    produce_to(&b, 1, 1, 1).await;
    assert!(reaches(1, 4).await, "flush.messages reached");

    // flush.ms: unsynced writes are fsynced within that time.
    let configs = [("flush.ms".to_string(), "100".to_string())].into();
    crate::test_support::set_configs(&b, "t", configs);
    produce_to(&b, 1, 1, 2).await;
    assert!(reaches(1, 6).await, "flush.ms elapsed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_writes_to_many_partitions_share_fsync_rounds_and_all_become_durable() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let durable = |i: i32| {
        let partition = crate::test_support::partition(&b, "t", i);
        partition.durable_offset()
    };
    // Rounds covering both partitions sync the filesystem once; rounds covering one sync its
    // files. Either way every answer means the partition's writes are durable.
    let writes = (0..40).map(|n| produce_to(&b, n % 2, -1, 3));
    futures::future::join_all(writes).await;
    assert_eq!((durable(0), durable(1)), (60, 60));
    let rounds = b.metrics.flush_seconds.get_sample_count();
    assert!(
        (1..=40).contains(&rounds),
        "{rounds} fsync rounds for 40 writes"
    );
}

#[tokio::test]
async fn metadata_finds_topics_by_id_whatever_name_comes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let id = crate::test_support::topic(&b, "t").unwrap().id;
    {
        let v = 12;
        // The Java client sends an empty name beside the id.
        let request = MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default()
                .with_topic_id(id)
                .with_name(Some(topic(""))),
            metadata_request::MetadataRequestTopic::default()
                .with_topic_id(uuid::Uuid::from_u128(7))
                .with_name(None),
        ]));
        let response: MetadataResponse = call(&b, ApiKey::Metadata, v, &request).await;
        let found = &response.topics[0];
        assert_eq!(
            (
                found.error_code,
                found.name.as_ref().map(|n| n.as_str()),
                found.topic_id
            ),
            (0, Some("t"), id),
            "Metadata v{v}"
        );
        assert_eq!(found.partitions.len(), 2, "Metadata v{v}");
        assert_eq!(
            response.topics[1].error_code, 100,
            "Metadata v{v}: UNKNOWN_TOPIC_ID"
        );
    }
}

/// Sends one IncrementalAlterConfigs operation on a BROKER resource; returns its error code.
async fn alter_broker(
    b: &std::sync::Arc<crate::broker::Broker>,
    v: i16,
    name: &str,
    op: i8,
    key: &str,
    value: &str,
) -> i16 {
    alter_one(b, v, (4, name), op, key, value).await
}

/// Sends one IncrementalAlterConfigs operation on the resource (type, name); returns its
/// error code.
async fn alter_one(
    b: &std::sync::Arc<crate::broker::Broker>,
    v: i16,
    (resource_type, name): (i8, &str),
    op: i8,
    key: &str,
    value: &str,
) -> i16 {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s(key))
                    .with_config_operation(op)
                    .with_value(Some(s(value))),
            ]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        call(b, ApiKey::IncrementalAlterConfigs, v, &request).await;
    response.responses[0].error_code
}

/// Value and source of `key` in a DescribeConfigs of one resource.
async fn described(
    b: &std::sync::Arc<crate::broker::Broker>,
    resource_type: i8,
    name: &str,
    key: &str,
) -> Option<(String, i8)> {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name)),
    ]);
    let response: DescribeConfigsResponse = call(b, ApiKey::DescribeConfigs, 4, &request).await;
    assert_eq!(response.results[0].error_code, 0, "describe {name}");
    response.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .map(|c| {
            (
                c.value.as_deref().unwrap_or_default().to_string(),
                c.config_source,
            )
        })
}

/// The storage settings partition t-0 runs with.
fn log_config_of_t(b: &std::sync::Arc<crate::broker::Broker>) -> crate::storage::LogConfig {
    let p = crate::test_support::partition(b, "t", 0);
    p.with_log(|log| log.config().clone())
}

#[tokio::test]
async fn dynamic_broker_configs_change_topic_defaults_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let retention = |b| log_config_of_t(b).retention_ms;
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        let cluster = 100_000 + i64::from(v);
        assert_eq!(
            alter_broker(&b, v, "", 0, "log.retention.ms", &cluster.to_string()).await,
            0
        );
        assert_eq!(retention(&b), cluster, "v{v}: applied to the partitions");
        assert_eq!(
            described(&b, 2, "t", "retention.ms").await,
            Some((cluster.to_string(), 3)),
            "v{v}: DYNAMIC_DEFAULT_BROKER_CONFIG"
        );
        // This broker's own value wins over the cluster-wide one.
        assert_eq!(
            alter_broker(&b, v, "0", 0, "log.retention.ms", "200000").await,
            0
        );
        assert_eq!(retention(&b), 200_000);
        assert_eq!(
            described(&b, 4, "0", "log.retention.ms").await,
            Some(("200000".into(), 2))
        );
        assert_eq!(
            described(&b, 4, "", "log.retention.ms").await,
            Some((cluster.to_string(), 3))
        );
        assert_eq!(
            alter_broker(&b, v, "0", 1, "log.retention.ms", "").await,
            0,
            "DELETE"
        );
        assert_eq!(retention(&b), cluster);
        // Refusals: static configs, bad values, other brokers.
        assert_eq!(alter_broker(&b, v, "0", 0, "num.partitions", "3").await, 42);
        assert_eq!(
            alter_broker(&b, v, "0", 0, "log.segment.bytes", "many").await,
            40
        );
        assert_eq!(
            alter_broker(&b, v, "7", 0, "log.retention.ms", "1").await,
            42
        );
    }
    assert_eq!(
        alter_broker(&b, 1, "0", 2, "log.cleanup.policy", "compact").await,
        0
    );
    assert_eq!(
        described(&b, 2, "t", "cleanup.policy").await,
        Some(("delete,compact".into(), 2)),
        "APPEND starts from the static default"
    );
    // The legacy AlterConfigs replaces the whole set of a level.
    for v in versions(ApiKey::AlterConfigs) {
        let request = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("0"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s("log.roll.ms"))
                    .with_value(Some(s("3600000")))]),
        ]);
        let response: AlterConfigsResponse = call(&b, ApiKey::AlterConfigs, v, &request).await;
        assert_eq!(response.responses[0].error_code, 0, "AlterConfigs v{v}");
        assert_eq!(
            described(&b, 2, "t", "cleanup.policy").await,
            Some(("delete".into(), 5)),
            "AlterConfigs v{v}: the broker-level policy is gone"
        );
        assert_eq!(
            described(&b, 2, "t", "segment.ms").await,
            Some(("3600000".into(), 2))
        );
    }
    assert!(
        dir.path().join("dynamic-configs.json").exists(),
        "persisted"
    );
}

/// Kafka 4 (KIP-1161): SUBTRACT of the last policy leaves an empty `cleanup.policy`, which
/// is kept and described as "", and under which the log neither deletes nor compacts.
#[tokio::test]
async fn subtracting_the_last_cleanup_policy_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let policy = |b| {
        let config = log_config_of_t(b);
        (config.delete, config.compact)
    };
    assert_eq!(policy(&b), (true, false));
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        assert_eq!(
            alter_one(&b, v, (2, "t"), 3, "cleanup.policy", "delete").await,
            0,
            "SUBTRACT v{v}"
        );
        assert_eq!(
            described(&b, 2, "t", "cleanup.policy").await,
            Some((String::new(), 1)),
            "v{v}: an empty topic override"
        );
        assert_eq!(policy(&b), (false, false), "v{v}");
        assert_eq!(
            alter_one(&b, v, (2, "t"), 2, "cleanup.policy", "delete").await,
            0,
            "APPEND v{v}"
        );
        assert_eq!(policy(&b), (true, false), "v{v}");
    }
    // Still refused: unknown names and empty items.
    for value in ["shred", "delete,"] {
        assert_eq!(
            alter_one(&b, 1, (2, "t"), 0, "cleanup.policy", value).await,
            40,
            "{value:?}: INVALID_CONFIG"
        );
    }
}

#[tokio::test]
async fn replicas_move_only_to_the_one_log_directory_they_are_in() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let alter = |path: String, partitions: Vec<i32>| {
        AlterReplicaLogDirsRequest::default().with_dirs(vec![
            alter_replica_log_dirs_request::AlterReplicaLogDir::default()
                .with_path(s(&path))
                .with_topics(vec![
                    alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(partitions),
                ]),
        ])
    };
    use kafka_protocol::error::ResponseError;
    let ours = std::fs::canonicalize(dir.path()).unwrap();
    for v in versions(ApiKey::AlterReplicaLogDirs) {
        let cases = [
            (ours.display().to_string(), 0, 0),
            (
                ours.display().to_string(),
                9,
                ResponseError::ReplicaNotAvailable.code(),
            ),
            (
                "/elsewhere".to_string(),
                0,
                ResponseError::LogDirNotFound.code(),
            ),
        ];
        for (path, partition, code) in cases {
            let request = alter(path.clone(), vec![partition]);
            let response: AlterReplicaLogDirsResponse =
                call(&b, ApiKey::AlterReplicaLogDirs, v, &request).await;
            let result = &response.results[0].partitions[0];
            assert_eq!(
                (result.partition_index, result.error_code),
                (partition, code),
                "v{v} {path} partition {partition}"
            );
        }
    }
}

#[tokio::test]
async fn a_partition_can_only_be_reassigned_to_the_broker_it_is_on() {
    use kafka_protocol::error::ResponseError;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let reassign = |partition: i32, replicas: Option<Vec<i32>>| {
        AlterPartitionReassignmentsRequest::default().with_topics(vec![
            alter_partition_reassignments_request::ReassignableTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    alter_partition_reassignments_request::ReassignablePartition::default()
                        .with_partition_index(partition)
                        .with_replicas(replicas.map(|r| r.into_iter().map(BrokerId).collect())),
                ]),
        ])
    };
    let cases = [
        (0, Some(vec![0]), 0),
        (
            0,
            Some(vec![1]),
            ResponseError::InvalidReplicaAssignment.code(),
        ),
        (
            0,
            Some(vec![0, 0]),
            ResponseError::InvalidReplicaAssignment.code(),
        ),
        (
            0,
            Some(vec![]),
            ResponseError::InvalidReplicaAssignment.code(),
        ),
        (0, None, ResponseError::NoReassignmentInProgress.code()),
        (
            9,
            Some(vec![0]),
            ResponseError::UnknownTopicOrPartition.code(),
        ),
    ];
    for (partition, replicas, code) in cases {
        let request = reassign(partition, replicas.clone());
        let response: AlterPartitionReassignmentsResponse =
            call(&b, ApiKey::AlterPartitionReassignments, 0, &request).await;
        assert_eq!(response.error_code, 0);
        let result = &response.responses[0].partitions[0];
        assert_eq!(result.error_code, code, "{partition} -> {replicas:?}");
    }
}

#[tokio::test]
async fn scram_credential_refusals_carry_kafkas_error_codes() {
    use kafka_protocol::error::ResponseError;
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let upsert = |user: &str, mechanism: i8, iterations: i32| {
        alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
            .with_name(s(user))
            .with_mechanism(mechanism)
            .with_iterations(iterations)
            .with_salt(Bytes::from_static(b"salt"))
            .with_salted_password(Bytes::from(vec![1u8; 32]))
    };
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
        upsert("ok", 1, 4096),
        upsert("mech", 9, 4096),
        upsert("few", 2, 10),
    ]);
    let response: AlterUserScramCredentialsResponse =
        call(&b, ApiKey::AlterUserScramCredentials, 0, &request).await;
    let codes: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("ok".to_string(), 0),
            (
                "mech".to_string(),
                ResponseError::UnsupportedSaslMechanism.code()
            ),
            (
                "few".to_string(),
                ResponseError::UnacceptableCredential.code()
            ),
        ]
    );
    let named = |names: &[&str]| {
        DescribeUserScramCredentialsRequest::default().with_users(Some(
            names
                .iter()
                .map(|n| {
                    describe_user_scram_credentials_request::UserName::default().with_name(s(n))
                })
                .collect(),
        ))
    };
    let described: DescribeUserScramCredentialsResponse = call(
        &b,
        ApiKey::DescribeUserScramCredentials,
        0,
        &named(&["ok", "nobody", "twice", "twice"]),
    )
    .await;
    let codes: Vec<_> = described.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        [
            0,
            ResponseError::ResourceNotFound.code(),
            ResponseError::DuplicateResource.code()
        ]
    );
    assert_eq!(described.results[0].credential_infos[0].iterations, 4096);
}

#[tokio::test]
async fn static_topic_defaults_and_delete_topic_enable_come_from_the_broker_config() {
    let dir = tempfile::tempdir().unwrap();
    let flags = crate::config::Flags {
        log_cleanup_policy: Some("compact".into()),
        compression_type: Some("zstd".into()),
        unclean_leader_election_enable: Some(true),
        delete_topic_enable: Some(false),
        ..crate::config::Flags::default()
    };
    let b = super::group_wire_tests::broker_with(dir.path(), flags).await;
    for (key, value) in [
        ("cleanup.policy", "compact"),
        ("compression.type", "zstd"),
        ("unclean.leader.election.enable", "true"),
    ] {
        let found = described(&b, 2, "t", key).await.map(|(value, _)| value);
        assert_eq!(found.as_deref(), Some(value), "{key}: the broker's default");
    }
    let compacted = crate::test_support::partition(&b, "t", 0);
    assert!(compacted.with_log(|log| log.config().compact));
    for v in versions(ApiKey::DeleteTopics) {
        let request = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_name(Some(topic("t"))),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![topic("t")])
        };
        let response: DeleteTopicsResponse = call(&b, ApiKey::DeleteTopics, v, &request).await;
        let expected = if v >= 3 { 73 } else { 42 };
        assert_eq!(
            response.responses[0].error_code, expected,
            "v{v}: TOPIC_DELETION_DISABLED (INVALID_REQUEST before v3)"
        );
    }
    assert!(b.metadata.image().topic("t").is_some(), "nothing deleted");
}

/// Produce is advertised from v0, as Apache Kafka 4.0 does (KAFKA-18659: librdkafka before
/// 2.11.1 stops compressing otherwise), but a request at v0-v2 is still refused: dispatch
/// closes the connection with the reason, as Kafka's socket server does.
#[tokio::test]
async fn produce_is_advertised_from_v0_and_refused_below_v3() {
    use bytes::BufMut;
    use kafka_protocol::protocol::Encodable;

    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let response: ApiVersionsResponse =
        call(&b, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).await;
    let produce = response
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .expect("Produce is advertised");
    assert_eq!(produce.min_version, 0, "advertised from v0");
    assert_eq!(
        produce.max_version, 13,
        "a new cluster is at transaction.version 2"
    );

    for v in 0..=2 {
        let mut frame = bytes::BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(ApiKey::Produce as i16)
            .with_request_api_version(v)
            .with_correlation_id(1)
            .encode(&mut frame, 1)
            .unwrap();
        // A v0-v2 body: acks, timeout, no topics.
        frame.put_i16(-1);
        frame.put_i32(1_000);
        frame.put_i32(0);
        let client = std::sync::Arc::new(super::Client::new(std::sync::Arc::from("/127.0.0.1")));
        match super::dispatch(&b, frame.freeze(), &client) {
            Err(super::DispatchError::UnsupportedVersion { version, .. }) => {
                assert_eq!(version, v)
            }
            Err(other) => panic!("Produce v{v}: {other}"),
            Ok(_) => panic!("Produce v{v} was served"),
        }
    }
}
