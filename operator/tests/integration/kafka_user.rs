//! The KafkaUser controller against the in-memory Kubernetes API, with the whole operator
//! running: a SCRAM user's Secret holds a password its stored credential verifies, its ACLs
//! join other principals' in the shared ACL document, a TLS user gets a certificate that
//! verifies against the clients CA the KafkaCluster reconciler keeps, and deleting a user
//! removes its credential and ACLs (and, by garbage collection, its Secret).

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{create_cluster, metrics, obj, setup, start_operator, wait_until, DEADLINE, NS};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tributary_crds::acls::{AclBinding, AclSet, Operation, PatternType, Permission, ResourceType};
use tributary_crds::registration::{
    acls_name, clients_ca_name, scram_credentials_name, ACLS_KEY, CA_CERT_KEY,
    SCRAM_CREDENTIALS_KEY,
};
use tributary_crds::scram::{Mechanism, Users};
use tributary_crds::user::{JAAS_CONFIG_KEY, PASSWORD_KEY, USER_CERT_KEY, USER_KEY_KEY};
use tributary_crds::{KafkaUser, CLUSTER_LABEL};
use tributary_operator::pki::new_ca;

fn text(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}

async fn acls(client: &Client) -> AclSet {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let Ok(Some(cm)) = api.get_opt(&acls_name("demo")).await else {
        return AclSet::new();
    };
    let json = cm.data.and_then(|d| d.get(ACLS_KEY).cloned());
    serde_json::from_str(json.as_deref().unwrap_or("[]")).unwrap_or_else(|e| panic!("{e}"))
}

async fn credentials(client: &Client) -> Users {
    let api: Api<Secret> = Api::namespaced(client.clone(), NS);
    let Ok(Some(s)) = api.get_opt(&scram_credentials_name("demo")).await else {
        return Users::new();
    };
    let json = text(&s, SCRAM_CREDENTIALS_KEY).unwrap_or_else(|| "{}".into());
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"))
}

async fn create_user(client: &Client, name: &str, spec: serde_json::Value) {
    let api: Api<KafkaUser> = Api::namespaced(client.clone(), NS);
    let user: KafkaUser = obj(json!({
        "apiVersion": "tributary.dev/v1alpha1", "kind": "KafkaUser",
        "metadata": { "name": name, "labels": { CLUSTER_LABEL: "demo" } },
        "spec": spec,
    }));
    if let Err(e) = api.create(&PostParams::default(), &user).await {
        panic!("create KafkaUser {name}: {e}");
    }
}

/// Waits until KafkaUser `name` has condition Ready with `status` and `reason`.
async fn ready(client: &Client, name: &str, status: &str, reason: &str) -> KafkaUser {
    let api: Api<KafkaUser> = Api::namespaced(client.clone(), NS);
    wait_until(&format!("{name} Ready={status} ({reason})"), || async {
        api.get_opt(name).await.ok().flatten().filter(|u| {
            u.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == status && c.reason == reason)
            })
        })
    })
    .await
}

