//! `trib group`: list, describe, delete, reset-offsets.

use crate::client::Settings;
use crate::error::Result;
use crate::output::Output;

/// `trib group` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum GroupCommand {
    /// List consumer groups
    List,
}

/// Runs a `trib group` subcommand.
pub async fn run(_cmd: GroupCommand, _settings: &Settings, _out: &Output) -> Result<()> {
    Ok(())
}
