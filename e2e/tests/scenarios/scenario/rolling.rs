//! rolling: a broker setting changed in the KafkaCluster's `spec.config` lands in the brokers'
//! config file, so the operator's config-hash annotation changes the pod template and the
//! brokers roll; then a new broker image (`spec.image`) rolls them again. Each roll deletes one
//! pod at a time, each replaced and Ready before the next goes (the operator deletes the
//! `OnDelete` pods in turn, gated on the ISRs). Each deleted pod's broker gets SIGTERM (the
//! kubelet's graceful termination), announces a controlled shutdown on its Lease and stops
//! only once the controller has moved every leadership it held. An idempotent acks=all Java
//! producer writes all along: every record is acknowledged, none lost, duplicated or
//! reordered, and no send ends in an error.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::apps::v1::StatefulSet;
use kube::Api;

use crate::env::{wait, Driver};

use super::replicated::{Replicated, BROKERS, PARTITIONS};
use super::timeline::{Sample, Timeline};
use super::READY;

const NS: &str = "rolling";
const CLUSTER: &str = "roll";
const TOPIC: &str = "orders";
/// A config change: a broker setting written into server.properties, read at start.
const CONFIG_CHANGE: &str = r#"{"spec":{"config":{"log.retention.hours":"100"}}}"#;
/// The broker image's repository: the kubelet stand-in runs the same binary for any tag, so
/// a new tag is an image change the brokers survive.
const BROKER_IMAGE: &str = "ghcr.io/tributary-dev/tributary-broker";

