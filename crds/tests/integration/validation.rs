//! The generated CRDs accept the examples and reject bad objects, by schema and by CEL rule,
//! including transition rules (`oldSelf`) that only apply on update.

use crate::support;

use serde_json::Value;
use support::{errors, schema_of, yaml};

const CLUSTER_CRD: &str = "kafkaclusters.tributary.dev.yaml";
const TOPIC_CRD: &str = "kafkatopics.tributary.dev.yaml";
const PARTITION_CRD: &str = "kafkapartitions.tributary.dev.yaml";
const USER_CRD: &str = "kafkausers.tributary.dev.yaml";

fn example(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    yaml(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
}

fn cluster(spec: &str) -> Value {
    yaml(&format!("apiVersion: tributary.dev/v1alpha1\nkind: KafkaCluster\nmetadata: {{name: c}}\nspec:\n{spec}"))
}

fn topic(spec: &str) -> Value {
    yaml(&format!("apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: t}}\nspec:\n{spec}"))
}

fn assert_rejected(schema: &Value, obj: &Value, old: Option<&Value>, needle: &str) {
    let errs = errors(schema, obj, old);
    assert!(
        errs.iter().any(|e| e.contains(needle)),
        "expected an error containing {needle:?}, got {errs:?} for {obj}"
    );
}

#[test]
fn example_manifests_are_valid() {
    let cs = schema_of(CLUSTER_CRD);
    assert_eq!(
        errors(&cs, &example("kafka-cluster.yaml"), None),
        Vec::<String>::new()
    );
    assert_eq!(
        errors(&cs, &example("kafka-cluster-secured.yaml"), None),
        Vec::<String>::new()
    );
    let ts = schema_of(TOPIC_CRD);
    assert_eq!(
        errors(&ts, &example("kafka-topic.yaml"), None),
        Vec::<String>::new()
    );
}

#[test]
fn minimal_objects_are_valid() {
    assert_eq!(
        errors(&schema_of(CLUSTER_CRD), &cluster("  brokers: 1"), None),
        Vec::<String>::new()
    );
    let t = topic("  clusterRef: c\n  partitions: 1\n  replicationFactor: 1");
    assert_eq!(
        errors(&schema_of(TOPIC_CRD), &t, None),
        Vec::<String>::new()
    );
}

#[test]
fn cluster_schema_rejects_out_of_range_and_malformed_fields() {
    let s = schema_of(CLUSTER_CRD);
    assert_rejected(
        &s,
        &cluster("  brokers: 0"),
        None,
        ".spec.brokers: must be >= 1",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 1000"),
        None,
        ".spec.brokers: must be <= 256",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  storage: {size: lots}"),
        None,
        ".spec.storage.size",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  imagePullPolicy: Sometimes"),
        None,
        "imagePullPolicy",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  listeners: [{name: plain, port: 9092}]"),
        None,
        "listeners[0].name",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  listeners: [{name: PLAIN, port: 80}]"),
        None,
        "listeners[0].port",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  brokerz: 4"),
        None,
        ".spec.brokerz: unknown field",
    );
    assert_rejected(&s, &cluster("  image: x"), None, ".spec.brokers: required");
}

#[test]
fn cluster_cel_rules_reject_bad_combinations() {
    let s = schema_of(CLUSTER_CRD);
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  config: {broker.id: '7'}"),
        None,
        "unsupported broker config key",
    );
    assert_rejected(
        &s,
        &cluster(
            "  brokers: 3\n  coordination: {leaseDurationSeconds: 15, renewIntervalSeconds: 10}",
        ),
        None,
        "the renew interval must be at most a third",
    );
    assert_rejected(
        &s,
        &cluster(
            "  brokers: 3\n  coordination: {leaseDurationSeconds: 2, renewIntervalMilliseconds: 700}",
        ),
        None,
        "the renew interval must be at most a third",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  coordination: {renewIntervalMilliseconds: 50}"),
        None,
        "renewIntervalMilliseconds",
    );
    // Milliseconds take the place of the (defaulted) seconds: a 2 s Lease renewed every
    // 500 ms is valid although the default renewIntervalSeconds (2) is not a third of it.
    let sub_second = cluster(
        "  brokers: 3\n  coordination: {leaseDurationSeconds: 2, renewIntervalSeconds: 2, renewIntervalMilliseconds: 500}",
    );
    assert_eq!(errors(&s, &sub_second, None), Vec::<String>::new());
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  listeners: [{name: A, port: 9092}, {name: A, port: 9093}]"),
        None,
        "listener names and ports must be unique",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  listeners: [{name: EXT, port: 9094, type: nodeport}]"),
        None,
        "at least one listener must be internal",
    );
    assert_rejected(
        &s,
        &cluster(
            "  brokers: 3\n  listeners: [{name: A, port: 9092, configuration: {brokers: [{broker: 0, nodePort: 32000}]}}]",
        ),
        None,
        "configuration applies to external listeners only",
    );
    assert_rejected(
        &s,
        &cluster(
            "  brokers: 3\n  listeners: [{name: A, port: 9092}, {name: EXT, port: 9094, type: loadbalancer, configuration: {brokers: [{broker: 1}, {broker: 1}]}}]",
        ),
        None,
        "names each broker at most once",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  listeners: [{name: A, port: 9092}, {name: EXT, port: 9094, type: ingress}]"),
        None,
        "listeners[1].type",
    );
    let external = cluster(
        "  brokers: 3\n  listeners: [{name: A, port: 9092}, {name: EXT, port: 9094, type: nodeport, configuration: {bootstrap: {nodePort: 32100}, brokers: [{broker: 0, nodePort: 32000, advertisedHost: k0.example.com, advertisedPort: 443}]}}]",
    );
    assert_eq!(errors(&s, &external, None), Vec::<String>::new());
    let ok = cluster("  brokers: 3\n  listeners: [{name: A, port: 9092}, {name: B, port: 9093}]");
    assert_eq!(errors(&s, &ok, None), Vec::<String>::new());
}

