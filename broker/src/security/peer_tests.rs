//! The inter-broker client against a real SASL_SSL listener: a broker's [`PeerConnection`]
//! (what followers fetch and coordinators send markers through) completes TLS and SCRAM with
//! the credentials of `sasl.mechanism.inter.broker.protocol`, and is refused with wrong ones.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};

use crate::config::{BrokerConfig, Flags};
use crate::peer::{PeerConnection, PeerError};
use crate::security::credentials::{Mechanism, Upsertion};
use crate::security::peer::PeerSecurity;
use crate::security::runtime::{self, Gate};
use crate::server::{serve, Bound};
use crate::Broker;

const BROKER_PASSWORD: &str = "broker-secret";

/// A CA, and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn certificates(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    certificates_for(dir, &["127.0.0.1", "localhost"])
}

/// A CA, and a server certificate for `names` signed by it, as PEM files in `dir`.
fn certificates_for(
    dir: &std::path::Path,
    names: &[&str],
) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::create_dir_all(dir).expect("certificate directory");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "peer test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = rcgen::KeyPair::generate().expect("server key");
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let params = rcgen::CertificateParams::new(names).expect("server params");
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    let keystore = dir.join("server.pem");
    let truststore = dir.join("ca.pem");
    std::fs::write(&keystore, format!("{}{}", cert.pem(), key.serialize_pem()))
        .expect("write keystore");
    std::fs::write(&truststore, ca_cert.pem()).expect("write trust store");
    (keystore, truststore)
}

fn broker_config(
    dir: &std::path::Path,
    (keystore, truststore): &(std::path::PathBuf, std::path::PathBuf),
    port: u16,
    password: &str,
) -> BrokerConfig {
    broker_config_with(dir, (keystore, truststore), port, password, &[])
}

