//! `trib group`: list, describe, delete consumer groups and reset their offsets.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Buf;
use kafka_protocol::messages::{ApiKey, ConsumerProtocolAssignment};
use kafka_protocol::protocol::Decodable;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use crate::admin_groups::{self, CallError, Coordinator, GroupDescription, GroupType};
use crate::args::usage;
use crate::client::{self, check_partitions, find_topic, is_internal, Settings, TribContext};
use crate::consume::offsets_for_time;
use crate::error::{Error, Result};
use crate::output::{dash, Output};
use crate::parse::{parse_offset, parse_topic_partitions, OffsetSpec, TopicPartitions};
use crate::share_groups::{self, ShareGroup};
use crate::wire;

/// `trib group` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// List groups with their type (classic, consumer for KIP-848 groups, share for KIP-932)
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show a group's state, members, and per-partition committed offset, end offset and lag
    Describe(DescribeArgs),
    /// Delete groups and their committed offsets (the groups must be empty)
    Delete(DeleteArgs),
    /// Move an empty group's committed offsets (earliest, latest, an offset, or a time)
    ResetOffsets(ResetArgs),
}

/// Flags of `trib group list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only groups of these types (classic, consumer, share); repeatable or comma-separated
    #[arg(long = "type", value_enum, value_delimiter = ',', value_name = "TYPE")]
    pub types: Vec<GroupType>,
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
        GroupCommand::List(a) => list(a, settings, out).await,
        GroupCommand::Describe(a) => describe(a, settings, out).await,
        GroupCommand::Delete(a) => delete(a, settings, out).await,
        GroupCommand::ResetOffsets(a) => reset_offsets(a, settings, out),
    }
}

/// One member of a group.
#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// Assigned (topic, partition) pairs, when the group uses the consumer protocol.
    assignment: Vec<(String, i32)>,
    /// What the coordinator is moving the member to (consumer groups only).
    target: Option<Vec<(String, i32)>>,
}

/// What the broker says about a group.
#[derive(Debug, Clone)]
struct GroupInfo {
    name: String,
    group_type: GroupType,
    state: String,
    protocol_type: String,
    /// The classic group's protocol (its assignor), or the consumer group's assignor.
    protocol: String,
    coordinator: Option<Coordinator>,
    members: Vec<Member>,
}

impl From<GroupDescription> for GroupInfo {
    fn from(d: GroupDescription) -> GroupInfo {
        GroupInfo {
            name: d.id,
            group_type: d.group_type,
            state: d.state,
            // DescribeConsumerGroups answers only for these two protocol types.
            protocol_type: if d.simple { "" } else { "consumer" }.to_string(),
            protocol: d.assignor,
            coordinator: d.coordinator,
            members: d
                .members
                .into_iter()
                .map(|m| Member {
                    id: m.member_id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    host: m.host,
                    assignment: m.assignment,
                    target: m.target_assignment,
                })
                .collect(),
        }
    }
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

/// Groups through the legacy group list (ListGroups and DescribeGroups): every group when
/// `group` is `None`. Used for the groups the broker does not list as consumer groups:
/// DescribeGroups describes classic groups on every broker, and groups of other protocol
/// types (Kafka Connect's, say), which ListConsumerGroups and DescribeConsumerGroups leave out.
fn legacy_groups(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    group: Option<&str>,
) -> Result<Vec<GroupInfo>> {
    let action = group.map_or("list consumer groups".to_string(), |g| {
        format!("describe group '{g}'")
    });
    let list = consumer
        .fetch_group_list(group, settings.timeout)
        .map_err(|e| Error::kafka(action, e))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.state() != "Dead" && group.is_none_or(|name| g.name() == name))
        .map(|g| GroupInfo {
            name: g.name().to_string(),
            group_type: GroupType::Classic,
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            protocol: g.protocol().to_string(),
            coordinator: None,
            members: g
                .members()
                .iter()
                .map(|m| Member {
                    id: m.id().to_string(),
                    instance_id: None,
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                    target: None,
                })
                .collect(),
        })
        .collect())
}

/// The ids of the groups the broker lists as consumer (KIP-848) groups.
fn consumer_group_ids(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
) -> Result<BTreeSet<String>> {
    let listed =
        admin_groups::list_groups(consumer.client(), &[GroupType::Consumer], settings.timeout)?;
    if listed.groups.is_empty() {
        if let Some(e) = listed.errors.into_iter().next() {
            return Err(e.into_error("list consumer groups"));
        }
    }
    // Brokers before ListGroups v5 ignore the filter and report no type.
    Ok(listed
        .groups
        .into_iter()
        .filter(|g| g.group_type == GroupType::Consumer)
        .map(|g| g.id)
        .collect())
}

