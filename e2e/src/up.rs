//! `tributary-e2e up`: a multi-broker development cluster on one machine. Starts the local
//! control plane, installs `charts/tributary` with the real helm (the chart's images run the
//! `target/debug` binaries, or `target/release` ones for benchmarks), applies a KafkaCluster
//! whose listener advertises pod IPs (so clients on the host reach each broker), and waits
//! until it is Ready.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::local::{LocalCluster, LocalConfig};
use crate::tools::{self, Profile};

/// Namespace of the chart's release.
pub const RELEASE_NAMESPACE: &str = "tributary-system";
/// Name of the chart's release.
pub const RELEASE: &str = "tributary";

/// What to start.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Brokers of the KafkaCluster.
    pub brokers: u32,
    /// Namespace of the KafkaCluster.
    pub namespace: String,
    /// Name of the KafkaCluster.
    pub name: String,
    /// Control plane settings (state directory, images, watchdog, port).
    pub local: LocalConfig,
    /// Which build of the broker and operator is made before starting (when stale); the
    /// images of [`UpOptions::local`] should run that build's binaries.
    pub profile: Profile,
    /// Whether to build them at all (false: run the binaries as they are, e.g. the one build a
    /// benchmark measures throughout).
    pub build: bool,
    /// The KafkaCluster's broker Lease timing (None: the CRD's defaults).
    pub lease: Option<LeaseTiming>,
    /// Extra `helm install --set` values.
    pub helm_set: Vec<String>,
    /// KafkaCluster `spec.config` entries beside (or replacing) the defaults.
    pub config: Vec<(String, String)>,
    /// Turn on the brokers' authorizer (`spec.authorization: {type: simple}`).
    pub authorization: bool,
    /// How long the cluster may take to become Ready.
    pub timeout: Duration,
}

/// `spec.coordination` of a KafkaCluster: how long a broker Lease lasts without renewal and
/// how often brokers renew it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// `leaseDurationSeconds`.
    pub duration_seconds: u32,
    /// The renew interval: `renewIntervalSeconds` when whole seconds, else
    /// `renewIntervalMilliseconds`.
    pub renew_interval_ms: u32,
}

impl LeaseTiming {
    /// The `spec.coordination` block of a KafkaCluster manifest.
    fn manifest(&self) -> String {
        let renew = if self.renew_interval_ms.is_multiple_of(1000) {
            format!("renewIntervalSeconds: {}", self.renew_interval_ms / 1000)
        } else {
            format!("renewIntervalMilliseconds: {}", self.renew_interval_ms)
        };
        format!(
            "  coordination:\n    leaseDurationSeconds: {}\n    {renew}\n",
            self.duration_seconds
        )
    }
}

/// What the KafkaCluster of `up` looks like besides its name and namespace.
#[derive(Clone, Debug, Default)]
pub struct ClusterShape {
    /// Brokers.
    pub brokers: u32,
    /// Broker Lease timing (None: the CRD's defaults).
    pub lease: Option<LeaseTiming>,
    /// `spec.config` entries beside (or replacing) the defaults.
    pub config: Vec<(String, String)>,
    /// Whether the authorizer is on.
    pub authorization: bool,
}

/// The KafkaCluster of `up`: `examples/kafka-cluster.yaml`'s shape, sized for one machine,
/// advertising pod IPs.
pub fn kafka_cluster(name: &str, namespace: &str, shape: &ClusterShape) -> String {
    let brokers = shape.brokers;
    let replication = brokers.min(3);
    // acks=all survives the loss of one replica, as Kafka's usual production settings.
    let min_isr = replication.saturating_sub(1).max(1);
    let coordination = shape.lease.map_or_else(String::new, |l| l.manifest());
    let mut config: std::collections::BTreeMap<String, String> = [
        ("default.replication.factor", replication),
        ("min.insync.replicas", min_isr),
        ("transaction.state.log.replication.factor", replication),
        ("transaction.state.log.min.isr", min_isr),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_string()))
    .collect();
    config.extend(shape.config.iter().cloned());
    let config: String = config
        .iter()
        .map(|(k, v)| format!("    {k}: {}\n", serde_json::Value::String(v.clone())))
        .collect();
    let authorization = if shape.authorization {
        "  authorization:\n    type: simple\n"
    } else {
        ""
    };
    format!(
        "apiVersion: tributary.dev/v1alpha1
kind: KafkaCluster
metadata:
  name: {name}
  namespace: {namespace}
spec:
  brokers: {brokers}
  config:
{config}{authorization}  storage:
    size: 1Gi
    deleteClaim: true
  listeners:
    - name: PLAIN
      port: 9092
      advertise: PodIP
  terminationGracePeriodSeconds: 30
{coordination}"
    )
}

