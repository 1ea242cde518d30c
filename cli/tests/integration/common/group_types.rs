//! `trib group list` and `describe` on a broker serving both group protocols: a classic group
//! and a KIP-848 consumer group, each with one live librdkafka member.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use serde_json::Value;

use super::{eventually, trib, trib_with_input, unique, Broker};

/// A librdkafka consumer polling in a thread, committing every record it reads; stopped and
/// closed (it leaves its group) when dropped.
pub struct Member {
    stop: Arc<AtomicBool>,
    read: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    /// Subscribes to `topic` in `group` with `group.protocol` = `protocol`.
    pub fn start(brokers: &str, group: &str, topic: &str, protocol: &str) -> Member {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("group.protocol", protocol)
            .set("client.id", format!("{protocol}-member"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let read = Arc::new(AtomicUsize::new(0));
        let (stop2, read2) = (stop.clone(), read.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                    if consumer.commit_message(&m, CommitMode::Sync).is_ok() {
                        read2.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Dropping the consumer closes it: it leaves the group.
        });
        Member {
            stop,
            read,
            thread: Some(thread),
        }
    }

    /// Records read and committed so far.
    pub fn read(&self) -> usize {
        self.read.load(Ordering::Relaxed)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `group list --json`, as group id -> its entry.
fn listed(b: &Broker, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["group", "list", "--json"];
    args.extend_from_slice(extra);
    trib(&b.addr, &args)
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn entry<'a>(list: &'a [Value], group: &str) -> Option<&'a Value> {
    list.iter().find(|g| g["group"] == group)
}

/// The (topic, partition) pairs of a JSON assignment, sorted.
fn pairs(v: &Value) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = v
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["topic"].as_str().unwrap_or_default().to_string(),
                        p["partition"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Both group types listed with their type, filtered by type, and described with members,
/// assignments, target assignments and per-partition lag.
pub fn classic_and_consumer_groups(b: &Broker) {
    let topic = unique("typed");
    let modern = unique("modern");
    let classic = unique("classic");
    trib(&b.addr, &["topic", "create", &topic, "-p", "2"]).ok();
    trib_with_input(&b.addr, &["produce", &topic, "-p", "0"], b"a\nb\n").ok();
    trib_with_input(&b.addr, &["produce", &topic, "-p", "1"], b"c\n").ok();

    let started = Instant::now();
    let m = Member::start(&b.addr, &modern, &topic, "consumer");
    let c = Member::start(&b.addr, &classic, &topic, "classic");
    eventually(
        "both members to read all 3 records",
        Duration::from_secs(60),
        || (m.read() == 3 && c.read() == 3).then_some(()),
    );
    let list = eventually(
        "both groups stable with one member",
        Duration::from_secs(30),
        || {
            let list = listed(b, &[]);
            let ready = [&modern, &classic].iter().all(|g| {
                entry(&list, g).is_some_and(|e| e["state"] == "Stable" && e["members"] == 1)
            });
            ready.then_some(list)
        },
    );
    let (em, ec) = (entry(&list, &modern), entry(&list, &classic));
    assert_eq!(
        em.map(|e| &e["type"]),
        Some(&Value::from("consumer")),
        "{list:?}"
    );
    assert_eq!(
        ec.map(|e| &e["type"]),
        Some(&Value::from("classic")),
        "{list:?}"
    );
    assert_eq!(
        em.map(|e| &e["protocol_type"]),
        Some(&Value::from("consumer"))
    );

    // The type filter.
    let only = listed(b, &["--type", "consumer"]);
    assert!(entry(&only, &modern).is_some(), "{only:?}");
    assert!(entry(&only, &classic).is_none(), "{only:?}");
    let only = listed(b, &["--type", "classic"]);
    assert!(
        entry(&only, &classic).is_some() && entry(&only, &modern).is_none(),
        "{only:?}"
    );
    let only = listed(b, &["--type", "share"]);
    assert!(
        entry(&only, &classic).is_none() && entry(&only, &modern).is_none(),
        "{only:?}"
    );

    // The table has the TYPE column.
    let table = trib(&b.addr, &["group", "list"]);
    let text = table.ok();
    assert!(
        text.lines().next().is_some_and(|h| h.contains("TYPE")),
        "{text}"
    );
    for (group, kind) in [(&modern, "consumer"), (&classic, "classic")] {
        let line = text.lines().find(|l| l.starts_with(group.as_str()));
        assert!(
            line.is_some_and(|l| l.contains(kind) && l.contains("Stable")),
            "{text}"
        );
    }

    // The consumer group, described through ConsumerGroupDescribe.
    let d = trib(&b.addr, &["group", "describe", &modern, "--json"]).json();
    let g = &d[0];
    assert_eq!(g["type"], "consumer", "{g}");
    assert_eq!(g["state"], "Stable", "{g}");
    assert_eq!(g["members"].as_array().map(Vec::len), Some(1), "{g}");
    let member = &g["members"][0];
    assert_eq!(member["client_id"], "consumer-member", "{g}");
    assert!(
        member["member_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{g}"
    );
    let all = vec![(topic.clone(), 0), (topic.clone(), 1)];
    assert_eq!(pairs(&member["assignment"]), all, "{g}");
    assert_eq!(pairs(&member["target_assignment"]), all, "{g}");
    let offsets: Vec<(i64, i64, i64, String)> = g["offsets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["partition"].as_i64().unwrap_or(-1),
                        o["committed"].as_i64().unwrap_or(-1),
                        o["lag"].as_i64().unwrap_or(-1),
                        o["owner"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        offsets,
        [
            (0, 2, 0, "consumer-member".to_string()),
            (1, 1, 0, "consumer-member".to_string())
        ],
        "{g}"
    );
    assert_eq!(g["total_lag"], 0, "{g}");

    let text = trib(&b.addr, &["group", "describe", &modern]);
    for needle in [
        "type:",
        "consumer",
        "ASSIGNMENT",
        "TARGET",
        &format!("{topic}:0,1"),
        "consumer-member",
        "COMMITTED",
    ] {
        assert!(text.ok().contains(needle), "{needle}: {text:#?}");
    }

    // The classic group, described through DescribeGroups: no target assignment.
    let d = trib(&b.addr, &["group", "describe", &classic, "--json"]).json();
    let g = &d[0];
    assert_eq!(g["type"], "classic", "{g}");
    assert_eq!(g["members"][0]["client_id"], "classic-member", "{g}");
    assert_eq!(pairs(&g["members"][0]["assignment"]), all, "{g}");
    assert!(g["members"][0]["target_assignment"].is_null(), "{g}");
    assert_eq!(g["total_lag"], 0, "{g}");

    // An active consumer group is protected like a classic one.
    trib(
        &b.addr,
        &["group", "reset-offsets", &modern, "-t", &topic, "--to", "0"],
    )
    .fails(1, &["1 active member"]);

    // Once its member leaves, the consumer group is Empty and keeps its offsets.
    drop(m);
    let g = eventually(
        "the consumer group to empty",
        Duration::from_secs(30),
        || {
            let d = trib(&b.addr, &["group", "describe", &modern, "--json"]).json();
            (d[0]["state"] == "Empty").then(|| d[0].clone())
        },
    );
    assert_eq!(g["type"], "consumer", "{g}");
    assert_eq!(g["members"].as_array().map(Vec::len), Some(0), "{g}");
    assert_eq!(g["offsets"].as_array().map(Vec::len), Some(2), "{g}");
    drop(c);
    assert!(
        started.elapsed() < Duration::from_secs(180),
        "took {:?}",
        started.elapsed()
    );
}
