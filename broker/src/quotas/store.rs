//! The client quotas set with AlterClientQuotas (and, in cluster mode, by KafkaUsers'
//! `spec.quotas`), looked up for every produce and fetch. A standalone broker keeps them in
//! `client-quotas.json` in the data directory; the brokers of a cluster share one document in
//! Kubernetes ([`crate::shared_state`]), so a quota set through any broker applies on every broker.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use super::entity::{check_quota, invalid, resolution_order, Entity, EntityType, Filter, Invalid};
use crate::shared_state::{attach, Shared};

pub use tributary_crds::quotas::{ClientQuotaDocument, Op, Values};

/// File holding the quotas, in the data directory.
const FILE: &str = "client-quotas.json";

/// Why quotas could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum QuotaStoreError {
    /// A change does not suit its entity or key.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The file could not be written; nothing changed.
    #[error("saving {path}: {source}")]
    Save {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The shared document could not be changed (cluster mode); nothing changed.
    #[error("changing the shared client quotas: {0}")]
    Shared(String),
    /// The file exists but does not parse.
    #[error(transparent)]
    Load(#[from] crate::fsutil::JsonFileError),
}

/// Every client quota of the broker (of the cluster, when shared).
#[derive(Default)]
pub struct ClientQuotas {
    /// Where they persist on their own (standalone); `None` keeps them in memory (tests).
    path: Option<PathBuf>,
    /// Where they persist when they are shared (cluster mode); then the file is not used.
    shared: Option<Arc<dyn Shared<ClientQuotaDocument>>>,
    quotas: RwLock<ClientQuotaDocument>,
    /// Held while a change to the file is prepared and saved.
    saving: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for ClientQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientQuotas")
            .field("entities", &self.quotas.read().entities.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl ClientQuotas {
    /// Loads the quotas saved in `data_dir`, if any.
    pub fn open(data_dir: &Path) -> Result<ClientQuotas, QuotaStoreError> {
        let path = data_dir.join(FILE);
        let quotas: ClientQuotaDocument = crate::fsutil::read_json_or_default(&path)?;
        Ok(ClientQuotas {
            path: Some(path),
            quotas: RwLock::new(quotas),
            ..ClientQuotas::default()
        })
    }

    /// The broker's quotas: those saved in `data_dir`, or with `shared` (cluster mode) those
    /// it holds from then on (the data directory's file is no longer read or written, and
    /// changes are written there, so every broker following it enforces the same quotas).
    pub fn open_shared(
        data_dir: &Path,
        shared: Option<Arc<dyn Shared<ClientQuotaDocument>>>,
    ) -> Result<Arc<ClientQuotas>, QuotaStoreError> {
        let quotas = Arc::new(ClientQuotas {
            shared,
            ..ClientQuotas::open(data_dir)?
        });
        if let Some(shared) = &quotas.shared {
            attach(&quotas, shared, |me, document| {
                *me.quotas.write() = document
            });
        }
        Ok(quotas)
    }

    /// The entities passing `filter`, with their quotas.
    pub fn describe(&self, filter: &Filter) -> Vec<(Entity, Values)> {
        self.quotas
            .read()
            .entities
            .iter()
            .filter(|(entity, _)| filter.matches(entity))
            .map(|(entity, values)| (entity.clone(), values.clone()))
            .collect()
    }

    /// Checks `ops` against `entity` and, unless `validate_only`, applies and saves them (in
    /// the shared document when there is one, re-applied to a newer version when another
    /// broker changed it first); an entity left without quotas is forgotten. On error nothing
    /// changes.
    pub async fn alter(
        &self,
        entity: &Entity,
        ops: &[Op],
        validate_only: bool,
    ) -> Result<(), QuotaStoreError> {
        let mut seen = std::collections::BTreeSet::new();
        for (key, value) in ops {
            if !seen.insert(key) {
                return Err(invalid(format!("Duplicate quota key {key}")).into());
            }
            if let Some(value) = value {
                check_quota(entity, key, *value)?;
            }
        }
        if validate_only {
            return Ok(());
        }
        let Some(shared) = &self.shared else {
            return self.alter_file(entity, ops);
        };
        let written = shared
            .update(&|document| {
                document.alter(entity, ops);
            })
            .await
            .map_err(QuotaStoreError::Shared)?;
        *self.quotas.write() = written;
        Ok(())
    }

    fn alter_file(&self, entity: &Entity, ops: &[Op]) -> Result<(), QuotaStoreError> {
        // Changes are serialized by `saving` and prepared and saved without blocking lookups,
        // which every produce and fetch makes.
        let _serial = self.saving.lock();
        let mut next = self.quotas.read().clone();
        if next.alter(entity, ops) {
            self.save(&next)?;
            *self.quotas.write() = next;
        }
        Ok(())
    }

    /// The quota `key` that applies to a client, and the entity it is accounted under: the
    /// matched entity with the client's own names in place of defaults, so a default quota
    /// limits each client on its own while a named user's quota is shared by its clients.
    pub fn lookup(&self, user: &str, client_id: &str, key: &str) -> Option<(Entity, f64)> {
        let quotas = &self.quotas.read().entities;
        // Every produce and fetch asks: with no quotas, build no candidate entities.
        if quotas.is_empty() {
            return None;
        }
        resolution_order(user, client_id)
            .into_iter()
            .find_map(|entity| {
                let value = *quotas.get(&entity)?.get(key)?;
                let accounted = entity
                    .into_keys()
                    .map(|kind| {
                        let name = match kind {
                            EntityType::User => user,
                            _ => client_id,
                        };
                        (kind, Some(name.to_string()))
                    })
                    .collect();
                Some((accounted, value))
            })
    }

    /// The quota `key` that applies to connections from `ip` (its own, else the ip default),
    /// accounted per address.
    pub fn lookup_ip(&self, ip: &str, key: &str) -> Option<(Entity, f64)> {
        let quotas = &self.quotas.read().entities;
        if quotas.is_empty() {
            return None;
        }
        let own = Entity::from([(EntityType::Ip, Some(ip.to_string()))]);
        let default = Entity::from([(EntityType::Ip, None)]);
        let value = [&own, &default]
            .into_iter()
            .find_map(|e| quotas.get(e)?.get(key).copied())?;
        Some((own, value))
    }

    fn save(&self, quotas: &ClientQuotaDocument) -> Result<(), QuotaStoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        crate::fsutil::write_json(path, quotas).map_err(|source| QuotaStoreError::Save {
            path: path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::entity::{parse_entity, CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE};
    use super::*;

    fn entity(pairs: &[(&str, Option<&str>)]) -> Entity {
        parse_entity(pairs.iter().copied()).unwrap()
    }

    /// [`ClientQuotas::alter`] of a store that is not shared, which never waits.
    trait AlterNow {
        fn alter_now(&self, e: &Entity, ops: &[Op], only: bool) -> Result<(), QuotaStoreError>;
    }

    impl AlterNow for ClientQuotas {
        fn alter_now(&self, e: &Entity, ops: &[Op], only: bool) -> Result<(), QuotaStoreError> {
            futures::executor::block_on(self.alter(e, ops, only))
        }
    }

    fn set(key: &str, value: f64) -> Op {
        (key.to_string(), Some(value))
    }

    #[test]
    fn quotas_persist_and_an_entity_without_quotas_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let client = entity(&[("client-id", Some("c"))]);
        let quotas = ClientQuotas::open(dir.path()).unwrap();
        quotas
            .alter_now(&client, &[set(PRODUCER_BYTE_RATE, 1000.0)], false)
            .unwrap();
        quotas
            .alter_now(&client, &[set(CONSUMER_BYTE_RATE, 2000.0)], true)
            .unwrap();
        let reopened = ClientQuotas::open(dir.path()).unwrap();
        let all = reopened.describe(&Filter::default());
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].1,
            Values::from([(PRODUCER_BYTE_RATE.into(), 1000.0)])
        );

        let remove = (PRODUCER_BYTE_RATE.to_string(), None);
        reopened.alter_now(&client, &[remove], false).unwrap();
        assert!(ClientQuotas::open(dir.path())
            .unwrap()
            .describe(&Filter::default())
            .is_empty());
    }

    #[test]
    fn invalid_changes_change_nothing() {
        let quotas = ClientQuotas::default();
        let client = entity(&[("client-id", Some("c"))]);
        let ops = [set(PRODUCER_BYTE_RATE, 1000.0), set("no_such_quota", 1.0)];
        assert!(quotas.alter_now(&client, &ops, false).is_err());
        let twice = [set(PRODUCER_BYTE_RATE, 1.0), set(PRODUCER_BYTE_RATE, 2.0)];
        assert!(quotas.alter_now(&client, &twice, false).is_err());
        assert!(quotas.describe(&Filter::default()).is_empty());
    }

    #[test]
    fn the_most_specific_quota_applies_and_defaults_are_accounted_per_client() {
        let quotas = ClientQuotas::default();
        let rate = |e: &[(&str, Option<&str>)], v| {
            quotas
                .alter_now(&entity(e), &[set(PRODUCER_BYTE_RATE, v)], false)
                .unwrap()
        };
        rate(&[("client-id", None)], 100.0);
        rate(&[("client-id", Some("fast"))], 1000.0);
        rate(&[("user", Some("alice"))], 50.0);

        let (accounted, value) = quotas.lookup("bob", "slow", PRODUCER_BYTE_RATE).unwrap();
        assert_eq!(value, 100.0);
        assert_eq!(accounted, entity(&[("client-id", Some("slow"))]));
        assert_eq!(
            quotas.lookup("bob", "fast", PRODUCER_BYTE_RATE).unwrap().1,
            1000.0
        );
        let (accounted, value) = quotas.lookup("alice", "fast", PRODUCER_BYTE_RATE).unwrap();
        assert_eq!(value, 50.0, "user quotas come before client-id quotas");
        assert_eq!(accounted, entity(&[("user", Some("alice"))]));
        assert!(quotas.lookup("bob", "c", CONSUMER_BYTE_RATE).is_none());
    }

    #[test]
    fn an_address_gets_its_own_connection_quota_or_the_default_one() {
        let quotas = ClientQuotas::default();
        let key = "connection_creation_rate";
        let rate = |e: &[(&str, Option<&str>)], v| {
            quotas.alter_now(&entity(e), &[set(key, v)], false).unwrap()
        };
        rate(&[("ip", None)], 10.0);
        rate(&[("ip", Some("10.0.0.1"))], 2.0);
        assert_eq!(quotas.lookup_ip("10.0.0.1", key).unwrap().1, 2.0);
        let (accounted, value) = quotas.lookup_ip("10.0.0.2", key).unwrap();
        assert_eq!(value, 10.0);
        assert_eq!(accounted, entity(&[("ip", Some("10.0.0.2"))]));
    }
}
