//! `trib schema` against a real schema registry process on a real Tributary broker: outputs
//! (tables and `--json`) and exit codes (1 for registry errors and incompatibility, 2 for
//! usage errors).

use crate::common;

use std::path::{Path, PathBuf};

use common::registry::SchemaRegistry;
use common::{trib, Broker, Run};

fn schema_trib(registry: &SchemaRegistry, args: &[&str]) -> Run {
    let mut all = vec!["schema", "--registry", registry.url.as_str()];
    all.extend_from_slice(args);
    trib("127.0.0.1:1", &all)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a schema file");
    path
}

const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"}]}"#;
/// V1 plus a field with a default: BACKWARD compatible.
const V2: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"qty","type":"int","default":0}]}"#;
/// A field without a default: not BACKWARD compatible.
const BAD: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"string"},{"name":"price","type":"double"}]}"#;

#[test]
fn schemas_are_registered_read_checked_configured_and_deleted() {
    let broker = Broker::tributary();
    let registry = SchemaRegistry::start(&broker);
    let dir = tempfile::tempdir().expect("temp dir");
    let (v1, v2, bad) = (
        write(dir.path(), "v1.avsc", V1),
        write(dir.path(), "v2.avsc", V2),
        write(dir.path(), "bad.avsc", BAD),
    );
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();

    // Register, and registering the same schema again is the same version and id.
    let first = schema_trib(
        &registry,
        &["register", "orders-value", "--file", &path(&v1), "--json"],
    )
    .json();
    assert_eq!(first["subject"], "orders-value", "{first}");
    assert_eq!(first["version"], 1, "{first}");
    let id1 = first["id"].as_i64().expect("an id");
    let again = schema_trib(
        &registry,
        &["register", "orders-value", "--file", &path(&v1), "--json"],
    )
    .json();
    assert_eq!(
        (again["version"].as_i64(), again["id"].as_i64()),
        (Some(1), Some(id1))
    );
    let text = schema_trib(&registry, &["register", "orders-value", "-f", &path(&v2)]);
    let out = text.ok();
    assert!(out.contains("version") && out.contains('2'), "{out}");

    // Get by subject (latest and a number) and by id.
    let latest = schema_trib(&registry, &["get", "orders-value", "--json"]).json();
    assert_eq!(latest["version"], 2, "{latest}");
    let table = schema_trib(&registry, &["get", "orders-value", "--version", "1"]);
    let out = table.ok();
    assert!(
        out.contains("orders-value") && out.contains("\"Order\""),
        "{out}"
    );
    let by_id = schema_trib(&registry, &["get", "--id", &id1.to_string(), "--json"]).json();
    assert_eq!(by_id["versions"][0]["subject"], "orders-value", "{by_id}");
    assert!(
        by_id["schema"]
            .as_str()
            .is_some_and(|s| s.contains("Order")),
        "{by_id}"
    );
    schema_trib(&registry, &["get", "--id", "999"]).fails(1, &["40403"]);
    schema_trib(&registry, &["get", "nope"]).fails(1, &["40401", "trib schema list"]);
    schema_trib(&registry, &["get"]).fails(2, &[]);

    // List and versions.
    assert_eq!(schema_trib(&registry, &["list"]).ok(), "orders-value\n");
    assert_eq!(
        schema_trib(&registry, &["versions", "orders-value"]).ok(),
        "1\n2\n"
    );

    // Compatibility: exit 0 when compatible, 1 with the reasons when not.
    let ok = schema_trib(&registry, &["check", "orders-value", "--file", &path(&v2)]);
    assert!(ok.ok().starts_with("compatible"), "{ok:?}");
    let no = schema_trib(
        &registry,
        &[
            "check",
            "orders-value",
            "--file",
            &path(&bad),
            "--version",
            "latest",
        ],
    );
    assert_eq!(no.code, 1, "{no:?}");
    assert!(no.stdout.starts_with("incompatible"), "{no:?}");
    assert!(no.stdout.lines().count() > 1, "no reasons printed: {no:?}");
    assert!(no.stderr.contains("not compatible"), "{no:?}");
    // Registering it is refused with the registry's 409.
    schema_trib(
        &registry,
        &["register", "orders-value", "--file", &path(&bad)],
    )
    .fails(1, &["409"]);

    // Config: global, per subject, and an invalid level.
    let global = schema_trib(&registry, &["config", "--json"]).json();
    assert_eq!(global["compatibility"], "BACKWARD", "{global}");
    let set = schema_trib(
        &registry,
        &["config", "orders-value", "--set", "none", "--json"],
    )
    .json();
    assert_eq!(set["compatibility"], "NONE", "{set}");
    let shown = schema_trib(&registry, &["config", "orders-value"]);
    assert!(shown.ok().contains("NONE"), "{shown:?}");
    schema_trib(&registry, &["config", "--set", "SIDEWAYS"]).fails(1, &["42203"]);
    let now_ok = schema_trib(&registry, &["check", "orders-value", "--file", &path(&bad)]);
    assert!(now_ok.ok().starts_with("compatible"), "{now_ok:?}");

    // Delete a version (soft), then the subject for good.
    let soft = schema_trib(&registry, &["delete", "orders-value", "--version", "1"]);
    assert!(soft.ok().contains("soft-deleted"), "{soft:?}");
    assert_eq!(
        schema_trib(&registry, &["versions", "orders-value"]).ok(),
        "2\n"
    );
    assert_eq!(
        schema_trib(&registry, &["versions", "orders-value", "--deleted"]).ok(),
        "1\n2\n"
    );
    let gone = schema_trib(
        &registry,
        &["delete", "orders-value", "--permanent", "--json"],
    )
    .json();
    assert_eq!(gone["permanent"], true, "{gone}");
    assert_eq!(
        schema_trib(&registry, &["list", "--deleted", "--json"]).json(),
        serde_json::json!([])
    );
    schema_trib(&registry, &["versions", "orders-value"]).fails(1, &["40401"]);
}

