//! Helpers the unit tests share to set up topics through the broker's real metadata source
//! (on a standalone broker its changes complete before its futures are first polled).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;

use crate::broker::Broker;
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
