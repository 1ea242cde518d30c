//! The ConsumerGroupHeartbeat decision (Kafka's `consumerGroupHeartbeat`): one heartbeat in,
//! the records to write and the response out. In three parts, as Kafka's:
//!
//! 1. The member joins, rejoins or updates its subscription; a changed subscription (or
//!    changed metadata of the subscribed topics) bumps the group epoch.
//! 2. When the group epoch is ahead of the target assignment's, a new target is computed.
//! 3. The member takes one step of reconciliation towards its target.
//!
//! Every check comes first: a refused heartbeat changes nothing. The records are applied to
//! the group as they are produced (through [`ConsumerGroup::apply`], as a load would), so the
//! group after a heartbeat is exactly what replaying its records gives.

use uuid::Uuid;

use super::assignment::Assignment;
use super::config::ConsumerGroupConfig;
use super::error::HeartbeatError;
use super::group::{ConsumerGroup, RebalanceDeadline};
use super::member::{
    Member, MemberState, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
};
use super::reconcile::{must_fence_unknown_state, reconcile, Target};
use super::records::Record;
use super::replay::ConsumerGroups;
use super::request::{Context, HeartbeatRequest, HeartbeatResponse, Outcome};
use super::subscription::subscribed_topics;
use super::validate::{check_epoch, validate};

/// One member's move through steps 1 to 3 (see [`ConsumerGroup::advance`]).
pub(super) struct Advance<'a> {
    /// The member as the group had it (a fresh one if new).
    pub before: &'a Member,
    /// The member with the request's changes.
    pub updated: Member,
    /// Whether the member is joining the group.
    pub is_new: bool,
    /// The partitions the member reports owning, if it does.
    pub owned: Option<&'a Assignment>,
    /// The member's session timeout (its classic one for a classic member).
    pub session_timeout_ms: i32,
}

/// How the heartbeat's member relates to the group, decided before anything changes.
enum Joining {
    /// A member the group has.
    Existing,
    /// A member the group does not have yet.
    New,
    /// A static member replacing its own earlier incarnation (the member id it had), which
    /// left with epoch -2.
    Replacing(String),
}

