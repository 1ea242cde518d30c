//! `spec.tieredStorage` rendered for the brokers: the `remote.*` keys of `server.properties`
//! (so a change alters the config hash and rolls the brokers like any other config change),
//! the credentials Secret as a volume (kubelet rewrites its files when the Secret changes and
//! the brokers read them again, so rotating keys rolls nothing), and what the operator refuses.

use k8s_openapi::api::core::v1::{KeyToPath, Secret, Volume, VolumeMount};
use tributary_crds::{KafkaClusterSpec, KafkaTopic};

use super::security::{mount, secret_volume};

/// Where the credentials Secret is mounted in broker pods.
pub const CREDENTIALS_DIR: &str = "/etc/tributary-remote-storage";
/// Name of the credentials volume.
const CREDENTIALS_VOLUME: &str = "remote-storage-credentials";
/// File names the broker reads in [`CREDENTIALS_DIR`] (its `--remote-storage-credentials-dir`).
const ACCESS_KEY_ID_FILE: &str = "AWS_ACCESS_KEY_ID";
/// See [`ACCESS_KEY_ID_FILE`].
const SECRET_ACCESS_KEY_FILE: &str = "AWS_SECRET_ACCESS_KEY";

/// The broker settings `tieredStorage` stands for; none without it.
pub(super) fn properties(spec: &KafkaClusterSpec) -> Vec<(String, String)> {
    let Some(tiered) = &spec.tiered_storage else {
        return Vec::new();
    };
    let mut props = vec![
        ("remote.log.storage.system.enable", "true".to_owned()),
        ("remote.storage.url", tiered.url()),
        ("remote.storage.path.style", tiered.path_style().to_string()),
    ];
    let optional = [
        ("remote.storage.endpoint", tiered.endpoint.clone()),
        ("remote.storage.region", tiered.region.clone()),
        (
            "remote.storage.credentials.dir",
            tiered
                .credentials_secret
                .as_ref()
                .map(|_| CREDENTIALS_DIR.to_owned()),
        ),
        (
            "remote.fetch.cache.bytes",
            tiered.fetch_cache_bytes.map(|b| b.to_string()),
        ),
        (
            "remote.log.manager.task.interval.ms",
            tiered.task_interval_ms.map(|ms| ms.to_string()),
        ),
    ];
    props.extend(
        optional
            .into_iter()
            .filter_map(|(key, value)| Some((key, value?))),
    );
    props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The credentials Secret's volume and mount, its keys mapped to the file names the broker
/// reads; none without a Secret.
pub(super) fn volumes(spec: &KafkaClusterSpec) -> (Vec<Volume>, Vec<VolumeMount>) {
    let Some(secret) = spec
        .tiered_storage
        .as_ref()
        .and_then(|t| t.credentials_secret.as_ref())
    else {
        return (Vec::new(), Vec::new());
    };
    let item = |key: &str, path: &str| KeyToPath {
        key: key.to_owned(),
        path: path.to_owned(),
        ..KeyToPath::default()
    };
    let items = vec![
        item(&secret.access_key_id_key, ACCESS_KEY_ID_FILE),
        item(&secret.secret_access_key_key, SECRET_ACCESS_KEY_FILE),
    ];
    (
        vec![secret_volume(
            CREDENTIALS_VOLUME.to_owned(),
            secret.name.clone(),
            Some(items),
        )],
        vec![mount(
            CREDENTIALS_VOLUME.to_owned(),
            CREDENTIALS_DIR.to_owned(),
        )],
    )
}

/// Why the operator refuses the spec's tiered storage, if it does: without
/// `tieredStorage` the brokers would serve topics with `remote.storage.enable=true` from their
/// local disks only, and every consumer would lose the part of the log in the bucket. Kafka
/// refuses the same (a broker with remote storage off fails on such topics); the topics must
/// turn it off first, which Kafka does not allow either, so the bucket stays.
pub fn refusal(spec: &KafkaClusterSpec, topics: &[KafkaTopic]) -> Option<String> {
    if spec.tiered_storage.is_some() {
        return None;
    }
    let mut tiered: Vec<&str> = topics
        .iter()
        .filter(|t| uses_remote_storage(t))
        .filter_map(|t| t.metadata.name.as_deref())
        .collect();
    if tiered.is_empty() {
        return None;
    }
    tiered.sort_unstable();
    let shown = tiered
        .iter()
        .take(5)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    let more = tiered.len().saturating_sub(5);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Some(format!(
        "spec.tieredStorage is required: KafkaTopics {shown}{more} have remote.storage.enable=true \
         and part of their logs is in the bucket; restore spec.tieredStorage"
    ))
}

/// Condition type reporting whether the brokers can reach the bucket's credentials.
pub const TIERED_STORAGE_CONDITION: &str = "TieredStorage";

/// The `TieredStorage` condition: (status, reason, message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialsCondition {
    /// True when the brokers get credentials.
    pub ok: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// What a human should know or do.
    pub message: String,
}

