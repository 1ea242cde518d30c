//! `trib topic`: create, list, describe, delete, alter-config, add-partitions.

use std::collections::BTreeMap;

use rdkafka::admin::{
    AdminClient, AlterConfig, ConfigEntry, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::{Metadata, MetadataTopic};
use serde_json::{json, Value};

use crate::args::usage;
use crate::client::{self, find_topic, is_internal, Settings, TribContext};
use crate::error::{Error, Result};
use crate::output::{dash, id_list, Output};
use crate::parse::parse_key_value;

/// `trib topic` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Create one or more topics
    Create(CreateArgs),
    /// List topics
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show partitions (leader, replicas, ISR, offsets) and configs of topics
    Describe(DescribeArgs),
    /// Delete topics and all their records
    Delete(DeleteArgs),
    /// Set or remove topic configs (e.g. retention.ms)
    AlterConfig(AlterConfigArgs),
    /// Add partitions to a topic (partitions can never be removed)
    AddPartitions(AddPartitionsArgs),
}

/// Flags of `trib topic create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Topic names
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Number of partitions
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,
    /// Replicas per partition [default: the broker's default.replication.factor]
    #[arg(short, long, value_parser = clap::value_parser!(i32).range(1..))]
    pub replication_factor: Option<i32>,
    /// Topic config, e.g. -c retention.ms=3600000 (repeatable)
    #[arg(short, long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub configs: Vec<(String, String)>,
    /// Succeed if the topic already exists
    #[arg(long)]
    pub if_not_exists: bool,
    /// Ask the broker to validate the request without creating anything
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `trib topic list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Include internal topics such as __consumer_offsets
    #[arg(short, long)]
    pub internal: bool,
}

/// Flags of `trib topic describe`.
#[derive(Debug, clap::Args)]
pub struct DescribeArgs {
    /// Topic names
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Show only the configs that differ from the broker defaults
    #[arg(long)]
    pub overrides_only: bool,
}

/// Flags of `trib topic delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Topic names
    #[arg(required = true)]
    pub topics: Vec<String>,
    /// Succeed if a topic does not exist
    #[arg(long)]
    pub if_exists: bool,
}

/// Flags of `trib topic alter-config`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true).args(["set", "delete"])))]
pub struct AlterConfigArgs {
    /// Topic name
    pub topic: String,
    /// Set a config, e.g. --set retention.ms=86400000 (repeatable)
    #[arg(short, long, value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub set: Vec<(String, String)>,
    /// Remove a config override, returning it to the broker default (repeatable)
    #[arg(short, long, value_name = "KEY")]
    pub delete: Vec<String>,
    /// Ask the broker to validate the change without applying it
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `trib topic add-partitions`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("count").required(true).args(["num", "total"])))]
pub struct AddPartitionsArgs {
    /// Topic name
    pub topic: String,
    /// How many partitions to add
    #[arg(short, long, value_parser = clap::value_parser!(i32).range(1..))]
    pub num: Option<i32>,
    /// The partition count the topic should end with
    #[arg(short, long, value_parser = clap::value_parser!(i32).range(1..))]
    pub total: Option<i32>,
    /// Ask the broker to validate the change without applying it
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs a `trib topic` subcommand.
pub async fn run(cmd: TopicCommand, settings: &Settings, out: &Output) -> Result<()> {
    match cmd {
        TopicCommand::Create(a) => create(a, settings, out).await,
        TopicCommand::List(a) => list(a, settings, out),
        TopicCommand::Describe(a) => describe(a, settings, out).await,
        TopicCommand::Delete(a) => delete(a, settings, out).await,
        TopicCommand::AlterConfig(a) => alter_config(a, settings, out).await,
        TopicCommand::AddPartitions(a) => add_partitions(a, settings, out).await,
    }
}

/// An admin client and fresh cluster metadata; fails fast when no broker answers.
fn connect(settings: &Settings) -> Result<(AdminClient<TribContext>, Metadata)> {
    let (_, md) = client::connect(settings)?;
    Ok((settings.admin()?, md))
}

/// Prints per-item results and turns the failures into the command's error: all but the first
/// failure are printed as warnings, the first is returned.
fn finish(
    out: &Output,
    rows: Vec<Vec<String>>,
    json: Vec<Value>,
    errors: Vec<Error>,
) -> Result<()> {
    if out.json {
        if !json.is_empty() {
            out.print_json(&Value::Array(json))?;
        }
    } else if !rows.is_empty() {
        out.print_table(&["TOPIC", "STATUS"], &rows, "")?;
    }
    let mut errors = errors.into_iter();
    let first = errors.next();
    for e in errors {
        out.warn(&e.to_string());
    }
    first.map_or(Ok(()), Err)
}

async fn create(a: CreateArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (admin, _) = connect(settings)?;
    let replication = TopicReplication::Fixed(a.replication_factor.unwrap_or(-1));
    let new_topics: Vec<NewTopic<'_>> = a
        .topics
        .iter()
        .map(|name| {
            a.configs.iter().fold(
                NewTopic::new(name, a.partitions, clone_replication(&replication)),
                |t, (k, v)| t.set(k, v),
            )
        })
        .collect();
    let opts = settings.admin_options().validate_only(a.dry_run);
    let results = admin
        .create_topics(&new_topics, &opts)
        .await
        .map_err(|e| Error::kafka("create topics", e))?;
    let (mut rows, mut json, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(name) => {
                let status = if a.dry_run {
                    "valid (dry run)"
                } else {
                    "created"
                };
                rows.push(vec![name.clone(), out.green(status)]);
                json.push(
                    json!({ "topic": name, "status": if a.dry_run { "valid" } else { "created" } }),
                );
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) if a.if_not_exists => {
                rows.push(vec![name.clone(), out.dim("exists")]);
                json.push(json!({ "topic": name, "status": "exists" }));
            }
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                errors.push(Error::TopicExists { topic: name });
            }
            Err((name, code)) => errors.push(Error::code(format!("create topic '{name}'"), code)),
        }
    }
    finish(out, rows, json, errors)
}

