//! Keeps the broker's image in line with Kubernetes: reflectors over the namespace's
//! KafkaTopics, KafkaPartitions and Leases; once all three have listed, every change rebuilds
//! the image (a pure function of the objects) and hands it on. Events arriving together are
//! handled as one change, so a burst of writes costs one rebuild.

use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tributary_crds::{KafkaPartition, KafkaTopic};

use super::image::{build, Objects};
use crate::config::ClusterSettings;
use crate::metadata::ClusterImage;

/// The objects cluster mode watches, readable by the metadata source too. The watch runs
/// while any clone is held.
#[derive(Clone)]
pub struct Stores {
    /// KafkaTopics of the namespace.
    pub topics: Store<KafkaTopic>,
    /// KafkaPartitions of the namespace.
    pub partitions: Store<KafkaPartition>,
    /// Leases of the namespace.
    pub leases: Store<Lease>,
    _watch: Arc<WatchTask>,
}

/// Which of the three streams a change came from.
enum Source {
    Topics,
    Partitions,
    Leases,
}

/// The task driving the reflectors; stops when the last holder drops it.
struct WatchTask(tokio::task::JoinHandle<()>);

impl Drop for WatchTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the reflectors; `on_image` gets every new image (the first once all three kinds
/// have listed). Returns the stores.
pub fn spawn(
    client: Client,
    settings: ClusterSettings,
    cluster_id: String,
    on_image: impl Fn(ClusterImage) + Send + 'static,
) -> Stores {
    let ns = settings.namespace.clone();
    let (topics, topics_writer) = reflector::store();
    let (partitions, partitions_writer) = reflector::store();
    let (leases, leases_writer) = reflector::store();
    let config = watcher::Config::default();
    let topic_events = reflector::reflector(
        topics_writer,
        watcher(
            Api::<KafkaTopic>::namespaced(client.clone(), &ns),
            config.clone(),
        ),
    )
    .default_backoff()
    .map(|e| {
        (
            Source::Topics,
            e.map(|e| matches!(e, watcher::Event::InitDone)),
        )
    })
    .boxed();
    let partition_events = reflector::reflector(
        partitions_writer,
        watcher(
            Api::<KafkaPartition>::namespaced(client.clone(), &ns),
            config.clone(),
        ),
    )
    .default_backoff()
    .map(|e| {
        (
            Source::Partitions,
            e.map(|e| matches!(e, watcher::Event::InitDone)),
        )
    })
    .boxed();
    let lease_events = reflector::reflector(
        leases_writer,
        watcher(Api::<Lease>::namespaced(client, &ns), config),
    )
    .default_backoff()
    .map(|e| {
        (
            Source::Leases,
            e.map(|e| matches!(e, watcher::Event::InitDone)),
        )
    })
    .boxed();
    let (topic_store, partition_store, lease_store) =
        (topics.clone(), partitions.clone(), leases.clone());
    let task = tokio::spawn(async move {
        let mut events = futures::stream::select(
            futures::stream::select(topic_events, partition_events),
            lease_events,
        );
        let mut listed = [false; 3];
        while let Some(first) = events.next().await {
            let mut batch = vec![first];
            // Whatever else is ready now joins this change.
            while let Some(Some(more)) = events.next().now_or_never() {
                batch.push(more);
            }
            for (source, event) in batch {
                match event {
                    Ok(init_done) => {
                        if init_done {
                            listed[source as usize] = true;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "watching the cluster's objects"),
                }
            }
            if listed.iter().all(|&l| l) {
                on_image(build(&Objects {
                    cluster_id: &cluster_id,
                    topics: &topic_store.state(),
                    partitions: &partition_store.state(),
                    leases: &lease_store.state(),
                    cluster: &settings.name,
                }));
            }
        }
    });
    Stores {
        topics,
        partitions,
        leases,
        _watch: Arc::new(WatchTask(task)),
    }
}

/// Whether `store` has the KafkaTopic of Kafka topic `name`.
pub(super) fn find_topic(stores: &Stores, name: &str) -> Option<Arc<KafkaTopic>> {
    stores
        .topics
        .state()
        .into_iter()
        .find(|t| t.kafka_name() == name)
}
