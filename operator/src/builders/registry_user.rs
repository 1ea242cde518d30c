//! The KafkaUser `<cluster>-schema-registry` the registry logs in to the brokers as, where the
//! listener it uses authenticates clients: SCRAM-SHA-512 or a certificate, as the listener
//! asks, and, when the cluster has authorization, ACLs for exactly what the registry does: its
//! topic (create, describe, read, write), its consumer group and the transactional id its
//! writers share. The KafkaUser reconciler then writes the Secret (same name) the registry
//! pods read. Owned by the cluster; removed with the registry. Pure.

use tributary_crds::cluster::SchemaRegistry;
use tributary_crds::user::{
    AclOperation, AclPatternType, AclResourceType, AclRule, AclRuleResource, AclRuleType,
    AuthenticationType, AuthorizationType, KafkaUserSpec, UserAuthentication, UserAuthorization,
};
use tributary_crds::{KafkaCluster, KafkaUser};

use super::registry::meta;
use super::registry_security::{KafkaAccess, KafkaLogin};
use super::Names;

/// The consumer group of the registry's readers (its `group.id`; they assign partitions
/// themselves and commit nothing, but the group is still authorized).
pub const REGISTRY_GROUP: &str = "tributary-schema-registry";

/// The transactional id the registry's writers of `topic` share (the registry's
/// `kafka::writer::transactional_id`).
pub fn registry_transactional_id(topic: &str) -> String {
    format!("tributary-schema-registry-{topic}")
}

fn rule(type_: AclResourceType, name: &str, operations: Vec<AclOperation>) -> AclRule {
    AclRule {
        resource: AclRuleResource {
            type_,
            name: Some(name.to_owned()),
            pattern_type: AclPatternType::Literal,
        },
        operations,
        host: "*".to_owned(),
        type_: AclRuleType::Allow,
    }
}

/// The registry's KafkaUser, when `access` needs a login.
pub fn registry_user(
    cluster: &KafkaCluster,
    registry: &SchemaRegistry,
    access: &KafkaAccess,
    names: &Names,
) -> Option<KafkaUser> {
    let type_ = match access.login {
        KafkaLogin::None => return None,
        KafkaLogin::Scram => AuthenticationType::ScramSha512,
        KafkaLogin::Certificate => AuthenticationType::Tls,
    };
    let authorization = cluster.spec.authorization.as_ref().map(|_| {
        use AclOperation::{Create, Describe, DescribeConfigs, Read, Write};
        UserAuthorization {
            type_: AuthorizationType::Simple,
            acls: vec![
                rule(
                    AclResourceType::Topic,
                    &registry.topic,
                    vec![Create, Describe, DescribeConfigs, Read, Write],
                ),
                rule(AclResourceType::Group, REGISTRY_GROUP, vec![Describe, Read]),
                rule(
                    AclResourceType::TransactionalId,
                    &registry_transactional_id(&registry.topic),
                    vec![Describe, Write],
                ),
            ],
        }
    });
    let mut user = KafkaUser::new(
        &tributary_crds::cluster::registry_name(&names.cluster),
        KafkaUserSpec {
            authentication: Some(UserAuthentication {
                type_,
                password: None,
            }),
            authorization,
            quotas: None,
        },
    );
    user.metadata = meta(names);
    Some(user)
}
