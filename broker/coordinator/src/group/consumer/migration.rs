//! Online migration between the two group types (Kafka's `convertToConsumerGroup`,
//! `ConsumerGroup.fromClassicGroup`, `convertToClassicGroup`, `ClassicGroup.fromConsumerGroup`
//! and their `validateOnline*` checks), as pure functions: a classic group in, the consumer
//! group and its records out (upgrade); a consumer group and its leaving member in, its
//! tombstones and the classic group's metadata record out (downgrade).
//!
//! An upgraded group keeps its classic members: each becomes a consumer group member at the
//! classic generation as its epoch, owning (and targeted to) what its last SyncGroup gave it,
//! with its session timeout and protocols kept in the member metadata record's
//! `ClassicMemberMetadata`, so it keeps speaking JoinGroup/SyncGroup/Heartbeat.

use bytes::Bytes;

use super::assignment::Assignment;
use super::embedded::{decode_assignment, decode_subscription, encode_assignment};
use super::embedded::{subscription_version, TopicPartitions};
use super::group::ConsumerGroup;
use super::member::{Member, MemberState};
use super::records::{ClassicMemberMetadata, Record};
use super::request::Context;
use super::topics::TopicsImage;
use crate::group::classic::Group;
use crate::group::member::{Member as ClassicMember, MemberProtocol};
use crate::group::records::{GroupValue, MemberValue};
use crate::group::state::GroupState;

/// The protocol type of groups that run the consumer protocol (the only ones that convert).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Why a classic group is not upgraded (the heartbeat is refused with GROUP_ID_NOT_FOUND,
/// as Kafka refuses it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeRefused {
    /// `group.consumer.migration.policy` does not allow upgrades.
    #[error(
        "group {0} is a classic group and group.consumer.migration.policy does not allow upgrades"
    )]
    Disabled(String),
    /// The group does not embed the consumer protocol (Connect, or another type).
    #[error("group {0} is a classic group that does not use the consumer protocol")]
    NotConsumerProtocol(String),
    /// More members than `group.consumer.max.size`.
    #[error(
        "classic group {group} has {size} members, more than the consumer group maximum {max}"
    )]
    TooBig {
        /// Group id.
        group: String,
        /// Its members.
        size: usize,
        /// The consumer group maximum.
        max: usize,
    },
    /// A member's subscription or assignment cannot be read.
    #[error("classic group {0} has a malformed embedded consumer protocol")]
    Malformed(String),
}

/// A downgrade: the consumer group's tombstones, then the classic group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downgrade {
    /// Tombstones of every consumer group record (applied: the group is empty now).
    pub records: Vec<Record>,
    /// The classic group, as its GroupMetadata record holds it.
    pub classic: GroupValue,
}

impl ConsumerGroup {
    /// The consumer group that classic group `classic` becomes (Kafka's
    /// `validateOnlineUpgrade` then `fromClassicGroup`), with the records that create it
    /// (already applied). The caller writes the classic group's tombstone first.
    pub fn from_classic(
        classic: &Group,
        topics: &TopicsImage,
        ctx: &Context<'_>,
    ) -> Result<(ConsumerGroup, Vec<Record>), UpgradeRefused> {
        let id = classic.id().to_string();
        if !ctx.config.migration_policy.upgrade_enabled() {
            return Err(UpgradeRefused::Disabled(id));
        }
        if classic.protocol_type() != Some(CONSUMER_PROTOCOL_TYPE)
            || classic.state() == GroupState::Dead
        {
            return Err(UpgradeRefused::NotConsumerProtocol(id));
        }
        let size = classic.members().count();
        if size > ctx.config.max_size {
            return Err(UpgradeRefused::TooBig {
                group: id,
                size,
                max: ctx.config.max_size,
            });
        }
        let epoch = classic.generation();
        let mut members = Vec::with_capacity(size);
        for m in classic.members() {
            members.push(
                upgraded_member(m, classic.protocol_name(), epoch, topics)
                    .ok_or_else(|| UpgradeRefused::Malformed(id.clone()))?,
            );
        }
        let mut group = ConsumerGroup::new(&id);
        let mut records = Vec::new();
        for m in &members {
            group.emit(Record::member_metadata(&id, m), &mut records);
        }
        group.emit(Record::group_epoch(&id, epoch), &mut records);
        for m in &members {
            group.emit(
                Record::target_member(&id, &m.member_id, m.assigned.clone()),
                &mut records,
            );
        }
        group.emit(Record::target_epoch(&id, epoch), &mut records);
        for m in &members {
            group.emit(Record::current_assignment(&id, m), &mut records);
        }
        for m in &members {
            let timeout = m.session_timeout_ms(ctx.config.session_timeout_ms);
            group.session_deadlines.insert(
                m.member_id.clone(),
                ctx.now.saturating_add(i64::from(timeout)),
            );
        }
        Ok((group, records))
    }

