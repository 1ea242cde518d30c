//! What ShareFetch and ShareAcknowledge share: who the member is, the group's settings,
//! acknowledgements applied partition by partition (answered only once durable), what a
//! closed session gives back, and the leaders a client is pointed to after
//! NOT_LEADER_OR_FOLLOWER.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::RequestContext;
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;
use crate::share::manager::ShareSettings;
use crate::share::partition::{AckRange, AckType};
use crate::share::records::SharePartitionKey;
use crate::share::session::SessionKey;

/// A topic partition as share requests name it.
pub(super) type SharedPartition = (Uuid, i32);

/// The member a share request comes from: group and member ids must be given, and the
/// client must be allowed to READ the group.
pub(super) fn member(
    ctx: &RequestContext,
    group: Option<&GroupId>,
    member: Option<&StrBytes>,
) -> Result<SessionKey, ResponseError> {
    let group = group.map(|g| g.to_string()).unwrap_or_default();
    let member = member.map(|m| m.to_string()).unwrap_or_default();
    if group.is_empty() || member.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    if !ctx.may(Operation::Read, ResourceType::Group, &group) {
        return Err(ResponseError::GroupAuthorizationFailed);
    }
    Ok(SessionKey { group, member })
}

/// The settings a share group's partitions run with: its group configs over Kafka's
/// defaults.
pub(super) fn settings(broker: &Broker, group: &str) -> ShareSettings {
    broker.group_configs.share_settings(group)
}

/// One wire acknowledgement batch: first and last offsets, and the types.
pub(super) type WireAck<'a> = (i64, i64, &'a [i8]);