#[test]
fn references_and_types_reach_the_registry() {
    let broker = Broker::tributary();
    let registry = SchemaRegistry::start(&broker);
    let dir = tempfile::tempdir().expect("temp dir");
    let id = write(
        dir.path(),
        "id.avsc",
        r#"{"type":"record","name":"Id","namespace":"acme","fields":[{"name":"v","type":"string"}]}"#,
    );
    let order = write(
        dir.path(),
        "order.avsc",
        r#"{"type":"record","name":"Order","namespace":"acme","fields":[{"name":"id","type":"acme.Id"}]}"#,
    );
    let proto = write(
        dir.path(),
        "p.proto",
        "syntax = \"proto3\";\nmessage P { string a = 1; }\n",
    );
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    schema_trib(&registry, &["register", "ids", "--file", &path(&id)]).ok();
    // Without the reference the schema does not parse.
    schema_trib(&registry, &["register", "orders", "--file", &path(&order)]).fails(1, &["42201"]);
    let r = schema_trib(
        &registry,
        &[
            "register",
            "orders",
            "--file",
            &path(&order),
            "--reference",
            "acme.Id=ids:1",
            "--json",
        ],
    )
    .json();
    assert_eq!(r["version"], 1, "{r}");
    let got = schema_trib(&registry, &["get", "orders"]);
    assert!(got.ok().contains("acme.Id=ids:1"), "{got:?}");
    // A .proto file is registered as PROTOBUF without --type.
    schema_trib(&registry, &["register", "p", "--file", &path(&proto)]).ok();
    let p = schema_trib(&registry, &["get", "p", "--json"]).json();
    assert_eq!(p["schemaType"], "PROTOBUF", "{p}");
    // A bad reference flag is a usage error.
    schema_trib(
        &registry,
        &["register", "x", "--file", &path(&id), "--reference", "nope"],
    )
    .fails(2, &["NAME=SUBJECT:VERSION"]);
}

#[test]
fn an_unreachable_registry_is_reported() {
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let r = trib("127.0.0.1:1", &["schema", "list", "--registry", &url]);
    r.fails(1, &["cannot reach the schema registry", "--registry"]);
    let r = trib(
        "127.0.0.1:1",
        &["schema", "list", "--registry", "https://x:1"],
    );
    r.fails(2, &["http"]);
}

/// A CA and a registry certificate for 127.0.0.1 as PEM files, and the SCRAM credential
/// document holding `alice` / `alice-secret`, in `dir`; the registry's security flags.
fn secured_registry_flags(dir: &Path) -> (Vec<String>, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    use tributary_crds::scram::{Credential, Mechanism, StoredCredential, Users};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("certificate");
    let credential = StoredCredential::derive(Mechanism::Sha512, b"alice-secret", b"a-salt", 4096)
        .expect("derive");
    let users: Users = [(
        "alice".to_owned(),
        [(Mechanism::Sha512, Credential::encode(&credential))].into(),
    )]
    .into();
    let ca_file = write(dir, "ca.crt", &ca_cert.pem());
    let flags = [
        ("--tls-cert", write(dir, "tls.crt", &cert.pem())),
        ("--tls-key", write(dir, "tls.key", &key.serialize_pem())),
        (
            "--scram-credentials",
            write(
                dir,
                "credentials.json",
                &serde_json::to_string(&users).expect("json"),
            ),
        ),
    ]
    .into_iter()
    .flat_map(|(flag, path)| [flag.to_owned(), path.display().to_string()])
    .chain(["--authentication".to_owned(), "basic".to_owned()])
    .collect();
    (flags, ca_file)
}

#[test]
fn trib_schema_reaches_an_https_registry_with_basic_credentials() {
    let broker = Broker::tributary();
    let dir = tempfile::tempdir().expect("temp dir");
    let (flags, ca) = secured_registry_flags(dir.path());
    let registry = SchemaRegistry::start_with(&broker, &flags);
    let ca = ca.display().to_string();
    let file = write(dir.path(), "v1.avsc", V1);
    let file = file.display().to_string();
    let secured = |user: &str, args: &[&str]| {
        let mut all = vec!["--registry-ca", ca.as_str(), "--user", user];
        all.extend_from_slice(args);
        schema_trib(&registry, &all)
    };
    let registered = secured(
        "alice:alice-secret",
        &["register", "secure-value", "--file", &file, "--json"],
    )
    .json();
    assert_eq!(registered["version"], 1, "{registered}");
    let listed = secured("alice:alice-secret", &["list"]);
    assert!(listed.ok().contains("secure-value"), "{listed:#?}");
    secured("alice:wrong", &["list"]).fails(1, &["40101"]);
    // Without the CA the certificate is not trusted.
    schema_trib(&registry, &["list", "--user", "alice:alice-secret"]).fails(2, &["--registry-ca"]);
}
