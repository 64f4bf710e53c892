//! `pws-record`: records one node's activity into a `.pws` trace.

use std::process::ExitCode;

use clap::Parser;

mod activations;
mod cli;
mod clock;
mod cpu_stat;
mod energy;
mod freezer_v1;
mod host;
mod perf;
mod periodic;
mod session;
mod snapshot;
mod writer;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match session::record(&args) {
        // Like `time` and `perf record`: the command's status is ours, so scripts see failures.
        Ok(outcome) => match outcome.command_code {
            Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            None => ExitCode::SUCCESS,
        },
        Err(e) => {
            eprintln!("pws-record: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
