//! `trib group`: list, describe, delete consumer groups and reset their offsets.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::messages::ConsumerProtocolAssignment;
use kafka_protocol::protocol::Decodable;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::args::usage;
use crate::client::{self, check_partitions, find_topic, is_internal, Settings, TribContext};
use crate::consume::offsets_for_time;
use crate::error::{Error, Result};
use crate::output::Output;
use crate::parse::{parse_offset, parse_topic_partitions, OffsetSpec, TopicPartitions};

/// `trib group` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// List consumer groups
    #[command(visible_alias = "ls")]
    List,
    /// Show a group's state, members, and per-partition committed offset, end offset and lag
    Describe(DescribeArgs),
    /// Delete groups and their committed offsets (the groups must be empty)
    Delete(DeleteArgs),
    /// Move an empty group's committed offsets (earliest, latest, an offset, or a time)
    ResetOffsets(ResetArgs),
}

/// Flags of `trib group describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// Group ids
    #[arg(required = true)]
    pub groups: Vec<String>,
}

/// Flags of `trib group delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Group ids
    #[arg(required = true)]
    pub groups: Vec<String>,
}

/// Flags of `trib group reset-offsets`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    trib group reset-offsets billing --topic orders --to oldest --dry-run\n  \
    trib group reset-offsets billing --topic orders:0,1 --to 1500\n  \
    trib group reset-offsets billing --to @-1h")]
pub struct ResetArgs {
    /// Group id
    pub group: String,
    /// Topic to reset, optionally with partitions (orders, orders:0,2, orders:0-3); repeatable
    /// [default: every topic the group has committed offsets for]
    #[arg(short, long = "topic", value_name = "TOPIC[:PARTITIONS]", value_parser = parse_topic_partitions)]
    pub topics: Vec<TopicPartitions>,
    /// Target: oldest, newest, an offset N, -N (N records before the end), or @TIME
    /// (@MILLIS, @2024-01-02T03:04:05Z, @-1h)
    #[arg(long, value_parser = parse_offset, allow_hyphen_values = true)]
    pub to: OffsetSpec,
    /// Show the new offsets without committing them
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a `trib group` subcommand.
pub async fn run(cmd: GroupCommand, settings: &Settings, out: &Output) -> Result<()> {
    match cmd {
        GroupCommand::List => list(settings, out),
        GroupCommand::Describe(a) => describe(a, settings, out),
        GroupCommand::Delete(a) => delete(a, settings, out).await,
        GroupCommand::ResetOffsets(a) => reset_offsets(a, settings, out),
    }
}

/// One member of a group.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    client_id: String,
    host: String,
    /// Assigned (topic, partition) pairs, when the group uses the consumer protocol.
    assignment: Vec<(String, i32)>,
}

/// What DescribeGroups says about a group.
#[derive(Debug, Clone)]
struct GroupInfo {
    name: String,
    state: String,
    protocol_type: String,
    protocol: String,
    members: Vec<Member>,
}

