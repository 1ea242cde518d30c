//! S3 credentials read from files in a directory (a mounted Kubernetes Secret) and read again
//! whenever those files change, so rotating the Secret reaches a running broker without a
//! restart.
//!
//! Kubelet updates a Secret volume atomically: it writes the new files into a fresh hidden
//! directory and swaps the `..data` symlink the visible names point through. Every request
//! asks [`FileCredentialProvider::get_credential`], which compares the files' identity (device,
//! inode, size, modification time, following symlinks) with what it read last: a `stat` per
//! file per request, and a read only after a change. While a swap is half-done (a file missing
//! or empty), the credentials read before stay in use and the next request tries again.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use object_store::aws::AwsCredential;
use object_store::CredentialProvider;
use parking_lot::Mutex;

/// File holding the access key id (the operator maps the Secret's key to this name).
pub const ACCESS_KEY_ID_FILE: &str = "AWS_ACCESS_KEY_ID";
/// File holding the secret access key.
pub const SECRET_ACCESS_KEY_FILE: &str = "AWS_SECRET_ACCESS_KEY";
/// Optional file holding a session token (temporary credentials).
pub const SESSION_TOKEN_FILE: &str = "AWS_SESSION_TOKEN";

/// Why the credential files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A required file is missing or unreadable.
    #[error("cannot read S3 credentials from {path}: {source} (is the credentials Secret mounted with that key?)")]
    Read {
        /// The file.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A required file is empty.
    #[error("S3 credentials file {path} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// What identifies one version of a file: a rewrite or a symlink swap changes it.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The credentials last read, and the stamps of the files they were read from.
#[derive(Debug)]
struct Cached {
    stamps: Vec<Stamp>,
    credential: Arc<AwsCredential>,
}

/// Hands each S3 request the credentials the directory's files hold now.
#[derive(Debug)]
pub struct FileCredentialProvider {
    dir: PathBuf,
    cached: Mutex<Option<Cached>>,
}

impl FileCredentialProvider {
    /// A provider reading `dir`; nothing is read until the first request.
    pub fn new(dir: impl Into<PathBuf>) -> FileCredentialProvider {
        FileCredentialProvider {
            dir: dir.into(),
            cached: Mutex::new(None),
        }
    }

    fn files(&self) -> [PathBuf; 3] {
        [
            self.dir.join(ACCESS_KEY_ID_FILE),
            self.dir.join(SECRET_ACCESS_KEY_FILE),
            self.dir.join(SESSION_TOKEN_FILE),
        ]
    }

    /// The current credentials: those read before while the files are unchanged, else read
    /// afresh; if reading fails, the previous ones (a rotation in progress) or the error.
    pub fn current(&self) -> Result<Arc<AwsCredential>, CredentialsError> {
        let files = self.files();
        let stamps: Vec<Stamp> = files.iter().map(|f| stamp(f)).collect();
        let mut cached = self.cached.lock();
        if let Some(c) = cached.as_ref().filter(|c| c.stamps == stamps) {
            return Ok(Arc::clone(&c.credential));
        }
        match read_credential(&files) {
            Ok(credential) => {
                let credential = Arc::new(credential);
                if cached.is_some() {
                    tracing::info!(dir = %self.dir.display(), "S3 credentials changed; using the new ones");
                }
                *cached = Some(Cached {
                    stamps,
                    credential: Arc::clone(&credential),
                });
                Ok(credential)
            }
            Err(error) => match cached.as_ref() {
                Some(c) => {
                    tracing::warn!(%error, "keeping the S3 credentials read before");
                    Ok(Arc::clone(&c.credential))
                }
                None => Err(error),
            },
        }
    }
}

/// Reads the key id, the secret and the optional token, trimming the trailing newline files
/// written by hand usually end with.
fn read_credential(files: &[PathBuf; 3]) -> Result<AwsCredential, CredentialsError> {
    let required = |path: &PathBuf| -> Result<String, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
            path: path.clone(),
            source,
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(CredentialsError::Empty { path: path.clone() });
        }
        Ok(text.to_owned())
    };
    let token = std::fs::read_to_string(&files[2])
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    Ok(AwsCredential {
        key_id: required(&files[0])?,
        secret_key: required(&files[1])?,
        token,
    })
}

