//! The operator's PKI against the in-memory Kubernetes API: a cluster with a TLS listener
//! gets its CAs and a broker certificate that verifies for every broker's DNS name; a CA due
//! for renewal is renewed (its predecessor kept trusted) and the broker certificate re-issued,
//! without touching the brokers' pod template.

use crate::common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{create_cluster, merge_patch, metrics, setup, start_operator, wait_until, NS};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::json;
use tributary_crds::registration::{CA_CERT_KEY, CA_KEY_KEY, NOT_AFTER_ANNOTATION};
use tributary_operator::certs::{pem_certificates, ISSUER_ANNOTATION};

fn data(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("Secret has no {key}"));
    String::from_utf8(bytes.0.clone()).unwrap_or_else(|e| panic!("{key} is not text: {e}"))
}

fn annotation(secret: &Secret, key: &str) -> Option<String> {
    secret.metadata.annotations.as_ref()?.get(key).cloned()
}

/// Whether `leaf_pem` is a valid TLS server certificate for `host`, signed by one of the CA
/// certificates in `trusted_pem`, as a client checks it.
fn verifies(trusted_pem: &str, leaf_pem: &str, host: &str) -> Result<(), String> {
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(trusted_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let anchors = cas
        .iter()
        .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).map_err(|e| e.to_string())?;
    let cert = webpki::EndEntityCert::try_from(&leaf).map_err(|e| e.to_string())?;
    let now = UnixTime::since_unix_epoch(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?,
    );
    cert.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &[],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| e.to_string())?;
    cert.verify_is_valid_for_subject_name(&name)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cas_and_the_broker_certificate_are_created_then_renewed_without_a_roll() {
    let (_server, client) = setup().await;
    let (stop, operator) = start_operator(&client, metrics());
    create_cluster(
        &client,
        json!({
            "brokers": 3,
            "listeners": [
                { "name": "TLS", "port": 9093, "tls": {}, "authentication": { "type": "scram-sha-512" } },
                { "name": "MTLS", "port": 9094, "tls": {}, "authentication": { "type": "tls" } },
            ],
            "authorization": { "type": "simple", "superUsers": ["User:admin"] },
        }),
    )
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let get = |name: &'static str| {
        let secrets = secrets.clone();
        async move { secrets.get_opt(name).await.ok().flatten() }
    };

    // Created: both CAs, and the broker certificate signed by the cluster CA.
    let cluster_ca = wait_until("the cluster CA Secret", || get("demo-cluster-ca")).await;
    let clients_ca = wait_until("the clients CA Secret", || get("demo-clients-ca")).await;
    let broker = wait_until("the broker certificate Secret", || get("demo-broker-certs")).await;
    let sts = wait_until("the broker StatefulSet", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    for ca in [&cluster_ca, &clients_ca] {
        assert!(data(ca, CA_KEY_KEY).contains("PRIVATE KEY"));
        assert_eq!(pem_certificates(&data(ca, CA_CERT_KEY)).len(), 1);
        assert!(annotation(ca, NOT_AFTER_ANNOTATION).is_some());
        let owner = &ca.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(owner.kind, "KafkaCluster");
    }
    assert_eq!(broker.type_.as_deref(), Some("kubernetes.io/tls"));
    let ca_pem = data(&cluster_ca, CA_CERT_KEY);
    assert_eq!(data(&broker, CA_CERT_KEY), ca_pem);
    let leaf = data(&broker, "tls.crt");
    for host in [
        "demo-broker-0.demo-brokers.streaming.svc",
        "demo-broker-2.demo-brokers.streaming.svc.cluster.local",
        "demo-bootstrap.streaming.svc",
    ] {
        verifies(&ca_pem, &leaf, host).unwrap_or_else(|e| panic!("{host}: {e}"));
    }
    assert!(verifies(&ca_pem, &leaf, "elsewhere.example.com").is_err());
    assert!(
        verifies(&data(&clients_ca, CA_CERT_KEY), &leaf, "demo-bootstrap").is_err(),
        "signed by the cluster CA, not the clients CA"
    );

    // The cluster CA comes due (its recorded end moves within the renewal window).
    let soon = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 86_400;
    merge_patch(
        &secrets,
        "demo-cluster-ca",
        &json!({ "metadata": { "annotations": { NOT_AFTER_ANNOTATION: soon.to_string() } } }),
        "bring the CA's end near",
    )
    .await;
    let renewed = wait_until("the renewed cluster CA", || async {
        get("demo-cluster-ca")
            .await
            .filter(|s| pem_certificates(&data(s, CA_CERT_KEY)).len() == 2)
    })
    .await;
    let bundle = pem_certificates(&data(&renewed, CA_CERT_KEY));
    assert_ne!(bundle[0], ca_pem, "a new CA certificate comes first");
    assert_eq!(bundle[1], ca_pem, "the previous one stays trusted");
    assert_ne!(data(&renewed, CA_KEY_KEY), data(&cluster_ca, CA_KEY_KEY));

    let reissued = wait_until("the re-issued broker certificate", || async {
        get("demo-broker-certs")
            .await
            .filter(|s| annotation(s, ISSUER_ANNOTATION) != annotation(&broker, ISSUER_ANNOTATION))
    })
    .await;
    let new_leaf = data(&reissued, "tls.crt");
    assert_ne!(new_leaf, leaf);
    verifies(
        &bundle[0],
        &new_leaf,
        "demo-broker-1.demo-brokers.streaming.svc",
    )
    .unwrap();
    assert!(verifies(
        &ca_pem,
        &new_leaf,
        "demo-broker-1.demo-brokers.streaming.svc"
    )
    .is_err());
    assert_eq!(
        pem_certificates(&data(&reissued, CA_CERT_KEY)),
        bundle,
        "brokers trust both CAs during the rotation"
    );
    // The clients CA was not due and stays as it was.
    let clients_after = get("demo-clients-ca").await.unwrap();
    assert_eq!(clients_after.data, clients_ca.data);

    // No roll: the brokers re-read the mounted files; the pod template (config hash
    // annotation included) is unchanged.
    let sts_after = sts_api.get("demo-broker").await.unwrap();
    assert_eq!(sts_after.spec.template, sts.spec.template);

    let _ = stop.send(true);
    let _ = operator.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_cluster_gets_its_cas_but_no_broker_certificate() {
    let (_server, client) = setup().await;
    let (stop, operator) = start_operator(&client, metrics());
    create_cluster(&client, json!({ "brokers": 1 })).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    wait_until("the broker StatefulSet", || async {
        sts_api.get_opt("demo-broker").await.ok().flatten()
    })
    .await;
    // The CAs are made before the StatefulSet is applied.
    assert!(secrets.get_opt("demo-clients-ca").await.unwrap().is_some());
    assert!(secrets.get_opt("demo-cluster-ca").await.unwrap().is_some());
    assert!(secrets
        .get_opt("demo-broker-certs")
        .await
        .unwrap()
        .is_none());
    let _ = stop.send(true);
    let _ = operator.await;
}
