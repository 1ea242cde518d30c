//! The registry's REST security against real processes: HTTPS with certificates made at test
//! time, mTLS admitting certificates of the client CA only, HTTP basic authentication against
//! the cluster's SCRAM credential document (a user added afterwards admitted without a
//! restart), and writes forwarded from a follower to the writer with authentication on.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use common::{schema, Broker, Elected, Registry, Via};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use tributary_crds::scram::{Credential, Mechanism, StoredCredential, Users};

/// A CA and the certificates it signs, as PEM files in a directory.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate's PEM file.
    pem: PathBuf,
}

fn check<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl Ca {
    fn new(dir: &Path, name: &str) -> Ca {
        let key = check(KeyPair::generate());
        let mut params = check(CertificateParams::new(Vec::<String>::new()));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = check(params.self_signed(&key));
        let pem = dir.join(format!("{name}.crt"));
        check(std::fs::write(&pem, cert.pem()));
        Ca { cert, key, pem }
    }

    /// A certificate for `cn`, valid for localhost and 127.0.0.1, usable by servers and
    /// clients; (certificate PEM file, key PEM file).
    fn issue(&self, dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
        let key = check(KeyPair::generate());
        let mut params = check(CertificateParams::new(vec!["localhost".to_owned()]));
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = check(params.signed_by(&key, &self.cert, &self.key));
        let (crt, pem_key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
        check(std::fs::write(&crt, cert.pem()));
        check(std::fs::write(&pem_key, key.serialize_pem()));
        (crt, pem_key)
    }
}

/// A TLS client trusting `ca`, presenting `identity` when given.
fn tls_client(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap_or_else(|e| panic!("{e}")) {
        check(roots.add(check(cert)));
    }
    let builder = check(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions(),
    )
    .with_root_certificates(roots);
    Arc::new(match identity {
        None => builder.with_no_client_auth(),
        Some((crt, key)) => {
            let chain = CertificateDer::pem_file_iter(crt)
                .unwrap_or_else(|e| panic!("{e}"))
                .map(check)
                .collect();
            check(builder.with_client_auth_cert(chain, check(PrivateKeyDer::from_pem_file(key))))
        }
    })
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// Writes the credential document holding `users` (user, password) as the operator does:
/// a new file renamed over the old one, as kubelet updates a mounted Secret.
fn write_credentials(path: &Path, users: &[(&str, &str)]) {
    let doc: Users = users
        .iter()
        .map(|(user, password)| {
            let c = StoredCredential::derive(
                Mechanism::Sha512,
                password.as_bytes(),
                b"salt-of-the-test",
                4096,
            )
            .unwrap_or_else(|| panic!("derive"));
            (
                (*user).to_owned(),
                BTreeMap::from([(Mechanism::Sha512, Credential::encode(&c))]),
            )
        })
        .collect();
    let next = path.with_extension("next");
    check(std::fs::write(&next, check(serde_json::to_string(&doc))));
    check(std::fs::rename(&next, path));
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| (*s).to_owned()).collect()
}

fn flags<'a>(pairs: &'a [(&'a str, &'a Path)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(flag, path)| [(*flag).to_owned(), path.display().to_string()])
        .collect()
}

/// A registry started with `extra` flags and ready, reached `via`.
async fn ready_registry(broker: &Broker, dir: &Path, extra: &[String], via: &Via) -> Registry {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut registry = Registry::start_via(&broker.addr, dir, "registry", &extra, &[], via.clone());
    registry.wait_ready().await;
    registry
}

async fn register_via(r: &Registry, via: &Via, subject: &str, i: usize) -> common::Answer {
    check(
        via.request(
            &r.addr,
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(&schema(i)),
        )
        .await,
    )
}

#[tokio::test]
async fn https_serves_the_api_and_plain_http_gets_no_answer() {
    let broker = Broker::start();
    let dir = check(tempfile::tempdir());
    let ca = Ca::new(dir.path(), "ca");
    let (crt, key) = ca.issue(dir.path(), "registry");
    let extra = flags(&[("--tls-cert", &crt), ("--tls-key", &key)]);
    let via = Via {
        tls: Some(tls_client(&ca.pem, None)),
        authorization: None,
    };
    let registry = ready_registry(&broker, dir.path(), &extra, &via).await;

    let answer = register_via(&registry, &via, "secure-value", 1).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let read = check(via.request(&registry.addr, "GET", "/subjects", None).await);
    assert_eq!(
        read.json,
        serde_json::json!(["secure-value"]),
        "{}",
        read.text
    );

    let plain = common::request(&registry.addr, "GET", "/subjects", None).await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
}