#[test]
fn listener_security_rules_explain_what_is_wrong() {
    let s = schema_of(CLUSTER_CRD);
    let with = |listeners: &str| cluster(&format!("  brokers: 3\n  listeners:\n{listeners}"));
    assert_rejected(
        &s,
        &with("  - {name: MTLS, port: 9093, authentication: {type: tls}}"),
        None,
        "authentication type tls needs tls on the listener",
    );
    assert_rejected(
        &s,
        &with("  - {name: REPLICATION, port: 9093}"),
        None,
        "reserved for the operator's inter-broker listener",
    );
    assert_rejected(
        &s,
        &with("  - {name: A, port: 9091}"),
        None,
        "reserved for the operator's inter-broker listener",
    );
    assert_rejected(
        &s,
        &with("  - {name: A, port: 9093, protocol: PLAINTEXT, tls: {}}"),
        None,
        "protocol is deprecated",
    );
    assert_rejected(
        &s,
        &with("  - {name: A, port: 9093, protocol: SSL}"),
        None,
        "protocol",
    );
    assert_rejected(
        &s,
        &with("  - {name: A, port: 9093, authentication: {type: oauth}}"),
        None,
        "oauth authentication needs jwksConfigMap",
    );
    assert_rejected(
        &s,
        &with("  - {name: A, port: 9093, authentication: {type: scram-sha-512, audience: x}}"),
        None,
        "apply to oauth only",
    );
    assert_rejected(
        &s,
        &with("  - {name: A, port: 9093, authentication: {type: kerberos}}"),
        None,
        "type",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  certificateAuthority: {validityDays: 30, renewalDays: 30}"),
        None,
        "renewalDays must be less than validityDays",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 3\n  authorization: {type: simple, superUsers: [admin]}"),
        None,
        "superUsers",
    );
    let ok = with(
        "  - {name: PLAIN, port: 9092, protocol: PLAINTEXT}\n\
         \x20 - {name: TLS, port: 9093, tls: {}, authentication: {type: scram-sha-512}, advertise: PodIP}\n\
         \x20 - {name: MTLS, port: 9094, tls: {secretName: cert}, authentication: {type: tls}, advertise: PodIP}\n\
         \x20 - name: OAUTH\n    port: 9095\n    authentication: {type: oauth, jwksConfigMap: {name: idp, key: jwks.json}, audience: kafka}\n\
         \x20 authorization: {type: simple, superUsers: ['User:admin']}\n\
         \x20 certificateAuthority: {validityDays: 90, renewalDays: 20}",
    );
    assert_eq!(errors(&s, &ok, None), Vec::<String>::new());
}

