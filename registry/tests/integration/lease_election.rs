//! Three registry processes electing their writer with a Lease on the in-memory Kubernetes API
//! server, storing into a real standalone broker: writes through any instance get unique,
//! increasing ids and are readable through the instance that took them; the writer killed
//! while a client registers in a loop is replaced within about a lease duration, and no id is
//! lost, duplicated or reused.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{
    assert_ids_unique_and_readable, holder, register, request, Elected, DEADLINE, SHORT_TIMINGS,
};
use serde_json::json;

/// The lease duration of [`SHORT_TIMINGS`].
const LEASE_DURATION: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_instance_and_a_killed_writer_loses_no_id() {
    let (mut cluster, writer) = Elected::start(3, &SHORT_TIMINGS).await;
    let leases = cluster.leases.clone();
    let registries = &mut cluster.registries;

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
    let addrs: Vec<&str> = registries.iter().map(|r| r.addr.as_str()).collect();
    assert_ids_unique_and_readable(&addrs, &acked, last).await;
}
