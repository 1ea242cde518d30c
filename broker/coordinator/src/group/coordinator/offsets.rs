//! OffsetCommit, OffsetFetch and OffsetDelete. A commit is answered once its records are
//! durable; readers see it only then (Kafka's pending offset commits).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{GroupCoordinator, GroupIdRule, MemberEpoch};
use crate::group::commit::Committer;
use crate::group::offsets::{Committed, TopicPartition};
use crate::group::records::{offset_key, OffsetValue};
use crate::group::state::GroupState;
use crate::log::Entry;
pub use crate::offset_commit::CommitOffset;
use tributary_storage::ProducerRef;

/// An OffsetCommit after topic validation.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// Group id.
    pub group_id: String,
    /// Member, instance and generation of the committer.
    pub committer: Committer,
    /// Explicit retention of OffsetCommit v2-v4 (`None` for the broker default).
    pub retention_ms: Option<i64>,
    /// Offsets to commit.
    pub offsets: Vec<CommitOffset>,
    /// The OffsetCommit version: members of the consumer protocol must use v9+ (member
    /// epochs), as Kafka's `ConsumerGroup.validateOffsetCommit` requires.
    pub api_version: i16,
}

/// Committed offsets of one topic: per partition, `None` when nothing is committed.
pub type FetchedTopic = (String, Vec<(i32, Option<OffsetValue>)>);

