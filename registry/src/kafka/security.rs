//! How the registry's own Kafka clients authenticate to the cluster: the librdkafka settings
//! for the listener it bootstraps from (TLS trusting the cluster CA, a client certificate for
//! mTLS listeners, SASL SCRAM with its own user), checked before any client is made so that a
//! half-configured registry fails at start-up with the setting named.

use std::path::PathBuf;

/// The cluster listener's security, as flags give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaSecurity {
    /// `security.protocol`: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (PLAINTEXT when unset).
    pub protocol: Option<String>,
    /// CA bundle (PEM) the brokers' certificates are checked against.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for listeners that require one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// SCRAM-SHA-256 or SCRAM-SHA-512 (or PLAIN).
    pub sasl_mechanism: Option<String>,
    /// The SASL user.
    pub sasl_username: Option<String>,
    /// The SASL password.
    pub sasl_password: Option<String>,
    /// Check the chain to the CA but not the host name: brokers reached at pod IPs, which
    /// their certificates do not name (as the brokers check each other).
    pub skip_hostname_verification: bool,
}

/// Why the settings cannot work; names the flag to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Kafka connection settings: {0}")]
pub struct SecurityError(String);

impl KafkaSecurity {
    /// The librdkafka properties, or why the settings are incomplete or contradictory.
    pub fn properties(&self) -> Result<Vec<(&'static str, String)>, SecurityError> {
        let bad = |m: &str| Err(SecurityError(m.to_owned()));
        let protocol = self
            .protocol
            .as_deref()
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) =
            match protocol.as_str() {
                "PLAINTEXT" => (false, false),
                "SSL" => (true, false),
                "SASL_PLAINTEXT" => (false, true),
                "SASL_SSL" => (true, true),
                _ => return bad(
                    "--kafka-security-protocol takes PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                ),
            };
        let mut props = vec![("security.protocol", protocol.clone())];
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        if tls {
            if let Some(ca) = &self.ca {
                props.push(("ssl.ca.location", path(ca)));
            }
            if self.skip_hostname_verification {
                props.push(("ssl.endpoint.identification.algorithm", "none".to_owned()));
            }
            match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => {
                    props.push(("ssl.certificate.location", path(cert)));
                    props.push(("ssl.key.location", path(key)));
                }
                (None, None) => {}
                _ => return bad("--kafka-cert and --kafka-key go together"),
            }
        } else if self.ca.is_some() || self.cert.is_some() || self.key.is_some() {
            return bad(
                "--kafka-ca, --kafka-cert and --kafka-key need --kafka-security-protocol SSL or SASL_SSL",
            );
        }
        if sasl {
            let (Some(mechanism), Some(user), Some(password)) = (
                &self.sasl_mechanism,
                &self.sasl_username,
                &self.sasl_password,
            ) else {
                return bad(
                    "a SASL protocol needs --kafka-sasl-mechanism, --kafka-sasl-username and the \
                     password (TRIBUTARY_REGISTRY_KAFKA_SASL_PASSWORD)",
                );
            };
            props.push(("sasl.mechanism", mechanism.to_ascii_uppercase()));
            props.push(("sasl.username", user.clone()));
            props.push(("sasl.password", password.clone()));
        } else if self.sasl_mechanism.is_some() || self.sasl_username.is_some() {
            return bad("SASL settings need --kafka-security-protocol SASL_PLAINTEXT or SASL_SSL");
        }
        Ok(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_ssl_trusts_the_ca_and_logs_in_with_scram() {
        let s = KafkaSecurity {
            protocol: Some("sasl_ssl".into()),
            ca: Some("/certs/ca.crt".into()),
            sasl_mechanism: Some("SCRAM-SHA-512".into()),
            sasl_username: Some("registry".into()),
            sasl_password: Some("pw".into()),
            ..KafkaSecurity::default()
        };
        assert_eq!(
            s.properties(),
            Ok(vec![
                ("security.protocol", "SASL_SSL".to_owned()),
                ("ssl.ca.location", "/certs/ca.crt".to_owned()),
                ("sasl.mechanism", "SCRAM-SHA-512".to_owned()),
                ("sasl.username", "registry".to_owned()),
                ("sasl.password", "pw".to_owned()),
            ])
        );
    }

    #[test]
    fn mtls_presents_the_certificate() {
        let s = KafkaSecurity {
            protocol: Some("SSL".into()),
            ca: Some("/c/ca.crt".into()),
            cert: Some("/c/tls.crt".into()),
            key: Some("/c/tls.key".into()),
            ..KafkaSecurity::default()
        };
        let props = s.properties().unwrap_or_else(|e| panic!("{e}"));
        assert!(!props
            .iter()
            .any(|(k, _)| *k == "ssl.endpoint.identification.algorithm"));
        let by_ip = KafkaSecurity {
            skip_hostname_verification: true,
            ..s.clone()
        };
        assert!(by_ip
            .properties()
            .unwrap_or_default()
            .contains(&("ssl.endpoint.identification.algorithm", "none".to_owned())));
        assert!(props.contains(&("ssl.certificate.location", "/c/tls.crt".to_owned())));
        assert!(props.contains(&("ssl.key.location", "/c/tls.key".to_owned())));
        assert_eq!(
            KafkaSecurity::default().properties(),
            Ok(vec![("security.protocol", "PLAINTEXT".to_owned())])
        );
    }

    #[test]
    fn incomplete_or_contradictory_settings_name_the_flag() {
        let err = |s: KafkaSecurity| {
            s.properties()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(err(KafkaSecurity {
            protocol: Some("SASL_SSL".into()),
            sasl_mechanism: Some("SCRAM-SHA-256".into()),
            ..KafkaSecurity::default()
        })
        .contains("--kafka-sasl-username"));
        assert!(err(KafkaSecurity {
            ca: Some("/ca".into()),
            ..KafkaSecurity::default()
        })
        .contains("SSL"));
        assert!(err(KafkaSecurity {
            protocol: Some("SSL".into()),
            cert: Some("/c".into()),
            ..KafkaSecurity::default()
        })
        .contains("--kafka-key"));
        assert!(err(KafkaSecurity {
            protocol: Some("TLS".into()),
            ..KafkaSecurity::default()
        })
        .contains("PLAINTEXT, SSL"));
    }
}
