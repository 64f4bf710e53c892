//! `pws-analyze`: turns pws traces into tables a researcher can query.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod analyze;
mod attribution;
mod bench_cmd;
mod compare;
mod derived;
mod gpu;
mod info;
mod inputs;
mod join;
mod manifest;
mod memory;
mod models;
mod progress;
mod quality;
mod quality_cmd;
mod replay;
mod smartwatts_cmd;
mod spill;
mod summary;
mod synth;
mod tables;
mod timefmt;
mod timeline;

#[derive(Debug, Parser)]
#[command(
    name = "pws-analyze",
    version,
    about = "Analyse Powerful Serverless traces: `pws-analyze TRACE… -o DIR` writes the tables as Parquet",
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: Option<analyze::RunArgs>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what a trace holds: host, CPUs, sources, time span, blocks, losses, whether it ended cleanly.
    Info(info::InfoArgs),
    /// Write a trace with a known ground truth (functions with different power per CPU-second,
    /// idle power), to check the models against it.
    Synth(synth::SynthArgs),
    /// PowerAPI SmartWatts 2.4.1 over hwpc-sensor reports: per-target CPU and DRAM power.
    Smartwatts(smartwatts_cmd::SmartwattsArgs),
    /// Measurement quality: each energy counter's update period and resolution, each CPU's
    /// sampling, clock sync, and which activations' energy the counters can resolve.
    Quality(quality_cmd::QualityArgs),
    /// Write a trace's containers, activations, pauses and power as Chrome trace-event JSON,
    /// to open at https://ui.perfetto.dev (or chrome://tracing).
    Timeline(timeline::TimelineArgs),
    /// Runs compared per function and group (a sweep's settings, the manifest's labels):
    /// energy per activation with 95 % intervals over runs, cold starts, keep-alive, energy
    /// per successful request, and the change against a baseline group.
    Compare(compare::CompareArgs),
    /// Times the replay alone (no models, no tables), or only the inflation of the perf data
    /// (`--inflate-only`), and prints JSON: for `bench/analyzer_replay.sh`.
    #[command(hide = true)]
    BenchReplay(bench_cmd::BenchReplayArgs),
}

fn main() -> ExitCode {
    memory::return_large_buffers();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Info(args)) => info::run(&args),
        Some(Command::Synth(args)) => synth::run(&args),
        Some(Command::Smartwatts(args)) => smartwatts_cmd::run(&args),
        Some(Command::Timeline(args)) => timeline::run(&args),
        Some(Command::Quality(args)) => quality_cmd::run(&args),
        Some(Command::Compare(args)) => compare::run(&args),
        Some(Command::BenchReplay(args)) => bench_cmd::run(&args),
        None => match &cli.run {
            Some(args) => analyze::run(args),
            None => {
                eprintln!("pws-analyze: give traces and -o DIR, or a command; see --help");
                return ExitCode::from(2);
            }
        },
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
