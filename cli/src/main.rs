//! The `trib` binary: parse the command line, run the command, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use trib::output::Output;
use trib::{Cli, Error};

fn main() -> ExitCode {
    // clap prints usage errors itself and exits with 2 (0 for --help and --version).
    let cli = Cli::parse();
    let out = Output::new(cli.global.json, cli.global.color);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.report_error(&Error::io("start the async runtime", e));
            return ExitCode::from(trib::error::EXIT_FAILURE);
        }
    };
    match runtime.block_on(trib::run(cli, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            out.report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}