pub(crate) async fn run(driver: Driver) {
    let (mut cluster, producing) = Replicated::producing(driver, NS, CLUSTER, TOPIC, "", "").await;
    roll(&mut cluster, "a config change", CONFIG_CHANGE).await;
    let image = format!("{BROKER_IMAGE}:next");
    let change = format!(r#"{{"spec":{{"image":"{image}"}}}}"#);
    roll(&mut cluster, "an image change", &change).await;
    for id in 0..BROKERS {
        let images: Vec<Option<String>> = cluster
            .pod_object(id)
            .await
            .and_then(|p| p.spec)
            .map(|spec| spec.containers.into_iter().map(|c| c.image).collect())
            .unwrap_or_default();
        assert!(
            images.contains(&Some(image.clone())),
            "broker {id}'s pod runs {image}: {images:?}"
        );
    }
    let history = producing.stop().await;
    cluster.check("rolling", &history).await;
}

/// Merge-patches the KafkaCluster with `change` and follows the roll it causes to its end:
/// every pod replaced, one at a time, each broker leading nothing when it stopped and back in
/// every ISR as its new incarnation.
async fn roll(cluster: &mut Replicated, what: &str, change: &str) {
    let mut before = BTreeMap::new();
    for id in 0..BROKERS {
        let uid = cluster
            .pod_object(id)
            .await
            .and_then(|p| p.metadata.uid)
            .expect("every broker has a pod");
        before.insert(id, (uid, cluster.incarnation(id).await.unwrap_or(-1)));
    }

    let sets: Api<StatefulSet> = Api::namespaced(cluster.client(), NS);
    let broker_set = format!("{CLUSTER}-broker");
    let revision = update_revision(&sets.get(&broker_set).await.expect("the broker StatefulSet"));
    let timeline = Timeline::start(cluster);
    let started = Instant::now();
    cluster.merge_patch("kafkacluster", CLUSTER, change).await;
    wait(
        &format!("{what}: the StatefulSet to roll every pod"),
        READY,
        || async {
            let set = sets.get(&broker_set).await.ok()?;
            (update_revision(&set) != revision && rolled(&set)).then_some(())
        },
    )
    .await;
    cluster.log(&format!("{what}: the StatefulSet rolled"));
    cluster
        .wait_all(
            "every restarted broker to rejoin every ISR as its new incarnation",
            |now| {
                now.len() == usize::try_from(PARTITIONS).unwrap_or(0)
                    && now.iter().all(|s| {
                        s.fully_replicated()
                            && s.isr.iter().all(|(id, epoch)| {
                                before.get(id).is_some_and(|(_, old)| epoch > old)
                            })
                    })
            },
        )
        .await;
    cluster.log(&format!(
        "{what}: every broker restarted and back in every ISR, {:.1} s after the change",
        started.elapsed().as_secs_f64()
    ));
    let samples = timeline
        .stop_once("the timeline to see every broker Ready", READY, |s| {
            s.down().is_empty()
        })
        .await;
    cluster.refresh_bootstrap().await;
    for id in 0..BROKERS {
        let now = cluster.pod_object(id).await.and_then(|p| p.metadata.uid);
        assert_ne!(
            now.as_deref(),
            Some(before[&id].0.as_str()),
            "{what}: broker {id}'s pod was replaced"
        );
    }
    assert_one_at_a_time_each_leading_nothing_when_it_stopped(&samples);
}

/// The StatefulSet's `status.updateRevision`: the revision of its current pod template.
fn update_revision(set: &StatefulSet) -> Option<String> {
    set.status.as_ref()?.update_revision.clone()
}

/// Whether the StatefulSet's status says every replica runs the update revision and is Ready
/// (under RollingUpdate and OnDelete alike: `currentRevision` moves only under the former).
fn rolled(set: &StatefulSet) -> bool {
    let Some(status) = &set.status else {
        return false;
    };
    status.observed_generation == set.metadata.generation
        && status.updated_replicas == Some(BROKERS)
        && status.ready_replicas == Some(BROKERS)
}

/// Checks what the samples recorded of the roll: at most one broker down at any moment, each
/// announced its controlled shutdown, and none had released its Lease (stopped) while it
/// still led a partition. Prints when each step of each broker's restart was seen, and the
/// order (the StatefulSet's RollingUpdate goes from the highest ordinal down; an operator
/// rolling `OnDelete` pods may choose).
fn assert_one_at_a_time_each_leading_nothing_when_it_stopped(samples: &[Sample]) {
    assert!(!samples.is_empty(), "the timeline recorded the roll");
    if let Some(s) = samples.iter().find(|s| s.down().len() > 1) {
        panic!("brokers {:?} were down at once: {s:?}", s.down());
    }
    let mut order = Vec::new();
    for id in 0..BROKERS {
        let lease = |s: &Sample| s.leases.get(&id).cloned();
        let first = |from: usize, f: &dyn Fn(&Sample) -> bool| {
            samples[from..].iter().position(f).map(|i| i + from)
        };
        let deleted = first(0, &|s| s.pods.get(&id).is_none_or(|p| p.terminating))
            .unwrap_or_else(|| panic!("broker {id}'s pod was never deleted"));
        let announced = first(0, &|s| lease(s).is_some_and(|l| l.shutting_down))
            .unwrap_or_else(|| panic!("broker {id} never announced a controlled shutdown"));
        let released =
            first(announced, &|s| lease(s).is_some_and(|l| !l.held)).unwrap_or_else(|| {
                panic!("broker {id} never released its Lease after announcing its shutdown")
            });
        let drained = first(announced, &|s| s.led_by(id).is_empty()).unwrap_or(released);
        let back = first(released, &|s| !s.down().contains(&id))
            .unwrap_or_else(|| panic!("broker {id}'s new pod never became Ready"));
        for s in &samples[released..back] {
            assert!(
                s.led_by(id).is_empty() || lease(s).is_some_and(|l| l.held),
                "broker {id} had stopped while it still led partitions {:?}",
                s.led_by(id)
            );
        }
        eprintln!(
            "rolling: broker {id}: pod deleted at {:.1} s, shutdown announced at {:.1} s, leading \
             nothing at {:.1} s, Lease released at {:.1} s, new pod Ready at {:.1} s",
            samples[deleted].at.as_secs_f64(),
            samples[announced].at.as_secs_f64(),
            samples[drained].at.as_secs_f64(),
            samples[released].at.as_secs_f64(),
            samples[back].at.as_secs_f64(),
        );
        // Kafka operators gate each restart on the ISRs (REPLICATION.md §4): note a broker
        // whose pod was deleted while the previous one had not caught up yet (the last sample
        // before the deletion: nothing had begun to stop then).
        let under: Vec<i32> = samples[deleted.saturating_sub(1)]
            .partitions
            .iter()
            .filter(|p| !p.fully_replicated())
            .map(|p| p.partition)
            .collect();
        if !under.is_empty() {
            eprintln!(
                "rolling: broker {id}'s pod was deleted while partitions {under:?} were under-replicated"
            );
        }
        order.push((deleted, id));
    }
    order.sort();
    let order: Vec<i32> = order.into_iter().map(|(_, id)| id).collect();
    eprintln!("rolling: brokers restarted in the order {order:?}");
}
