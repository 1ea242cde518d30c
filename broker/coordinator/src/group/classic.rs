//! A classic group's state: members, generation, leader and protocol, plus the membership
//! primitives the operations (join, sync, heartbeat, leave, timers) are built from.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::effects::{Effects, JoinResult, JoinedMember, Now, SyncResult};
use super::member::{Member, MemberProtocol};
use super::offsets::{OffsetStore, RetentionBase, TopicPartition};
use super::protocol;
use super::rebalance_log::RebalanceLog;
use super::records::{GroupValue, MemberValue};
use super::state::GroupState;

/// How long a new member may wait in a join phase before it is dropped (Kafka's
/// `NewMemberJoinTimeoutMs`): it has no member id yet, so it cannot heartbeat.
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

/// The join phase of a rebalance in progress (Kafka's DelayedJoin / InitialDelayedJoin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JoinPhase {
    /// When the phase ends even if members are missing.
    pub deadline: i64,
    /// Set for the initial delay of an empty group: the phase never ends early, and each
    /// new member extends it by one more delay until `remaining_ms` is used up.
    pub initial: Option<InitialDelay>,
}

/// Bookkeeping of `group.initial.rebalance.delay.ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InitialDelay {
    /// Rebalance time left for further extensions.
    pub remaining_ms: i64,
}

/// A consumer group (classic protocol) with its offsets.
#[derive(Debug, Clone)]
pub struct Group {
    pub(super) id: String,
    pub(super) state: GroupState,
    /// Wall time of the last state change (persisted; offsets retention counts from it).
    pub(super) state_timestamp: i64,
    pub(super) generation: i32,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// Static instance id → member id.
    pub(super) static_members: HashMap<String, String>,
    /// KIP-394: ids handed out with MEMBER_ID_REQUIRED, with the deadline to rejoin by.
    pub(super) pending_members: HashMap<String, i64>,
    /// Members that have not sent SyncGroup for this generation yet.
    pub(super) pending_sync: HashSet<String>,
    /// Deadline for `pending_sync` to empty (Kafka's DelayedSync).
    pub(super) sync_deadline: Option<i64>,
    pub(super) join_phase: Option<JoinPhase>,
    /// A member joined during the initial delay: extend it once more.
    pub(super) new_member_added: bool,
    pub(super) initial_delay_ms: i64,
    /// Topics the members subscribe to (consumer protocol), `None` when unknown.
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
    /// Committed offsets.
    pub offsets: OffsetStore,
    /// Rebalances for the metrics (not persisted).
    pub rebalances: RebalanceLog,
}

