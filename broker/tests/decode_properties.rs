//! Property tests for the kafka-protocol decoders the broker runs on bytes from the network.
//!
//! Why this file exists (issue 28): the fuzz harness panicked in the vendored kafka-protocol
//! (`records.rs`: `min_offset + offset_delta as i64`, "attempt to add with overflow"), and the
//! same crate reserved whatever a peer claimed (array counts, string and byte lengths, record and
//! header counts, a Snappy header's length). The crate under `broker/vendor/kafka-protocol` is
//! patched so that every decoder answers any bytes with `Ok` or `Err`: no panic, no silently
//! wrapped value, no allocation a peer merely claims (its `PATCHES.md` lists each site). These
//! tests hold it to that, through the same entry points the broker uses:
//!
//! - request frames: `protocol::read_sized` (as `connection.rs` reads them), then what
//!   `handlers::dispatch` does with a frame: `RequestPrefix::parse`, `ApiKey::try_from`,
//!   `RequestHeader::decode` at `request_header_version`, and `Decodable::decode` of the request
//!   type it routes the API key to, for every version the codec knows of every API the broker
//!   may serve (`protocol::routed_apis`; dispatch decodes unserved known versions too, to answer
//!   UNSUPPORTED_VERSION);
//! - record batches v2: `RecordBatchDecoder::{decode, decode_all, decode_batch_info,
//!   decode_with_custom_compression}`.
//!
//! Inputs are arbitrary bytes and valid inputs (built with the crate's encoders or field by field)
//! mutated: bits flipped, counts and lengths set to huge or negative values, varints made
//! over-long, attribute bits set, bytes inserted and removed, with a batch's CRC recomputed so
//! the mutation reaches the record decoding. Whatever decodes is encoded again, as the broker
//! re-encodes decoded records: encoding must return `Ok` or `Err` too. The test profile keeps
//! overflow checks on, so an unchecked overflow panics here even though release builds would
//! wrap.
//!
//! On Linux, `suite_stays_within_an_address_space_limit` runs the suite again in a child process
//! whose address space is capped at what it uses plus 512 MiB: a decoder that allocates a length
//! it was only told about (2 GiB, 4 GiB) aborts that child and fails the test.
//!
//! The runs are deterministic: a fixed ChaCha seed, a fixed case count, no failure persistence.

use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use tributary_broker::protocol::{read_sized, routed_apis, supported_range, RequestPrefix};

// ---------------------------------------------------------------------------------------------
// Running properties deterministically.

/// The seed of every property run here: each machine runs the same cases.
const SEED: [u8; 32] = *b"tributary issue 28 decode seed!!";

/// Runs `test` on `cases` values of `strategy` from the fixed seed; on a failure (a returned
/// error or a panic, which proptest catches) panics with the shrunk input.
fn check<S>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    enter();
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &SEED));
    if let Err(failure) = runner.run(&strategy, test) {
        panic!("property {name} failed: {failure}");
    }
}

// ---------------------------------------------------------------------------------------------
// The address-space limit (Linux).

/// Set in the child process that runs the suite under an address-space limit.
const LIMIT_ENV: &str = "TRIBUTARY_DECODE_PROPERTIES_AS_LIMIT";

/// How far above its usage at its first test the child's address space may grow.
const HEADROOM: u64 = 512 << 20;

/// Called by every test first: in the limited child, caps the address space once.
fn enter() {
    static LIMITED: OnceLock<()> = OnceLock::new();
    if std::env::var_os(LIMIT_ENV).is_some() {
        LIMITED.get_or_init(limit_address_space);
    }
}

#[cfg(target_os = "linux")]
fn limit_address_space() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let used_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmSize:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmSize in /proc/self/status");
    let limit = used_kib * 1024 + HEADROOM;
    let current = getrlimit(Resource::As);
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(current.current.map_or(limit, |c| c.min(limit))),
            maximum: current.maximum,
        },
    )
    .expect("setrlimit(RLIMIT_AS)");
}

#[cfg(not(target_os = "linux"))]
fn limit_address_space() {}

