//! RBAC as Kubernetes evaluates it, as pure functions over the stored Roles, ClusterRoles and
//! bindings: the authorizer ([`Policy::authorize`]), its 403 ([`forbidden`]), escalation
//! prevention for writes of RBAC objects ([`escalation`]), the built-in roles a fresh cluster
//! has ([`builtin_roles`]) and the access reviews' answers ([`review`]), which the server
//! serves for whom a request acts as ([`identity`](super::identity)).

pub mod aggregation;
mod authorizer;
pub mod builtin_roles;
pub mod escalation;
mod forbidden;
pub mod review;
mod rules;
#[cfg(test)]
mod tests;

pub use self::authorizer::{Decision, Policy, ResolvedRules};
pub use self::forbidden::forbidden;
pub use self::rules::{rule_allows, service_account_username, Request, ResourceRequest, UserInfo};
