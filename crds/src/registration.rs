//! How brokers register and where cluster-wide ids come from, in Kubernetes objects.
//!
//! # Broker registration: the Lease `<cluster>-broker-<id>`
//!
//! Kafka's ephemeral broker znode (or KRaft's BrokerRegistration): the broker holds and
//! renews the Lease; its annotations carry what clients and the controller need. The
//! incarnation epoch rises with a conditional write at every start of the broker process, so
//! anything recorded under an earlier incarnation (ISR membership) is recognisable.
//! Liveness is judged by the observer's own clock: a Lease whose `renewTime` has not changed
//! for `leaseDurationSeconds` of the observer's time is expired, whatever the time in it says.
//!
//! # Producer ids: the ConfigMap `<cluster>-producer-ids`
//!
//! Kafka's AllocateProducerIds: brokers take blocks of [`PRODUCER_ID_BLOCK_SIZE`] ids by a
//! conditional update of the next free id, so no two producers ever share one.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::coordination::v1::Lease;

/// Annotation: host clients connect to.
pub const HOST_ANNOTATION: &str = "tributary.dev/advertised-host";
/// Annotation: port clients connect to.
pub const PORT_ANNOTATION: &str = "tributary.dev/advertised-port";
/// Annotation: every listener's advertised address, `NAME://host:port,...` (Kafka's
/// `advertised.listeners`), so Metadata answers a client with the addresses of the listener it
/// came in on. The host and port annotations are the inter-broker listener's.
pub const LISTENERS_ANNOTATION: &str = "tributary.dev/advertised-listeners";
/// Annotation: the broker's rack, when it has one.
pub const RACK_ANNOTATION: &str = "tributary.dev/rack";
/// Annotation: the incarnation epoch of the broker process holding the Lease.
pub const INCARNATION_ANNOTATION: &str = "tributary.dev/incarnation";
/// Annotation: the incarnation at which the broker's data directory was created (0: before
/// this was recorded). An ISR entry of an earlier incarnation is of data this directory never
/// held, so the controller does not re-elect the broker on that entry's strength: a broker
/// back with an empty disk is not the last in-sync replica it was.
pub const DIRECTORY_EPOCH_ANNOTATION: &str = "tributary.dev/directory-epoch";
/// Annotation set to `"true"` while the broker shuts down in a controlled way: the controller
/// moves its leaderships away.
pub const SHUTTING_DOWN_ANNOTATION: &str = "tributary.dev/shutting-down";
/// Annotation: the other brokers' processes (`id@incarnation,...`) whose address refused this
/// broker's connections. A refused connection means nothing listens there, so that process is
/// gone: the controller takes a live broker's word for it rather than wait out the dead one's
/// Lease, unless the dead one's Lease is renewed after the word arrives.
pub const REFUSED_ANNOTATION: &str = "tributary.dev/refused-connections";

/// Ids a broker takes at once.
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;
/// ConfigMap data key holding the first producer id no block has taken.
pub const NEXT_PRODUCER_ID_KEY: &str = "nextProducerId";

/// Name of broker `id`'s Lease in `cluster`.
pub fn broker_lease_name(cluster: &str, id: i32) -> String {
    format!("{cluster}-broker-{id}")
}

/// `(cluster, id)` of a broker Lease name.
pub fn parse_broker_lease_name(name: &str) -> Option<(&str, i32)> {
    let (cluster, id) = name.rsplit_once("-broker-")?;
    let id: i32 = id.parse().ok()?;
    (id >= 0 && !cluster.is_empty()).then_some((cluster, id))
}

/// Name of the ConfigMap holding `cluster`'s next producer id.
pub fn producer_ids_name(cluster: &str) -> String {
    format!("{cluster}-producer-ids")
}

/// Name of the ConfigMap holding `cluster`'s ACLs, which every broker applies.
pub fn acls_name(cluster: &str) -> String {
    format!("{cluster}-acls")
}

/// The key of the ACL ConfigMap holding the ACLs, as a JSON list.
pub const ACLS_KEY: &str = "acls.json";

/// Name of the ConfigMap holding `cluster`'s cluster-wide dynamic broker configs (Kafka's
/// AlterConfigs on the default BROKER resource), which every broker applies.
pub fn dynamic_configs_name(cluster: &str) -> String {
    format!("{cluster}-dynamic-configs")
}

/// The key of the dynamic-config ConfigMap holding the values, as a JSON object.
pub const DYNAMIC_CONFIGS_KEY: &str = "configs.json";

/// Key of the dynamic-config ConfigMap holding every group's config overrides (config
/// resource GROUP) by group id.
pub const GROUP_CONFIGS_KEY: &str = "groups.json";

/// Key of the dynamic-config ConfigMap holding the finalized feature levels
/// ([`crate::features::FeatureLevels`]): Kafka keeps them in its metadata log beside the
/// dynamic configs.
pub const FEATURES_KEY: &str = "features.json";

/// Name of the Secret holding `cluster`'s SCRAM credentials (salts and derived keys, never
/// passwords), which every broker checks logins against.
pub fn scram_credentials_name(cluster: &str) -> String {
    format!("{cluster}-scram-credentials")
}