/// [`broker_config`] with further security settings.
fn broker_config_with(
    dir: &std::path::Path,
    (keystore, truststore): (&std::path::PathBuf, &std::path::PathBuf),
    port: u16,
    password: &str,
    extra: &[(&str, &str)],
) -> BrokerConfig {
    let mut security: BTreeMap<String, String> = [
        ("ssl.keystore.location", keystore.display().to_string()),
        ("ssl.truststore.location", truststore.display().to_string()),
        ("sasl.enabled.mechanisms", "SCRAM-SHA-512".into()),
        ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512".into()),
        (
            "listener.name.replication.scram-sha-512.sasl.jaas.config",
            format!(
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"broker\" password=\"{password}\";"
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    security.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    BrokerConfig::resolve(Flags {
        data_dir: Some(dir.join("data")),
        listeners: Some(format!("REPLICATION://127.0.0.1:{port}")),
        listener_security_protocol_map: Some("REPLICATION:SASL_SSL".into()),
        inter_broker_listener_name: Some("REPLICATION".into()),
        commit_journal_bytes: Some(0),
        security: Some(security),
        ..Flags::default()
    })
    .expect("config")
}

/// A SASL_SSL inter-broker listener serving `certs` on `socket`, knowing the broker's SCRAM
/// user; stopped by the sender.
async fn serving(
    dir: &std::path::Path,
    socket: tokio::net::TcpListener,
    certs: &(std::path::PathBuf, std::path::PathBuf),
) -> (
    Arc<Broker>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let port = socket.local_addr().expect("address").port();
    let config = broker_config(dir, certs, port, BROKER_PASSWORD);
    let runtimes =
        runtime::listeners(&config.listeners, &config.security).expect("listener runtimes");
    let gate = Gate::from_props(&config.security).expect("gate");
    let broker = Broker::open(config).expect("broker");
    let salt = b"peer-test-salt".to_vec();
    let salted = Mechanism::Sha512
        .salted_password(BROKER_PASSWORD.as_bytes(), &salt, 4096)
        .expect("salted password");
    let upsert = Upsertion {
        user: "broker".into(),
        mechanism: Mechanism::Sha512.code(),
        iterations: 4096,
        salt,
        salted_password: salted,
    };
    assert!(broker.scram.alter(&[], &[upsert]).await[0].1.is_ok());
    let runtime = runtimes.into_iter().next().expect("one listener");
    let bound = vec![Bound { socket, runtime }];
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(broker.clone(), bound, gate, async {
        let _ = stopped.await;
    }));
    (broker, stop, server)
}

/// A socket for the listener, and its port.
async fn listening() -> (tokio::net::TcpListener, u16) {
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = socket.local_addr().expect("address").port();
    (socket, port)
}

async fn metadata(
    address: &str,
    security: Arc<PeerSecurity>,
) -> Result<MetadataResponse, PeerError> {
    PeerConnection::new(address.to_owned(), security)
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default(),
            Duration::from_secs(10),
        )
        .await
}

#[tokio::test]
async fn the_inter_broker_client_speaks_tls_and_scram_to_the_inter_broker_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, port) = listening().await;
    let certs = certificates(dir.path());
    let (broker, stop, server) = serving(dir.path(), socket, &certs).await;

    let address = format!("127.0.0.1:{port}");
    let mut connection = PeerConnection::new(address.clone(), broker.peer_security.clone());
    for _ in 0..2 {
        // Twice: the second request reuses the authenticated connection.
        let metadata: MetadataResponse = connection
            .call(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default(),
                Duration::from_secs(10),
            )
            .await
            .expect("metadata over SASL_SSL");
        assert_eq!(
            metadata.brokers.first().map(|b| b.port),
            Some(i32::from(port))
        );
    }

    let other = broker_config(&dir.path().join("other"), &certs, port, "wrong");
    let wrong = Arc::new(
        PeerSecurity::from_props(&other.listeners, &other.security).expect("peer security"),
    );
    let refused: Result<MetadataResponse, _> = PeerConnection::new(address, wrong)
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default(),
            Duration::from_secs(10),
        )
        .await;
    assert!(
        matches!(&refused, Err(PeerError::Authentication { what, .. }) if what.contains("invalid credentials")),
        "{refused:?}"
    );
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test]
async fn without_endpoint_identification_a_peer_is_checked_by_its_chain_not_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, port) = listening().await;
    // The certificate names a DNS name only; the broker is dialled by IP.
    let certs = certificates_for(&dir.path().join("named"), &["broker-0.example"]);
    let (_broker, stop, server) = serving(dir.path(), socket, &certs).await;
    let address = format!("127.0.0.1:{port}");
    let client = |certs: &(std::path::PathBuf, std::path::PathBuf), extra: &[(&str, &str)]| {
        let config = broker_config_with(
            &dir.path().join("client"),
            (&certs.0, &certs.1),
            port,
            BROKER_PASSWORD,
            extra,
        );
        Arc::new(
            PeerSecurity::from_props(&config.listeners, &config.security).expect("peer security"),
        )
    };
    let by_name = metadata(&address, client(&certs, &[])).await;
    assert!(
        by_name.is_err(),
        "the name is checked by default: {by_name:?}"
    );
    let no_name = [(
        "listener.name.replication.ssl.endpoint.identification.algorithm",
        "",
    )];
    metadata(&address, client(&certs, &no_name))
        .await
        .expect("the chain is enough without endpoint identification");
    let stranger = certificates_for(&dir.path().join("stranger"), &["broker-0.example"]);
    let untrusted = client(&(certs.0.clone(), stranger.1.clone()), &no_name);
    assert!(
        metadata(&address, untrusted).await.is_err(),
        "a certificate from another CA is still refused"
    );
    let bad = broker_config_with(
        &dir.path().join("bad"),
        (&certs.0, &certs.1),
        port,
        BROKER_PASSWORD,
        &[("ssl.endpoint.identification.algorithm", "ldap")],
    );
    assert!(PeerSecurity::from_props(&bad.listeners, &bad.security).is_err());
    let _ = stop.send(());
    let _ = server.await;
}