    /// Whether removing `leaving` leaves only classic members to a policy that allows a
    /// downgrade (Kafka's `validateOnlineDowngradeWithFencedMember`): then the group's
    /// tombstones and the classic group it becomes. The caller removes the consumer group.
    pub fn downgrade_without(&mut self, leaving: &str, ctx: &Context<'_>) -> Option<Downgrade> {
        let rest: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.member_id != leaving)
            .collect();
        if rest.is_empty()
            || rest.iter().any(|m| m.classic.is_none())
            || !ctx.config.migration_policy.downgrade_enabled()
            || rest.len() > ctx.config.classic_max_size
        {
            return None;
        }
        let classic = self.classic_value(leaving);
        let records = self.tombstones();
        for r in &records {
            self.apply(r);
        }
        Some(Downgrade { records, classic })
    }

    /// The classic group's metadata record for every member but `leaving`: the group epoch
    /// as generation, the protocol the members' votes select, and each member's target
    /// partitions as its assignment (Kafka's `ClassicGroup.fromConsumerGroup`). A rebalance
    /// follows, so the assignment only tides the members over until it ends. The state
    /// timestamp is left for the caller, which has the wall clock.
    fn classic_value(&self, leaving: &str) -> GroupValue {
        let members: Vec<(&Member, ClassicMember)> = self
            .members
            .values()
            .filter(|m| m.member_id != leaving)
            .filter_map(|m| Some((m, classic_member(m)?)))
            .collect();
        let protocol = crate::group::protocol::select(members.iter().map(|(_, c)| c));
        let names = self.topic_names();
        let values = members
            .iter()
            .map(|(m, c)| {
                let subscription = protocol
                    .as_deref()
                    .and_then(|p| c.metadata(p))
                    .cloned()
                    .unwrap_or_default();
                let partitions = named(&self.target(&m.member_id), &names);
                MemberValue {
                    member_id: m.member_id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: c.session_timeout_ms,
                    assignment: encode_assignment(subscription_version(&subscription), &partitions),
                    subscription,
                }
            })
            .collect::<Vec<_>>();
        GroupValue {
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            generation: self.group_epoch,
            protocol,
            leader: values.first().map(|m| m.member_id.clone()),
            current_state_timestamp: -1,
            members: values,
        }
    }

    /// Topic names by id, from the subscribed topics' metadata.
    pub(super) fn topic_names(&self) -> std::collections::HashMap<uuid::Uuid, String> {
        self.subscribed_topics
            .values()
            .map(|t| (t.id, t.name.clone()))
            .collect()
    }
}

/// Partitions by topic name; topics the group no longer knows are left out.
pub(super) fn named(
    assignment: &Assignment,
    names: &std::collections::HashMap<uuid::Uuid, String>,
) -> TopicPartitions {
    assignment
        .topics()
        .filter_map(|(id, ps)| Some((names.get(&id)?.clone(), ps.iter().copied().collect())))
        .collect()
}

/// Partitions by topic id; names the cluster does not know are left out.
pub(super) fn by_id(partitions: &TopicPartitions, topics: &TopicsImage) -> Assignment {
    Assignment::from_topics(
        partitions
            .iter()
            .filter_map(|(name, ps)| Some((topics.get(name)?.id, ps.iter().copied()))),
    )
}

/// A classic member as the consumer group member it becomes; `None` when its embedded
/// protocol cannot be read.
fn upgraded_member(
    m: &ClassicMember,
    protocol: Option<&str>,
    epoch: i32,
    topics: &TopicsImage,
) -> Option<Member> {
    let metadata = match protocol {
        Some(p) => m.metadata(p)?,
        None => &m.protocols.first()?.metadata,
    };
    let subscription = decode_subscription(metadata)?;
    let assigned = by_id(&decode_assignment(&m.assignment)?, topics);
    let mut member = Member::new(&m.id);
    member.instance_id.clone_from(&m.instance_id);
    member.rack_id = subscription.rack;
    member.client_id.clone_from(&m.client_id);
    member.client_host.clone_from(&m.client_host);
    member.subscribed_topic_names = subscription.topics.into_iter().collect();
    member.rebalance_timeout_ms = m.rebalance_timeout_ms;
    member.member_epoch = epoch;
    member.previous_member_epoch = epoch;
    member.state = MemberState::Stable;
    member.assigned = assigned;
    member.classic = Some(ClassicMemberMetadata {
        session_timeout_ms: m.session_timeout_ms,
        supported_protocols: m
            .protocols
            .iter()
            .map(|p| (p.name.clone(), p.metadata.clone()))
            .collect(),
    });
    Some(member)
}

/// A classic consumer group member as the classic group's member it becomes (`None` for a
/// member of the consumer protocol).
fn classic_member(m: &Member) -> Option<ClassicMember> {
    let classic = m.classic.as_ref()?;
    Some(ClassicMember {
        id: m.member_id.clone(),
        instance_id: m.instance_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        session_timeout_ms: classic.session_timeout_ms,
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
        protocols: classic
            .supported_protocols
            .iter()
            .map(|(name, metadata)| MemberProtocol {
                name: name.clone(),
                metadata: metadata.clone(),
            })
            .collect(),
        assignment: Bytes::new(),
        awaiting_join: false,
        awaiting_sync: false,
        is_new: false,
        heartbeat_deadline: 0,
    })
}