fn clone_replication<'a>(r: &TopicReplication<'a>) -> TopicReplication<'a> {
    match r {
        TopicReplication::Fixed(n) => TopicReplication::Fixed(*n),
        TopicReplication::Variable(v) => TopicReplication::Variable(v),
    }
}

fn replication_factor(t: &MetadataTopic) -> usize {
    t.partitions()
        .iter()
        .map(|p| p.replicas().len())
        .max()
        .unwrap_or(0)
}

fn list(a: ListArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (_, md) = client::connect(settings)?;
    let mut topics: Vec<&MetadataTopic> = md
        .topics()
        .iter()
        .filter(|t| a.internal || !is_internal(t.name()))
        .filter(|t| t.error().is_none())
        .collect();
    topics.sort_by(|x, y| x.name().cmp(y.name()));
    if out.json {
        let v: Vec<Value> = topics
            .iter()
            .map(|t| {
                json!({
                    "name": t.name(),
                    "partitions": t.partitions().len(),
                    "replication_factor": replication_factor(t),
                    "internal": is_internal(t.name()),
                })
            })
            .collect();
        return out.print_json(&Value::Array(v));
    }
    let rows: Vec<Vec<String>> = topics
        .iter()
        .map(|t| {
            vec![
                t.name().to_string(),
                t.partitions().len().to_string(),
                replication_factor(t).to_string(),
            ]
        })
        .collect();
    out.print_table(
        &["NAME", "PARTITIONS", "REPLICAS"],
        &rows,
        "no topics (create one with `trib topic create NAME`)",
    )
}

/// Reads a topic's configs; `Ok(None)` when the broker does not support DescribeConfigs.
async fn topic_configs(
    admin: &AdminClient<TribContext>,
    settings: &Settings,
    topic: &str,
) -> Result<Vec<ConfigEntry>> {
    let results = admin
        .describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &settings.admin_options(),
        )
        .await
        .map_err(|e| Error::kafka(format!("read the configs of topic '{topic}'"), e))?;
    match results.into_iter().next() {
        Some(Ok(resource)) => Ok(resource.entries),
        Some(Err(RDKafkaErrorCode::UnknownTopicOrPartition)) => Err(Error::UnknownTopic {
            topic: topic.to_string(),
        }),
        Some(Err(code)) => Err(Error::code(
            format!("read the configs of topic '{topic}'"),
            code,
        )),
        None => Ok(Vec::new()),
    }
}