fn binding(principal: &str, kind: ResourceType, name: &str, op: Operation) -> AclBinding {
    AclBinding::new(
        kind.code(),
        name,
        PatternType::Literal.code(),
        principal,
        "*",
        op.code(),
        Permission::Allow.code(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Puts Bob's binding into the ACL document as a broker serving CreateAcls would.
async fn add_other_principals_binding(client: &Client) -> AclBinding {
    let bob = binding("User:bob", ResourceType::Topic, "bobs", Operation::Write);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let mut cm = wait_until("the ACL ConfigMap", || async {
        api.get_opt(&acls_name("demo")).await.ok().flatten()
    })
    .await;
    let json = serde_json::to_string(&AclSet::from([bob.clone()])).unwrap_or_default();
    cm.data
        .get_or_insert_with(Default::default)
        .insert(ACLS_KEY.into(), json);
    if let Err(e) = api
        .replace(&acls_name("demo"), &PostParams::default(), &cm)
        .await
    {
        panic!("write bob's ACL: {e}");
    }
    bob
}

/// Verifies the PEM certificate `leaf` against the PEM CA `ca` for client authentication, as
/// a broker does on a listener with TLS client authentication.
fn verify_client_cert(ca: &str, leaf: &str) -> Result<(), webpki::Error> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, UnixTime};
    let ca_der = CertificateDer::from_pem_slice(ca.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let anchor = webpki::anchor_from_trusted_cert(&ca_der)?;
    let leaf_der =
        CertificateDer::from_pem_slice(leaf.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let cert = webpki::EndEntityCert::try_from(&leaf_der)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &[],
        UnixTime::since_unix_epoch(now),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_credentials_and_acls_that_deletion_removes() {
    let (_server, client) = setup().await;
    let metrics = metrics();
    let (stop, operator) = start_operator(&client, metrics.clone());
    create_cluster(&client, json!({ "brokers": 1 })).await;
    let bob = add_other_principals_binding(&client).await;

    // A SCRAM user with ACLs.
    create_user(
        &client,
        "alice",
        json!({
            "authentication": { "type": "scram-sha-512" },
            "authorization": { "type": "simple", "acls": [
                { "resource": { "type": "topic", "name": "orders" }, "operations": ["Read", "Describe"] },
                { "resource": { "type": "group", "name": "billing-", "patternType": "prefix" }, "operations": ["Read"] },
            ] },
        }),
    )
    .await;
    let alice = ready(&client, "alice", "True", "Ready").await;
    let status = alice.status.clone().unwrap_or_default();
    assert_eq!(status.username.as_deref(), Some("alice"));
    assert_eq!(status.secret.as_deref(), Some("alice"));

    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let secret = secrets.get("alice").await.unwrap_or_else(|e| panic!("{e}"));
    let password = text(&secret, PASSWORD_KEY).unwrap_or_default();
    assert_eq!(password.len(), 32);
    assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        text(&secret, JAAS_CONFIG_KEY).unwrap_or_default(),
        format!("org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"{password}\";")
    );
    assert_eq!(
        secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CLUSTER_LABEL))
            .map(String::as_str),
        Some("demo")
    );
    let users = credentials(&client).await;
    let stored = users
        .get("alice")
        .and_then(|c| c.get(&Mechanism::Sha512))
        .and_then(|c| c.decode())
        .unwrap_or_else(|| panic!("no SCRAM-SHA-512 credential for alice: {users:?}"));
    assert_eq!(stored.iterations, 4096);
    assert!(stored.verifies(Mechanism::Sha512, password.as_bytes()));

    // Reconciled again (a metadata change), the password stays and the credential document
    // is not rewritten.
    let scram_version = || async {
        secrets
            .get(&scram_credentials_name("demo"))
            .await
            .ok()
            .and_then(|s| s.metadata.resource_version)
    };
    let before = scram_version().await;
    let users_api: Api<KafkaUser> = Api::namespaced(client.clone(), NS);
    // Two metadata changes, each waited for: the first reconcile has finished once the
    // second has started (one object is never reconciled twice at once).
    for touch in ["1", "2"] {
        let reconciles = metrics.reconciles("kafkauser");
        let patch = json!({ "metadata": { "annotations": { "example.com/touched": touch } } });
        common::merge_patch(&users_api, "alice", &patch, "annotate alice").await;
        wait_until("alice reconciled again", || async {
            (metrics.reconciles("kafkauser") > reconciles).then_some(())
        })
        .await;
    }
    let again = secrets.get("alice").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text(&again, PASSWORD_KEY), Some(password.clone()));
    assert_eq!(
        scram_version().await,
        before,
        "credential document rewritten"
    );

    let alices = AclSet::from([
        binding("User:alice", ResourceType::Topic, "orders", Operation::Read),
        binding(
            "User:alice",
            ResourceType::Topic,
            "orders",
            Operation::Describe,
        ),
        AclBinding::new(3, "billing-", 4, "User:alice", "*", 3, 3)
            .unwrap_or_else(|e| panic!("{e}")),
    ]);
    let mut expected = alices.clone();
    expected.insert(bob.clone());
    wait_until("alice's ACLs next to bob's", || async {
        (acls(&client).await == expected).then_some(())
    })
    .await;

    // A TLS user: a certificate from the clients CA the KafkaCluster reconciler keeps.
    let ca_secret = wait_until("the clients CA", || async {
        secrets
            .get_opt(&clients_ca_name("demo"))
            .await
            .ok()
            .flatten()
    })
    .await;
    let ca_bundle = text(&ca_secret, CA_CERT_KEY).unwrap_or_default();
    create_user(
        &client,
        "carol",
        json!({ "authentication": { "type": "tls" } }),
    )
    .await;
    ready(&client, "carol", "True", "Ready").await;
    let carol = secrets.get("carol").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text(&carol, CA_CERT_KEY), Some(ca_bundle.clone()));
    assert!(text(&carol, USER_KEY_KEY).is_some_and(|k| k.contains("PRIVATE KEY")));
    let cert = text(&carol, USER_CERT_KEY).unwrap_or_default();
    verify_client_cert(&ca_bundle, &cert).unwrap_or_else(|e| panic!("carol's certificate: {e}"));
    let other_ca = new_ca(
        "demo-clients-ca",
        Duration::from_secs(86_400),
        SystemTime::now(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(verify_client_cert(&other_ca.cert_pem, &cert).is_err());
    assert!(
        !credentials(&client).await.contains_key("carol"),
        "a TLS user has no SCRAM credential"
    );

    // Deleting alice removes her credential and ACLs, keeps bob's, and her Secret goes.
    if let Err(e) = users_api.delete("alice", &DeleteParams::default()).await {
        panic!("delete alice: {e}");
    }
    wait_until("alice gone", || async {
        users_api
            .get_opt("alice")
            .await
            .ok()
            .and_then(|u| u.is_none().then_some(()))
    })
    .await;
    assert!(!credentials(&client).await.contains_key("alice"));
    assert_eq!(acls(&client).await, AclSet::from([bob]));
    wait_until("alice's Secret collected", || async {
        secrets
            .get_opt("alice")
            .await
            .ok()
            .and_then(|s| s.is_none().then_some(()))
    })
    .await;

    let _ = stop.send(true);
    let _ = tokio::time::timeout(DEADLINE, operator).await;
}
