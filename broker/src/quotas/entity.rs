//! Client quota entities, keys and filters, checked as Kafka checks them: pure decisions, no
//! state.

use std::collections::BTreeMap;
use std::net::IpAddr;

pub use tributary_crds::quotas::{
    Entity, EntityType, CONNECTION_CREATION_RATE, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE,
    PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE,
};

/// Why an entity, a quota or a filter is refused: INVALID_REQUEST, or UNSUPPORTED_VERSION for
/// a filter on an entity type Kafka does not know, as Kafka answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// What is wrong.
    pub message: String,
    /// The entity type is unknown rather than the request malformed.
    pub unsupported: bool,
}

/// An INVALID_REQUEST refusal.
pub(crate) fn invalid(message: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        unsupported: false,
    }
}

/// The value kinds of quota keys: integral ones refuse fractions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Long,
    Int,
    Double,
}

const CLIENT_KEYS: &[(&str, Kind)] = &[
    (PRODUCER_BYTE_RATE, Kind::Long),
    (CONSUMER_BYTE_RATE, Kind::Long),
    (REQUEST_PERCENTAGE, Kind::Double),
    (CONTROLLER_MUTATION_RATE, Kind::Double),
];

const IP_KEYS: &[(&str, Kind)] = &[(CONNECTION_CREATION_RATE, Kind::Int)];

/// Builds an entity from request pairs of (type, name); `None` names the default.
pub fn parse_entity<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<Entity, Invalid> {
    let mut entity = Entity::new();
    for (kind, name) in pairs {
        let kind = EntityType::from_name(kind)
            .ok_or_else(|| invalid(format!("Unhandled client quota entity type: {kind}")))?;
        if entity.insert(kind, name.map(str::to_string)).is_some() {
            return Err(invalid(format!(
                "Duplicate {} entity in client quota entity",
                kind.name()
            )));
        }
    }
    if entity.is_empty() {
        return Err(invalid("Invalid empty client quota entity"));
    }
    if entity.contains_key(&EntityType::Ip) {
        if entity.len() > 1 {
            return Err(invalid(
                "Invalid quota entity combination, IP entity should not be combined with User or ClientId",
            ));
        }
        if let Some(Some(ip)) = entity.get_mut(&EntityType::Ip) {
            // Kept in canonical form: connections are looked up by their canonical address.
            let parsed = ip
                .parse::<IpAddr>()
                .map_err(|_| invalid(format!("{ip} is not a valid IP address")))?;
            *ip = parsed.to_canonical().to_string();
        }
    }
    Ok(entity)
}

/// Checks that `key` is a quota of `entity`'s kind and `value` suits it.
pub fn check_quota(entity: &Entity, key: &str, value: f64) -> Result<(), Invalid> {
    let keys = if entity.contains_key(&EntityType::Ip) {
        IP_KEYS
    } else {
        CLIENT_KEYS
    };
    let (_, kind) = keys
        .iter()
        .find(|(k, _)| *k == key)
        .ok_or_else(|| invalid(format!("Invalid configuration key {key}")))?;
    if !value.is_finite() || value <= 0.0 {
        return Err(invalid(format!("Quota {key} must be greater than 0")));
    }
    let max = match kind {
        Kind::Double => return Ok(()),
        Kind::Int => f64::from(i32::MAX),
        Kind::Long => i64::MAX as f64,
    };
    if value > max {
        return Err(invalid(format!("Proposed value for {key} is too large")));
    }
    if value.fract() != 0.0 {
        return Err(invalid(format!("{key} cannot be a fractional value.")));
    }
    Ok(())
}

/// How a filter component matches an entity's name of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameMatch {
    /// Exactly this name.
    Exact(String),
    /// The type's default.
    Default,
    /// Any entity of the type (Kafka's "specified": defaults match too).
    Specified,
}

/// A DescribeClientQuotas filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    components: BTreeMap<EntityType, NameMatch>,
    /// Only entities naming exactly the filtered types.
    strict: bool,
}

impl Filter {
    /// Builds a filter from request components of (type, match type, match).
    pub fn parse<'a>(
        components: impl IntoIterator<Item = (&'a str, i8, Option<&'a str>)>,
        strict: bool,
    ) -> Result<Filter, Invalid> {
        let mut parsed = BTreeMap::new();
        for (kind, match_type, name) in components {
            let kind = EntityType::from_name(kind).ok_or_else(|| Invalid {
                message: format!("Custom entity type '{kind}' not supported"),
                unsupported: true,
            })?;
            let matcher = match (match_type, name) {
                (0, Some(name)) => NameMatch::Exact(name.to_string()),
                (1, None) => NameMatch::Default,
                (2, None) => NameMatch::Specified,
                (0..=2, _) => {
                    return Err(invalid(format!(
                        "Match type {match_type} does not fit the given match"
                    )))
                }
                _ => return Err(invalid(format!("Unknown match type {match_type}"))),
            };
            if parsed.insert(kind, matcher).is_some() {
                return Err(invalid(format!(
                    "Entity type {} cannot appear more than once in the filter",
                    kind.name()
                )));
            }
        }
        if parsed.contains_key(&EntityType::Ip) && parsed.len() > 1 {
            return Err(invalid(
                "Invalid entity filter component combination, IP filter component should not be used with User or ClientId filter component.",
            ));
        }
        Ok(Filter {
            components: parsed,
            strict,
        })
    }

    /// Whether `entity` passes the filter.
    pub fn matches(&self, entity: &Entity) -> bool {
        if self.strict && entity.len() != self.components.len() {
            return false;
        }
        self.components
            .iter()
            .all(|(kind, matcher)| match (entity.get(kind), matcher) {
                (None, _) => false,
                (Some(name), NameMatch::Exact(wanted)) => name.as_deref() == Some(wanted.as_str()),
                (Some(name), NameMatch::Default) => name.is_none(),
                // As in Kafka: any entity of the type, its default included.
                (Some(_), NameMatch::Specified) => true,
            })
    }
}

