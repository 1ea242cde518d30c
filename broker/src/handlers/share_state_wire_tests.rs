//! The share coordinator's inter-broker APIs through `dispatch`: a share-partition's state
//! initialized, read, written, summarized and deleted as another broker's share-partition
//! leader does it; older leaders fenced; impossible state refused; ClusterAction needed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use uuid::Uuid;

use super::group_wire_tests::{call, s};
use super::share_group_wire_tests::{broker, GROUP};

const NONE: i16 = 0;
/// Kafka's ACKNOWLEDGED delivery state.
const ACKNOWLEDGED: i8 = 2;

fn initialize(t: Uuid, state_epoch: i32, start: i64) -> InitializeShareGroupStateRequest {
    use initialize_share_group_state_request::*;
    InitializeShareGroupStateRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![InitializeStateData::default()
            .with_topic_id(t)
            .with_partitions(vec![PartitionData::default()
                .with_partition(0)
                .with_state_epoch(state_epoch)
                .with_start_offset(start)])])
}

fn read(t: Uuid, leader_epoch: i32) -> ReadShareGroupStateRequest {
    use read_share_group_state_request::*;
    ReadShareGroupStateRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![ReadStateData::default()
            .with_topic_id(t)
            .with_partitions(vec![PartitionData::default()
                .with_partition(0)
                .with_leader_epoch(leader_epoch)])])
}

/// A write by the leader at `leader_epoch` of one batch (first, last, state, count).
fn write(
    group: &str,
    t: Uuid,
    leader_epoch: i32,
    start: i64,
    batch: (i64, i64, i8, i16),
) -> WriteShareGroupStateRequest {
    use write_share_group_state_request::*;
    let (first, last, state, count) = batch;
    WriteShareGroupStateRequest::default()
        .with_group_id(s(group))
        .with_topics(vec![WriteStateData::default()
            .with_topic_id(t)
            .with_partitions(vec![PartitionData::default()
                .with_partition(0)
                .with_state_epoch(0)
                .with_leader_epoch(leader_epoch)
                .with_start_offset(start)
                .with_state_batches(vec![StateBatch::default()
                    .with_first_offset(first)
                    .with_last_offset(last)
                    .with_delivery_state(state)
                    .with_delivery_count(count)])])])
}

fn summary(t: Uuid) -> ReadShareGroupStateSummaryRequest {
    use read_share_group_state_summary_request::*;
    ReadShareGroupStateSummaryRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![ReadStateSummaryData::default()
            .with_topic_id(t)
            .with_partitions(vec![PartitionData::default()
                .with_partition(0)
                .with_leader_epoch(-1)])])
}

fn delete(t: Uuid) -> DeleteShareGroupStateRequest {
    use delete_share_group_state_request::*;
    DeleteShareGroupStateRequest::default()
        .with_group_id(s(GROUP))
        .with_topics(vec![DeleteStateData::default()
            .with_topic_id(t)
            .with_partitions(vec![PartitionData::default().with_partition(0)])])
}

fn write_code(r: &WriteShareGroupStateResponse) -> i16 {
    r.results[0].partitions[0].error_code
}