#[test]
fn topic_schema_rejects_out_of_range_and_malformed_fields() {
    let s = schema_of(TOPIC_CRD);
    assert_rejected(
        &s,
        &topic("  clusterRef: c\n  partitions: 0\n  replicationFactor: 1"),
        None,
        "partitions: must be >= 1",
    );
    assert_rejected(
        &s,
        &topic("  clusterRef: c\n  partitions: 10001\n  replicationFactor: 1"),
        None,
        "partitions: must be <= 10000",
    );
    assert_rejected(
        &s,
        &topic("  clusterRef: c\n  partitions: 1\n  replicationFactor: 8"),
        None,
        "replicationFactor: must be <= 7",
    );
    assert_rejected(
        &s,
        &topic(
            "  clusterRef: c\n  topicName: 'bad name!'\n  partitions: 1\n  replicationFactor: 1",
        ),
        None,
        "topicName",
    );
    assert_rejected(
        &s,
        &topic("  clusterRef: c\n  partitions: 1\n  replicationFactor: 1\n  deletionPolicy: Keep"),
        None,
        "deletionPolicy",
    );
}

#[test]
fn topic_cel_rules_reject_bad_values_on_create() {
    let s = schema_of(TOPIC_CRD);
    assert_rejected(
        &s,
        &topic(
            "  clusterRef: c\n  partitions: 1\n  replicationFactor: 1\n  config: {log.dirs: /x}",
        ),
        None,
        "unsupported topic config key",
    );
    assert_rejected(
        &s,
        &topic("  clusterRef: c\n  topicName: '..'\n  partitions: 1\n  replicationFactor: 1"),
        None,
        "topicName may not be",
    );
}

#[test]
fn topic_transition_rules_guard_partitions_and_identity() {
    let s = schema_of(TOPIC_CRD);
    let old = topic("  clusterRef: c\n  partitions: 12\n  replicationFactor: 3");
    let grow = topic("  clusterRef: c\n  partitions: 24\n  replicationFactor: 3");
    assert_eq!(errors(&s, &grow, Some(&old)), Vec::<String>::new());
    assert_eq!(errors(&s, &old, Some(&old)), Vec::<String>::new());

    let shrink = topic("  clusterRef: c\n  partitions: 6\n  replicationFactor: 3");
    assert_rejected(&s, &shrink, Some(&old), "partitions can only increase");
    let rf = topic("  clusterRef: c\n  partitions: 12\n  replicationFactor: 2");
    assert_eq!(
        errors(&s, &rf, Some(&old)),
        Vec::<String>::new(),
        "the replication factor changes by reassignment"
    );
    let moved = topic("  clusterRef: other\n  partitions: 12\n  replicationFactor: 3");
    assert_rejected(&s, &moved, Some(&old), "clusterRef is immutable");
    let renamed =
        topic("  clusterRef: c\n  topicName: other\n  partitions: 12\n  replicationFactor: 3");
    assert_rejected(&s, &renamed, Some(&old), "topicName is immutable");
}

#[test]
fn every_cel_rule_compiles() {
    for file in [CLUSTER_CRD, TOPIC_CRD, PARTITION_CRD, USER_CRD, SCHEMA_CRD] {
        let compiled = kube_cel::compile_schema(&schema_of(file));
        let errs: Vec<String> = compiled
            .compilation_errors()
            .iter()
            .map(|e| format!("{e:?}"))
            .collect();
        assert!(errs.is_empty(), "{file}: {errs:?}");
    }
}

