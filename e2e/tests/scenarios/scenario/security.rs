//! security: a KafkaCluster whose client listeners are TLS + SCRAM-SHA-512 and mutual TLS,
//! with the authorizer on and the brokers replicating over their own TLS listener. KafkaUsers
//! become credentials, certificates and ACLs: a client using the Secret generated for its user
//! produces and consumes; a user without ACLs, a wrong password and a client that does not
//! trust the cluster CA are refused; deleting a KafkaUser revokes its login.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use tributary_e2e::clients::{java, prepare_java};

use crate::env::{wait, Driver, Env};

use super::{kafka_cluster, ready, REACT, READY};

const NS: &str = "security";
const CLUSTER: &str = "guarded";
const TOPIC: &str = "payments";
/// The TLS + SCRAM listener's port; the mutual-TLS listener's.
const SCRAM_PORT: &str = "9093";
const MTLS_PORT: &str = "9094";
const RECORDS: usize = 100;

const SPEC: &str = "{brokers: 3, storage: {size: 1Gi, deleteClaim: true}, \
    listeners: [\
      {name: SCRAM, port: 9093, advertise: PodIP, tls: {}, authentication: {type: scram-sha-512}}, \
      {name: MTLS, port: 9094, advertise: PodIP, tls: {}, authentication: {type: tls}}], \
    authorization: {type: simple}, \
    config: {offsets.topic.num.partitions: \"1\"}}";

/// A KafkaUser manifest: `name` authenticating by `authentication` (`scram-sha-512` or `tls`)
/// with `acls` (YAML list, possibly empty).
fn kafka_user(name: &str, authentication: &str, acls: &str) -> String {
    format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaUser\n\
         metadata: {{name: {name}, namespace: {NS}, labels: {{tributary.dev/cluster: {CLUSTER}}}}}\n\
         spec: {{authentication: {{type: {authentication}}}, authorization: {{type: simple, acls: {acls}}}}}\n"
    )
}

/// What a producing and consuming user may do with the topic and its own group.
fn read_write_acls(group: &str) -> String {
    format!(
        "[{{resource: {{type: topic, name: {TOPIC}, patternType: literal}}, operations: [Read, Write, Describe]}}, \
          {{resource: {{type: group, name: {group}, patternType: literal}}, operations: [Read]}}]"
    )
}