#[async_trait]
impl CredentialProvider for FileCredentialProvider {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        // A stat per file, and a read of a few bytes after a change: cheap enough to do inline.
        self.current().map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the files the way kubelet updates a Secret volume: a new hidden directory, then
    /// an atomic swap of the `..data` symlink the visible names point through.
    pub(crate) fn kubelet_write(dir: &Path, generation: u32, key_id: &str, secret: &str) {
        let version = format!("..{generation}");
        let target = dir.join(&version);
        std::fs::create_dir(&target).expect("version directory");
        std::fs::write(target.join(ACCESS_KEY_ID_FILE), format!("{key_id}\n")).expect("write");
        std::fs::write(target.join(SECRET_ACCESS_KEY_FILE), secret).expect("write");
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).expect("symlink");
        std::fs::rename(&tmp, dir.join("..data")).expect("swap");
        for name in [ACCESS_KEY_ID_FILE, SECRET_ACCESS_KEY_FILE] {
            let visible = dir.join(name);
            if std::fs::symlink_metadata(&visible).is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), visible).expect("link");
            }
        }
    }

    #[test]
    fn credentials_follow_a_secret_volume_update_and_survive_a_half_done_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider = FileCredentialProvider::new(dir.path());
        assert!(
            matches!(provider.current(), Err(CredentialsError::Read { .. })),
            "nothing mounted yet is an error naming the file"
        );
        kubelet_write(dir.path(), 1, "KEY1", "secret1");
        let first = provider.current().expect("credentials");
        assert_eq!(
            (first.key_id.as_str(), first.secret_key.as_str()),
            ("KEY1", "secret1"),
            "the trailing newline is not part of the key"
        );
        assert_eq!(first.token, None);
        kubelet_write(dir.path(), 2, "KEY2", "secret2");
        let second = provider.current().expect("credentials");
        assert_eq!(
            (second.key_id.as_str(), second.secret_key.as_str()),
            ("KEY2", "secret2")
        );
        // A rotation caught half-way (the secret missing) keeps the last good credentials.
        std::fs::remove_file(dir.path().join("..2").join(SECRET_ACCESS_KEY_FILE)).expect("rm");
        assert_eq!(provider.current().expect("kept").key_id, "KEY2");
    }

    /// A stand-in S3 endpoint that answers every request 200 and records the access key id
    /// each request was signed with (`Credential=<key id>/...` of the Authorization header).
    async fn recording_endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let mut conn = BufReader::new(socket);
                    loop {
                        let (mut length, mut key) = (0usize, None);
                        loop {
                            let mut line = String::new();
                            match conn.read_line(&mut line).await {
                                Ok(0) | Err(_) => return,
                                Ok(_) => {}
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if lower.starts_with("authorization:") {
                                key = line
                                    .split("Credential=")
                                    .nth(1)
                                    .and_then(|c| c.split('/').next())
                                    .map(str::to_owned);
                            }
                        }
                        let mut body = vec![0u8; length];
                        if conn.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        record.lock().push(key.unwrap_or_default());
                        let answer = "HTTP/1.1 200 OK\r\nETag: \"e\"\r\nContent-Length: 0\r\n\r\n";
                        if conn.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn the_upload_after_a_secret_rotation_is_signed_with_the_new_key() {
        use crate::settings::RemoteStorageSettings;
        use crate::store::RemoteStorage;
        let (endpoint, seen) = recording_endpoint().await;
        let dir = tempfile::tempdir().expect("tempdir");
        kubelet_write(dir.path(), 1, "OLDKEY", "old-secret");
        let settings = RemoteStorageSettings {
            url: "s3://bucket/cluster".into(),
            endpoint: Some(endpoint),
            region: Some("us-east-1".into()),
            credentials_dir: Some(dir.path().to_path_buf()),
            ..RemoteStorageSettings::default()
        };
        settings.check().expect("valid settings");
        let storage = RemoteStorage::new(settings.open().expect("store"));
        let object = object_store::path::Path::from("cluster/t/0/object");
        storage
            .put(&object, bytes::Bytes::from_static(b"one"))
            .await
            .expect("first upload");
        kubelet_write(dir.path(), 2, "NEWKEY", "new-secret");
        storage
            .put(&object, bytes::Bytes::from_static(b"two"))
            .await
            .expect("second upload");
        assert_eq!(*seen.lock(), vec!["OLDKEY".to_owned(), "NEWKEY".to_owned()]);
    }

    #[test]
    fn an_empty_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(ACCESS_KEY_ID_FILE), "\n").expect("write");
        std::fs::write(dir.path().join(SECRET_ACCESS_KEY_FILE), "s").expect("write");
        let provider = FileCredentialProvider::new(dir.path());
        assert!(matches!(
            provider.current(),
            Err(CredentialsError::Empty { .. })
        ));
    }
}
