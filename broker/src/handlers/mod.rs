//! Request routing: one module per Kafka API, behind [`dispatch`].
//!
//! `dispatch` runs synchronously up to the point where a request's effects on shared state are
//! ordered (a produce request has appended when it returns), and hands back a future for the
//! rest (waiting for fsync, long polling). A request whose ordered effects must first wait for
//! something (a transactional produce that KIP-890 verifies with its coordinator) comes back
//! as [`Dispatched::Ordered`], which the connection finishes before it dispatches the next
//! request. The connection answers the futures in request order, so pipelined requests keep
//! Kafka's per-connection ordering: none overtakes an earlier one, whatever either waits for.

mod acls;
mod admin;
mod api_versions;
mod client_quotas;
mod configs;
mod consumer_group_describe;
mod consumer_group_heartbeat;
#[cfg(test)]
mod consumer_group_wire_tests;
#[cfg(test)]
mod delegation_token_wire_tests;
mod delegation_tokens;
mod delete_groups;
mod delete_records;
mod describe_cluster;
mod describe_groups;
mod describe_topic_partitions;
mod elect_leaders;
#[cfg(test)]
mod features_wire_tests;
mod fetch;
mod find_coordinator;
#[cfg(test)]
pub(crate) mod group_wire_tests;
#[cfg(test)]
mod hardening_wire_tests;
mod heartbeat;
mod init_producer_id;
mod join_group;
#[cfg(test)]
mod journal_wire_tests;
mod leadership;
mod leave_group;
mod list_config_resources;
#[cfg(test)]
mod list_config_resources_wire_tests;
mod list_groups;
mod list_offsets;
#[cfg(test)]
mod list_offsets_wire_tests;
mod log_dirs;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
#[cfg(test)]
mod quota_wire_tests;
mod refuse;
mod replica_fetch;
mod sasl;
mod scram_credentials;
mod share_acknowledge;
mod share_fetch;
#[cfg(test)]
mod share_fetch_wire_tests;
mod share_group_describe;
mod share_group_heartbeat;
mod share_group_offsets;
#[cfg(test)]
mod share_group_wire_tests;
mod share_requests;
mod share_state;
#[cfg(test)]
mod share_state_wire_tests;
mod sync_group;
mod telemetry;
#[cfg(test)]
mod topic_id_wire_tests;
pub(crate) mod topic_lookup;
mod txn;
mod txn_admin;
#[cfg(test)]
mod txn_v2_wire_tests;
#[cfg(test)]
mod txn_wire_tests;
mod update_features;
#[cfg(test)]
mod wire_tests;
#[cfg(test)]
mod zero_copy_tests;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message};

use crate::acl::{Access, Operation, ResourceType};
use crate::broker::Broker;
use refuse::Refuse;

use crate::protocol::{encode_response, served_range, RequestPrefix};

/// What the connection does once a request is handled.
#[derive(Debug)]
pub enum Reply {
    /// Send this encoded response frame.
    Frame(Bytes),
    /// Send this response frame of encoded bytes and segment file ranges (a plaintext
    /// connection's Fetch response, [`crate::frame_parts`]).
    Parts(crate::frame_parts::FrameParts),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// The response could not be encoded: close the connection so the client retries
    /// elsewhere instead of waiting forever.
    Close,
}

/// A request's pending answer.
pub type PendingResponse = BoxFuture<'static, Reply>;

/// A dispatched request: how far its ordered effects got.
pub enum Dispatched {
    /// Its effects are applied (or need no order); only its answer is pending.
    Applied(PendingResponse),
    /// Its effects wait for something first: the connection must drive this to its pending
    /// answer before it dispatches the next request, or a later request would overtake it.
    Ordered(BoxFuture<'static, PendingResponse>),
}

impl Reply {
    /// The frame to send, in memory (a [`Reply::Parts`] read from its files), for callers
    /// that take whole frames; `None` for [`Reply::Nothing`] and [`Reply::Close`], or when a
    /// file cannot be read.
    pub fn into_frame(self) -> Option<Bytes> {
        match self {
            Reply::Frame(frame) => Some(frame),
            Reply::Parts(parts) => parts.load().ok(),
            Reply::Nothing | Reply::Close => None,
        }
    }
}

impl Dispatched {
    /// The whole answer as one future, for callers that send one request at a time.
    pub fn into_pending(self) -> PendingResponse {
        match self {
            Dispatched::Applied(pending) => pending,
            Dispatched::Ordered(ordered) => ordered.flatten().boxed(),
        }
    }
}

impl From<PendingResponse> for Dispatched {
    fn from(pending: PendingResponse) -> Dispatched {
        Dispatched::Applied(pending)
    }
}

/// Requests that close the connection instead of being answered, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The frame is shorter than a request header.
    #[error("frame too short for a request header")]
    ShortFrame,
    /// The API key is not a Kafka API this broker knows.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// The API is known but not served at this version.
    #[error("{api:?} v{version} is not supported (served: {served})")]
    UnsupportedVersion {
        api: ApiKey,
        version: i16,
        served: String,
    },
    /// The header or body does not decode at its declared version.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        api: ApiKey,
        version: i16,
        reason: String,
    },
}

