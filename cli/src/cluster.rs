//! `trib cluster info`: brokers, controller, topic counts.

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::json;

use crate::client::{self, is_internal, Settings, TribContext};
use crate::error::Result;
use crate::output::Output;

/// `trib cluster` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Show the cluster id, controller, brokers and topic counts
    Info,
}

/// Runs a `trib cluster` subcommand.
pub async fn run(cmd: ClusterCommand, settings: &Settings, out: &Output) -> Result<()> {
    match cmd {
        ClusterCommand::Info => info(settings, out),
    }
}

fn info(settings: &Settings, out: &Output) -> Result<()> {
    // librdkafka exposes the controller id only in its metadata debug log, which the context
    // reads (and prints only with --verbose).
    let mut cfg = settings.config_with(&[("debug", "metadata".to_string())], &[]);
    cfg.set_log_level(RDKafkaLogLevel::Debug);
    let consumer: BaseConsumer<TribContext> = settings.create(&cfg)?;
    let md = client::metadata(&consumer, settings, None)?;
    let controller = consumer.context().controller().filter(|id| *id >= 0);
    let cluster_id = consumer.client().fetch_cluster_id(settings.timeout);
    let mut brokers: Vec<_> = md.brokers().iter().collect();
    brokers.sort_by_key(|b| b.id());
    let topics = md
        .topics()
        .iter()
        .filter(|t| !is_internal(t.name()))
        .count();
    let internal = md.topics().len() - topics;
    let partitions: usize = md.topics().iter().map(|t| t.partitions().len()).sum();

    if out.json {
        let b: Vec<_> = brokers
            .iter()
            .map(|b| {
                json!({ "id": b.id(), "host": b.host(), "port": b.port(),
                             "controller": Some(b.id()) == controller })
            })
            .collect();
        return out.print_json(&json!({
            "cluster_id": cluster_id,
            "controller": controller,
            "brokers": b,
            "topics": topics,
            "internal_topics": internal,
            "partitions": partitions,
        }));
    }
    let unknown = || out.dim("unknown");
    out.print_fields(&[
        ("cluster id", cluster_id.clone().unwrap_or_else(unknown)),
        (
            "controller",
            controller.map_or_else(unknown, |c| c.to_string()),
        ),
        ("brokers", brokers.len().to_string()),
        ("topics", format!("{topics} (+{internal} internal)")),
        ("partitions", partitions.to_string()),
    ])?;
    out.print_section("brokers", false)?;
    let rows: Vec<Vec<String>> = brokers
        .iter()
        .map(|b| {
            let role = if Some(b.id()) == controller {
                out.green("controller")
            } else {
                String::new()
            };
            vec![
                b.id().to_string(),
                format!("{}:{}", b.host(), b.port()),
                role,
            ]
        })
        .collect();
    out.print_table(&["ID", "ADDRESS", "ROLE"], &rows, "no brokers")
}
