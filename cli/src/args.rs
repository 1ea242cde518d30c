//! The command line: global flags and the command tree (each family's flags live in its
//! module).

use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::client::Settings;
use crate::error::{Error, Result};
use crate::output::ColorChoice;
use crate::parse::{parse_duration, parse_key_value};
use crate::{bench, cluster, consume, group, produce, schema, topic};

/// trib: topics, producing, consuming, consumer groups and benchmarks for Tributary and any
/// Kafka-compatible broker.
#[derive(Debug, Parser)]
#[command(name = "trib", version, propagate_version = true, max_term_width = 100)]
#[command(after_help = "Exit codes: 0 success, 1 broker or runtime error, 2 usage error.")]
pub struct Cli {
    /// Flags every command accepts.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Bootstrap brokers, host:port[,host:port...]
    #[arg(
        short = 'b',
        long,
        env = "TRIB_BROKERS",
        default_value = "localhost:9092",
        global = true
    )]
    pub brokers: String,

    /// How long to wait for the broker in each operation (e.g. 500ms, 10s, 1m)
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,

    /// librdkafka setting, passed through verbatim (repeatable), e.g.
    /// -X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_key_value, global = true)]
    pub client_config: Vec<(String, String)>,

    /// Print JSON instead of tables (for scripts)
    #[arg(long, global = true)]
    pub json: bool,

    /// When to use colour
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// Print librdkafka's log on stderr
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl Global {
    /// The connection settings these flags describe.
    pub fn settings(&self) -> Settings {
        Settings {
            brokers: self.brokers.clone(),
            timeout: self.timeout.max(Duration::from_millis(1)),
            overrides: self.client_config.clone(),
            verbose: self.verbose,
        }
    }
}

/// trib's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, delete and configure topics
    Topic {
        /// What to do.
        #[command(subcommand)]
        command: topic::TopicCommand,
    },
    /// Produce one record per line of stdin
    Produce(produce::ProduceArgs),
    /// Print records from a topic
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets
    Group {
        /// What to do.
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Show the cluster: brokers, controller, topics
    Cluster {
        /// What to do.
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
    /// Measure produce or consume throughput and latency
    Bench {
        /// What to measure.
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Register, get, list, check and delete schemas in a schema registry
    Schema {
        /// Where the registry is.
        #[command(flatten)]
        registry: schema::RegistryArgs,
        /// What to do.
        #[command(subcommand)]
        command: schema::SchemaCommand,
    },
    /// Print a shell completion script (e.g. `trib completion bash`)
    #[command(after_help = "Install, e.g.:\n  \
        trib completion bash > ~/.local/share/bash-completion/completions/trib\n  \
        trib completion zsh > ~/.zfunc/_trib\n  \
        trib completion fish > ~/.config/fish/completions/trib.fish")]
    Completion {
        /// The shell to complete for.
        shell: Shell,
    },
}

/// Writes the completion script for `shell` to stdout.
pub fn completion(shell: Shell) -> Result<()> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "trib", &mut buf);
    crate::output::write_stdout(&buf)
}

/// A usage error (exit code 2) with the given message.
pub fn usage(message: impl Into<String>) -> Error {
    Error::Usage(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "trib",
            "topic",
            "list",
            "-b",
            "h:1",
            "-X",
            "a=b",
            "--timeout",
            "2s",
            "--json",
        ])
        .expect("parses");
        assert_eq!(cli.global.brokers, "h:1");
        assert_eq!(
            cli.global.client_config,
            vec![("a".to_string(), "b".to_string())]
        );
        assert_eq!(cli.global.timeout, Duration::from_secs(2));
        assert!(cli.global.json);
    }

    #[test]
    fn bad_client_config_is_a_usage_error() {
        let e = Cli::try_parse_from(["trib", "-X", "novalue", "cluster", "info"]).unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