/// Ends the share sessions opened on connection `connection_id` (it closed), giving back
/// the records their members held, as Kafka does when a share session's connection closes.
pub async fn end_share_sessions(broker: &Broker, connection_id: u64) {
    let closed = broker.share_sessions.lock().close_connection(connection_id);
    for key in closed {
        share_requests::release_member(broker, &key).await;
    }
}

/// The id the next connection gets.
static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The client at the other end of a connection.
#[derive(Debug)]
pub struct Client {
    /// Its address as Kafka reports it (`/ip`), for group member descriptions.
    pub host: Arc<str>,
    /// The listener it connected to: Metadata and FindCoordinator answer with the addresses
    /// of that listener, as Kafka does.
    pub listener: Arc<str>,
    /// Who it authenticated as; replaced when it re-authenticates.
    principal: parking_lot::RwLock<Arc<crate::security::Principal>>,
    /// Until when its next requests wait: a client over its quota is paused as Kafka mutes
    /// its channel. Monotonic, so a clock step cannot stall it.
    muted_until: parking_lot::Mutex<Option<std::time::Instant>>,
    /// This connection among the process's, for what lives as long as it (share sessions).
    connection_id: u64,
    /// Whether its Fetch responses may send record sets from their segment files: a
    /// plaintext connection, whose writer sends the bytes as they are.
    sends_files: bool,
}

impl Client {
    /// An anonymous client at `host` on the PLAINTEXT listener, not paused.
    pub fn new(host: Arc<str>) -> Client {
        Client::on_listener(host, Arc::from("PLAINTEXT"))
    }

    /// An anonymous client at `host` on `listener`, not paused.
    pub fn on_listener(host: Arc<str>, listener: Arc<str>) -> Client {
        Client {
            host,
            listener,
            principal: parking_lot::RwLock::new(Arc::new(crate::security::Principal::anonymous())),
            muted_until: parking_lot::Mutex::new(None),
            connection_id: NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            sends_files: false,
        }
    }

    /// This client, its Fetch responses sending record sets from their segment files
    /// ([`crate::frame_parts`]) when `on`: only for a connection that writes bytes as they are.
    pub fn sending_files(mut self, on: bool) -> Client {
        self.sends_files = on;
        self
    }

    /// Whether its Fetch responses send record sets from their segment files.
    pub fn sends_files(&self) -> bool {
        self.sends_files
    }

    /// The connection's id, unique in this process.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// Who the client is: `User:ANONYMOUS` until it authenticates.
    pub fn principal(&self) -> Arc<crate::security::Principal> {
        self.principal.read().clone()
    }

    /// Records who the client authenticated as.
    pub fn set_principal(&self, principal: crate::security::Principal) {
        *self.principal.write() = Arc::new(principal);
    }

    /// Pauses the client's next requests for `ms` from now.
    pub fn throttle(&self, ms: i32) {
        let Ok(ms) = u64::try_from(ms) else { return };
        if ms > 0 {
            let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
            let mut muted = self.muted_until.lock();
            *muted = Some(muted.map_or(until, |m| m.max(until)));
        }
    }

