//! Client quotas (Kafka's `producer_byte_rate`, `consumer_byte_rate`, `request_percentage`,
//! `controller_mutation_rate` and `connection_creation_rate`) as the document brokers share.
//!
//! A standalone broker keeps the document in `client-quotas.json` in its data directory; the
//! brokers of a cluster follow one copy in the key [`crate::registration::CLIENT_QUOTAS_KEY`]
//! of the ConfigMap [`crate::registration::client_quotas_name`], so a quota set through any
//! broker (AlterClientQuotas) or by the operator (a KafkaUser's `spec.quotas`) applies on
//! every broker. Both writers edit it with the same pure edits, defined here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Produce bytes per second.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Fetch bytes per second.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percentage of one request handler and network thread a client may use.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";
/// Partitions created or deleted per second.
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
/// New connections per second from one address.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";

/// The kinds of client a quota can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntityType {
    /// The authenticated principal (`ANONYMOUS` on a PLAINTEXT listener).
    User,
    /// The `client.id` a client sends.
    ClientId,
    /// The client's address (connection rate only).
    Ip,
}

impl EntityType {
    /// Kafka's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            EntityType::User => "user",
            EntityType::ClientId => "client-id",
            EntityType::Ip => "ip",
        }
    }

    /// The type Kafka names `name`, if any.
    pub fn from_name(name: &str) -> Option<EntityType> {
        [EntityType::User, EntityType::ClientId, EntityType::Ip]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// A quota entity: each type it names maps to a name, or `None` for that type's default.
pub type Entity = BTreeMap<EntityType, Option<String>>;

/// The quota values of one entity, by key.
pub type Values = BTreeMap<String, f64>;

/// A change to one quota key: `Some` sets it, `None` removes it.
pub type Op = (String, Option<f64>);

/// The entity of a named user's own quotas (`kafka-configs.sh --entity-type users
/// --entity-name <name>`): what a KafkaUser's `spec.quotas` becomes.
pub fn user_entity(name: &str) -> Entity {
    Entity::from([(EntityType::User, Some(name.to_owned()))])
}

/// One entity's quotas as stored: JSON objects cannot have entity keys, so the document is a
/// list of these.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredEntry {
    entity: Vec<(EntityType, Option<String>)>,
    values: Values,
}

/// Every client quota of a cluster (or of a standalone broker), by entity; an entity without
/// quotas is absent. Stored as a JSON list of `{"entity": [[type, name]...], "values": {...}}`,
/// the format `client-quotas.json` has always had, so a standalone broker's file still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Vec<StoredEntry>", into = "Vec<StoredEntry>")]
pub struct ClientQuotaDocument {
    /// The quotas, by entity.
    pub entities: BTreeMap<Entity, Values>,
}

impl From<Vec<StoredEntry>> for ClientQuotaDocument {
    fn from(stored: Vec<StoredEntry>) -> ClientQuotaDocument {
        let entities = stored
            .into_iter()
            .filter(|s| !s.values.is_empty())
            .map(|s| (s.entity.into_iter().collect(), s.values))
            .collect();
        ClientQuotaDocument { entities }
    }
}

impl From<ClientQuotaDocument> for Vec<StoredEntry> {
    fn from(document: ClientQuotaDocument) -> Vec<StoredEntry> {
        document
            .entities
            .into_iter()
            .map(|(entity, values)| StoredEntry {
                entity: entity.into_iter().collect(),
                values,
            })
            .collect()
    }
}

impl ClientQuotaDocument {
    /// Applies `ops` to `entity`'s quotas (AlterClientQuotas, already checked); an entity left
    /// without quotas is forgotten. True when the document changed.
    pub fn alter(&mut self, entity: &Entity, ops: &[Op]) -> bool {
        let mut values = self.entities.get(entity).cloned().unwrap_or_default();
        for (key, value) in ops {
            match value {
                Some(value) => values.insert(key.clone(), *value),
                None => values.remove(key),
            };
        }
        self.replace(entity, values)
    }

    /// Makes `entity`'s quotas exactly `wanted` (none: the entity is forgotten), leaving every
    /// other entity's alone: how the operator owns a KafkaUser's quotas. True when the
    /// document changed.
    pub fn replace(&mut self, entity: &Entity, wanted: Values) -> bool {
        if wanted.is_empty() {
            return self.entities.remove(entity).is_some();
        }
        if self.entities.get(entity) == Some(&wanted) {
            return false;
        }
        self.entities.insert(entity.clone(), wanted);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, f64)]) -> Values {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn the_document_reads_and_writes_the_client_quotas_file_format() {
        let json = r#"[{"entity":[["user","alice"],["client-id",null]],"values":{"producer_byte_rate":1024.0}},{"entity":[["ip",null]],"values":{"connection_creation_rate":5.0}}]"#;
        let document: ClientQuotaDocument = serde_json::from_str(json).unwrap();
        let alice = Entity::from([
            (EntityType::User, Some("alice".to_owned())),
            (EntityType::ClientId, None),
        ]);
        assert_eq!(
            document.entities[&alice],
            values(&[(PRODUCER_BYTE_RATE, 1024.0)])
        );
        let back = serde_json::to_string(&document).unwrap();
        let again: ClientQuotaDocument = serde_json::from_str(&back).unwrap();
        assert_eq!(again, document);
        assert_eq!(
            crate::shared::parse_document::<ClientQuotaDocument>(Some("[]")).unwrap(),
            ClientQuotaDocument::default()
        );
    }

    #[test]
    fn altering_sets_and_removes_keys_and_forgets_an_entity_left_empty() {
        let mut document = ClientQuotaDocument::default();
        let client = Entity::from([(EntityType::ClientId, Some("c".to_owned()))]);
        let set = (PRODUCER_BYTE_RATE.to_owned(), Some(100.0));
        assert!(document.alter(&client, std::slice::from_ref(&set)));
        assert!(!document.alter(&client, &[set]), "already so");
        assert!(!document.alter(&client, &[(CONSUMER_BYTE_RATE.to_owned(), None)]));
        assert!(document.alter(&client, &[(PRODUCER_BYTE_RATE.to_owned(), None)]));
        assert!(document.entities.is_empty());
    }

    #[test]
    fn replacing_an_entitys_quotas_leaves_every_other_entity_alone() {
        let mut document = ClientQuotaDocument::default();
        let other = Entity::from([
            (EntityType::User, Some("alice".to_owned())),
            (EntityType::ClientId, Some("c".to_owned())),
        ]);
        document.alter(&other, &[(CONSUMER_BYTE_RATE.to_owned(), Some(5.0))]);
        let alice = user_entity("alice");
        let wanted = values(&[(PRODUCER_BYTE_RATE, 10.0), (REQUEST_PERCENTAGE, 50.0)]);
        assert!(document.replace(&alice, wanted.clone()));
        assert!(!document.replace(&alice, wanted), "already so");
        assert!(document.replace(&alice, values(&[(PRODUCER_BYTE_RATE, 10.0)])));
        assert_eq!(
            document.entities[&alice],
            values(&[(PRODUCER_BYTE_RATE, 10.0)])
        );
        assert!(document.replace(&alice, Values::new()));
        assert!(!document.replace(&alice, Values::new()));
        assert_eq!(document.entities.len(), 1);
        assert!(document.entities.contains_key(&other));
    }
}
