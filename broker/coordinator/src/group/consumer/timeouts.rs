//! The coordinator's deadlines as pure functions of the group and `now`: a member whose
//! session ran out (no heartbeat within `group.consumer.session.timeout.ms`, or a static
//! member away for longer) is removed; so is a member that did not revoke within its
//! rebalance timeout, unless it has moved to another epoch since the deadline was armed.

use super::group::ConsumerGroup;
use super::records::Record;
use super::request::Context;
use super::topics::TopicsImage;
use crate::group::records::GroupValue;

/// Why a member is removed by the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No heartbeat within the session timeout.
    Session,
    /// Partitions not revoked within the rebalance timeout.
    Rebalance,
}

impl ConsumerGroup {
    /// The members to remove at `now`, by member id, and why.
    pub fn expired(&self, now: i64) -> Vec<(String, Expiry)> {
        let mut out = Vec::new();
        for (id, at) in &self.session_deadlines {
            if *at <= now && self.members.contains_key(id) {
                out.push((id.clone(), Expiry::Session));
            }
        }
        for (id, d) in &self.rebalance_deadlines {
            let stuck = self
                .members
                .get(id)
                .is_some_and(|m| m.member_epoch == d.member_epoch);
            if d.at <= now && stuck && !out.iter().any(|(o, _)| o == id) {
                out.push((id.clone(), Expiry::Rebalance));
            }
        }
        out
    }

    /// The earliest deadline still armed (when the coordinator's timer should next run).
    pub fn next_deadline(&self) -> Option<i64> {
        self.session_deadlines
            .values()
            .chain(self.rebalance_deadlines.values().map(|d| &d.at))
            .min()
            .copied()
    }

    /// Like [`ConsumerGroup::expire`], but the first expired member whose removal leaves
    /// only classic members downgrades the group when the policy allows (Kafka fences
    /// expired members with `consumerGroupFenceMember`, which does): then the classic
    /// group's metadata comes back too, and the consumer group is empty.
    pub fn expire_or_downgrade(
        &mut self,
        ctx: &Context<'_>,
    ) -> (Vec<Record>, Vec<(String, Expiry)>, Option<GroupValue>) {
        let expired = self.expired(ctx.now);
        for (id, _) in &expired {
            if let Some(downgrade) = self.downgrade_without(id, ctx) {
                self.rebalance_deadlines.clear();
                self.session_deadlines.clear();
                return (downgrade.records, expired, Some(downgrade.classic));
            }
        }
        let (records, expired) = self.expire(ctx.now, ctx.topics);
        (records, expired, None)
    }

    /// Whether a member expired at `now` would leave only classic members behind (the
    /// coordinator then locks the classic slot first, for a downgrade).
    pub fn may_downgrade_at(&self, now: i64) -> bool {
        self.expired(now).iter().any(|(id, _)| {
            let mut rest = self
                .members
                .values()
                .filter(|m| &m.member_id != id)
                .peekable();
            rest.peek().is_some() && rest.all(|m| m.uses_classic_protocol())
        })
    }

    /// Removes every member expired at `now`: the records to write and who was removed.
    /// Rebalance deadlines of members that moved on are dropped.
    pub fn expire(
        &mut self,
        now: i64,
        topics: &TopicsImage,
    ) -> (Vec<Record>, Vec<(String, Expiry)>) {
        let expired = self.expired(now);
        let mut records = Vec::new();
        for (id, _) in &expired {
            records.extend(self.fence_member(id, topics));
        }
        let members = &self.members;
        self.rebalance_deadlines.retain(|id, d| {
            d.at > now
                && members
                    .get(id)
                    .is_some_and(|m| m.member_epoch == d.member_epoch)
        });
        (records, expired)
    }
}
