//! The KafkaUser's part of the cluster's shared documents, as pure edits: the ACL bindings of
//! its principal, its SCRAM credential and its client quotas. Each edit says whether it changed anything, so the
//! reconciler writes only when it did, and is applied again to a newer document when another
//! writer (a broker serving CreateAcls or AlterUserScramCredentials) came first.

use tributary_crds::acls::{
    AclBinding, AclSet, InvalidAcl, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
};
use tributary_crds::quotas::{
    user_entity, ClientQuotaDocument, Values, CONSUMER_BYTE_RATE, CONTROLLER_MUTATION_RATE,
    PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE,
};
use tributary_crds::scram::{Credential, Mechanism, StoredCredential, Users};
use tributary_crds::user::{
    AclOperation, AclPatternType, AclResourceType, AclRule, AclRuleType, UserAuthorization,
    UserQuotas,
};

/// The mechanism KafkaUsers get credentials for (Strimzi's only one).
pub const MECHANISM: Mechanism = Mechanism::Sha512;
/// Iterations of the credentials the operator derives (Kafka's minimum, as Strimzi uses).
pub const ITERATIONS: u32 = 4096;

/// The principal a KafkaUser named `name` is: `User:<name>`.
pub fn principal(name: &str) -> String {
    format!("User:{name}")
}

/// The bindings `authorization` grants `principal`, checked as Kafka's CreateAcls checks them;
/// none without authorization.
pub fn bindings(
    principal: &str,
    authorization: Option<&UserAuthorization>,
) -> Result<AclSet, InvalidAcl> {
    let mut out = AclSet::new();
    for rule in authorization.iter().flat_map(|a| &a.acls) {
        for operation in &rule.operations {
            out.insert(binding(principal, rule, *operation)?);
        }
    }
    Ok(out)
}

fn binding(
    principal: &str,
    rule: &AclRule,
    operation: AclOperation,
) -> Result<AclBinding, InvalidAcl> {
    let r = &rule.resource;
    let (kind, name, pattern) = match r.type_ {
        AclResourceType::Cluster => (ResourceType::Cluster, CLUSTER_NAME, PatternType::Literal),
        other => {
            let kind = match other {
                AclResourceType::Topic => ResourceType::Topic,
                AclResourceType::Group => ResourceType::Group,
                _ => ResourceType::TransactionalId,
            };
            let pattern = match r.pattern_type {
                AclPatternType::Literal => PatternType::Literal,
                AclPatternType::Prefix => PatternType::Prefixed,
            };
            (kind, r.name.as_deref().unwrap_or_default(), pattern)
        }
    };
    let permission = match rule.type_ {
        AclRuleType::Allow => Permission::Allow,
        AclRuleType::Deny => Permission::Deny,
    };
    AclBinding::new(
        kind.code(),
        name,
        pattern.code(),
        principal,
        &rule.host,
        operation_of(operation).code(),
        permission.code(),
    )
}

fn operation_of(operation: AclOperation) -> Operation {
    match operation {
        AclOperation::Read => Operation::Read,
        AclOperation::Write => Operation::Write,
        AclOperation::Create => Operation::Create,
        AclOperation::Delete => Operation::Delete,
        AclOperation::Alter => Operation::Alter,
        AclOperation::Describe => Operation::Describe,
        AclOperation::ClusterAction => Operation::ClusterAction,
        AclOperation::DescribeConfigs => Operation::DescribeConfigs,
        AclOperation::AlterConfigs => Operation::AlterConfigs,
        AclOperation::IdempotentWrite => Operation::IdempotentWrite,
        AclOperation::All => Operation::All,
    }
}

/// Makes `principal`'s bindings in `acls` exactly `wanted` (every binding of `wanted` must be
/// of `principal`), leaving every other principal's alone. True when `acls` changed.
pub fn replace_bindings(acls: &mut AclSet, principal: &str, wanted: &AclSet) -> bool {
    let stale: Vec<AclBinding> = acls
        .iter()
        .filter(|b| b.entry.principal == principal && !wanted.contains(b))
        .cloned()
        .collect();
    for b in &stale {
        acls.remove(b);
    }
    let mut changed = !stale.is_empty();
    for b in wanted {
        changed |= acls.insert(b.clone());
    }
    changed
}

/// Gives `user` a [`MECHANISM`] credential for `password`, keeping the stored one when it
/// already verifies the password (re-deriving it with `salt` only when the password changed).
/// True when `users` changed.
pub fn ensure_credential(users: &mut Users, user: &str, password: &str, salt: &[u8]) -> bool {
    let current = users
        .get(user)
        .and_then(|creds| creds.get(&MECHANISM))
        .and_then(Credential::decode);
    if current.is_some_and(|c| c.verifies(MECHANISM, password.as_bytes())) {
        return false;
    }
    let Some(derived) = StoredCredential::derive(MECHANISM, password.as_bytes(), salt, ITERATIONS)
    else {
        return false;
    };
    users
        .entry(user.to_owned())
        .or_default()
        .insert(MECHANISM, Credential::encode(&derived));
    true
}