/// Runs every other test of this file again, one at a time, in a child process whose address
/// space is capped (see [`enter`]): an allocation of a claimed length fails there and aborts it.
#[cfg(target_os = "linux")]
#[test]
fn suite_stays_within_an_address_space_limit() {
    if std::env::var_os(LIMIT_ENV).is_some() {
        return;
    }
    let exe = std::env::current_exe().expect("current test binary");
    let output = std::process::Command::new(exe)
        .args([
            "--test-threads=1",
            "--skip",
            "suite_stays_within_an_address_space_limit",
        ])
        .env(LIMIT_ENV, "1")
        .output()
        .expect("run the suite in a child process");
    assert!(
        output.status.success(),
        "the suite failed under a {} MiB address-space headroom ({}):\n{}\n{}",
        HEADROOM >> 20,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

// ---------------------------------------------------------------------------------------------
// Requests: the decoding `handlers::dispatch` does.

/// What became of a frame.
#[derive(Debug)]
enum Outcome {
    /// Dispatch stops before decoding a body (short frame, unknown API or version, or an
    /// ApiVersions version it answers without decoding).
    Refused,
    /// The header or body did not decode: dispatch closes the connection.
    Malformed(String),
    /// The request decoded (and encoded again).
    Decoded,
}

macro_rules! routed_requests {
    ($($api:ident => $request:ty),* $(,)?) => {
        /// The API keys `handlers::dispatch` routes, in its order.
        const ROUTED: &[ApiKey] = &[$(ApiKey::$api),*];

        /// The versions the codec knows for `api`'s request type.
        fn known_versions(api: ApiKey) -> Option<(i16, i16)> {
            match api {
                $(ApiKey::$api => {
                    let known = <$request as Message>::VERSIONS;
                    Some((known.min, known.max))
                })*
                _ => None,
            }
        }

        /// Decodes `body` as dispatch does for `api` at `version`, then encodes what decoded.
        fn decode_body(api: ApiKey, body: &mut Bytes, version: i16) -> Outcome {
            match api {
                $(ApiKey::$api => {
                    let known = <$request as Message>::VERSIONS;
                    if !(known.min..=known.max).contains(&version) {
                        return Outcome::Refused;
                    }
                    match <$request as Decodable>::decode(body, version) {
                        Ok(request) => {
                            reencode(&request, version);
                            Outcome::Decoded
                        }
                        Err(e) => Outcome::Malformed(format!("{e:#}")),
                    }
                })*
                _ => Outcome::Refused,
            }
        }

        /// `api`'s default request encoded at `version` (body only), if it encodes.
        fn default_body(api: ApiKey, version: i16) -> Option<Bytes> {
            match api {
                $(ApiKey::$api => body_of(&<$request>::default(), version),)*
                _ => None,
            }
        }
    };
}

routed_requests! {
    ApiVersions => ApiVersionsRequest,
    Metadata => MetadataRequest,
    Produce => ProduceRequest,
    Fetch => FetchRequest,
    ListOffsets => ListOffsetsRequest,
    OffsetForLeaderEpoch => OffsetForLeaderEpochRequest,
    CreateTopics => CreateTopicsRequest,
    DeleteTopics => DeleteTopicsRequest,
    CreatePartitions => CreatePartitionsRequest,
    DescribeConfigs => DescribeConfigsRequest,
    ListConfigResources => ListConfigResourcesRequest,
    AlterConfigs => AlterConfigsRequest,
    IncrementalAlterConfigs => IncrementalAlterConfigsRequest,
    DescribeCluster => DescribeClusterRequest,
    UpdateFeatures => UpdateFeaturesRequest,
    DescribeTopicPartitions => DescribeTopicPartitionsRequest,
    DescribeLogDirs => DescribeLogDirsRequest,
    AlterReplicaLogDirs => AlterReplicaLogDirsRequest,
    DeleteRecords => DeleteRecordsRequest,
    InitProducerId => InitProducerIdRequest,
    FindCoordinator => FindCoordinatorRequest,
    JoinGroup => JoinGroupRequest,
    SyncGroup => SyncGroupRequest,
    Heartbeat => HeartbeatRequest,
    LeaveGroup => LeaveGroupRequest,
    OffsetCommit => OffsetCommitRequest,
    OffsetFetch => OffsetFetchRequest,
    OffsetDelete => OffsetDeleteRequest,
    ListGroups => ListGroupsRequest,
    DescribeGroups => DescribeGroupsRequest,
    DeleteGroups => DeleteGroupsRequest,
    AddPartitionsToTxn => AddPartitionsToTxnRequest,
    AddOffsetsToTxn => AddOffsetsToTxnRequest,
    TxnOffsetCommit => TxnOffsetCommitRequest,
    EndTxn => EndTxnRequest,
    ElectLeaders => ElectLeadersRequest,
    AlterPartitionReassignments => AlterPartitionReassignmentsRequest,
    ListPartitionReassignments => ListPartitionReassignmentsRequest,
    SaslHandshake => SaslHandshakeRequest,
    SaslAuthenticate => SaslAuthenticateRequest,
    DescribeAcls => DescribeAclsRequest,
    CreateAcls => CreateAclsRequest,
    DeleteAcls => DeleteAclsRequest,
    DescribeClientQuotas => DescribeClientQuotasRequest,
    AlterClientQuotas => AlterClientQuotasRequest,
    DescribeUserScramCredentials => DescribeUserScramCredentialsRequest,
    AlterUserScramCredentials => AlterUserScramCredentialsRequest,
    CreateDelegationToken => CreateDelegationTokenRequest,
    RenewDelegationToken => RenewDelegationTokenRequest,
    ExpireDelegationToken => ExpireDelegationTokenRequest,
    DescribeDelegationToken => DescribeDelegationTokenRequest,
    DescribeProducers => DescribeProducersRequest,
    ListTransactions => ListTransactionsRequest,
    WriteTxnMarkers => WriteTxnMarkersRequest,
    DescribeTransactions => DescribeTransactionsRequest,
    ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest,
    ConsumerGroupDescribe => ConsumerGroupDescribeRequest,
    ShareGroupHeartbeat => ShareGroupHeartbeatRequest,
    ShareGroupDescribe => ShareGroupDescribeRequest,
    ShareFetch => ShareFetchRequest,
    ShareAcknowledge => ShareAcknowledgeRequest,
    DescribeShareGroupOffsets => DescribeShareGroupOffsetsRequest,
    AlterShareGroupOffsets => AlterShareGroupOffsetsRequest,
    DeleteShareGroupOffsets => DeleteShareGroupOffsetsRequest,
    InitializeShareGroupState => InitializeShareGroupStateRequest,
    ReadShareGroupState => ReadShareGroupStateRequest,
    WriteShareGroupState => WriteShareGroupStateRequest,
    DeleteShareGroupState => DeleteShareGroupStateRequest,
    ReadShareGroupStateSummary => ReadShareGroupStateSummaryRequest,
    GetTelemetrySubscriptions => GetTelemetrySubscriptionsRequest,
    PushTelemetry => PushTelemetryRequest,
}

/// Encodes a decoded value again, size first, as the broker does with responses and records:
/// it may fail, it must not panic.
fn reencode<T: Encodable>(value: &T, version: i16) {
    if let Ok(size) = value.compute_size(version) {
        let mut buf = BytesMut::with_capacity(size.min(1 << 20));
        let _ = value.encode(&mut buf, version);
    }
}

fn body_of<T: Encodable>(value: &T, version: i16) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    value.encode(&mut buf, version).ok()?;
    Some(buf.freeze())
}

/// The decoding `handlers::dispatch` does with one frame (size prefix removed).
fn decode_frame(frame: Bytes) -> Outcome {
    let Some(prefix) = RequestPrefix::parse(&frame) else {
        return Outcome::Refused;
    };
    let Ok(api) = ApiKey::try_from(prefix.api_key) else {
        return Outcome::Refused;
    };
    let version = prefix.api_version;
    let served = supported_range(api).is_some_and(|(min, max)| (min..=max).contains(&version));
    if !served && api == ApiKey::ApiVersions {
        return Outcome::Refused;
    }
    let mut body = frame;
    if let Err(e) = RequestHeader::decode(&mut body, api.request_header_version(version)) {
        return Outcome::Malformed(format!("{e:#}"));
    }
    decode_body(api, &mut body, version)
}

/// The largest frame these tests let `read_sized` accept.
const MAX_FRAME: usize = 1 << 20;

/// Reads size-prefixed frames from `stream` as `connection.rs` does (`read_sized` with a
/// minimum of 8 bytes) and decodes each as dispatch does, until the stream ends or a frame
/// cannot be read or decoded (which closes a connection).
fn decode_stream(stream: &[u8]) {
    let mut reader = stream;
    loop {
        let read = futures::executor::block_on(read_sized(&mut reader, 8, MAX_FRAME));
        match read {
            Ok(Some(frame)) => {
                if let Outcome::Malformed(_) = decode_frame(frame) {
                    return;
                }
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// A request header for `api` at `version`, encoded at the header version dispatch decodes.
fn header_of(api: ApiKey, version: i16) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("p")));
    body_of(&header, api.request_header_version(version)).expect("request headers encode")
}

/// A request frame (no size prefix) of a valid request.
#[derive(Debug, Clone)]
struct ValidFrame {
    api: ApiKey,
    version: i16,
    frame: Bytes,
}

fn frame_of(api: ApiKey, version: i16, body: &[u8]) -> Bytes {
    let mut frame = BytesMut::new();
    frame.extend_from_slice(&header_of(api, version));
    frame.extend_from_slice(body);
    frame.freeze()
}

/// Every (API, version) dispatch decodes, as a pair: every version the codec knows of every
/// API dispatch routes, but for ApiVersions only the served ones (dispatch answers the others
/// without decoding them).
fn routed_versions() -> Vec<(ApiKey, i16)> {
    ROUTED
        .iter()
        .filter_map(|&api| known_versions(api).map(|(min, max)| (api, min, max)))
        .flat_map(|(api, min, max)| (min..=max).map(move |v| (api, v)))
        .filter(|&(api, v)| {
            api != ApiKey::ApiVersions
                || supported_range(api).is_some_and(|(min, max)| (min..=max).contains(&v))
        })
        .collect()
}

fn name(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

/// Valid frames: every routed request at every version it knows, with its defaults (empty
/// arrays) and, for the APIs below, filled in (arrays of structs, strings, bytes, a record
/// batch, unknown tagged fields where the version is flexible).
fn valid_frames() -> &'static [ValidFrame] {
    static FRAMES: OnceLock<Vec<ValidFrame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let mut frames = Vec::new();
        let tagged = Bytes::from_static(b"tag!");
        for (api, version) in routed_versions() {
            let filled: Option<Bytes> = match api {
                ApiKey::Metadata => body_of(
                    &MetadataRequest::default()
                        .with_topics(Some(vec![
                            MetadataRequestTopic::default().with_name(Some(TopicName(name("a")))),
                            MetadataRequestTopic::default().with_name(Some(TopicName(name("bb")))),
                        ]))
                        .with_unknown_tagged_field(9, tagged.clone()),
                    version,
                ),
                ApiKey::Produce => {
                    let topic = if version >= 13 {
                        TopicProduceData::default().with_topic_id(uuid::Uuid::from_u128(7))
                    } else {
                        TopicProduceData::default().with_name(TopicName(name("t")))
                    };
                    body_of(
                        &ProduceRequest::default()
                            .with_acks(-1)
                            .with_timeout_ms(1000)
                            .with_topic_data(vec![topic.with_partition_data(vec![
                                PartitionProduceData::default()
                                    .with_index(0)
                                    .with_records(Some(encoded_batch(3, Compression::None))),
                            ])])
                            .with_unknown_tagged_field(3, tagged.clone()),
                        version,
                    )
                }
                ApiKey::Fetch => {
                    let topic = if version >= 13 {
                        FetchTopic::default().with_topic_id(uuid::Uuid::from_u128(7))
                    } else {
                        FetchTopic::default().with_topic(TopicName(name("t")))
                    };
                    body_of(
                        &FetchRequest::default()
                            .with_max_wait_ms(500)
                            .with_topics(vec![topic.with_partitions(vec![
                                FetchPartition::default()
                                    .with_partition(0)
                                    .with_fetch_offset(42)
                                    .with_partition_max_bytes(1 << 20),
                            ])])
                            .with_unknown_tagged_field(5, tagged.clone()),
                        version,
                    )
                }
                ApiKey::CreateTopics => body_of(
                    &CreateTopicsRequest::default()
                        .with_topics(vec![CreatableTopic::default()
                            .with_name(TopicName(name("t")))
                            .with_num_partitions(3)
                            .with_replication_factor(1)
                            .with_configs(vec![CreatableTopicConfig::default()
                                .with_name(name("cleanup.policy"))
                                .with_value(Some(name("compact")))])])
                        .with_timeout_ms(1000)
                        .with_unknown_tagged_field(4, tagged.clone()),
                    version,
                ),
                ApiKey::OffsetCommit => {
                    let topic = if version >= 10 {
                        OffsetCommitRequestTopic::default().with_topic_id(uuid::Uuid::from_u128(7))
                    } else {
                        OffsetCommitRequestTopic::default().with_name(TopicName(name("t")))
                    };
                    body_of(
                        &OffsetCommitRequest::default()
                            .with_group_id(GroupId(name("g")))
                            .with_member_id(name("m"))
                            .with_topics(vec![topic.with_partitions(vec![
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(1)
                                    .with_committed_offset(5)
                                    .with_committed_metadata(Some(name("meta"))),
                            ])]),
                        version,
                    )
                }
                ApiKey::OffsetFetch if version < 8 => body_of(
                    &OffsetFetchRequest::default()
                        .with_group_id(GroupId(name("g")))
                        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                            .with_name(TopicName(name("t")))
                            .with_partition_indexes(vec![0, 1])])),
                    version,
                ),
                ApiKey::OffsetFetch => {
                    let topic = if version >= 10 {
                        OffsetFetchRequestTopics::default().with_topic_id(uuid::Uuid::from_u128(7))
                    } else {
                        OffsetFetchRequestTopics::default().with_name(TopicName(name("t")))
                    };
                    body_of(
                        &OffsetFetchRequest::default()
                            .with_groups(vec![OffsetFetchRequestGroup::default()
                                .with_group_id(GroupId(name("g")))
                                .with_topics(Some(vec![topic.with_partition_indexes(vec![0, 1])]))])
                            .with_unknown_tagged_field(2, tagged.clone()),
                        version,
                    )
                }
                ApiKey::JoinGroup => body_of(
                    &JoinGroupRequest::default()
                        .with_group_id(GroupId(name("g")))
                        .with_session_timeout_ms(10_000)
                        .with_protocol_type(name("consumer"))
                        .with_protocols(vec![JoinGroupRequestProtocol::default()
                            .with_name(name("range"))
                            .with_metadata(Bytes::from_static(b"\x00\x01subscription"))]),
                    version,
                ),
                ApiKey::SyncGroup => body_of(
                    &SyncGroupRequest::default()
                        .with_group_id(GroupId(name("g")))
                        .with_member_id(name("m"))
                        .with_assignments(vec![SyncGroupRequestAssignment::default()
                            .with_member_id(name("m"))
                            .with_assignment(Bytes::from_static(b"\x00\x01assignment"))]),
                    version,
                ),
                ApiKey::DescribeConfigs => body_of(
                    &DescribeConfigsRequest::default().with_resources(vec![
                        DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(name("t"))
                            .with_configuration_keys(Some(vec![name("retention.ms")])),
                    ]),
                    version,
                ),
                ApiKey::SaslAuthenticate => body_of(
                    &SaslAuthenticateRequest::default()
                        .with_auth_bytes(Bytes::from_static(b"\x00user\x00secret")),
                    version,
                ),
                _ => None,
            };
            for body in [default_body(api, version), filled].into_iter().flatten() {
                frames.push(ValidFrame {
                    api,
                    version,
                    frame: frame_of(api, version, &body),
                });
            }
        }
        frames
    })
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Values that make counts, lengths, offsets and timestamps lie.
const INTERESTING_I32: &[i32] = &[
    i32::MAX,
    i32::MAX - 1,
    i32::MIN,
    -1,
    -2,
    0,
    1,
    0x0001_0000,
    0x00ff_ffff,
];
const INTERESTING_I64: &[i64] = &[
    i64::MAX,
    i64::MAX - 1,
    i64::MAX - 0x7fff_ffff,
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    0x7fff_ffff,
];

