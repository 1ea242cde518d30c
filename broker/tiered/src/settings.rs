//! Where the remote log lives: the broker's remote storage settings and the object store
//! they make (an S3-compatible bucket or a local directory, through one trait).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use super::credentials::FileCredentialProvider;
use super::error::TieredError;

/// The broker's tiered storage settings (`remote.log.storage.system.enable` on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteStorageSettings {
    /// `s3://bucket/prefix` or `file:///directory`.
    pub url: String,
    /// S3 endpoint for S3-compatible servers (MinIO, moto, Ceph); AWS when unset.
    pub endpoint: Option<String>,
    /// S3 region; `AWS_REGION` or us-east-1 when unset.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), which most S3-compatible servers need.
    pub path_style: bool,
    /// Access key; `AWS_ACCESS_KEY_ID` when unset.
    pub access_key_id: Option<String>,
    /// Secret key; `AWS_SECRET_ACCESS_KEY` when unset.
    pub secret_access_key: Option<String>,
    /// A directory holding the credentials as files (a mounted Secret, see
    /// [`super::credentials`]), read again whenever they change; takes the place of the keys
    /// above so a rotated Secret reaches the running broker.
    pub credentials_dir: Option<PathBuf>,
    /// How often leaders look for segments to upload and remote segments to expire.
    pub task_interval: Duration,
    /// Bytes of remote segments kept in memory for fetches.
    pub cache_bytes: u64,
    /// Longest one request to the bucket may take before it counts as failed.
    pub request_timeout: Duration,
    /// Bytes of a remote segment fetched (and cached) at a time: the read-ahead that lets a
    /// consumer going through a segment find its next fetches cached.
    pub read_ahead_bytes: u64,
    /// Longest a fetch waits for the bucket (Kafka's `remote.fetch.max.wait.ms`): past it the
    /// partition is answered with a retriable error while the read goes on into the cache,
    /// rather than the fetch outlasting the client's request timeout.
    pub fetch_max_wait: Duration,
    /// Longest a ListOffsets by timestamp waits for the bucket when the request sets no
    /// `timeout_ms` (below v10, or 0; Kafka's `remote.list.offsets.request.timeout.ms`): past
    /// it the partition is answered REQUEST_TIMED_OUT.
    pub list_offsets_timeout: Duration,
}

impl Default for RemoteStorageSettings {
    fn default() -> Self {
        RemoteStorageSettings {
            url: String::new(),
            endpoint: None,
            region: None,
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            credentials_dir: None,
            task_interval: Duration::from_secs(5),
            cache_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            read_ahead_bytes: 1 << 20,
            fetch_max_wait: Duration::from_millis(500),
            list_offsets_timeout: Duration::from_secs(30),
        }
    }
}

/// A store and the key prefix every object of this cluster goes under.
pub struct Bucket {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// Prefix without leading or trailing slash (may be empty).
    pub prefix: String,
}

impl RemoteStorageSettings {
    /// Checks the URL's form without touching the store (at configuration time).
    pub fn check(&self) -> Result<(), TieredError> {
        let target = parse_url(&self.url)?;
        if self.credentials_dir.is_some()
            && (self.access_key_id.is_some() || self.secret_access_key.is_some())
        {
            return Err(TieredError::Settings(
                "set either the access keys or a credentials directory, not both".to_owned(),
            ));
        }
        if self.list_offsets_timeout.is_zero() {
            return Err(TieredError::Settings(
                "remote.list.offsets.request.timeout.ms must be at least 1".to_owned(),
            ));
        }
        if let (Some(dir), Target::Local { .. }) = (&self.credentials_dir, target) {
            return Err(TieredError::Settings(format!(
                "a credentials directory ({}) is for S3; {} needs none",
                dir.display(),
                self.url
            )));
        }
        Ok(())
    }

    /// Makes the store the settings name. A local directory is created if missing.
    pub fn open(&self) -> Result<Bucket, TieredError> {
        match parse_url(&self.url)? {
            Target::Local { dir } => {
                std::fs::create_dir_all(&dir).map_err(|source| {
                    TieredError::Settings(format!("cannot create {dir}: {source}"))
                })?;
                let store = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| TieredError::Settings(format!("{dir}: {e}")))?;
                Ok(Bucket {
                    store: Arc::new(store),
                    prefix: String::new(),
                })
            }
            Target::S3 { bucket, prefix } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_virtual_hosted_style_request(!self.path_style)
                    .with_client_options(
                        ClientOptions::new()
                            .with_timeout(self.request_timeout)
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_allow_http(true),
                    )
                    .with_retry(RetryConfig {
                        max_retries: 2,
                        retry_timeout: self.request_timeout,
                        ..RetryConfig::default()
                    });
                if let Some(endpoint) = &self.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let region = self
                    .region
                    .clone()
                    .or_else(|| std::env::var("AWS_REGION").ok())
                    .unwrap_or_else(|| "us-east-1".to_owned());
                builder = builder.with_region(region);
                if let Some(key) = &self.access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = &self.secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                if let Some(dir) = &self.credentials_dir {
                    builder = builder.with_credentials(Arc::new(FileCredentialProvider::new(dir)));
                }
                let store = builder
                    .build()
                    .map_err(|e| TieredError::Settings(e.to_string()))?;
                Ok(Bucket {
                    store: Arc::new(store),
                    prefix,
                })
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Target {
    Local { dir: String },
    S3 { bucket: String, prefix: String },
}

fn parse_url(url: &str) -> Result<Target, TieredError> {
    if let Some(dir) = url.strip_prefix("file://") {
        if !dir.starts_with('/') {
            return Err(TieredError::Settings(format!(
                "{url}: a file URL needs an absolute path, as file:///var/lib/tiered"
            )));
        }
        return Ok(Target::Local {
            dir: dir.to_owned(),
        });
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(TieredError::Settings(format!("{url}: no bucket named")));
        }
        return Ok(Target::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        });
    }
    Err(TieredError::Settings(format!(
        "{url}: expected s3://bucket/prefix or file:///directory"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_bucket_and_prefix_or_a_directory() {
        assert_eq!(
            parse_url("s3://logs/cluster-a/").ok(),
            Some(Target::S3 {
                bucket: "logs".into(),
                prefix: "cluster-a".into()
            })
        );
        assert_eq!(
            parse_url("s3://logs").ok(),
            Some(Target::S3 {
                bucket: "logs".into(),
                prefix: String::new()
            })
        );
        assert_eq!(
            parse_url("file:///var/tiered").ok(),
            Some(Target::Local {
                dir: "/var/tiered".into()
            })
        );
        for bad in ["s3://", "file://relative", "gs://b", "/plain/path"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_credentials_directory_excludes_static_keys_and_local_directories() {
        let with_dir = RemoteStorageSettings {
            url: "s3://logs/a".into(),
            credentials_dir: Some(PathBuf::from("/etc/tributary/remote-storage")),
            ..RemoteStorageSettings::default()
        };
        assert!(with_dir.check().is_ok());
        let both = RemoteStorageSettings {
            access_key_id: Some("id".into()),
            ..with_dir.clone()
        };
        assert!(both.check().is_err(), "keys and a directory together");
        let local = RemoteStorageSettings {
            url: "file:///var/tiered".into(),
            ..with_dir
        };
        assert!(local.check().is_err(), "a directory has no credentials");
    }
}