#[test]
fn topic_status_is_a_summary_and_partition_lists_are_bounded() {
    let topic = schema_of(TOPIC_CRD);
    let status = &topic["properties"]["status"]["properties"];
    assert!(
        status.get("partitions").is_none(),
        "partitions live in KafkaPartition objects, not in the topic"
    );
    for count in [
        "placedPartitions",
        "leaderlessPartitions",
        "underReplicatedPartitions",
    ] {
        assert_eq!(status[count]["type"], "integer", "{count}");
    }
    let partition = schema_of(PARTITION_CRD);
    // A reassignment lists the target and the replicas it removes together.
    let spec = &partition["properties"]["spec"]["properties"];
    assert_eq!(spec["replicas"]["maxItems"], 14);
    assert_eq!(spec["addingReplicas"]["maxItems"], 7);
    assert_eq!(spec["removingReplicas"]["maxItems"], 7);
    assert_eq!(
        partition["properties"]["status"]["properties"]["isr"]["maxItems"],
        14
    );
}

fn partition(spec: &str) -> Value {
    yaml(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaPartition\nmetadata: {{name: t-0}}\nspec:\n{spec}"
    ))
}

#[test]
fn partitions_need_distinct_replicas_and_keep_their_identity() {
    let s = schema_of(PARTITION_CRD);
    let good =
        "  clusterRef: c\n  topic: orders\n  topicId: AAAAAAAAAAAAAAAAAAAAAA\n  partition: 0\n";
    let valid = partition(&format!("{good}  replicas: [2, 0, 1]"));
    assert_eq!(errors(&s, &valid, None), Vec::<String>::new());
    assert_rejected(
        &s,
        &partition(&format!("{good}  replicas: [1, 1]")),
        None,
        "replicas are distinct brokers",
    );
    assert_rejected(
        &s,
        &partition(&format!("{good}  replicas: [-1]")),
        None,
        "broker ids are not negative",
    );
    assert_rejected(&s, &partition(&format!("{good}  replicas: []")), None, "");
    let moved = partition(
        "  clusterRef: c\n  topic: orders\n  topicId: AAAAAAAAAAAAAAAAAAAAAA\n  partition: 1\n  replicas: [0]",
    );
    assert_rejected(&s, &moved, Some(&valid), "partition is immutable");
    let reassigned = partition(&format!("{good}  replicas: [0, 1, 2]"));
    assert_eq!(
        errors(&s, &reassigned, Some(&valid)),
        Vec::<String>::new(),
        "the assignment may change"
    );
}

fn user(spec: &str) -> Value {
    yaml(&format!("apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\nmetadata: {{name: u, labels: {{tributary.dev/cluster: c}}}}\nspec:\n{spec}"))
}

#[test]
fn user_example_and_strimzi_shaped_users_are_valid() {
    let s = schema_of(USER_CRD);
    assert_eq!(
        errors(&s, &example("kafka-user.yaml"), None),
        Vec::<String>::new()
    );
    for spec in [
        "  authentication: {type: tls}",
        "  authentication: {type: scram-sha-512, password: {valueFrom: {secretKeyRef: {name: pw, key: password}}}}",
        "  authorization: {type: simple, acls: [{resource: {type: transactionalId, name: tx, patternType: prefix}, operations: [Write, Describe], host: '10.0.0.1', type: deny}]}",
        "  authorization: {type: simple, acls: [{resource: {type: cluster, name: kafka-cluster}, operations: [All]}]}",
        "  {}",
    ] {
        assert_eq!(errors(&s, &user(spec), None), Vec::<String>::new(), "{spec}");
    }
}

