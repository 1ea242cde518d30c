//! JoinGroup, SyncGroup, Heartbeat and LeaveGroup: validation Kafka does before the group
//! lock, then the group's decision, then its effects.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::{GroupCoordinator, GroupIdRule};
use crate::group::consumer::TopicsImage;
use crate::group::effects::{JoinResult, SyncResult};
use crate::group::heartbeat::LeavingMember;
use crate::group::join::{JoinOutcome, JoinRequest};
use crate::group::sync::{SyncOutcome, SyncRequest};

impl GroupCoordinator {
    /// JoinGroup: answers at once or when the join phase ends. A consumer group with members
    /// serves it from its own state (the member becomes, or is, a classic member of it);
    /// `topics` is the cluster's topics, which that needs.
    pub async fn join(
        self: &Arc<Self>,
        group_id: &str,
        request: JoinRequest,
        topics: &TopicsImage,
    ) -> JoinResult {
        let member_id = request.member_id.clone();
        if let Err(error) = self.check(group_id, GroupIdRule::NonEmpty) {
            return JoinResult::error(member_id, error);
        }
        if self.is_share_group(group_id) {
            // Kafka's answer to a classic join of a group of another type.
            return JoinResult::error(member_id, ResponseError::InconsistentGroupProtocol);
        }
        let timeout = request.session_timeout_ms;
        if timeout < self.config.min_session_timeout_ms
            || timeout > self.config.max_session_timeout_ms
        {
            return JoinResult::error(member_id, ResponseError::InvalidSessionTimeout);
        }
        if self.consumer_in_use(group_id) {
            if let Some(result) = self.join_consumer_group(group_id, &request, topics).await {
                return result;
            }
        }
        self.drop_empty_consumer_group(group_id);
        let shared = if member_id.is_empty() {
            self.get_or_create(group_id)
        } else {
            match self.get(group_id) {
                Some(shared) => shared,
                None => return JoinResult::error(member_id, ResponseError::UnknownMemberId),
            }
        };
        let waiting = {
            let mut slot = shared.lock();
            if !slot.group.admits(&member_id, self.config.max_size) {
                tracing::info!(group = group_id, member = %member_id, "group.max.size reached");
                return JoinResult::error(String::new(), ResponseError::GroupMaxSizeReached);
            }
            let (outcome, effects) = slot.group.join(request, self.now());
            let waiting = match outcome {
                JoinOutcome::Reply(reply) => Err(reply),
                JoinOutcome::Wait(id) => {
                    let (tx, rx) = oneshot::channel();
                    slot.joins.insert(id.clone(), tx);
                    Ok((id, rx))
                }
            };
            self.apply(&shared, &mut slot, effects);
            waiting
        };
        match waiting {
            Err(reply) => reply,
            // A dropped waiter was replaced by a newer join of the same member: this older
            // request is told to retry.
            Ok((id, rx)) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(id, ResponseError::RebalanceInProgress)),
        }
    }

    /// SyncGroup: answers at once or when the leader's assignment is stored.
    pub async fn sync(self: &Arc<Self>, group_id: &str, request: SyncRequest) -> SyncResult {
        match self.check(group_id, GroupIdRule::NonEmpty) {
            // The rebalance state was lost with the restart: rejoining is what helps.
            Err(ResponseError::CoordinatorLoadInProgress) => {
                return SyncResult::error(ResponseError::RebalanceInProgress)
            }
            Err(error) => return SyncResult::error(error),
            Ok(()) => {}
        }
        if let Some(result) = self.sync_consumer_group(group_id, &request) {
            return result;
        }
        let Some(shared) = self.get(group_id) else {
            return SyncResult::error(ResponseError::UnknownMemberId);
        };
        let rx = {
            let mut slot = shared.lock();
            let (outcome, effects) = slot.group.sync(request, self.now());
            let rx = match outcome {
                SyncOutcome::Reply(reply) => Err(reply),
                SyncOutcome::Wait(id) => {
                    let (tx, rx) = oneshot::channel();
                    slot.syncs.insert(id, tx);
                    Ok(rx)
                }
            };
            self.apply(&shared, &mut slot, effects);
            rx
        };
        match rx {
            Err(reply) => reply,
            Ok(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(ResponseError::RebalanceInProgress)),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        self: &Arc<Self>,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        match self.check(group_id, GroupIdRule::NonEmpty) {
            // Kafka answers blindly while loading; the member's session starts after loading.
            Err(ResponseError::CoordinatorLoadInProgress) => return Ok(()),
            Err(error) => return Err(error),
            Ok(()) => {}
        }
        if let Some(result) =
            self.heartbeat_consumer_group(group_id, member_id, instance_id, generation)
        {
            return result;
        }
        let shared = self.get(group_id).ok_or(ResponseError::UnknownMemberId)?;
        let mut slot = shared.lock();
        let result = slot
            .group
            .heartbeat(member_id, instance_id, generation, self.now());
        self.schedule(&mut slot);
        result
    }

    /// LeaveGroup: per-member results, or an error for the whole request.
    pub fn leave(
        self: &Arc<Self>,
        group_id: &str,
        members: &[LeavingMember],
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        if let Some(results) = self.leave_consumer_group(group_id, members) {
            return Ok(results);
        }
        let Some(shared) = self.get(group_id) else {
            return Ok(members
                .iter()
                .map(|_| Err(ResponseError::UnknownMemberId))
                .collect());
        };
        let mut slot = shared.lock();
        let (result, effects) = slot.group.leave(members, self.now());
        self.apply(&shared, &mut slot, effects);
        result
    }
}
