//! Kafka's ACL model as the protocol carries it. The bindings and their codes are the shared
//! ACL document's ([`tributary_crds::acls`], which the operator writes too); the filters
//! DescribeAcls and DeleteAcls match bindings with are the broker's own.

pub use tributary_crds::acls::{
    AccessEntry, AclBinding, InvalidAcl, Operation, PatternType, Permission, ResourcePattern,
    ResourceType, CLUSTER_NAME, WILDCARD,
};

/// Which bindings DescribeAcls lists and DeleteAcls removes (Kafka's `AclBindingFilter`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// The type, or `Any`.
    pub kind: ResourceType,
    /// The name (`None`: any).
    pub name: Option<String>,
    /// Any, match, literal or prefixed.
    pub pattern: PatternType,
    /// The principal (`None`: any).
    pub principal: Option<String>,
    /// The host (`None`: any).
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: Operation,
    /// The permission, or `Any`.
    pub permission: Permission,
}

impl AclFilter {
    /// A filter from its wire fields; `None` when a code is not one Kafka defines (Kafka
    /// answers INVALID_REQUEST).
    pub fn new(
        kind: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Option<AclFilter> {
        Some(AclFilter {
            kind: ResourceType::from_code(kind)?,
            name: name.map(str::to_owned),
            pattern: PatternType::from_code(pattern)?,
            principal: principal.map(str::to_owned),
            host: host.map(str::to_owned),
            operation: Operation::from_code(operation)?,
            permission: Permission::from_code(permission)?,
        })
    }

    /// Whether `binding` passes the filter.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let (r, e) = (&binding.resource, &binding.entry);
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        (self.kind == ResourceType::Any || self.kind == r.kind)
            && self.matches_pattern(r)
            && same(&self.principal, &e.principal)
            && same(&self.host, &e.host)
            && (self.operation == Operation::Any || self.operation == e.operation)
            && (self.permission == Permission::Any || self.permission == e.permission)
    }

    fn matches_pattern(&self, r: &ResourcePattern) -> bool {
        match (self.pattern, &self.name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(name)) => *name == r.name,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(name)) => applies_to(r, name),
            (pattern, name) => pattern == r.pattern && name.as_ref().is_none_or(|n| *n == r.name),
        }
    }
}

/// Whether pattern `r` applies to the resource named `name` (of its type): the same literal
/// name, the literal wildcard, or a prefix of it.
pub fn applies_to(r: &ResourcePattern, name: &str) -> bool {
    match r.pattern {
        PatternType::Literal => r.name == name || r.name == WILDCARD,
        PatternType::Prefixed => name.starts_with(&r.name),
        PatternType::Any | PatternType::Match => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(kind: ResourceType, name: &str, pattern: PatternType) -> AclBinding {
        AclBinding::new(
            kind.code(),
            name,
            pattern.code(),
            "User:alice",
            "*",
            Operation::Read.code(),
            Permission::Allow.code(),
        )
        .expect("valid")
    }

    fn filter(kind: ResourceType, name: Option<&str>, pattern: PatternType) -> AclFilter {
        AclFilter {
            kind,
            name: name.map(str::to_owned),
            pattern,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    #[test]
    fn filters_match_as_kafkas_acl_binding_filter() {
        let literal = binding(ResourceType::Topic, "orders", PatternType::Literal);
        let wildcard = binding(ResourceType::Topic, "*", PatternType::Literal);
        let prefixed = binding(ResourceType::Topic, "ord", PatternType::Prefixed);
        let group = binding(ResourceType::Group, "orders", PatternType::Literal);
        let all = [&literal, &wildcard, &prefixed, &group];
        let hits = |f: AclFilter| all.iter().filter(|b| f.matches(b)).count();
        assert_eq!(hits(filter(ResourceType::Any, None, PatternType::Any)), 4);
        assert_eq!(hits(filter(ResourceType::Topic, None, PatternType::Any)), 3);
        assert_eq!(
            hits(filter(
                ResourceType::Topic,
                Some("orders"),
                PatternType::Any
            )),
            1,
            "ANY with a name: that exact name, whatever the pattern type"
        );
        assert_eq!(
            hits(filter(
                ResourceType::Topic,
                Some("orders"),
                PatternType::Match
            )),
            3,
            "MATCH: everything that applies to topic orders"
        );
        assert_eq!(
            hits(filter(ResourceType::Topic, None, PatternType::Prefixed)),
            1
        );
        assert_eq!(
            hits(filter(
                ResourceType::Topic,
                Some("ord"),
                PatternType::Literal
            )),
            0
        );
        let mut by_principal = filter(ResourceType::Any, None, PatternType::Any);
        by_principal.principal = Some("User:bob".to_owned());
        assert_eq!(hits(by_principal), 0);
    }
}