/// Decodes a consumer-protocol member assignment into (topic, partition) pairs; other
/// protocols (or bytes that do not decode) give none.
pub fn decode_assignment(bytes: &[u8]) -> Vec<(String, i32)> {
    let mut buf = bytes;
    if buf.remaining() < 2 || !counts_fit(&bytes[2..]) {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    match ConsumerProtocolAssignment::decode(&mut buf, version) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|tp| {
                let topic = tp.topic.to_string();
                tp.partitions.iter().map(move |p| (topic.clone(), *p))
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Checks that the array counts in an assignment's topic list fit in the bytes that follow,
/// so the decoder never reserves memory for elements that are not there (it trusts counts).
fn counts_fit(mut buf: &[u8]) -> bool {
    if buf.remaining() < 4 {
        return false;
    }
    let topics = buf.get_i32();
    // Each topic needs at least a name length (2) and a partition count (4).
    if topics < 0 || topics as usize > buf.remaining() / 6 {
        return false;
    }
    for _ in 0..topics {
        if buf.remaining() < 2 {
            return false;
        }
        let Ok(len) = usize::try_from(buf.get_i16()) else {
            return false;
        };
        if buf.remaining() < len + 4 {
            return false;
        }
        buf.advance(len);
        let Ok(parts) = usize::try_from(buf.get_i32()) else {
            return false;
        };
        match parts.checked_mul(4) {
            Some(n) if n <= buf.remaining() => buf.advance(n),
            _ => return false,
        }
    }
    true
}

/// Lists groups (all of them, or one); a group that does not exist is left out.
fn fetch_groups(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    group: Option<&str>,
) -> Result<Vec<GroupInfo>> {
    let list = consumer
        .fetch_group_list(group, settings.timeout)
        .map_err(|e| Error::kafka("list consumer groups", e))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.state() != "Dead")
        .map(|g| GroupInfo {
            name: g.name().to_string(),
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| Member {
                    id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                })
                .collect(),
        })
        .collect())
}

fn fetch_group(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    group: &str,
) -> Result<Option<GroupInfo>> {
    Ok(fetch_groups(consumer, settings, Some(group))?
        .into_iter()
        .find(|g| g.name == group))
}

fn list(settings: &Settings, out: &Output) -> Result<()> {
    let (consumer, _) = client::connect(settings)?;
    let mut groups = fetch_groups(&consumer, settings, None)?;
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    if out.json {
        let v: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({ "group": g.name, "state": g.state, "members": g.members.len(),
                        "protocol_type": g.protocol_type, "protocol": g.protocol })
            })
            .collect();
        return out.print_json(&Value::Array(v));
    }
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                g.state.clone(),
                g.members.len().to_string(),
                g.protocol_type.clone(),
            ]
        })
        .collect();
    out.print_table(
        &["GROUP", "STATE", "MEMBERS", "TYPE"],
        &rows,
        "no consumer groups",
    )
}

/// A group's committed offsets for `partitions` (every non-internal partition when `None`).
fn committed(
    settings: &Settings,
    md: &Metadata,
    group: &str,
    partitions: Option<&[(String, i32)]>,
) -> Result<BTreeMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    match partitions {
        Some(ps) => {
            for (t, p) in ps {
                tpl.add_partition(t, *p);
            }
        }
        None => {
            for t in md.topics().iter().filter(|t| !is_internal(t.name())) {
                for p in t.partitions() {
                    tpl.add_partition(t.name(), p.id());
                }
            }
        }
    }
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let consumer = settings.lookup_consumer(Some(group))?;
    let found = consumer
        .committed_offsets(tpl, settings.timeout)
        .map_err(|e| Error::kafka(format!("read the offsets of group '{group}'"), e))?;
    Ok(found
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect())
}

/// One row of `group describe`.
struct Lag {
    topic: String,
    partition: i32,
    committed: Option<i64>,
    end: Option<i64>,
    owner: Option<String>,
}

impl Lag {
    fn lag(&self) -> Option<i64> {
        match (self.committed, self.end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        }
    }
}

fn describe(a: DescribeArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (consumer, md) = client::connect(settings)?;
    let mut docs = Vec::new();
    for (i, group) in a.groups.iter().enumerate() {
        let info = fetch_group(&consumer, settings, group)?;
        let offsets = committed(settings, &md, group, None)?;
        let info = known_group(group, info, &offsets)?;
        let rows = lag_rows(&consumer, settings, &info, &offsets);
        let total_lag: i64 = rows.iter().filter_map(Lag::lag).sum();
        if out.json {
            docs.push(group_json(&info, &rows, total_lag));
        } else {
            print_group(out, &info, &rows, total_lag, i == 0)?;
        }
    }
    if out.json {
        out.print_json(&Value::Array(docs))?;
    }
    Ok(())
}

