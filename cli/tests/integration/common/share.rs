//! `trib consume --share-group` on a broker serving share groups: a share-partition started
//! before the records, records released by one run delivered again to the next, rejected and
//! accepted ones never, unprinted ones (past `-n`) released; usage errors; and a broker that
//! does not serve share groups named as such.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{eventually, spawn_trib, trib, trib_with_input, unique, Broker};

/// The `partition:offset value` lines of one run.
fn consume(b: &Broker, topic: &str, group: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["consume", topic, "--share-group", group, "-f", "%p:%o %v"];
    args.extend_from_slice(extra);
    trib(&b.addr, &args)
        .ok()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn values(lines: &[String]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l.split_once(' ').map(|(_, v)| v.to_owned()))
        .collect()
}

/// The scenario on `b`.
pub fn share_group_consumption(b: &Broker) {
    let topic = unique("queue");
    let group = unique("workers");
    trib(&b.addr, &["topic", "create", &topic, "-p", "2"]).ok();
    // The first member starts the share-partitions at their end (share.auto.offset.reset
    // latest): empty now, so they start at 0 and every record produced after is delivered.
    assert!(consume(b, &topic, &group, &["-e"]).is_empty());
    // Half to each partition: records without a key may all go to one (the producer's
    // sticky partitioning), which would leave the other share-partition at 0.
    let sent: Vec<String> = (1..=20).map(|i| format!("r{i}")).collect();
    for (partition, half) in [("0", &sent[..10]), ("1", &sent[10..])] {
        let lines = half.join("\n");
        trib_with_input(
            &b.addr,
            &["produce", &topic, "-p", partition],
            lines.as_bytes(),
        )
        .ok();
    }

    // Five printed and released, the rest acquired beyond -n released too.
    let released = consume(b, &topic, &group, &["-n", "5", "--ack", "release"]);
    assert_eq!(released.len(), 5, "{released:?}");
    // Everything again, accepted; then nothing is left.
    let all = consume(b, &topic, &group, &["-e"]);
    assert_eq!(values(&all), sent.iter().cloned().collect(), "{all:?}");
    assert_eq!(all.len(), sent.len(), "each record once: {all:?}");
    assert!(consume(b, &topic, &group, &["-e"]).is_empty());

    // Rejected records are archived, never delivered again.
    trib_with_input(&b.addr, &["produce", &topic], b"x1\nx2\nx3\n").ok();
    let rejected = consume(b, &topic, &group, &["-e", "--ack", "reject"]);
    assert_eq!(
        values(&rejected),
        ["x1", "x2", "x3"].map(String::from).into()
    );
    assert!(consume(b, &topic, &group, &["-e"]).is_empty());

    // JSON output carries the record's coordinates.
    trib_with_input(&b.addr, &["produce", &topic, "-p", "1"], b"j\n").ok();
    let json = trib(
        &b.addr,
        &["--json", "consume", &topic, "--share-group", &group, "-e"],
    )
    .json_lines();
    assert_eq!(json.len(), 1, "{json:?}");
    assert_eq!(json[0]["partition"], 1);
    assert_eq!(json[0]["value"], "j");

    // `group list` and `describe` show the share group: empty now, every share-partition
    // started and nothing left to deliver.
    let listed = trib(&b.addr, &["--json", "group", "list", "--type", "share"]).json();
    let row = listed
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["group"] == group.as_str()))
        .unwrap_or_else(|| panic!("{group} not listed: {listed}"));
    assert_eq!(
        (row["type"].as_str(), row["state"].as_str()),
        (Some("share"), Some("Empty"))
    );
    let described = trib(&b.addr, &["--json", "group", "describe", &group]).json();
    let doc = &described[0];
    assert_eq!(doc["type"], "share", "{doc}");
    assert_eq!(doc["protocol"], "simple");
    assert_eq!(doc["total_lag"], 0);
    let partitions = doc["share_partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(partitions.len(), 2, "{doc}");
    assert!(
        partitions
            .iter()
            .all(|p| p["lag"] == 0 && p["start_offset"].as_i64() > Some(0)),
        "every share-partition past its records, nothing left: {doc}"
    );

    // A live member is listed with its assignment.
    let mut member = spawn_trib(&b.addr, &["consume", &topic, "--share-group", &group]);
    let assigned = eventually(
        "the member assigned both partitions",
        Duration::from_secs(30),
        || {
            let d = trib(&b.addr, &["--json", "group", "describe", &group]).json();
            let members = d[0]["members"].as_array().cloned().unwrap_or_default();
            (members.len() == 1 && members[0]["assignment"].as_array().map(Vec::len) == Some(2))
                .then_some(d)
        },
    );
    assert_eq!(assigned[0]["state"], "Stable");
    let text = trib(&b.addr, &["group", "list"]).ok().to_owned();
    assert!(text.contains(&group) && text.contains("share"), "{text}");
    trib_with_input(&b.addr, &["produce", &topic], b"live\n").ok();
    assert_eq!(member.wait_lines(1, Duration::from_secs(30)), ["live"]);
    member.interrupt();
    member.finish(Duration::from_secs(30)).ok();

    // Flags that mean nothing for a share member are usage errors.
    trib(&b.addr, &["consume", &topic, "--ack", "release"]).fails(2, &["--share-group"]);
    trib(
        &b.addr,
        &["consume", &topic, "--share-group", "g", "-g", "c"],
    )
    .fails(2, &["--group"]);
    trib(
        &b.addr,
        &["consume", &topic, "--share-group", "g", "--from-beginning"],
    )
    .fails(2, &["--from-beginning"]);
}

/// On a broker with share groups switched off.
pub fn share_groups_switched_off(b: &Broker) {
    let topic = unique("queue");
    trib(&b.addr, &["topic", "create", &topic]).ok();
    trib(&b.addr, &["consume", &topic, "--share-group", "g", "-e"])
        .fails(1, &["do not serve share groups"]);
}