/// The `TieredStorage` condition for the spec and the credentials Secret as read (`None`:
/// it does not exist); `None` without `tieredStorage`. A missing Secret or key leaves new
/// broker pods stuck in ContainerCreating, so it is said here rather than found in pod events.
pub fn credentials_condition(
    spec: &KafkaClusterSpec,
    secret: Option<&Secret>,
) -> Option<CredentialsCondition> {
    let tiered = spec.tiered_storage.as_ref()?;
    let Some(wanted) = &tiered.credentials_secret else {
        return Some(CredentialsCondition {
            ok: true,
            reason: "PodCredentials",
            message: format!(
                "{}: no credentialsSecret, the brokers use their pods' AWS environment",
                tiered.url()
            ),
        });
    };
    let Some(secret) = secret else {
        return Some(CredentialsCondition {
            ok: false,
            reason: "CredentialsSecretNotFound",
            message: format!(
                "Secret {} (tieredStorage.credentialsSecret) does not exist: broker pods cannot \
                 start until it does",
                wanted.name
            ),
        });
    };
    let has = |key: &str| {
        secret.data.as_ref().is_some_and(|d| d.contains_key(key))
            || secret
                .string_data
                .as_ref()
                .is_some_and(|d| d.contains_key(key))
    };
    let missing: Vec<&str> = [&wanted.access_key_id_key, &wanted.secret_access_key_key]
        .into_iter()
        .map(String::as_str)
        .filter(|k| !has(k))
        .collect();
    if !missing.is_empty() {
        return Some(CredentialsCondition {
            ok: false,
            reason: "CredentialsKeyMissing",
            message: format!(
                "Secret {} lacks key(s) {}: broker pods cannot start until it has them",
                wanted.name,
                missing.join(", ")
            ),
        });
    }
    Some(CredentialsCondition {
        ok: true,
        reason: "CredentialsMounted",
        message: format!(
            "{}: credentials from Secret {}, re-read by the brokers when it changes",
            tiered.url(),
            wanted.name
        ),
    })
}

