//! External listeners: a broker advertises on them what its per-broker Service gives (the
//! node's address and the node port, or overrides in the Service's annotations), and until it
//! knows, Metadata on that listener leaves the broker out, as Kafka leaves out brokers without
//! the client's listener.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tributary_broker::config::{BrokerConfig, Flags};
use tributary_broker::security::runtime::{Gate, ListenerRuntime};
use tributary_broker::server::{serve, Bound};
use tributary_broker::Broker;

use crate::support::{kafka_call, wait_until, ControlPlane, CLUSTER, LEASE_MS, NS, RENEW_MS};

/// The node address the broker is told it runs on.
const HOST_IP: &str = "127.0.9.9";
/// Kafka's LISTENER_NOT_FOUND.
const LISTENER_NOT_FOUND: i16 = 72;

/// `(brokers as (id, host, port), (leader, error) of partition 0 of `edge`)` as Metadata v12
/// at `address` answers.
async fn metadata(address: &str) -> (Vec<(i32, String, i32)>, Option<(i32, i16)>) {
    let response: MetadataResponse = kafka_call(
        address,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
    .await;
    let brokers = response
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect();
    let partition = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "edge"))
        .and_then(|t| t.partitions.first())
        .map(|p| (p.leader_id.0, p.error_code));
    (brokers, partition)
}

fn node_port_service(name: &str) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(NS.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("NodePort".into()),
            selector: Some(BTreeMap::from([(
                "statefulset.kubernetes.io/pod-name".to_string(),
                format!("{CLUSTER}-broker-0"),
            )])),
            ports: Some(vec![ServicePort {
                name: Some("ext".into()),
                port: 9094,
                node_port: Some(31_234),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_listener_advertises_what_its_service_gives_and_nothing_before() {
    let plane = ControlPlane::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ext = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let plain_address = plain.local_addr().expect("address").to_string();
    let ext_address = ext.local_addr().expect("address").to_string();
    let flags = Flags {
        listeners: Some(format!("PLAIN://{plain_address},EXT://{ext_address}")),
        listener_security_protocol_map: Some("PLAIN:PLAINTEXT,EXT:PLAINTEXT".into()),
        inter_broker_listener_name: Some("PLAIN".into()),
        external_listeners: Some("EXT".into()),
        host_ip: Some(HOST_IP.into()),
        data_dir: Some(dir.path().to_path_buf()),
        broker_id: Some(0),
        cluster_name: Some(CLUSTER.to_string()),
        cluster_namespace: Some(NS.to_string()),
        broker_lease_duration_ms: Some(LEASE_MS),
        broker_lease_renew_interval_ms: Some(RENEW_MS),
        ..Flags::default()
    };
    let config = BrokerConfig::resolve(flags).expect("config");
    let listeners = config.listeners.all.clone();
    let broker = Broker::open_in_cluster(config, plane.client.clone())
        .await
        .expect("broker starts");
    let mut sockets = BTreeMap::from([("PLAIN", plain), ("EXT", ext)]);
    let bound = listeners
        .into_iter()
        .filter_map(|l| {
            Some(Bound {
                socket: sockets.remove(l.name.as_str())?,
                runtime: Arc::new(ListenerRuntime::plaintext(l)),
            })
        })
        .collect();
    let gate = Gate {
        unauthenticated: Arc::new(Semaphore::new(8)),
        timeout: Duration::from_secs(10),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(broker.clone(), bound, gate, async {
        let _ = stopped.await;
    }));
    let incarnation = broker
        .registrar
        .as_ref()
        .map(|r| r.incarnation())
        .expect("registered");
    plane.create_topic("edge", 1, 1).await;
    plane.place("edge", 0, &[0], 0, incarnation).await;

    // Inside the cluster the broker is known at once.
    wait_until("the internal listener to serve edge", || {
        let address = plain_address.clone();
        async move {
            let (brokers, partition) = metadata(&address).await;
            (brokers == [(0, "127.0.0.1".to_string(), address_port(&address))]
                && partition == Some((0, 0)))
            .then_some(())
        }
    })
    .await;
    // Outside it, not before its Service says where.
    let (brokers, partition) = metadata(&ext_address).await;
    assert!(brokers.is_empty(), "{brokers:?}");
    assert_eq!(partition, Some((-1, LISTENER_NOT_FOUND)));

    let services = plane.api::<Service>();
    let name = format!("{CLUSTER}-broker-0-ext");
    services
        .create(&PostParams::default(), &node_port_service(&name))
        .await
        .expect("create Service");
    wait_until("the node address and node port to be advertised", || {
        let address = ext_address.clone();
        async move {
            (metadata(&address).await == (vec![(0, HOST_IP.to_string(), 31_234)], Some((0, 0))))
                .then_some(())
        }
    })
    .await;

    // The KafkaCluster's per-broker overrides reach the broker as annotations.
    let overrides = serde_json::json!({"metadata": {"annotations": {
        "tributary.dev/advertised-host": "kafka-0.example.com",
        "tributary.dev/advertised-port": "443",
    }}});
    services
        .patch(&name, &PatchParams::default(), &Patch::Merge(&overrides))
        .await
        .expect("annotate Service");
    wait_until("the overrides to be advertised", || {
        let address = ext_address.clone();
        async move {
            let (brokers, _) = metadata(&address).await;
            (brokers == [(0, "kafka-0.example.com".to_string(), 443)]).then_some(())
        }
    })
    .await;

    services
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete Service");
    wait_until("the listener to be withdrawn", || {
        let address = ext_address.clone();
        async move {
            let (brokers, partition) = metadata(&address).await;
            (brokers.is_empty() && partition == Some((-1, LISTENER_NOT_FOUND))).then_some(())
        }
    })
    .await;
    let (brokers, _) = metadata(&plain_address).await;
    assert_eq!(brokers.len(), 1, "the internal listener is untouched");

    let _ = stop.send(());
    let _ = server.await;
}

fn address_port(address: &str) -> i32 {
    address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(-1)
}