#[tokio::test]
async fn the_inter_broker_client_rereads_its_trust_store_when_the_file_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, port) = listening().await;
    let served = certificates_for(&dir.path().join("served"), &["127.0.0.1"]);
    let (_broker, stop, server) = serving(dir.path(), socket, &served).await;
    let address = format!("127.0.0.1:{port}");
    // The client starts out trusting another CA, as a broker started before a CA rotation.
    let old = certificates_for(&dir.path().join("old"), &["127.0.0.1"]);
    let trust = dir.path().join("client-trust.pem");
    std::fs::copy(&old.1, &trust).expect("copy trust store");
    let config = broker_config_with(
        &dir.path().join("client"),
        (&served.0, &trust),
        port,
        BROKER_PASSWORD,
        &[],
    );
    let security = Arc::new(
        PeerSecurity::from_props(&config.listeners, &config.security).expect("peer security"),
    );
    assert!(metadata(&address, security.clone()).await.is_err());
    let mut bundle = std::fs::read_to_string(&old.1).expect("old CA");
    bundle.push_str(&std::fs::read_to_string(&served.1).expect("new CA"));
    std::fs::write(&trust, bundle).expect("rotate trust store");
    metadata(&address, security)
        .await
        .expect("trusted after the trust store gained the new CA");
    let _ = stop.send(());
    let _ = server.await;
}

/// A Fetch of every partition of `topic` from offset 0, as a consumer or as follower 1.
fn fetch_all(
    topic: &str,
    partitions: i32,
    follower: bool,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::{fetch_request, BrokerId, FetchRequest, TopicName};
    let request = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(TopicName(kafka_protocol::protocol::StrBytes::from_string(
                topic.to_string(),
            )))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        fetch_request::FetchPartition::default()
                            .with_partition(p)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]);
    if follower {
        request.with_replica_id(BrokerId(1))
    } else {
        request
    }
}

/// One batch of `records` records for partition `index` of `topic`.
fn produce_data(
    topic: &str,
    index: i32,
    records: i32,
) -> kafka_protocol::messages::produce_request::TopicProduceData {
    use kafka_protocol::messages::{produce_request, TopicName};
    use kafka_protocol::records::Compression;
    let values: Vec<String> = (0..records).map(|i| format!("value {index} {i}")).collect();
    let batch: Vec<_> = (0..records)
        .map(|i| crate::storage::test_util::record(i, Some("k"), Some(&values[i as usize])))
        .collect();
    produce_request::TopicProduceData::default()
        .with_name(TopicName(kafka_protocol::protocol::StrBytes::from_string(
            topic.to_string(),
        )))
        .with_partition_data(vec![produce_request::PartitionProduceData::default()
            .with_index(index)
            .with_records(Some(
                crate::storage::test_util::encode(&batch, Compression::None).freeze(),
            ))])
}

#[tokio::test]
async fn fetches_over_tls_are_copied_not_sent_from_files() {
    use kafka_protocol::messages::{FetchResponse, ProduceRequest, ProduceResponse};

    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, port) = listening().await;
    let certs = certificates(dir.path());
    let (broker, stop, server) = serving(dir.path(), socket, &certs).await;
    crate::test_support::create_topic(&broker, "tls", 2, BTreeMap::new());
    for round in 0..5 {
        for index in 0..2 {
            let request = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5_000)
                .with_topic_data(vec![produce_data("tls", index, round + 1)]);
            let produced: ProduceResponse =
                crate::handlers::group_wire_tests::call(&broker, ApiKey::Produce, 9, &request)
                    .await;
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        }
    }
    let address = format!("127.0.0.1:{port}");
    let mut connection = PeerConnection::new(address, broker.peer_security.clone());
    for (version, follower) in [
        (11, false),
        (12, false),
        (13, false),
        (12, true),
        (14, true),
    ] {
        let mut request = fetch_all("tls", 2, follower);
        if version >= 13 {
            let id = crate::test_support::topic(&broker, "tls")
                .expect("topic")
                .id;
            request.topics[0].topic_id = id;
        }
        let over_tls: FetchResponse = connection
            .call(ApiKey::Fetch, version, &request, Duration::from_secs(10))
            .await
            .expect("fetch over SASL_SSL");
        let copied: FetchResponse =
            crate::handlers::group_wire_tests::call(&broker, ApiKey::Fetch, version, &request)
                .await;
        let records: usize = over_tls.responses[0]
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, bytes::Bytes::len))
            .sum();
        assert!(records > 0, "v{version}: records");
        assert_eq!(over_tls, copied, "v{version} follower {follower}");
    }
    assert_eq!(
        broker.metrics.fetch_sendfile_bytes.get(),
        0,
        "TLS connections copy record sets through memory"
    );
    let _ = stop.send(());
    let _ = server.await;
}
