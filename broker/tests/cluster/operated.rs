//! Three brokers and the operator's controllers (placement, elections, liveness) against the
//! in-memory API server, used by real clients through one bootstrap address: the Java client
//! and librdkafka (kcat) create topics through either door, produce to and consume from
//! partitions led by different brokers, and groups commit with coordinators on different
//! brokers; a broker that cannot renew its Lease fences itself and the controller moves or
//! offlines its partitions, then gives them back when it returns.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tributary_broker::config::Flags;
use tributary_crds::{KafkaPartition, KafkaTopic};
use tributary_e2e::clients::{java, java_main, kcat_metadata};
use tributary_operator::context::{Context, Settings};
use tributary_operator::metrics::Metrics;

use crate::support::{wait_until, ControlPlane, RunningBroker, NS};

pub(crate) const LEASES: &str = "coordination.k8s.io/leases";

/// The control plane, the operator's controllers and three brokers.
pub(crate) struct Operated {
    pub(crate) plane: ControlPlane,
    pub(crate) brokers: Vec<RunningBroker>,
    dirs: Vec<tempfile::TempDir>,
    /// Each broker's address, by id: a restarted broker serves on it again.
    addresses: Vec<String>,
    stop: watch::Sender<bool>,
    operator: tokio::task::JoinHandle<()>,
    /// Settings every broker of this cluster starts with.
    tune: fn(&mut Flags),
    /// Lease renewals of isolated brokers ([`Operated::isolate`]).
    renewers: Vec<(i32, tokio::task::JoinHandle<()>)>,
}

impl Operated {
    pub(crate) async fn start() -> Operated {
        Operated::start_tuned(|_| {}).await
    }

    /// [`Operated::start`] with every broker's settings changed by `tune`.
    pub(crate) async fn start_tuned(tune: fn(&mut Flags)) -> Operated {
        Operated::start_sized(3, tune).await
    }