/// Whether a topic tiers its segments.
fn uses_remote_storage(topic: &KafkaTopic) -> bool {
    topic
        .spec
        .config
        .get("remote.storage.enable")
        .and_then(Option::as_deref)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builders::{build, server_properties, Names};
    use tributary_crds::KafkaCluster;

    fn cluster(extra: &str) -> (KafkaCluster, Names) {
        let yaml = format!(
            "apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\n\
             metadata: {{name: demo, namespace: ns, uid: u1}}\n\
             spec:\n  brokers: 3\n{extra}"
        );
        let c: KafkaCluster = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{e}"));
        let names = Names::of(&c).unwrap_or_else(|e| panic!("{e}"));
        (c, names)
    }

    const TIERED: &str = "  tieredStorage:\n    bucket: logs\n    prefix: prod\n    \
        endpoint: http://minio:9000\n    region: eu-west-1\n    taskIntervalMs: 5000\n    \
        credentialsSecret: {name: s3-keys, accessKeyIdKey: id, secretAccessKeyKey: key}\n";

    #[test]
    fn tiered_storage_becomes_broker_settings_and_rolls_the_brokers() {
        let (plain, names) = cluster("");
        let (tiered, _) = cluster(TIERED);
        let props = server_properties(&tiered, &names);
        for line in [
            "remote.log.storage.system.enable=true",
            "remote.storage.url=s3://logs/prod",
            "remote.storage.endpoint=http://minio:9000",
            "remote.storage.region=eu-west-1",
            "remote.storage.path.style=true",
            "remote.storage.credentials.dir=/etc/tributary-remote-storage",
            "remote.log.manager.task.interval.ms=5000",
        ] {
            assert!(props.lines().any(|l| l == line), "missing {line}:\n{props}");
        }
        assert!(!server_properties(&plain, &names).contains("remote."));
        assert!(
            !props.contains("remote.fetch.cache.bytes"),
            "unset stays the broker's default"
        );
        let hash = |c: &KafkaCluster| {
            let objects = build(c).unwrap_or_else(|e| panic!("{e}"));
            objects.config_hash
        };
        assert_ne!(
            hash(&plain),
            hash(&tiered),
            "a changed hash rolls the brokers"
        );
    }

    #[test]
    fn the_credentials_secret_is_a_volume_never_environment() {
        let (tiered, _) = cluster(TIERED);
        let objects = build(&tiered).unwrap_or_else(|e| panic!("{e}"));
        let pod = objects
            .stateful_set
            .spec
            .template
            .spec
            .unwrap_or_else(|| panic!("pod spec"));
        let volume = pod
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find(|v| v.name == CREDENTIALS_VOLUME)
            .unwrap_or_else(|| panic!("credentials volume"));
        let secret = volume.secret.unwrap_or_else(|| panic!("a Secret volume"));
        assert_eq!(secret.secret_name.as_deref(), Some("s3-keys"));
        let items: Vec<(String, String)> = secret
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|i| (i.key, i.path))
            .collect();
        assert_eq!(
            items,
            vec![
                ("id".to_owned(), "AWS_ACCESS_KEY_ID".to_owned()),
                ("key".to_owned(), "AWS_SECRET_ACCESS_KEY".to_owned())
            ]
        );
        let broker = &pod.containers[0];
        let mount = broker
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.name == CREDENTIALS_VOLUME)
            .unwrap_or_else(|| panic!("credentials mount"));
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only, &mount.sub_path),
            (CREDENTIALS_DIR, Some(true), &None),
            "no subPath: kubelet does not update subPath mounts"
        );
        let env = broker.env.clone().unwrap_or_default();
        assert!(
            env.iter().all(|e| e
                .value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_none()),
            "no Secret in the environment: it would never change in a running broker"
        );
    }

    #[test]
    fn the_operators_alert_rules_watch_the_upload_lag_only_with_tiered_storage() {
        let alerts = |extra: &str| -> Vec<String> {
            let (c, names) = cluster(&format!("  monitoring: {{rules: true}}\n{extra}"));
            let rule = crate::builders::monitoring::prometheus_rule(&c, &names)
                .unwrap_or_else(|| panic!("rules are on"));
            rule.data["spec"]["groups"][0]["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["alert"].as_str().map(str::to_owned))
                .collect()
        };
        let tiered = alerts(TIERED);
        assert!(
            tiered.contains(&"TributaryTieredUploadLagHigh".to_owned()),
            "{tiered:?}"
        );
        assert!(tiered.contains(&"TributaryLogDirNearlyFull".to_owned()));
        let plain = alerts("");
        assert!(
            !plain.contains(&"TributaryTieredUploadLagHigh".to_owned()),
            "{plain:?}"
        );
        assert!(plain.contains(&"TributaryLogDirNearlyFull".to_owned()));
    }

    #[test]
    fn the_condition_says_when_the_credentials_secret_or_a_key_is_missing() {
        use k8s_openapi::ByteString;
        use std::collections::BTreeMap;
        let (plain, _) = cluster("");
        let (tiered, _) = cluster(TIERED);
        assert_eq!(credentials_condition(&plain.spec, None), None);
        let missing = credentials_condition(&tiered.spec, None).unwrap_or_else(|| panic!("set"));
        assert_eq!(
            (missing.ok, missing.reason),
            (false, "CredentialsSecretNotFound")
        );
        assert!(missing.message.contains("s3-keys"), "{}", missing.message);
        let secret = |keys: &[&str]| Secret {
            data: Some(
                keys.iter()
                    .map(|k| ((*k).to_owned(), ByteString(b"v".to_vec())))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Secret::default()
        };
        let partial = credentials_condition(&tiered.spec, Some(&secret(&["id"])))
            .unwrap_or_else(|| panic!("set"));
        assert_eq!(
            (partial.ok, partial.reason),
            (false, "CredentialsKeyMissing")
        );
        assert!(
            partial.message.contains("key(s) key"),
            "{}",
            partial.message
        );
        let ready = credentials_condition(&tiered.spec, Some(&secret(&["id", "key"])))
            .unwrap_or_else(|| panic!("set"));
        assert_eq!((ready.ok, ready.reason), (true, "CredentialsMounted"));
        let (pod_env, _) = cluster("  tieredStorage: {bucket: logs}\n");
        let env = credentials_condition(&pod_env.spec, None).unwrap_or_else(|| panic!("set"));
        assert_eq!((env.ok, env.reason), (true, "PodCredentials"));
    }

    #[test]
    fn removing_tiered_storage_is_refused_while_topics_tier() {
        let (plain, _) = cluster("");
        let (tiered, _) = cluster(TIERED);
        let topic = |name: &str, enable: &str| -> KafkaTopic {
            serde_yaml::from_str(&format!(
                "apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {name}}}\n\
                 spec: {{clusterRef: demo, partitions: 1, replicationFactor: 1, \
                 config: {{remote.storage.enable: '{enable}'}}}}\n"
            ))
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let topics = vec![topic("orders", "true"), topic("clicks", "false")];
        let refused = refusal(&plain.spec, &topics).unwrap_or_else(|| panic!("refused"));
        assert!(
            refused.contains("orders") && !refused.contains("clicks"),
            "{refused}"
        );
        assert_eq!(refusal(&tiered.spec, &topics), None);
        assert_eq!(refusal(&plain.spec, &topics[1..]), None);
    }
}
