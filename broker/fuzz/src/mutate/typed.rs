//! Typed mutation: decode a request with kafka-protocol, change a field that matters to the
//! broker's bookkeeping (partition counts, replication factors, names, offsets, sizes,
//! generations, producer ids) to an extreme, and encode it again at the same version.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::values::{i16_edge, i32_edge, i64_edge, name};
use crate::rng::Rng;

/// Names the typed mutator uses to make requests plausible (existing topics and groups).
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Topics the run created.
    pub topics: Vec<String>,
    /// Consumer groups seen in the corpus.
    pub groups: Vec<String>,
}

/// Mutates one field of `request`; returns what it did, or None for request kinds this
/// mutator does not know (the caller then mutates bytes instead).
pub fn mutate(request: &mut RequestKind, rng: &mut Rng, vocab: &Vocabulary) -> Option<String> {
    let topics = &vocab.topics;
    match request {
        RequestKind::CreateTopics(r) => Some(create_topics(r, rng, topics)),
        RequestKind::CreatePartitions(r) => Some(create_partitions(r, rng, topics)),
        RequestKind::DeleteTopics(r) => {
            let n = name(rng, topics);
            let what = format!("DeleteTopics name {:?}", short(&n));
            r.topic_names.push(TopicName(n.clone()));
            r.topics
                .push(DeleteTopicState::default().with_name(Some(TopicName(n))));
            Some(what)
        }
        RequestKind::Metadata(r) => Some(metadata(r, rng, topics)),
        RequestKind::Fetch(r) => Some(fetch(r, rng)),
        RequestKind::ListOffsets(r) => {
            let ts = i64_edge(rng);
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.timestamp = ts;
            }
            Some(format!("ListOffsets timestamp {ts}"))
        }
        RequestKind::DeleteRecords(r) => {
            let off = i64_edge(rng);
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.offset = off;
            }
            Some(format!("DeleteRecords offset {off}"))
        }
        RequestKind::OffsetCommit(r) => Some(offset_commit(r, rng, vocab)),
        RequestKind::JoinGroup(r) => Some(join_group(r, rng, vocab)),
        RequestKind::SyncGroup(r) => {
            r.generation_id = i32_edge(rng);
            let garbage = rng.bytes_between(0, 64);
            for a in r.assignments.iter_mut() {
                a.assignment = garbage.clone().into();
            }
            Some(format!(
                "SyncGroup generation {} and a {}-byte garbage assignment",
                r.generation_id,
                garbage.len()
            ))
        }
        RequestKind::Heartbeat(r) => {
            r.generation_id = i32_edge(rng);
            r.member_id = name(rng, &vocab.groups);
            Some(format!("Heartbeat generation {}", r.generation_id))
        }
        RequestKind::InitProducerId(r) => Some(init_producer_id(r, rng, topics)),
        RequestKind::AddPartitionsToTxn(r) => Some(add_partitions_to_txn(r, rng, topics)),
        RequestKind::Produce(r) => Some(produce(r, rng, topics)),
        RequestKind::IncrementalAlterConfigs(r) => {
            let (k, v) = config_pair(rng);
            let what = format!("IncrementalAlterConfigs {k}={v:?}");
            for res in r.resources.iter_mut() {
                res.configs.push(
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_config_operation(rng.below(5) as i8)
                        .with_value(v.clone().map(StrBytes::from_string)),
                );
            }
            Some(what)
        }
        RequestKind::AlterConfigs(r) => {
            let (k, v) = config_pair(rng);
            let what = format!("AlterConfigs {k}={v:?}");
            for res in r.resources.iter_mut() {
                res.configs.push(
                    alter_configs_request::AlterableConfig::default()
                        .with_name(StrBytes::from_string(k.clone()))
                        .with_value(v.clone().map(StrBytes::from_string)),
                );
            }
            Some(what)
        }
        _ => None,
    }
}

fn short(s: &str) -> String {
    if s.len() > 24 {
        format!(
            "{}…({} bytes)",
            s.chars().take(24).collect::<String>(),
            s.len()
        )
    } else {
        s.to_string()
    }
}

fn create_topics(r: &mut CreateTopicsRequest, rng: &mut Rng, topics: &[String]) -> String {
    if r.topics.is_empty() {
        r.topics
            .push(CreatableTopic::default().with_name(TopicName("fz-new-0".into())));
    }
    let i = rng.below(r.topics.len());
    let t = &mut r.topics[i];
    match rng.below(6) {
        0 => {
            t.num_partitions = i32_edge(rng);
            format!("CreateTopics num_partitions {}", t.num_partitions)
        }
        1 => {
            t.replication_factor = i16_edge(rng);
            format!("CreateTopics replication_factor {}", t.replication_factor)
        }
        2 => {
            t.name = TopicName(name(rng, topics));
            format!("CreateTopics name {:?}", short(&t.name))
        }
        3 => {
            let parts = rng.below(4) as i32;
            t.assignments = (0..parts)
                .map(|p| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(if rng.chance(30) { i32_edge(rng) } else { p })
                        .with_broker_ids(vec![BrokerId(i32_edge(rng))])
                })
                .collect();
            format!("CreateTopics {parts} hostile replica assignments")
        }
        4 => {
            let (k, v) = config_pair(rng);
            t.configs.push(
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(v.clone().map(StrBytes::from_string)),
            );
            format!("CreateTopics config {k}={v:?}")
        }
        _ => {
            let dup = t.clone();
            r.topics.push(dup);
            "CreateTopics duplicate entry".into()
        }
    }
}