fn source_name(s: &ConfigSource) -> &'static str {
    match s {
        ConfigSource::Unknown => "unknown",
        ConfigSource::DynamicTopic => "topic",
        ConfigSource::DynamicBroker => "dynamic-broker",
        ConfigSource::DynamicDefaultBroker => "dynamic-default-broker",
        ConfigSource::StaticBroker => "static-broker",
        ConfigSource::Default => "default",
    }
}

fn config_value(e: &ConfigEntry) -> String {
    if e.is_sensitive {
        "(sensitive)".to_string()
    } else {
        e.value.clone().unwrap_or_default()
    }
}

async fn describe(a: DescribeArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (admin, md) = connect(settings)?;
    let consumer = settings.lookup_consumer(None)?;
    let mut docs = Vec::new();
    for (i, name) in a.topics.iter().enumerate() {
        let t = find_topic(&md, name)?;
        let partitions = partition_rows(&consumer, settings, name, t);
        let (configs, config_error) = match topic_configs(&admin, settings, name).await {
            Ok(c) => (c, None),
            Err(e @ Error::UnknownTopic { .. }) => return Err(e),
            Err(e) => (Vec::new(), Some(e)),
        };
        let mut configs: Vec<ConfigEntry> = configs
            .into_iter()
            .filter(|c| !a.overrides_only || matches!(c.source, ConfigSource::DynamicTopic))
            .collect();
        configs.sort_by(|x, y| x.name.cmp(&y.name));
        let topic = TopicView {
            name,
            metadata: t,
            partitions: &partitions,
            configs: &configs,
            config_error,
        };
        if out.json {
            docs.push(topic_json(topic));
        } else {
            print_topic(out, topic, i == 0)?;
        }
    }
    if out.json {
        out.print_json(&Value::Array(docs))?;
    }
    Ok(())
}

/// What `topic describe` shows of one partition.
struct PartitionRow {
    id: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    /// Log start offset and high watermark, if they could be read.
    marks: Option<(i64, i64)>,
    /// The error the metadata reports for the partition.
    error: Option<String>,
}

/// The topic's partitions in order, each with its watermarks.
fn partition_rows(
    consumer: &BaseConsumer<TribContext>,
    settings: &Settings,
    name: &str,
    t: &MetadataTopic,
) -> Vec<PartitionRow> {
    let mut partitions: Vec<_> = t.partitions().iter().collect();
    partitions.sort_by_key(|p| p.id());
    partitions
        .into_iter()
        .map(|p| PartitionRow {
            id: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            marks: client::watermarks(consumer, settings, name, p.id()).ok(),
            error: p.error().map(|e| RDKafkaErrorCode::from(e).to_string()),
        })
        .collect()
}

/// Everything `topic describe` shows of one topic.
struct TopicView<'a> {
    name: &'a str,
    metadata: &'a MetadataTopic,
    partitions: &'a [PartitionRow],
    /// The configs to show, sorted by name.
    configs: &'a [ConfigEntry],
    /// Why the configs could not be read, if they could not.
    config_error: Option<Error>,
}

/// The `--json` document of one topic.
fn topic_json(topic: TopicView<'_>) -> Value {
    let partitions: Vec<Value> = topic
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.id,
                "leader": p.leader,
                "replicas": p.replicas,
                "isr": p.isr,
                "log_start_offset": p.marks.map(|m| m.0),
                "high_watermark": p.marks.map(|m| m.1),
                "error": p.error,
            })
        })
        .collect();
    let cfg: BTreeMap<&str, Value> = topic
        .configs
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                json!({ "value": if c.is_sensitive { None } else { c.value.clone() },
                        "source": source_name(&c.source),
                        "sensitive": c.is_sensitive,
                        "read_only": c.is_read_only }),
            )
        })
        .collect();
    json!({
        "name": topic.name,
        "internal": is_internal(topic.name),
        "partitions": partitions,
        "replication_factor": replication_factor(topic.metadata),
        "configs": cfg,
        "configs_error": topic.config_error.map(|e| e.to_string()),
    })
}

