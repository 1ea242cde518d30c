//! `KafkaCluster.spec.tieredStorage`: the S3-compatible bucket the brokers copy closed
//! segments to (KIP-405), and the Secret holding the keys to it.
//!
//! The operator renders it into the brokers' `server.properties` (the
//! `remote.log.storage.system.enable` and `remote.storage.*` keys) and mounts the credentials
//! Secret as a volume, never as environment variables: kubelet rewrites a mounted Secret when
//! it changes, and the brokers read the files again, so rotating the keys needs no restart.

// The KubeSchema derive copies each validated struct into a private helper type, which the
// unreachable_pub lint reports; the real types are exported from lib.rs.
#![allow(unreachable_pub)]

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Key of the access key id in the credentials Secret by default (the AWS variable's name).
pub const DEFAULT_ACCESS_KEY_ID_KEY: &str = "AWS_ACCESS_KEY_ID";
/// Key of the secret access key in the credentials Secret by default.
pub const DEFAULT_SECRET_ACCESS_KEY_KEY: &str = "AWS_SECRET_ACCESS_KEY";

/// Tiered storage of the cluster's brokers. Topics opt in with `remote.storage.enable=true`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("!has(self.endpoint) || self.endpoint.matches('^https?://[^/?#\\\\s]+/?$')").message("tieredStorage.endpoint must be the http:// or https:// URL of the S3 server without a path, e.g. http://minio.storage.svc:9000"),
    validation = kube::core::Rule::new("!has(self.prefix) || !self.prefix.contains('//')").message("tieredStorage.prefix must not contain empty path segments (//)"),
)]
pub struct TieredStorage {
    /// URL of an S3-compatible server (MinIO, Ceph, moto...); AWS S3 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub endpoint: Option<String>,
    /// The bucket; it must exist (the brokers do not create it).
    #[schemars(
        length(min = 3, max = 63),
        regex(pattern = r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
    )]
    pub bucket: String,
    /// Key prefix of every object of this cluster, so clusters can share a bucket; the bucket's
    /// root when unset. Changing it leaves the objects under the old prefix unread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 512),
        regex(pattern = r"^[A-Za-z0-9!_.*'()/-]+$")
    )]
    pub prefix: Option<String>,
    /// S3 region; the pod's `AWS_REGION`, else us-east-1, when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which most S3-compatible servers need;
    /// unset means true with an `endpoint`, false (virtual-hosted style) for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// The Secret holding the keys, mounted into the brokers and re-read when it changes.
    /// Unset: the brokers use what their pods' environment gives (IAM roles for service
    /// accounts, instance profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<CredentialsSecret>,
    /// Bytes of remote segments each broker caches in memory for fetches (Kafka's
    /// `remote.fetch` cache); the broker's default (64 MiB) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub fetch_cache_bytes: Option<i64>,
    /// How often leaders look for segments to upload and remote segments to expire, in
    /// milliseconds (Kafka's `remote.log.manager.task.interval.ms`; 30000 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 3_600_000))]
    pub task_interval_ms: Option<i64>,
}

impl TieredStorage {
    /// The `s3://bucket/prefix` URL the brokers take.
    pub fn url(&self) -> String {
        match self.prefix.as_deref().map(|p| p.trim_matches('/')) {
            Some(prefix) if !prefix.is_empty() => format!("s3://{}/{prefix}", self.bucket),
            _ => format!("s3://{}", self.bucket),
        }
    }

    /// Whether requests are path-style: as set, else only for a non-AWS endpoint.
    pub fn path_style(&self) -> bool {
        self.path_style.unwrap_or(self.endpoint.is_some())
    }
}

/// A Secret in the cluster's namespace holding S3 keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("self.accessKeyIdKey != self.secretAccessKeyKey").message("tieredStorage.credentialsSecret: accessKeyIdKey and secretAccessKeyKey must name different keys of the Secret"),
)]
pub struct CredentialsSecret {
    /// Name of the Secret.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key of the Secret holding the access key id.
    #[serde(default = "default_access_key_id_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub access_key_id_key: String,
    /// Key of the Secret holding the secret access key.
    #[serde(default = "default_secret_access_key_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = r"^[-._a-zA-Z0-9]+$"))]
    pub secret_access_key_key: String,
}

fn default_access_key_id_key() -> String {
    DEFAULT_ACCESS_KEY_ID_KEY.to_owned()
}

fn default_secret_access_key_key() -> String {
    DEFAULT_SECRET_ACCESS_KEY_KEY.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> TieredStorage {
        serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_url_joins_bucket_and_prefix_and_path_style_follows_the_endpoint() {
        let aws = parse("bucket: logs\nprefix: /prod/a/\n");
        assert_eq!(aws.url(), "s3://logs/prod/a");
        assert!(!aws.path_style(), "AWS uses virtual-hosted requests");
        let minio = parse("bucket: logs\nendpoint: http://minio:9000\n");
        assert_eq!(minio.url(), "s3://logs");
        assert!(minio.path_style(), "S3-compatible servers want path-style");
        let forced = parse("bucket: logs\nendpoint: http://minio:9000\npathStyle: false\n");
        assert!(!forced.path_style());
    }

    #[test]
    fn secret_keys_default_to_the_aws_variable_names() {
        let t = parse("bucket: logs\ncredentialsSecret: {name: s3-keys}\n");
        let secret = t.credentials_secret.unwrap_or_else(|| panic!("secret"));
        assert_eq!(secret.access_key_id_key, "AWS_ACCESS_KEY_ID");
        assert_eq!(secret.secret_access_key_key, "AWS_SECRET_ACCESS_KEY");
    }
}