#[test]
fn user_schema_and_rules_reject_what_cannot_be_carried_out() {
    let s = schema_of(USER_CRD);
    let acl = |rule: &str| {
        user(&format!(
            "  authorization: {{type: simple, acls: [{rule}]}}"
        ))
    };
    assert_rejected(&s, &user("  authentication: {type: plain}"), None, "type");
    assert_rejected(
        &s,
        &user("  authentication: {type: tls, password: {valueFrom: {secretKeyRef: {name: pw, key: k}}}}"),
        None,
        "password applies to type scram-sha-512 only",
    );
    assert_rejected(&s, &user("  authorization: {type: opa}"), None, "type");
    assert_rejected(
        &s,
        &acl("{resource: {type: topic}, operations: [Read]}"),
        None,
        "name is required unless type is cluster",
    );
    assert_rejected(
        &s,
        &acl("{resource: {type: cluster, name: other}, operations: [Alter]}"),
        None,
        "the cluster resource is named kafka-cluster",
    );
    assert_rejected(
        &s,
        &acl("{resource: {type: topic, name: t}, operations: []}"),
        None,
        "operations",
    );
    assert_rejected(
        &s,
        &acl("{resource: {type: topic, name: t}, operations: [Fly]}"),
        None,
        "operations",
    );
    assert_rejected(
        &s,
        &acl("{resource: {type: topic, name: t, patternType: match}, operations: [Read]}"),
        None,
        "patternType",
    );
    assert_rejected(
        &s,
        &acl("{resource: {type: topic, name: t}, operations: [Read], type: maybe}"),
        None,
        "type",
    );
}

const SCHEMA_CRD: &str = "kafkaschemas.tributary.dev.yaml";

fn schema(spec: &str) -> Value {
    yaml(&format!("apiVersion: tributary.dev/v1alpha1\nkind: KafkaSchema\nmetadata: {{name: s}}\nspec:\n{spec}"))
}

#[test]
fn schema_registry_accepts_defaults_and_tls_and_refuses_authentication_without_tls() {
    let s = schema_of(CLUSTER_CRD);
    let ok = cluster("  brokers: 1\n  schemaRegistry: {}");
    assert_eq!(errors(&s, &ok, None), Vec::<String>::new());
    let full = cluster(
        "  brokers: 1\n  schemaRegistry: {replicas: 2, port: 8085, topic: _schemas_x, image: r:1, authentication: {type: none}, resources: {limits: {memory: 512Mi}}}",
    );
    assert_eq!(errors(&s, &full, None), Vec::<String>::new());
    for secured in [
        "tls: {}, authentication: {type: basic}",
        "tls: {secretName: my-cert}, authentication: {type: tls}",
        "tls: {}",
    ] {
        let c = cluster(&format!("  brokers: 1\n  schemaRegistry: {{{secured}}}"));
        assert_eq!(errors(&s, &c, None), Vec::<String>::new(), "{secured}");
    }
    for bare in ["basic", "tls"] {
        assert_rejected(
            &s,
            &cluster(&format!(
                "  brokers: 1\n  schemaRegistry: {{authentication: {{type: {bare}}}}}"
            )),
            None,
            "need schemaRegistry.tls",
        );
    }
    assert_rejected(
        &s,
        &cluster("  brokers: 1\n  schemaRegistry: {port: 80}"),
        None,
        "schemaRegistry.port",
    );
    assert_rejected(
        &s,
        &cluster("  brokers: 1\n  schemaRegistry: {topic: 'a b'}"),
        None,
        "schemaRegistry.topic",
    );
}

#[test]
fn an_external_registry_is_a_config_key_and_not_beside_a_registry_of_the_cluster() {
    let s = schema_of(CLUSTER_CRD);
    let external = "  config: {confluent.schema.registry.url: 'http://registry.example:8081'}";
    let alone = cluster(&format!("  brokers: 1\n{external}"));
    assert_eq!(errors(&s, &alone, None), Vec::<String>::new());
    let both = cluster(&format!("  brokers: 1\n{external}\n  schemaRegistry: {{}}"));
    assert_rejected(&s, &both, None, "keep one of them");
}

