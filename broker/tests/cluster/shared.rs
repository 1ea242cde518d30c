//! ACLs, SCRAM credentials and cluster-wide dynamic configs in cluster mode live in
//! Kubernetes: an ACL created through any broker is enforced by every broker, so is a
//! deletion, changes made at once on two brokers are both kept, and a broker that starts later
//! applies them; a SCRAM credential set through one broker lets the user log in at every
//! broker, and so does a delegation token created through one; a cluster-wide config set
//! through one broker is every broker's default.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreateAclsRequest, CreateAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tributary_broker::acl::model::{PatternType, Permission};
use tributary_broker::acl::{Access, AclBinding, AclFilter, Operation, ResourceType};
use tributary_broker::config::Flags;
use tributary_broker::dynamic_config::Level;
use tributary_broker::security::credentials::{Mechanism, Upsertion};
use tributary_crds::registration::{
    acls_name, scram_credentials_name, ACLS_KEY, SCRAM_CREDENTIALS_KEY,
};

use crate::support::{brokers, kafka_call, wait_until, ControlPlane, RunningBroker, CLUSTER};

/// An authorizer with the tests' own connections (`User:ANONYMOUS`) as super user, so they
/// may manage ACLs over the Kafka protocol.
fn with_authorizer(flags: &mut Flags) {
    flags.security = Some(BTreeMap::from([
        (
            "authorizer.class.name".to_owned(),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_owned(),
        ),
        ("super.users".to_owned(), "User:ANONYMOUS".to_owned()),
    ]));
}

fn read(principal: &str, topic: &str) -> AclBinding {
    AclBinding::new(
        ResourceType::Topic.code(),
        topic,
        PatternType::Literal.code(),
        principal,
        "*",
        Operation::Read.code(),
        Permission::Allow.code(),
    )
    .expect("a valid ACL")
}

