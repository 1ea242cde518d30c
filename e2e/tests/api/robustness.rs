//! Bad input gets a Status answer, never a panic or a stuck server.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::support::{install_crds, raw, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_status_answers_and_the_server_keeps_serving() {
    let (_server, client) = server("ns");
    install_crds(&client).await;
    let cms = "/api/v1/namespaces/ns/configmaps";
    let topics = "/apis/tributary.dev/v1alpha1/namespaces/ns/kafkatopics";
    let json = "application/json";
    let cases: Vec<(&str, String, &str, Vec<u8>)> = vec![
        ("POST", cms.into(), json, b"{not json".to_vec()),
        ("POST", cms.into(), json, b"[1,2,3]".to_vec()),
        (
            "POST",
            cms.into(),
            json,
            br#"{"metadata": "nope"}"#.to_vec(),
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"apiVersion": "v2", "metadata": {"name": "x"}}"#.to_vec(),
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"kind": "Pod", "metadata": {"name": "x"}}"#.to_vec(),
        ),
        (
            "POST",
            cms.into(),
            json,
            br#"{"metadata": {"name": "x", "labels": {"k": 5}}}"#.to_vec(),
        ),
        (
            "POST",
            cms.into(),
            "application/vnd.kubernetes.protobuf",
            b"k8s\0\x0a\xff\xff".to_vec(),
        ),
        ("POST", cms.into(), "text/plain", b"hello".to_vec()),
        (
            "POST",
            topics.into(),
            json,
            br#"{"metadata": {"name": "t"}, "spec": "scalar", "status": [1]}"#.to_vec(),
        ),
        (
            "POST",
            topics.into(),
            json,
            br#"{"metadata": {"name": "t"}, "spec": {"partitions": "x", "config": []}}"#.to_vec(),
        ),
        ("PUT", format!("{cms}/missing"), json, b"{}".to_vec()),
        (
            "PATCH",
            format!("{cms}/missing"),
            "application/merge-patch+json",
            b"{}".to_vec(),
        ),
        (
            "PATCH",
            format!("{cms}/x"),
            "application/json-patch+json",
            b"{\"op\": 1}".to_vec(),
        ),
        (
            "PATCH",
            format!("{cms}/x"),
            "application/apply-patch+yaml?fieldManager=x",
            b": : :".to_vec(),
        ),
        (
            "PATCH",
            format!("{cms}/x?fieldManager=m"),
            "application/apply-patch+yaml",
            b"- a\n- b".to_vec(),
        ),
        (
            "PATCH",
            format!("{cms}/x?fieldManager=m"),
            "application/apply-patch+yaml",
            br#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y"}}"#.to_vec(),
        ),
        (
            "DELETE",
            format!("{cms}/missing"),
            json,
            b"{\"propagationPolicy\": \"Sideways\"}".to_vec(),
        ),
        (
            "GET",
            format!("{cms}?labelSelector=a%20in%20(b"),
            json,
            Vec::new(),
        ),
        (
            "GET",
            format!("{cms}?fieldSelector=bogus"),
            json,
            Vec::new(),
        ),
        ("GET", format!("{cms}?limit=-1"), json, Vec::new()),
        ("GET", format!("{cms}?continue=garbage"), json, Vec::new()),
        (
            "GET",
            format!("{cms}?watch=1&resourceVersion=abc"),
            json,
            Vec::new(),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps/x/scale".into(),
            json,
            Vec::new(),
        ),
        (
            "POST",
            "/api/v1/namespaces/ns/configmaps/x".into(),
            json,
            b"{}".to_vec(),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns/configmaps/%ff%fe".into(),
            json,
            Vec::new(),
        ),
    ];
    for (method, path, content_type, body) in cases {
        let r = raw(
            &client,
            method,
            &path,
            &[("content-type", content_type)],
            body,
        )
        .await;
        let watch_error =
            path.contains("watch=1") && r.status == 200 && r.text.contains("\"ERROR\"");
        assert!(
            (400..500).contains(&r.status) || watch_error,
            "{method} {path}: {} {}",
            r.status,
            r.text
        );
        if !watch_error {
            assert_eq!(r.body["kind"], "Status", "{method} {path}: {}", r.text);
        }
    }
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    assert!(api.list(&Default::default()).await.is_ok(), "still serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_can_target_one_object_and_leave_the_others_alone() {
    let (server, client) = server("ns");
    let cms: Api<ConfigMap> = Api::namespaced(client, "ns");
    let cm = |name: &str| ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_owned()),
            ..Default::default()
        },
        ..ConfigMap::default()
    };
    let post = kube::api::PostParams::default();
    for name in ["a", "b"] {
        cms.create(&post, &cm(name)).await.expect("create");
    }
    server.fail_next_object_writes_with("/configmaps", "a", 2, 503);
    let patch = kube::api::Patch::Merge(serde_json::json!({"data": {"k": "v"}}));
    let params = kube::api::PatchParams::default();
    for _ in 0..2 {
        let refused = cms.patch("a", &params, &patch).await;
        assert!(
            matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 503),
            "{refused:?}"
        );
        cms.patch("b", &params, &patch)
            .await
            .expect("other objects are written");
    }
    cms.patch("a", &params, &patch)
        .await
        .expect("the fault is used up");
}

/// Clients pool idle keep-alive connections for 90 s, and every broker restarted at once opens
/// one per concurrent ISR write: held-open connections beyond a thousand must not stop the
/// server from answering a new one (a cap on connections stalled it until they idled out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_keep_alive_connections_do_not_stop_a_new_request_being_served() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::rustls::pki_types::ServerName;

    let (server, _client) = server("ns");
    let served = server.serve().await.expect("serve the API");
    let request = format!(
        "GET /api/v1/namespaces/ns HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\
         connection: keep-alive\r\n\r\n",
        served.addr(),
        server.admin_token()
    );
    let tls = tokio_rustls::TlsConnector::from(
        tributary_e2e::apiserver::tls::client_config(served.ca_der()).expect("TLS client"),
    );
    let connect = || async {
        let tcp = TcpStream::connect(served.addr()).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        tls.connect(name, tcp).await.expect("TLS handshake")
    };
    // Each connection is answered, then left open and idle, as a client's pool leaves it.
    async fn answered(stream: &mut TlsStream<TcpStream>, request: &str) -> String {
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut buf = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("no answer within 10 s")
            .expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
    let mut idle = Vec::new();
    for _ in 0..1100 {
        let mut stream = connect().await;
        let answer = answered(&mut stream, &request).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        idle.push(stream);
    }
    let mut fresh = tokio::time::timeout(std::time::Duration::from_secs(10), connect())
        .await
        .expect("a new connection is accepted within 10 s with 1,100 idle ones open");
    let answer = answered(&mut fresh, &request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(idle.len(), 1100);
}