/// The group as the broker describes it; a group it does not know is shown as `Empty` if it
/// has committed offsets, and is an error otherwise.
fn known_group(
    group: &str,
    info: Option<GroupInfo>,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Result<GroupInfo> {
    match info {
        Some(info) => Ok(info),
        None if offsets.is_empty() => Err(Error::UnknownGroup {
            group: group.to_owned(),
        }),
        None => Ok(GroupInfo {
            name: group.to_owned(),
            state: "Empty".into(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        }),
    }
}

/// One row per partition the group has an offset for or a member assigned, with its end
/// offset (unknown if it cannot be read) and the member consuming it.
fn lag_rows(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    info: &GroupInfo,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Vec<Lag> {
    let owners: BTreeMap<(String, i32), String> = info
        .members
        .iter()
        .flat_map(|m| {
            m.assignment
                .iter()
                .map(move |tp| (tp.clone(), m.client_id.clone()))
        })
        .collect();
    let keys: BTreeSet<(String, i32)> = offsets.keys().chain(owners.keys()).cloned().collect();
    keys.into_iter()
        .map(|(topic, partition)| {
            let end = client::watermarks(consumer, settings, &topic, partition)
                .ok()
                .map(|w| w.1);
            Lag {
                committed: offsets.get(&(topic.clone(), partition)).copied(),
                owner: owners.get(&(topic.clone(), partition)).cloned(),
                topic,
                partition,
                end,
            }
        })
        .collect()
}

/// The `--json` document of one group.
fn group_json(info: &GroupInfo, rows: &[Lag], total_lag: i64) -> Value {
    json!({
        "group": info.name,
        "state": info.state,
        "protocol_type": info.protocol_type,
        "protocol": info.protocol,
        "members": info.members.iter().map(|m| json!({
            "member_id": m.id, "client_id": m.client_id, "host": m.host,
            "assignment": m.assignment.iter()
                .map(|(t, p)| json!({ "topic": t, "partition": p }))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "offsets": rows.iter().map(|r| json!({
            "topic": r.topic, "partition": r.partition, "committed": r.committed,
            "end": r.end, "lag": r.lag(), "owner": r.owner,
        })).collect::<Vec<_>>(),
        "total_lag": total_lag,
    })
}

/// One group as text: its summary, its members (if any) and its offsets.
fn print_group(
    out: &Output,
    info: &GroupInfo,
    rows: &[Lag],
    total_lag: i64,
    first: bool,
) -> Result<()> {
    out.print_section(&format!("group {}", info.name), first)?;
    let protocol = match (info.protocol_type.is_empty(), info.protocol.is_empty()) {
        (true, _) => "-".to_string(),
        (false, true) => info.protocol_type.clone(),
        (false, false) => format!("{} ({})", info.protocol_type, info.protocol),
    };
    out.print_fields(&[
        ("state", info.state.clone()),
        ("protocol", protocol),
        ("members", info.members.len().to_string()),
        ("total lag", total_lag.to_string()),
    ])?;
    if !info.members.is_empty() {
        print_members(out, &info.members)?;
    }
    print_offsets(out, rows)
}

fn print_members(out: &Output, members: &[Member]) -> Result<()> {
    out.print_section("members", false)?;
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.client_id.clone(),
                m.host.clone(),
                m.assignment.len().to_string(),
                m.id.clone(),
            ]
        })
        .collect();
    out.print_table(&["CLIENT-ID", "HOST", "PARTITIONS", "MEMBER-ID"], &rows, "")
}

fn print_offsets(out: &Output, rows: &[Lag]) -> Result<()> {
    out.print_section("offsets", false)?;
    let dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                dash(r.committed),
                dash(r.end),
                dash(r.lag()),
                r.owner.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.print_table(
        &["TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "CONSUMER"],
        &rows,
        "no committed offsets",
    )
}

async fn delete(a: DeleteArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (consumer, _) = client::connect(settings)?;
    for group in &a.groups {
        // Checked here too: some brokers delete unknown or active groups without complaint.
        match fetch_group(&consumer, settings, group)? {
            None => {
                return Err(Error::UnknownGroup {
                    group: group.clone(),
                })
            }
            Some(info) if !info.members.is_empty() => {
                return Err(Error::GroupActive {
                    group: group.clone(),
                    state: info.state,
                    members: info.members.len(),
                })
            }
            Some(_) => {}
        }
    }
    let admin = settings.admin()?;
    let names: Vec<&str> = a.groups.iter().map(String::as_str).collect();
    let results = admin
        .delete_groups(&names, &settings.admin_options())
        .await
        .map_err(|e| Error::kafka("delete consumer groups", e))?;
    let (mut rows, mut json, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(name) => {
                rows.push(vec![name.clone(), out.green("deleted")]);
                json.push(json!({ "group": name, "status": "deleted" }));
            }
            Err((group, RDKafkaErrorCode::GroupIdNotFound)) => {
                errors.push(Error::UnknownGroup { group })
            }
            Err((group, RDKafkaErrorCode::NonEmptyGroup)) => {
                let info = fetch_group(&consumer, settings, &group).ok().flatten();
                errors.push(Error::GroupActive {
                    state: info.as_ref().map_or("active".into(), |i| i.state.clone()),
                    members: info.map_or(0, |i| i.members.len()),
                    group,
                });
            }
            Err((group, code)) => errors.push(Error::code(format!("delete group '{group}'"), code)),
        }
    }
    if out.json {
        if !json.is_empty() {
            out.print_json(&Value::Array(json))?;
        }
    } else if !rows.is_empty() {
        out.print_table(&["GROUP", "STATUS"], &rows, "")?;
    }
    let mut errors = errors.into_iter();
    let first = errors.next();
    for e in errors {
        out.warn(&e.to_string());
    }
    first.map_or(Ok(()), Err)
}

/// The offset a reset moves a partition to, given its watermarks and, for a time target,
/// the offset the broker found for that time (`None`: no record at or after it).
pub fn target_offset(spec: OffsetSpec, low: i64, high: i64, by_time: Option<i64>) -> i64 {
    match spec {
        OffsetSpec::Oldest => low,
        OffsetSpec::Newest => high,
        OffsetSpec::Absolute(n) => n.clamp(low, high.max(low)),
        OffsetSpec::FromEnd(n) => high.saturating_sub(n).max(low),
        OffsetSpec::Timestamp(_) => by_time.unwrap_or(high).clamp(low, high.max(low)),
    }
}

fn reset_offsets(a: ResetArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (consumer, md) = client::connect(settings)?;
    if let Some(info) = fetch_group(&consumer, settings, &a.group)? {
        if !info.members.is_empty() {
            return Err(Error::GroupActive {
                group: a.group.clone(),
                state: info.state,
                members: info.members.len(),
            });
        }
    }
    // Which partitions to move.
    let mut targets: Vec<(String, i32)> = Vec::new();
    for tp in &a.topics {
        let t = find_topic(&md, &tp.topic)?;
        let ids = match &tp.partitions {
            Some(ps) => {
                check_partitions(t, ps)?;
                ps.clone()
            }
            None => client::partition_ids(t),
        };
        targets.extend(ids.into_iter().map(|p| (tp.topic.clone(), p)));
    }
    let current = if targets.is_empty() {
        let all = committed(settings, &md, &a.group, None)?;
        targets = all.keys().cloned().collect();
        if targets.is_empty() {
            return Err(usage(format!(
                "group '{}' has no committed offsets to reset; name the topics with --topic",
                a.group
            )));
        }
        all
    } else {
        committed(settings, &md, &a.group, Some(&targets))?
    };
    // Offsets found by time, per topic.
    let mut by_time: BTreeMap<(String, i32), i64> = BTreeMap::new();
    if let OffsetSpec::Timestamp(ts) = a.to {
        let topics: BTreeSet<&String> = targets.iter().map(|(t, _)| t).collect();
        for topic in topics {
            let ps: Vec<i32> = targets
                .iter()
                .filter(|(t, _)| t == topic)
                .map(|(_, p)| *p)
                .collect();
            let found = offsets_for_time(&consumer, settings, topic, &ps, ts)?;
            for e in found.elements() {
                if let Offset::Offset(o) = e.offset() {
                    by_time.insert((topic.clone(), e.partition()), o);
                }
            }
        }
    }
    let mut plan = Vec::new();
    for (topic, p) in &targets {
        let (low, high) = client::watermarks(&consumer, settings, topic, *p)?;
        let key = (topic.clone(), *p);
        let new = target_offset(a.to, low, high, by_time.get(&key).copied());
        plan.push((topic.clone(), *p, current.get(&key).copied(), new));
    }
    if !a.dry_run {
        let mut tpl = TopicPartitionList::new();
        for (t, p, _, new) in &plan {
            tpl.add_partition_offset(t, *p, Offset::Offset(*new))
                .map_err(|e| Error::kafka("build the offsets to commit", e))?;
        }
        let committer = settings.lookup_consumer(Some(&a.group))?;
        committer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| Error::kafka(format!("commit offsets for group '{}'", a.group), e))?;
    }
    if out.json {
        return out.print_json(&json!({
            "group": a.group,
            "dry_run": a.dry_run,
            "offsets": plan.iter().map(|(t, p, old, new)| json!({
                "topic": t, "partition": p, "previous": old, "new": new,
            })).collect::<Vec<_>>(),
        }));
    }
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|(t, p, old, new)| {
            vec![
                t.clone(),
                p.to_string(),
                old.map_or("-".into(), |o| o.to_string()),
                out.green(&new.to_string()),
            ]
        })
        .collect();
    out.print_table(&["TOPIC", "PARTITION", "PREVIOUS", "NEW"], &rows, "")?;
    if a.dry_run {
        out.note("dry run: nothing was committed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_targets_stay_within_the_log() {
        assert_eq!(target_offset(OffsetSpec::Oldest, 5, 10, None), 5);
        assert_eq!(target_offset(OffsetSpec::Newest, 5, 10, None), 10);
        assert_eq!(target_offset(OffsetSpec::Absolute(7), 5, 10, None), 7);
        assert_eq!(target_offset(OffsetSpec::Absolute(2), 5, 10, None), 5);
        assert_eq!(target_offset(OffsetSpec::Absolute(99), 5, 10, None), 10);
        assert_eq!(target_offset(OffsetSpec::FromEnd(3), 5, 10, None), 7);
        assert_eq!(target_offset(OffsetSpec::FromEnd(30), 5, 10, None), 5);
        assert_eq!(target_offset(OffsetSpec::Timestamp(1), 5, 10, Some(8)), 8);
        assert_eq!(target_offset(OffsetSpec::Timestamp(1), 5, 10, None), 10);
        assert_eq!(target_offset(OffsetSpec::Absolute(3), 0, 0, None), 0);
    }

    #[test]
    fn consumer_assignments_decode() {
        // version 0, one topic "t" with partitions [0, 2], no user data.
        let bytes = [
            0, 0, // version
            0, 0, 0, 1, // topics
            0, 1, b't', // topic name
            0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, // partitions
            0xff, 0xff, 0xff, 0xff, // null user data
        ];
        assert_eq!(
            decode_assignment(&bytes),
            vec![("t".to_string(), 0), ("t".to_string(), 2)]
        );
    }

    #[test]
    fn garbage_assignments_decode_to_nothing() {
        assert!(decode_assignment(&[]).is_empty());
        assert!(decode_assignment(&[0]).is_empty());
        assert!(decode_assignment(&[0, 0, 0xff, 0xff, 0xff, 0x7f]).is_empty());
        // Counts far beyond the bytes present must not be trusted.
        assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_empty());
        assert!(
            decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0x7f, 0xff, 0xff, 0xff]).is_empty()
        );
    }
}