/// Varints that lie: huge, negative, over-long (6 and 11 bytes), with bits past 32 or 64.
fn interesting_varints() -> Vec<Vec<u8>> {
    vec![
        vec![0xff, 0xff, 0xff, 0xff, 0x0f], // u32::MAX / zigzag i32::MIN
        vec![0xfe, 0xff, 0xff, 0xff, 0x0f], // zigzag i32::MAX
        vec![0x80, 0x80, 0x80, 0x80, 0x08], // 2^31 (compact length 2^31 - 1)
        vec![0xff, 0xff, 0xff, 0xff, 0x7f], // bits past u32
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 6 bytes
        vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // zigzag i64::MAX
        vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // bits past u64
        vec![0xff; 11],                     // 11 bytes
        vec![0x01],                         // zigzag -1
        vec![0x03],                         // zigzag -2
        vec![0x00],
    ]
}

fn i32_value() -> impl Strategy<Value = i32> {
    prop_oneof![3 => prop::sample::select(INTERESTING_I32), 1 => any::<i32>()]
}

fn i64_value() -> impl Strategy<Value = i64> {
    prop_oneof![3 => prop::sample::select(INTERESTING_I64), 1 => any::<i64>()]
}

/// One change to a byte string; positions are fractions of its length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    SetI16(Index, i16),
    SetI32(Index, i32),
    SetI64(Index, i64),
    SetVarint(Index, Vec<u8>),
    Insert(Index, Vec<u8>),
    Remove(Index, u8),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        2 => (any::<Index>(), prop_oneof![
            prop::sample::select(&[-1i16, -2, i16::MAX, i16::MIN, 0x7fff][..]),
            any::<i16>()
        ])
        .prop_map(|(at, v)| Mutation::SetI16(at, v)),
        4 => (any::<Index>(), i32_value()).prop_map(|(at, v)| Mutation::SetI32(at, v)),
        2 => (any::<Index>(), i64_value()).prop_map(|(at, v)| Mutation::SetI64(at, v)),
        3 => (any::<Index>(), prop::sample::select(interesting_varints()))
            .prop_map(|(at, v)| Mutation::SetVarint(at, v)),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(at, v)| Mutation::Insert(at, v)),
        1 => (any::<Index>(), 1..16u8).prop_map(|(at, n)| Mutation::Remove(at, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Overwrites `bytes` at `at` with `with`, clipped to the end.
fn overwrite(bytes: &mut [u8], at: usize, with: &[u8]) {
    let end = (at + with.len()).min(bytes.len());
    bytes[at..end].copy_from_slice(&with[..end - at]);
}

/// Applies `mutation` to bytes `from..` of `bytes` (positions before `from` stay).
fn apply(bytes: &mut Vec<u8>, mutation: &Mutation, from: usize) {
    if bytes.len() <= from {
        if let Mutation::Insert(_, data) = mutation {
            bytes.extend_from_slice(data);
        }
        return;
    }
    let span = bytes.len() - from;
    let at = |i: &Index| from + i.index(span);
    match mutation {
        Mutation::FlipBit(i, bit) => {
            let at = at(i);
            bytes[at] ^= 1 << bit;
        }
        Mutation::SetByte(i, b) => {
            let at = at(i);
            bytes[at] = *b;
        }
        Mutation::SetI16(i, v) => overwrite(bytes, at(i), &v.to_be_bytes()),
        Mutation::SetI32(i, v) => overwrite(bytes, at(i), &v.to_be_bytes()),
        Mutation::SetI64(i, v) => overwrite(bytes, at(i), &v.to_be_bytes()),
        Mutation::SetVarint(i, v) => overwrite(bytes, at(i), v),
        Mutation::Insert(i, data) => {
            let at = from + i.index(span + 1);
            bytes.splice(at..at, data.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = at(i);
            let end = (at + usize::from(*n)).min(bytes.len());
            bytes.drain(at..end);
        }
        Mutation::Truncate(i) => bytes.truncate(at(i)),
    }
}

// ---------------------------------------------------------------------------------------------
// Request properties.

/// Arbitrary bytes as a client's byte stream: size prefixes, header and body all arbitrary
/// (half the time with a size prefix that matches, so the bytes reach the header decoder).
#[test]
fn arbitrary_streams_never_panic_the_request_decoders() {
    let strategy = (any::<bool>(), prop::collection::vec(any::<u8>(), 0..512));
    check("arbitrary streams", 3000, strategy, |(prefixed, bytes)| {
        let mut stream = Vec::with_capacity(bytes.len() + 4);
        if prefixed {
            stream.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        }
        stream.extend_from_slice(&bytes);
        decode_stream(&stream);
        Ok(())
    });
}

/// A valid header for every routed (API, version), then an arbitrary body.
#[test]
fn arbitrary_bodies_never_panic_any_routed_request_decoder() {
    let pairs = routed_versions();
    let strategy = (
        prop::sample::select(pairs),
        prop::collection::vec(any::<u8>(), 0..384),
    );
    check(
        "arbitrary bodies",
        6000,
        strategy,
        |((api, version), body)| {
            let outcome = decode_frame(frame_of(api, version, &body));
            prop_assert!(
                !matches!(outcome, Outcome::Refused),
                "{api:?} v{version} was not decoded"
            );
            Ok(())
        },
    );
}

/// Valid frames of every routed (API, version), mutated (the API key and version kept, so
/// the mutation reaches that version's decoder), then read as a stream.
#[test]
fn mutated_valid_requests_never_panic_the_request_decoders() {
    let frames = valid_frames();
    let strategy = (
        prop::sample::select(frames),
        prop::collection::vec(mutation(), 1..6),
        any::<bool>(),
    );
    check(
        "mutated requests",
        8000,
        strategy,
        |(valid, mutations, fix_size)| {
            let mut frame = valid.frame.to_vec();
            // Keep api key and version: bytes 0..4.
            for m in &mutations {
                apply(&mut frame, m, 4);
            }
            let size = if fix_size {
                frame.len() as u32
            } else {
                valid.frame.len() as u32
            };
            let mut stream = size.to_be_bytes().to_vec();
            stream.extend_from_slice(&frame);
            decode_stream(&stream);
            // And straight to dispatch's decoding, whatever the size prefix would have said.
            let _ = decode_frame(Bytes::from(frame));
            Ok(())
        },
    );
}

/// Every valid frame decodes, so the mutations above start from frames that reach the end of
/// each decoder; and every API the broker serves is one dispatch decodes, at every version it
/// serves.
#[test]
fn valid_requests_decode_and_every_served_api_is_covered() {
    enter();
    for valid in valid_frames() {
        let outcome = decode_frame(valid.frame.clone());
        assert!(
            matches!(outcome, Outcome::Decoded),
            "{:?} v{}: {outcome:?}",
            valid.api,
            valid.version
        );
    }
    for &(api, min, max) in routed_apis() {
        let (known_min, known_max) =
            known_versions(api).unwrap_or_else(|| panic!("{api:?} is served but not decoded here"));
        assert!(
            known_min <= min && max <= known_max,
            "{api:?} serves v{min}..=v{max}, the codec knows v{known_min}..=v{known_max}"
        );
        for version in min..=max {
            assert!(
                valid_frames()
                    .iter()
                    .any(|f| f.api == api && f.version == version),
                "{api:?} v{version} has no valid frame to mutate"
            );
        }
    }
    assert_eq!(
        ROUTED.len(),
        routed_apis().count(),
        "handlers::dispatch routes these APIs; keep this list in step with protocol::routed_apis"
    );
}

// ---------------------------------------------------------------------------------------------
// Record batches.

/// Byte offsets in a v2 batch header.
const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const FIRST_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;
const HEADER_LEN: usize = 61;

/// Appends a zigzag varint (Kafka's varint and varlong; a value beyond i32 where a varint is
/// read makes an over-long varint).
fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Recomputes the CRC of the batch at the start of `batch` (crc32c of attributes..end of the
/// batch, stored at bytes 17..21) so that a mutation reaches what the CRC covers.
fn fix_crc(batch: &mut [u8]) {
    if batch.len() < ATTRIBUTES {
        return;
    }
    let claimed = i32::from_be_bytes([batch[8], batch[9], batch[10], batch[11]]);
    let end = usize::try_from(claimed)
        .ok()
        .map(|len| len + 12)
        .filter(|end| (ATTRIBUTES..=batch.len()).contains(end))
        .unwrap_or(batch.len());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES..end]);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets the batch length to what follows it.
fn fix_length(batch: &mut [u8]) {
    if batch.len() >= 12 {
        let len = (batch.len() - 12) as i32;
        batch[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// One record written field by field, with optional lies.
#[derive(Debug, Clone, Default)]
struct RawRecord {
    attributes: i8,
    timestamp_delta: i64,
    /// Read as a varint: a value beyond i32 is over-long.
    offset_delta: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    length_lie: Option<i64>,
    key_length_lie: Option<i64>,
    value_length_lie: Option<i64>,
    header_count_lie: Option<i64>,
}

fn len_of(bytes: &Option<Vec<u8>>) -> i64 {
    bytes.as_ref().map_or(-1, |b| b.len() as i64)
}

impl RawRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut body = vec![self.attributes as u8];
        put_varint(&mut body, self.timestamp_delta);
        put_varint(&mut body, self.offset_delta);
        put_varint(&mut body, self.key_length_lie.unwrap_or(len_of(&self.key)));
        body.extend(self.key.iter().flatten());
        put_varint(
            &mut body,
            self.value_length_lie.unwrap_or(len_of(&self.value)),
        );
        body.extend(self.value.iter().flatten());
        put_varint(
            &mut body,
            self.header_count_lie.unwrap_or(self.headers.len() as i64),
        );
        for (key, value) in &self.headers {
            put_varint(&mut body, key.len() as i64);
            body.extend_from_slice(key);
            put_varint(&mut body, len_of(value));
            body.extend(value.iter().flatten());
        }
        put_varint(out, self.length_lie.unwrap_or(body.len() as i64));
        out.extend_from_slice(&body);
    }
}

/// A v2 batch written field by field, CRC and length right unless told otherwise.
#[derive(Debug, Clone)]
struct RawBatch {
    base_offset: i64,
    attributes: i16,
    first_timestamp: i64,
    producer_id: i64,
    base_sequence: i32,
    record_count_lie: Option<i32>,
    records: Vec<RawRecord>,
}

impl Default for RawBatch {
    fn default() -> Self {
        RawBatch {
            base_offset: 0,
            attributes: 0,
            first_timestamp: 1_700_000_000_000,
            producer_id: -1,
            base_sequence: -1,
            record_count_lie: None,
            records: vec![RawRecord {
                value: Some(b"v".to_vec()),
                ..RawRecord::default()
            }],
        }
    }
}

impl RawBatch {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_i64(self.base_offset);
        out.put_i32(0); // length, below
        out.put_i32(-1); // partition leader epoch
        out.put_i8(2); // magic
        out.put_u32(0); // crc, below
        out.put_i16(self.attributes);
        out.put_i32(self.records.len().saturating_sub(1) as i32);
        out.put_i64(self.first_timestamp);
        out.put_i64(self.first_timestamp);
        out.put_i64(self.producer_id);
        out.put_i16(-1);
        out.put_i32(self.base_sequence);
        out.put_i32(self.record_count_lie.unwrap_or(self.records.len() as i32));
        for record in &self.records {
            record.encode(&mut out);
        }
        fix_length(&mut out);
        fix_crc(&mut out);
        out
    }
}

/// Decodes `batch` through every record-batch entry point the broker uses, encodes again what
/// decodes, and returns `decode`'s result.
fn decode_batch_every_way(batch: &[u8]) -> anyhow::Result<Vec<Record>> {
    let bytes = Bytes::copy_from_slice(batch);
    let _ = RecordBatchDecoder::decode_batch_info(&mut bytes.clone());
    if let Ok(sets) = RecordBatchDecoder::decode_all(&mut bytes.clone()) {
        for set in sets {
            reencode_records(&set.records);
        }
    }
    // As storage/records.rs does: the records handed over by a custom decompressor (here the
    // bytes as they are, whatever the attributes say, so every codec bit reaches the records).
    let custom = RecordBatchDecoder::decode_with_custom_compression(
        &mut bytes.clone(),
        Some(|records: &mut Bytes, _: Compression| Ok(records.clone())),
    );
    if let Ok(set) = custom {
        reencode_records(&set.records);
    }
    let set = RecordBatchDecoder::decode(&mut bytes.clone())?;
    reencode_records(&set.records);
    Ok(set.records)
}

/// Encodes decoded records again, as compaction and the group log do.
fn reencode_records(records: &[Record]) {
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    let _ = RecordBatchEncoder::encode(&mut out, records, &options);
}

fn record(offset: i64, timestamp: i64, i: usize) -> Record {
    let headers = if i.is_multiple_of(2) {
        [
            (name("h"), Some(Bytes::from_static(b"hv"))),
            (name("null"), None),
        ]
        .into_iter()
        .collect()
    } else {
        Default::default()
    };
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 3,
        producer_id: 1000,
        producer_epoch: 1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: i as i32,
        timestamp,
        key: (!i.is_multiple_of(3)).then(|| Bytes::from(format!("key-{i}"))),
        value: Some(Bytes::from(format!("value-{i}-{}", "x".repeat(i % 7)))),
        headers,
    }
}

/// A batch of `count` records made by the crate's encoder.
fn encoded_batch(count: usize, compression: Compression) -> Bytes {
    encoded_batch_at(0, 1_700_000_000_000, count, compression)
}

fn encoded_batch_at(base: i64, timestamp: i64, count: usize, compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| record(base + i as i64, timestamp + i as i64 * 3, i))
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("valid records encode");
    out.freeze()
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        6 => Just(Compression::None),
        1 => Just(Compression::Gzip),
        1 => Just(Compression::Snappy),
        1 => Just(Compression::Lz4),
        1 => Just(Compression::Zstd),
    ]
}

