//! The security settings as Kafka names them (`ssl.*`, `sasl.*`, `connections.max.reauth.ms`,
//! the schema registry client's `confluent.ssl.*` and `confluent.basic.auth.*`, and their
//! `listener.name.<listener>.` overrides), kept as one map so each listener reads
//! its own value the way Kafka resolves it.

use std::collections::BTreeMap;

/// Keys this broker reads, with or without a `listener.name.<l>.` (and, for the JAAS entry, a
/// mechanism) prefix. Anything else under `ssl.`/`sasl.` is logged as ignored.
pub const KNOWN_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.endpoint.identification.algorithm",
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.jaas.config",
    "sasl.plain.credentials.location",
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.clock.skew.seconds",
    "connections.max.reauth.ms",
    "authentication.timeout.ms",
    "max.unauthenticated.connections",
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "delegation.token.secret.key",
    "delegation.token.master.key",
    "delegation.token.max.lifetime.ms",
    "delegation.token.expiry.time.ms",
    "delegation.token.expiry.check.interval.ms",
    // How brokers reach the schema registry (Confluent Server's names).
    "confluent.ssl.truststore.type",
    "confluent.ssl.truststore.location",
    "confluent.ssl.keystore.type",
    "confluent.ssl.keystore.location",
    "confluent.ssl.keystore.key.location",
    "confluent.basic.auth.credentials.source",
    "confluent.basic.auth.user.info",
];

/// Whether a properties key belongs in [`SecurityProps`].
pub fn is_security_key(key: &str) -> bool {
    key.starts_with("ssl.")
        || key.starts_with("sasl.")
        || key.starts_with("confluent.ssl.")
        || key.starts_with("confluent.basic.auth.")
        || key.starts_with("listener.name.")
        || KNOWN_KEYS.contains(&key)
}

/// Security settings by their Kafka names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityProps {
    values: BTreeMap<String, String>,
}

impl SecurityProps {
    /// The settings in `values`, keys as Kafka writes them.
    pub fn new(values: BTreeMap<String, String>) -> SecurityProps {
        SecurityProps { values }
    }

    /// `key` for `listener`: `listener.name.<listener, lower case>.<key>`, else `key`.
    pub fn get(&self, listener: &str, key: &str) -> Option<&str> {
        let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.values
            .get(&prefixed)
            .or_else(|| self.values.get(key))
            .map(String::as_str)
    }

    /// `key` for `mechanism` on `listener`:
    /// `listener.name.<listener>.<mechanism, lower case>.<key>`, else [`SecurityProps::get`].
    pub fn get_for_mechanism(&self, listener: &str, mechanism: &str, key: &str) -> Option<&str> {
        let prefixed = format!(
            "listener.name.{}.{}.{key}",
            listener.to_ascii_lowercase(),
            mechanism.to_ascii_lowercase()
        );
        self.values
            .get(&prefixed)
            .map(String::as_str)
            .or_else(|| self.get(listener, key))
    }

    /// Settings from `(key, value)` pairs.
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> SecurityProps {
        SecurityProps::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A broker-wide setting (no listener prefix).
    pub fn global(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Keys that look like security settings but are not read, to be logged.
    pub fn unknown_keys(&self) -> Vec<&str> {
        self.values
            .keys()
            .filter(|key| {
                let base = key
                    .strip_prefix("listener.name.")
                    .and_then(|rest| rest.split_once('.').map(|(_, k)| k))
                    .unwrap_or(key);
                let base = if KNOWN_KEYS.contains(&base) {
                    base
                } else {
                    // A mechanism prefix (`scram-sha-256.sasl.jaas.config`).
                    base.split_once('.').map_or(base, |(_, k)| k)
                };
                !KNOWN_KEYS.contains(&base)
            })
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_and_mechanism_prefixes_override_the_broker_wide_value() {
        let props = SecurityProps::from_pairs(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.external.sasl.enabled.mechanisms",
                "SCRAM-SHA-512",
            ),
            (
                "listener.name.external.plain.sasl.jaas.config",
                "X required;",
            ),
            ("ssl.bogus", "1"),
            ("listener.name.x.scram-sha-256.sasl.jaas.config", "Y;"),
        ]);
        assert_eq!(
            props.get("INTERNAL", "sasl.enabled.mechanisms"),
            Some("PLAIN")
        );
        assert_eq!(
            props.get("EXTERNAL", "sasl.enabled.mechanisms"),
            Some("SCRAM-SHA-512")
        );
        assert_eq!(
            props.get_for_mechanism("EXTERNAL", "PLAIN", "sasl.jaas.config"),
            Some("X required;")
        );
        assert_eq!(
            props.get_for_mechanism("INTERNAL", "PLAIN", "sasl.jaas.config"),
            None
        );
        assert_eq!(props.unknown_keys(), ["ssl.bogus"]);
        assert!(is_security_key("connections.max.reauth.ms"));
        assert!(!is_security_key("num.partitions"));
    }
}