impl ConsumerGroup {
    /// Handles one heartbeat: see the module documentation.
    pub fn heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        ctx: &Context<'_>,
    ) -> Result<Outcome, HeartbeatError> {
        validate(req, ctx.config)?;
        if req.member_epoch == LEAVE_GROUP_MEMBER_EPOCH
            || req.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH
        {
            return self.leave(req, ctx);
        }
        let joining = self.joining(req, ctx.config)?;

        // Nothing fails from here on.
        let mut records = Vec::new();
        let id = req.member_id.clone();
        let is_new = matches!(joining, Joining::New);
        if let Joining::Replacing(old) = &joining {
            self.replace_static_member(old, &id, &mut records);
        }
        let member = self
            .members
            .get(&id)
            .cloned()
            .unwrap_or_else(|| Member::new(&id));
        let updated = updated_member(&member, req);
        records.extend(self.advance(
            Advance {
                before: &member,
                updated: updated.clone(),
                is_new,
                owned: req.owned.as_ref(),
                session_timeout_ms: ctx.config.session_timeout_ms,
            },
            ctx,
        ));

        let after = self.members.get(&id).cloned().unwrap_or(updated);
        let full = req.member_epoch == 0
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.owned.is_some());
        let assignment =
            (full || after.assigned != member.assigned).then(|| after.assigned.clone());
        Ok(Outcome {
            records,
            response: HeartbeatResponse {
                member_id: id,
                member_epoch: after.member_epoch,
                heartbeat_interval_ms: ctx.config.heartbeat_interval_ms,
                assignment,
            },
            downgrade: None,
        })
    }

    /// Applies `record` and keeps it for writing.
    pub(super) fn emit(&mut self, record: Record, records: &mut Vec<Record>) {
        self.apply(&record);
        records.push(record);
    }

    /// Steps 1 to 3 of a heartbeat or of a classic member's JoinGroup, once the member is
    /// known to be allowed in: its metadata and the group epoch, the target assignment, its
    /// reconciliation step and a fresh session. Returns the records (already applied).
    pub(super) fn advance(&mut self, step: Advance<'_>, ctx: &Context<'_>) -> Vec<Record> {
        let mut records = Vec::new();
        let id = step.updated.member_id.clone();
        // 1. The member and the group epoch.
        let mut bump = false;
        if step.is_new || step.updated.metadata_differs(step.before) {
            bump = step.is_new || step.updated.subscription_differs(step.before);
            self.emit(
                Record::member_metadata(&self.group_id, &step.updated),
                &mut records,
            );
        }
        let refresh_due = self
            .metadata_refresh
            .is_none_or(|(at, epoch)| ctx.now >= at || epoch != self.group_epoch);
        if bump || refresh_due {
            let subscribed = subscribed_topics(self.members.values(), ctx.topics);
            if subscribed != self.subscribed_topics {
                bump = true;
                let topics = subscribed.into_values().collect();
                self.emit(
                    Record::partition_metadata(&self.group_id, topics),
                    &mut records,
                );
            }
            if bump {
                let epoch = self.group_epoch.saturating_add(1);
                self.emit(Record::group_epoch(&self.group_id, epoch), &mut records);
            }
            self.metadata_refresh = Some((
                ctx.now
                    .saturating_add(ctx.config.metadata_refresh_interval_ms),
                self.group_epoch,
            ));
        }

        // 2. The target assignment.
        if self.group_epoch > self.assignment_epoch {
            for r in self.new_target_records(ctx.config) {
                self.emit(r, &mut records);
            }
        }

        // 3. Reconciliation.
        self.reconcile_member(&id, step.owned, ctx.now, &mut records);
        self.session_deadlines.insert(
            id,
            ctx.now.saturating_add(i64::from(step.session_timeout_ms)),
        );
        records
    }

    /// Who the heartbeat's member is, and whether it may be (every identity check).
    fn joining(
        &self,
        req: &HeartbeatRequest,
        config: &ConsumerGroupConfig,
    ) -> Result<Joining, HeartbeatError> {
        let known = self.members.get(&req.member_id);
        let new = || {
            if self.members.len() >= config.max_size {
                Err(HeartbeatError::GroupMaxSizeReached {
                    max: config.max_size,
                })
            } else {
                Ok(Joining::New)
            }
        };
        let existing = |m: &Member| -> Result<Joining, HeartbeatError> {
            check_epoch(m, req)?;
            if must_fence_unknown_state(m, req.owned.as_ref()) {
                return Err(HeartbeatError::FencedMemberEpoch {
                    member: m.member_id.clone(),
                    received: req.member_epoch,
                    current: m.member_epoch,
                });
            }
            Ok(Joining::Existing)
        };
        let Some(instance) = &req.instance_id else {
            return match known {
                Some(m) => existing(m),
                None if req.member_epoch == 0 => new(),
                None => Err(HeartbeatError::UnknownMemberId {
                    member: req.member_id.clone(),
                }),
            };
        };
        let holder = self.static_member(instance);
        if req.member_epoch != 0 {
            let holder = holder.ok_or_else(|| HeartbeatError::UnknownMemberId {
                member: instance.clone(),
            })?;
            if holder.member_id != req.member_id {
                return Err(HeartbeatError::FencedInstanceId {
                    instance: instance.clone(),
                    owner: holder.member_id.clone(),
                    member: req.member_id.clone(),
                });
            }
            return existing(holder);
        }
        match holder {
            None => match known {
                Some(m) => existing(m),
                None => new(),
            },
            Some(h) if h.member_id == req.member_id => existing(h),
            Some(h) if h.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                Err(HeartbeatError::UnreleasedInstanceId {
                    instance: instance.clone(),
                    owner: h.member_id.clone(),
                })
            }
            Some(h) => Ok(Joining::Replacing(h.member_id.clone())),
        }
    }

    /// The records that hand a static member's place to its new incarnation: the old member
    /// removed, the new one with its subscription, target and partitions, at epoch 0
    /// (Kafka's `replaceMember`), so it rejoins with the assignment it had.
    pub(super) fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: &str,
        records: &mut Vec<Record>,
    ) {
        let Some(old) = self.members.get(old_id).cloned() else {
            return;
        };
        let target = self.target(old_id);
        let mut new = old;
        new.member_id = new_id.to_string();
        new.member_epoch = 0;
        new.previous_member_epoch = 0;
        for r in Record::member_tombstones(&self.group_id, old_id) {
            self.emit(r, records);
        }
        self.emit(Record::member_metadata(&self.group_id, &new), records);
        self.emit(
            Record::target_member(&self.group_id, new_id, target),
            records,
        );
        self.emit(Record::current_assignment(&self.group_id, &new), records);
    }

    /// One reconciliation step of `member_id`, with its rebalance deadline armed while it
    /// must revoke and dropped once it has.
    fn reconcile_member(
        &mut self,
        member_id: &str,
        owned: Option<&Assignment>,
        now: i64,
        records: &mut Vec<Record>,
    ) {
        let Some(current) = self.members.get(member_id) else {
            return;
        };
        if current.is_reconciled_to(self.assignment_epoch) {
            return;
        }
        let partitions = self.target(member_id);
        let next = reconcile(
            current,
            &Target {
                epoch: self.assignment_epoch,
                partitions: &partitions,
                is_owned: |t: Uuid, p: i32| self.owners.contains_key(&(t, p)),
                owned,
            },
        );
        if !next.assignment_differs(current) {
            return;
        }
        if next.state == MemberState::UnrevokedPartitions {
            self.rebalance_deadlines.insert(
                member_id.to_string(),
                RebalanceDeadline {
                    at: now.saturating_add(i64::from(next.rebalance_timeout_ms.max(0))),
                    member_epoch: next.member_epoch,
                },
            );
        } else {
            self.rebalance_deadlines.remove(member_id);
        }
        self.emit(Record::current_assignment(&self.group_id, &next), records);
    }
}

