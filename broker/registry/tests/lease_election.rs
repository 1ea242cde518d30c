//! Three registry processes electing their writer with a Lease on the in-memory Kubernetes API
//! server, storing into a real standalone broker: writes through any instance get unique,
//! increasing ids and are readable through the instance that took them; the writer killed
//! while a client registers in a loop is replaced within about a lease duration, and no id is
//! lost, duplicated or reused.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{request, Broker, Registry, DEADLINE};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::json;

const NS: &str = "streaming";
const LEASE: &str = "demo-schema-registry";
/// Short timings so the takeover fits a test: the writer stops ~2.3 s after its last renewal
/// and followers take over after seeing the Lease unchanged for 5 s.
const LEASE_DURATION: Duration = Duration::from_secs(5);

fn schema(i: usize) -> serde_json::Value {
    let text = json!({
        "type": "record", "name": format!("R{i}"),
        "fields": [{"name": format!("f{i}"), "type": "string"}],
    });
    json!({ "schema": text.to_string() })
}

/// The Lease's holder URL, if any.
async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

/// Registers `subject` through `addr`; the id, or the error answer.
async fn register(addr: &str, subject: &str, i: usize) -> Result<i64, String> {
    let path = format!("/subjects/{subject}/versions");
    let r = request(addr, "POST", &path, Some(&schema(i))).await?;
    match (r.status, r.json["id"].as_i64()) {
        (200, Some(id)) => Ok(id),
        _ => Err(format!("{} {}", r.status, r.text)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_instance_and_a_killed_writer_loses_no_id() {
    let broker = Broker::start();
    let api = tributary_e2e::FakeApiServer::new();
    api.create_namespace(NS);
    let served = match api.serve().await {
        Ok(s) => s,
        Err(e) => panic!("serve the API server: {e}"),
    };
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    if let Err(e) = tributary_e2e::kubeconfig::write(&kubeconfig, &served.url(), NS) {
        panic!("write the kubeconfig: {e}");
    }
    let lease_ref = format!("{NS}/{LEASE}");
    let flags = [
        "--lease",
        lease_ref.as_str(),
        "--lease-duration",
        "5s",
        "--renew-interval",
        "1s",
        "--write-timeout",
        "10s",
    ];
    let envs = [("KUBECONFIG", kubeconfig.as_path())];
    let mut registries: Vec<Registry> = (0..3)
        .map(|n| {
            Registry::start(
                &broker.addr,
                dir.path(),
                &format!("registry-{n}"),
                &flags,
                &envs,
            )
        })
        .collect();
    for r in &mut registries {
        r.wait_ready().await;
    }
    let leases: Api<Lease> = Api::namespaced(api.client(NS), NS);
    let writer = tributary_e2e::poll::wait_until("a writer to hold the Lease", DEADLINE, || {
        let leases = leases.clone();
        async move { holder(&leases).await }
    })
    .await;
    assert!(
        registries.iter().any(|r| r.url == writer),
        "the Lease names {writer}, not one of the instances"
    );

    // Registrations through every instance, round robin: unique increasing ids, and each is
    // readable at once through the instance that took it (followers forward, then wait to
    // have read the write).
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    let mut last = 0;
    for i in 0..9 {
        let r = &registries[i % 3];
        let subject = format!("s-{i}");
        let id = tributary_e2e::poll::wait_until(
            &format!("registering {subject} through {}", r.url),
            DEADLINE,
            || {
                let (addr, subject) = (r.addr.clone(), subject.clone());
                async move { register(&addr, &subject, i).await.ok() }
            },
        )
        .await;
        assert!(id > last, "id {id} for {subject} after id {last}");
        last = id;
        let read = request(
            &r.addr,
            "GET",
            &format!("/subjects/{subject}/versions/latest"),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("read {subject}: {e}"));
        assert_eq!(
            read.json["id"].as_i64(),
            Some(id),
            "{subject} read through {}: {}",
            r.url,
            read.text
        );
        acked.insert(subject, id);
    }
    // A follower relays the writer's refusals verbatim (an invalid schema: 422 42201).
    let follower = registries
        .iter()
        .find(|r| r.url != writer)
        .unwrap_or_else(|| panic!("no follower among the instances"));
    let bad = request(
        &follower.addr,
        "POST",
        "/subjects/bad/versions",
        Some(&json!({"schema": "{not avro"})),
    )
    .await
    .unwrap_or_else(|e| panic!("register a bad schema: {e}"));
    assert_eq!(
        (bad.status, bad.json["error_code"].as_i64()),
        (422, Some(42201)),
        "{}",
        bad.text
    );

    // Kill the writer while a client registers in a loop through the survivors.
    let killed = registries
        .iter()
        .position(|r| r.url == writer)
        .unwrap_or_else(|| panic!("the writer {writer} is not an instance"));
    let mut old = registries.remove(killed);
    let survivors: Vec<String> = registries.iter().map(|r| r.addr.clone()).collect();
    let killed_at = Instant::now();
    old.proc.kill();
    let mut next = 100;
    let mut first_after_kill: Option<Duration> = None;
    let mut after_takeover = 0;
    let end = Instant::now() + DEADLINE;
    while after_takeover < 5 {
        assert!(
            Instant::now() < end,
            "no takeover within {DEADLINE:?} of killing the writer; acknowledged {acked:?}\n{}",
            registries
                .iter()
                .map(|r| r.proc.log())
                .collect::<Vec<_>>()
                .join("\n-----\n")
        );
        let addr = &survivors[next % survivors.len()];
        let subject = format!("s-{next}");
        match register(addr, &subject, next).await {
            Ok(id) => {
                assert!(id > last, "id {id} for {subject} after id {last}: reused");
                last = id;
                acked.insert(subject, id);
                first_after_kill.get_or_insert_with(|| killed_at.elapsed());
                after_takeover += 1;
            }
            Err(e) => {
                // Only "no writer" (50004) and "cannot forward" (50003) while the Lease expires.
                assert!(e.contains("50003") || e.contains("50004"), "{subject}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        next += 1;
    }
    let took = first_after_kill.unwrap_or_default();
    eprintln!("first write acknowledged {took:?} after killing the writer");
    assert!(
        took < LEASE_DURATION * 3,
        "the first write after the kill took {took:?}"
    );
    let new_writer = holder(&leases).await;
    assert!(
        new_writer.as_deref().is_some_and(|w| w != writer),
        "the Lease still names {writer}"
    );

    // Every acknowledged registration is readable through every survivor; every id up to the
    // highest names exactly one schema (none lost, none given twice).
    for r in &registries {
        for (subject, id) in &acked {
            let got = request(
                &r.addr,
                "GET",
                &format!("/subjects/{subject}/versions/1"),
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("read {subject}: {e}"));
            assert_eq!(
                got.json["id"].as_i64(),
                Some(*id),
                "{subject} on {}: {}",
                r.url,
                got.text
            );
        }
        for id in 1..=last {
            let holders = request(&r.addr, "GET", &format!("/schemas/ids/{id}/versions"), None)
                .await
                .unwrap_or_else(|e| panic!("read id {id}: {e}"));
            assert_eq!(
                holders.json.as_array().map(Vec::len),
                Some(1),
                "id {id} on {}: {}",
                r.url,
                holders.text
            );
        }
    }
    drop(broker);
}
