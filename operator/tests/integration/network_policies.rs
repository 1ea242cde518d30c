//! The NetworkPolicies of a KafkaCluster against the in-memory Kubernetes API with the whole
//! operator running: applied owned by the cluster, updated when a listener's peers change,
//! a listener's rule gone with the listener, the registry's policy gone with the registry; and
//! the API server refuses a malformed NetworkPolicy as a real one does. (Nothing here enforces
//! them: the local control plane has no network plugin.)

use crate::common;

use common::{
    create_cluster, merge_patch, metrics, setup, start_operator, wait_until, DEADLINE, NS,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};
use tributary_crds::KafkaCluster;

/// Policy `name`'s ingress rules as `(port, from)`, once it exists.
async fn rules(client: &Client, name: &str) -> Option<(NetworkPolicy, Vec<(Value, Value)>)> {
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), NS);
    let policy = api.get_opt(name).await.ok()??;
    let ingress = json!(policy.spec.as_ref()?.ingress);
    let rules = ingress
        .as_array()?
        .iter()
        .map(|r| (r["ports"][0]["port"].clone(), r["from"].clone()))
        .collect();
    Some((policy, rules))
}

fn ports(rules: &[(Value, Value)]) -> Vec<Value> {
    rules.iter().map(|(port, _)| port.clone()).collect()
}

fn team(name: &str) -> Value {
    json!({"namespaceSelector": {"matchLabels": {"team": name}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_owned_by_the_cluster_and_follow_its_listeners_and_registry() {
    let (_server, client) = setup().await;
    let (stop, operator) = start_operator(&client, metrics());
    let listeners = |peers: Value| {
        json!([
            {"name": "PLAIN", "port": 9092},
            {"name": "TLS", "port": 9093, "tls": {}, "networkPolicyPeers": [peers]},
        ])
    };
    create_cluster(
        &client,
        json!({"brokers": 1, "listeners": listeners(team("apps")), "schemaRegistry": {}}),
    )
    .await;

    let (policy, broker_rules) = wait_until("the brokers' NetworkPolicy", || async {
        let (policy, rules) = rules(&client, "demo-broker").await?;
        (ports(&rules).len() == 4).then_some((policy, rules))
    })
    .await;
    assert_eq!(
        ports(&broker_rules),
        [json!(9092), json!(9093), json!(9091), json!(9644)]
    );
    assert_eq!(broker_rules[1].1, json!([team("apps")]));
    let clusters: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
    let cluster = match clusters.get("demo").await {
        Ok(c) => c,
        Err(e) => panic!("get cluster: {e}"),
    };
    let owners = policy.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].kind, "KafkaCluster");
    assert_eq!(owners[0].name, "demo");
    assert_eq!(Some(&owners[0].uid), cluster.metadata.uid.as_ref());
    assert_eq!(owners[0].controller, Some(true));
    let (registry, registry_rules) = wait_until("the registry's NetworkPolicy", || {
        rules(&client, "demo-schema-registry")
    })
    .await;
    assert_eq!(ports(&registry_rules), [json!(8081)]);
    assert_eq!(
        registry_rules[0].1,
        Value::Null,
        "no peers set: from anywhere"
    );
    let owner = registry.metadata.owner_references.unwrap_or_default();
    assert_eq!(
        owner.first().map(|o| o.uid.as_str()),
        cluster.metadata.uid.as_deref()
    );

    // New peers on a listener: its rule follows.
    merge_patch(
        &clusters,
        "demo",
        &json!({"spec": {"listeners": listeners(team("billing"))}}),
        "change the TLS listener's peers",
    )
    .await;
    wait_until("the TLS rule to follow its peers", || async {
        let (_, rules) = rules(&client, "demo-broker").await?;
        (rules.get(1)?.1 == json!([team("billing")])).then_some(())
    })
    .await;

    // The TLS listener goes: its rule goes, and with nothing secured, so does REPLICATION's.
    merge_patch(
        &clusters,
        "demo",
        &json!({"spec": {"listeners": [{"name": "PLAIN", "port": 9092}]}}),
        "remove the TLS listener",
    )
    .await;
    wait_until("the TLS and REPLICATION rules gone", || async {
        let (_, rules) = rules(&client, "demo-broker").await?;
        (ports(&rules) == [json!(9092), json!(9644)]).then_some(())
    })
    .await;

    // The registry goes: its policy goes.
    merge_patch(
        &clusters,
        "demo",
        &json!({"spec": {"schemaRegistry": null}}),
        "remove the registry",
    )
    .await;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), NS);
    wait_until("the registry's NetworkPolicy deleted", || async {
        matches!(policies.get_opt("demo-schema-registry").await, Ok(None)).then_some(())
    })
    .await;
    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}

#[tokio::test]
async fn the_api_server_refuses_a_malformed_network_policy() {
    let (_server, client) = setup().await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("networking.k8s.io", "v1", "NetworkPolicy"),
        "networkpolicies",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &resource);
    let mut bad = DynamicObject::new("bad", &resource);
    bad.data = json!({"spec": {"podSelector": {}, "ingress": [{"ports": [{"port": {"x": 1}}]}]}});
    match api.create(&PostParams::default(), &bad).await {
        Err(kube::Error::Api(status)) => {
            assert!(matches!(status.code, 400 | 422), "{status:?}")
        }
        other => panic!("a malformed NetworkPolicy was not refused: {other:?}"),
    }
    let mut good = DynamicObject::new("good", &resource);
    good.data = json!({"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    if let Err(e) = api.create(&PostParams::default(), &good).await {
        panic!("a valid NetworkPolicy was refused: {e}");
    }
}
