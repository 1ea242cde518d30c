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
    // A dead bootstrap address next to a live one is not "unreachable".
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mixed = format!("{dead},{}", b.addr);
    trib(&mixed, &["cluster", "info"]).ok();
    let text = trib(&b.addr, &["cluster", "info"]);
    for needle in ["cluster id:", "controller:", "brokers:", "ADDRESS", &b.addr] {
        assert!(text.ok().contains(needle), "{needle}: {text:#?}");
    }
}

/// The group a `--json` `group list` reports under `name`, if any.
fn listed_group(b: &Broker, name: &str) -> Option<Value> {
    let list = trib(&b.addr, &["group", "list", "--json"]).json();
    list.as_array()?
        .iter()
        .find(|g| g["group"] == name)
        .cloned()
}

/// The committed offsets of a group, as (topic, partition, committed, lag). Tansu 0.6
/// under-reports high watermarks (see `produce_consume_round_trip`), so its lag reads -1.
fn group_offsets(b: &Broker, group: &str) -> Vec<(String, i64, i64, i64)> {
    let d = trib(&b.addr, &["group", "describe", group, "--json"]).json();
    d[0]["offsets"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["topic"].as_str().unwrap_or_default().to_string(),
                        o["partition"].as_i64().unwrap_or(-1),
                        o["committed"].as_i64().unwrap_or(-1),
                        if b.kind == Kind::Tansu {
                            -1
                        } else {
                            o["lag"].as_i64().unwrap_or(-1)
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Consume as a group, describe it, reset its offsets, consume again, delete it.
pub fn group_lifecycle(b: &Broker) {
    let topic = unique("grouped");
    let group = unique("group");
    trib(&b.addr, &["topic", "create", &topic]).ok();
    trib_with_input(&b.addr, &["produce", &topic], b"r1\nr2\nr3\nr4\nr5\n").ok();

    let first = trib(
        &b.addr,
        &[
            "consume",
            &topic,
            "-g",
            &group,
            "--from-beginning",
            "-n",
            "2",
        ],
    );
    assert_eq!(first.ok(), "r1\nr2\n");
    let g = eventually("the group to be listed", Duration::from_secs(20), || {
        listed_group(b, &group)
    });
    assert_eq!(g["state"], "Empty", "{g}");
    assert_eq!(g["members"], 0);
    assert!(trib(&b.addr, &["group", "list"]).ok().contains(&group));

    let lag = |n: i64| if b.kind == Kind::Tansu { -1 } else { n };
    assert_eq!(group_offsets(b, &group), [(topic.clone(), 0, 2, lag(3))]);
    let text = trib(&b.addr, &["group", "describe", &group]);
    for needle in ["type:", "state:", "total lag:", "COMMITTED", "LAG", &topic] {
        assert!(text.ok().contains(needle), "{needle}: {text:#?}");
    }
    if b.kind == Kind::Tributary {
        // The fields are aligned: the value follows the key after any number of spaces.
        let total = text.ok().lines().find_map(|l| l.strip_prefix("total lag:"));
        assert_eq!(total.map(str::trim), Some("3"), "{text:#?}");
    }

    let rest = trib(&b.addr, &["consume", &topic, "-g", &group, "-e"]);
    assert_eq!(
        rest.ok(),
        "r3\nr4\nr5\n",
        "a group resumes from its commits"
    );
    assert_eq!(group_offsets(b, &group), [(topic.clone(), 0, 5, lag(0))]);

    let dry = trib(
        &b.addr,
        &[
            "group",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to",
            "1",
            "--dry-run",
            "--json",
        ],
    )
    .json();
    assert_eq!(dry["offsets"][0]["previous"], 5, "{dry}");
    assert_eq!(dry["offsets"][0]["new"], 1, "{dry}");
    assert_eq!(
        group_offsets(b, &group)[0].2,
        5,
        "a dry run commits nothing"
    );

    let reset = |to: &str| {
        let r = trib(
            &b.addr,
            &["group", "reset-offsets", &group, "--to", to, "--json"],
        )
        .json();
        r["offsets"][0]["new"].as_i64()
    };
    assert_eq!(reset("oldest"), Some(0));
    assert_eq!(group_offsets(b, &group)[0].2, 0);
    if b.kind == Kind::Tributary {
        // Both are relative to the high watermark, which Tansu 0.6 under-reports.
        assert_eq!(reset("-2"), Some(3));
        assert_eq!(reset("newest"), Some(5));
    }
    assert_eq!(reset("@0"), Some(0));
    let text = trib(
        &b.addr,
        &[
            "group",
            "reset-offsets",
            &group,
            "-t",
            &format!("{topic}:0"),
            "--to",
            "1",
        ],
    );
    assert!(text.ok().contains("PREVIOUS"), "{text:#?}");
    let again = trib(&b.addr, &["consume", &topic, "-g", &group, "-n", "1"]);
    assert_eq!(again.ok(), "r2\n", "consumption follows the reset");

    trib(
        &b.addr,
        &[
            "group",
            "reset-offsets",
            &group,
            "-t",
            "no-such-topic",
            "--to",
            "0",
        ],
    )
    .fails(1, &["does not exist"]);
    let fresh = unique("fresh");
    trib(
        &b.addr,
        &["group", "reset-offsets", &fresh, "--to", "oldest"],
    )
    .fails(2, &["no committed offsets", "--topic"]);
    trib(&b.addr, &["group", "describe", &fresh]).fails(1, &["does not exist", "trib group list"]);

    let del = trib(&b.addr, &["group", "delete", &group]);
    assert!(del.ok().contains("deleted"), "{del:#?}");
    eventually("the group to go", Duration::from_secs(10), || {
        listed_group(b, &group).is_none().then_some(())
    });
    trib(&b.addr, &["group", "delete", &group]).fails(1, &["does not exist"]);
}

/// A group member blocks resets and deletes; Ctrl-C ends it cleanly with its offsets committed.
pub fn ctrl_c_commits_and_active_groups_are_protected(b: &Broker) {
    let topic = unique("live");
    let group = unique("livegroup");
    trib(&b.addr, &["topic", "create", &topic]).ok();
    trib_with_input(&b.addr, &["produce", &topic], b"a\nb\nc\n").ok();
    let mut consumer = super::spawn_trib(
        &b.addr,
        &["consume", &topic, "-g", &group, "--from-beginning"],
    );
    assert_eq!(
        consumer.wait_lines(3, Duration::from_secs(60)),
        ["a", "b", "c"]
    );

    let g = eventually("the member to show", Duration::from_secs(20), || {
        listed_group(b, &group).filter(|g| g["members"] == 1)
    });
    assert_eq!(g["state"], "Stable", "{g}");
    let d = trib(&b.addr, &["group", "describe", &group, "--json"]).json();
    if b.kind == Kind::Tributary {
        // Tansu 0.6 describes members without client id, host or assignment.
        assert_eq!(d[0]["members"][0]["client_id"], "trib", "{d}");
        let member = &d[0]["members"][0];
        assert_eq!(member["assignment"][0]["topic"], topic.as_str(), "{d}");
        assert_eq!(d[0]["offsets"][0]["owner"], "trib", "{d}");
    }
    trib(
        &b.addr,
        &["group", "reset-offsets", &group, "-t", &topic, "--to", "0"],
    )
    .fails(1, &["1 active member", "stop the group's consumers"]);
    trib(&b.addr, &["group", "delete", &group]).fails(1, &["active member"]);

    consumer.interrupt();
    let done = consumer.finish(Duration::from_secs(30));
    assert_eq!(done.code, 0, "Ctrl-C is a clean exit: {done:#?}");
    assert_eq!(done.stdout, "a\nb\nc\n");
    let lag = if b.kind == Kind::Tansu { -1 } else { 0 };
    assert_eq!(
        group_offsets(b, &group),
        [(topic, 0, 3, lag)],
        "offsets committed on Ctrl-C"
    );
}

/// Producer and consumer benchmarks report what they did.
pub fn benchmarks(b: &Broker) {
    let topic = unique("bench");
    let p = trib(
        &b.addr,
        &[
            "bench", "produce", &topic, "-n", "2000", "-s", "200", "-p", "2", "--json",
        ],
    );
    assert!(p.stderr.contains("created topic"), "{p:#?}");
    let v = p.json();
    assert_eq!(v["records"], 2000, "{v}");
    assert_eq!(v["bytes"], 400_000);
    assert_eq!(v["failed"], 0);
    assert!(
        v["records_per_sec"].as_f64().is_some_and(|r| r > 0.0),
        "{v}"
    );
    for q in ["avg", "p50", "p95", "p99", "p999", "max"] {
        assert!(
            v["latency_ms"][q].as_f64().is_some_and(|l| l > 0.0),
            "{q}: {v}"
        );
    }
    assert_eq!(v["latency_ms"]["count"], 2000);

    let d = trib(&b.addr, &["topic", "describe", &topic, "--json"]).json();
    assert_eq!(d[0]["partitions"].as_array().map(Vec::len), Some(2));

    let c = trib(
        &b.addr,
        &["bench", "consume", &topic, "-n", "2000", "--json"],
    )
    .json();
    assert_eq!(c["records"], 2000, "{c}");
    assert!(c["mib_per_sec"].as_f64().is_some_and(|r| r > 0.0), "{c}");

    let short = trib(
        &b.addr,
        &["bench", "consume", &topic, "-n", "5000", "--timeout", "2s"],
    );
    short.fails(1, &["only 2000 of 5000 records"]);
    assert!(
        short.stdout.contains("throughput:"),
        "the summary still prints: {short:#?}"
    );

    let paced = trib(
        &b.addr,
        &[
            "bench", "produce", &topic, "-d", "2s", "-r", "100", "--json",
        ],
    )
    .json();
    let n = paced["records"].as_u64().unwrap_or(0);
    assert!(
        (150..=250).contains(&n),
        "about 100 records/s for 2 s, got {n}"
    );
    let text = trib(&b.addr, &["bench", "produce", &topic, "-n", "10"]);
    for needle in ["records:", "throughput:", "records/s", "MiB/s", "p99"] {
        assert!(text.ok().contains(needle), "{needle}: {text:#?}");
    }
}