fn create_partitions(r: &mut CreatePartitionsRequest, rng: &mut Rng, topics: &[String]) -> String {
    if r.topics.is_empty() {
        r.topics
            .push(CreatePartitionsTopic::default().with_name(TopicName(name(rng, topics))));
    }
    let i = rng.below(r.topics.len());
    let t = &mut r.topics[i];
    match rng.below(4) {
        0 => {
            t.count = i32_edge(rng);
            format!("CreatePartitions count {}", t.count)
        }
        1 => {
            t.name = TopicName(name(rng, topics));
            format!("CreatePartitions name {:?}", short(&t.name))
        }
        2 => {
            let n = rng.below(4);
            t.assignments = Some(
                (0..n)
                    .map(|_| {
                        CreatePartitionsAssignment::default()
                            .with_broker_ids(vec![BrokerId(i32_edge(rng))])
                    })
                    .collect(),
            );
            format!("CreatePartitions {n} hostile assignments")
        }
        _ => {
            let dup = t.clone();
            r.topics.push(dup);
            "CreatePartitions duplicate entry".into()
        }
    }
}

fn metadata(r: &mut MetadataRequest, rng: &mut Rng, topics: &[String]) -> String {
    match rng.below(3) {
        0 => {
            r.topics = None;
            "Metadata all topics".into()
        }
        1 => {
            let n = rng.below(300);
            r.topics = Some(
                (0..n)
                    .map(|_| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(name(rng, topics))))
                    })
                    .collect(),
            );
            r.allow_auto_topic_creation = rng.chance(50);
            format!(
                "Metadata {n} hostile names, auto-create {}",
                r.allow_auto_topic_creation
            )
        }
        _ => {
            r.topics = Some(vec![MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(uuid_edge(rng))]);
            "Metadata by topic id only".into()
        }
    }
}

fn uuid_edge(rng: &mut Rng) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(rng.next_u64(), rng.next_u64())
}

fn fetch(r: &mut FetchRequest, rng: &mut Rng) -> String {
    // Long polls only stall the runner: keep the wait short unless it is the field under test.
    r.max_wait_ms = r.max_wait_ms.clamp(0, 100);
    match rng.below(6) {
        0 => {
            let off = i64_edge(rng);
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.fetch_offset = off;
            }
            format!("Fetch offset {off}")
        }
        1 => {
            r.max_bytes = i32_edge(rng);
            format!("Fetch max_bytes {}", r.max_bytes)
        }
        2 => {
            let m = i32_edge(rng);
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.partition_max_bytes = m;
            }
            format!("Fetch partition_max_bytes {m}")
        }
        3 => {
            r.isolation_level = rng.next_u64() as i8;
            r.session_id = i32_edge(rng);
            r.session_epoch = i32_edge(rng);
            format!(
                "Fetch isolation {} session {}/{}",
                r.isolation_level, r.session_id, r.session_epoch
            )
        }
        4 => {
            let p = i32_edge(rng);
            for part in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                part.partition = p;
            }
            format!("Fetch partition {p}")
        }
        _ => {
            r.max_wait_ms = rng.below(3000) as i32;
            r.min_bytes = i32_edge(rng);
            format!("Fetch max_wait {} min_bytes {}", r.max_wait_ms, r.min_bytes)
        }
    }
}

fn offset_commit(r: &mut OffsetCommitRequest, rng: &mut Rng, vocab: &Vocabulary) -> String {
    match rng.below(4) {
        0 => {
            let off = i64_edge(rng);
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.committed_offset = off;
            }
            format!("OffsetCommit offset {off}")
        }
        1 => {
            let meta = "m".repeat(rng.below(70_000));
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.committed_metadata = Some(StrBytes::from_string(meta.clone()));
            }
            format!("OffsetCommit {}-byte metadata", meta.len())
        }
        2 => {
            r.generation_id_or_member_epoch = i32_edge(rng);
            r.retention_time_ms = i64_edge(rng);
            format!(
                "OffsetCommit generation {} retention {}",
                r.generation_id_or_member_epoch, r.retention_time_ms
            )
        }
        _ => {
            r.group_id = GroupId(name(rng, &vocab.groups));
            let p = i32_edge(rng);
            for part in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                part.partition_index = p;
            }
            format!("OffsetCommit group {:?} partition {p}", short(&r.group_id))
        }
    }
}

