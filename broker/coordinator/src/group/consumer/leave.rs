//! Members leaving: by heartbeat with epoch -1 (for good) or -2 (a static member, for a
//! while: its instance id keeps its partitions until its session expires or it rejoins), and
//! fenced by the coordinator (expired session or rebalance timeout). Removing a member bumps
//! the group epoch, so the others are given its partitions.

use super::assignment::Assignment;
use super::error::HeartbeatError;
use super::group::ConsumerGroup;
use super::member::{LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH};
use super::records::Record;
use super::request::{Context, HeartbeatRequest, HeartbeatResponse, Outcome};
use super::subscription::subscribed_topics;
use super::topics::TopicsImage;

impl ConsumerGroup {
    /// A heartbeat with epoch -1 or -2 (Kafka's `consumerGroupLeave`).
    pub(super) fn leave(
        &mut self,
        req: &HeartbeatRequest,
        ctx: &Context<'_>,
    ) -> Result<Outcome, HeartbeatError> {
        let response = |member_epoch| HeartbeatResponse {
            member_id: req.member_id.clone(),
            member_epoch,
            heartbeat_interval_ms: 0,
            assignment: None,
        };
        let Some(instance) = &req.instance_id else {
            if !self.members.contains_key(&req.member_id) {
                return Err(HeartbeatError::UnknownMemberId {
                    member: req.member_id.clone(),
                });
            }
            return Ok(self.leave_for_good(
                &req.member_id,
                ctx,
                response(LEAVE_GROUP_MEMBER_EPOCH),
            ));
        };
        let holder =
            self.static_member(instance)
                .ok_or_else(|| HeartbeatError::UnknownMemberId {
                    member: instance.clone(),
                })?;
        if holder.member_id != req.member_id {
            return Err(HeartbeatError::FencedInstanceId {
                instance: instance.clone(),
                owner: holder.member_id.clone(),
                member: req.member_id.clone(),
            });
        }
        if req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            let mut away = holder.clone();
            away.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            away.pending_revocation = Assignment::new();
            let mut records = Vec::new();
            self.rebalance_deadlines.remove(&req.member_id);
            self.emit(
                Record::current_assignment(&self.group_id, &away),
                &mut records,
            );
            return Ok(Outcome {
                records,
                response: response(LEAVE_GROUP_STATIC_MEMBER_EPOCH),
                downgrade: None,
            });
        }
        Ok(self.leave_for_good(&req.member_id, ctx, response(LEAVE_GROUP_MEMBER_EPOCH)))
    }

    /// Removes a member that left for good: the group turns back into a classic group when
    /// only classic members remain and the policy allows it (Kafka's
    /// `consumerGroupFenceMember`), else the member is fenced.
    fn leave_for_good(
        &mut self,
        member_id: &str,
        ctx: &Context<'_>,
        response: HeartbeatResponse,
    ) -> Outcome {
        if let Some(downgrade) = self.downgrade_without(member_id, ctx) {
            return Outcome {
                records: downgrade.records,
                response,
                downgrade: Some(downgrade.classic),
            };
        }
        Outcome {
            records: self.fence_member(member_id, ctx.topics),
            response,
            downgrade: None,
        }
    }

    /// Removes `member_id` (Kafka's `consumerGroupFenceMember`): its three tombstones, the
    /// subscribed topics' metadata without it if that changes, and a group epoch bump.
    /// Nothing when the member is not in the group.
    pub fn fence_member(&mut self, member_id: &str, topics: &TopicsImage) -> Vec<Record> {
        let mut records = Vec::new();
        if !self.members.contains_key(member_id) {
            return records;
        }
        for r in Record::member_tombstones(&self.group_id, member_id) {
            self.emit(r, &mut records);
        }
        let subscribed = subscribed_topics(self.members.values(), topics);
        if subscribed != self.subscribed_topics {
            let topics = subscribed.into_values().collect();
            self.emit(
                Record::partition_metadata(&self.group_id, topics),
                &mut records,
            );
        }
        let epoch = self.group_epoch.saturating_add(1);
        self.emit(Record::group_epoch(&self.group_id, epoch), &mut records);
        records
    }
}
