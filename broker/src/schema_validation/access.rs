//! How the broker reaches its schema registry, from Confluent Server's settings: the URL
//! (`confluent.schema.registry.url`), for an https:// registry a PEM trust store and
//! optionally a PEM key store presenting a client certificate (`confluent.ssl.truststore.*`,
//! `confluent.ssl.keystore.*`, the key also in a file of its own with
//! `confluent.ssl.keystore.key.location`; PEM as this broker's own listeners read, KIP-651), and HTTP basic
//! credentials (`confluent.basic.auth.credentials.source=USER_INFO` with
//! `confluent.basic.auth.user.info=<user>:<password>`).

use std::path::PathBuf;
use std::time::Duration;

use tributary_registry_client::{ClientError, RegistryHttp, TlsSettings};

use crate::security::reload::Reloading;
use crate::security::settings::SecurityProps;

const TRUSTSTORE_TYPE: &str = "confluent.ssl.truststore.type";
const TRUSTSTORE: &str = "confluent.ssl.truststore.location";
const KEYSTORE_TYPE: &str = "confluent.ssl.keystore.type";
const KEYSTORE: &str = "confluent.ssl.keystore.location";
/// The key store's key in a file of its own, as this broker's listeners take
/// `ssl.keystore.key.location` (a Kubernetes TLS Secret keeps `tls.crt` and `tls.key` apart).
const KEY: &str = "confluent.ssl.keystore.key.location";
const CREDENTIALS_SOURCE: &str = "confluent.basic.auth.credentials.source";
const USER_INFO: &str = "confluent.basic.auth.user.info";

