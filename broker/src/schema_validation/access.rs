//! How the broker reaches its schema registry, from Confluent Server's settings: the URL
//! (`confluent.schema.registry.url`), for an https:// registry a PEM trust store and
//! optionally a PEM key store presenting a client certificate (`confluent.ssl.truststore.*`,
//! `confluent.ssl.keystore.*`; PEM as this broker's own listeners read, KIP-651), and HTTP basic
//! credentials (`confluent.basic.auth.credentials.source=USER_INFO` with
//! `confluent.basic.auth.user.info=<user>:<password>`).

use std::path::PathBuf;
use std::time::Duration;

use tributary_registry_client::{ClientError, RegistryHttp, TlsSettings};

use crate::security::settings::SecurityProps;

const TRUSTSTORE_TYPE: &str = "confluent.ssl.truststore.type";
const TRUSTSTORE: &str = "confluent.ssl.truststore.location";
const KEYSTORE_TYPE: &str = "confluent.ssl.keystore.type";
const KEYSTORE: &str = "confluent.ssl.keystore.location";
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

/// A client of the registry at `url` as `props` say to reach it.
pub fn registry_client(
    url: &str,
    props: &SecurityProps,
    timeout: Duration,
) -> Result<RegistryHttp, AccessError> {
    for key in [TRUSTSTORE_TYPE, KEYSTORE_TYPE] {
        if let Some(value) = props.global(key) {
            if !value.eq_ignore_ascii_case("PEM") {
                let value = value.to_owned();
                return Err(AccessError::StoreType { key, value });
            }
        }
    }
    let read = |key: &'static str| {
        props
            .global(key)
            .map(|path| {
                std::fs::read(path).map_err(|source| AccessError::Read {
                    key,
                    path: PathBuf::from(path),
                    source,
                })
            })
            .transpose()
    };
    let tls = match (read(TRUSTSTORE)?, read(KEYSTORE)?) {
        (Some(ca), keystore) => {
            // One PEM file holds the key store's certificate chain and its key.
            let identity = keystore.as_deref().map(|pem| (pem, pem));
            Some(TlsSettings::new(&ca, identity, None)?)
        }
        (None, Some(_)) => return Err(AccessError::KeystoreWithoutTruststore),
        (None, None) => None,
    };
    let client = RegistryHttp::new(url, tls, timeout)?;
    match (props.global(CREDENTIALS_SOURCE), props.global(USER_INFO)) {
        (Some(source), _) if !source.eq_ignore_ascii_case("USER_INFO") => {
            Err(AccessError::CredentialsSource(source.to_owned()))
        }
        (_, Some(info)) => {
            let (user, password) = info.split_once(':').ok_or(AccessError::UserInfo)?;
            Ok(client.with_basic_auth(user, password)?)
        }
        (Some(_), None) => Err(AccessError::UserInfo),
        (None, None) => Ok(client),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn props(pairs: &[(&str, &str)]) -> SecurityProps {
        let values: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SecurityProps::new(values)
    }

    fn client(pairs: &[(&str, &str)]) -> Result<RegistryHttp, AccessError> {
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
}
