//! Request routing: one module per Kafka API, behind [`dispatch`].
//!
//! `dispatch` runs synchronously up to the point where a request's effects on shared state are
//! ordered (a produce request has appended when it returns), and hands back a future for the
//! rest (waiting for fsync, long polling). The connection answers those futures in request
//! order, so pipelined requests keep Kafka's per-connection ordering.

mod admin;
mod api_versions;
mod configs;
mod describe_cluster;
mod describe_log_dirs;
mod errors;
mod fetch;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
mod topic_lookup;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::broker::Broker;
use crate::protocol::{encode_response, supported_range, FrameError, RequestPrefix};

/// A request's pending answer: the encoded response frame, or `None` when the API sends no
/// response (Produce with acks=0).
pub type PendingResponse = BoxFuture<'static, Option<Bytes>>;

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

/// What a handler knows about the request beyond its body.
#[derive(Clone)]
pub struct RequestContext {
    /// Shared broker state.
    pub broker: Arc<Broker>,
    /// Decoded request header.
    pub header: RequestHeader,
}

impl RequestContext {
    /// The API version of the request.
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
}

/// Decodes one request frame, applies its ordered effects, and returns its pending response.
pub fn dispatch(broker: &Arc<Broker>, frame: Bytes) -> Result<PendingResponse, DispatchError> {
    let prefix = RequestPrefix::parse(&frame).ok_or(DispatchError::ShortFrame)?;
    let api =
        ApiKey::try_from(prefix.api_key).map_err(|_| DispatchError::UnknownApi(prefix.api_key))?;
    let version = prefix.api_version;
    let Some((min, max)) = supported_range(api).filter(|(min, max)| (*min..=*max).contains(&version))
    else {
        if api == ApiKey::ApiVersions {
            // Kafka answers an unknown ApiVersions version with a v0 error response listing
            // what it serves, so the client can retry with a version both sides know.
            return Ok(ready(api_versions::unsupported(prefix.correlation_id)));
        }
        return Err(DispatchError::UnsupportedVersion {
            api,
            version,
            served: supported_range(api)
                .map_or_else(|| "none".to_string(), |(a, b)| format!("v{a}..=v{b}")),
        });
    };
    debug_assert!(min <= max);
    let mut body = frame;
    let header = RequestHeader::decode(&mut body, api.request_header_version(version))
        .map_err(|e| malformed(api, version, e))?;
    let ctx = RequestContext {
        broker: broker.clone(),
        header,
    };
    let correlation_id = prefix.correlation_id;
    macro_rules! route {
        ($handler:path) => {{
            let request = Decodable::decode(&mut body, version).map_err(|e| malformed(api, version, e))?;
            answer(correlation_id, version, $handler(ctx, request))
        }};
    }
    Ok(match api {
        ApiKey::ApiVersions => route!(api_versions::handle),
        ApiKey::Metadata => route!(metadata::handle),
        ApiKey::Produce => {
            let request = Decodable::decode(&mut body, version)
                .map_err(|e| malformed(api, version, e))?;
            let pending = produce::handle(ctx, request);
            async move {
                let response = pending.await?;
                encode_or_log(correlation_id, version, &response)
            }
            .boxed()
        }
        ApiKey::Fetch => route!(fetch::handle),
        ApiKey::ListOffsets => route!(list_offsets::handle),
        ApiKey::OffsetForLeaderEpoch => route!(offset_for_leader_epoch::handle),
        ApiKey::CreateTopics => route!(admin::create_topics),
        ApiKey::DeleteTopics => route!(admin::delete_topics),
        ApiKey::CreatePartitions => route!(admin::create_partitions),
        ApiKey::DescribeConfigs => route!(configs::describe),
        ApiKey::AlterConfigs => route!(configs::alter),
        ApiKey::IncrementalAlterConfigs => route!(configs::incremental_alter),
        ApiKey::DescribeCluster => route!(describe_cluster::handle),
        ApiKey::DescribeLogDirs => route!(describe_log_dirs::handle),
        ApiKey::InitProducerId => route!(init_producer_id::handle),
        other => {
            return Err(DispatchError::UnsupportedVersion {
                api: other,
                version,
                served: "none".into(),
            })
        }
    })
}

fn malformed(api: ApiKey, version: i16, error: anyhow::Error) -> DispatchError {
    DispatchError::Malformed {
        api,
        version,
        reason: error.to_string(),
    }
}

fn ready(frame: Option<Bytes>) -> PendingResponse {
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
) -> Option<Bytes> {
    match encode_response(correlation_id, version, response) {
        Ok(frame) => Some(frame),
        Err(FrameError::Encode(error)) => {
            tracing::error!(correlation_id, version, %error, "dropping unencodable response");
            None
        }
        Err(error) => {
            tracing::error!(correlation_id, %error, "dropping response");
            None
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