    /// [`Operated::start_tuned`] with `n` brokers, ids `0..n` (the KafkaCluster still asks for
    /// three: placement uses brokers 0 to 2 until a test says otherwise).
    pub(crate) async fn start_sized(n: usize, tune: fn(&mut Flags)) -> Operated {
        // The brokers' logs, when RUST_LOG asks for them.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let plane = ControlPlane::new().await;
        let metrics = Arc::new(Metrics::new().unwrap_or_else(|e| panic!("metrics: {e}")));
        let mut settings = Settings::new("operator-0", NS);
        settings.watch_namespace = Some(NS.to_owned());
        settings.error_backoff = Duration::from_millis(500);
        let ctx = Context::new(plane.client.clone(), metrics, settings);
        let (stop, stopped) = watch::channel(false);
        let operator = tokio::spawn(tributary_operator::run::run_controllers(ctx, stopped));
        let dirs: Vec<tempfile::TempDir> = (0..n)
            .map(|_| tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")))
            .collect();
        let brokers = futures::future::join_all(dirs.iter().enumerate().map(|(id, dir)| {
            RunningBroker::start_tuned(plane.client.clone(), id as i32, dir.path(), tune)
        }))
        .await;
        let addresses = brokers.iter().map(|b| b.address.clone()).collect();
        Operated {
            plane,
            brokers,
            dirs,
            addresses,
            stop,
            operator,
            tune,
            renewers: Vec::new(),
        }
    }

    /// Every running broker's address, as a client's bootstrap list.
    pub(crate) fn bootstrap(&self) -> String {
        self.brokers
            .iter()
            .map(|b| b.address.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The running broker `id`.
    pub(crate) fn broker(&self, id: i32) -> &RunningBroker {
        self.brokers
            .iter()
            .find(|b| b.broker.config.broker_id == id)
            .unwrap_or_else(|| panic!("broker {id} is not running"))
    }

    /// SIGKILLs broker `id` (see [`RunningBroker::kill`]): its Lease stops being renewed.
    pub(crate) fn kill(&mut self, id: i32) {
        let lease = format!("demo-broker-{id}");
        self.plane
            .server
            .fail_next_object_writes_with(LEASES, &lease, usize::MAX, 503);
        let position = self
            .brokers
            .iter()
            .position(|b| b.broker.config.broker_id == id)
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        self.brokers.remove(position).kill();
    }

    /// Empties the data directory of broker `id` (not running), as a replaced disk would.
    pub(crate) fn wipe(&self, id: i32) {
        let dir = self.dirs[usize::try_from(id).unwrap_or(0)].path();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}")) {
            let path = entry.unwrap_or_else(|e| panic!("entry: {e}")).path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.unwrap_or_else(|e| panic!("remove {path:?}: {e}"));
        }
    }

    /// Stops broker `id` from doing anything but renewing its Lease: a broker partitioned
    /// from its peers but not from the API server, which the controller keeps seeing alive,
    /// so only its leaders can tell it lags. [`Operated::restart`] ends it.
    pub(crate) fn isolate(&mut self, id: i32) {
        let position = self
            .brokers
            .iter()
            .position(|b| b.broker.config.broker_id == id)
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        self.brokers.remove(position).kill();
        let leases = self.plane.api::<Lease>();
        let name = format!("demo-broker-{id}");
        let renewer = tokio::spawn(async move {
            loop {
                if let Ok(mut lease) = leases.get(&name).await {
                    if let Some(spec) = lease.spec.as_mut() {
                        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
                    }
                    let _ = leases.replace(&name, &PostParams::default(), &lease).await;
                }
                tokio::time::sleep(Duration::from_millis(crate::support::RENEW_MS)).await;
            }
        });
        self.renewers.push((id, renewer));
    }

    /// Stops broker `id` as SIGTERM does, handing its leaderships over first.
    pub(crate) async fn stop_controlled(&mut self, id: i32) {
        let position = self
            .brokers
            .iter()
            .position(|b| b.broker.config.broker_id == id)
            .unwrap_or_else(|| panic!("broker {id} is not running"));
        self.brokers.remove(position).shutdown_controlled().await;
    }

    /// Starts broker `id` again on its data directory, as a new incarnation.
    pub(crate) async fn restart(&mut self, id: i32) {
        self.renewers.retain(|(isolated, renewer)| {
            if *isolated == id {
                renewer.abort();
            }
            *isolated != id
        });
        let lease = format!("demo-broker-{id}");
        self.plane
            .server
            .fail_next_object_writes_with(LEASES, &lease, 0, 503);
        let dir = self.dirs[usize::try_from(id).unwrap_or(0)]
            .path()
            .to_path_buf();
        let address = self.addresses[usize::try_from(id).unwrap_or(0)].clone();
        let broker =
            RunningBroker::start_on(self.plane.client.clone(), id, &dir, self.tune, &address).await;
        self.brokers.push(broker);
        self.brokers.sort_by_key(|b| b.broker.config.broker_id);
    }

    pub(crate) async fn stop(self) {
        for (_, renewer) in &self.renewers {
            renewer.abort();
        }
        let _ = self.stop.send(true);
        for broker in self.brokers {
            broker.shutdown().await;
        }
        let _ = self.operator.await;
    }
}

/// `(partition, leader, replicas)` of `topic` as the broker at `address` answers Metadata.
pub(crate) async fn layout(address: &str, topic: &str) -> Vec<(i64, i64, Vec<i64>)> {
    let metadata = kcat_metadata(address)
        .await
        .unwrap_or_else(|e| panic!("kcat -L {address}: {e}"));
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_i64())
            .collect()
    };
    let mut partitions: Vec<(i64, i64, Vec<i64>)> = metadata["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["topic"] == topic)
        .flat_map(|t| t["partitions"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            (
                p["partition"].as_i64().unwrap_or(-1),
                p["leader"].as_i64().unwrap_or(-1),
                ids(&p["replicas"]),
            )
        })
        .collect();
    partitions.sort();
    partitions
}

/// Waits until every broker answers Metadata for `topic` with `n` partitions, each led, and
/// all of them the same; returns that layout.
pub(crate) async fn served(cluster: &Operated, topic: &str, n: usize) -> Vec<(i64, i64, Vec<i64>)> {
    wait_until(
        &format!("every broker to serve {topic} with {n} led partitions"),
        || async {
            let mut views = Vec::new();
            for broker in &cluster.brokers {
                views.push(layout(&broker.address, topic).await);
            }
            let first = views.first().cloned()?;
            let complete = first.len() == n && first.iter().all(|(_, leader, _)| *leader >= 0);
            (complete && views.iter().all(|v| *v == first)).then_some(first)
        },
    )
    .await
}

