//! `trib bench produce|consume`.

use crate::client::Settings;
use crate::error::Result;
use crate::output::Output;

/// `trib bench` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Produce
    Produce,
}

/// Runs a `trib bench` subcommand.
pub async fn run(_cmd: BenchCommand, _settings: &Settings, _out: &Output) -> Result<()> {
    Ok(())
}