/// A field of the batch header and a value to write there.
fn header_lie() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let i64_at = |at: usize| i64_value().prop_map(move |v| (at, v.to_be_bytes().to_vec()));
    let i32_at = |at: usize| i32_value().prop_map(move |v| (at, v.to_be_bytes().to_vec()));
    prop_oneof![
        i64_at(BASE_OFFSET),
        i32_at(BATCH_LENGTH),
        (0..=255u8).prop_map(|m| (MAGIC, vec![m])),
        any::<i16>().prop_map(|a| (ATTRIBUTES, a.to_be_bytes().to_vec())),
        (0..8u8).prop_map(|bits| (ATTRIBUTES + 1, vec![bits | 0x78])),
        i32_at(LAST_OFFSET_DELTA),
        i64_at(FIRST_TIMESTAMP),
        i64_at(MAX_TIMESTAMP),
        i64_at(PRODUCER_ID),
        i32_at(BASE_SEQUENCE),
        i32_at(RECORD_COUNT),
    ]
}

/// Arbitrary bytes, and arbitrary bytes after a valid-looking header start (magic 2), as one
/// or more batches.
#[test]
fn arbitrary_bytes_never_panic_the_batch_decoders() {
    let strategy = (any::<bool>(), prop::collection::vec(any::<u8>(), 0..400));
    check(
        "arbitrary batches",
        3000,
        strategy,
        |(shaped, mut bytes)| {
            if shaped && bytes.len() > HEADER_LEN {
                bytes[MAGIC] = 2;
                fix_length(&mut bytes);
                fix_crc(&mut bytes);
            }
            let _ = decode_batch_every_way(&bytes);
            Ok(())
        },
    );
}

