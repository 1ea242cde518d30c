//! Helpers the unit tests share to set up topics through the broker's real metadata source
//! (on a standalone broker its changes complete before its futures are first polled).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::acl::model::{PatternType, Permission};
use crate::acl::{AclBinding, Operation, ResourceType};
use crate::broker::Broker;
use crate::config::Flags;
use crate::metadata::{TopicImage, TopicSpec};
use crate::partition::Partition;

pub(crate) use tributary_storage::hostile;

/// Creates topic `name` with `partitions` partitions and `configs`.
pub(crate) fn create_topic(
    broker: &Broker,
    name: &str,
    partitions: i32,
    configs: BTreeMap<String, String>,
) -> Arc<TopicImage> {
    let spec = TopicSpec {
        name: name.into(),
        partitions,
        replication_factor: -1,
        configs,
        ..TopicSpec::default()
    };
    broker
        .admin
        .create_topic(spec, std::time::Duration::from_secs(5))
        .now_or_never()
        .expect("a standalone broker creates topics at once")
        .expect("create topic")
}

/// Topic `name` in the current image.
pub(crate) fn topic(broker: &Broker, name: &str) -> Option<Arc<TopicImage>> {
    broker.metadata.image().topic(name).cloned()
}

/// The hosted replica of partition `index` of `name`.
pub(crate) fn partition(broker: &Broker, name: &str, index: i32) -> Arc<Partition> {
    broker
        .replicas
        .get(name, index)
        .expect("the broker hosts the partition")
}

/// Replaces the config overrides of topic `name`.
pub(crate) fn set_configs(broker: &Broker, name: &str, configs: BTreeMap<String, String>) {
    broker
        .admin
        .set_topic_configs(name, configs, false, std::time::Duration::from_secs(5))
        .now_or_never()
        .expect("a standalone broker changes configs at once")
        .expect("set configs");
}

/// A consumer's ListOffsets (replica id -1) of partition `index` of `topic` at `timestamp`.
pub(crate) fn list_offsets_request(topic: &str, index: i32, timestamp: i64) -> ListOffsetsRequest {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let name = TopicName(StrBytes::from_string(topic.to_owned()));
    ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(index)
                .with_timestamp(timestamp)])])
}

/// Broker flags turning ACLs on with `allow.everyone.if.no.acl.found`: every request is
/// allowed until an ACL names its resource, so a test denies just what it checks.
pub(crate) fn acls_open_flags() -> Flags {
    let security = BTreeMap::from([
        (
            "authorizer.class.name".to_owned(),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_owned(),
        ),
        (
            "allow.everyone.if.no.acl.found".to_owned(),
            "true".to_owned(),
        ),
    ]);
    Flags {
        security: Some(security),
        ..Flags::default()
    }
}

/// Denies `operation` on resource `kind` `name` (literal) to the anonymous principal the
/// wire tests' clients are, on a broker opened with [`acls_open_flags`].
pub(crate) async fn deny_anonymous(
    broker: &Broker,
    kind: ResourceType,
    name: &str,
    operation: Operation,
) {
    let deny = AclBinding::new(
        kind.code(),
        name,
        PatternType::Literal.code(),
        "User:ANONYMOUS",
        "*",
        operation.code(),
        Permission::Deny.code(),
    )
    .expect("a valid ACL");
    let authorizer = broker.authorizer.as_ref().expect("an authorizer");
    authorizer.create(&[deny]).await.expect("ACL created");
}
