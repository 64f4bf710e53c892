//! `pws-analyze bench-replay TRACE` (hidden): times one trace's replay without the models and
//! tables, or only the inflation of its perf data, for `bench/analyzer_replay.sh` — the replay's
//! share of the analysis and its distance from the zstd floor, measured in one process each.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};

use crate::progress::Progress;
use crate::quality::interval::IntervalArg;

#[derive(Debug, clap::Args)]
pub struct BenchReplayArgs {
    /// The trace (.pws or perf.data).
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
    /// Only read the trace's small blocks and inflate each perf-data block once, in parallel per
    /// CPU as the replay does, and nothing else.
    #[arg(long)]
    pub inflate_only: bool,
    /// The grid's interval, as for the tables.
    #[arg(long, default_value = "auto", value_name = "auto|DURATION")]
    pub interval: IntervalArg,
}

/// Prints one JSON object: what was timed, seconds, rayon threads, perf samples replayed (not
/// counted when only inflating: it would take a walk over the records) and bytes inflated.
pub fn run(args: &BenchReplayArgs) -> Result<ExitCode> {
    let path = &args.trace;
    let progress = Progress::hidden();
    let input = progress.input(path);
    let t0 = Instant::now();
    let (what, samples, inflated) = if args.inflate_only {
        let l = crate::replay::load(path, false)?;
        let n = crate::replay::inflate_only(&l, &input)
            .with_context(|| format!("inflating {}", crate::display(path)))?;
        ("inflate", None, n)
    } else {
        let an = crate::analyze::replay_trace(
            path,
            args.interval,
            false,
            None,
            crate::join::JoinMode::Auto,
            &input,
        )
        .with_context(|| format!("replaying {}", crate::display(path)))?;
        let s = an.rep.per_cpu.iter();
        let samples: u64 = s.map(|c| c.stats.group_samples + c.stats.tracepoints).sum();
        ("replay", Some(samples), an.l.perf_raw_bytes)
    };
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "what": what,
            "seconds": secs,
            "threads": rayon::current_num_threads(),
            "samples": samples,
            "samples_per_s": samples.map(|n| n as f64 / secs),
            "inflated_bytes": inflated,
        })
    );
    Ok(ExitCode::SUCCESS)
}