    /// How long the client's next request must wait, if at all.
    pub fn paused_for(&self) -> Option<std::time::Duration> {
        let until = (*self.muted_until.lock())?;
        let left = until.saturating_duration_since(std::time::Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// The client id of a request, empty when the client sent none.
    fn id(header: &RequestHeader) -> &str {
        header.client_id.as_deref().unwrap_or("")
    }
}

/// What a handler knows about the request beyond its body.
#[derive(Clone)]
pub struct RequestContext {
    /// Shared broker state.
    pub broker: Arc<Broker>,
    /// Decoded request header.
    pub header: RequestHeader,
    /// The client that sent it.
    pub client: Arc<Client>,
}

impl RequestContext {
    /// The API version of the request.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }

    /// Counts `bytes` against the client's quota `key` and pauses it as long as that says;
    /// returns the throttle time for the response.
    pub(crate) fn charge(&self, key: &'static str, bytes: usize) -> i32 {
        let user = self.client.principal();
        let ms = self.broker.quotas.record(
            &user.name,
            Client::id(&self.header),
            key,
            bytes,
            crate::clock::now_ms(),
        );
        self.client.throttle(ms);
        ms
    }

    /// Whether the client may perform `operation` on resource `name` of type `kind`: always
    /// without an authorizer. A refusal is logged, as Kafka's authorizer logs it.
    pub(crate) fn may(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        let allowed = self.sees(operation, kind, name);
        if !allowed {
            tracing::info!(
                principal = %self.client.principal(),
                host = self.host(),
                ?operation,
                ?kind,
                resource = name,
                api = self.header.request_api_key,
                "denied by the ACLs"
            );
        }
        allowed
    }

    /// [`RequestContext::may`] without the log line, for filtering what a listing shows.
    pub(crate) fn sees(&self, operation: Operation, kind: ResourceType, name: &str) -> bool {
        let Some(authorizer) = &self.broker.authorizer else {
            return true;
        };
        let principal = self.client.principal().to_string();
        authorizer.authorize(Access {
            principal: &principal,
            host: self.host(),
            operation,
            kind,
            name,
        })
    }

    /// [`RequestContext::may`] on topic `name`, refused with TOPIC_AUTHORIZATION_FAILED.
    pub(crate) fn check_topic(
        &self,
        operation: Operation,
        name: &str,
    ) -> Result<(), ResponseError> {
        if self.may(operation, ResourceType::Topic, name) {
            Ok(())
        } else {
            Err(ResponseError::TopicAuthorizationFailed)
        }
    }

    /// Whether the client may use transactional id `id` (WRITE).
    pub(crate) fn may_write_txn(&self, id: &str) -> bool {
        self.may(Operation::Write, ResourceType::TransactionalId, id)
    }

    /// [`RequestContext::may`] on the cluster resource.
    pub(crate) fn may_on_cluster(&self, operation: Operation) -> bool {
        self.may(operation, ResourceType::Cluster, crate::acl::CLUSTER_NAME)
    }

    /// Whether the client may create topic `name`: CREATE on the cluster or on the topic.
    pub(crate) fn may_create_topic(&self, name: &str) -> bool {
        self.sees(
            Operation::Create,
            ResourceType::Cluster,
            crate::acl::CLUSTER_NAME,
        ) || self.may(Operation::Create, ResourceType::Topic, name)
    }

    /// Whether the client may perform `operation` on some resource of type `kind`.
    pub(crate) fn may_on_some(&self, operation: Operation, kind: ResourceType) -> bool {
        let Some(authorizer) = &self.broker.authorizer else {
            return true;
        };
        let principal = self.client.principal().to_string();
        authorizer.authorize_any(&principal, self.host(), operation, kind)
    }

    /// Kafka's `authorizedOperations` bit field for a resource: every operation of its type
    /// without an authorizer.
    pub(crate) fn operations(&self, kind: ResourceType, name: &str) -> i32 {
        let Some(authorizer) = &self.broker.authorizer else {
            return kind
                .operations()
                .iter()
                .fold(0, |bits, op| bits | (1 << op.code()));
        };
        let principal = self.client.principal().to_string();
        authorizer.authorized_operations(&principal, self.host(), kind, name)
    }

    /// The client's IP, as ACL hosts name it.
    fn host(&self) -> &str {
        self.client.host.trim_start_matches('/')
    }

    /// Takes back a [`RequestContext::charge`] for bytes that were not sent after all.
    pub(crate) fn refund(&self, key: &'static str, bytes: usize) {
        let id = Client::id(&self.header);
        let user = self.client.principal();
        self.broker
            .quotas
            .unrecord(&user.name, id, key, bytes, crate::clock::now_ms());
    }
}

/// Decodes one request frame from `client`, applies its ordered effects (or returns them to
/// be finished first, [`Dispatched::Ordered`]), and returns its pending response.
pub fn dispatch(
    broker: &Arc<Broker>,
    frame: Bytes,
    client: &Arc<Client>,
) -> Result<Dispatched, DispatchError> {
    let prefix = RequestPrefix::parse(&frame).ok_or(DispatchError::ShortFrame)?;
    let api =
        ApiKey::try_from(prefix.api_key).map_err(|_| DispatchError::UnknownApi(prefix.api_key))?;
    let version = prefix.api_version;
    let sets = api_versions::api_sets(broker);
    let range = served_range(api, sets);
    let served = range.is_some_and(|(min, max)| (min..=max).contains(&version));
    if !served && api == ApiKey::ApiVersions {
        // Kafka answers an unknown ApiVersions version with a v0 error response listing what
        // it serves, so the client can retry with a version both sides know.
        return Ok(ready(api_versions::unsupported(prefix.correlation_id, sets)).into());
    }
    let unsupported = || DispatchError::UnsupportedVersion {
        api,
        version,
        served: range.map_or_else(|| "none".to_string(), |(a, b)| format!("v{a}..=v{b}")),
    };
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, api.request_header_version(version))
        .map_err(|e| malformed(api, version, e))?;
    let ctx = RequestContext {
        broker: broker.clone(),
        header,
        client: client.clone(),
    };
    let correlation_id = prefix.correlation_id;
    // Decodes the body as `$request`; served versions go to `$handler`, versions the codec
    // knows but this broker does not serve get UNSUPPORTED_VERSION in the response, and the
    // rest close the connection.
    macro_rules! route {
        ($request:ty, $handler:path) => {
            route!(@ $request, |ctx, request| answer(correlation_id, version, $handler(ctx, request)))
        };
        (@ $request:ty, $run:expr) => {{
            let known = <$request as Message>::VERSIONS;
            if !(known.min..=known.max).contains(&version) {
                return Err(unsupported());
            }
            let request: $request =
                Decodable::decode(&mut body, version).map_err(|e| malformed(api, version, e))?;
            if !served {
                tracing::warn!(error = %unsupported(), "answering UNSUPPORTED_VERSION");
                let response = request.refuse(ResponseError::UnsupportedVersion);
                Dispatched::from(answer(correlation_id, version, async move { response }))
            } else if cluster_operation(api).is_some_and(|op| !ctx.may_on_cluster(op)) {
                let response = request.refuse(ResponseError::ClusterAuthorizationFailed);
                Dispatched::from(answer(correlation_id, version, async move { response }))
            } else {
                let run = $run;
                Dispatched::from(run(ctx, request))
            }
        }};
    }
    Ok(match api {
        ApiKey::ApiVersions => {
            let request: ApiVersionsRequest =
                Decodable::decode(&mut body, version).map_err(|e| malformed(api, version, e))?;
            answer(correlation_id, version, api_versions::handle(ctx, request)).into()
        }
        ApiKey::Metadata => route!(MetadataRequest, metadata::handle),
        ApiKey::Produce => route!(@ ProduceRequest, |ctx, request| {
            let encode = move |pending: produce::PendingProduce| -> PendingResponse {
                async move {
                    match pending.await {
                        Some(response) => encode_or_log(correlation_id, version, &response),
                        None => Reply::Nothing,
                    }
                }
                .boxed()
            };
            match produce::handle(ctx, request) {
                produce::Produce::Appended(pending) => Dispatched::Applied(encode(pending)),
                produce::Produce::Verifying(ordered) => {
                    Dispatched::Ordered(ordered.map(encode).boxed())
                }
            }
        }),
        ApiKey::Fetch => route!(@ FetchRequest, |ctx, request| -> PendingResponse {
            async move {
                let answer = fetch::handle(ctx, request).await;
                answer.encode(correlation_id, version)
            }
            .boxed()
        }),
        ApiKey::ListOffsets => route!(ListOffsetsRequest, list_offsets::handle),
        ApiKey::OffsetForLeaderEpoch => {
            route!(OffsetForLeaderEpochRequest, offset_for_leader_epoch::handle)
        }
        ApiKey::CreateTopics => route!(CreateTopicsRequest, admin::create_topics),
        ApiKey::DeleteTopics => route!(DeleteTopicsRequest, admin::delete_topics),
        ApiKey::CreatePartitions => {
            route!(CreatePartitionsRequest, admin::create_partitions)
        }
        ApiKey::DescribeConfigs => route!(DescribeConfigsRequest, configs::describe),
        ApiKey::ListConfigResources => {
            route!(ListConfigResourcesRequest, list_config_resources::handle)
        }
        ApiKey::AlterConfigs => route!(AlterConfigsRequest, configs::alter),
        ApiKey::IncrementalAlterConfigs => {
            route!(IncrementalAlterConfigsRequest, configs::incremental_alter)
        }
        ApiKey::DescribeTopicPartitions => {
            route!(
                DescribeTopicPartitionsRequest,
                describe_topic_partitions::handle
            )
        }
        ApiKey::DescribeCluster => {
            route!(DescribeClusterRequest, describe_cluster::handle)
        }
        ApiKey::UpdateFeatures => route!(UpdateFeaturesRequest, update_features::handle),
        ApiKey::DescribeLogDirs => {
            route!(DescribeLogDirsRequest, log_dirs::describe)
        }
        ApiKey::AlterReplicaLogDirs => route!(AlterReplicaLogDirsRequest, log_dirs::alter),
        ApiKey::DeleteRecords => route!(DeleteRecordsRequest, delete_records::handle),
        ApiKey::InitProducerId => {
            route!(InitProducerIdRequest, init_producer_id::handle)
        }
        ApiKey::FindCoordinator => route!(FindCoordinatorRequest, find_coordinator::handle),
        ApiKey::JoinGroup => route!(JoinGroupRequest, join_group::handle),
        ApiKey::SyncGroup => route!(SyncGroupRequest, sync_group::handle),
        ApiKey::Heartbeat => route!(HeartbeatRequest, heartbeat::handle),
        ApiKey::LeaveGroup => route!(LeaveGroupRequest, leave_group::handle),
        ApiKey::OffsetCommit => route!(OffsetCommitRequest, offset_commit::handle),
        ApiKey::OffsetFetch => route!(OffsetFetchRequest, offset_fetch::handle),
        ApiKey::OffsetDelete => route!(OffsetDeleteRequest, offset_delete::handle),
        ApiKey::ListGroups => route!(ListGroupsRequest, list_groups::handle),
        ApiKey::DescribeGroups => route!(DescribeGroupsRequest, describe_groups::handle),
        ApiKey::DeleteGroups => route!(DeleteGroupsRequest, delete_groups::handle),
        ApiKey::AddPartitionsToTxn => route!(AddPartitionsToTxnRequest, txn::add_partitions),
        ApiKey::AddOffsetsToTxn => route!(AddOffsetsToTxnRequest, txn::add_offsets),
        ApiKey::TxnOffsetCommit => route!(TxnOffsetCommitRequest, txn::txn_offset_commit),
        ApiKey::EndTxn => route!(EndTxnRequest, txn::end_txn),
        ApiKey::ElectLeaders => route!(ElectLeadersRequest, elect_leaders::elect),
        ApiKey::AlterPartitionReassignments => {
            route!(
                AlterPartitionReassignmentsRequest,
                leadership::alter_reassignments
            )
        }
        ApiKey::ListPartitionReassignments => {
            route!(
                ListPartitionReassignmentsRequest,
                leadership::list_reassignments
            )
        }
        ApiKey::SaslHandshake => route!(SaslHandshakeRequest, sasl::handshake),
        ApiKey::SaslAuthenticate => route!(SaslAuthenticateRequest, sasl::authenticate),
        ApiKey::DescribeAcls => route!(DescribeAclsRequest, acls::describe),
        ApiKey::CreateAcls => route!(CreateAclsRequest, acls::create),
        ApiKey::DeleteAcls => route!(DeleteAclsRequest, acls::delete),
        ApiKey::DescribeClientQuotas => {
            route!(DescribeClientQuotasRequest, client_quotas::describe)
        }
        ApiKey::AlterClientQuotas => route!(AlterClientQuotasRequest, client_quotas::alter),
        ApiKey::DescribeUserScramCredentials => {
            route!(
                DescribeUserScramCredentialsRequest,
                scram_credentials::describe
            )
        }
        ApiKey::AlterUserScramCredentials => {
            route!(AlterUserScramCredentialsRequest, scram_credentials::alter)
        }
        ApiKey::CreateDelegationToken => {
            route!(CreateDelegationTokenRequest, delegation_tokens::create)
        }
        ApiKey::RenewDelegationToken => {
            route!(RenewDelegationTokenRequest, delegation_tokens::renew)
        }
        ApiKey::ExpireDelegationToken => {
            route!(ExpireDelegationTokenRequest, delegation_tokens::expire)
        }
        ApiKey::DescribeDelegationToken => {
            route!(DescribeDelegationTokenRequest, delegation_tokens::describe)
        }
        ApiKey::DescribeProducers => {
            route!(DescribeProducersRequest, txn_admin::describe_producers)
        }
        ApiKey::ListTransactions => route!(ListTransactionsRequest, txn_admin::list),
        ApiKey::WriteTxnMarkers => route!(WriteTxnMarkersRequest, txn_admin::write_markers),
        ApiKey::DescribeTransactions => {
            route!(DescribeTransactionsRequest, txn_admin::describe)
        }
        ApiKey::ConsumerGroupHeartbeat => {
            route!(
                ConsumerGroupHeartbeatRequest,
                consumer_group_heartbeat::handle
            )
        }
        ApiKey::ConsumerGroupDescribe => {
            route!(
                ConsumerGroupDescribeRequest,
                consumer_group_describe::handle
            )
        }
        ApiKey::ShareGroupHeartbeat => {
            route!(ShareGroupHeartbeatRequest, share_group_heartbeat::handle)
        }
        ApiKey::ShareGroupDescribe => {
            route!(ShareGroupDescribeRequest, share_group_describe::handle)
        }
        ApiKey::ShareFetch => route!(@ ShareFetchRequest, |ctx, request| -> PendingResponse {
            async move {
                let answer = share_fetch::handle(ctx, request).await;
                answer.encode(correlation_id, version)
            }
            .boxed()
        }),
        ApiKey::ShareAcknowledge => route!(ShareAcknowledgeRequest, share_acknowledge::handle),
        ApiKey::DescribeShareGroupOffsets => {
            route!(
                DescribeShareGroupOffsetsRequest,
                share_group_offsets::describe
            )
        }
        ApiKey::AlterShareGroupOffsets => {
            route!(AlterShareGroupOffsetsRequest, share_group_offsets::alter)
        }
        ApiKey::DeleteShareGroupOffsets => {
            route!(DeleteShareGroupOffsetsRequest, share_group_offsets::delete)
        }
        ApiKey::InitializeShareGroupState => {
            route!(InitializeShareGroupStateRequest, share_state::initialize)
        }
        ApiKey::ReadShareGroupState => route!(ReadShareGroupStateRequest, share_state::read),
        ApiKey::WriteShareGroupState => route!(WriteShareGroupStateRequest, share_state::write),
        ApiKey::DeleteShareGroupState => {
            route!(DeleteShareGroupStateRequest, share_state::delete)
        }
        ApiKey::ReadShareGroupStateSummary => {
            route!(ReadShareGroupStateSummaryRequest, share_state::summary)
        }
        ApiKey::GetTelemetrySubscriptions => {
            route!(
                GetTelemetrySubscriptionsRequest,
                telemetry::get_subscriptions
            )
        }
        ApiKey::PushTelemetry => route!(PushTelemetryRequest, telemetry::push),
        _ => return Err(unsupported()),
    })
}

/// The operation on the cluster an API needs, for the APIs Kafka authorizes on the cluster
/// resource alone.
fn cluster_operation(api: ApiKey) -> Option<Operation> {
    Some(match api {
        ApiKey::DescribeAcls
        | ApiKey::ListPartitionReassignments
        | ApiKey::DescribeLogDirs
        | ApiKey::DescribeUserScramCredentials => Operation::Describe,
        ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::ElectLeaders
        | ApiKey::AlterPartitionReassignments
        | ApiKey::AlterReplicaLogDirs
        | ApiKey::AlterUserScramCredentials
        | ApiKey::UpdateFeatures => Operation::Alter,
        ApiKey::DescribeClientQuotas | ApiKey::ListConfigResources => Operation::DescribeConfigs,
        ApiKey::AlterClientQuotas => Operation::AlterConfigs,
        ApiKey::WriteTxnMarkers
        | ApiKey::InitializeShareGroupState
        | ApiKey::ReadShareGroupState
        | ApiKey::WriteShareGroupState
        | ApiKey::DeleteShareGroupState
        | ApiKey::ReadShareGroupStateSummary => Operation::ClusterAction,
        _ => return None,
    })
}

fn malformed(api: ApiKey, version: i16, error: anyhow::Error) -> DispatchError {
    DispatchError::Malformed {
        api,
        version,
        reason: error.to_string(),
    }
}

fn ready(frame: Reply) -> PendingResponse {
    futures::future::ready(frame).boxed()
}

fn answer<R, F>(correlation_id: i32, version: i16, response: F) -> PendingResponse
where
    R: Encodable + HeaderVersion + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    async move { encode_or_log(correlation_id, version, &response.await) }.boxed()
}

fn encode_or_log<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Reply {
    match encode_response(correlation_id, version, response) {
        Ok(frame) => Reply::Frame(frame),
        Err(error) => {
            tracing::error!(correlation_id, version, %error, "cannot encode response; closing");
            Reply::Close
        }
    }
}
