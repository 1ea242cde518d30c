//! Keeps the broker's image in line with Kubernetes: reflectors over the namespace's
//! KafkaTopics, KafkaPartitions and Leases; once all three have listed, every change rebuilds
//! the image (a pure function of the objects) and hands it on. Events arriving together are
//! handled as one change, so a burst of writes costs one rebuild.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tributary_crds::registration::Registration;
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
    /// A Lease event; `changed` when it changed a broker's registration (a renewal alone
    /// does not: the image holds registrations, not renewal times).
    Leases {
        changed: bool,
    },
}

impl Source {
    fn index(&self) -> usize {
        match self {
            Source::Topics => 0,
            Source::Partitions => 1,
            Source::Leases { .. } => 2,
        }
    }

    /// Whether the event can change the image. Renewals, several a second across a cluster,
    /// would otherwise rebuild the whole image and re-apply every partition's role each time.
    fn changes_image(&self) -> bool {
        !matches!(self, Source::Leases { changed: false })
    }
}

/// The registration each broker Lease last carried, to tell a renewal from a change.
struct Registrations {
    cluster: String,
    seen: HashMap<String, Option<Registration>>,
}

impl Registrations {
    fn new(cluster: String) -> Self {
        Registrations {
            cluster,
            seen: HashMap::new(),
        }
    }

    /// Whether `event` changes what the image takes from Leases. A relist or a deletion
    /// always may.
    fn changed(&mut self, event: &watcher::Event<Lease>) -> bool {
        match event {
            watcher::Event::Apply(lease) | watcher::Event::InitApply(lease) => {
                let name = lease.metadata.name.clone().unwrap_or_default();
                let registration = Registration::from_lease(&self.cluster, lease);
                self.seen.insert(name, registration.clone()) != Some(registration)
                    || matches!(event, watcher::Event::InitApply(_))
            }
            watcher::Event::Delete(lease) => {
                self.seen
                    .remove(lease.metadata.name.as_deref().unwrap_or_default());
                true
            }
            watcher::Event::Init | watcher::Event::InitDone => true,
        }
    }
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
    let mut registrations = Registrations::new(settings.name.clone());
    let lease_events = reflector::reflector(
        leases_writer,
        watcher(Api::<Lease>::namespaced(client, &ns), config),
    )
    .default_backoff()
    .map(move |e| {
        let changed = e.as_ref().is_ok_and(|e| registrations.changed(e));
        (
            Source::Leases { changed },
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
        // Nothing has been built yet: the first moment all three have listed builds.
        let mut built = false;
        let mut previous = ClusterImage::default();
        while let Some(first) = events.next().await {
            let mut batch = vec![first];
            // Whatever else is ready now joins this change.
            while let Some(Some(more)) = events.next().now_or_never() {
                batch.push(more);
            }
            let mut changed = false;
            for (source, event) in batch {
                changed |= source.changes_image();
                match event {
                    Ok(init_done) => {
                        if init_done {
                            listed[source.index()] = true;
                        }
                    }
                    Err(error) => tracing::warn!(%error, "watching the cluster's objects"),
                }
            }
            if listed.iter().all(|&l| l) && (changed || !built) {
                built = true;
                let image = build(&Objects {
                    cluster_id: &cluster_id,
                    topics: &topic_store.state(),
                    partitions: &partition_store.state(),
                    leases: &lease_store.state(),
                    cluster: &settings.name,
                    previous: &previous,
                });
                previous = image.clone();
                on_image(image);
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use tributary_crds::registration::{HOST_ANNOTATION, INCARNATION_ANNOTATION, PORT_ANNOTATION};

    use super::*;

    fn lease(incarnation: i64, renewed_secs: i64) -> Lease {
        let mut lease = Lease::default();
        lease.metadata.name = Some("demo-broker-0".into());
        lease.metadata.annotations = Some(
            [
                (HOST_ANNOTATION.to_owned(), "h".to_owned()),
                (PORT_ANNOTATION.to_owned(), "9092".to_owned()),
                (INCARNATION_ANNOTATION.to_owned(), incarnation.to_string()),
            ]
            .into(),
        );
        let renewed = k8s_openapi::jiff::Timestamp::from_second(renewed_secs).unwrap_or_default();
        lease.spec = Some(LeaseSpec {
            holder_identity: Some("demo-broker-0".into()),
            renew_time: Some(MicroTime(renewed)),
            ..LeaseSpec::default()
        });
        lease
    }

    #[test]
    fn a_renewal_does_not_change_the_image_and_a_new_incarnation_does() {
        let mut seen = Registrations::new("demo".into());
        assert!(seen.changed(&watcher::Event::Apply(lease(1, 10))));
        assert!(!seen.changed(&watcher::Event::Apply(lease(1, 12))));
        assert!(seen.changed(&watcher::Event::Apply(lease(2, 14))));
        assert!(seen.changed(&watcher::Event::InitApply(lease(2, 16))));
        assert!(seen.changed(&watcher::Event::Delete(lease(2, 16))));
        assert!(seen.changed(&watcher::Event::Apply(lease(2, 18))));
    }
}