/// Settings that cannot reach a registry; the broker does not start with them.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A JKS or PKCS12 store: only PEM files are read.
    #[error("{key}={value}: only PEM is supported")]
    StoreType {
        /// The setting.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A credentials source other than USER_INFO.
    #[error("{CREDENTIALS_SOURCE}={0}: only USER_INFO is supported")]
    CredentialsSource(String),
    /// USER_INFO without `<user>:<password>`.
    #[error("{USER_INFO} must be <user>:<password>")]
    UserInfo,
    /// A store file that cannot be read.
    #[error("{key} {path:?}: {source}")]
    Read {
        /// The setting.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key store without a trust store: the registry's certificate would go unchecked.
    #[error("{KEYSTORE} needs {TRUSTSTORE}")]
    KeystoreWithoutTruststore,
    /// The client refused the URL or the TLS material.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// How to reach the registry, checked once; the client is built from it again whenever the
/// files it reads change (the operator renews the brokers' certificate and the cluster CA in
/// place, as it does for the listeners).
struct Access {
    url: String,
    truststore: Option<PathBuf>,
    keystore: Option<PathBuf>,
    key: Option<PathBuf>,
    user_info: Option<(String, String)>,
    timeout: Duration,
}

impl Access {
    fn of(url: &str, props: &SecurityProps, timeout: Duration) -> Result<Access, AccessError> {
        for key in [TRUSTSTORE_TYPE, KEYSTORE_TYPE] {
            if let Some(value) = props.global(key) {
                if !value.eq_ignore_ascii_case("PEM") {
                    let value = value.to_owned();
                    return Err(AccessError::StoreType { key, value });
                }
            }
        }
        let path = |key| props.global(key).map(PathBuf::from);
        let (truststore, keystore, key) = (path(TRUSTSTORE), path(KEYSTORE), path(KEY));
        if truststore.is_none() && (keystore.is_some() || key.is_some()) {
            return Err(AccessError::KeystoreWithoutTruststore);
        }
        let user_info = match (props.global(CREDENTIALS_SOURCE), props.global(USER_INFO)) {
            (Some(source), _) if !source.eq_ignore_ascii_case("USER_INFO") => {
                return Err(AccessError::CredentialsSource(source.to_owned()))
            }
            (_, Some(info)) => {
                let (user, password) = info.split_once(':').ok_or(AccessError::UserInfo)?;
                Some((user.to_owned(), password.to_owned()))
            }
            (Some(_), None) => return Err(AccessError::UserInfo),
            (None, None) => None,
        };
        Ok(Access {
            url: url.to_owned(),
            truststore,
            keystore,
            key,
            user_info,
            timeout,
        })
    }

    fn files(&self) -> Vec<PathBuf> {
        [&self.truststore, &self.keystore, &self.key]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn client(&self) -> Result<RegistryHttp, AccessError> {
        let read = |key: &'static str, path: &Option<PathBuf>| {
            path.as_ref()
                .map(|path| {
                    std::fs::read(path).map_err(|source| AccessError::Read {
                        key,
                        path: path.clone(),
                        source,
                    })
                })
                .transpose()
        };
        let tls = match read(TRUSTSTORE, &self.truststore)? {
            Some(ca) => {
                let chain = read(KEYSTORE, &self.keystore)?;
                // The key in a file of its own, or after the chain in the key store's file.
                let key = read(KEY, &self.key)?.or_else(|| chain.clone());
                let identity = chain.as_deref().zip(key.as_deref());
                Some(TlsSettings::new(&ca, identity, None)?)
            }
            None => None,
        };
        let client = RegistryHttp::new(&self.url, tls, self.timeout)?;
        Ok(match &self.user_info {
            Some((user, password)) => client.with_basic_auth(user, password)?,
            None => client,
        })
    }
}

/// A client of the registry at `url` as `props` say to reach it, rebuilt when its trust or
/// key store files change (a rebuild that fails keeps the last client).
pub fn registry_client(
    url: &str,
    props: &SecurityProps,
    timeout: Duration,
) -> Result<Reloading<RegistryHttp>, AccessError> {
    let access = Access::of(url, props, timeout)?;
    let first = access.client()?;
    let files = access.files();
    let load = move || access.client().map_err(|e| e.to_string());
    Ok(Reloading::with_value(
        "schema registry client",
        files,
        first,
        Box::new(load),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    fn props(pairs: &[(&str, &str)]) -> SecurityProps {
        let values: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SecurityProps::new(values)
    }

    fn client(pairs: &[(&str, &str)]) -> Result<Reloading<RegistryHttp>, AccessError> {
        registry_client(
            "http://127.0.0.1:8081",
            &props(pairs),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn plain_and_basic_settings_make_a_client() {
        assert!(client(&[]).is_ok());
        assert!(client(&[(CREDENTIALS_SOURCE, "USER_INFO"), (USER_INFO, "a:b:c")]).is_ok());
        assert!(client(&[(USER_INFO, "a:b")]).is_ok());
    }

    #[test]
    fn what_cannot_reach_a_registry_is_refused_with_its_setting_named() {
        let refused = |pairs: &[(&str, &str)]| match client(pairs) {
            Ok(_) => panic!("{pairs:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(refused(&[(TRUSTSTORE_TYPE, "JKS")]).contains(TRUSTSTORE_TYPE));
        assert!(refused(&[(KEYSTORE_TYPE, "PKCS12")]).contains(KEYSTORE_TYPE));
        assert!(refused(&[(CREDENTIALS_SOURCE, "SASL_INHERIT")]).contains("USER_INFO"));
        assert!(refused(&[(USER_INFO, "no-colon")]).contains(USER_INFO));
        assert!(refused(&[(CREDENTIALS_SOURCE, "USER_INFO")]).contains(USER_INFO));
        assert!(refused(&[(TRUSTSTORE, "/nonexistent/ca.pem")]).contains(TRUSTSTORE));
        let dir = tempfile::tempdir().expect("temp dir");
        let keystore = dir.path().join("keystore.pem");
        std::fs::write(&keystore, b"not pem").expect("written");
        let keystore = keystore.to_string_lossy().into_owned();
        assert!(refused(&[(KEYSTORE, &keystore)]).contains(TRUSTSTORE));
        let truststore = dir.path().join("ca.pem");
        std::fs::write(&truststore, b"not pem").expect("written");
        let truststore = truststore.to_string_lossy().into_owned();
        assert!(refused(&[(TRUSTSTORE, &truststore)]).contains("TLS"));
    }

    /// A self-signed CA and a client certificate it signs, as PEM text.
    fn pki() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("client key");
        let params = rcgen::CertificateParams::new(vec!["broker".to_owned()]).expect("params");
        let cert = params
            .signed_by(&key, &ca_cert, &ca_key)
            .expect("client certificate");
        (ca_cert.pem(), cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_key_of_its_own_file_is_read_and_changed_files_rebuild_the_client() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca, cert, key) = pki();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("written");
            path.to_string_lossy().into_owned()
        };
        let (ca_path, cert_path, key_path) = (
            file("ca.crt", &ca),
            file("tls.crt", &cert),
            file("tls.key", &key),
        );
        let combined = file("keystore.pem", &format!("{cert}{key}"));
        let https = |pairs: &[(&str, &str)]| {
            registry_client(
                "https://registry:8081",
                &props(pairs),
                Duration::from_secs(1),
            )
        };
        assert!(https(&[(TRUSTSTORE, &ca_path), (KEYSTORE, &combined)]).is_ok());
        // The certificate alone, its key missing, is no identity.
        assert!(https(&[(TRUSTSTORE, &ca_path), (KEYSTORE, &cert_path)]).is_err());
        let client = https(&[
            (TRUSTSTORE, &ca_path),
            (KEYSTORE, &cert_path),
            (KEY, &key_path),
        ])
        .expect("a chain and its key in two files");
        let first = client.current();
        assert!(
            Arc::ptr_eq(&first, &client.current()),
            "unchanged files keep the client"
        );
        // A renewed CA (another length, as a new bundle has) rebuilds the client.
        let (renewed, _, _) = pki();
        std::fs::write(&ca_path, format!("{ca}{renewed}")).expect("renewed");
        let second = client.current();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "a changed trust store rebuilds the client"
        );
        // A half-written file keeps the last good client.
        std::fs::write(&key_path, "-----BEGIN PRIVATE KEY-----\n").expect("broken");
        assert!(Arc::ptr_eq(&second, &client.current()));
        assert!(https(&[(KEY, &key_path)])
            .expect_err("a key without a trust store")
            .to_string()
            .contains(TRUSTSTORE));
    }
}