impl GroupCoordinator {
    /// TxnOffsetCommit: writes `offsets` to the group's partition as records of `producer`'s
    /// transaction, answered once durable. They stay pending (invisible to OffsetFetch) until
    /// the transaction coordinator's marker reaches the partition: see
    /// [`GroupCoordinator::complete_txn_offsets`]. Being in the log, they survive a move of
    /// this coordinator, as in Kafka.
    pub async fn commit_txn_offsets(
        self: &Arc<Self>,
        producer: ProducerRef,
        group_id: &str,
        offsets: Vec<CommitOffset>,
    ) -> Result<(), ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        if offsets.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let values: Vec<(TopicPartition, OffsetValue)> = offsets
            .into_iter()
            .map(|o| {
                let value = OffsetValue {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.unwrap_or_default(),
                    commit_timestamp: now.wall,
                    expire_timestamp: None,
                };
                ((o.topic, o.partition), value)
            })
            .collect();
        let entries: Vec<Entry> = values
            .iter()
            .map(|((t, p), v)| (offset_key(group_id, t, *p), Some(v.encode())))
            .collect();
        let partition = self.partition_for(group_id);
        let appended = {
            // Held across the append, so the pending offsets are in place before any marker
            // after them can be completed.
            let mut pending = self.txn_offsets.lock();
            let appended = self
                .append_as(group_id, &entries, Some(producer), now)
                .map_err(|error| {
                    tracing::warn!(group = group_id, %error, "transactional offsets not written");
                    error.code()
                })?;
            let held = pending.entry(partition).or_default();
            for (n, (tp, value)) in values.into_iter().enumerate() {
                let record_offset = appended.base_offset + i64::try_from(n).unwrap_or(0);
                let committed = Committed {
                    value,
                    record_offset,
                };
                held.add(producer.id, group_id.to_string(), tp, committed);
            }
            appended
        };
        appended.durable.await.map_err(|error| error.code())
    }

    /// A marker of `producer_id` is committed on `partition` of `__consumer_offsets`, led
    /// here: the offsets its transaction wrote there take effect (COMMIT) or are dropped
    /// (ABORT). The marker in the log already says so; this brings memory in line.
    pub fn complete_txn_offsets(self: &Arc<Self>, partition: i32, producer_id: i64, commit: bool) {
        let ended = match self.txn_offsets.lock().get_mut(&partition) {
            Some(pending) => pending.end(producer_id, commit),
            None => return,
        };
        for (group, tp, committed) in ended {
            let shared = self.get_or_create(&group);
            let mut slot = shared.lock();
            slot.group.offsets.apply(tp, committed);
            self.schedule(&mut slot);
        }
    }

    /// Whether an open transaction holds an offset of `group_id` for the partition, not yet
    /// committed (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT, KIP-447).
    pub fn holds_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets
            .lock()
            .get(&self.partition_for(group_id))
            .is_some_and(|pending| pending.holds(group_id, topic, partition))
    }

    /// OffsetCommit: one result per requested offset, in order.
    pub async fn commit(
        self: &Arc<Self>,
        mut request: CommitRequest,
    ) -> Vec<Result<(), ResponseError>> {
        let who = MemberEpoch {
            member_id: &request.committer.member_id,
            epoch: request.committer.generation,
        };
        let access = super::consumer::Access::Commit {
            api_version: request.api_version,
            offsets: &request.offsets,
        };
        match self.check_consumer_member(&request.group_id, who, access) {
            None => self.write_offsets(request, true).await,
            Some(Err(error)) => vec![Err(error); request.offsets.len()],
            Some(Ok(())) => {
                // Checked against the consumer group: the offsets-only slot takes them as a
                // simple commit.
                request.committer = Committer {
                    generation: -1,
                    ..Committer::default()
                };
                self.write_offsets(request, false).await
            }
        }
    }

    /// Commits offsets a transaction coordinator held in its own state until the transaction
    /// committed, as transaction states written by earlier releases hold them: the committer
    /// was checked when the offsets were sent, so membership changes since do not refuse them.
    pub async fn commit_transactional(
        self: &Arc<Self>,
        group_id: &str,
        offsets: Vec<CommitOffset>,
    ) -> Vec<Result<(), ResponseError>> {
        let request = CommitRequest {
            group_id: group_id.to_string(),
            committer: Committer {
                generation: -1,
                ..Committer::default()
            },
            retention_ms: None,
            offsets,
            api_version: i16::MAX,
        };
        self.write_offsets(request, false).await
    }

    /// Whether `committer` may send offsets of `group_id` with a transaction (TxnOffsetCommit,
    /// KIP-447); a consumer group checks the member epoch as for OffsetCommit.
    pub fn check_txn_committer(
        self: &Arc<Self>,
        group_id: &str,
        committer: &Committer,
    ) -> Result<(), ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        let who = MemberEpoch {
            member_id: &committer.member_id,
            epoch: committer.generation,
        };
        let access = super::consumer::Access::TransactionalCommit;
        if let Some(checked) = self.check_consumer_member(group_id, who, access) {
            return checked;
        }
        let Some(shared) = self.get(group_id) else {
            return if committer.generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        let slot = shared.lock();
        slot.group.check_txn_commit(committer)
    }

    /// The longest metadata string a commit may carry (offset.metadata.max.bytes).
    pub fn offset_metadata_max_bytes(&self) -> usize {
        self.config.offset_metadata_max_bytes
    }

    async fn write_offsets(
        self: &Arc<Self>,
        request: CommitRequest,
        check_committer: bool,
    ) -> Vec<Result<(), ResponseError>> {
        let all = |e: ResponseError| vec![Err(e); request.offsets.len()];
        if let Err(error) = self.check(&request.group_id, GroupIdRule::AllowEmpty) {
            return all(error);
        }
        let shared = match self.get(&request.group_id) {
            Some(shared) => shared,
            // A client without group management commits for a group nobody created yet.
            None if request.committer.generation < 0 => self.get_or_create(&request.group_id),
            None => return all(ResponseError::IllegalGeneration),
        };
        let now = self.now();
        let mut results = vec![Ok(()); request.offsets.len()];
        let mut written: Vec<(usize, TopicPartition, OffsetValue)> = Vec::new();
        for (i, o) in request.offsets.iter().enumerate() {
            let metadata = o.metadata.clone().unwrap_or_default();
            if metadata.len() > self.config.offset_metadata_max_bytes {
                results[i] = Err(ResponseError::OffsetMetadataTooLarge);
                continue;
            }
            let value = OffsetValue {
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata,
                commit_timestamp: now.wall,
                expire_timestamp: request.retention_ms.map(|r| now.wall.saturating_add(r)),
            };
            written.push((i, (o.topic.clone(), o.partition), value));
        }
        let appended = {
            let mut slot = shared.lock();
            let allowed = if check_committer {
                slot.group.check_commit(&request.committer, now)
            } else if slot.group.state == GroupState::Dead {
                Err(ResponseError::CoordinatorNotAvailable)
            } else {
                Ok(())
            };
            if let Err(error) = allowed {
                return all(error);
            }
            self.schedule(&mut slot);
            if written.is_empty() {
                return results;
            }
            let entries: Vec<Entry> = written
                .iter()
                .map(|(_, (t, p), v)| (offset_key(&request.group_id, t, *p), Some(v.encode())))
                .collect();
            match self.append(&request.group_id, &entries, now) {
                Ok(appended) => {
                    let tps: Vec<TopicPartition> =
                        written.iter().map(|(_, tp, _)| tp.clone()).collect();
                    slot.group.offsets.begin(&tps);
                    appended
                }
                Err(error) => {
                    tracing::warn!(group = %request.group_id, %error, "offset commit not written");
                    for (i, _, _) in &written {
                        results[*i] = Err(error.code());
                    }
                    return results;
                }
            }
        };
        let durable = appended.durable.await;
        let mut slot = shared.lock();
        for (n, (i, tp, value)) in written.into_iter().enumerate() {
            // The record is in the log either way, so memory follows it; a client that saw
            // a timeout retries.
            let record_offset = appended.base_offset + i64::try_from(n).unwrap_or(0);
            slot.group.offsets.finish(
                &tp,
                Some(Committed {
                    value,
                    record_offset,
                }),
            );
            if let Err(error) = &durable {
                results[i] = Err(error.code());
            }
        }
        results
    }

    /// OffsetFetch for one group: the requested partitions, or every committed offset when
    /// `topics` is `None`.
    pub fn fetch_offsets(
        self: &Arc<Self>,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> Result<Vec<FetchedTopic>, ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        let shared = self.get(group_id);
        let slot = shared.as_ref().map(|s| s.lock());
        let store = slot.as_ref().map(|s| &s.group.offsets);
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let offsets = partitions
                        .into_iter()
                        .map(|p| (p, store.and_then(|s| s.get(&topic, p)).cloned()))
                        .collect();
                    (topic, offsets)
                })
                .collect(),
            None => {
                let mut out: Vec<FetchedTopic> = Vec::new();
                for ((topic, partition), value) in store.into_iter().flat_map(|s| s.iter()) {
                    match out.last_mut() {
                        Some((t, ps)) if t == topic => ps.push((*partition, Some(value.clone()))),
                        _ => out.push((topic.clone(), vec![(*partition, Some(value.clone()))])),
                    }
                }
                out
            }
        })
    }

    /// OffsetDelete: removes offsets of topics the group does not consume.
    pub async fn delete_offsets(
        self: &Arc<Self>,
        group_id: &str,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<Result<(), ResponseError>>, ResponseError> {
        self.check(group_id, GroupIdRule::NonEmpty)?;
        let subscribed = self.consumer_subscriptions(group_id);
        let shared = self.get(group_id).ok_or(ResponseError::GroupIdNotFound)?;
        let now = self.now();
        let (results, appended) = {
            let mut slot = shared.lock();
            let group = &mut slot.group;
            let consumer = group.protocol_type() == Some("consumer");
            let results: Vec<Result<(), ResponseError>> = match group.state() {
                GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
                GroupState::Empty => partitions.iter().map(|_| Ok(())).collect(),
                _ if consumer => partitions
                    .iter()
                    .map(|(t, _)| {
                        if group.is_subscribed_to(t) {
                            Err(ResponseError::GroupSubscribedToTopic)
                        } else {
                            Ok(())
                        }
                    })
                    .collect(),
                _ => return Err(ResponseError::NonEmptyGroup),
            };
            // A consumer group with members keeps the offsets of the topics it subscribes to.
            let results: Vec<Result<(), ResponseError>> = match &subscribed {
                None => results,
                Some(topics) => partitions
                    .iter()
                    .zip(results)
                    .map(|((t, _), r)| {
                        if topics.contains(t) {
                            Err(ResponseError::GroupSubscribedToTopic)
                        } else {
                            r
                        }
                    })
                    .collect(),
            };
            let mut tombstones: Vec<Entry> = Vec::new();
            for (tp, result) in partitions.iter().zip(&results) {
                if result.is_ok() && group.offsets.remove(tp).is_some() {
                    tombstones.push((offset_key(group_id, &tp.0, tp.1), None));
                }
            }
            let appended = if tombstones.is_empty() {
                None
            } else {
                Some(self.append(group_id, &tombstones, now))
            };
            (results, appended)
        };
        match appended {
            None => Ok(results),
            Some(Err(error)) => Err(error.code()),
            Some(Ok(appended)) => appended
                .durable
                .await
                .map(|()| results)
                .map_err(|e| e.code()),
        }
    }
}
