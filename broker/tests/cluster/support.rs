//! A control plane (the in-memory Kubernetes API with the Tributary CRDs and one KafkaCluster)
//! and brokers started in cluster mode against it, each with its own data directory and a
//! real TCP listener.

#![allow(unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client, CustomResourceExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tributary_broker::config::{BrokerConfig, Flags};
use tributary_broker::Broker;
use tributary_crds::{
    IsrEntry, KafkaCluster, KafkaPartition, KafkaPartitionSpec, KafkaPartitionStatus, KafkaTopic,
    KafkaTopicSpec, KafkaUser,
};
use tributary_e2e::FakeApiServer;

/// Namespace of every test cluster.
pub const NS: &str = "kafka";
/// Name of every test cluster.
pub const CLUSTER: &str = "demo";
/// How long any condition may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Lease timings short enough for tests to see expiry and fencing quickly, and long enough
/// (Leases state whole seconds; brokers fence after two) that a test machine busy with Java
/// clients and builds does not fence every broker at once.
pub const LEASE_MS: u64 = 3_000;
/// Renewal interval matching [`LEASE_MS`].
pub const RENEW_MS: u64 = 500;

/// Polls `f` until it yields `Some`, failing the test with `what` after [`DEADLINE`].
pub async fn wait_until<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    tributary_e2e::wait_until(what, DEADLINE, f).await
}

/// The in-memory API server with the CRDs installed and KafkaCluster `demo` created.
pub struct ControlPlane {
    /// The server, for fault injection and direct reads.
    pub server: FakeApiServer,
    /// A client of namespace [`NS`].
    pub client: Client,
}

impl ControlPlane {
    /// A fresh control plane.
    pub async fn new() -> ControlPlane {
        let server = FakeApiServer::new();
        server.create_namespace(NS);
        let client = server.client(NS);
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        for crd in [
            KafkaCluster::crd(),
            KafkaTopic::crd(),
            KafkaPartition::crd(),
            KafkaUser::crd(),
        ] {
            crds.create(&PostParams::default(), &crd)
                .await
                .unwrap_or_else(|e| panic!("create CRD: {e}"));
        }
        let cluster: KafkaCluster = serde_json::from_value(serde_json::json!({
            "apiVersion": "tributary.dev/v1alpha1",
            "kind": "KafkaCluster",
            "metadata": {"name": CLUSTER, "namespace": NS},
            "spec": {"brokers": 3, "image": "tributary-broker:test"},
        }))
        .unwrap_or_else(|e| panic!("KafkaCluster: {e}"));
        wait_until("the CRDs to be served", || {
            let api: Api<KafkaCluster> = Api::namespaced(client.clone(), NS);
            let cluster = cluster.clone();
            async move { api.create(&PostParams::default(), &cluster).await.ok() }
        })
        .await;
        ControlPlane { server, client }
    }

