//! ListConfigResources v0 and v1 through `dispatch` and back through the response decoder:
//! what each filter lists (groups with configs, brokers, topics), in Kafka's order, the
//! refusal of a type v1 does not know, and DESCRIBE_CONFIGS on the cluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;

use super::group_wire_tests::{broker, broker_with, call, s};
use crate::acl::{Operation, ResourceType};
use crate::broker::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// ListConfigResources at `version` with the type filter `types` (v1 only): (error code,
/// (type, name) of each resource listed, in order).
async fn list(b: &Arc<Broker>, version: i16, types: &[i8]) -> (i16, Vec<(i8, String)>) {
    let request = ListConfigResourcesRequest::default().with_resource_types(types.to_vec());
    let response: ListConfigResourcesResponse =
        call(b, ApiKey::ListConfigResources, version, &request).await;
    let listed = response
        .config_resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    (response.error_code, listed)
}

/// Sets (`Some`) or deletes (`None`) group `group`'s `consumer.session.timeout.ms`.
async fn set_group_config(b: &Arc<Broker>, group: &str, value: Option<&str>) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(s(group))
            .with_configs(vec![AlterableConfig::default()
                .with_name(s("consumer.session.timeout.ms"))
                .with_config_operation(if value.is_some() { 0 } else { 1 })
                .with_value(value.map(s))]),
    ]);
    let response: IncrementalAlterConfigsResponse =
        call(b, ApiKey::IncrementalAlterConfigs, 1, &request).await;
    assert_eq!(
        response.responses[0].error_code, 0,
        "group config of {group}"
    );
}

#[tokio::test]
async fn v1_lists_groups_with_configs_brokers_and_topics_as_the_filter_asks() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    crate::test_support::create_topic(&b, "a-topic", 1, BTreeMap::new());
    // Groups no member ever joined: only their configs make them exist.
    set_group_config(&b, "payments", Some("50000")).await;
    set_group_config(&b, "audit", Some("60000")).await;
    let mut topics: Vec<String> = b
        .metadata
        .image()
        .topics()
        .map(|t| t.name.clone())
        .collect();
    topics.sort();
    assert!(topics.contains(&"a-topic".to_owned()) && topics.contains(&"t".to_owned()));
    let groups = vec![(GROUP, "audit".to_owned()), (GROUP, "payments".to_owned())];
    let brokers = vec![(BROKER, b.config.broker_id.to_string())];
    let topics: Vec<(i8, String)> = topics.into_iter().map(|t| (TOPIC, t)).collect();

    // An empty filter: every type, in Kafka's order (groups, client metrics, broker loggers,
    // brokers, topics); this broker has no client metrics or logger resources.
    let every = [groups.clone(), brokers.clone(), topics.clone()].concat();
    assert_eq!(list(&b, 1, &[]).await, (0, every.clone()));
    assert_eq!(
        list(
            &b,
            1,
            &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
        )
        .await,
        (0, every)
    );
    assert_eq!(list(&b, 1, &[TOPIC]).await, (0, topics.clone()));
    assert_eq!(list(&b, 1, &[TOPIC, TOPIC]).await, (0, topics), "once");
    assert_eq!(list(&b, 1, &[GROUP]).await, (0, groups.clone()));
    assert_eq!(
        list(&b, 1, &[BROKER, GROUP]).await,
        (0, [groups, brokers].concat()),
        "Kafka's order, not the filter's"
    );
    assert_eq!(list(&b, 1, &[CLIENT_METRICS]).await, (0, vec![]));
    assert_eq!(list(&b, 1, &[BROKER_LOGGER]).await, (0, vec![]));

    // A type v1 does not know fails the whole request.
    let unsupported = ResponseError::UnsupportedVersion.code();
    assert_eq!(list(&b, 1, &[64]).await, (unsupported, vec![]));
    assert_eq!(list(&b, 1, &[TOPIC, 1]).await, (unsupported, vec![]));

    // A group whose last config is deleted is no longer a config resource.
    set_group_config(&b, "audit", None).await;
    assert_eq!(
        list(&b, 1, &[GROUP]).await,
        (0, vec![(GROUP, "payments".to_owned())])
    );

    // v0 (ListClientMetricsResources) lists client metrics resources only: none here.
    assert_eq!(list(&b, 0, &[]).await, (0, vec![]));
}

#[tokio::test]
async fn listing_config_resources_needs_describe_configs_on_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker_with(dir.path(), crate::test_support::acls_open_flags()).await;
    assert_eq!(list(&b, 1, &[TOPIC]).await.0, 0, "no ACL: allowed");
    let cluster = crate::acl::CLUSTER_NAME;
    crate::test_support::deny_anonymous(
        &b,
        ResourceType::Cluster,
        cluster,
        Operation::DescribeConfigs,
    )
    .await;
    let denied = ResponseError::ClusterAuthorizationFailed.code();
    for version in [0, 1] {
        assert_eq!(list(&b, version, &[]).await, (denied, vec![]), "v{version}");
    }
}
