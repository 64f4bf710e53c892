//! Command line of `pws-record`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "pws-record",
    version,
    about = "Record a node's activity into a .pws trace, until COMMAND exits, --duration passes, or SIGINT/SIGTERM",
    after_help = "Examples:\n  pws-record -o run.pws --duration 30s\n  pws-record -o run.pws -- ./my-experiment.sh\n\nThe trace is valid however recording ends; `pws-analyze info run.pws` describes it."
)]
pub struct Args {
    /// Trace file to write (created mode 0600; replaced if it exists).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,

    /// Stop after this long ("30s", "5m", "1h", "1m30s").
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Option<Duration>,

    /// Samples per second per CPU (the sampling leader's frequency).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub freq: u64,

    /// Counters read with every sample and every context switch, comma-separated, where the
    /// host has them (task-clock is used when it has no hardware counter).
    #[arg(long, default_value = crate::perf::events::DEFAULT_EVENTS, value_delimiter = ',')]
    pub events: Vec<String>,

    /// Data pages per CPU ring (a power of two); the default holds more than a second at
    /// 10 kHz with switch samples.
    #[arg(long, default_value_t = 256)]
    pub mmap_pages: usize,

    /// Do not sample the cgroup:* tracepoints (cgroup lifecycles come only from the snapshot
    /// and PERF_RECORD_CGROUP then).
    #[arg(long)]
    pub no_cgroup_tracepoints: bool,

    /// cgroup v2 mount to snapshot at start (default: every mounted hierarchy).
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,

    #[command(flatten)]
    pub energy: crate::energy::EnergyArgs,

    /// How often each CPU's cumulative steal, irq and softirq time is read from /proc/stat
    /// while any of them moves (the analyzer takes them out of the tasks' CPU time; its ticks
    /// are 10 ms, so shorter periods add reads, not precision).
    #[arg(long, default_value = "100ms", value_parser = parse_duration, value_name = "DURATION")]
    pub cpu_stat_interval: Duration,

    /// How often /proc/stat is read while no CPU's steal, irq or softirq time moved since the
    /// read before (a read then only repeats the last; a timer wake-up costs more than the
    /// read). Set it to --cpu-stat-interval for a steady cadence.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub cpu_stat_quiet_interval: Duration,

    /// Do not read /proc/stat: steal and IRQ time then stay counted as the interrupted task's.
    #[arg(long)]
    pub no_cpu_stat: bool,

    #[command(flatten)]
    pub activations: crate::activations::ActivationArgs,

    /// zstd level for the trace's blocks (1–22, or zstd's fast levels −1 to −7); 0 stores them
    /// uncompressed. The default, 1, is zstd's fastest standard level: the recorder's CPU on the
    /// measured node matters more than ~15 % of file size (level 3 costs ~30 % more CPU for
    /// that). −2 cost the writer thread 8 % less CPU on the development VM (files from 5 %
    /// smaller to 8 % larger): not enough to leave the standard levels by default.
    #[arg(
        long,
        default_value_t = 1,
        value_parser = clap::value_parser!(i32).range(-7..=22),
        allow_negative_numbers = true
    )]
    pub compression_level: i32,

    /// How often what was written is made durable (fdatasync): a machine crash loses at most
    /// this much. What is written reaches the kernel every second whatever this says, so a
    /// killed recorder loses nothing before that. Each sync is a small write and a device
    /// flush: every second it was a sixth of the recorder's steady CPU on the development VM.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub sync_interval: Duration,

    /// Metadata stored in the trace and carried into every analysis table (repeatable):
    /// run id, workload, configuration.
    #[arg(long = "metadata", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub metadata: Vec<(String, String)>,

    /// Also write the end-of-recording summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// No live status line, even on a terminal.
    #[arg(short, long)]
    pub quiet: bool,

    /// Command to run while recording; recording stops when it exits.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Durations as people write them: "30s", "5m", "1h", "1ms", "1m30s".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (write durations like 30s, 5m, 1h, 10ms)"))?;
    if d.is_zero() {
        return Err("duration must be greater than zero".into());
    }
    Ok(d)
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("30").unwrap_err().contains("30s"));
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn command_after_double_dash() {
        let a = Args::try_parse_from([
            "pws-record",
            "-o",
            "x.pws",
            "--metadata",
            "run=1",
            "--",
            "sleep",
            "1",
        ])
        .unwrap();
        assert_eq!(a.command, ["sleep", "1"]);
        assert_eq!(a.metadata, [("run".to_string(), "1".to_string())]);
        for (level, ok) in [("40", false), ("-8", false), ("-2", true), ("0", true)] {
            let a =
                Args::try_parse_from(["pws-record", "-o", "x.pws", "--compression-level", level]);
            assert_eq!(a.is_ok(), ok, "--compression-level {level}");
        }
        assert!(
            Args::try_parse_from(["pws-record", "-o", "x.pws", "--metadata", "novalue"]).is_err()
        );
    }
}
