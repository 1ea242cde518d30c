//! The checks a heartbeat passes before the group is touched: the request's own fields
//! (Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`) and the member epoch it sends.

use super::assignor::Assignor;
use super::config::ConsumerGroupConfig;
use super::error::HeartbeatError;
use super::member::{Member, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH};
use super::request::HeartbeatRequest;
use super::subscription::compile;

/// Kafka's member epoch check: an epoch ahead of ours is fenced; one behind is accepted only
/// if it is the previous epoch and the member owns no more than it is assigned (the response
/// that bumped it was lost). Epoch 0 is a rejoin and always accepted.
pub(super) fn check_epoch(member: &Member, req: &HeartbeatRequest) -> Result<(), HeartbeatError> {
    let received = req.member_epoch;
    let fenced = || HeartbeatError::FencedMemberEpoch {
        member: member.member_id.clone(),
        received,
        current: member.member_epoch,
    };
    if received == 0 {
        return Ok(());
    }
    if received > member.member_epoch {
        return Err(fenced());
    }
    if received < member.member_epoch {
        let lost_bump = received == member.previous_member_epoch
            && req
                .owned
                .as_ref()
                .is_some_and(|o| o.is_subset(&member.assigned));
        if !lost_bump {
            return Err(fenced());
        }
    }
    Ok(())
}

/// The request checks Kafka makes before looking at the group.
pub(super) fn validate(
    req: &HeartbeatRequest,
    config: &ConsumerGroupConfig,
) -> Result<(), HeartbeatError> {
    use HeartbeatError::InvalidRequest;
    if req.member_id.is_empty() {
        return Err(InvalidRequest("MemberId can't be empty."));
    }
    if req.instance_id.as_deref() == Some("") {
        return Err(InvalidRequest("InstanceId can't be empty."));
    }
    if req.rack_id.as_deref() == Some("") {
        return Err(InvalidRequest("RackId can't be empty."));
    }
    match req.member_epoch {
        0 => {
            if req.rebalance_timeout_ms == -1 {
                return Err(InvalidRequest(
                    "RebalanceTimeoutMs must be provided in first request.",
                ));
            }
            if req.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return Err(InvalidRequest(
                    "TopicPartitions must be empty when (re-)joining.",
                ));
            }
            let names = req
                .subscribed_topic_names
                .as_ref()
                .is_some_and(|n| !n.is_empty());
            let regex = req
                .subscribed_topic_regex
                .as_ref()
                .is_some_and(|r| !r.is_empty());
            if !names && !regex {
                return Err(InvalidRequest(
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
                ));
            }
        }
        LEAVE_GROUP_STATIC_MEMBER_EPOCH if req.instance_id.is_none() => {
            return Err(InvalidRequest("InstanceId can't be null."));
        }
        e if e > 0 || e == LEAVE_GROUP_MEMBER_EPOCH || e == LEAVE_GROUP_STATIC_MEMBER_EPOCH => {}
        _ => return Err(InvalidRequest("MemberEpoch is invalid.")),
    }
    // An empty regular expression clears the member's (Kafka 4; librdkafka sends it).
    match req.subscribed_topic_regex.as_deref() {
        Some("") | None => {}
        Some(regex) => {
            compile(regex)?;
        }
    }
    if let Some(name) = &req.server_assignor {
        if !config.has_assignor(name) || Assignor::from_name(name).is_none() {
            return Err(HeartbeatError::UnsupportedAssignor(name.clone()));
        }
    }
    Ok(())
}