/// Batches from the crate's encoder (every codec), with header fields set to lies and bytes
/// mutated anywhere, then the length (usually) and CRC (almost always) made right again.
#[test]
fn mutated_encoded_batches_never_panic_the_batch_decoders() {
    let strategy = (
        1..12usize,
        compression(),
        prop_oneof![
            3 => Just(0i64),
            1 => Just(i64::MAX - 20),
            1 => Just(i64::MIN + 20),
            1 => 0..i64::MAX / 2,
        ],
        prop::collection::vec(header_lie(), 0..3),
        prop::collection::vec(mutation(), 0..4),
        prop::bool::weighted(0.6),
        prop::bool::weighted(0.95),
    );
    check(
        "mutated encoded batches",
        4000,
        strategy,
        |(count, codec, base, lies, mutations, fix_len, crc)| {
            let mut batch = encoded_batch_at(base, base.saturating_sub(64), count, codec).to_vec();
            for (at, value) in &lies {
                overwrite(&mut batch, *at, value);
            }
            for m in &mutations {
                apply(&mut batch, m, 0);
            }
            if fix_len {
                fix_length(&mut batch);
            }
            if crc {
                fix_crc(&mut batch);
            }
            let _ = decode_batch_every_way(&batch);
            Ok(())
        },
    );
}

