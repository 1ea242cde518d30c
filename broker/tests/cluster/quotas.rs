//! Client quotas in cluster mode live in one shared document in Kubernetes: a KafkaUser's
//! `spec.quotas`, rendered by the operator, is described (and enforced) by every broker, a
//! quota set with AlterClientQuotas through one broker is seen by every other, changing the
//! KafkaUser's quotas replaces its entry, and deleting the KafkaUser removes its entry while
//! the quotas it does not manage stay.

use std::collections::BTreeMap;

use kafka_protocol::messages::{
    alter_client_quotas_request, describe_client_quotas_request, AlterClientQuotasRequest,
    AlterClientQuotasResponse, ApiKey, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use tributary_crds::{KafkaUser, CLUSTER_LABEL};

use crate::operated::Operated;
use crate::support::{kafka_call, wait_until, CLUSTER, NS};

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Every quota `address` describes, as "type=name[,type=name]" -> key -> value (a default
/// entity's name is `<default>`).
async fn described(address: &str) -> BTreeMap<String, BTreeMap<String, f64>> {
    // Entities of any user, then entities of any client id: together, every entity.
    let mut all = BTreeMap::new();
    for kind in ["user", "client-id"] {
        let filter = describe_client_quotas_request::ComponentData::default()
            .with_entity_type(text(kind))
            .with_match_type(2)
            .with_match(None);
        let request = DescribeClientQuotasRequest::default()
            .with_components(vec![filter])
            .with_strict(false);
        let response: DescribeClientQuotasResponse =
            kafka_call(address, ApiKey::DescribeClientQuotas, 1, &request).await;
        assert_eq!(response.error_code, 0, "{response:?}");
        for entry in response.entries.unwrap_or_default() {
            let entity = entry
                .entity
                .iter()
                .map(|e| {
                    let name = e.entity_name.as_ref().map_or("<default>", |n| n.as_str());
                    format!("{}={name}", e.entity_type.as_str())
                })
                .collect::<Vec<_>>()
                .join(",");
            let values = entry
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            all.insert(entity, values);
        }
    }
    all
}

fn values(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Waits until every broker of `cluster` describes exactly `wanted`.
async fn every_broker_describes(
    cluster: &Operated,
    what: &str,
    wanted: &BTreeMap<String, BTreeMap<String, f64>>,
) {
    for (id, b) in cluster.brokers.iter().enumerate() {
        wait_until(&format!("broker {id} to describe {what}"), || async {
            (described(&b.address).await == *wanted).then_some(())
        })
        .await;
    }
}

async fn set_user_quotas(cluster: &Operated, name: &str, quotas: serde_json::Value) {
    let api = cluster.plane.api::<KafkaUser>();
    let patch = serde_json::json!({ "spec": { "quotas": quotas } });
    if let Err(e) = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        panic!("patch KafkaUser {name}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_user_quotas_and_altered_quotas_apply_on_every_broker() {
    let cluster = Operated::start_sized(2, |_| {}).await;
    let users = cluster.plane.api::<KafkaUser>();
    let user: KafkaUser = serde_json::from_value(serde_json::json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaUser",
        "metadata": { "name": "alice", "namespace": NS, "labels": { CLUSTER_LABEL: CLUSTER } },
        "spec": { "quotas": {
            "producerByteRate": 1048576, "consumerByteRate": 2097152,
            "requestPercentage": 55, "controllerMutationRate": 10.5,
        } },
    }))
    .unwrap_or_else(|e| panic!("KafkaUser: {e}"));
    if let Err(e) = users.create(&PostParams::default(), &user).await {
        panic!("create KafkaUser: {e}");
    }
    let alice = values(&[
        ("producer_byte_rate", 1048576.0),
        ("consumer_byte_rate", 2097152.0),
        ("request_percentage", 55.0),
        ("controller_mutation_rate", 10.5),
    ]);
    let mut wanted = BTreeMap::from([("user=alice".to_owned(), alice)]);
    every_broker_describes(&cluster, "alice's quotas", &wanted).await;
    // What produce and fetch enforce is the shared value too.
    for (id, b) in cluster.brokers.iter().enumerate() {
        let found = b
            .broker
            .quotas
            .store
            .lookup("alice", "any", "producer_byte_rate");
        assert_eq!(found.map(|(_, v)| v), Some(1048576.0), "broker {id}");
    }

    // AlterClientQuotas through broker 0 (kafka-configs.sh --entity-type clients): broker 1
    // sees it, and the KafkaUser's entry is untouched.
    let entity = alter_client_quotas_request::EntityData::default()
        .with_entity_type(text("client-id"))
        .with_entity_name(Some(text("batch")));
    let op = alter_client_quotas_request::OpData::default()
        .with_key(text("producer_byte_rate"))
        .with_value(4096.0);
    let request = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![entity])
            .with_ops(vec![op]),
    ]);
    let altered: AlterClientQuotasResponse = kafka_call(
        &cluster.brokers[0].address,
        ApiKey::AlterClientQuotas,
        1,
        &request,
    )
    .await;
    assert_eq!(altered.entries[0].error_code, 0, "{altered:?}");
    wanted.insert(
        "client-id=batch".to_owned(),
        values(&[("producer_byte_rate", 4096.0)]),
    );
    every_broker_describes(&cluster, "the altered client quota", &wanted).await;

    // An invalid change is refused as before, and changes nothing.
    let bad = alter_client_quotas_request::OpData::default()
        .with_key(text("producer_byte_rate"))
        .with_value(1.5);
    let entity = alter_client_quotas_request::EntityData::default()
        .with_entity_type(text("user"))
        .with_entity_name(Some(text("bob")));
    let request = AlterClientQuotasRequest::default().with_entries(vec![
        alter_client_quotas_request::EntryData::default()
            .with_entity(vec![entity])
            .with_ops(vec![bad]),
    ]);
    let refused: AlterClientQuotasResponse = kafka_call(
        &cluster.brokers[1].address,
        ApiKey::AlterClientQuotas,
        1,
        &request,
    )
    .await;
    assert_eq!(
        refused.entries[0].error_code, 42,
        "INVALID_REQUEST: {refused:?}"
    );

    // Fewer quotas in the spec: the entry is replaced.
    set_user_quotas(
        &cluster,
        "alice",
        serde_json::json!({
            "producerByteRate": 1000, "consumerByteRate": null,
            "requestPercentage": null, "controllerMutationRate": null,
        }),
    )
    .await;
    wanted.insert(
        "user=alice".to_owned(),
        values(&[("producer_byte_rate", 1000.0)]),
    );
    every_broker_describes(&cluster, "alice's one quota", &wanted).await;

    // The KafkaUser deleted: its entry goes (the finalizer), the client-id quota stays.
    if let Err(e) = users.delete("alice", &DeleteParams::default()).await {
        panic!("delete KafkaUser: {e}");
    }
    wanted.remove("user=alice");
    every_broker_describes(&cluster, "no quota of alice", &wanted).await;
    cluster.stop().await;
}