/// One topic as text: its summary, its partitions and its configs.
fn print_topic(out: &Output, topic: TopicView<'_>, first: bool) -> Result<()> {
    let name = topic.name;
    out.print_section(&format!("topic {name}"), first)?;
    out.print_fields(&[
        ("partitions", topic.partitions.len().to_string()),
        (
            "replication factor",
            replication_factor(topic.metadata).to_string(),
        ),
        ("internal", is_internal(name).to_string()),
    ])?;
    out.print_section("partitions", false)?;
    let rows: Vec<Vec<String>> = topic
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.id.to_string(),
                p.leader.to_string(),
                id_list(&p.replicas),
                id_list(&p.isr),
                dash(p.marks.map(|m| m.0)),
                dash(p.marks.map(|m| m.1)),
                p.error.clone().map_or(String::new(), |e| out.red(&e)),
            ]
        })
        .collect();
    out.print_table(
        &[
            "PARTITION",
            "LEADER",
            "REPLICAS",
            "ISR",
            "LOG-START",
            "HIGH-WATERMARK",
            "ERROR",
        ],
        &rows,
        "no partitions",
    )?;
    out.print_section("configs", false)?;
    if let Some(e) = topic.config_error {
        out.warn(&format!("configs unavailable: {e}"));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = topic
        .configs
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                config_value(c),
                source_name(&c.source).to_string(),
            ]
        })
        .collect();
    out.print_table(&["NAME", "VALUE", "SOURCE"], &rows, "no config overrides")
}

async fn delete(a: DeleteArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (admin, md) = connect(settings)?;
    let mut names = Vec::new();
    let (mut rows, mut json, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    // Unknown topics are reported without asking the broker, which some brokers answer slowly.
    for name in &a.topics {
        match find_topic(&md, name) {
            Ok(_) => names.push(name.as_str()),
            Err(Error::UnknownTopic { .. }) if a.if_exists => {
                rows.push(vec![name.clone(), out.dim("absent")]);
                json.push(json!({ "topic": name, "status": "absent" }));
            }
            Err(e) => errors.push(e),
        }
    }
    if !names.is_empty() {
        let results = admin
            .delete_topics(&names, &settings.admin_options())
            .await
            .map_err(|e| Error::kafka("delete topics", e))?;
        for r in results {
            match r {
                Ok(name) => {
                    rows.push(vec![name.clone(), out.green("deleted")]);
                    json.push(json!({ "topic": name, "status": "deleted" }));
                }
                Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) if a.if_exists => {
                    rows.push(vec![name.clone(), out.dim("absent")]);
                    json.push(json!({ "topic": name, "status": "absent" }));
                }
                Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    errors.push(Error::UnknownTopic { topic: name })
                }
                Err((name, code)) => {
                    errors.push(Error::code(format!("delete topic '{name}'"), code))
                }
            }
        }
    }
    finish(out, rows, json, errors)
}

/// The overrides after applying `--set` and `--delete` to the current ones. Returns the new
/// set and the deleted keys that were not set.
pub fn apply_config_changes(
    current: &BTreeMap<String, String>,
    set: &[(String, String)],
    delete: &[String],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut next = current.clone();
    let mut missing = Vec::new();
    for k in delete {
        if next.remove(k).is_none() {
            missing.push(k.clone());
        }
    }
    for (k, v) in set {
        next.insert(k.clone(), v.clone());
    }
    (next, missing)
}

