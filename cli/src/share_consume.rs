//! `trib consume TOPIC --share-group NAME`: consume as a member of a share group (KIP-932),
//! over the Kafka protocol itself (the bundled librdkafka has no share consumer). The member
//! joins with ShareGroupHeartbeat, fetches from each assigned partition's leader in a share
//! session (ShareFetch), acknowledges every record it printed as `--ack` says (ACCEPT by
//! default, or RELEASE or REJECT), releases what it acquired but did not print, and on exit
//! closes its sessions (ShareAcknowledge) and leaves the group.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use kafka_protocol::messages::share_fetch_request::{
    AcknowledgementBatch, FetchPartition, FetchTopic, ForgottenTopic,
};
use kafka_protocol::messages::share_fetch_response::PartitionData;
use kafka_protocol::messages::{
    ApiKey, GroupId, MetadataRequest, MetadataResponse, ShareAcknowledgeRequest,
    ShareAcknowledgeResponse, ShareFetchRequest, ShareFetchResponse, ShareGroupHeartbeatRequest,
    ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use uuid::Uuid;

use crate::client::Settings;
use crate::error::{Error, Result};
use crate::output::{write_stdout, Output};
use crate::template::{Format, Record};
use crate::wire::{address, any_broker, find_coordinator, refusal, refused, Connection};

/// How each printed record is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AckChoice {
    /// Done with: never delivered again.
    Accept,
    /// Back to the group, delivered again (to any member) with its delivery count raised.
    Release,
    /// Unprocessable: archived, never delivered again.
    Reject,
}

impl AckChoice {
    fn code(self) -> i8 {
        match self {
            AckChoice::Accept => ACCEPT,
            AckChoice::Release => RELEASE,
            AckChoice::Reject => REJECT,
        }
    }
}

/// Acknowledgement types of KIP-932.
const GAP: i8 = 0;
const ACCEPT: i8 = 1;
const RELEASE: i8 = 2;
const REJECT: i8 = 3;
/// ShareGroupHeartbeat's epoch for leaving.
const LEAVE: i32 = -1;
/// How long a fetch waits at the broker for records.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// What `trib consume --share-group` was asked to do.
#[derive(Debug, Clone)]
pub struct ShareOptions {
    /// The share group.
    pub group: String,
    /// How printed records are acknowledged.
    pub ack: AckChoice,
    /// Stop after this many records.
    pub max: Option<u64>,
    /// Stop after a round of fetches over the assignment acquires nothing.
    pub exit_when_idle: bool,
}

/// Where an assigned partition is read.
#[derive(Debug, Default)]
struct Session {
    /// The share session's next epoch (0: opens a new one).
    epoch: i32,
    /// Partitions the session fetches.
    partitions: BTreeSet<i32>,
    /// Acknowledgements to send with the next request, by partition.
    acks: BTreeMap<i32, Vec<AcknowledgementBatch>>,
}

/// One member of a share group, reading one topic.
struct Member<'a> {
    settings: &'a Settings,
    options: &'a ShareOptions,
    topic: String,
    topic_id: Uuid,
    member_id: String,
    epoch: i32,
    heartbeat_every: Duration,
    coordinator: Option<Connection>,
    /// Broker id to address, and partition to leader.
    brokers: HashMap<i32, String>,
    leaders: BTreeMap<i32, i32>,
    assigned: BTreeSet<i32>,
    connections: HashMap<i32, Connection>,
    sessions: HashMap<i32, Session>,
}

/// Consumes `topic` as a member of the share group `options` names, printing each record
/// with `format`; returns how many records were printed.
pub async fn run(
    topic: &str,
    options: &ShareOptions,
    format: &Format,
    settings: &Settings,
    out: &Output,
) -> Result<u64> {
    let mut member = Member::join(topic, options, settings).await?;
    let result = member.consume(format, out).await;
    let closed = member.close().await;
    let count = result?;
    closed?;
    Ok(count)
}