    /// Typed access to the namespace's objects of kind `K`.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates KafkaTopic `name` as `kubectl apply` would (no status: the operator's part is
    /// [`ControlPlane::place`]).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
    ) -> KafkaTopic {
        let topic = KafkaTopic {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(NS.to_string()),
                ..Default::default()
            },
            spec: KafkaTopicSpec {
                cluster_ref: CLUSTER.to_string(),
                topic_name: None,
                partitions,
                replication_factor,
                config: BTreeMap::new(),
                deletion_policy: Default::default(),
                replica_assignments: Vec::new(),
            },
            status: None,
        };
        self.api::<KafkaTopic>()
            .create(&PostParams::default(), &topic)
            .await
            .unwrap_or_else(|e| panic!("create KafkaTopic {name}: {e}"))
    }

    /// Writes the KafkaPartition `<object>-<n>` of KafkaTopic `object` as the operator and
    /// controller would: `replicas`, led by `leader` with every replica in sync at
    /// `incarnation`.
    pub async fn place(
        &self,
        object: &str,
        n: i32,
        replicas: &[i32],
        leader: i32,
        incarnation: i64,
    ) {
        let topic = self
            .api::<KafkaTopic>()
            .get(object)
            .await
            .unwrap_or_else(|e| panic!("read KafkaTopic {object}: {e}"));
        let uid = topic.metadata.uid.clone().unwrap_or_default();
        let topic_id = tributary_crds::ids::kafka_id_from_uid(&uid)
            .unwrap_or_else(|e| panic!("topic id of {object}: {e}"));
        let owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "tributary.dev/v1alpha1".into(),
            kind: "KafkaTopic".into(),
            name: object.to_string(),
            uid,
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let name = format!("{object}-{n}");
        let partition = KafkaPartition {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(NS.to_string()),
                owner_references: Some(vec![owner]),
                ..Default::default()
            },
            spec: KafkaPartitionSpec {
                cluster_ref: CLUSTER.to_string(),
                topic: topic.kafka_name().to_string(),
                topic_id,
                partition: n,
                replicas: replicas.to_vec(),
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            },
            status: None,
        };
        let api = self.api::<KafkaPartition>();
        let created = api
            .create(&PostParams::default(), &partition)
            .await
            .unwrap_or_else(|e| panic!("create KafkaPartition {name}: {e}"));
        self.set_leader(&created, leader, 0, replicas, incarnation)
            .await;
        self.record_placed(object, n + 1).await;
    }

    /// Records `placed` partitions of KafkaTopic `object` placed, as the operator does once it
    /// has written their objects (brokers show no more partitions than that).
    pub async fn record_placed(&self, object: &str, placed: i32) {
        let api = self.api::<KafkaTopic>();
        let mut topic = api
            .get(object)
            .await
            .unwrap_or_else(|e| panic!("read KafkaTopic {object}: {e}"));
        let status = topic.status.get_or_insert_with(Default::default);
        if status.placed_partitions >= placed {
            return;
        }
        status.placed_partitions = placed;
        api.replace_status(object, &PostParams::default(), &topic)
            .await
            .unwrap_or_else(|e| panic!("write status of KafkaTopic {object}: {e}"));
    }

    /// Writes the status of `partition`: `leader` at `leader_epoch`, ISR `isr` at
    /// `incarnation`, one partition epoch later.
    pub async fn set_leader(
        &self,
        partition: &KafkaPartition,
        leader: i32,
        leader_epoch: i32,
        isr: &[i32],
        incarnation: i64,
    ) {
        let mut next = partition.clone();
        let epoch = partition
            .status
            .as_ref()
            .map_or(0, |s| s.partition_epoch + 1);
        next.status = Some(KafkaPartitionStatus {
            leader,
            leader_epoch,
            partition_epoch: epoch,
            isr: isr
                .iter()
                .map(|&broker_id| IsrEntry {
                    broker_id,
                    broker_epoch: incarnation,
                })
                .collect(),
        });
        let name = partition.metadata.name.clone().unwrap_or_default();
        self.api::<KafkaPartition>()
            .replace_status(&name, &PostParams::default(), &next)
            .await
            .unwrap_or_else(|e| panic!("write status of KafkaPartition {name}: {e}"));
    }
}

/// Brokers `0..n` of [`CLUSTER`], each on a data directory of its own (kept while they run).
pub async fn brokers(plane: &ControlPlane, n: i32) -> (Vec<tempfile::TempDir>, Vec<RunningBroker>) {
    let mut dirs = Vec::new();
    let mut running = Vec::new();
    for id in 0..n {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        running.push(RunningBroker::start(plane, id, dir.path()).await);
        dirs.push(dir);
    }
    (dirs, running)
}

