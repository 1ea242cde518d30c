//! Kafka's ACL model as the protocol carries it, and the ACL document brokers share: resource
//! types, pattern types, operations and permissions by their wire codes, and an ACL binding (a
//! resource pattern and an access control entry).
//!
//! The brokers of a cluster keep every binding as one JSON list, [`AclSet`], in the key
//! [`crate::registration::ACLS_KEY`] of the ConfigMap [`crate::registration::acls_name`]; the
//! broker's CreateAcls/DeleteAcls and the operator's KafkaUser reconciler both write it, so
//! the format is defined once, here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The name of the one cluster resource (`kafka-cluster`), as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The resource name and the principal name that match every other (`*`).
pub const WILDCARD: &str = "*";

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* $variant),*
        }

        impl $name {
            /// The value of wire code `code`, if Kafka defines one.
            pub fn from_code(code: i8) -> Option<$name> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// Its wire code.
            pub fn code(self) -> i8 {
                match self {
                    $($name::$variant => $code),*
                }
            }
        }
    };
}

wire_enum!(
    /// What an ACL protects (Kafka's `ResourceType`).
    ResourceType {
        /// Matches every type (filters only).
        Any = 1,
        /// A topic.
        Topic = 2,
        /// A consumer group.
        Group = 3,
        /// The cluster (`kafka-cluster`).
        Cluster = 4,
        /// A transactional id.
        TransactionalId = 5,
        /// A delegation token.
        DelegationToken = 6,
        /// A user (for tokens).
        User = 7,
    }
);

wire_enum!(
    /// How an ACL's resource name matches (Kafka's `PatternType`).
    PatternType {
        /// Any pattern type (filters only).
        Any = 1,
        /// Every binding that would apply to the named resource (filters only).
        Match = 2,
        /// The exact name, or `*` for all.
        Literal = 3,
        /// Every name starting with it.
        Prefixed = 4,
    }
);

wire_enum!(
    /// What an ACL allows or denies (Kafka's `AclOperation`).
    Operation {
        /// Any operation (filters only).
        Any = 1,
        /// Every operation.
        All = 2,
        /// Read.
        Read = 3,
        /// Write.
        Write = 4,
        /// Create.
        Create = 5,
        /// Delete.
        Delete = 6,
        /// Alter.
        Alter = 7,
        /// Describe.
        Describe = 8,
        /// Inter-broker requests.
        ClusterAction = 9,
        /// Describe configs.
        DescribeConfigs = 10,
        /// Alter configs.
        AlterConfigs = 11,
        /// Produce idempotently without a transactional id.
        IdempotentWrite = 12,
        /// Create delegation tokens.
        CreateTokens = 13,
        /// Describe delegation tokens.
        DescribeTokens = 14,
    }
);

wire_enum!(
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    Permission {
        /// Either (filters only).
        Any = 1,
        /// Deny: wins over any allow.
        Deny = 2,
        /// Allow.
        Allow = 3,
    }
);

impl ResourceType {
    /// The operations Kafka reports as authorized for this type (`authorizedOperations`).
    pub fn operations(self) -> &'static [Operation] {
        use Operation::*;
        match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Describe, Delete],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Describe, Write],
            ResourceType::DelegationToken => &[Describe],
            ResourceType::User => &[CreateTokens, DescribeTokens],
            ResourceType::Any => &[],
        }
    }
}

/// Which resources a binding applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourcePattern {
    /// The resource type (never `Any`).
    pub kind: ResourceType,
    /// The name, a prefix, or `*`.
    pub name: String,
    /// Literal or prefixed.
    pub pattern: PatternType,
}

/// Who may (or may not) do what, from where.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AccessEntry {
    /// `User:alice`, or `User:*` for everyone.
    pub principal: String,
    /// A client IP, or `*`.
    pub host: String,
    /// The operation (never `Any`).
    pub operation: Operation,
    /// Allow or deny (never `Any`).
    pub permission: Permission,
}

/// One ACL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    /// The resources it applies to.
    pub resource: ResourcePattern,
    /// The entry.
    pub entry: AccessEntry,
}

/// Every ACL of a cluster: the shared ACL document (a JSON list of bindings).
pub type AclSet = BTreeSet<AclBinding>;