fn may_read(broker: &RunningBroker, principal: &str, topic: &str) -> bool {
    let authorizer = broker.broker.authorizer.as_ref().expect("an authorizer");
    authorizer.authorize(Access {
        principal,
        host: "10.0.0.1",
        operation: Operation::Read,
        kind: ResourceType::Topic,
        name: topic,
    })
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_created_or_deleted_through_one_broker_are_enforced_by_every_broker() {
    let plane = ControlPlane::new().await;
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let start = |id: usize| {
        RunningBroker::start_tuned(
            plane.client.clone(),
            id as i32,
            dirs[id].path(),
            with_authorizer,
        )
    };
    let (b0, b1) = (start(0).await, start(1).await);
    assert!(!may_read(&b1, "User:alice", "orders"), "no ACL: denied");

    // CreateAcls through broker 0, as kafka-acls.sh sends it.
    let creation = AclCreation::default()
        .with_resource_type(ResourceType::Topic.code())
        .with_resource_name(text("orders"))
        .with_resource_pattern_type(PatternType::Literal.code())
        .with_principal(text("User:alice"))
        .with_host(text("*"))
        .with_operation(Operation::Read.code())
        .with_permission_type(Permission::Allow.code());
    let created: CreateAclsResponse = kafka_call(
        &b0.address,
        ApiKey::CreateAcls,
        3,
        &CreateAclsRequest::default().with_creations(vec![creation]),
    )
    .await;
    assert_eq!(created.results[0].error_code, 0, "{created:?}");
    wait_until("broker 1 to allow alice's read", || async {
        may_read(&b1, "User:alice", "orders").then_some(())
    })
    .await;
    let listed: DescribeAclsResponse = kafka_call(
        &b1.address,
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(ResourceType::Any.code())
            .with_resource_name_filter(None)
            .with_pattern_type_filter(PatternType::Any.code())
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(Operation::Any.code())
            .with_permission_type(Permission::Any.code()),
    )
    .await;
    assert_eq!(listed.error_code, 0, "{listed:?}");
    assert_eq!(listed.resources.len(), 1, "{listed:?}");
    assert_eq!(listed.resources[0].resource_name.as_str(), "orders");

    // Changes made at once on two brokers are both kept (conditional writes, retried).
    let (a0, a1) = (
        b0.broker.authorizer.clone().expect("an authorizer"),
        b1.broker.authorizer.clone().expect("an authorizer"),
    );
    let (bob, carol) = ([read("User:bob", "orders")], [read("User:carol", "orders")]);
    let (r0, r1) = tokio::join!(a0.create(&bob), a1.create(&carol));
    r0.expect("broker 0 created bob's ACL");
    r1.expect("broker 1 created carol's ACL");
    for who in ["User:alice", "User:bob", "User:carol"] {
        for b in [&b0, &b1] {
            wait_until(&format!("{who} allowed everywhere"), || async {
                may_read(b, who, "orders").then_some(())
            })
            .await;
        }
    }
    let map: ConfigMap = plane
        .api()
        .get(&acls_name(CLUSTER))
        .await
        .expect("the ACL ConfigMap");
    let stored = map
        .data
        .and_then(|d| d.get(ACLS_KEY).cloned())
        .unwrap_or_default();
    assert_eq!(stored.matches("\"User:").count(), 3, "{stored}");

    // A broker that starts later applies them; a deletion on broker 1 reaches broker 0.
    let b2 = start(2).await;
    wait_until("broker 2 to allow carol's read", || async {
        may_read(&b2, "User:carol", "orders").then_some(())
    })
    .await;
    let alice = AclFilter::new(
        ResourceType::Any.code(),
        None,
        PatternType::Any.code(),
        Some("User:alice"),
        None,
        Operation::Any.code(),
        Permission::Any.code(),
    )
    .expect("a valid filter");
    let removed = a1.delete(&[alice]).await.expect("deleted");
    assert_eq!(removed[0].len(), 1);
    wait_until("broker 0 to deny alice again", || async {
        (!may_read(&b0, "User:alice", "orders")).then_some(())
    })
    .await;
    assert!(may_read(&b0, "User:bob", "orders"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scram_credential_set_through_one_broker_is_checked_by_every_broker() {
    let plane = ControlPlane::new().await;
    let (_dirs, brokers) = brokers(&plane, 2).await;
    let (b0, b1) = (&brokers[0], &brokers[1]);

    let salt = b"a-salt-of-16-byt".to_vec();
    let salted = Mechanism::Sha512
        .salted_password(b"alice-secret", &salt, 4096)
        .expect("salted password");
    let upsert = Upsertion {
        user: "alice".into(),
        mechanism: Mechanism::Sha512.code(),
        iterations: 4096,
        salt: salt.clone(),
        salted_password: salted,
    };
    let outcomes = b0.broker.scram.alter(&[], &[upsert]).await;
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    let at_b1 = wait_until("broker 1 to know alice's credential", || async {
        b1.broker.scram.lookup("alice", Mechanism::Sha512)
    })
    .await;
    assert_eq!(
        Some(at_b1.clone()),
        b0.broker.scram.lookup("alice", Mechanism::Sha512)
    );
    assert_eq!(at_b1.salt, salt);

    let secret: Secret = plane
        .api()
        .get(&scram_credentials_name(CLUSTER))
        .await
        .expect("the SCRAM Secret");
    let stored = secret
        .data
        .and_then(|d| d.get(SCRAM_CREDENTIALS_KEY).cloned())
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default();
    assert!(
        stored.contains("alice") && !stored.contains("alice-secret"),
        "{stored}"
    );

    // A deletion through broker 1 reaches broker 0.
    let outcomes = b1
        .broker
        .scram
        .alter(&[("alice".into(), Mechanism::Sha512.code())], &[])
        .await;
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    wait_until("broker 0 to forget alice", || async {
        b0.broker
            .scram
            .lookup("alice", Mechanism::Sha512)
            .is_none()
            .then_some(())
    })
    .await;
}

/// IncrementalAlterConfigs SET of `key` on the default BROKER resource (every broker), sent to
/// the broker at `address`.
async fn set_cluster_wide(address: &str, key: &str, value: &str) {
    let config = AlterableConfig::default()
        .with_name(text(key))
        .with_config_operation(0)
        .with_value(Some(text(value)));
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(text(""))
            .with_configs(vec![config]),
    ]);
    let answer: IncrementalAlterConfigsResponse =
        kafka_call(address, ApiKey::IncrementalAlterConfigs, 1, &request).await;
    assert_eq!(answer.responses[0].error_code, 0, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_wide_dynamic_config_set_through_one_broker_is_every_brokers_default() {
    let plane = ControlPlane::new().await;
    let (_dirs, brokers) = brokers(&plane, 2).await;
    let (b0, b1) = (&brokers[0], &brokers[1]);

    // kafka-configs.sh --alter --entity-type brokers --entity-default
    //   --add-config log.retention.ms=3600000, sent to broker 0.
    set_cluster_wide(&b0.address, "log.retention.ms", "3600000").await;
    wait_until("broker 1 to take the cluster-wide value", || async {
        (b1.broker.config.dynamic.get("log.retention.ms")
            == Some(("3600000".to_owned(), Level::Cluster)))
        .then_some(())
    })
    .await;

    // An incremental change on broker 1 keeps broker 0's value and adds its own.
    set_cluster_wide(&b1.address, "log.roll.ms", "600000").await;
    wait_until("broker 0 to hold both values", || async {
        let values = b0.broker.config.dynamic.at(Level::Cluster);
        (values.get("log.retention.ms").map(String::as_str) == Some("3600000")
            && values.get("log.roll.ms").map(String::as_str) == Some("600000"))
        .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_taking_producer_id_blocks_at_once_never_hand_out_the_same_id() {
    let plane = ControlPlane::new().await;
    let (_dirs, brokers) = brokers(&plane, 2).await;
    let (b0, b1) = (&brokers[0], &brokers[1]);
    let (ids0, ids1) = (&b0.broker.producer_ids, &b1.broker.producer_ids);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (a, b) = tokio::join!(ids0.next_id(), ids1.next_id());
        ids.push(a.expect("broker 0 allocated an id"));
        ids.push(b.expect("broker 1 allocated an id"));
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let map: ConfigMap = plane
        .api()
        .get(&tributary_crds::registration::producer_ids_name(CLUSTER))
        .await
        .expect("the producer-id ConfigMap");
    let next: i64 = map
        .data
        .and_then(|d| {
            d.get(tributary_crds::registration::NEXT_PRODUCER_ID_KEY)
                .cloned()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or_default();
    assert!(ids.iter().all(|id| *id < next), "{ids:?} below {next}");
}

/// Delegation tokens switched on (`delegation.token.secret.key`), the same secret on every
/// broker.
fn with_tokens(flags: &mut Flags) {
    flags.security = Some(BTreeMap::from([(
        "delegation.token.secret.key".to_owned(),
        "a-cluster-wide-secret".to_owned(),
    )]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delegation_token_created_through_one_broker_logs_in_at_every_broker() {
    use tributary_broker::security::credentials::Mechanism;
    use tributary_broker::security::tokens::NewToken;

    let plane = ControlPlane::new().await;
    let mut running = Vec::new();
    let mut dirs = Vec::new();
    for id in 0..2 {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        running.push(
            RunningBroker::start_tuned(plane.client.clone(), id, dir.path(), with_tokens).await,
        );
        dirs.push(dir);
    }
    let (b0, b1) = (&running[0], &running[1]);
    let now = tributary_storage::clock::now_ms();
    let created = b0
        .broker
        .tokens
        .create(
            NewToken {
                owner: "User:alice".into(),
                requester: "User:alice".into(),
                renewers: vec![],
                max_lifetime_ms: 0,
            },
            now,
        )
        .await
        .unwrap_or_else(|e| panic!("create: {e}"));
    let id = created.info.token_id.clone();
    let login = wait_until("broker 1 to accept a login with the token", || async {
        b1.broker.tokens.login(&id, Mechanism::Sha512, now)
    })
    .await;
    assert_eq!(login.principal.to_string(), "User:alice");

    // Expired at once through broker 1: broker 0 refuses it too.
    b1.broker
        .tokens
        .expire(&created.hmac, "User:alice", -1, now)
        .await
        .unwrap_or_else(|e| panic!("expire: {e}"));
    wait_until("broker 0 to refuse the expired token", || async {
        b0.broker
            .tokens
            .login(&id, Mechanism::Sha512, now)
            .is_none()
            .then_some(())
    })
    .await;
}