/// The decoded value of `key` in Secret `name`.
async fn secret(env: &Env, name: &str, key: &str) -> String {
    let obj = env.get_json(&["secret", name, "-n", NS]).await;
    let encoded = obj["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("Secret {name} has no {key}: {obj}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_else(|e| panic!("Secret {name} key {key} is not base64: {e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("Secret {name} key {key}: {e}"))
}

/// Writes `text` to `dir/name`, returning its path as a string.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let path: PathBuf = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path.display().to_string()
}

/// The addresses of `bootstrap` with their ports changed to `port`.
fn on_port(bootstrap: &str, port: &str) -> String {
    bootstrap
        .split(',')
        .map(|address| match address.rsplit_once(':') {
            Some((host, _)) => format!("{host}:{port}"),
            None => address.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Client settings for TLS trusting `truststore` (PEM). Clients here reach the brokers by pod
/// IP, which the brokers' certificates (issued for their DNS names) do not name: hostname
/// verification is off, the chain is still verified.
fn tls_props(truststore: &str) -> Vec<String> {
    vec![
        "ssl.truststore.type=PEM".to_owned(),
        format!("ssl.truststore.location={truststore}"),
        "ssl.endpoint.identification.algorithm=".to_owned(),
    ]
}

/// SASL_SSL with SCRAM-SHA-512 as `jaas` says.
fn scram_props(truststore: &str, jaas: &str) -> Vec<String> {
    let mut props = tls_props(truststore);
    props.extend([
        "security.protocol=SASL_SSL".to_owned(),
        "sasl.mechanism=SCRAM-SHA-512".to_owned(),
        format!("sasl.jaas.config={jaas}"),
    ]);
    props
}

/// The Java client's acks=all produce of `count` records with `props`, waiting at most 15 s
/// for metadata or an acknowledgement: its JSON lines.
async fn produce(bootstrap: &str, count: usize, props: &[String]) -> Vec<Value> {
    let count = count.to_string();
    let mut args = vec![
        "produce",
        "--bootstrap",
        bootstrap,
        "--topic",
        TOPIC,
        "--count",
        &count,
        "--prop",
        "acks=all",
        "--prop",
        "max.block.ms=15000",
        "--prop",
        "delivery.timeout.ms=15000",
        "--prop",
        "request.timeout.ms=10000",
    ];
    for p in props {
        args.extend(["--prop", p]);
    }
    java(&args, None).await
}

/// The Java consumer in `group` reading up to [`RECORDS`] with `props`: its JSON lines.
async fn consume(bootstrap: &str, group: &str, props: &[String]) -> Vec<Value> {
    let max = RECORDS.to_string();
    let mut args = vec![
        "consume",
        "--bootstrap",
        bootstrap,
        "--topic",
        TOPIC,
        "--group",
        group,
        "--max",
        &max,
        "--timeout-ms",
        "30000",
    ];
    for p in props {
        args.extend(["--prop", p]);
    }
    java(&args, None).await
}

fn events<'a>(lines: &'a [Value], event: &str) -> impl Iterator<Item = &'a Value> {
    let event = event.to_owned();
    lines.iter().filter(move |l| l["event"] == event.as_str())
}

/// The error class names among `lines`.
fn errors(lines: &[Value]) -> Vec<String> {
    events(lines, "error")
        .filter_map(|l| l["error"].as_str().map(str::to_owned))
        .collect()
}

/// Asserts that a client run acknowledged nothing and failed with `error` only.
fn refused(lines: &[Value], error: &str) {
    let errors = errors(lines);
    assert_eq!(events(lines, "ack").count(), 0, "{lines:?}");
    assert!(
        !errors.is_empty() && errors.iter().all(|e| e == error),
        "expected {error} only: {lines:?}"
    );
}

/// Waits until KafkaUser `name` is Ready.
async fn user_ready(env: &Env, name: &str) {
    let resource = format!("kafkauser/{name}");
    let timeout = format!("--timeout={}s", REACT.as_secs());
    env.kubectl_ok(&[
        "wait",
        "--for=condition=Ready",
        &resource,
        "-n",
        NS,
        &timeout,
    ])
    .await;
}

pub(crate) async fn run(driver: Driver) {
    let started = std::time::Instant::now();
    let log = |what: &str| eprintln!("{NS}: {:5.1} s: {what}", started.elapsed().as_secs_f64());
    let env = Env::shared(driver).await;
    let _namespace = env.namespace(NS).await;
    env.apply(&kafka_cluster(NS, CLUSTER, SPEC)).await;
    let (kc, ()) = tokio::join!(ready(&env, NS, CLUSTER), prepare_java());
    let bootstrap = on_port(
        kc["status"]["bootstrapServers"]
            .as_str()
            .expect("a Ready cluster lists its bootstrap servers"),
        SCRAM_PORT,
    );
    let mtls = on_port(&bootstrap, MTLS_PORT);
    log("cluster ready");
    env.apply(&format!(
        "apiVersion: tributary.dev/v1alpha1\nkind: KafkaTopic\nmetadata: {{name: {TOPIC}, namespace: {NS}}}\n\
         spec: {{clusterRef: {CLUSTER}, partitions: 1, replicationFactor: 3}}\n"
    ))
    .await;
    env.apply(&kafka_user(
        "alice",
        "scram-sha-512",
        &read_write_acls("alice-readers"),
    ))
    .await;
    env.apply(&kafka_user(
        "carol",
        "tls",
        &read_write_acls("carol-readers"),
    ))
    .await;
    env.apply(&kafka_user("bob", "scram-sha-512", "[]")).await;
    for user in ["alice", "carol", "bob"] {
        user_ready(&env, user).await;
    }
    log("users ready");

    let dir = tempfile::tempdir().expect("temporary directory");
    let cluster_ca = file(
        dir.path(),
        "cluster-ca.pem",
        &secret(&env, &format!("{CLUSTER}-cluster-ca"), "ca.crt").await,
    );
    let alice = scram_props(
        &cluster_ca,
        &secret(&env, "alice", "sasl.jaas.config").await,
    );

    // alice, with the Secret the operator generated, produces and consumes over TLS + SCRAM.
    let produced = wait("alice's first acknowledged produce", READY, || async {
        let lines = produce(&bootstrap, RECORDS, &alice).await;
        (events(&lines, "ack").count() == RECORDS).then_some(lines)
    })
    .await;
    assert_eq!(events(&produced, "ack").count(), RECORDS);
    let read = consume(&bootstrap, "alice-readers", &alice).await;
    assert_eq!(events(&read, "record").count(), RECORDS, "{read:?}");
    log("alice produced and consumed over TLS + SCRAM");

    // carol, with the client certificate issued from the clients CA, consumes over mutual TLS.
    let keystore = file(
        dir.path(),
        "carol.pem",
        &format!(
            "{}{}",
            secret(&env, "carol", "user.key").await,
            secret(&env, "carol", "user.crt").await
        ),
    );
    let mut carol = tls_props(&cluster_ca);
    carol.extend([
        "security.protocol=SSL".to_owned(),
        "ssl.keystore.type=PEM".to_owned(),
        format!("ssl.keystore.location={keystore}"),
    ]);
    let read = consume(&mtls, "carol-readers", &carol).await;
    assert_eq!(events(&read, "record").count(), RECORDS, "{read:?}");
    log("carol consumed over mutual TLS");

    // bob authenticates but has no ACLs: refused.
    let bob = scram_props(&cluster_ca, &secret(&env, "bob", "sasl.jaas.config").await);
    refused(
        &produce(&bootstrap, 1, &bob).await,
        "TopicAuthorizationException",
    );
    log("a user without ACLs is refused");

    // A wrong password is refused at authentication.
    let wrong = scram_props(
        &cluster_ca,
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"wrong\";",
    );
    refused(
        &produce(&bootstrap, 1, &wrong).await,
        "SaslAuthenticationException",
    );
    log("a wrong password is refused");

    // A client without a certificate is refused on the mutual-TLS listener.
    let mut anonymous = tls_props(&cluster_ca);
    anonymous.push("security.protocol=SSL".to_owned());
    let lines = produce(&mtls, 1, &anonymous).await;
    assert_eq!(events(&lines, "ack").count(), 0, "{lines:?}");
    assert!(!errors(&lines).is_empty(), "{lines:?}");
    log("a client without a certificate is refused");

    // Deleting alice revokes her login.
    env.kubectl_ok(&["delete", "kafkauser", "alice", "-n", NS])
        .await;
    wait("alice's login to be revoked", REACT, || async {
        let lines = produce(&bootstrap, 1, &alice).await;
        errors(&lines)
            .iter()
            .any(|e| e == "SaslAuthenticationException")
            .then_some(())
    })
    .await;
    log("deleting alice revoked her login");
}