async fn alter_config(a: AlterConfigArgs, settings: &Settings, out: &Output) -> Result<()> {
    if let Some((k, _)) = a.set.iter().find(|(k, _)| a.delete.contains(k)) {
        return Err(usage(format!("'{k}' is both set and deleted; pick one")));
    }
    let (admin, md) = connect(settings)?;
    find_topic(&md, &a.topic)?;
    let entries = topic_configs(&admin, settings, &a.topic).await?;
    // AlterConfigs replaces every override, so start from the current ones.
    let current: BTreeMap<String, String> = entries
        .iter()
        .filter(|e| matches!(e.source, ConfigSource::DynamicTopic))
        .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
        .collect();
    let (next, missing) = apply_config_changes(&current, &a.set, &a.delete);
    for k in &missing {
        out.warn(&format!(
            "'{k}' has no override on topic '{}'; nothing to delete",
            a.topic
        ));
    }
    let alter = next.iter().fold(
        AlterConfig::new(ResourceSpecifier::Topic(&a.topic)),
        |c, (k, v)| c.set(k, v),
    );
    let opts = settings.admin_options().validate_only(a.dry_run);
    let results = admin
        .alter_configs([&alter], &opts)
        .await
        .map_err(|e| Error::kafka(format!("alter the configs of topic '{}'", a.topic), e))?;
    for r in results {
        if let Err((_, code)) = r {
            return Err(match code {
                RDKafkaErrorCode::UnknownTopicOrPartition => Error::UnknownTopic {
                    topic: a.topic.clone(),
                },
                code => Error::code(format!("alter the configs of topic '{}'", a.topic), code),
            });
        }
    }
    let mut rows = Vec::new();
    for (k, v) in &a.set {
        rows.push(vec![
            k.clone(),
            current
                .get(k)
                .cloned()
                .unwrap_or_else(|| "(default)".into()),
            v.clone(),
        ]);
    }
    for k in a.delete.iter().filter(|k| !missing.contains(k)) {
        rows.push(vec![
            k.clone(),
            current.get(k).cloned().unwrap_or_default(),
            "(default)".into(),
        ]);
    }
    if out.json {
        return out.print_json(&json!({
            "topic": a.topic,
            "dry_run": a.dry_run,
            "set": a.set.iter().cloned().collect::<BTreeMap<_, _>>(),
            "deleted": a.delete.iter().filter(|k| !missing.contains(k)).collect::<Vec<_>>(),
            "overrides": next,
        }));
    }
    out.print_table(&["CONFIG", "OLD", "NEW"], &rows, "nothing changed")?;
    if a.dry_run {
        out.note("dry run: the broker accepted the change; nothing was applied");
    }
    Ok(())
}

async fn add_partitions(a: AddPartitionsArgs, settings: &Settings, out: &Output) -> Result<()> {
    let (admin, md) = connect(settings)?;
    let current = find_topic(&md, &a.topic)?.partitions().len();
    let total = match (a.num, a.total) {
        (Some(n), _) => current.saturating_add(n as usize),
        (None, Some(t)) => t as usize,
        (None, None) => return Err(usage("give --num or --total")),
    };
    if total <= current {
        return Err(usage(format!(
            "topic '{}' already has {current} partition(s); --total must be larger \
             (partitions can only be added)",
            a.topic
        )));
    }
    let opts = settings.admin_options().validate_only(a.dry_run);
    let results = admin
        .create_partitions([&NewPartitions::new(&a.topic, total)], &opts)
        .await
        .map_err(|e| Error::kafka(format!("add partitions to '{}'", a.topic), e))?;
    for r in results {
        if let Err((_, code)) = r {
            return Err(Error::code(
                format!("add partitions to '{}'", a.topic),
                code,
            ));
        }
    }
    if out.json {
        return out.print_json(&json!({
            "topic": a.topic, "before": current, "after": total, "dry_run": a.dry_run,
        }));
    }
    let verb = if a.dry_run { "would grow" } else { "grew" };
    write_line(&format!(
        "topic {} {verb} from {current} to {} partitions",
        out.bold(&a.topic),
        out.green(&total.to_string())
    ))
}

fn write_line(line: &str) -> Result<()> {
    crate::output::write_stdout(format!("{line}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn config_changes_keep_other_overrides() {
        let current = map(&[("retention.ms", "1"), ("cleanup.policy", "compact")]);
        let (next, missing) = apply_config_changes(
            &current,
            &[
                ("retention.ms".into(), "2".into()),
                ("segment.ms".into(), "3".into()),
            ],
            &[],
        );
        assert_eq!(
            next,
            map(&[
                ("retention.ms", "2"),
                ("cleanup.policy", "compact"),
                ("segment.ms", "3")
            ])
        );
        assert!(missing.is_empty());
    }

    #[test]
    fn deleting_an_absent_override_is_reported() {
        let current = map(&[("retention.ms", "1")]);
        let (next, missing) =
            apply_config_changes(&current, &[], &["retention.ms".into(), "nope".into()]);
        assert!(next.is_empty());
        assert_eq!(missing, vec!["nope".to_string()]);
    }
}
