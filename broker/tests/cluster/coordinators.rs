//! Coordinators on a fresh cluster: the first FindCoordinator creates `__consumer_offsets`,
//! and each broker opens its partitions as its own view of the new topic arrives. A commit
//! sent where FindCoordinator pointed must be served or told to wait there
//! (COORDINATOR_LOAD_IN_PROGRESS, which clients retry at the same broker), never sent away
//! with NOT_COORDINATOR: librdkafka fails a synchronous commit on that.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, OffsetCommitRequest,
    OffsetCommitResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::operated::{served, Operated};
use crate::support::kafka_call;

/// Groups committed to, enough to land on most of the offsets topic's partitions.
const GROUPS: usize = 40;

/// FindCoordinator for group `group` at `address`: the named broker's address, or the error.
async fn find(address: &str, group: &str) -> Result<String, i16> {
    let request = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_owned()))
        .with_key_type(0);
    let response: FindCoordinatorResponse =
        kafka_call(address, ApiKey::FindCoordinator, 3, &request).await;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    Ok(format!("{}:{}", response.host.as_str(), response.port))
}

/// A simple (member-less) commit of `offset` for orders-0 by `group`; the partition's error.
async fn commit(address: &str, group: &str, offset: i64) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("orders")))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let response: OffsetCommitResponse =
        kafka_call(address, ApiKey::OffsetCommit, 8, &request).await;
    response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(-1, |p| p.error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_fresh_cluster_a_commit_where_find_coordinator_points_is_served_or_told_to_wait() {
    let cluster = Operated::start().await;
    cluster.plane.create_topic("orders", 1, 3).await;
    served(&cluster, "orders", 1).await;
    let load_in_progress = ResponseError::CoordinatorLoadInProgress.code();
    let not_available = ResponseError::CoordinatorNotAvailable.code();
    for n in 0..GROUPS {
        let group = format!("fresh-{n}");
        let asked = cluster
            .broker(i32::try_from(n % 3).unwrap_or(0))
            .address
            .clone();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        // COORDINATOR_NOT_AVAILABLE while the offsets topic is created: the client asks again.
        let coordinator = loop {
            match find(&asked, &group).await {
                Ok(address) => break address,
                Err(code) if code == not_available => {}
                Err(code) => panic!("FindCoordinator for {group} at {asked}: error {code}"),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no coordinator for {group} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let offset = i64::try_from(n).unwrap_or(0);
        loop {
            let code = commit(&coordinator, &group, offset).await;
            if code == 0 {
                break;
            }
            assert_eq!(
                code, load_in_progress,
                "the commit of {group} at {coordinator}, where FindCoordinator pointed, \
                 is served or told to wait there"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "the commit of {group} still waits after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    cluster.stop().await;
}
