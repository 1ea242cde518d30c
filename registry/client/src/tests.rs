//! The client against a real TLS server on loopback: certificates made at test time, the
//! server requiring a client certificate and echoing the request's Authorization header.

use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = ok(KeyPair::generate());
    let mut ca = ok(CertificateParams::new(Vec::<String>::new()));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test-ca");
    let ca_cert = ok(ca.self_signed(&ca_key));
    let leaf = |cn: &str, names: Vec<String>| {
        let key = ok(KeyPair::generate());
        let mut params = ok(CertificateParams::new(names));
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = ok(params.signed_by(&key, &ca_cert, &ca_key));
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca_pem: ca_cert.pem(),
        server: leaf(
            "registry",
            vec!["demo-schema-registry.kafka.svc".to_owned()],
        ),
        client: leaf("tributary-operator", vec![]),
    }
}

/// A TLS server requiring a client certificate of `pki`'s CA, answering each request with
/// `{"authorization": <the header or null>}`; serves `connections` connections.
async fn server(pki: &Pki, connections: usize) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        ok(roots.add(ok(cert)));
    }
    let verifier =
        ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build());
    let chain =
        ok(CertificateDer::pem_slice_iter(pki.server.0.as_bytes()).collect::<Result<Vec<_>, _>>());
    let key = ok(PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()));
    let config =
        ok(ok(rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions())
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = ok(tokio::net::TcpListener::bind("127.0.0.1:0").await);
    let port = listener.local_addr().map_or(0, |a| a.port());
    tokio::spawn(async move {
        for _ in 0..connections {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut tls) = acceptor.accept(socket).await else {
                continue;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
            let authorization = head
                .lines()
                .find_map(|l| l.strip_prefix("authorization: "))
                .map(|v| v.trim().to_owned());
            let body = serde_json::json!({ "authorization": authorization }).to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(answer.as_bytes()).await;
            let _ = tls.shutdown().await;
        }
    });
    port
}

const SERVICE: &str = "demo-schema-registry.kafka.svc";

#[tokio::test]
async fn https_with_a_client_certificate_checked_for_the_service_name_and_basic_credentials() {
    let pki = pki();
    let port = server(&pki, 1).await;
    let identity = (pki.client.0.as_bytes(), pki.client.1.as_bytes());
    let tls = ok(TlsSettings::new(
        pki.ca_pem.as_bytes(),
        Some(identity),
        Some(SERVICE),
    ));
    // Called by IP, the certificate checked for the Service's name.
    let client = ok(RegistryHttp::new(
        &format!("https://127.0.0.1:{port}"),
        Some(tls),
        Duration::from_secs(10),
    ));
    let client = ok(client.with_basic_auth("alice", "secret"));
    let answer = ok(client.call(Method::GET, "/subjects", None).await);
    assert_eq!(answer.status, 200);
    let expected = format!("basic {}", BASE64.encode("alice:secret")).to_ascii_lowercase();
    assert_eq!(
        answer.body["authorization"].as_str(),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn without_a_client_certificate_or_for_the_wrong_name_there_is_no_answer() {
    let pki = pki();
    let port = server(&pki, 2).await;
    let url = format!("https://127.0.0.1:{port}");
    let anonymous = ok(TlsSettings::new(pki.ca_pem.as_bytes(), None, Some(SERVICE)));
    let client = ok(RegistryHttp::new(
        &url,
        Some(anonymous),
        Duration::from_secs(10),
    ));
    let refused = client.call(Method::GET, "/subjects", None).await;
    assert!(
        matches!(refused, Err(ClientError::Transport { .. })),
        "{refused:?}"
    );
    // The URL's host (127.0.0.1) is not a name the certificate carries.
    let identity = (pki.client.0.as_bytes(), pki.client.1.as_bytes());
    let by_host = ok(TlsSettings::new(
        pki.ca_pem.as_bytes(),
        Some(identity),
        None,
    ));
    let client = ok(RegistryHttp::new(
        &url,
        Some(by_host),
        Duration::from_secs(10),
    ));
    let refused = client.call(Method::GET, "/subjects", None).await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Transport {
                step: "TLS handshake",
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn urls_need_a_scheme_a_host_and_tls_for_https() {
    let t = Duration::from_secs(1);
    let c = ok(RegistryHttp::new("http://h/prefix/", None, t));
    assert_eq!(
        (c.port, c.prefix.as_str(), c.url()),
        (80, "/prefix", "http://h/prefix")
    );
    assert!(matches!(
        RegistryHttp::new("https://h:8081", None, t),
        Err(ClientError::BadUrl { .. })
    ));
    assert!(RegistryHttp::new("ftp://h", None, t).is_err());
    assert!(RegistryHttp::new("127.0.0.1:8081", None, t).is_err());
    assert!(matches!(
        TlsSettings::new(b"junk", None, None),
        Err(ClientError::Tls(_))
    ));
}
