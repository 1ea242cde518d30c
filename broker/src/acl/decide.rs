//! The authorization decision, as Kafka's StandardAuthorizer makes it: super users may do
//! everything; otherwise the bindings that apply to the resource (its literal name, the
//! literal wildcard, any prefix of it) and to the principal (or `User:*`) and host (or `*`)
//! decide: a DENY for the operation (or ALL) wins, then an ALLOW for it, for ALL, or for an
//! operation that implies it (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS
//! implies DESCRIBE_CONFIGS). A resource no binding applies to at all is allowed only with
//! `allow.everyone.if.no.acl.found`.

use super::model::{applies_to, AclBinding, Operation, Permission, ResourceType, WILDCARD};

/// What a decision depends on besides the bindings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `super.users`: principals (`User:admin`) allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// Who asks to do what to which resource.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// `User:alice`.
    pub principal: &'a str,
    /// The client's IP.
    pub host: &'a str,
    /// What it asks to do.
    pub operation: Operation,
    /// The resource's type.
    pub kind: ResourceType,
    /// The resource's name.
    pub name: &'a str,
}

/// Operations whose ALLOW also allows `op`.
fn allowing(op: Operation) -> &'static [Operation] {
    use Operation::*;
    match op {
        Describe => &[Describe, All, Read, Write, Delete, Alter],
        DescribeConfigs => &[DescribeConfigs, All, AlterConfigs],
        Read => &[Read, All],
        Write => &[Write, All],
        Create => &[Create, All],
        Delete => &[Delete, All],
        Alter => &[Alter, All],
        ClusterAction => &[ClusterAction, All],
        AlterConfigs => &[AlterConfigs, All],
        IdempotentWrite => &[IdempotentWrite, All],
        CreateTokens => &[CreateTokens, All],
        DescribeTokens => &[DescribeTokens, All],
        All => &[All],
        Any => &[],
    }
}

fn for_whom(b: &AclBinding, principal: &str, host: &str) -> bool {
    let e = &b.entry;
    let everyone = e
        .principal
        .split_once(':')
        .is_some_and(|(_, name)| name == WILDCARD);
    (e.principal == principal || everyone) && (e.host == WILDCARD || e.host == host)
}

/// Whether `access` is allowed by `acls` under `policy`.
pub fn authorize(acls: &[AclBinding], policy: &Policy, access: Access<'_>) -> bool {
    if policy.super_users.iter().any(|s| s == access.principal) {
        return true;
    }
    let mut applicable = acls
        .iter()
        .filter(|b| b.resource.kind == access.kind && applies_to(&b.resource, access.name))
        .peekable();
    if applicable.peek().is_none() {
        return policy.allow_if_no_acl;
    }
    let mine: Vec<&AclBinding> = applicable
        .filter(|b| for_whom(b, access.principal, access.host))
        .collect();
    let denied = mine.iter().any(|b| {
        b.entry.permission == Permission::Deny
            && matches!(b.entry.operation, o if o == access.operation || o == Operation::All)
    });
    if denied {
        return false;
    }
    let allows = allowing(access.operation);
    mine.iter()
        .any(|b| b.entry.permission == Permission::Allow && allows.contains(&b.entry.operation))
}