/// The acknowledgements of one partition as the share-partition takes them; INVALID_REQUEST
/// for an unknown type, or for RENEW unless the request says it carries some (`IsRenewAck`,
/// v2).
pub(super) fn ack_ranges<'a>(
    batches: impl IntoIterator<Item = WireAck<'a>>,
    renew: bool,
) -> Result<Vec<AckRange>, ResponseError> {
    batches
        .into_iter()
        .map(|(first, last, codes)| {
            let types = codes
                .iter()
                .map(|&code| match AckType::from_code(code) {
                    Some(AckType::Renew) if !renew => Err(ResponseError::InvalidRequest),
                    None => Err(ResponseError::InvalidRequest),
                    Some(t) => Ok(t),
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AckRange { first, last, types })
        })
        .collect()
}

/// Whether the client may READ partition `index` of the topic with id `topic`: the topic's
/// name, or the error the partition answers (UNKNOWN_TOPIC_ID, TOPIC_AUTHORIZATION_FAILED,
/// UNKNOWN_TOPIC_OR_PARTITION; a share-partition exists only for a partition that does).
pub(super) fn readable_partition(
    ctx: &RequestContext,
    topic: Uuid,
    index: i32,
) -> Result<String, ResponseError> {
    let image = ctx.broker.metadata.image();
    let found = image
        .topic_by_id(&topic)
        .ok_or(ResponseError::UnknownTopicId)?;
    let name = found.name.clone();
    if !ctx.may(Operation::Read, ResourceType::Topic, &name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    if found.partition(index).is_none() {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    Ok(name)
}

/// Applies `member`'s acknowledgements of each partition; the error code per partition
/// (0 once durable).
pub(super) async fn acknowledge_all(
    ctx: &RequestContext,
    member: &SessionKey,
    acks: BTreeMap<SharedPartition, Result<Vec<AckRange>, ResponseError>>,
) -> BTreeMap<SharedPartition, i16> {
    let settings = settings(&ctx.broker, &member.group);
    let mut codes = BTreeMap::new();
    for ((topic, partition), ranges) in acks {
        let applied = match (ranges, readable_partition(ctx, topic, partition)) {
            (Err(error), _) | (_, Err(error)) => Err(error),
            (Ok(ranges), Ok(_)) => {
                let key = share_key(member, topic, partition);
                let now = crate::clock::now_ms();
                let manager = &ctx.broker.share_partitions;
                manager
                    .acknowledge(&key, &member.member, &settings, &ranges, now)
                    .await
                    .map(|()| ranges)
            }
        };
        if let Ok(counted) = &applied {
            count_acknowledged(&ctx.broker, counted);
        }
        let code = applied.err().map_or(0, |e| e.code());
        codes.insert((topic, partition), code);
    }
    codes
}

/// Counts the records of applied acknowledgements by type (the share group metrics).
fn count_acknowledged(broker: &Broker, ranges: &[AckRange]) {
    let counter = &broker.metrics.share_acknowledged;
    for range in ranges {
        let count = u64::try_from(range.last.saturating_sub(range.first)).map_or(0, |d| d + 1);
        let kinds: Vec<(AckType, u64)> = match range.types.as_slice() {
            [one] => vec![(*one, count)],
            each => each.iter().map(|t| (*t, 1)).collect(),
        };
        for (kind, n) in kinds {
            let label = match kind {
                AckType::Gap => "gap",
                AckType::Accept => "accept",
                AckType::Release => "release",
                AckType::Reject => "reject",
                AckType::Renew => "renew",
            };
            counter.with_label_values(&[label]).inc_by(n);
        }
    }
}

/// Gives back what `member` holds in its group's share-partitions led here (its session
/// closed). Once no member of the group has a session here, its share-partitions are
/// dropped: the next fetch reads their state again, so an alteration or deletion of the
/// group's offsets (which needs the group empty, and may be served by another broker) is
/// never undone by a window loaded before it.
pub(super) async fn release_member(broker: &Broker, member: &SessionKey) {
    let manager = &broker.share_partitions;
    for key in manager.loaded() {
        if key.group != member.group {
            continue;
        }
        if let Err(error) = manager.release_member(&key, &member.member).await {
            tracing::debug!(group = %member.group, member = %member.member, ?error, "records not released at session end");
        }
    }
    // Under the sessions' lock: a session opened after this check loads afresh.
    let sessions = broker.share_sessions.lock();
    if !sessions.has_group(&member.group) {
        manager.forget(&member.group, |_| true);
    }
}

/// The share-partition of `member`'s group for `partition` of `topic`.
pub(super) fn share_key(member: &SessionKey, topic: Uuid, partition: i32) -> SharePartitionKey {
    SharePartitionKey {
        group: member.group.clone(),
        topic,
        partition,
    }
}

/// The leader (id, epoch) the cluster metadata names for `partition` of `topic`, for a
/// partition answered NOT_LEADER_OR_FOLLOWER; (-1, -1) when none.
pub(super) fn current_leader(broker: &Broker, topic: Uuid, partition: i32) -> (i32, i32) {
    let image = broker.metadata.image();
    image
        .topic_by_id(&topic)
        .and_then(|t| t.partition(partition))
        .filter(|p| p.has_leader())
        .map_or((-1, -1), |p| (p.leader, p.leader_epoch))
}

/// The NodeEndpoint of one broker (id, host, port, rack) in the response type `$t`
/// (ShareFetch's and ShareAcknowledge's are distinct types of one shape).
macro_rules! node_endpoint {
    ($t:ty) => {
        |(id, host, port, rack): (i32, String, i32, Option<String>)| {
            <$t>::default()
                .with_node_id(kafka_protocol::messages::BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
                .with_rack(rack.map(StrBytes::from_string))
        }
    };
}
pub(super) use node_endpoint;

/// The addresses, on the client's listener, of the brokers in `ids`: (id, host, port, rack).
pub(super) fn endpoints(
    ctx: &RequestContext,
    ids: impl IntoIterator<Item = i32>,
) -> Vec<(i32, String, i32, Option<String>)> {
    let image = ctx.broker.metadata.image();
    let mut ids: Vec<i32> = ids.into_iter().filter(|id| *id >= 0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let node = image.broker(id)?;
            let (host, port) = node.endpoint(&ctx.client.listener)?;
            Some((id, host.to_string(), port, node.rack.clone()))
        })
        .collect()
}
