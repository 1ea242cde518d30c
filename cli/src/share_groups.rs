//! Share groups (KIP-932) for `trib group list` and `describe`, asked over the Kafka protocol
//! itself (the bundled librdkafka lists and describes consumer and classic groups only):
//! ListGroups with the `share` type filter on every broker, ShareGroupDescribe and
//! DescribeShareGroupOffsets (start offsets and lag, KIP-1226) at the group's coordinator.

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::share_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{
    ApiKey, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, GroupId,
    ListGroupsRequest, ListGroupsResponse, MetadataRequest, MetadataResponse,
    ShareGroupDescribeRequest, ShareGroupDescribeResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin_groups::Coordinator;
use crate::client::Settings;
use crate::error::Result;
use crate::wire::{address, any_broker, find_coordinator, refusal, refused, Connection};

/// One member of a share group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMember {
    /// The member id.
    pub id: String,
    /// The client's id.
    pub client_id: String,
    /// Where the client connects from.
    pub host: String,
    /// The partitions it reads, as (topic, partition).
    pub assignment: Vec<(String, i32)>,
}

/// One share-partition of a group: where it starts and how much is left to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharePartitionRow {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The share-partition start offset (`None`: not initialized).
    pub start_offset: Option<i64>,
    /// Records up to the high watermark not yet acknowledged or archived.
    pub lag: Option<i64>,
}

/// A share group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroup {
    /// The group id.
    pub name: String,
    /// Empty, Stable or Dead.
    pub state: String,
    /// The server-side assignor.
    pub assignor: String,
    /// The coordinator.
    pub coordinator: Coordinator,
    /// The members.
    pub members: Vec<ShareMember>,
    /// Its share-partitions (empty in a list).
    pub partitions: Vec<SharePartitionRow>,
}

/// Every share group of the cluster, described (without offsets); each broker lists the
/// groups it coordinates.
pub async fn list(settings: &Settings) -> Result<Vec<ShareGroup>> {
    let mut bootstrap = any_broker(settings).await?;
    let md: MetadataResponse = bootstrap
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(Vec::new())),
            Duration::ZERO,
        )
        .await?;
    let mut groups = Vec::new();
    for broker in md.brokers {
        let coordinator = Coordinator {
            id: broker.node_id.0,
            host: broker.host.to_string(),
            port: u16::try_from(broker.port).unwrap_or(0),
        };
        let mut conn = Connection::new(address(&coordinator), settings.timeout);
        let request = ListGroupsRequest::default()
            .with_types_filter(vec![StrBytes::from_static_str("share")]);
        let listed: ListGroupsResponse = conn
            .call(ApiKey::ListGroups, 5, &request, Duration::ZERO)
            .await?;
        if let Some(e) = refused("list share groups", listed.error_code) {
            return Err(e);
        }
        let ids: Vec<GroupId> = listed.groups.into_iter().map(|g| g.group_id).collect();
        if ids.is_empty() {
            continue;
        }
        for described in describe_at(&mut conn, ids).await? {
            if described.error_code == 0 {
                groups.push(group_of(described, coordinator.clone()));
            }
        }
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

/// Share group `group` with its share-partitions, or `None` when no share group has that id.
pub async fn describe(settings: &Settings, group: &str) -> Result<Option<ShareGroup>> {
    let coordinator = find_coordinator(settings, group).await?;
    let mut conn = Connection::new(address(&coordinator), settings.timeout);
    let Some(described) = describe_at(
        &mut conn,
        vec![GroupId(StrBytes::from_string(group.to_owned()))],
    )
    .await?
    .into_iter()
    .next() else {
        return Ok(None);
    };
    match ResponseError::try_from_code(described.error_code) {
        None => {}
        // Not a share group, or no group at all.
        Some(ResponseError::GroupIdNotFound) => return Ok(None),
        Some(error) => {
            let action = format!("describe share group '{group}'");
            return Err(refusal(&action, error));
        }
    }
    let mut found = group_of(described, coordinator);
    let request = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
        DescribeShareGroupOffsetsRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
            .with_topics(None),
    ]);
    let offsets: DescribeShareGroupOffsetsResponse = conn
        .call(
            ApiKey::DescribeShareGroupOffsets,
            1,
            &request,
            Duration::ZERO,
        )
        .await?;
    let action = format!("read the start offsets of share group '{group}'");
    let mut rows = BTreeMap::new();
    for g in offsets.groups {
        if let Some(e) = refused(&action, g.error_code) {
            return Err(e);
        }
        for t in g.topics {
            for p in t.partitions {
                let known = p.error_code == 0 && p.start_offset >= 0;
                rows.insert(
                    (t.topic_name.to_string(), p.partition_index),
                    SharePartitionRow {
                        topic: t.topic_name.to_string(),
                        partition: p.partition_index,
                        start_offset: known.then_some(p.start_offset),
                        lag: (known && p.lag >= 0).then_some(p.lag),
                    },
                );
            }
        }
    }
    found.partitions = rows.into_values().collect();
    Ok(Some(found))
}

async fn describe_at(conn: &mut Connection, ids: Vec<GroupId>) -> Result<Vec<DescribedGroup>> {
    let request = ShareGroupDescribeRequest::default().with_group_ids(ids);
    let answer: ShareGroupDescribeResponse = conn
        .call(ApiKey::ShareGroupDescribe, 1, &request, Duration::ZERO)
        .await?;
    Ok(answer.groups)
}

fn group_of(d: DescribedGroup, coordinator: Coordinator) -> ShareGroup {
    let mut members: Vec<ShareMember> = d
        .members
        .into_iter()
        .map(|m| {
            let mut assignment: Vec<(String, i32)> = m
                .assignment
                .topic_partitions
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (t.topic_name.to_string(), *p)))
                .collect();
            assignment.sort();
            ShareMember {
                id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            }
        })
        .collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    ShareGroup {
        name: d.group_id.to_string(),
        state: d.group_state.to_string(),
        assignor: d.assignor_name.to_string(),
        coordinator,
        members,
        partitions: Vec::new(),
    }
}