#[tokio::test]
async fn a_share_partitions_state_goes_through_its_whole_life_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let api = ApiKey::InitializeShareGroupState;
    let r: InitializeShareGroupStateResponse = call(&b, api, 0, &initialize(t, 0, 5)).await;
    assert_eq!(r.results[0].partitions[0].error_code, NONE);

    let r: ReadShareGroupStateResponse =
        call(&b, ApiKey::ReadShareGroupState, 0, &read(t, 3)).await;
    let p = &r.results[0].partitions[0];
    assert_eq!((p.error_code, p.state_epoch, p.start_offset), (NONE, 0, 5));
    assert!(p.state_batches.is_empty());

    // v1 (KIP-1226) carries the writer's count of offsets done with, 8 and 9.
    let mut w = write(GROUP, t, 3, 7, (8, 9, ACKNOWLEDGED, 1));
    w.topics[0].partitions[0].delivery_complete_count = 2;
    let r: WriteShareGroupStateResponse = call(&b, ApiKey::WriteShareGroupState, 1, &w).await;
    assert_eq!(write_code(&r), NONE);
    // A leader older than the last reader is fenced.
    let stale = write(GROUP, t, 2, 7, (10, 10, ACKNOWLEDGED, 1));
    let r: WriteShareGroupStateResponse = call(&b, ApiKey::WriteShareGroupState, 0, &stale).await;
    assert_eq!(write_code(&r), ResponseError::FencedLeaderEpoch.code());

    let r: ReadShareGroupStateSummaryResponse =
        call(&b, ApiKey::ReadShareGroupStateSummary, 0, &summary(t)).await;
    let p = &r.results[0].partitions[0];
    assert_eq!(
        (p.error_code, p.start_offset, p.leader_epoch, p.state_epoch),
        (NONE, 7, 3, 0)
    );
    // v1 adds how many offsets from the start are done with (KIP-1226): 8 and 9.
    let r: ReadShareGroupStateSummaryResponse =
        call(&b, ApiKey::ReadShareGroupStateSummary, 1, &summary(t)).await;
    assert_eq!(r.results[0].partitions[0].delivery_complete_count, 2);
    let r: ReadShareGroupStateResponse =
        call(&b, ApiKey::ReadShareGroupState, 0, &read(t, 4)).await;
    let batches: Vec<(i64, i64, i8, i16)> = r.results[0].partitions[0]
        .state_batches
        .iter()
        .map(|b| {
            (
                b.first_offset,
                b.last_offset,
                b.delivery_state,
                b.delivery_count,
            )
        })
        .collect();
    assert_eq!(batches, [(8, 9, ACKNOWLEDGED, 1)]);

    let r: DeleteShareGroupStateResponse =
        call(&b, ApiKey::DeleteShareGroupState, 0, &delete(t)).await;
    assert_eq!(r.results[0].partitions[0].error_code, NONE);
    // No state: start offset -1, as for a share-partition never initialized.
    let r: ReadShareGroupStateSummaryResponse =
        call(&b, ApiKey::ReadShareGroupStateSummary, 0, &summary(t)).await;
    assert_eq!(r.results[0].partitions[0].start_offset, -1);
    let r: ReadShareGroupStateResponse =
        call(&b, ApiKey::ReadShareGroupState, 0, &read(t, 5)).await;
    let p = &r.results[0].partitions[0];
    assert_eq!((p.error_code, p.state_epoch, p.start_offset), (NONE, 0, -1));
}

#[tokio::test]
async fn impossible_state_is_refused_as_an_invalid_request() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let invalid = ResponseError::InvalidRequest.code();
    for (why, group, batch) in [
        ("last before first", GROUP, (9, 8, ACKNOWLEDGED, 1)),
        ("negative offset", GROUP, (-2, 8, ACKNOWLEDGED, 1)),
        (
            "the last offset there is",
            GROUP,
            (0, i64::MAX, ACKNOWLEDGED, 1),
        ),
        ("ACQUIRED is never durable", GROUP, (0, 1, 1, 1)),
        ("unknown state", GROUP, (0, 1, 3, 1)),
        ("negative delivery count", GROUP, (0, 1, ACKNOWLEDGED, -1)),
        ("no group", "", (0, 1, ACKNOWLEDGED, 1)),
    ] {
        let w = write(group, t, 0, -1, batch);
        let r: WriteShareGroupStateResponse = call(&b, ApiKey::WriteShareGroupState, 0, &w).await;
        assert_eq!(write_code(&r), invalid, "{why}");
    }
}

#[tokio::test]
async fn find_coordinator_names_the_broker_serving_a_share_partitions_state_from_v6() {
    let dir = tempfile::tempdir().unwrap();
    let (b, t) = broker(dir.path());
    let find = |key: String| {
        FindCoordinatorRequest::default()
            .with_key_type(2)
            .with_coordinator_keys(vec![s(&key)])
    };
    let served = format!("{GROUP}:{t}:0");
    let r: FindCoordinatorResponse =
        call(&b, ApiKey::FindCoordinator, 6, &find(served.clone())).await;
    let c = &r.coordinators[0];
    assert_eq!((c.error_code, c.node_id.0), (NONE, b.config.broker_id));
    let invalid = ResponseError::InvalidRequest.code();
    let r: FindCoordinatorResponse = call(
        &b,
        ApiKey::FindCoordinator,
        6,
        &find(format!("{GROUP}:{t}")),
    )
    .await;
    assert_eq!(r.coordinators[0].error_code, invalid, "malformed key");
    let r: FindCoordinatorResponse = call(&b, ApiKey::FindCoordinator, 5, &find(served)).await;
    assert_eq!(r.coordinators[0].error_code, invalid, "before v6");
}

#[test]
fn the_state_apis_need_cluster_action_as_kafkas_do() {
    use crate::acl::Operation;
    for api in [
        ApiKey::InitializeShareGroupState,
        ApiKey::ReadShareGroupState,
        ApiKey::WriteShareGroupState,
        ApiKey::DeleteShareGroupState,
        ApiKey::ReadShareGroupStateSummary,
    ] {
        assert_eq!(
            super::cluster_operation(api),
            Some(Operation::ClusterAction),
            "{api:?}"
        );
    }
}
