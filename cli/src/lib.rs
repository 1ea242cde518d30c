//! `trib`: a command-line client for Tributary and any Kafka-compatible broker, built on
//! librdkafka (and, for `trib schema`, a schema registry's REST API). One module per command family; parsing and formatting are pure functions.

#![warn(missing_docs)]

pub mod admin_groups;
pub mod args;
pub mod bench;
pub mod client;
pub mod cluster;
pub mod consume;
pub mod error;
pub mod group;
pub mod output;
pub mod parse;
pub mod produce;
pub mod registry;
pub mod schema;
pub mod share_consume;
pub mod share_groups;
pub mod template;
pub mod topic;
pub mod wire;

pub use args::{Cli, Command};
pub use error::{Error, Result};

use output::Output;

/// Runs one parsed command line.
pub async fn run(cli: Cli, out: Output) -> Result<()> {
    let settings = cli.global.settings();
    match cli.command {
        Command::Topic { command } => topic::run(command, &settings, &out).await,
        Command::Produce(args) => produce::run(args, &settings, &out).await,
        Command::Consume(args) => consume::run(args, &settings, &out).await,
        Command::Group { command } => group::run(command, &settings, &out).await,
        Command::Cluster { command } => cluster::run(command, &settings, &out).await,
        Command::Bench { command } => bench::run(command, &settings, &out).await,
        Command::Schema { registry, command } => {
            schema::run(registry, command, &settings, &out).await
        }
        Command::Completion { shell } => args::completion(shell),
    }
}
