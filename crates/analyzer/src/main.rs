//! `pws-analyze`: turns pws traces into tables a researcher can query.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod info;
mod timefmt;

#[derive(Debug, Parser)]
#[command(name = "pws-analyze", version, about = "Analyse Powerful Serverless traces", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what a trace holds: host, CPUs, sources, time span, blocks, losses, whether it ended cleanly.
    Info(info::InfoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(args) => info::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pws-analyze: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Paths given on the command line, for messages.
pub(crate) fn display(p: &std::path::Path) -> String {
    PathBuf::from(p).display().to_string()
}