/// A started development cluster.
pub struct Up {
    /// The control plane and its processes.
    pub cluster: LocalCluster,
    /// Where Kafka clients bootstrap (`ip:port,...`).
    pub bootstrap: String,
    /// The state directory's lock, held while the cluster runs.
    _lock: StateLock,
}

/// Polls the KafkaCluster until its Ready condition is True; returns its status.
pub async fn wait_ready(
    cluster: &LocalCluster,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> crate::Result<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let obj = cluster
            .server()
            .get("tributary.dev/kafkaclusters", namespace, name);
        let status = obj
            .as_ref()
            .map(|o| o["status"].clone())
            .unwrap_or_default();
        let ready = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        let generation = obj.as_ref().map(|o| o["metadata"]["generation"].clone());
        if ready && generation.as_ref() == Some(&status["observedGeneration"]) {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(crate::Error::Timeout {
                what: format!("KafkaCluster {namespace}/{name} to become Ready (status: {status})"),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One `up` at a time on a state directory: an exclusive lock on `<state dir>.lock`, held as
/// long as the process that took it lives (the kernel drops it however the process ends), so
/// a second `up` never wipes the directory under a running cluster's brokers.
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

/// The lock file of `state_dir`: beside it, as the directory itself is wiped.
fn lock_path(state_dir: &Path) -> PathBuf {
    let mut name = state_dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the lock of `state_dir`, or says which process holds it.
pub fn lock_state_dir(state_dir: &Path) -> crate::Result<StateLock> {
    use rustix::fs::{flock, FlockOperation};
    use std::io::{Read, Seek, Write};
    let path = lock_path(state_dir);
    let io = |source| crate::Error::Io {
        path: path.clone(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = match holder.trim() {
            "" => "a process that has not written its pid yet".to_owned(),
            pid => format!("pid {pid}"),
        };
        return Err(crate::Error::StateDirBusy {
            state_dir: state_dir.to_owned(),
            holder,
        });
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(StateLock { _file: file })
}

/// The pid of the `up` running on `state_dir`, if one is: whoever holds its lock.
pub fn running_on(state_dir: &Path) -> Option<u32> {
    use rustix::fs::{flock, FlockOperation};
    let file = std::fs::File::open(lock_path(state_dir)).ok()?;
    if flock(&file, FlockOperation::NonBlockingLockShared).is_ok() {
        return None;
    }
    std::fs::read_to_string(lock_path(state_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Starts everything; the caller stops it with [`LocalCluster::shutdown`]. Fails at once,
/// naming the running one, when another `up` holds the state directory.
pub async fn up(options: UpOptions) -> crate::Result<Up> {
    let lock = lock_state_dir(&options.local.state_dir)?;
    if options.build {
        tools::build_profile(options.profile, tools::CLUSTER_BINARIES).await?;
    }
    let io = |path: PathBuf| move |source| crate::Error::Io { path, source };
    let state = options.local.state_dir.clone();
    if state.exists() {
        std::fs::remove_dir_all(&state).map_err(io(state.clone()))?;
    }
    std::fs::create_dir_all(&state).map_err(io(state.clone()))?;
    let cluster = LocalCluster::start(options.local.clone()).await?;
    let kubeconfig = cluster.kubeconfig().as_os_str().to_owned();
    let env: [(&str, &OsStr); 1] = [("KUBECONFIG", &kubeconfig)];
    let timeout = format!("{}s", options.timeout.as_secs());
    let mut args = vec![
        "install",
        RELEASE,
        "charts/tributary",
        "--namespace",
        RELEASE_NAMESPACE,
        "--create-namespace",
        "--wait",
        "--timeout",
        &timeout,
    ];
    for set in &options.helm_set {
        args.extend(["--set", set.as_str()]);
    }
    tools::run(&tools::helm(), &args, &env).await?;
    let manifest = state.join("kafka-cluster.yaml");
    std::fs::write(
        &manifest,
        kafka_cluster(
            &options.name,
            &options.namespace,
            &ClusterShape {
                brokers: options.brokers,
                lease: options.lease,
                config: options.config.clone(),
                authorization: options.authorization,
            },
        ),
    )
    .map_err(io(manifest.clone()))?;
    let ns = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
        options.namespace
    );
    let ns_file = state.join("namespace.yaml");
    std::fs::write(&ns_file, ns).map_err(io(ns_file.clone()))?;
    let (ns_path, manifest_path) = (ns_file.to_string_lossy(), manifest.to_string_lossy());
    tools::run(
        &tools::kubectl(),
        &["apply", "-f", &ns_path, "-f", &manifest_path],
        &env,
    )
    .await?;
    let status = wait_ready(&cluster, &options.namespace, &options.name, options.timeout).await?;
    let bootstrap = status["bootstrapServers"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Up {
        cluster,
        bootstrap,
        _lock: lock,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_up_on_the_same_state_directory_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("up");
        let first = lock_state_dir(&state).expect("the first takes it");
        let refused = lock_state_dir(&state).expect_err("the second is refused");
        let message = refused.to_string();
        assert!(
            message.contains(&format!("pid {}", std::process::id()))
                && message.contains("down --state-dir")
                && message.contains("--replace"),
            "{message}"
        );
        assert!(
            lock_state_dir(&dir.path().join("other")).is_ok(),
            "another directory is free"
        );
        assert_eq!(running_on(&state), Some(std::process::id()));
        drop(first);
        assert_eq!(running_on(&state), None);
        assert!(
            lock_state_dir(&state).is_ok(),
            "free again once the first ends"
        );
    }

    #[test]
    fn whole_second_renewals_use_seconds_and_fractions_use_milliseconds() {
        let whole = LeaseTiming {
            duration_seconds: 9,
            renew_interval_ms: 2000,
        };
        let shape = |lease| ClusterShape {
            brokers: 3,
            lease,
            ..ClusterShape::default()
        };
        let manifest = kafka_cluster("c", "ns", &shape(Some(whole)));
        assert!(
            manifest.contains("leaseDurationSeconds: 9\n    renewIntervalSeconds: 2\n"),
            "{manifest}"
        );
        let fraction = LeaseTiming {
            duration_seconds: 2,
            renew_interval_ms: 500,
        };
        let manifest = kafka_cluster("c", "ns", &shape(Some(fraction)));
        assert!(
            manifest.contains("leaseDurationSeconds: 2\n    renewIntervalMilliseconds: 500\n"),
            "{manifest}"
        );
        assert!(!kafka_cluster("c", "ns", &shape(None)).contains("coordination"));
    }

    #[test]
    fn config_entries_join_or_replace_the_defaults_and_authorization_turns_the_authorizer_on() {
        let manifest = kafka_cluster(
            "c",
            "ns",
            &ClusterShape {
                brokers: 3,
                config: vec![
                    ("num.partitions".into(), "4".into()),
                    ("min.insync.replicas".into(), "1".into()),
                ],
                authorization: true,
                ..ClusterShape::default()
            },
        );
        let parsed: serde_json::Value = serde_yaml::from_str(&manifest).expect("yaml");
        let config = &parsed["spec"]["config"];
        assert_eq!(config["num.partitions"], "4");
        assert_eq!(config["min.insync.replicas"], "1");
        assert_eq!(config["default.replication.factor"], "3");
        assert_eq!(parsed["spec"]["authorization"]["type"], "simple");
    }
}