/// Kafka's `authorizedOperations` bit field for a resource: bit `code` set for each operation
/// of its type that `principal` at `host` may perform.
pub fn authorized_operations(
    acls: &[AclBinding],
    policy: &Policy,
    principal: &str,
    host: &str,
    kind: ResourceType,
    name: &str,
) -> i32 {
    kind.operations()
        .iter()
        .filter(|op| {
            let access = Access {
                principal,
                host,
                operation: **op,
                kind,
                name,
            };
            authorize(acls, policy, access)
        })
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Whether `principal` may perform `operation` on some resource of type `kind` (Kafka's
/// `authorizeByResourceType`, which lets an idempotent producer in with WRITE on any topic):
/// an ALLOW for it applies to the principal, and no DENY for it covers every resource of the
/// type (the literal wildcard); with no binding of the type at all, the policy decides.
pub fn authorize_any(
    acls: &[AclBinding],
    policy: &Policy,
    principal: &str,
    host: &str,
    operation: Operation,
    kind: ResourceType,
) -> bool {
    if policy.super_users.iter().any(|s| s == principal) {
        return true;
    }
    let of_type: Vec<&AclBinding> = acls.iter().filter(|b| b.resource.kind == kind).collect();
    if of_type.is_empty() {
        return policy.allow_if_no_acl;
    }
    let mine: Vec<&&AclBinding> = of_type
        .iter()
        .filter(|b| for_whom(b, principal, host))
        .collect();
    let denied_everywhere = mine.iter().any(|b| {
        b.entry.permission == Permission::Deny
            && (b.entry.operation == operation || b.entry.operation == Operation::All)
            && b.resource.name == WILDCARD
            && b.resource.pattern == super::model::PatternType::Literal
    });
    let allows = allowing(operation);
    !denied_everywhere
        && mine
            .iter()
            .any(|b| b.entry.permission == Permission::Allow && allows.contains(&b.entry.operation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::model::PatternType;

    fn acl(
        kind: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        host: &str,
        op: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding::new(
            kind.code(),
            name,
            pattern.code(),
            principal,
            host,
            op.code(),
            permission.code(),
        )
        .expect("valid")
    }

    fn topic(name: &str, principal: &str, op: Operation, permission: Permission) -> AclBinding {
        acl(
            ResourceType::Topic,
            name,
            PatternType::Literal,
            principal,
            "*",
            op,
            permission,
        )
    }

    fn may(acls: &[AclBinding], policy: &Policy, who: &str, op: Operation, name: &str) -> bool {
        let access = Access {
            principal: who,
            host: "10.0.0.1",
            operation: op,
            kind: ResourceType::Topic,
            name,
        };
        authorize(acls, policy, access)
    }

    #[test]
    fn without_bindings_the_policy_decides_and_super_users_pass() {
        let closed = Policy::default();
        assert!(!may(&[], &closed, "User:alice", Operation::Read, "t"));
        let open = Policy {
            allow_if_no_acl: true,
            ..Policy::default()
        };
        assert!(may(&[], &open, "User:alice", Operation::Read, "t"));
        let supers = Policy {
            super_users: vec!["User:admin".to_owned()],
            ..Policy::default()
        };
        let deny = [topic("t", "User:*", Operation::All, Permission::Deny)];
        assert!(may(&deny, &supers, "User:admin", Operation::Delete, "t"));
    }

    #[test]
    fn a_binding_on_the_resource_closes_it_to_everyone_else_even_when_open_by_default() {
        let open = Policy {
            allow_if_no_acl: true,
            ..Policy::default()
        };
        let acls = [topic("t", "User:alice", Operation::Read, Permission::Allow)];
        assert!(may(&acls, &open, "User:alice", Operation::Read, "t"));
        assert!(!may(&acls, &open, "User:bob", Operation::Read, "t"));
        assert!(
            may(&acls, &open, "User:bob", Operation::Read, "other"),
            "no binding applies to it"
        );
    }

    #[test]
    fn deny_wins_and_implied_operations_follow_kafka() {
        let p = Policy::default();
        let acls = [
            topic("t", "User:alice", Operation::Read, Permission::Allow),
            topic(
                "t",
                "User:alice",
                Operation::AlterConfigs,
                Permission::Allow,
            ),
            topic("t", "User:*", Operation::Write, Permission::Deny),
            topic("t", "User:*", Operation::Write, Permission::Allow),
        ];
        assert!(may(&acls, &p, "User:alice", Operation::Read, "t"));
        assert!(
            may(&acls, &p, "User:alice", Operation::Describe, "t"),
            "READ implies DESCRIBE"
        );
        assert!(
            may(&acls, &p, "User:alice", Operation::DescribeConfigs, "t"),
            "ALTER_CONFIGS implies DESCRIBE_CONFIGS"
        );
        assert!(
            !may(&acls, &p, "User:alice", Operation::Write, "t"),
            "DENY wins"
        );
        assert!(!may(&acls, &p, "User:alice", Operation::Delete, "t"));
        let deny_read = [
            topic("t", "User:alice", Operation::All, Permission::Allow),
            topic("t", "User:alice", Operation::Read, Permission::Deny),
        ];
        assert!(!may(&deny_read, &p, "User:alice", Operation::Read, "t"));
        assert!(
            may(&deny_read, &p, "User:alice", Operation::Describe, "t"),
            "a DENY applies to its own operation only"
        );
    }

    #[test]
    fn prefixes_wildcards_and_hosts_apply_as_in_kafka() {
        let p = Policy::default();
        let acls = [
            acl(
                ResourceType::Topic,
                "orders-",
                PatternType::Prefixed,
                "User:alice",
                "*",
                Operation::Write,
                Permission::Allow,
            ),
            acl(
                ResourceType::Topic,
                "*",
                PatternType::Literal,
                "User:bob",
                "10.0.0.2",
                Operation::Read,
                Permission::Allow,
            ),
        ];
        assert!(may(&acls, &p, "User:alice", Operation::Write, "orders-eu"));
        assert!(!may(&acls, &p, "User:alice", Operation::Write, "order"));
        assert!(
            !may(&acls, &p, "User:bob", Operation::Read, "orders-eu"),
            "bob is allowed from 10.0.0.2 only"
        );
        let access = Access {
            principal: "User:bob",
            host: "10.0.0.2",
            operation: Operation::Read,
            kind: ResourceType::Topic,
            name: "anything",
        };
        assert!(authorize(&acls, &p, access));
    }

    #[test]
    fn authorized_operations_set_the_bit_of_each_allowed_operation() {
        let p = Policy::default();
        let acls = [topic("t", "User:alice", Operation::Read, Permission::Allow)];
        let bits = authorized_operations(&acls, &p, "User:alice", "h", ResourceType::Topic, "t");
        let read_and_describe = (1 << Operation::Read.code()) | (1 << Operation::Describe.code());
        assert_eq!(bits, read_and_describe);
    }

    #[test]
    fn an_idempotent_producer_needs_write_on_some_topic() {
        let p = Policy::default();
        let acls = [acl(
            ResourceType::Topic,
            "orders-",
            PatternType::Prefixed,
            "User:alice",
            "*",
            Operation::Write,
            Permission::Allow,
        )];
        let any =
            |who: &str| authorize_any(&acls, &p, who, "h", Operation::Write, ResourceType::Topic);
        assert!(any("User:alice"));
        assert!(!any("User:bob"));
    }
}