fn bytes_field() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::weighted(0.8, prop::collection::vec(any::<u8>(), 0..12))
}

fn lie() -> impl Strategy<Value = Option<i64>> {
    prop::option::weighted(
        0.15,
        prop_oneof![
            prop::sample::select(&[-2i64, -1, 0, 1, 0x7fff_ffff, -0x8000_0000, i64::MAX][..]),
            -4..64i64,
        ],
    )
}

fn raw_record() -> impl Strategy<Value = RawRecord> {
    (
        prop_oneof![8 => Just(0i8), 1 => any::<i8>()],
        prop_oneof![4 => -1000..1000i64, 1 => i64_value()],
        prop_oneof![4 => 0..16i64, 1 => i64_value()],
        bytes_field(),
        bytes_field(),
        prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..6), bytes_field()),
            0..3,
        ),
        (lie(), lie(), lie(), lie()),
    )
        .prop_map(
            |(attributes, timestamp_delta, offset_delta, key, value, headers, lies)| RawRecord {
                attributes,
                timestamp_delta,
                offset_delta,
                key,
                value,
                headers,
                length_lie: lies.0,
                key_length_lie: lies.1,
                value_length_lie: lies.2,
                header_count_lie: lies.3,
            },
        )
}

fn raw_batch() -> impl Strategy<Value = RawBatch> {
    (
        i64_value(),
        prop_oneof![4 => Just(0i16), 1 => (0..8i16).prop_map(|b| b << 3), 1 => any::<i16>()],
        i64_value(),
        prop_oneof![Just(-1i64), any::<i64>()],
        i32_value(),
        prop::option::weighted(0.2, i32_value()),
        prop::collection::vec(raw_record(), 0..5),
    )
        .prop_map(
            |(
                base_offset,
                attributes,
                first_timestamp,
                producer_id,
                base_sequence,
                count,
                records,
            )| {
                RawBatch {
                    base_offset,
                    attributes,
                    first_timestamp,
                    producer_id,
                    base_sequence,
                    record_count_lie: count,
                    records,
                }
            },
        )
}