/// Why a binding cannot be created (INVALID_REQUEST, with this as the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAcl {
    /// A code Kafka does not define, or one only filters may use.
    #[error("invalid {field} {code}")]
    Code {
        /// Which field.
        field: &'static str,
        /// The code sent.
        code: i8,
    },
    /// An empty resource name.
    #[error("the resource name must not be empty")]
    EmptyName,
    /// A cluster resource not named `kafka-cluster`.
    #[error("the cluster resource must be named {CLUSTER_NAME}")]
    ClusterName,
    /// A principal that is not `type:name`.
    #[error("principal {0:?} is not of the form type:name")]
    Principal(String),
    /// An empty host.
    #[error("the host must not be empty")]
    EmptyHost,
}

impl AclBinding {
    /// Checks a binding CreateAcls received, as Kafka's controller does.
    pub fn new(
        kind: i8,
        name: &str,
        pattern: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Result<AclBinding, InvalidAcl> {
        let code = |field, code| InvalidAcl::Code { field, code };
        let kind_ = ResourceType::from_code(kind)
            .filter(|k| *k != ResourceType::Any)
            .ok_or(code("resource type", kind))?;
        let pattern_ = PatternType::from_code(pattern)
            .filter(|p| matches!(p, PatternType::Literal | PatternType::Prefixed))
            .ok_or(code("pattern type", pattern))?;
        let operation_ = Operation::from_code(operation)
            .filter(|o| *o != Operation::Any)
            .ok_or(code("operation", operation))?;
        let permission_ = Permission::from_code(permission)
            .filter(|p| *p != Permission::Any)
            .ok_or(code("permission type", permission))?;
        if name.is_empty() {
            return Err(InvalidAcl::EmptyName);
        }
        if kind_ == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(InvalidAcl::ClusterName);
        }
        if !principal
            .split_once(':')
            .is_some_and(|(t, n)| !t.is_empty() && !n.is_empty())
        {
            return Err(InvalidAcl::Principal(principal.to_owned()));
        }
        if host.is_empty() {
            return Err(InvalidAcl::EmptyHost);
        }
        Ok(AclBinding {
            resource: ResourcePattern {
                kind: kind_,
                name: name.to_owned(),
                pattern: pattern_,
            },
            entry: AccessEntry {
                principal: principal.to_owned(),
                host: host.to_owned(),
                operation: operation_,
                permission: permission_,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_refuses_what_kafka_refuses() {
        let new = |kind: i8, name: &str, pattern: i8, principal: &str, op: i8, perm: i8| {
            AclBinding::new(kind, name, pattern, principal, "*", op, perm)
        };
        assert!(new(2, "t", 3, "User:a", 3, 3).is_ok());
        assert!(new(1, "t", 3, "User:a", 3, 3).is_err(), "type ANY");
        assert!(new(9, "t", 3, "User:a", 3, 3).is_err(), "unknown type");
        assert!(new(2, "t", 2, "User:a", 3, 3).is_err(), "pattern MATCH");
        assert!(new(2, "t", 3, "User:a", 1, 3).is_err(), "operation ANY");
        assert!(new(2, "t", 3, "User:a", 3, 1).is_err(), "permission ANY");
        assert!(new(2, "", 3, "User:a", 3, 3).is_err(), "empty name");
        assert!(
            new(2, "t", 3, "alice", 3, 3).is_err(),
            "principal without a type"
        );
        assert!(
            new(4, "c", 3, "User:a", 7, 3).is_err(),
            "cluster not kafka-cluster"
        );
        assert!(new(4, CLUSTER_NAME, 3, "User:a", 7, 3).is_ok());
    }

    #[test]
    fn the_document_is_a_json_list_of_bindings_with_named_variants() {
        let binding = AclBinding::new(5, "tx-", 4, "User:alice", "*", 4, 2).unwrap();
        let json = serde_json::to_string(&AclSet::from([binding.clone()])).unwrap();
        assert_eq!(
            json,
            r#"[{"resource":{"kind":"TransactionalId","name":"tx-","pattern":"Prefixed"},"entry":{"principal":"User:alice","host":"*","operation":"Write","permission":"Deny"}}]"#
        );
        let back: AclSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_iter().collect::<Vec<_>>(), [binding]);
    }
}