/// A broker running in cluster mode.
pub struct RunningBroker {
    /// Its shared state.
    pub broker: Arc<Broker>,
    /// `host:port` of its Kafka listener.
    pub address: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningBroker {
    /// Starts broker `id` of [`CLUSTER`] on `data_dir`, serving Kafka on an ephemeral port.
    pub async fn start(plane: &ControlPlane, id: i32, data_dir: &std::path::Path) -> RunningBroker {
        RunningBroker::start_with(plane.client.clone(), id, data_dir).await
    }

    /// [`RunningBroker::start`] with its own API client (one served over HTTP, say).
    pub async fn start_with(client: Client, id: i32, data_dir: &std::path::Path) -> RunningBroker {
        RunningBroker::start_tuned(client, id, data_dir, |_| {}).await
    }

    /// [`RunningBroker::start_with`] with settings changed by `tune` (after the tests' own).
    pub async fn start_tuned(
        client: Client,
        id: i32,
        data_dir: &std::path::Path,
        tune: fn(&mut Flags),
    ) -> RunningBroker {
        RunningBroker::start_on(client, id, data_dir, tune, "127.0.0.1:0").await
    }

    /// [`RunningBroker::start_tuned`] serving on `bind`: a restarted broker takes its old
    /// address back, as a pod restarted in place keeps its IP and DNS name, so clients that
    /// only know the addresses from before find it again. Binding is retried for a few seconds
    /// while the killed broker's listener closes.
    pub async fn start_on(
        client: Client,
        id: i32,
        data_dir: &std::path::Path,
        tune: fn(&mut Flags),
        bind: &str,
    ) -> RunningBroker {
        let mut attempts = 0;
        let listener = loop {
            match TcpListener::bind(bind).await {
                Ok(listener) => break listener,
                Err(e) if attempts < 100 => {
                    attempts += 1;
                    tracing::debug!("bind {bind}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("bind {bind}: {e}"),
            }
        };
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|e| panic!("local address: {e}"));
        let mut flags = Flags {
            listener: Some(address.clone()),
            data_dir: Some(data_dir.to_path_buf()),
            broker_id: Some(id),
            cluster_name: Some(CLUSTER.to_string()),
            cluster_namespace: Some(NS.to_string()),
            broker_lease_duration_ms: Some(LEASE_MS),
            broker_lease_renew_interval_ms: Some(RENEW_MS),
            // Groups of the real clients form at once.
            group_initial_rebalance_delay_ms: Some(0),
            ..Flags::default()
        };
        tune(&mut flags);
        let config = BrokerConfig::resolve(flags).unwrap_or_else(|e| panic!("config: {e}"));
        let broker = Broker::open_in_cluster(config, client)
            .await
            .unwrap_or_else(|e| panic!("broker {id} did not start: {e}"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tributary_broker::server::run(
            broker.clone(),
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        RunningBroker {
            broker,
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Ends the broker as SIGKILL would: no flush, no release; its connections drop, its
    /// tasks stop with its last reference, and its Lease (whose writes the caller makes fail
    /// first, as its renewal task may outlive it for a moment) expires.
    pub fn kill(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Hands the broker's leaderships over as it does on SIGTERM (controlled shutdown), then
    /// stops it.
    pub async fn shutdown_controlled(self) {
        tributary_broker::kube::shutdown::controlled_shutdown(&self.broker, DEADLINE).await;
        self.shutdown().await;
    }

    /// Stops serving and releases the registration.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(registrar) = &self.broker.registrar {
            registrar
                .release()
                .await
                .unwrap_or_else(|e| panic!("release: {e}"));
        }
    }
}

/// A batch of `n` records `v0..` encoded for produce.
pub fn records(n: usize) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap_or_else(|e| panic!("encode: {e}"));
    buf.freeze()
}

/// Sends `request` to `address` on a connection of its own and decodes the answer.
pub async fn kafka_call<Q, R>(
    address: &str,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    request: &Q,
) -> R
where
    Q: kafka_protocol::protocol::Encodable,
    R: kafka_protocol::protocol::Decodable,
{
    let mut answers = kafka_pipeline(address, api, version, std::slice::from_ref(request)).await;
    answers
        .pop()
        .unwrap_or_else(|| panic!("{api:?} v{version}: no answer"))
}

/// Sends every request to `address` in one write on one connection, as a client pipelines
/// them, and decodes the answers in the order they come, checking each is the one asked for.
pub async fn kafka_pipeline<Q, R>(
    address: &str,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    requests: &[Q],
) -> Vec<R>
where
    Q: kafka_protocol::protocol::Encodable,
    R: kafka_protocol::protocol::Decodable,
{
    use bytes::{Buf, BufMut};
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut frames = bytes::BytesMut::new();
    for (correlation_id, request) in (1..).zip(requests) {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("cluster-test")));
        let mut body = bytes::BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .unwrap_or_else(|e| panic!("header: {e}"));
        request
            .encode(&mut body, version)
            .unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
        frames.put_i32(i32::try_from(body.len()).unwrap_or(i32::MAX));
        frames.extend_from_slice(&body);
    }
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream
        .write_all(&frames)
        .await
        .unwrap_or_else(|e| panic!("send: {e}"));
    let mut answers = Vec::with_capacity(requests.len());
    for correlation_id in (1..).take(requests.len()) {
        let size = stream
            .read_i32()
            .await
            .unwrap_or_else(|e| panic!("read size: {e}"));
        let mut answer = vec![0u8; usize::try_from(size).unwrap_or(0)];
        stream
            .read_exact(&mut answer)
            .await
            .unwrap_or_else(|e| panic!("read answer: {e}"));
        let mut answer = bytes::Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))
            .unwrap_or_else(|e| panic!("response header: {e}"));
        assert_eq!(
            header.correlation_id, correlation_id,
            "answers in request order"
        );
        let response =
            R::decode(&mut answer, version).unwrap_or_else(|e| panic!("{api:?} v{version}: {e}"));
        assert_eq!(answer.remaining(), 0, "{api:?} v{version}: trailing bytes");
        answers.push(response);
    }
    answers
}