impl ConsumerGroups {
    /// Handles a heartbeat for `group_id`: a join (epoch 0) creates the group, anything else
    /// for a group that does not exist is from a member it does not know. A group created by
    /// a join that is refused is not kept.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        ctx: &Context<'_>,
    ) -> Result<Outcome, HeartbeatError> {
        let existed = self.get(group_id).is_some();
        if !existed && req.member_epoch != 0 {
            return Err(HeartbeatError::UnknownMemberId {
                member: req.member_id.clone(),
            });
        }
        let result = self.get_or_create(group_id).heartbeat(req, ctx);
        if result.is_err() && !existed {
            self.remove(group_id);
        }
        result
    }
}

/// The member with the request's changes (fields left out keep their values).
fn updated_member(member: &Member, req: &HeartbeatRequest) -> Member {
    let mut m = member.clone();
    if req.instance_id.is_some() {
        m.instance_id.clone_from(&req.instance_id);
    }
    if req.rack_id.is_some() {
        m.rack_id.clone_from(&req.rack_id);
    }
    if req.rebalance_timeout_ms != -1 {
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    }
    if req.server_assignor.is_some() {
        m.server_assignor.clone_from(&req.server_assignor);
    }
    if let Some(names) = &req.subscribed_topic_names {
        m.subscribed_topic_names = names.iter().cloned().collect();
    }
    if let Some(regex) = &req.subscribed_topic_regex {
        m.subscribed_topic_regex = (!regex.is_empty()).then(|| regex.clone());
    }
    m.client_id.clone_from(&req.client_id);
    m.client_host.clone_from(&req.client_host);
    m.classic = None;
    m
}