/// Describes `groups` (`None` for a group the broker does not know): consumer groups with
/// ConsumerGroupDescribe (through DescribeConsumerGroups), the others with DescribeGroups.
/// Only groups the broker lists as consumer groups go to ConsumerGroupDescribe: some brokers
/// without KIP-848 groups (Tansu 0.6) answer it for any id with an empty consumer group.
fn fetch_groups(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    groups: &[String],
) -> Result<Vec<Option<GroupInfo>>> {
    let modern = consumer_group_ids(consumer, settings)?;
    let ids: Vec<String> = groups
        .iter()
        .filter(|g| modern.contains(*g))
        .cloned()
        .collect();
    let described: BTreeMap<String, _> =
        admin_groups::describe_groups(consumer.client(), &ids, settings.timeout)?
            .into_iter()
            .collect();
    let legacy = |g: &str| -> Result<Option<GroupInfo>> {
        Ok(legacy_groups(consumer, settings, Some(g))?
            .into_iter()
            .next())
    };
    groups
        .iter()
        .map(|g| match described.get(g).cloned() {
            Some(answer) => match known(g, answer)? {
                Described::Known(info) => Ok(Some(info)),
                Described::Unknown => Ok(None),
                Described::NotConsumer => legacy(g),
            },
            None => legacy(g),
        })
        .collect()
}

fn fetch_group(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    group: &str,
) -> Result<Option<GroupInfo>> {
    Ok(fetch_groups(consumer, settings, &[group.to_string()])?
        .into_iter()
        .next()
        .flatten())
}

/// What describing one group found.
enum Described {
    Known(GroupInfo),
    /// The broker does not know the group.
    Unknown,
    /// The group's protocol type is not `consumer`: only the legacy list describes it.
    NotConsumer,
}

/// Sorts a DescribeConsumerGroups answer: unknown groups are `Dead` or GROUP_ID_NOT_FOUND,
/// librdkafka refuses other protocol types with its own INVALID_ARG.
fn known(
    group: &str,
    answer: std::result::Result<GroupDescription, CallError>,
) -> Result<Described> {
    match answer {
        Ok(d) if d.state == "Dead" => Ok(Described::Unknown),
        Ok(d) => Ok(Described::Known(d.into())),
        Err(e) => match e.code() {
            Some(RDKafkaErrorCode::GroupIdNotFound) => Ok(Described::Unknown),
            Some(RDKafkaErrorCode::InvalidArgument) => Ok(Described::NotConsumer),
            _ => Err(e.into_error(format!("describe group '{group}'"))),
        },
    }
}

/// One row of `group list`: the group's type and state as listed, and its description when
/// the broker gave one (members and assignor).
struct ListRow {
    name: String,
    group_type: GroupType,
    state: String,
    protocol_type: String,
    info: Option<GroupInfo>,
}