/// The entities whose quotas apply to a client, most specific first, as Kafka resolves them
/// when both user and client-id quotas exist.
pub fn resolution_order(user: &str, client_id: &str) -> [Entity; 8] {
    let pair = |u: Option<&str>, c: Option<Option<&str>>| {
        let mut e = Entity::new();
        e.insert(EntityType::User, u.map(str::to_string));
        if let Some(c) = c {
            e.insert(EntityType::ClientId, c.map(str::to_string));
        }
        e
    };
    let client = |c: Option<&str>| Entity::from([(EntityType::ClientId, c.map(str::to_string))]);
    [
        pair(Some(user), Some(Some(client_id))),
        pair(Some(user), Some(None)),
        pair(Some(user), None),
        pair(None, Some(Some(client_id))),
        pair(None, Some(None)),
        pair(None, None),
        client(Some(client_id)),
        client(None),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(pairs: &[(&str, Option<&str>)]) -> Result<Entity, Invalid> {
        parse_entity(pairs.iter().copied())
    }

    #[test]
    fn entities_are_checked_as_kafka_checks_them() {
        assert!(entity(&[("user", Some("alice")), ("client-id", None)]).is_ok());
        assert!(entity(&[("ip", Some("10.0.0.1"))]).is_ok());
        let mapped = entity(&[("ip", Some("::ffff:10.0.0.1"))]).unwrap();
        assert_eq!(mapped[&EntityType::Ip].as_deref(), Some("10.0.0.1"));
        assert!(entity(&[("ip", None)]).is_ok());
        for bad in [
            &[][..],
            &[("group", Some("g"))],
            &[("user", Some("a")), ("user", Some("b"))],
            &[("ip", Some("10.0.0.1")), ("user", Some("a"))],
            &[("ip", Some("not an address"))],
        ] {
            assert!(entity(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quota_keys_fit_their_entity_and_integral_ones_refuse_fractions() {
        let client = entity(&[("client-id", Some("c"))]).unwrap();
        let ip = entity(&[("ip", None)]).unwrap();
        assert!(check_quota(&client, PRODUCER_BYTE_RATE, 1024.0).is_ok());
        assert!(check_quota(&client, "request_percentage", 12.5).is_ok());
        assert!(check_quota(&ip, "connection_creation_rate", 10.0).is_ok());
        assert!(check_quota(&client, PRODUCER_BYTE_RATE, 10.5).is_err());
        assert!(check_quota(&client, PRODUCER_BYTE_RATE, 0.0).is_err());
        assert!(check_quota(&client, PRODUCER_BYTE_RATE, f64::NAN).is_err());
        assert!(check_quota(&client, "connection_creation_rate", 10.0).is_err());
        assert!(check_quota(&ip, PRODUCER_BYTE_RATE, 10.0).is_err());
        assert!(check_quota(&ip, "connection_creation_rate", 3e9).is_err());
    }

    #[test]
    fn filters_match_exact_default_and_specified_names_strictly_or_not() {
        let named = entity(&[("user", Some("alice")), ("client-id", Some("c"))]).unwrap();
        let default_user = entity(&[("user", None)]).unwrap();
        let filter = |c: &[(&str, i8, Option<&str>)], strict| {
            Filter::parse(c.iter().copied(), strict).unwrap()
        };
        assert!(filter(&[], false).matches(&named));
        assert!(!filter(&[], true).matches(&named));
        assert!(filter(&[("user", 0, Some("alice"))], false).matches(&named));
        assert!(!filter(&[("user", 0, Some("alice"))], true).matches(&named));
        assert!(filter(&[("user", 2, None)], false).matches(&named));
        assert!(filter(&[("user", 2, None)], false).matches(&default_user));
        assert!(filter(&[("user", 1, None)], true).matches(&default_user));
        assert!(!filter(&[("client-id", 1, None)], false).matches(&default_user));
        for bad in [
            &[("user", 0, None)][..],
            &[("user", 1, Some("a"))],
            &[("user", 3, None)],
            &[("user", 2, None), ("user", 1, None)],
            &[("ip", 2, None), ("user", 2, None)],
            &[("group", 2, None)],
        ] {
            assert!(
                Filter::parse(bad.iter().copied(), false).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_most_specific_entity_comes_first() {
        let order = resolution_order("alice", "c");
        assert_eq!(
            order[0],
            entity(&[("user", Some("alice")), ("client-id", Some("c"))]).unwrap()
        );
        assert_eq!(order[5], entity(&[("user", None)]).unwrap());
        assert_eq!(order[7], entity(&[("client-id", None)]).unwrap());
    }
}