#[tokio::test]
async fn mtls_admits_certificates_of_the_client_ca_only() {
    let broker = Broker::start();
    let dir = check(tempfile::tempdir());
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other-ca");
    let server = ca.issue(dir.path(), "registry");
    let alice = ca.issue(dir.path(), "alice");
    let mallory = other.issue(dir.path(), "mallory");
    let extra = flags(&[
        ("--tls-cert", &server.0),
        ("--tls-key", &server.1),
        ("--tls-client-ca", &ca.pem),
    ]);
    let extra = [extra, words(&["--authentication", "tls"])].concat();
    let as_alice = Via {
        tls: Some(tls_client(&ca.pem, Some(&alice))),
        authorization: None,
    };
    let registry = ready_registry(&broker, dir.path(), &extra, &as_alice).await;

    let answer = register_via(&registry, &as_alice, "mtls-value", 1).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let anonymous = Via {
        tls: Some(tls_client(&ca.pem, None)),
        authorization: None,
    };
    let refused = check(
        anonymous
            .request(&registry.addr, "GET", "/subjects", None)
            .await,
    );
    assert_eq!(
        (refused.status, refused.json["error_code"].as_i64()),
        (401, Some(40101)),
        "{}",
        refused.text
    );
    for open in ["/", "/metrics"] {
        let r = check(anonymous.request(&registry.addr, "GET", open, None).await);
        assert_eq!(r.status, 200, "{open} without a certificate: {}", r.text);
    }

    let as_mallory = Via {
        tls: Some(tls_client(&ca.pem, Some(&mallory))),
        authorization: None,
    };
    let foreign = as_mallory
        .request(&registry.addr, "GET", "/subjects", None)
        .await;
    assert!(
        foreign.is_err(),
        "a certificate of another CA was answered: {foreign:?}"
    );
}

#[tokio::test]
async fn basic_auth_checks_scram_credentials_and_admits_a_user_added_later() {
    let broker = Broker::start();
    let dir = check(tempfile::tempdir());
    let credentials = dir.path().join("credentials.json");
    write_credentials(&credentials, &[("alice", "alice-secret")]);
    let extra = flags(&[("--scram-credentials", &credentials)]);
    let extra = [extra, words(&["--authentication", "basic"])].concat();
    let as_alice = Via {
        tls: None,
        authorization: Some(basic("alice", "alice-secret")),
    };
    let registry = ready_registry(&broker, dir.path(), &extra, &as_alice).await;

    let answer = register_via(&registry, &as_alice, "basic-value", 1).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let as_bob = Via {
        tls: None,
        authorization: Some(basic("bob", "bob-secret")),
    };
    for via in [
        Via {
            tls: None,
            authorization: Some(basic("alice", "wrong")),
        },
        Via::default(),
        as_bob.clone(),
    ] {
        let r = check(via.request(&registry.addr, "GET", "/subjects", None).await);
        assert_eq!(
            (r.status, r.json["error_code"].as_i64()),
            (401, Some(40101)),
            "{}",
            r.text
        );
        assert!(
            r.head
                .to_ascii_lowercase()
                .contains("www-authenticate: basic"),
            "{}",
            r.head
        );
    }

    // A KafkaUser created afterwards: the document gains bob; no restart.
    write_credentials(
        &credentials,
        &[("alice", "alice-secret"), ("bob", "bob-secret")],
    );
    let r = check(
        as_bob
            .request(&registry.addr, "GET", "/subjects", None)
            .await,
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Registers through the follower of two instances and reads the schema back from the writer.
async fn forwarded_write_round_trips(cluster: &Elected, writer: &str, via: &Via) {
    let follower = cluster
        .registries
        .iter()
        .find(|r| r.url != writer)
        .unwrap_or_else(|| panic!("no follower among the instances"));
    let leader = cluster
        .registries
        .iter()
        .find(|r| r.url == writer)
        .unwrap_or_else(|| panic!("the writer is not an instance"));
    // The writer reads the topic to its end after taking the Lease; until then writes get
    // 50004 ("retry shortly"), which the serializers retry too.
    let answer = tributary_e2e::poll::wait_until(
        "the follower to forward a write the writer accepts",
        common::DEADLINE,
        || async {
            let answer = register_via(follower, via, "forwarded-value", 7).await;
            (answer.json["error_code"].as_i64() != Some(50004)).then_some(answer)
        },
    )
    .await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.text, cluster.logs());
    let id = answer.json["id"].as_i64();
    let read = check(
        via.request(
            &leader.addr,
            "GET",
            "/subjects/forwarded-value/versions/1",
            None,
        )
        .await,
    );
    assert_eq!(read.json["id"].as_i64(), id, "{}", read.text);
}

#[tokio::test]
async fn a_follower_forwards_writes_to_an_https_writer_under_mtls() {
    let dir = check(tempfile::tempdir());
    let ca = Ca::new(dir.path(), "ca");
    let server = ca.issue(dir.path(), "registry");
    let alice = ca.issue(dir.path(), "alice");
    let extra = flags(&[
        ("--tls-cert", &server.0),
        ("--tls-key", &server.1),
        ("--tls-client-ca", &ca.pem),
        ("--forward-ca", &ca.pem),
    ]);
    let mut extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    extra.extend(["--authentication", "tls"]);
    let via = Via {
        tls: Some(tls_client(&ca.pem, Some(&alice))),
        authorization: None,
    };
    let (cluster, writer) = Elected::start_via(2, &extra, via.clone()).await;
    assert!(writer.starts_with("https://"), "{writer}");
    forwarded_write_round_trips(&cluster, &writer, &via).await;
}

#[tokio::test]
async fn a_follower_forwards_writes_with_the_clients_basic_credentials() {
    let credentials_dir = check(tempfile::tempdir());
    let credentials = credentials_dir.path().join("credentials.json");
    write_credentials(&credentials, &[("alice", "alice-secret")]);
    let extra = flags(&[("--scram-credentials", &credentials)]);
    let mut extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    extra.extend(["--authentication", "basic"]);
    let via = Via {
        tls: None,
        authorization: Some(basic("alice", "alice-secret")),
    };
    let (cluster, writer) = Elected::start_via(2, &extra, via.clone()).await;
    forwarded_write_round_trips(&cluster, &writer, &via).await;
}