/// Lists groups as ListConsumerGroups does (with their type), described by
/// DescribeConsumerGroups (consumer groups) or the legacy list (the others, which also brings
/// the groups of other protocol types ListConsumerGroups leaves out).
async fn list(a: ListArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (consumer, _) = client::connect(settings)?;
    let listed = admin_groups::list_groups(consumer.client(), &[], settings.timeout)?;
    let mut errors = listed.errors.into_iter();
    if listed.groups.is_empty() {
        if let Some(e) = errors.next() {
            return Err(e.into_error("list consumer groups"));
        }
    }
    for e in errors {
        out.warn(&format!(
            "a broker did not list its groups ({}); the list may be incomplete",
            e.message
        ));
    }
    let modern: Vec<String> = listed
        .groups
        .iter()
        .filter(|g| g.group_type == GroupType::Consumer)
        .map(|g| g.id.clone())
        .collect();
    let mut described: BTreeMap<String, _> =
        admin_groups::describe_groups(consumer.client(), &modern, settings.timeout)?
            .into_iter()
            .collect();
    let mut legacy: BTreeMap<String, GroupInfo> = legacy_groups(&consumer, settings, None)?
        .into_iter()
        .map(|g| (g.name.clone(), g))
        .collect();
    let mut rows: BTreeMap<String, ListRow> = BTreeMap::new();
    for g in listed.groups {
        let info = match described.remove(&g.id) {
            Some(answer) => match known(&g.id, answer) {
                Ok(Described::Known(info)) => Some(info),
                Ok(Described::Unknown) => continue,
                _ => None,
            },
            None => legacy.remove(&g.id),
        };
        let group_type = match (g.group_type, &info) {
            // Brokers before ListGroups v5 give no type; DescribeGroups describes only
            // classic groups.
            (GroupType::Unknown, Some(i)) => i.group_type,
            (t, _) => t,
        };
        let row = ListRow {
            state: info.as_ref().map_or(g.state, |i| i.state.clone()),
            protocol_type: if g.simple { "" } else { "consumer" }.to_string(),
            name: g.id.clone(),
            group_type,
            info,
        };
        rows.insert(g.id, row);
    }
    for (name, info) in legacy {
        rows.entry(name.clone()).or_insert_with(|| ListRow {
            name,
            group_type: info.group_type,
            state: info.state.clone(),
            protocol_type: info.protocol_type.clone(),
            info: Some(info),
        });
    }
    if (a.types.is_empty() || a.types.contains(&GroupType::Share))
        && wire::serves(settings, ApiKey::ShareGroupDescribe).await?
    {
        for g in share_groups::list(settings).await? {
            let info = share_info(&g);
            rows.insert(
                g.name.clone(),
                ListRow {
                    name: g.name,
                    group_type: GroupType::Share,
                    state: g.state,
                    protocol_type: "share".into(),
                    info: Some(info),
                },
            );
        }
    }
    let rows: Vec<ListRow> = rows
        .into_values()
        .filter(|r| r.state != "Dead")
        .filter(|r| a.types.is_empty() || a.types.contains(&r.group_type))
        .collect();
    if out.json {
        let v: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({ "group": r.name, "type": r.group_type.as_str(), "state": r.state,
                        "members": r.info.as_ref().map(|i| i.members.len()),
                        "protocol_type": r.protocol_type,
                        "protocol": r.info.as_ref().map(|i| i.protocol.clone()) })
            })
            .collect();
        return out.print_json(&Value::Array(v));
    }
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_string()
        } else {
            s.to_string()
        }
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.group_type.to_string(),
                r.state.clone(),
                r.info
                    .as_ref()
                    .map_or("-".into(), |i| i.members.len().to_string()),
                r.info.as_ref().map_or("-".into(), |i| dash(&i.protocol)),
            ]
        })
        .collect();
    out.print_table(
        &["GROUP", "TYPE", "STATE", "MEMBERS", "ASSIGNOR"],
        &table,
        "no groups",
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

async fn describe(a: DescribeArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (consumer, md) = client::connect(settings)?;
    let mut docs = Vec::new();
    let infos = fetch_groups(&consumer, settings, &a.groups)?;
    let shares = wire::serves(settings, ApiKey::ShareGroupDescribe).await?;
    for (i, (group, info)) in a.groups.iter().zip(infos).enumerate() {
        if info.is_none() && shares {
            if let Some(share) = share_groups::describe(settings, group).await? {
                if out.json {
                    docs.push(share_json(&share));
                } else {
                    print_share_group(out, &share, i == 0)?;
                }
                continue;
            }
        }
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
            group_type: GroupType::Unknown,
            state: "Empty".into(),
            protocol_type: String::new(),
            protocol: String::new(),
            coordinator: None,
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
    let partitions = |ps: &[(String, i32)]| {
        ps.iter()
            .map(|(t, p)| json!({ "topic": t, "partition": p }))
            .collect::<Vec<_>>()
    };
    json!({
        "group": info.name,
        "type": info.group_type.as_str(),
        "state": info.state,
        "protocol_type": info.protocol_type,
        "protocol": info.protocol,
        "coordinator": info.coordinator.as_ref().map(|c| json!({
            "id": c.id, "host": c.host, "port": c.port,
        })),
        "members": info.members.iter().map(|m| json!({
            "member_id": m.id, "instance_id": m.instance_id, "client_id": m.client_id,
            "host": m.host, "assignment": partitions(&m.assignment),
            "target_assignment": m.target.as_deref().map(partitions),
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
    print_group_summary(out, info, total_lag, first)?;
    print_offsets(out, rows)
}

/// A group's summary and its members (if any).
fn print_group_summary(out: &Output, info: &GroupInfo, total_lag: i64, first: bool) -> Result<()> {
    out.print_section(&format!("group {}", info.name), first)?;
    let protocol = match (info.protocol_type.is_empty(), info.protocol.is_empty()) {
        (true, _) => "-".to_string(),
        (false, true) => info.protocol_type.clone(),
        (false, false) => format!("{} ({})", info.protocol_type, info.protocol),
    };
    let coordinator = info.coordinator.as_ref().map_or("-".to_string(), |c| {
        format!("{} ({}:{})", c.id, c.host, c.port)
    });
    out.print_fields(&[
        ("type", info.group_type.to_string()),
        ("state", info.state.clone()),
        ("protocol", protocol),
        ("coordinator", coordinator),
        ("members", info.members.len().to_string()),
        ("total lag", total_lag.to_string()),
    ])?;
    if !info.members.is_empty() {
        print_members(out, &info.members)?;
    }
    Ok(())
}

/// A share group as `group list` and `describe` show groups.
fn share_info(g: &ShareGroup) -> GroupInfo {
    GroupInfo {
        name: g.name.clone(),
        group_type: GroupType::Share,
        state: g.state.clone(),
        protocol_type: "share".into(),
        protocol: g.assignor.clone(),
        coordinator: Some(g.coordinator.clone()),
        members: g
            .members
            .iter()
            .map(|m| Member {
                id: m.id.clone(),
                instance_id: None,
                client_id: m.client_id.clone(),
                host: m.host.clone(),
                assignment: m.assignment.clone(),
                target: None,
            })
            .collect(),
    }
}

/// A share group as text: its summary, its members and its share-partitions' start offsets
/// and lag.
fn print_share_group(out: &Output, g: &ShareGroup, first: bool) -> Result<()> {
    let info = share_info(g);
    let lag: i64 = g.partitions.iter().filter_map(|p| p.lag).sum();
    print_group_summary(out, &info, lag, first)?;
    out.print_section("share-partitions", false)?;
    let rows: Vec<Vec<String>> = g
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                dash(p.start_offset),
                dash(p.lag),
            ]
        })
        .collect();
    out.print_table(
        &["TOPIC", "PARTITION", "START-OFFSET", "LAG"],
        &rows,
        "no share-partitions started",
    )
}

/// The `--json` document of one share group: the consumer groups' shape, with the
/// share-partitions' start offsets and lag in place of committed offsets.
fn share_json(g: &ShareGroup) -> Value {
    let info = share_info(g);
    let lag: i64 = g.partitions.iter().filter_map(|p| p.lag).sum();
    let mut doc = group_json(&info, &[], lag);
    if let Some(map) = doc.as_object_mut() {
        map.remove("offsets");
        map.insert(
            "share_partitions".into(),
            g.partitions
                .iter()
                .map(|p| {
                    json!({ "topic": p.topic, "partition": p.partition,
                            "start_offset": p.start_offset, "lag": p.lag })
                })
                .collect(),
        );
    }
    doc
}

/// The members table; consumer groups add each member's target assignment, which differs
/// from its assignment while the group reconciles.
fn print_members(out: &Output, members: &[Member]) -> Result<()> {
    out.print_section("members", false)?;
    let targets = members.iter().any(|m| m.target.is_some());
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            let mut row = vec![
                m.client_id.clone(),
                m.host.clone(),
                m.assignment.len().to_string(),
                partition_list(&m.assignment),
            ];
            if targets {
                row.push(m.target.as_deref().map_or("-".into(), partition_list));
            }
            row.push(m.id.clone());
            row
        })
        .collect();
    let mut headers = vec!["CLIENT-ID", "HOST", "PARTITIONS", "ASSIGNMENT"];
    if targets {
        headers.push("TARGET");
    }
    headers.push("MEMBER-ID");
    out.print_table(&headers, &rows, "")
}

/// Partitions as `orders:0,1 users:2` (topics sorted, partitions ascending), `-` for none.
pub fn partition_list(partitions: &[(String, i32)]) -> String {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    if by_topic.is_empty() {
        return "-".into();
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            ps.dedup();
            format!("{t}:{}", crate::output::id_list(&ps))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_offsets(out: &Output, rows: &[Lag]) -> Result<()> {
    out.print_section("offsets", false)?;
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
    fn partition_lists_group_by_topic() {
        let ps = |v: &[(&str, i32)]| {
            v.iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect::<Vec<_>>()
        };
        assert_eq!(partition_list(&[]), "-");
        assert_eq!(
            partition_list(&ps(&[("u", 2), ("o", 1), ("o", 0), ("o", 1)])),
            "o:0,1 u:2"
        );
    }

    #[test]
    fn unknown_and_foreign_groups_are_sorted_out() {
        let err = |raw: i32| {
            Err(CallError {
                raw,
                message: String::new(),
            })
        };
        assert!(matches!(known("g", err(69)), Ok(Described::Unknown)));
        assert!(matches!(known("g", err(-186)), Ok(Described::NotConsumer)));
        assert!(known("g", err(30)).is_err());
        let dead = GroupDescription {
            id: "g".into(),
            group_type: GroupType::Classic,
            state: "Dead".into(),
            simple: true,
            assignor: String::new(),
            coordinator: None,
            members: Vec::new(),
        };
        assert!(matches!(
            known("g", Ok(dead.clone())),
            Ok(Described::Unknown)
        ));
        let stable = GroupDescription {
            state: "Stable".into(),
            group_type: GroupType::Consumer,
            simple: false,
            ..dead
        };
        match known("g", Ok(stable)) {
            Ok(Described::Known(info)) => {
                assert_eq!(info.group_type, GroupType::Consumer);
                assert_eq!(info.protocol_type, "consumer");
            }
            _ => panic!("a stable group is known"),
        }
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