/// The key of the SCRAM Secret holding the credentials, as JSON.
pub const SCRAM_CREDENTIALS_KEY: &str = "credentials.json";

/// The key of the SCRAM Secret holding the delegation tokens (ids, owners, timestamps; never
/// their HMACs), as JSON, which every broker logs tokens in against.
pub const DELEGATION_TOKENS_KEY: &str = "delegation-tokens.json";

/// Name of the ConfigMap holding `cluster`'s client quotas (AlterClientQuotas and KafkaUsers'
/// `spec.quotas`), which every broker enforces.
pub fn client_quotas_name(cluster: &str) -> String {
    format!("{cluster}-client-quotas")
}

/// The key of the client-quota ConfigMap holding the quotas, as JSON
/// ([`crate::quotas::ClientQuotaDocument`]).
pub const CLIENT_QUOTAS_KEY: &str = "quotas.json";

/// Name of the Secret holding `cluster`'s cluster CA, which signs the brokers' server
/// certificates; clients trust its [`CA_CERT_KEY`]. The CA certificate's common name is this
/// name too.
pub fn cluster_ca_name(cluster: &str) -> String {
    format!("{cluster}-cluster-ca")
}

/// Name of the Secret holding `cluster`'s clients CA, which signs KafkaUsers' client
/// certificates; brokers trust it on listeners with TLS client authentication. The CA
/// certificate's common name is this name too.
pub fn clients_ca_name(cluster: &str) -> String {
    format!("{cluster}-clients-ca")
}

/// Key of a CA Secret (and of a user or broker certificate Secret) holding the CA
/// certificate(s), PEM.
pub const CA_CERT_KEY: &str = "ca.crt";
/// Key of a CA Secret holding the CA's private key, PEM.
pub const CA_KEY_KEY: &str = "ca.key";
/// Annotation on a Secret holding a certificate: its `notAfter`, seconds since the Unix
/// epoch, so renewal is decided without parsing the certificate.
pub const NOT_AFTER_ANNOTATION: &str = "tributary.dev/not-after";

/// One listener's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Listener name, upper case (`INTERNAL`, `EXTERNAL`).
    pub name: String,
    /// Host its clients connect to.
    pub host: String,
    /// Port its clients connect to.
    pub port: i32,
}

/// Parses `NAME://host:port,...`, skipping malformed entries.
pub fn parse_endpoints(text: &str) -> Vec<Endpoint> {
    text.split(',')
        .filter_map(|entry| {
            let (name, address) = entry.trim().split_once("://")?;
            let (host, port) = address.rsplit_once(':')?;
            Some(Endpoint {
                name: name.to_string(),
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                port: port.parse().ok()?,
            })
        })
        .collect()
}