/// Removes every SCRAM credential of `user`. True when `users` changed.
pub fn remove_credentials(users: &mut Users, user: &str) -> bool {
    users.remove(user).is_some()
}

/// The Kafka quotas `quotas` sets for the user, by Kafka key; none without `quotas`.
pub fn quota_values(quotas: Option<&UserQuotas>) -> Values {
    let Some(q) = quotas else {
        return Values::new();
    };
    // The byte rates and the percentage are integers in the spec; Kafka keeps doubles.
    let whole = |v: Option<i64>| v.map(|v| v as f64);
    [
        (PRODUCER_BYTE_RATE, whole(q.producer_byte_rate)),
        (CONSUMER_BYTE_RATE, whole(q.consumer_byte_rate)),
        (REQUEST_PERCENTAGE, whole(q.request_percentage)),
        (CONTROLLER_MUTATION_RATE, q.controller_mutation_rate),
    ]
    .into_iter()
    .filter_map(|(key, value)| Some((key.to_owned(), value?)))
    .collect()
}

/// Makes the quotas of entity `user=<user>` exactly `wanted` (none: the entry is removed),
/// leaving every other entity's (set through the Kafka API) alone. True when `document`
/// changed.
pub fn replace_user_quotas(
    document: &mut ClientQuotaDocument,
    user: &str,
    wanted: &Values,
) -> bool {
    document.replace(&user_entity(user), wanted.clone())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use tributary_crds::user::{AclRuleResource, AuthorizationType};

    fn rule(type_: AclResourceType, name: Option<&str>, ops: &[AclOperation]) -> AclRule {
        AclRule {
            resource: AclRuleResource {
                type_,
                name: name.map(str::to_owned),
                pattern_type: AclPatternType::Literal,
            },
            operations: ops.to_vec(),
            host: "*".to_owned(),
            type_: AclRuleType::Allow,
        }
    }

    fn authorization(acls: Vec<AclRule>) -> UserAuthorization {
        UserAuthorization {
            type_: AuthorizationType::Simple,
            acls,
        }
    }

    #[test]
    fn each_operation_of_a_rule_is_a_binding_and_the_cluster_is_kafka_cluster() {
        let mut prefixed = rule(AclResourceType::Group, Some("app-"), &[AclOperation::Read]);
        prefixed.resource.pattern_type = AclPatternType::Prefix;
        prefixed.type_ = AclRuleType::Deny;
        let a = authorization(vec![
            rule(
                AclResourceType::Topic,
                Some("orders"),
                &[AclOperation::Read, AclOperation::Describe],
            ),
            prefixed,
            rule(
                AclResourceType::Cluster,
                None,
                &[AclOperation::IdempotentWrite],
            ),
        ]);
        let got = bindings("User:alice", Some(&a)).unwrap();
        let summary: Vec<_> = got
            .iter()
            .map(|b| {
                (
                    b.resource.kind,
                    b.resource.name.as_str(),
                    b.resource.pattern,
                    b.entry.operation,
                    b.entry.permission,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    ResourceType::Topic,
                    "orders",
                    PatternType::Literal,
                    Operation::Read,
                    Permission::Allow
                ),
                (
                    ResourceType::Topic,
                    "orders",
                    PatternType::Literal,
                    Operation::Describe,
                    Permission::Allow
                ),
                (
                    ResourceType::Group,
                    "app-",
                    PatternType::Prefixed,
                    Operation::Read,
                    Permission::Deny
                ),
                (
                    ResourceType::Cluster,
                    CLUSTER_NAME,
                    PatternType::Literal,
                    Operation::IdempotentWrite,
                    Permission::Allow
                ),
            ]
        );
        assert!(got
            .iter()
            .all(|b| b.entry.principal == "User:alice" && b.entry.host == "*"));
        assert!(bindings("User:alice", None).unwrap().is_empty());
    }

    #[test]
    fn a_rule_kafka_would_refuse_is_an_error() {
        let a = authorization(vec![rule(
            AclResourceType::Topic,
            None,
            &[AclOperation::Read],
        )]);
        assert_eq!(bindings("User:alice", Some(&a)), Err(InvalidAcl::EmptyName));
        let mut empty_host = rule(AclResourceType::Topic, Some("t"), &[AclOperation::Read]);
        empty_host.host = String::new();
        let a = authorization(vec![empty_host]);
        assert_eq!(bindings("User:alice", Some(&a)), Err(InvalidAcl::EmptyHost));
    }

    #[test]
    fn replacing_a_principals_bindings_keeps_every_other_principals() {
        let topic = |principal: &str, name: &str| {
            AclBinding::new(2, name, 3, principal, "*", 3, 3).unwrap()
        };
        let mut acls = AclSet::from([
            topic("User:alice", "old"),
            topic("User:alice", "kept"),
            topic("User:bob", "old"),
            topic("User:alice2", "old"),
        ]);
        let wanted = AclSet::from([topic("User:alice", "kept"), topic("User:alice", "new")]);
        assert!(replace_bindings(&mut acls, "User:alice", &wanted));
        assert_eq!(
            acls,
            AclSet::from([
                topic("User:alice", "kept"),
                topic("User:alice", "new"),
                topic("User:bob", "old"),
                topic("User:alice2", "old"),
            ])
        );
        assert!(
            !replace_bindings(&mut acls, "User:alice", &wanted),
            "already so"
        );
        assert!(replace_bindings(&mut acls, "User:alice", &AclSet::new()));
        assert_eq!(
            acls,
            AclSet::from([topic("User:bob", "old"), topic("User:alice2", "old")])
        );
    }

    #[test]
    fn a_credential_is_rewritten_only_when_the_password_changes() {
        let mut users = Users::new();
        assert!(ensure_credential(&mut users, "alice", "pw-1", b"salt-1"));
        let first = users["alice"][&MECHANISM].clone();
        assert_eq!(first.iterations, 4096);
        assert!(
            !ensure_credential(&mut users, "alice", "pw-1", b"salt-2"),
            "same password: the stored credential still verifies, nothing is re-derived"
        );
        assert_eq!(users["alice"][&MECHANISM], first);
        assert!(ensure_credential(&mut users, "alice", "pw-2", b"salt-2"));
        let second = users["alice"][&MECHANISM].decode().unwrap();
        assert!(second.verifies(MECHANISM, b"pw-2"));
        assert!(!second.verifies(MECHANISM, b"pw-1"));
        assert!(remove_credentials(&mut users, "alice"));
        assert!(!remove_credentials(&mut users, "alice"));
        assert!(users.is_empty());
    }

    #[test]
    fn each_quota_given_is_its_kafka_key_and_none_given_is_no_quota() {
        assert!(quota_values(None).is_empty());
        assert!(quota_values(Some(&UserQuotas::default())).is_empty());
        let q = UserQuotas {
            producer_byte_rate: Some(1024),
            consumer_byte_rate: None,
            request_percentage: Some(55),
            controller_mutation_rate: Some(0.5),
        };
        assert_eq!(
            quota_values(Some(&q)),
            Values::from([
                (PRODUCER_BYTE_RATE.to_owned(), 1024.0),
                (REQUEST_PERCENTAGE.to_owned(), 55.0),
                (CONTROLLER_MUTATION_RATE.to_owned(), 0.5),
            ])
        );
    }

    #[test]
    fn a_users_quotas_are_replaced_and_removed_and_other_entities_kept() {
        use tributary_crds::quotas::{Entity, EntityType};
        let mut document = ClientQuotaDocument::default();
        // Set through the Kafka API: alice's quota for one client id, and the users' default.
        let alice_client = Entity::from([
            (EntityType::User, Some("alice".to_owned())),
            (EntityType::ClientId, Some("app".to_owned())),
        ]);
        let default_user = Entity::from([(EntityType::User, None)]);
        let rate = |v: f64| Values::from([(PRODUCER_BYTE_RATE.to_owned(), v)]);
        document.replace(&alice_client, rate(1.0));
        document.replace(&default_user, rate(2.0));
        let kept = document.clone();

        assert!(replace_user_quotas(&mut document, "alice", &rate(100.0)));
        assert!(!replace_user_quotas(&mut document, "alice", &rate(100.0)));
        assert_eq!(document.entities[&user_entity("alice")], rate(100.0));
        let fewer = Values::from([(CONSUMER_BYTE_RATE.to_owned(), 5.0)]);
        assert!(replace_user_quotas(&mut document, "alice", &fewer));
        assert_eq!(document.entities[&user_entity("alice")], fewer);
        assert!(replace_user_quotas(&mut document, "alice", &Values::new()));
        assert!(!replace_user_quotas(&mut document, "alice", &Values::new()));
        assert_eq!(document, kept, "only alice's own entry was the KafkaUser's");
    }

    #[test]
    fn another_mechanism_of_the_user_is_kept_and_other_users_untouched() {
        let mut users = Users::new();
        let other = StoredCredential::derive(Mechanism::Sha256, b"x", b"s", 4096).unwrap();
        users.insert(
            "alice".into(),
            BTreeMap::from([(Mechanism::Sha256, Credential::encode(&other))]),
        );
        users.insert("bob".into(), users["alice"].clone());
        assert!(ensure_credential(&mut users, "alice", "pw", b"salt"));
        assert_eq!(users["alice"].len(), 2);
        assert_eq!(users["bob"].len(), 1);
    }
}