impl Group {
    /// A new empty group; `initial_delay_ms` is `group.initial.rebalance.delay.ms`.
    pub fn new(id: &str, now: Now, initial_delay_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            state_timestamp: now.wall,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync: HashSet::new(),
            sync_deadline: None,
            join_phase: None,
            new_member_added: false,
            initial_delay_ms,
            subscribed_topics: None,
            offsets: OffsetStore::default(),
            rebalances: RebalanceLog::default(),
        }
    }

    /// Group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// Current generation id.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Protocol type (`consumer`, ...), `None` for offset-only groups.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// Selected protocol of the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// Leader member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }

    /// Members by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// One member.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// Whether `id` is a current member.
    pub fn has_member(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    /// Whether `id` leads the group.
    pub fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    /// Member id currently bound to static `instance_id`.
    pub fn static_member_id(&self, instance_id: &str) -> Option<&str> {
        self.static_members.get(instance_id).map(String::as_str)
    }

    /// A static instance known under a different member id: the caller is a zombie.
    pub fn is_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|i| self.static_member_id(i))
            .is_some_and(|current| current != member_id)
    }

    /// Whether the members (consumer protocol) subscribe to `topic`; true when unknown.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics
            .as_ref()
            .is_none_or(|topics| topics.contains(topic))
    }

    pub(super) fn transition(&mut self, next: GroupState, now: Now) {
        if !self.state.can_become(next) {
            tracing::error!(group = %self.id, from = %self.state, to = %next, "illegal group state transition");
            debug_assert!(false, "illegal transition {} -> {}", self.state, next);
        }
        tracing::debug!(group = %self.id, from = %self.state, to = %next, "group state");
        match next {
            GroupState::PreparingRebalance => self.rebalances.start(now.mono),
            GroupState::Stable => self.rebalances.finish(now.mono),
            GroupState::Empty | GroupState::Dead => self.rebalances.abandon(),
            GroupState::CompletingRebalance => {}
        }
        self.state = next;
        self.state_timestamp = now.wall;
    }

    /// Longest rebalance timeout among members: how long a join phase may last.
    pub(super) fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Every member and no pending member has joined (`hasAllMembersJoined`).
    pub(super) fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(|m| m.awaiting_join)
    }

    /// Adds a member (`GroupMetadata.add`); the first member fixes the protocol type and
    /// becomes leader.
    pub(super) fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members
                .insert(instance.clone(), member.id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.insert(member.id.clone(), member);
    }

    /// Removes a member (`GroupMetadata.remove`). A JoinGroup it still waits on is answered
    /// UNKNOWN_MEMBER_ID so the client rejoins; a waiting SyncGroup REBALANCE_IN_PROGRESS.
    pub(super) fn remove_member(&mut self, id: &str, effects: &mut Effects) -> Option<Member> {
        let member = self.members.remove(id)?;
        if member.awaiting_join {
            effects.joins.push((
                id.to_string(),
                JoinResult::error("", ResponseError::UnknownMemberId),
            ));
        }
        if member.awaiting_sync {
            effects.syncs.push((
                id.to_string(),
                SyncResult::error(ResponseError::RebalanceInProgress),
            ));
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        if self.is_leader(id) {
            self.leader = self.members.keys().next().cloned();
        }
        self.pending_sync.remove(id);
        Some(member)
    }

    /// Moves static `instance_id` from `old_id` to `new_id`, fencing whatever the old id
    /// was waiting for (`replaceStaticMember`).
    pub(super) fn replace_static_member(
        &mut self,
        instance_id: &str,
        old_id: &str,
        new_id: &str,
        effects: &mut Effects,
    ) {
        let Some(mut member) = self.members.remove(old_id) else {
            return;
        };
        if member.awaiting_join {
            effects.joins.push((
                old_id.to_string(),
                JoinResult::error(old_id, ResponseError::FencedInstanceId),
            ));
            member.awaiting_join = false;
        }
        if member.awaiting_sync {
            effects.syncs.push((
                old_id.to_string(),
                SyncResult::error(ResponseError::FencedInstanceId),
            ));
            member.awaiting_sync = false;
        }
        member.id = new_id.to_string();
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_string());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_string());
        }
        self.static_members
            .insert(instance_id.to_string(), new_id.to_string());
        self.members.insert(new_id.to_string(), member);
    }

    /// Generates a member id as Kafka does: `<instance id or client id>-<uuid>`.
    pub(super) fn new_member_id(client_id: &str, instance_id: Option<&str>) -> String {
        format!(
            "{}-{}",
            instance_id.unwrap_or(client_id),
            uuid::Uuid::new_v4()
        )
    }

    /// If the leader has not rejoined, hands leadership to a member that has; false when no
    /// member rejoined (`maybeElectNewJoinedLeader`).
    pub(super) fn elect_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader.clone() else {
            return false;
        };
        if self.members.get(&leader).is_some_and(|m| m.awaiting_join) {
            return true;
        }
        match self.members.values().find(|m| m.awaiting_join) {
            Some(m) => {
                self.leader = Some(m.id.clone());
                true
            }
            None => false,
        }
    }

    /// Starts the next generation (`initNextGeneration`): CompletingRebalance with a selected
    /// protocol, or Empty when nobody is left.
    pub(super) fn init_next_generation(&mut self, now: Now) {
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty, now);
        } else {
            self.protocol_name = protocol::select(self.members.values());
            self.transition(GroupState::CompletingRebalance, now);
        }
        self.subscribed_topics = self.compute_subscribed_topics();
        self.pending_sync.clear();
        self.sync_deadline = None;
    }

    /// Member metadata for the selected protocol, as the leader receives it.
    pub(super) fn member_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(protocol).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// The JoinGroup answer of the current generation for `member_id`.
    pub(super) fn join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        JoinResult {
            error: None,
            member_id: member_id.to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment: false,
            members: if with_members {
                self.member_metadata()
            } else {
                Vec::new()
            },
        }
    }

    /// The SyncGroup answer carrying `assignment`.
    pub(super) fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            topics.extend(subscribed_topics(member.metadata(protocol)?)?);
        }
        Some(topics)
    }

    /// The record persisting this group, with `assignments` overriding members' current
    /// ones (the leader's new assignment is stored before it is handed out).
    pub(super) fn to_value(&self, assignments: Option<&[(String, Bytes)]>) -> GroupValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(protocol).cloned().unwrap_or_default(),
                    assignment: assignments
                        .and_then(|a| a.iter().find(|(id, _)| *id == m.id))
                        .map_or_else(|| m.assignment.clone(), |(_, a)| a.clone()),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its last metadata record (`GroupMetadata.loadGroup`): Stable
    /// with its members, who must heartbeat within their session, or Empty.
    pub fn from_value(id: &str, value: GroupValue, now: Now, initial_delay_ms: i64) -> Group {
        let mut group = Group::new(id, now, initial_delay_ms);
        group.generation = value.generation;
        group.protocol_type = Some(value.protocol_type).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol;
        group.state_timestamp = value.current_state_timestamp;
        let protocol = group.protocol_name.clone().unwrap_or_default();
        for m in value.members {
            if let Some(instance) = &m.instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(
                m.member_id.clone(),
                Member {
                    id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout_ms: m.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocol_type: group.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![MemberProtocol {
                        name: protocol.clone(),
                        metadata: m.subscription,
                    }],
                    assignment: m.assignment,
                    awaiting_join: false,
                    awaiting_sync: false,
                    is_new: false,
                    heartbeat_deadline: now.mono + i64::from(m.session_timeout_ms),
                },
            );
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            group.leader = value
                .leader
                .filter(|l| group.members.contains_key(l))
                .or_else(|| group.members.keys().next().cloned());
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group
    }

    /// Offsets whose retention has passed (`GroupMetadata.removeExpiredOffsets`' choice):
    /// empty groups count from when they became empty, stable consumer groups keep the
    /// topics they consume, offset-only groups count from each commit.
    pub fn expired_offsets(&self, now_wall: i64, retention_ms: i64) -> Vec<TopicPartition> {
        let none = BTreeSet::new();
        match (&self.protocol_type, self.state) {
            (Some(_), GroupState::Empty) => self.offsets.expired(
                now_wall,
                retention_ms,
                RetentionBase::GroupEmptySince(self.state_timestamp),
                &none,
            ),
            (Some(t), GroupState::Stable) if t == "consumer" => match &self.subscribed_topics {
                Some(topics) => {
                    self.offsets
                        .expired(now_wall, retention_ms, RetentionBase::CommitTime, topics)
                }
                None => Vec::new(),
            },
            (None, _) => {
                self.offsets
                    .expired(now_wall, retention_ms, RetentionBase::CommitTime, &none)
            }
            _ => Vec::new(),
        }
    }

    /// Earliest deadline that needs the timer: pending members, heartbeats that are not
    /// excused, the join phase and the sync phase.
    pub fn next_deadline(&self) -> Option<i64> {
        let pending = self.pending_members.values().copied();
        let heartbeats = self
            .members
            .values()
            .filter(|m| !m.waiting_excuses_heartbeat())
            .map(|m| m.heartbeat_deadline);
        let phases = self
            .join_phase
            .map(|p| p.deadline)
            .into_iter()
            .chain(self.sync_deadline);
        pending.chain(heartbeats).chain(phases).min()
    }
}

