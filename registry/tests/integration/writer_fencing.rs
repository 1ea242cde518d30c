//! A writer frozen between its role check and its append (SIGSTOP, as a long GC pause or a
//! stalled VM would) is fenced by the cluster, not by its clock: its successor initialised the
//! shared transactional producer, so when it resumes its append fails instead of giving out an
//! id the successor already gave out. It then follows and forwards, and every id names exactly
//! one schema on every instance.

use crate::common;

use std::collections::BTreeMap;

use common::{
    assert_ids_unique_and_readable, holder, register, request, request_within, schema, Elected,
    DEADLINE, SHORT_TIMINGS,
};

/// Every write stalls this long after its role check, so the test can freeze the writer there.
const PAUSE: &str = "2s";
const STALL_LOG: &str = "stalling a write before its append";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_frozen_before_its_append_is_fenced_by_its_successor() {
    let mut flags = SHORT_TIMINGS.to_vec();
    flags.extend(["--pause-before-append", PAUSE]);
    let (cluster, writer) = Elected::start(3, &flags).await;
    let old = cluster
        .registries
        .iter()
        .find(|r| r.url == writer)
        .unwrap_or_else(|| panic!("the writer {writer} is not an instance"));
    let survivors: Vec<String> = cluster
        .registries
        .iter()
        .filter(|r| r.url != writer)
        .map(|r| r.addr.clone())
        .collect();

    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    let first =
        tributary_e2e::poll::wait_until("the writer's first registration", DEADLINE, || {
            let addr = old.addr.clone();
            async move { register(&addr, "before", 0).await.ok() }
        })
        .await;
    acked.insert("before".to_owned(), first);

    // A registration through the writer: once it is stalled past its role check, freeze it.
    let stalls = old.proc.log().matches(STALL_LOG).count();
    let addr = old.addr.clone();
    // Bounded by the whole deadline: it waits out the freeze.
    let in_flight = tokio::spawn(async move {
        let body = schema(1);
        request_within(
            DEADLINE,
            &addr,
            "POST",
            "/subjects/frozen/versions",
            Some(&body),
        )
        .await
    });
    tributary_e2e::poll::wait_until("the writer to stall the registration", DEADLINE, || {
        let stalled = old.proc.log().matches(STALL_LOG).count() > stalls;
        async move { stalled.then_some(()) }
    })
    .await;
    old.proc.freeze();

    // Another instance takes over and registers schemas, the first with the id the frozen
    // writer planned.
    let leases = cluster.leases.clone();
    let successor =
        tributary_e2e::poll::wait_until("another instance to take over", DEADLINE, || {
            let (leases, writer) = (leases.clone(), writer.clone());
            async move { holder(&leases).await.filter(|h| *h != writer) }
        })
        .await;
    let mut last = first;
    for i in 0..3 {
        let subject = format!("after-{i}");
        let addr = survivors[i % survivors.len()].clone();
        let id = tributary_e2e::poll::wait_until(
            &format!("registering {subject} through {addr}"),
            DEADLINE,
            || {
                let (addr, subject) = (addr.clone(), subject.clone());
                async move { register(&addr, &subject, 10 + i).await.ok() }
            },
        )
        .await;
        assert!(id > last, "id {id} for {subject} after id {last}");
        last = id;
        acked.insert(subject, id);
    }
    assert_eq!(
        acked["after-0"],
        first + 1,
        "the successor continues the ids"
    );

    // Resumed, the old writer appends with its fenced producer: the write fails.
    old.proc.resume();
    let answer = match tokio::time::timeout(DEADLINE, in_flight).await {
        Ok(Ok(Ok(answer))) => answer,
        Ok(Ok(Err(e))) => panic!("the frozen writer's registration got no answer: {e}"),
        Ok(Err(e)) => panic!("the frozen writer's registration task failed: {e}"),
        Err(_) => panic!("the frozen writer's registration did not end within {DEADLINE:?}"),
    };
    assert_eq!(
        (answer.status, answer.json["error_code"].as_i64()),
        (500, Some(50004)),
        "the resumed writer's stalled registration: {}\n{}",
        answer.text,
        cluster.logs()
    );
    assert!(answer.text.contains("fenced"), "{}", answer.text);

    // It follows now: a write through it is forwarded to the successor.
    let id = tributary_e2e::poll::wait_until("the old writer to forward a write", DEADLINE, || {
        let addr = old.addr.clone();
        async move { register(&addr, "forwarded", 20).await.ok() }
    })
    .await;
    assert!(id > last, "id {id} for forwarded after id {last}");
    last = id;
    acked.insert("forwarded".to_owned(), id);
    assert_eq!(
        holder(&leases).await.as_deref(),
        Some(successor.as_str()),
        "the Lease changed hands again"
    );

    // Nothing the old writer stalled was appended; every id names one schema everywhere.
    let addrs: Vec<&str> = cluster.registries.iter().map(|r| r.addr.as_str()).collect();
    for addr in &addrs {
        let frozen = request(addr, "GET", "/subjects/frozen/versions", None)
            .await
            .unwrap_or_else(|e| panic!("read frozen on {addr}: {e}"));
        assert_eq!(frozen.status, 404, "frozen on {addr}: {}", frozen.text);
    }
    assert_ids_unique_and_readable(&addrs, &acked, last).await;
}