#[test]
fn tiered_storage_accepts_a_bucket_and_refuses_malformed_settings_with_reasons() {
    let s = schema_of(CLUSTER_CRD);
    let ok = cluster(
        "  brokers: 1\n  tieredStorage: {bucket: tiered-logs, prefix: prod/a, endpoint: 'http://minio.storage.svc:9000', region: eu-west-1, pathStyle: true, fetchCacheBytes: 1048576, taskIntervalMs: 5000, credentialsSecret: {name: s3-keys, accessKeyIdKey: id, secretAccessKeyKey: secret}}",
    );
    assert_eq!(errors(&s, &ok, None), Vec::<String>::new());
    assert_eq!(
        errors(
            &s,
            &cluster("  brokers: 1\n  tieredStorage: {bucket: logs}"),
            None
        ),
        Vec::<String>::new()
    );
    for (spec, needle) in [
        ("{}", "bucket"),
        ("{bucket: Bad_Bucket}", "bucket"),
        (
            "{bucket: logs, endpoint: 'minio:9000'}",
            "tieredStorage.endpoint must be the http:// or https:// URL",
        ),
        (
            "{bucket: logs, endpoint: 'http://minio:9000/logs'}",
            "tieredStorage.endpoint must be the http:// or https:// URL",
        ),
        ("{bucket: logs, prefix: 'a//b'}", "empty path segments"),
        ("{bucket: logs, taskIntervalMs: 10}", "taskIntervalMs"),
        ("{bucket: logs, fetchCacheBytes: -1}", "fetchCacheBytes"),
        (
            "{bucket: logs, credentialsSecret: {name: k, accessKeyIdKey: same, secretAccessKeyKey: same}}",
            "must name different keys",
        ),
        (
            "{bucket: logs, credentialsSecret: {name: 'Not A Name'}}",
            "credentialsSecret.name",
        ),
    ] {
        assert_rejected(
            &s,
            &cluster(&format!("  brokers: 1\n  tieredStorage: {spec}")),
            None,
            needle,
        );
    }
}

#[test]
fn kafka_schema_needs_exactly_one_source_and_keeps_its_subject() {
    let s = schema_of(SCHEMA_CRD);
    let inline = schema("  clusterRef: c\n  subject: orders-value\n  schema: '\"string\"'");
    assert_eq!(errors(&s, &inline, None), Vec::<String>::new());
    let from = schema(
        "  clusterRef: c\n  subject: orders-value\n  schemaType: PROTOBUF\n  schemaFrom: {configMapKeyRef: {name: protos, key: order.proto}}\n  references: [{name: common.proto, subject: common, version: 1}]\n  compatibility: FULL_TRANSITIVE\n  normalize: true\n  deletionPolicy: Delete",
    );
    assert_eq!(errors(&s, &from, None), Vec::<String>::new());
    assert_rejected(
        &s,
        &schema("  clusterRef: c\n  subject: x"),
        None,
        "set exactly one of schema",
    );
    assert_rejected(
        &s,
        &schema("  clusterRef: c\n  subject: x\n  schema: a\n  schemaFrom: {configMapKeyRef: {name: m, key: k}}"),
        None,
        "set exactly one of schema",
    );
    assert_rejected(
        &s,
        &schema("  clusterRef: c\n  subject: x\n  schema: a\n  schemaType: XML"),
        None,
        "schemaType",
    );
    assert_rejected(
        &s,
        &schema("  clusterRef: c\n  subject: x\n  schema: a\n  compatibility: SOMETIMES"),
        None,
        "compatibility",
    );
    let renamed = schema("  clusterRef: c\n  subject: orders-key\n  schema: '\"string\"'");
    assert_rejected(&s, &renamed, Some(&inline), "subject is immutable");
    let moved = schema("  clusterRef: d\n  subject: orders-value\n  schema: '\"string\"'");
    assert_rejected(&s, &moved, Some(&inline), "clusterRef is immutable");
}