/// Batches written field by field with lying base offsets, timestamps, counts, deltas and
/// lengths, the CRC right, so every lie reaches the record decoder; then mutated further.
#[test]
fn lying_batches_never_panic_the_batch_decoders() {
    let strategy = (raw_batch(), prop::collection::vec(mutation(), 0..2));
    check("lying batches", 5000, strategy, |(raw, mutations)| {
        let mut batch = raw.encode();
        if !mutations.is_empty() {
            for m in &mutations {
                apply(&mut batch, m, HEADER_LEN);
            }
            fix_length(&mut batch);
            fix_crc(&mut batch);
        }
        let _ = decode_batch_every_way(&batch);
        Ok(())
    });
}

/// The field-by-field writer writes what the crate's encoder writes, so the lies above are
/// lies about well-formed batches (and reach the records).
#[test]
fn raw_batches_decode_as_written() {
    enter();
    let raw = RawBatch {
        base_offset: 100,
        first_timestamp: 5_000,
        records: vec![
            RawRecord {
                timestamp_delta: 7,
                offset_delta: 0,
                key: Some(b"k".to_vec()),
                value: Some(b"v".to_vec()),
                headers: vec![(b"h".to_vec(), None)],
                ..RawRecord::default()
            },
            RawRecord {
                timestamp_delta: -3,
                offset_delta: 1,
                ..RawRecord::default()
            },
        ],
        ..RawBatch::default()
    };
    let records = decode_batch_every_way(&raw.encode()).expect("a well-formed raw batch decodes");
    assert_eq!(records.len(), 2);
    assert_eq!((records[0].offset, records[0].timestamp), (100, 5_007));
    assert_eq!((records[1].offset, records[1].timestamp), (101, 4_997));
    assert_eq!(records[0].headers.get(&b"h"[..]), Some(&None));
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let records = decode_batch_every_way(&encoded_batch(5, codec)).expect("encoded batch");
        assert_eq!(records.len(), 5, "{codec:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions: each must be an error, not a panic and not a giant allocation.

fn batch_error(raw: &RawBatch) -> String {
    let batch = raw.encode();
    match decode_batch_every_way(&batch) {
        Ok(records) => panic!("decoded {records:?}"),
        Err(e) => format!("{e:#}"),
    }
}

/// Issue 28's panic: `min_offset + offset_delta` with a base offset near i64::MAX.
#[test]
fn regression_base_offset_near_i64_max_with_a_positive_offset_delta() {
    enter();
    let raw = RawBatch {
        base_offset: i64::MAX - 1,
        records: vec![RawRecord {
            offset_delta: 5,
            ..RawRecord::default()
        }],
        ..RawBatch::default()
    };
    let error = batch_error(&raw);
    assert!(error.contains("offset overflows"), "{error}");
    // The header alone is fine.
    let infos = RecordBatchDecoder::decode_batch_info(&mut Bytes::from(raw.encode()))
        .expect("the batch header decodes");
    assert_eq!(infos[0].min_offset, i64::MAX - 1);
    // And the other way.
    let error = batch_error(&RawBatch {
        base_offset: i64::MIN,
        records: vec![RawRecord {
            offset_delta: -1,
            ..RawRecord::default()
        }],
        ..RawBatch::default()
    });
    assert!(error.contains("offset overflows"), "{error}");
}

/// `min_timestamp + timestamp_delta` with a first timestamp near i64::MAX.
#[test]
fn regression_first_timestamp_near_i64_max_with_a_positive_timestamp_delta() {
    enter();
    let error = batch_error(&RawBatch {
        first_timestamp: i64::MAX - 10,
        records: vec![RawRecord {
            timestamp_delta: 100,
            ..RawRecord::default()
        }],
        ..RawBatch::default()
    });
    assert!(error.contains("timestamp overflows"), "{error}");
    let error = batch_error(&RawBatch {
        first_timestamp: i64::MIN + 10,
        records: vec![RawRecord {
            timestamp_delta: i64::MIN,
            ..RawRecord::default()
        }],
        ..RawBatch::default()
    });
    assert!(error.contains("timestamp overflows"), "{error}");
}

/// Records whose timestamps decode at i64::MIN and i64::MAX (each delta in range) cannot be
/// encoded into one batch again: an error, not an overflow in the encoder.
#[test]
fn regression_reencoding_timestamps_i64_apart_is_an_error() {
    enter();
    let raw = RawBatch {
        first_timestamp: 0,
        records: vec![
            RawRecord {
                timestamp_delta: i64::MIN,
                offset_delta: 0,
                ..RawRecord::default()
            },
            RawRecord {
                timestamp_delta: i64::MAX,
                offset_delta: 1,
                ..RawRecord::default()
            },
        ],
        ..RawBatch::default()
    };
    let records = decode_batch_every_way(&raw.encode()).expect("each delta is in range");
    let mut out = BytesMut::new();
    let error = RecordBatchEncoder::encode(
        &mut out,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect_err("timestamps 2^64 apart do not fit one batch");
    assert!(format!("{error:#}").contains("too far apart"), "{error:#}");
}

#[test]
fn regression_record_count_0x7fffffff_with_one_record() {
    enter();
    let error = batch_error(&RawBatch {
        record_count_lie: Some(0x7fff_ffff),
        ..RawBatch::default()
    });
    assert!(error.contains("Record count"), "{error}");
}

#[test]
fn regression_header_count_0x7fffffff() {
    enter();
    let error = batch_error(&RawBatch {
        records: vec![RawRecord {
            header_count_lie: Some(0x7fff_ffff),
            ..RawRecord::default()
        }],
        ..RawBatch::default()
    });
    assert!(error.contains("header count"), "{error}");
}

/// A raw Snappy stream (no xerial header) whose varint header claims 4 GiB - 1 bytes.
#[test]
fn regression_snappy_header_claiming_4_gib() {
    enter();
    let mut batch = encoded_batch(1, Compression::None).to_vec();
    batch.truncate(HEADER_LEN);
    batch.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00, 0x00]);
    batch[ATTRIBUTES + 1] = (batch[ATTRIBUTES + 1] & !0x07) | Compression::Snappy as u8;
    fix_length(&mut batch);
    fix_crc(&mut batch);
    let error = format!(
        "{:#}",
        RecordBatchDecoder::decode(&mut Bytes::from(batch)).expect_err("a lying snappy header")
    );
    assert!(error.contains("snappy"), "{error}");
}

fn malformed(api: ApiKey, version: i16, body: &[u8]) -> String {
    match decode_frame(frame_of(api, version, body)) {
        Outcome::Malformed(reason) => reason,
        outcome => panic!("{api:?} v{version}: {outcome:?}"),
    }
}

/// Array lengths of 0x7fffffff (and compact ones of 2^31 - 1) in request bodies, as in
/// broker/tests/clients/test_malformed_input.py.
#[test]
fn regression_array_length_0x7fffffff_in_a_request_body() {
    enter();
    // Metadata v1: topics.
    let error = malformed(ApiKey::Metadata, 1, &0x7fff_ffffi32.to_be_bytes());
    assert!(error.contains("Array length 2147483647"), "{error}");
    // Metadata v9: a compact array of 2^31 - 1 topics.
    let error = malformed(ApiKey::Metadata, 9, &[0x80, 0x80, 0x80, 0x80, 0x08]);
    assert!(error.contains("CompactArray length 2147483647"), "{error}");
    // Produce v3: topics.
    let mut body = Vec::new();
    body.put_i16(-1);
    body.put_i16(-1);
    body.put_i32(1000);
    body.put_i32(0x7fff_ffff);
    let error = malformed(ApiKey::Produce, 3, &body);
    assert!(error.contains("Array length"), "{error}");
    // CreateTopics v4: one topic "big" claiming 2^31 - 1 replica assignments.
    let mut body = Vec::new();
    body.put_i32(1);
    body.put_i16(3);
    body.extend_from_slice(b"big");
    body.put_i32(1);
    body.put_i16(1);
    body.put_i32(0x7fff_ffff);
    let error = malformed(ApiKey::CreateTopics, 4, &body);
    assert!(error.contains("Array length"), "{error}");
}

/// Byte and string lengths that claim gigabytes, and varints too long for their width.
#[test]
fn regression_lengths_claiming_gigabytes_and_overlong_varints() {
    enter();
    // SaslAuthenticate v0: auth_bytes (bytes, i32 length) of 2^31 - 1.
    let error = malformed(ApiKey::SaslAuthenticate, 0, &0x7fff_ffffi32.to_be_bytes());
    assert!(error.contains("Not enough bytes"), "{error}");
    // SaslAuthenticate v2: compact bytes of 2^32 - 2.
    let error = malformed(ApiKey::SaslAuthenticate, 2, &[0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(error.contains("Not enough bytes"), "{error}");
    // SaslAuthenticate v2: a compact length with a sixth byte.
    let error = malformed(
        ApiKey::SaslAuthenticate,
        2,
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    );
    assert!(error.contains("UnsignedVarInt"), "{error}");
    // Metadata v12: a topic name (compact string) with bits past u32.
    let mut body = vec![0x02];
    body.extend_from_slice(&[0u8; 16]);
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
    let error = malformed(ApiKey::Metadata, 12, &body);
    assert!(error.contains("UnsignedVarInt"), "{error}");
    // A record whose offset delta varint runs to 6 bytes.
    let mut batch = RawBatch::default().encode();
    batch.truncate(HEADER_LEN);
    batch.extend_from_slice(&[0x10, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01]);
    batch.extend_from_slice(&[0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    fix_length(&mut batch);
    fix_crc(&mut batch);
    let error = format!(
        "{:#}",
        RecordBatchDecoder::decode(&mut Bytes::from(batch)).expect_err("an over-long varint")
    );
    assert!(error.contains("UnsignedVarInt"), "{error}");
}

/// OffsetCommit and OffsetFetch v10 read a topic id (16 bytes) where v9 read a name: a frame
/// that ends inside the id is an error, and so is one whose partition count, read after it,
/// claims more than the bytes left.
#[test]
fn regression_topic_ids_cut_short_or_followed_by_a_huge_count() {
    enter();
    // OffsetCommit v10: group "g", generation -1, member "", no instance id, one topic.
    let mut commit = vec![0x02, b'g'];
    commit.put_i32(-1);
    commit.extend_from_slice(&[0x01, 0x00, 0x02]);
    // OffsetFetch v10: one group "g", no member id, epoch -1, one topic.
    let mut fetch = vec![0x02, 0x02, b'g', 0x00];
    fetch.put_i32(-1);
    fetch.push(0x02);
    for (api, body) in [(ApiKey::OffsetCommit, commit), (ApiKey::OffsetFetch, fetch)] {
        let mut cut = body.clone();
        cut.extend_from_slice(&[7; 8]);
        let error = malformed(api, 10, &cut);
        assert!(error.contains("Not enough bytes"), "{api:?}: {error}");
        let mut huge = body;
        huge.extend_from_slice(&[7; 16]);
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
        let error = malformed(api, 10, &huge);
        assert!(error.contains("CompactArray length"), "{api:?}: {error}");
    }
}

/// `decode_request_header_from_buffer` on fewer bytes than an API key and version.
#[test]
fn regression_request_header_from_a_short_buffer() {
    enter();
    for len in 0..4 {
        let mut buf = Bytes::from(vec![0u8; len]);
        assert!(kafka_protocol::protocol::decode_request_header_from_buffer(&mut buf).is_err());
    }
}