/// Formats endpoints as `NAME://host:port,...`.
pub fn format_endpoints(endpoints: &[Endpoint]) -> String {
    endpoints
        .iter()
        .map(|e| {
            if e.host.contains(':') {
                format!("{}://[{}]:{}", e.name, e.host, e.port)
            } else {
                format!("{}://{}:{}", e.name, e.host, e.port)
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One broker process: the broker's id and the incarnation it registered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerIncarnation {
    /// Broker id.
    pub id: i32,
    /// Incarnation epoch of the process.
    pub incarnation: i64,
}

/// Parses `id@incarnation,...`, skipping entries that do not parse.
pub fn parse_incarnations(text: &str) -> BTreeSet<BrokerIncarnation> {
    text.split(',')
        .filter_map(|entry| {
            let (id, incarnation) = entry.trim().split_once('@')?;
            Some(BrokerIncarnation {
                id: id.parse().ok()?,
                incarnation: incarnation.parse().ok()?,
            })
        })
        .collect()
}

/// Formats broker processes as `id@incarnation,...`.
pub fn format_incarnations(brokers: &BTreeSet<BrokerIncarnation>) -> String {
    brokers
        .iter()
        .map(|b| format!("{}@{}", b.id, b.incarnation))
        .collect::<Vec<_>>()
        .join(",")
}

/// What a broker's Lease says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Broker id.
    pub id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port clients connect to.
    pub port: i32,
    /// Rack, if any.
    pub rack: Option<String>,
    /// Incarnation epoch.
    pub incarnation: i64,
    /// Whether the broker is shutting down (its leaderships should move).
    pub shutting_down: bool,
    /// The incarnation its data directory was created at ([`DIRECTORY_EPOCH_ANNOTATION`]);
    /// `None` from brokers that do not say.
    pub directory_epoch: Option<i64>,
    /// Every listener's advertised address (empty from brokers that do not say: clients of
    /// every listener get `host:port`).
    pub listeners: Vec<Endpoint>,
    /// The other brokers' processes whose address refused this broker's connections
    /// ([`REFUSED_ANNOTATION`]).
    pub refused: BTreeSet<BrokerIncarnation>,
}

impl Registration {
    /// The registration in `lease`, if it is a broker Lease of `cluster` with the annotations
    /// complete and a holder.
    pub fn from_lease(cluster: &str, lease: &Lease) -> Option<Registration> {
        let holder = lease.spec.as_ref()?.holder_identity.as_deref()?;
        if holder.is_empty() {
            return None;
        }
        Registration::from_released_lease(cluster, lease)
    }

    /// The registration in `lease`, if it is a broker Lease of `cluster` with the annotations
    /// complete, held or not: a broker that released its Lease at a clean shutdown stays
    /// registered, fenced, as a KRaft broker does until it returns.
    pub fn from_released_lease(cluster: &str, lease: &Lease) -> Option<Registration> {
        let name = lease.metadata.name.as_deref()?;
        let (of, id) = parse_broker_lease_name(name)?;
        if of != cluster {
            return None;
        }
        let annotations = lease.metadata.annotations.as_ref()?;
        let get = |key: &str| annotations.get(key).map(String::as_str);
        Some(Registration {
            id,
            host: get(HOST_ANNOTATION)?.to_string(),
            port: get(PORT_ANNOTATION)?.parse().ok()?,
            rack: get(RACK_ANNOTATION).map(str::to_string),
            incarnation: get(INCARNATION_ANNOTATION)?.parse().ok()?,
            shutting_down: get(SHUTTING_DOWN_ANNOTATION) == Some("true"),
            directory_epoch: get(DIRECTORY_EPOCH_ANNOTATION).and_then(|v| v.parse().ok()),
            listeners: get(LISTENERS_ANNOTATION)
                .map(parse_endpoints)
                .unwrap_or_default(),
            refused: get(REFUSED_ANNOTATION)
                .map(parse_incarnations)
                .unwrap_or_default(),
        })
    }

    /// The annotations that carry this registration.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::from([
            (HOST_ANNOTATION.to_string(), self.host.clone()),
            (PORT_ANNOTATION.to_string(), self.port.to_string()),
            (
                INCARNATION_ANNOTATION.to_string(),
                self.incarnation.to_string(),
            ),
        ]);
        if let Some(rack) = &self.rack {
            out.insert(RACK_ANNOTATION.to_string(), rack.clone());
        }
        if self.shutting_down {
            out.insert(SHUTTING_DOWN_ANNOTATION.to_string(), "true".to_string());
        }
        if !self.listeners.is_empty() {
            out.insert(
                LISTENERS_ANNOTATION.to_string(),
                format_endpoints(&self.listeners),
            );
        }
        if let Some(epoch) = self.directory_epoch {
            out.insert(DIRECTORY_EPOCH_ANNOTATION.to_string(), epoch.to_string());
        }
        if !self.refused.is_empty() {
            out.insert(
                REFUSED_ANNOTATION.to_string(),
                format_incarnations(&self.refused),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lease(name: &str, registration: &Registration, holder: Option<&str>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                annotations: Some(registration.annotations()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_registration_round_trips_through_its_lease() {
        let r = Registration {
            id: 2,
            host: "demo-broker-2.demo-brokers.kafka.svc".into(),
            port: 9092,
            rack: Some("zone-a".into()),
            incarnation: 7,
            shutting_down: true,
            directory_epoch: Some(5),
            listeners: vec![Endpoint {
                name: "EXTERNAL".into(),
                host: "b.example.com".into(),
                port: 19092,
            }],
            refused: BTreeSet::from([
                BrokerIncarnation {
                    id: 0,
                    incarnation: 4,
                },
                BrokerIncarnation {
                    id: 1,
                    incarnation: 9,
                },
            ]),
        };
        let l = lease(&broker_lease_name("demo", 2), &r, Some("demo-broker-2"));
        assert_eq!(Registration::from_lease("demo", &l), Some(r.clone()));
        assert_eq!(
            Registration::from_lease("other", &l),
            None,
            "another cluster's lease"
        );
        let released = lease(&broker_lease_name("demo", 2), &r, Some(""));
        assert_eq!(
            Registration::from_lease("demo", &released),
            None,
            "no holder"
        );
    }

    #[test]
    fn refused_processes_parse_and_skip_what_does_not() {
        let parsed = parse_incarnations("1@4, 0@x,2,3@-1,@2,1@4");
        assert_eq!(
            parsed,
            BTreeSet::from([
                BrokerIncarnation {
                    id: 1,
                    incarnation: 4
                },
                BrokerIncarnation {
                    id: 3,
                    incarnation: -1
                },
            ])
        );
        assert_eq!(format_incarnations(&parsed), "1@4,3@-1");
        assert!(parse_incarnations("").is_empty());
    }

    #[test]
    fn broker_lease_names_parse() {
        assert_eq!(parse_broker_lease_name("demo-broker-0"), Some(("demo", 0)));
        assert_eq!(
            parse_broker_lease_name("my-app-broker-12"),
            Some(("my-app", 12))
        );
        assert_eq!(parse_broker_lease_name("demo-broker-x"), None);
        assert_eq!(parse_broker_lease_name("-broker-1"), None);
        assert_eq!(producer_ids_name("demo"), "demo-producer-ids");
    }
}
