//! Scenarios written once and run against each broker (see `tributary.rs` and `tansu.rs`).

use std::time::Duration;

use serde_json::Value;

use super::{eventually, trib, trib_with_input, unique, Broker, Kind};

/// Topic names in `trib topic list --json`.
fn topic_names(b: &Broker) -> Vec<String> {
    trib(&b.addr, &["topic", "list", "--json"])
        .json()
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Create, list, describe, add partitions and delete a topic, with the error paths.
pub fn topic_lifecycle(b: &Broker) {
    let topic = unique("lifecycle");
    let out = trib(&b.addr, &["topic", "create", &topic, "-p", "2"]);
    assert!(out.ok().contains("created"), "{out:#?}");
    assert!(out.stdout.contains(&topic));

    trib(&b.addr, &["topic", "create", &topic]).fails(1, &["already exists", "--if-not-exists"]);
    let again = trib(&b.addr, &["topic", "create", &topic, "--if-not-exists"]);
    assert!(again.ok().contains("exists"));

    eventually("the topic to be listed", Duration::from_secs(10), || {
        topic_names(b).contains(&topic).then_some(())
    });
    let table = trib(&b.addr, &["topic", "list"]);
    let row = table
        .ok()
        .lines()
        .find(|l| l.starts_with(&topic))
        .unwrap_or_else(|| panic!("no row for {topic}: {table:#?}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [topic.as_str(), "2", "1"]
    );
    assert!(table.stdout.starts_with("NAME"));

    let d = trib(&b.addr, &["topic", "describe", &topic, "--json"]).json();
    let parts = d[0]["partitions"].as_array().expect("partitions").clone();
    assert_eq!(parts.len(), 2, "{d}");
    assert_eq!(parts[0]["partition"], 0);
    assert_eq!(parts[0]["replicas"].as_array().map(Vec::len), Some(1));
    assert_eq!(parts[0]["isr"].as_array().map(Vec::len), Some(1));
    assert_eq!(parts[0]["high_watermark"], 0);
    let text = trib(&b.addr, &["topic", "describe", &topic]);
    for needle in [
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "ISR",
        "HIGH-WATERMARK",
        "configs",
    ] {
        assert!(text.ok().contains(needle), "{needle}: {text:#?}");
    }

    let del = trib(&b.addr, &["topic", "delete", &topic]);
    assert!(del.ok().contains("deleted"));
    eventually("the topic to disappear", Duration::from_secs(10), || {
        (!topic_names(b).contains(&topic)).then_some(())
    });
    trib(&b.addr, &["topic", "delete", &topic]).fails(1, &["does not exist", "trib topic list"]);
    trib(&b.addr, &["topic", "delete", &topic, "--if-exists"]).ok();
    trib(&b.addr, &["topic", "describe", &topic]).fails(1, &["does not exist"]);
    trib(&b.addr, &["topic", "add-partitions", &topic, "-n", "1"]).fails(1, &["does not exist"]);
}

/// `add-partitions` grows a topic by a number or to a total, and never shrinks it.
pub fn add_partitions(b: &Broker) {
    let topic = unique("grow");
    trib(&b.addr, &["topic", "create", &topic, "-p", "2"]).ok();
    let grow = trib(
        &b.addr,
        &["topic", "add-partitions", &topic, "--num", "1", "--json"],
    )
    .json();
    assert_eq!(grow["before"], 2);
    assert_eq!(grow["after"], 3);
    eventually("3 partitions", Duration::from_secs(10), || {
        let d = trib(&b.addr, &["topic", "describe", &topic, "--json"]).json();
        (d[0]["partitions"].as_array().map(Vec::len) == Some(3)).then_some(())
    });
    let text = trib(
        &b.addr,
        &["topic", "add-partitions", &topic, "--total", "5"],
    );
    assert!(text.ok().contains("from 3 to 5 partitions"), "{text:#?}");
    trib(
        &b.addr,
        &["topic", "add-partitions", &topic, "--total", "2"],
    )
    .fails(2, &["already has 5 partition(s)"]);
    trib(&b.addr, &["topic", "add-partitions", &topic]).fails(2, &["--num"]);
}

/// Topic configs at creation and through alter-config.
pub fn topic_configs(b: &Broker) {
    let topic = unique("configs");
    trib(
        &b.addr,
        &["topic", "create", &topic, "-c", "retention.ms=3600000"],
    )
    .ok();
    let cfg = |b: &Broker| {
        trib(&b.addr, &["topic", "describe", &topic, "--json"]).json()[0]["configs"].clone()
    };
    assert_eq!(cfg(b)["retention.ms"]["value"], "3600000", "{}", cfg(b));

    let alter = trib(
        &b.addr,
        &[
            "topic",
            "alter-config",
            &topic,
            "--set",
            "cleanup.policy=compact",
        ],
    );
    assert!(alter.ok().contains("cleanup.policy"), "{alter:#?}");
    let c = cfg(b);
    assert_eq!(c["cleanup.policy"]["value"], "compact", "{c}");
    assert_eq!(
        c["retention.ms"]["value"], "3600000",
        "other overrides survive: {c}"
    );

    trib(
        &b.addr,
        &["topic", "alter-config", &topic, "--delete", "retention.ms"],
    )
    .ok();
    let c = cfg(b);
    assert_ne!(c["retention.ms"]["source"], "topic", "{c}");
    assert_eq!(c["cleanup.policy"]["value"], "compact", "{c}");

    trib(&b.addr, &["topic", "alter-config", &topic]).fails(2, &["--set"]);
    trib(
        &b.addr,
        &["topic", "alter-config", "no-such-topic", "--set", "a=b"],
    )
    .fails(1, &["does not exist"]);
}

/// Records produced from stdin come back from `consume`, with keys, headers and formats.
pub fn produce_consume_round_trip(b: &Broker) {
    let topic = unique("roundtrip");
    trib(&b.addr, &["topic", "create", &topic]).ok();
    let produced = trib_with_input(
        &b.addr,
        &["produce", &topic, "-k", ":", "-H", "source=test", "--json"],
        b"k1:hello\nk2:world\r\nk3:with:colon\n",
    );
    let summary = produced.json();
    assert_eq!(summary["produced"], 3, "{produced:#?}");
    assert_eq!(summary["failed"], 0);

    let values = trib(&b.addr, &["consume", &topic, "--from-beginning", "-e"]);
    assert_eq!(values.ok(), "hello\nworld\nwith:colon\n");

    let templ = trib(
        &b.addr,
        &[
            "consume",
            &topic,
            "-o",
            "oldest",
            "-n",
            "3",
            "-f",
            "%p/%o %k=%v %h",
        ],
    );
    assert_eq!(
        templ.ok(),
        "0/0 k1=hello source=test\n0/1 k2=world source=test\n0/2 k3=with:colon source=test\n"
    );

    let lines = trib(
        &b.addr,
        &["consume", &topic, "--from-beginning", "-e", "--json"],
    )
    .json_lines();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["key"], "k1");
    assert_eq!(lines[0]["value"], "hello");
    assert_eq!(lines[0]["offset"], 0);
    assert_eq!(lines[0]["headers"][0]["key"], "source");
    assert_eq!(lines[0]["headers"][0]["value"], "test");
    assert!(lines[0]["timestamp"].as_i64().is_some_and(|t| t > 0));

    if b.kind == Kind::Tributary {
        // Tansu 0.6 reports a high watermark below the last offset after a multi-record
        // batch, so "N before the end" starts too early there.
        let tail = trib(&b.addr, &["consume", &topic, "-o", "-1", "-e"]);
        assert_eq!(tail.ok(), "with:colon\n");
    }
    let from = trib(&b.addr, &["consume", &topic, "-o", "1", "-e", "-f", "%o"]);
    assert_eq!(from.ok(), "1\n2\n");
    let by_time = trib(&b.addr, &["consume", &topic, "-o", "@0", "-e", "-n", "1"]);
    assert_eq!(by_time.ok(), "hello\n");
    if b.kind == Kind::Tributary {
        // Tansu 0.6 answers a ListOffsets for a time after the last record with an offset
        // before the end, so every record comes back there.
        let future = trib(&b.addr, &["consume", &topic, "-o", "@-0s", "-e"]);
        assert_eq!(future.ok(), "", "nothing is newer than now");
    }
}

/// A line without the key separator fails the command; the other lines are produced.
pub fn produce_reports_failed_records(b: &Broker) {
    let topic = unique("badlines");
    trib(&b.addr, &["topic", "create", &topic]).ok();
    let r = trib_with_input(
        &b.addr,
        &["produce", &topic, "-k", ":"],
        b"a:1\nnokey\nb:2\n",
    );
    r.fails(
        1,
        &[
            "line 2",
            "no key separator",
            "1 of 3 record(s) were not produced",
        ],
    );
    let values = trib(&b.addr, &["consume", &topic, "--from-beginning", "-e"]);
    assert_eq!(values.ok(), "1\n2\n");
}

/// Produce and consume to chosen partitions.
pub fn partitions_are_respected(b: &Broker) {
    let topic = unique("parts");
    trib(&b.addr, &["topic", "create", &topic, "-p", "3"]).ok();
    trib_with_input(&b.addr, &["produce", &topic, "-p", "2"], b"x\ny\n").ok();
    trib_with_input(&b.addr, &["produce", &topic, "-p", "0"], b"z\n").ok();
    let p2 = trib(
        &b.addr,
        &["consume", &topic, "-p", "2", "--from-beginning", "-e"],
    );
    assert_eq!(p2.ok(), "x\ny\n");
    let all = trib(
        &b.addr,
        &[
            "consume",
            &topic,
            "-p",
            "0-2",
            "--from-beginning",
            "-e",
            "-f",
            "%p:%v",
        ],
    );
    let mut lines: Vec<&str> = all.ok().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["0:z", "2:x", "2:y"]);
    trib_with_input(&b.addr, &["produce", &topic, "-p", "9"], b"x\n")
        .fails(1, &["has no partition 9", "it has 3"]);
    trib(&b.addr, &["consume", &topic, "-p", "5"]).fails(1, &["has no partition 5"]);
}