/// The topics of consumer-protocol subscription metadata (`ConsumerProtocolSubscription`
/// v0-v3, never flexible: a version, then an array of topic names). Parsed by hand: the
/// generated decoder preallocates whatever array length the bytes claim, and this input
/// comes straight from clients.
pub(super) fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let (_version, rest) = metadata.split_first_chunk::<2>()?;
    let (count, mut rest) = rest.split_first_chunk::<4>()?;
    let count = usize::try_from(i32::from_be_bytes(*count)).ok()?;
    // Each name takes at least its 2-byte length.
    if count > rest.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::try_from(i16::from_be_bytes(*len)).ok()?;
        if tail.len() < len {
            return None;
        }
        let (name, tail) = tail.split_at(len);
        topics.push(String::from_utf8(name.to_vec()).ok()?);
        rest = tail;
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::subscribed_topics;

    #[test]
    fn hostile_subscriptions_are_refused_never_panics() {
        use tributary_storage::hostile::{never_panics, unsealed};
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("orders")]);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&1i16.to_be_bytes());
        sub.encode(&mut buf, 1).expect("encode");
        never_panics(vec![buf.to_vec()], unsealed, |bytes| {
            let _ = subscribed_topics(bytes);
        });
    }

    #[test]
    fn subscription_topics_parse_for_every_version_and_garbage_is_refused() {
        for version in 0i16..=3 {
            let sub = ConsumerProtocolSubscription::default().with_topics(vec![
                StrBytes::from_static_str("orders"),
                StrBytes::from_static_str("payments"),
            ]);
            let sub = if version >= 1 {
                sub.with_owned_partitions(vec![Default::default()])
            } else {
                sub
            };
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            sub.encode(&mut buf, version).unwrap();
            assert_eq!(
                subscribed_topics(&buf).unwrap(),
                vec!["orders", "payments"],
                "v{version}"
            );
        }
        assert_eq!(subscribed_topics(b"owned-1"), None);
        assert_eq!(subscribed_topics(&[0, 0, 0x7f, 0xff, 0xff, 0xff]), None);
        assert_eq!(subscribed_topics(&[0, 0]), None);
    }
}