/// Waits until KafkaPartition `name` records `n` in-sync replicas; returns its status.
pub(crate) async fn wait_for_isr(
    cluster: &Operated,
    name: &str,
    n: usize,
) -> tributary_crds::KafkaPartitionStatus {
    wait_until(&format!("{n} in-sync replicas of {name}"), || async {
        let object = cluster.plane.api::<KafkaPartition>().get(name).await.ok()?;
        object.status.filter(|s| s.isr.len() == n)
    })
    .await
}

/// Runs kcat (librdkafka) with `args`, feeding it `stdin`; its stdout.
pub(crate) async fn kcat(args: &[&str], stdin: &str) -> String {
    let mut child = tokio::process::Command::new("kcat")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("kcat (install it with .ci/install-tools.sh): {e}"));
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("kcat stdin: {e}"));
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("kcat {args:?} did not finish"))
        .unwrap_or_else(|e| panic!("kcat: {e}"));
    assert!(
        out.status.success(),
        "kcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn count(lines: &[Value], event: &str) -> usize {
    lines.iter().filter(|l| l["event"] == event).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clients_use_one_bootstrap_for_topics_led_by_different_brokers_made_through_either_door(
) {
    let cluster = Operated::start().await;
    let bootstrap = cluster.brokers[0].address.clone();

    // Door one: the Kafka admin API (the Java client's CreateTopics) writes a KafkaTopic.
    let created = java(
        &[
            "admin",
            "--bootstrap",
            &bootstrap,
            "create-topic",
            "--topic",
            "orders",
            "--partitions",
            "6",
            "--rf",
            "1",
        ],
        None,
    )
    .await;
    assert_eq!(count(&created, "created"), 1, "{created:?}");
    let object = cluster
        .plane
        .api::<KafkaTopic>()
        .get("orders")
        .await
        .unwrap_or_else(|e| panic!("CreateTopics wrote no KafkaTopic: {e}"));
    assert_eq!(object.spec.partitions, 6);

    // Door two: a KafkaTopic as `kubectl apply` writes it.
    cluster.plane.create_topic("events", 3, 1).await;

    let orders = served(&cluster, "orders", 6).await;
    let leaders: BTreeSet<i64> = orders.iter().map(|(_, leader, _)| *leader).collect();
    assert_eq!(
        leaders,
        BTreeSet::from([0, 1, 2]),
        "placement spreads the leaders: {orders:?}"
    );
    served(&cluster, "events", 3).await;
    let listed = java(&["admin", "--bootstrap", &bootstrap, "list-topics"], None).await;
    let names = listed
        .iter()
        .find(|l| l["event"] == "topics")
        .map(|l| l["topics"].to_string())
        .unwrap_or_default();
    assert!(
        names.contains("orders") && names.contains("events"),
        "{listed:?}"
    );

    // The Java client produces through one broker to partitions led by all three.
    let acks = java(
        &[
            "produce",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "orders",
            "--count",
            "300",
            "--key-prefix",
            "k",
            "--prop",
            "acks=all",
        ],
        None,
    )
    .await;
    assert_eq!(count(&acks, "ack"), 300, "{acks:?}");
    let partitions: BTreeSet<i64> = acks
        .iter()
        .filter(|l| l["event"] == "ack")
        .filter_map(|l| l["partition"].as_i64())
        .collect();
    assert!(
        partitions.len() > 3,
        "keys spread over partitions: {partitions:?}"
    );

    // librdkafka produces through another broker and reads everything back.
    let lines: String = (0..90).map(|i| format!("key{i}:value{i}\n")).collect();
    kcat(
        &[
            "-b",
            &cluster.brokers[1].address,
            "-P",
            "-t",
            "events",
            "-K",
            ":",
            "-X",
            "acks=all",
        ],
        &lines,
    )
    .await;
    let read = kcat(
        &[
            "-b",
            &cluster.brokers[2].address,
            "-C",
            "-t",
            "events",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k:%s\n",
        ],
        "",
    )
    .await;
    let read: BTreeSet<&str> = read.lines().collect();
    assert_eq!(read, lines.lines().collect::<BTreeSet<_>>());

    // Groups: each commits with its coordinator, the leader of its __consumer_offsets
    // partition, and a second member of the group resumes from the commit.
    let mut coordinators = BTreeSet::new();
    for group in ["audit", "billing", "search", "ledger"] {
        let consumed = java(
            &[
                "consume",
                "--bootstrap",
                &bootstrap,
                "--topic",
                "orders",
                "--group",
                group,
                "--max",
                "300",
                "--timeout-ms",
                "60000",
            ],
            None,
        )
        .await;
        assert_eq!(count(&consumed, "record"), 300, "{group}: {consumed:?}");
        let again = java(
            &[
                "consume",
                "--bootstrap",
                &cluster.brokers[2].address,
                "--topic",
                "orders",
                "--group",
                group,
                "--timeout-ms",
                "3000",
            ],
            None,
        )
        .await;
        assert_eq!(
            count(&again, "record"),
            0,
            "{group} resumes after its commits"
        );
        let described = java_main(
            "GroupCli",
            &[
                "groups",
                "--bootstrap",
                &bootstrap,
                "describe",
                "--group",
                group,
            ],
            None,
        )
        .await;
        let coordinator = described
            .iter()
            .find(|l| l["event"] == "description")
            .and_then(|l| l["coordinator"].as_i64())
            .unwrap_or_else(|| panic!("no coordinator for {group}: {described:?}"));
        coordinators.insert(coordinator);
    }
    assert!(
        coordinators.len() > 1,
        "group coordinators on different brokers: {coordinators:?}"
    );

    // Transactions: the coordinator (the leader of the id's __transaction_state partition)
    // sends its markers to partitions led by the other brokers; read_committed consumers see
    // the committed transactions only.
    let created = java(
        &[
            "admin",
            "--bootstrap",
            &bootstrap,
            "create-topic",
            "--topic",
            "payments",
            "--partitions",
            "6",
        ],
        None,
    )
    .await;
    assert_eq!(count(&created, "created"), 1, "{created:?}");
    let payments = served(&cluster, "payments", 6).await;
    let leaders: BTreeSet<i64> = payments.iter().map(|(_, leader, _)| *leader).collect();
    assert_eq!(leaders.len(), 3, "{payments:?}");
    let txns = java(
        &[
            "txn",
            "--bootstrap",
            &bootstrap,
            "--topic",
            "payments",
            "--transactional-id",
            "payer",
            "--transactions",
            "4",
            "--count",
            "30",
            "--abort-every",
            "2",
        ],
        None,
    )
    .await;
    assert_eq!(count(&txns, "txn"), 4, "{txns:?}");
    assert_eq!(count(&txns, "done"), 1, "{txns:?}");
    let committed = java(
        &[
            "consume",
            "--bootstrap",
            &cluster.brokers[1].address,
            "--topic",
            "payments",
            "--timeout-ms",
            "8000",
            "--prop",
            "isolation.level=read_committed",
        ],
        None,
    )
    .await;
    let values: BTreeSet<String> = committed
        .iter()
        .filter(|l| l["event"] == "record")
        .filter_map(|l| l["value"].as_str().map(str::to_owned))
        .collect();
    let expected: BTreeSet<String> = [0, 2]
        .iter()
        .flat_map(|n| (0..30).map(move |i| format!("t{n}-{i}")))
        .collect();
    assert_eq!(
        values, expected,
        "the committed transactions, and only them"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_show_a_created_or_grown_topic_with_its_whole_partition_count_at_once() {
    // The operator writes a topic's KafkaPartitions one by one. Were brokers to show each as it
    // appears, clients would hash keys (and coordinators group ids) by a count about to change:
    // a group's commit then went to a coordinator that never saw it join.
    let cluster = Operated::start().await;
    let watchers: Vec<_> = cluster
        .brokers
        .iter()
        .map(|b| {
            let mut images = b.broker.metadata.subscribe();
            tokio::spawn(async move {
                let mut counts = BTreeSet::new();
                let grown = async {
                    while images.changed().await.is_ok() {
                        let image = images.borrow_and_update().clone();
                        counts.extend(image.topic("wide").map(|t| t.partition_count()));
                        if counts.contains(&40) {
                            break;
                        }
                    }
                };
                let done = tokio::time::timeout(Duration::from_secs(120), grown).await;
                (done.is_ok(), counts)
            })
        })
        .collect();
    cluster.plane.create_topic("wide", 24, 1).await;
    served(&cluster, "wide", 24).await;
    let grow = serde_json::json!({"spec": {"partitions": 40}});
    cluster
        .plane
        .api::<KafkaTopic>()
        .patch("wide", &PatchParams::default(), &Patch::Merge(&grow))
        .await
        .unwrap_or_else(|e| panic!("grow KafkaTopic wide: {e}"));
    served(&cluster, "wide", 40).await;
    for watcher in watchers {
        let (grown, counts) = watcher.await.unwrap_or_else(|e| panic!("watcher: {e}"));
        assert!(grown, "the image never showed 40 partitions: {counts:?}");
        assert!(
            counts.is_subset(&BTreeSet::from([0, 24, 40])),
            "partition counts a broker showed: {counts:?}"
        );
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_cannot_renew_fences_itself_loses_its_leaderships_and_gets_them_back() {
    let cluster = Operated::start().await;
    cluster.plane.create_topic("single", 3, 1).await;
    cluster.plane.create_topic("triple", 3, 3).await;
    let single = served(&cluster, "single", 3).await;
    let triple = served(&cluster, "triple", 3).await;
    // The broker leading partition 0 of `single`, and what it leads of `triple`.
    let (_, cut_off, _) = single[0].clone();
    let led_triple: Vec<i64> = triple
        .iter()
        .filter(|(_, leader, _)| *leader == cut_off)
        .map(|(p, _, _)| *p)
        .collect();
    assert!(!led_triple.is_empty(), "leaders spread: {triple:?}");
    // Its followers of `triple` catch up and join the ISR, recorded by the leader (the
    // controller starts every partition with its leader as the only member).
    for broker in &cluster.brokers {
        let incarnation = broker.broker.registrar.as_ref().map(|r| r.incarnation());
        assert_eq!(incarnation, Some(1), "fresh brokers");
    }
    for &p in &led_triple {
        wait_for_isr(&cluster, &format!("triple-{p}"), 3).await;
    }
    let witness = cluster
        .brokers
        .iter()
        .find(|b| b.broker.config.broker_id != cut_off as i32)
        .map(|b| b.address.clone())
        .unwrap_or_default();
    let broker = &cluster.brokers[usize::try_from(cut_off).unwrap_or(0)];
    let replica = wait_until("the broker to lead single-0", || async {
        let replica = broker.broker.replicas.get("single", 0)?;
        replica.acts_as_leader().then_some(replica)
    })
    .await;

    // Cut it off from the API server: its renewals fail from now on.
    let lease = format!("demo-broker-{cut_off}");
    cluster
        .plane
        .server
        .fail_next_object_writes_with(LEASES, &lease, usize::MAX, 503);
    wait_until("the cut-off broker to fence itself", || async {
        (!replica.acts_as_leader()).then_some(())
    })
    .await;
    wait_until(
        "the controller to offline its RF 1 partition and move its RF 3 leaderships to in-sync followers",
        || async {
            let single_now = layout(&witness, "single").await;
            let triple_now = layout(&witness, "triple").await;
            let offline = single_now.first().is_some_and(|(_, l, _)| *l == -1);
            let moved = led_triple.iter().all(|p| {
                triple_now
                    .iter()
                    .any(|(q, l, _)| q == p && *l >= 0 && *l != cut_off)
            });
            (offline && moved).then_some(())
        },
    )
    .await;
    let summary = wait_until(
        "the KafkaTopic to count the leaderless partition",
        || async {
            let topic = cluster.plane.api::<KafkaTopic>().get("single").await.ok()?;
            let status = topic.status?;
            (status.leaderless_partitions == 1).then_some(status)
        },
    )
    .await;
    assert_eq!(summary.placed_partitions, 3);

    // Reconnected: it renews, lifts its fence, and the controller gives its RF 1 partition
    // back to the last member of its ISR.
    cluster
        .plane
        .server
        .fail_next_object_writes_with(LEASES, &lease, 0, 503);
    let back = served(&cluster, "single", 3).await;
    assert_eq!(back[0].1, cut_off, "{back:?}");
    wait_until("the returned broker to lead single-0 again", || async {
        replica.acts_as_leader().then_some(())
    })
    .await;
    cluster.stop().await;
}