fn join_group(r: &mut JoinGroupRequest, rng: &mut Rng, vocab: &Vocabulary) -> String {
    // A real rebalance would hold the runner for the rebalance timeout: keep it short.
    r.rebalance_timeout_ms = r.rebalance_timeout_ms.clamp(-1, 200);
    match rng.below(4) {
        0 => {
            r.session_timeout_ms = i32_edge(rng);
            format!("JoinGroup session timeout {}", r.session_timeout_ms)
        }
        1 => {
            r.protocols.clear();
            "JoinGroup no protocols".into()
        }
        2 => {
            let n = rng.below(200) + 2;
            let meta = rng.bytes_between(0, 32);
            r.protocols = (0..n)
                .map(|i| {
                    JoinGroupRequestProtocol::default()
                        .with_name(StrBytes::from_string(format!("p{}", i % 3)))
                        .with_metadata(meta.clone().into())
                })
                .collect();
            format!("JoinGroup {n} protocols (duplicates) with garbage metadata")
        }
        _ => {
            r.group_id = GroupId(name(rng, &vocab.groups));
            r.member_id = name(rng, &[]);
            format!("JoinGroup group {:?}", short(&r.group_id))
        }
    }
}

fn init_producer_id(r: &mut InitProducerIdRequest, rng: &mut Rng, topics: &[String]) -> String {
    match rng.below(3) {
        0 => {
            r.transaction_timeout_ms = i32_edge(rng);
            format!("InitProducerId timeout {}", r.transaction_timeout_ms)
        }
        1 => {
            r.producer_id = ProducerId(i64_edge(rng));
            r.producer_epoch = i16_edge(rng);
            format!(
                "InitProducerId id {} epoch {}",
                r.producer_id.0, r.producer_epoch
            )
        }
        _ => {
            r.transactional_id = Some(TransactionalId(name(rng, topics)));
            "InitProducerId hostile transactional id".into()
        }
    }
}

fn add_partitions_to_txn(
    r: &mut AddPartitionsToTxnRequest,
    rng: &mut Rng,
    topics: &[String],
) -> String {
    let pid = i64_edge(rng);
    let epoch = i16_edge(rng);
    let part = i32_edge(rng);
    let topic = AddPartitionsToTxnTopic::default()
        .with_name(TopicName(name(rng, topics)))
        .with_partitions(vec![part, part]);
    r.v3_and_below_producer_id = ProducerId(pid);
    r.v3_and_below_producer_epoch = epoch;
    r.v3_and_below_topics.push(topic.clone());
    for t in r.transactions.iter_mut() {
        t.producer_id = ProducerId(pid);
        t.producer_epoch = epoch;
        t.topics.push(topic.clone());
    }
    format!("AddPartitionsToTxn producer {pid}/{epoch} partition {part} twice")
}

fn produce(r: &mut ProduceRequest, rng: &mut Rng, topics: &[String]) -> String {
    match rng.below(4) {
        0 => {
            r.acks = *rng.pick(&[-2, -1, 1, 2, i16::MAX, i16::MIN]).unwrap_or(&2);
            format!("Produce acks {}", r.acks)
        }
        1 => {
            let p = i32_edge(rng);
            for d in r
                .topic_data
                .iter_mut()
                .flat_map(|t| t.partition_data.iter_mut())
            {
                d.index = p;
            }
            format!("Produce partition {p}")
        }
        2 => {
            let n = name(rng, topics);
            let what = format!("Produce topic {:?}", short(&n));
            for t in r.topic_data.iter_mut() {
                t.name = TopicName(n.clone());
            }
            what
        }
        _ => {
            r.timeout_ms = i32_edge(rng);
            let dup = r.topic_data.first().cloned();
            r.topic_data.extend(dup);
            format!(
                "Produce timeout {} with a duplicate topic entry",
                r.timeout_ms
            )
        }
    }
}

/// A config to set: a real key with a hostile value, or a nonsense key.
fn config_pair(rng: &mut Rng) -> (String, Option<String>) {
    const KEYS: [&str; 10] = [
        "segment.bytes",
        "retention.ms",
        "retention.bytes",
        "max.message.bytes",
        "cleanup.policy",
        "min.insync.replicas",
        "message.timestamp.type",
        "segment.ms",
        "compression.type",
        "no.such.config",
    ];
    const VALUES: [&str; 10] = [
        "0",
        "-1",
        "-2",
        "9223372036854775807",
        "2147483648",
        "compact,delete",
        "LogAppendTime",
        "zstd",
        "",
        "banana",
    ];
    let key = rng
        .pick(&KEYS)
        .copied()
        .unwrap_or("segment.bytes")
        .to_string();
    let value = if rng.chance(10) {
        None
    } else {
        rng.pick(&VALUES).map(|v| v.to_string())
    };
    (key, value)
}
