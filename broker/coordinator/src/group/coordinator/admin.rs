//! ListGroups, DescribeGroups and DeleteGroups.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::{GroupCoordinator, GroupIdRule};
use crate::group::state::GroupState;
use crate::group::summary::GroupSummary;

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type ("" for offset-only groups).
    pub protocol_type: String,
    /// Current state.
    pub state: GroupState,
}

impl GroupCoordinator {
    /// ListGroups: groups whose state is in `states` (all when empty), sorted by id, plus
    /// COORDINATOR_LOAD_IN_PROGRESS while some partition still loads.
    pub fn list(&self, states: &[GroupState]) -> (Option<ResponseError>, Vec<ListedGroup>) {
        let shared: Vec<_> = self.groups.read().values().cloned().collect();
        let mut groups: Vec<ListedGroup> = shared
            .iter()
            .filter_map(|s| {
                let slot = s.lock();
                let g = &slot.group;
                (states.is_empty() || states.contains(&g.state())).then(|| ListedGroup {
                    group_id: g.id().to_string(),
                    protocol_type: g.protocol_type().unwrap_or_default().to_string(),
                    state: g.state(),
                })
            })
            .collect();
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        let error = self
            .is_loading()
            .then_some(ResponseError::CoordinatorLoadInProgress);
        (error, groups)
    }

    /// DescribeGroups for one group; an unknown group is reported Dead, as Kafka does, and a
    /// consumer group is GROUP_ID_NOT_FOUND, as Kafka 4 answers (ConsumerGroupDescribe
    /// describes it).
    pub fn describe(self: &Arc<Self>, group_id: &str) -> Result<GroupSummary, ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        if self.is_consumer_group(group_id) {
            return Err(ResponseError::GroupIdNotFound);
        }
        Ok(self
            .get(group_id)
            .map_or_else(GroupSummary::dead, |s| s.lock().group.summary()))
    }

    /// DeleteGroups: deletes empty groups with their offsets; one result per id.
    pub async fn delete_groups(
        self: &Arc<Self>,
        group_ids: &[String],
    ) -> Vec<Result<(), ResponseError>> {
        let mut results = Vec::with_capacity(group_ids.len());
        let mut waits = Vec::new();
        for (i, id) in group_ids.iter().enumerate() {
            results.push(self.delete_one(id).map(|appended| {
                if let Some(appended) = appended {
                    waits.push((i, appended));
                }
            }));
        }
        for (i, appended) in waits {
            if let Err(error) = appended.durable.await {
                results[i] = Err(error.code());
            }
        }
        results
    }

    fn delete_one(
        self: &Arc<Self>,
        group_id: &str,
    ) -> Result<Option<crate::log::Appended>, ResponseError> {
        self.check(group_id, GroupIdRule::AllowEmpty)?;
        // A consumer group goes with its offsets (in the classic slot), and only when empty.
        let mut tombstones = self.delete_consumer_group(group_id)?.unwrap_or_default();
        let consumer = !tombstones.is_empty();
        let now = self.now();
        if let Some(shared) = self.get(group_id) {
            let mut slot = shared.lock();
            match slot.group.state() {
                GroupState::Dead if !consumer => return Err(ResponseError::GroupIdNotFound),
                GroupState::Dead => {}
                GroupState::Empty => tombstones.extend(self.bury(&shared, &mut slot, now)),
                _ => return Err(ResponseError::NonEmptyGroup),
            }
        } else if !consumer {
            return Err(ResponseError::GroupIdNotFound);
        }
        tracing::info!(group = %group_id, records = tombstones.len(), "deleted group");
        if tombstones.is_empty() {
            return Ok(None);
        }
        self.append(group_id, &tombstones, now)
            .map(Some)
            .map_err(|e| e.code())
    }
}