impl<'a> Member<'a> {
    async fn join(topic: &str, options: &'a ShareOptions, settings: &'a Settings) -> Result<Self> {
        let mut member = Member {
            settings,
            options,
            topic: topic.to_owned(),
            topic_id: Uuid::nil(),
            member_id: Uuid::new_v4().to_string(),
            epoch: 0,
            heartbeat_every: Duration::from_secs(5),
            coordinator: None,
            brokers: HashMap::new(),
            leaders: BTreeMap::new(),
            assigned: BTreeSet::new(),
            connections: HashMap::new(),
            sessions: HashMap::new(),
        };
        member.refresh_metadata().await?;
        member.heartbeat().await?;
        Ok(member)
    }

    /// The topic's id, its partitions' leaders, and the brokers' addresses.
    async fn refresh_metadata(&mut self) -> Result<()> {
        let mut conn = any_broker(self.settings).await?;
        let request =
            MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(self.topic.clone()))))]));
        let md: MetadataResponse = conn
            .call(ApiKey::Metadata, 12, &request, Duration::ZERO)
            .await?;
        let Some(t) = md.topics.first() else {
            return Err(Error::UnknownTopic {
                topic: self.topic.clone(),
            });
        };
        match ResponseError::try_from_code(t.error_code) {
            None => {}
            Some(ResponseError::UnknownTopicOrPartition) => {
                return Err(Error::UnknownTopic {
                    topic: self.topic.clone(),
                })
            }
            Some(error) => {
                let action = format!("look up topic '{}'", self.topic);
                return Err(refusal(&action, error));
            }
        }
        self.topic_id = t.topic_id;
        self.leaders = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0))
            .collect();
        self.brokers = md
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
            .collect();
        Ok(())
    }

    /// The group's coordinator.
    async fn coordinator(&mut self) -> Result<&mut Connection> {
        if self.coordinator.is_none() {
            let found = find_coordinator(self.settings, &self.options.group).await?;
            self.coordinator = Some(Connection::new(address(&found), self.settings.timeout));
        }
        self.coordinator.as_mut().ok_or_else(|| Error::Protocol {
            broker: String::new(),
            detail: "no coordinator".into(),
        })
    }

    /// One heartbeat: joins at epoch 0, leaves at -1; takes the assignment it carries.
    async fn heartbeat(&mut self) -> Result<()> {
        let joining = self.epoch == 0;
        let request = ShareGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.options.group.clone())))
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_member_epoch(self.epoch)
            .with_subscribed_topic_names(
                joining.then(|| vec![TopicName(StrBytes::from_string(self.topic.clone()))]),
            );
        let answer: ShareGroupHeartbeatResponse = match self
            .coordinator()
            .await?
            .call(ApiKey::ShareGroupHeartbeat, 1, &request, Duration::ZERO)
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                self.coordinator = None;
                return Err(e);
            }
        };
        let action = format!("heartbeat in share group '{}'", self.options.group);
        match ResponseError::try_from_code(answer.error_code) {
            None => {}
            Some(ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable) => {
                self.coordinator = None;
                return Ok(());
            }
            Some(ResponseError::CoordinatorLoadInProgress) => return Ok(()),
            Some(ResponseError::UnknownMemberId | ResponseError::FencedMemberEpoch) => {
                // Fenced (or, when leaving, gone already): join again as a new incarnation;
                // what it held went back.
                if self.epoch != LEAVE {
                    self.epoch = 0;
                    self.assigned.clear();
                }
                return Ok(());
            }
            Some(ResponseError::UnsupportedVersion) => {
                return Err(Error::Refused {
                    action,
                    error: "the brokers do not serve share groups (share.version 0, or \
                            group.share.enable=false)"
                        .into(),
                })
            }
            Some(error) => return Err(refusal(&action, error)),
        }
        if self.epoch == LEAVE {
            return Ok(());
        }
        self.epoch = answer.member_epoch;
        if answer.heartbeat_interval_ms > 0 {
            self.heartbeat_every =
                Duration::from_millis(u64::try_from(answer.heartbeat_interval_ms).unwrap_or(5_000));
        }
        if let Some(assignment) = answer.assignment {
            self.assigned = assignment
                .topic_partitions
                .iter()
                .filter(|t| t.topic_id == self.topic_id)
                .flat_map(|t| t.partitions.iter().copied())
                .collect();
        }
        Ok(())
    }

    /// Heartbeats and fetches until Ctrl-C, `--max-messages` or (with `--exit-at-end`) an
    /// idle round.
    async fn consume(&mut self, format: &Format, out: &Output) -> Result<u64> {
        let mut count = 0u64;
        let mut next_heartbeat = Instant::now() + self.heartbeat_every;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let waiting_since = Instant::now();
        let mut warned = false;
        loop {
            if self.options.max.is_some_and(|max| count >= max) {
                return Ok(count);
            }
            if Instant::now() >= next_heartbeat || self.epoch == 0 {
                self.heartbeat().await?;
                next_heartbeat = Instant::now() + self.heartbeat_every;
            }
            if self.assigned.is_empty() {
                if !warned && waiting_since.elapsed() > self.settings.timeout {
                    warned = true;
                    out.warn(&format!(
                        "share group '{}' has assigned no partition of '{}' yet",
                        self.options.group, self.topic
                    ));
                }
                tokio::select! {
                    _ = &mut ctrl_c => return Ok(count),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
            let round = tokio::select! {
                _ = &mut ctrl_c => return Ok(count),
                r = self.fetch_round(format, &mut count) => r?,
            };
            if round == Some(0) && self.options.exit_when_idle {
                return Ok(count);
            }
        }
    }

    /// One ShareFetch to each leader of an assigned partition, carrying the acknowledgements
    /// owed there; prints what it acquires. Returns how many records were acquired, `None`
    /// when a session had to start again or a leader moved (the round saw not everything).
    async fn fetch_round(&mut self, format: &Format, count: &mut u64) -> Result<Option<usize>> {
        let mut by_leader: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
        for p in &self.assigned {
            if let Some(leader) = self.leaders.get(p).filter(|l| **l >= 0) {
                by_leader.entry(*leader).or_default().insert(*p);
            }
        }
        // A session on a broker that leads none of the assignment any more still gets its
        // acknowledgements, and forgets its partitions.
        for (broker, session) in &self.sessions {
            if !session.partitions.is_empty() || !session.acks.is_empty() {
                by_leader.entry(*broker).or_default();
            }
        }
        let mut acquired = 0;
        let mut stale = false;
        let mut complete = true;
        for (broker, partitions) in by_leader {
            let Some(fetched) = self.fetch_from(broker, &partitions).await? else {
                complete = false;
                continue;
            };
            for data in fetched {
                match ResponseError::try_from_code(data.error_code) {
                    None => {}
                    Some(
                        ResponseError::NotLeaderOrFollower | ResponseError::UnknownTopicOrPartition,
                    ) => {
                        stale = true;
                        continue;
                    }
                    Some(error) => {
                        let action = format!("fetch {}/{}", self.topic, data.partition_index);
                        return Err(refusal(&action, error));
                    }
                }
                acquired += self.take(broker, &data, format, count)?;
            }
        }
        if stale {
            self.refresh_metadata().await?;
        }
        Ok((complete && !stale).then_some(acquired))
    }

    /// Sends one ShareFetch to `broker` for `partitions`, with the acknowledgements owed
    /// there; returns its partitions' answers, `None` when the session must start again.
    async fn fetch_from(
        &mut self,
        broker: i32,
        partitions: &BTreeSet<i32>,
    ) -> Result<Option<Vec<PartitionData>>> {
        let session = self.sessions.entry(broker).or_default();
        if session.epoch == 0 {
            // Acknowledgements cannot open a session; those records' locks run out.
            session.acks.clear();
            session.partitions.clear();
        }
        // A partition no longer assigned stays in the request while acknowledgements are
        // owed for it, and is forgotten after.
        let requested: BTreeSet<i32> = partitions
            .iter()
            .chain(session.acks.keys())
            .copied()
            .collect();
        let forgotten: Vec<i32> = session.partitions.difference(&requested).copied().collect();
        let fetch: Vec<FetchPartition> = requested
            .iter()
            .map(|p| {
                FetchPartition::default()
                    .with_partition_index(*p)
                    .with_acknowledgement_batches(session.acks.get(p).cloned().unwrap_or_default())
            })
            .collect();
        let request = ShareFetchRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_string(
                self.options.group.clone(),
            ))))
            .with_member_id(Some(StrBytes::from_string(self.member_id.clone())))
            .with_share_session_epoch(session.epoch)
            .with_max_wait_ms(i32::try_from(FETCH_WAIT.as_millis()).unwrap_or(500))
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_max_records(500)
            .with_batch_size(500)
            .with_topics(vec![FetchTopic::default()
                .with_topic_id(self.topic_id)
                .with_partitions(fetch)])
            .with_forgotten_topics_data(if forgotten.is_empty() {
                Vec::new()
            } else {
                vec![ForgottenTopic::default()
                    .with_topic_id(self.topic_id)
                    .with_partitions(forgotten)]
            });
        let Some(address) = self.brokers.get(&broker).cloned() else {
            self.sessions.remove(&broker);
            return Ok(None);
        };
        let conn = self
            .connections
            .entry(broker)
            .or_insert_with(|| Connection::new(address, self.settings.timeout));
        let answer: ShareFetchResponse =
            match conn.call(ApiKey::ShareFetch, 1, &request, FETCH_WAIT).await {
                Ok(answer) => answer,
                Err(e) => {
                    // A closed connection ends the session and gives its records back.
                    self.sessions.remove(&broker);
                    return Err(e);
                }
            };
        let session = self.sessions.entry(broker).or_default();
        match ResponseError::try_from_code(answer.error_code) {
            None => {}
            Some(ResponseError::ShareSessionNotFound | ResponseError::InvalidShareSessionEpoch) => {
                *session = Session::default();
                return Ok(None);
            }
            Some(error) => {
                let action = format!("fetch from share group '{}'", self.options.group);
                return Err(refusal(&action, error));
            }
        }
        session.epoch = next_epoch(session.epoch);
        session.partitions = requested;
        session.acks.clear();
        Ok(Some(
            answer
                .responses
                .into_iter()
                .filter(|t| t.topic_id == self.topic_id)
                .flat_map(|t| t.partitions)
                .collect(),
        ))
    }

    /// Prints the acquired records of one partition's answer (up to `--max-messages`) and
    /// owes each acquired offset an acknowledgement: `--ack` for those printed, RELEASE for
    /// those not, GAP for offsets without a record (control records, compacted ones).
    fn take(
        &mut self,
        broker: i32,
        data: &PartitionData,
        format: &Format,
        count: &mut u64,
    ) -> Result<usize> {
        if data.acquired_records.is_empty() {
            return Ok(0);
        }
        let mut records = BTreeMap::new();
        if let Some(bytes) = &data.records {
            let mut buf = bytes.clone();
            let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| Error::Protocol {
                broker: self.brokers.get(&broker).cloned().unwrap_or_default(),
                detail: format!("records of {}/{}: {e}", self.topic, data.partition_index),
            })?;
            for record in sets.into_iter().flat_map(|s| s.records) {
                if !record.control {
                    records.insert(record.offset, record);
                }
            }
        }
        let mut types = Vec::new();
        let mut acquired = 0;
        let mut headers: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for range in &data.acquired_records {
            for offset in range.first_offset..=range.last_offset {
                acquired += 1;
                let Some(record) = records.get(&offset) else {
                    types.push((offset, GAP));
                    continue;
                };
                if self.options.max.is_some_and(|max| *count >= max) {
                    types.push((offset, RELEASE));
                    continue;
                }
                headers.clear();
                headers.extend(
                    record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.as_ref().map(|v| v.to_vec()))),
                );
                let printed = Record {
                    topic: &self.topic,
                    partition: data.partition_index,
                    offset,
                    timestamp: Some(record.timestamp),
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                    headers: &headers,
                };
                write_stdout(&format.render(&printed))?;
                *count += 1;
                types.push((offset, self.options.ack.code()));
            }
        }
        self.sessions
            .entry(broker)
            .or_default()
            .acks
            .entry(data.partition_index)
            .or_default()
            .extend(batches(&types));
        Ok(acquired)
    }

    /// Acknowledges what is owed and closes every share session (ShareAcknowledge at epoch
    /// -1), then leaves the group; the first failure is returned after trying all.
    async fn close(&mut self) -> Result<()> {
        let mut first = None;
        let sessions: Vec<(i32, Session)> = self.sessions.drain().collect();
        for (broker, session) in sessions {
            if session.epoch == 0 {
                continue;
            }
            let Some(conn) = self.connections.get_mut(&broker) else {
                continue;
            };
            let topics = vec![AcknowledgeTopic::default()
                .with_topic_id(self.topic_id)
                .with_partitions(
                    session
                        .acks
                        .into_iter()
                        .map(|(p, batches)| {
                            AcknowledgePartition::default()
                                .with_partition_index(p)
                                .with_acknowledgement_batches(
                                    batches
                                        .into_iter()
                                        .map(|b| {
                                            AckBatch::default()
                                                .with_first_offset(b.first_offset)
                                                .with_last_offset(b.last_offset)
                                                .with_acknowledge_types(b.acknowledge_types)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                )];
            let request = ShareAcknowledgeRequest::default()
                .with_group_id(Some(GroupId(StrBytes::from_string(
                    self.options.group.clone(),
                ))))
                .with_member_id(Some(StrBytes::from_string(self.member_id.clone())))
                .with_share_session_epoch(-1)
                .with_topics(topics);
            let action = format!("acknowledge to share group '{}'", self.options.group);
            match conn
                .call::<_, ShareAcknowledgeResponse>(
                    ApiKey::ShareAcknowledge,
                    1,
                    &request,
                    Duration::ZERO,
                )
                .await
            {
                Ok(answer) => {
                    let codes = std::iter::once(answer.error_code).chain(
                        answer
                            .responses
                            .iter()
                            .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                    );
                    for code in codes {
                        if let Some(e) = refused(&action, code) {
                            first.get_or_insert(e);
                        }
                    }
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        if self.epoch > 0 {
            self.epoch = LEAVE;
            if let Err(e) = self.heartbeat().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// The share session epoch after `epoch`: it wraps from i32::MAX to 1 (0 opens a session).
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// Offsets with their acknowledgement types as batches: runs of consecutive offsets, one
/// type for a run of one type, else one type per offset.
fn batches(types: &[(i64, i8)]) -> Vec<AcknowledgementBatch> {
    let mut out: Vec<AcknowledgementBatch> = Vec::new();
    let mut run: Vec<(i64, i8)> = Vec::new();
    let flush = |run: &mut Vec<(i64, i8)>, out: &mut Vec<AcknowledgementBatch>| {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return;
        };
        let kinds: Vec<i8> = run.iter().map(|(_, t)| *t).collect();
        let same = kinds.iter().all(|t| *t == kinds[0]);
        out.push(
            AcknowledgementBatch::default()
                .with_first_offset(first.0)
                .with_last_offset(last.0)
                .with_acknowledge_types(if same { vec![kinds[0]] } else { kinds }),
        );
        run.clear();
    };
    for &(offset, kind) in types {
        if run.last().is_some_and(|(last, _)| *last + 1 != offset) {
            flush(&mut run, &mut out);
        }
        run.push((offset, kind));
    }
    flush(&mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: i64, last: i64, types: &[i8]) -> (i64, i64, Vec<i8>) {
        (first, last, types.to_vec())
    }

    fn shape(b: &[AcknowledgementBatch]) -> Vec<(i64, i64, Vec<i8>)> {
        b.iter()
            .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
            .collect()
    }

    #[test]
    fn acknowledgements_go_as_runs_with_one_type_or_one_per_offset() {
        let types = [
            (3, ACCEPT),
            (4, ACCEPT),
            (5, GAP),
            (6, ACCEPT),
            (9, RELEASE),
        ];
        assert_eq!(
            shape(&batches(&types)),
            vec![
                batch(3, 6, &[ACCEPT, ACCEPT, GAP, ACCEPT]),
                batch(9, 9, &[RELEASE])
            ]
        );
        assert_eq!(
            shape(&batches(&[(0, REJECT), (1, REJECT)])),
            vec![batch(0, 1, &[REJECT])]
        );
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn the_session_epoch_wraps_to_1() {
        assert_eq!(next_epoch(0), 1);
        assert_eq!(next_epoch(i32::MAX), 1);
    }
}