/// `consume` of a topic that does not exist names the problem and the fix.
pub fn unknown_topic_errors(b: &Broker) {
    trib(&b.addr, &["consume", "no-such-topic", "-e"]).fails(
        1,
        &["topic 'no-such-topic' does not exist", "trib topic create"],
    );
    trib(&b.addr, &["topic", "describe", "no-such-topic"]).fails(1, &["does not exist"]);
    let json = trib(&b.addr, &["consume", "no-such-topic", "--json"]);
    assert_eq!(json.code, 1);
    let err: Value = serde_json::from_str(json.stderr.trim()).expect("JSON error on stderr");
    assert_eq!(err["kind"], "unknown_topic");
}

/// `cluster info` lists the broker.
pub fn cluster_info(b: &Broker) {
    let info = trib(&b.addr, &["cluster", "info", "--json"]).json();
    let brokers = info["brokers"].as_array().expect("brokers");
    assert_eq!(brokers.len(), 1, "{info}");
    let port = b
        .addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<i64>().ok());
    assert_eq!(brokers[0]["port"].as_i64(), port);
    assert!(info["topics"].as_u64().is_some());
    assert!(
        info["controller"].as_i64().is_some(),
        "the controller id is known: {info}"
    );
    let text = trib(&b.addr, &["cluster", "info"]);
    for needle in ["cluster id:", "controller:", "brokers:", "ADDRESS", &b.addr] {
        assert!(text.ok().contains(needle), "{needle}: {text:#?}");
    }
}
