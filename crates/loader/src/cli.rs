//! The command line: `run`, `azure`, `openwhisk`, `functions`, and the hidden `runtime`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::Rng;

use crate::arrivals::Schedule;
use crate::azure::{self, Replay, Trace, TraceFiles};
use crate::functions::{self, Function};
use crate::local::{self, LocalRun};
use crate::openwhisk::{self, Injection, Invocable, Target};
use crate::outputs::Outputs;
use crate::platform::{self, Action};
use crate::signals::Signals;
use crate::summary::Summary;
use crate::workload::{self, PlatformSpec, Workload};
use crate::{cgroup, runtime};

#[derive(Debug, Parser)]
#[command(
    name = "pws-load",
    version,
    about = "A local function platform (cgroup v2 instances: prewarm, cold start, pause, evict) and load generator, and an OpenWhisk load injector.",
    after_help = "A workload file alone (`pws-load workload.yaml …`) means `pws-load run workload.yaml …`."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a workload file on the local platform.
    Run(RunArgs),
    /// Replay the Azure Functions 2019 trace on the local platform.
    Azure(AzureArgs),
    /// Send a workload's invocations to a real OpenWhisk (non-blocking, like FaaSLoad).
    Openwhisk(OpenWhiskArgs),
    /// Run every point of a sweep file (settings to vary, repetitions) under pws-record, one
    /// trace each, and write DIR/manifest.csv for `pws-analyze DIR`; resumes when run again.
    Sweep(SweepArgs),
    /// List the function suite; with --calibrate, time each function on this machine.
    Functions {
        #[arg(long)]
        calibrate: bool,
    },
    /// The action runtime inside a container (started by the platform itself).
    #[command(hide = true)]
    Runtime,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}`: {e} (write durations like 30s, 50ms, 2m)"))
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("`{s}` is not a positive number")),
    }
}

#[derive(Debug, Clone, Args)]
struct SweepArgs {
    /// The sweep file (YAML): workload, vary, repetitions, seed (see crates/loader/README.md).
    sweep: PathBuf,
    /// The sweep's directory: a folder per run, manifest.csv, sweep.json (its progress).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// pws-record to record each run with [default: beside pws-load, else on PATH].
    #[arg(long, value_name = "FILE")]
    pws_record: Option<PathBuf>,
    /// Passed to every run (`pws-load run --cgroup-root`).
    #[arg(long, value_name = "DIR")]
    cgroup_root: Option<PathBuf>,
    /// Print the runs it would make, and make none.
    #[arg(long)]
    dry_run: bool,
    /// No progress on stderr (errors still go there).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Args)]
struct OutputArgs {
    /// Write activation records (OpenWhisk's stored form) to FILE as JSON lines, live.
    #[arg(long, value_name = "FILE")]
    activations_out: Option<PathBuf>,
    /// Write container operations as OpenWhisk invoker log lines to FILE, live.
    #[arg(long, value_name = "FILE")]
    invoker_log_out: Option<PathBuf>,
    /// Write the end-of-run summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No progress bar and no summary on stderr (errors still go there).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Args)]
struct PlatformArgs {
    /// cgroup v2 directory under which pws-load-<pid>/ is created [default: /sys/fs/cgroup/unified
    /// where that is the v2 mount, else /sys/fs/cgroup]
    #[arg(long, value_name = "DIR")]
    cgroup_root: Option<PathBuf>,
    /// Containers at once (busy, idle, paused and prewarmed) [default: the workload's, else 2 per CPU]
    #[arg(long, value_name = "N")]
    max_containers: Option<usize>,
    /// Prewarmed stem cells kept ready [default: the workload's, else 1]
    #[arg(long, value_name = "N")]
    prewarm: Option<usize>,
    /// Freeze an idle container after this long [default: the workload's, else 50ms]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    pause_grace: Option<Duration>,
    /// Remove an idle container after this long [default: the workload's, else 10m]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// Turn arrivals away beyond this many queued [default: the workload's, else 1000]
    #[arg(long, value_name = "N")]
    max_queue: Option<usize>,
    /// At the end, wait this long for running activations [default: the workload's, else 10s]
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    drain_timeout: Option<Duration>,
    /// Function instances are processes in cgroups of pws-load's (`process`) or Docker
    /// containers (`docker`) [default: the workload's, else process]
    #[arg(long, value_name = "RUNTIME")]
    runtime: Option<platform::RuntimeKind>,
}

impl PlatformArgs {
    fn apply(&self, mut p: PlatformSpec) -> Result<PlatformSpec> {
        p.max_containers = self.max_containers.unwrap_or(p.max_containers);
        p.prewarm = self.prewarm.unwrap_or(p.prewarm);
        p.pause_grace = self.pause_grace.unwrap_or(p.pause_grace);
        p.idle_timeout = self.idle_timeout.unwrap_or(p.idle_timeout);
        p.max_queue = self.max_queue.unwrap_or(p.max_queue);
        p.drain_timeout = self.drain_timeout.unwrap_or(p.drain_timeout);
        p.runtime = self.runtime.unwrap_or(p.runtime);
        p.check()
            .map_err(|e| anyhow::anyhow!("platform settings: {e}"))?;
        Ok(p)
    }
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    /// The workload file (YAML).
    workload: PathBuf,
    /// Run for this long instead of the workload's duration (workload time).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// The workload's clock runs X times faster than the wall clock (arrivals only).
    #[arg(long, value_name = "X", default_value = "1", value_parser = parse_scale)]
    time_scale: f64,
    /// Seed of arrivals and inputs [default: the workload's, else random (printed)].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    out: OutputArgs,
    /// Drive a real OpenWhisk instead of the local platform (same as `pws-load openwhisk`).
    #[arg(long)]
    openwhisk: bool,
    #[command(flatten)]
    ow: OpenWhiskFlags,
}

#[derive(Debug, Clone, Args)]
struct OpenWhiskFlags {
    /// OpenWhisk credentials in .wskprops form (AUTH=, APIHOST=, NAMESPACE=) [default: ~/.wskprops]
    #[arg(long, value_name = "FILE")]
    openwhisk_auth: Option<PathBuf>,
    /// The API host (URL or host[:port]), instead of the file's APIHOST.
    #[arg(long, value_name = "URL")]
    apihost: Option<String>,
    /// Do not verify TLS certificates (like `wsk -i`).
    #[arg(long)]
    insecure: bool,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value = "8")]
    concurrency: usize,
    /// Retries of a request answered 429 or 5xx, or failed in transport.
    #[arg(long, value_name = "N", default_value = "2")]
    retries: u32,
}

#[derive(Debug, Clone, Args)]
struct OpenWhiskArgs {
    /// The workload file (YAML); its platform section is ignored.
    workload: PathBuf,
    /// Inject for this long instead of the workload's duration (workload time).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// The workload's clock runs X times faster than the wall clock.
    #[arg(long, value_name = "X", default_value = "1", value_parser = parse_scale)]
    time_scale: f64,
    /// Seed of arrivals and inputs [default: the workload's, else random (printed)].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(flatten)]
    ow: OpenWhiskFlags,
    /// Write the summary as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No progress bar and no summary on stderr (errors still go there).
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Clone, Args)]
struct AzureArgs {
    /// Directory with invocations.csv, durations.csv and memory.csv (or one day of the
    /// original invocations_per_function_md / function_durations_percentiles / app_memory_percentiles files).
    #[arg(long, value_name = "DIR")]
    trace_dir: PathBuf,
    /// Use this invocations file instead of the directory's.
    #[arg(long, value_name = "FILE")]
    invocations: Option<PathBuf>,
    /// Use this durations file instead of the directory's.
    #[arg(long, value_name = "FILE")]
    durations: Option<PathBuf>,
    /// Use this memory file instead of the directory's.
    #[arg(long, value_name = "FILE")]
    memory: Option<PathBuf>,
    /// Trace minutes A..B to replay, both included, numbered from 1 like the trace's columns.
    #[arg(long, value_name = "A..B", default_value = "1..1440", value_parser = azure::parse_minutes)]
    minutes: (u32, u32),
    /// Replay only the first N functions of the file.
    #[arg(long, value_name = "N")]
    functions: Option<usize>,
    /// Trace time runs X times faster than the wall clock (60: a trace minute per second).
    #[arg(long, value_name = "X", default_value = "1", value_parser = parse_scale)]
    time_scale: f64,
    /// Keep each invocation with probability F, to fit the trace's rates to a small machine.
    #[arg(long, value_name = "F", default_value = "1", value_parser = parse_scale)]
    invocation_scale: f64,
    /// Suite functions the trace's functions run, assigned round-robin in file order.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "float-loop,int-loop,mem-stream,cache-hash,sleep,bursty,matmul"
    )]
    profiles: Vec<String>,
    /// Shortest run time drawn from the trace's percentiles.
    #[arg(long, value_name = "D", default_value = "1ms", value_parser = parse_duration)]
    min_run: Duration,
    /// Longest run time drawn from the trace's percentiles.
    #[arg(long, value_name = "D", default_value = "1s", value_parser = parse_duration)]
    max_run: Duration,
    /// Namespace of the replayed actions.
    #[arg(long, value_name = "NS", default_value = "guest")]
    namespace: String,
    /// Code each action's init loads, in KiB.
    #[arg(long, value_name = "KB", default_value_t = workload::DEFAULT_CODE_SIZE_KB)]
    code_size_kb: u64,
    /// Each action's time limit.
    #[arg(long, value_name = "D", default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// Stop after this much trace time.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Seed of arrivals, thinning and run times [default: random (printed)].
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// `pws-load workload.yaml …` is `pws-load run workload.yaml …`.
pub fn normalise_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if let Some(first) = args.get(1).and_then(|a| a.to_str()) {
        let is_file = first.ends_with(".yaml") || first.ends_with(".yml");
        if is_file && !first.starts_with('-') {
            args.insert(1, "run".into());
        }
    }
    args
}

pub fn main() -> Result<()> {
    let cli = Cli::parse_from(normalise_args(std::env::args_os().collect()));
    match cli.command {
        Command::Runtime => runtime::main(),
        Command::Functions { calibrate } => list_functions(calibrate),
        Command::Run(a) if a.openwhisk => openwhisk_cmd(OpenWhiskArgs {
            workload: a.workload,
            duration: a.duration,
            time_scale: a.time_scale,
            seed: a.seed,
            ow: a.ow,
            summary_json: a.out.summary_json,
            quiet: a.out.quiet,
        }),
        Command::Run(a) => run_cmd(a),
        Command::Azure(a) => azure_cmd(a),
        Command::Sweep(a) => crate::sweep::run(&crate::sweep::Options {
            sweep: a.sweep,
            output: a.output,
            pws_record: a.pws_record,
            cgroup_root: a.cgroup_root,
            dry_run: a.dry_run,
            quiet: a.quiet,
        }),
        Command::Openwhisk(a) => openwhisk_cmd(a),
    }
}

/// A bar of `len` steps drawn with `template` on stderr; none when quiet or not a terminal.
pub(crate) fn progress_bar(quiet: bool, len: u64, template: &str) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    Some(pb)
}

/// A run's bar: its wall time in milliseconds.
const RUN_BAR: &str = "{spinner} {elapsed_precise} [{wide_bar}] {msg}";

fn wall(duration: Duration, time_scale: f64) -> Duration {
    Duration::from_secs_f64(duration.as_secs_f64() / time_scale)
}

fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| u64::from(rand::rng().random::<u32>()))
}

fn platform_config(spec: &PlatformSpec, root: Option<&Path>) -> platform::Config {
    platform::Config {
        cgroup_root: root.map_or_else(cgroup::default_root, Path::to_path_buf),
        max_containers: spec.max_containers,
        prewarm: spec.prewarm,
        pause_grace: spec.pause_grace,
        idle_timeout: spec.idle_timeout,
        stem_memory_mb: spec.stem_memory_mb,
        max_queue: spec.max_queue,
        // The running binary itself, even if its file is replaced meanwhile.
        runtime_exe: PathBuf::from("/proc/self/exe"),
        runtime: spec.runtime,
    }
}

/// Runs a plan on the local platform and reports.
fn local(
    run: LocalRun,
    schedule: Schedule,
    out: &OutputArgs,
    mut fill: impl FnMut(&mut Summary),
) -> Result<()> {
    let outputs = Arc::new(Outputs::create(
        out.activations_out.as_deref(),
        out.invoker_log_out.as_deref(),
    )?);
    let signals = Signals::install()?;
    let pb = progress_bar(out.quiet, run.wall_duration.as_millis() as u64, RUN_BAR);
    let result = local::run(run, schedule, outputs, &signals, pb.as_ref());
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let mut s = result?;
    fill(&mut s);
    if let Some(p) = &out.summary_json {
        s.write_json(p)?;
    }
    if !out.quiet {
        eprint!("{}", s.render());
    }
    Ok(())
}

fn run_cmd(a: RunArgs) -> Result<()> {
    let w = Workload::from_file(&a.workload)?;
    let spec = a.platform.apply(w.platform.clone())?;
    let seed = seed_or_random(a.seed.or(w.seed));
    let duration = a.duration.unwrap_or(w.duration);
    if duration.is_zero() {
        bail!("--duration must be more than 0");
    }
    let namespace = w.namespace.clone().unwrap_or_else(|| "guest".into());
    let actions = w
        .functions
        .iter()
        .map(|f| {
            Arc::new(Action {
                name: f.name.clone(),
                namespace: namespace.clone(),
                function: f.function,
                memory_mb: f.memory_mb,
                code_size_kb: f.code_size_kb,
                timeout: f.timeout,
            })
        })
        .collect();
    let schedule = Schedule::new(w.streams(seed, duration), a.time_scale);
    let run = LocalRun {
        platform: platform_config(&spec, a.platform.cgroup_root.as_deref()),
        drain: spec.drain_timeout,
        actions,
        wall_duration: wall(duration, a.time_scale),
    };
    let name = format!("{} ({})", w.name, a.workload.display());
    local(run, schedule, &a.out, |s| {
        s.mode = "local".into();
        s.workload = name.clone();
        s.seed = seed;
        s.time_scale = a.time_scale;
    })
}

fn azure_cmd(a: AzureArgs) -> Result<()> {
    let mut files = TraceFiles::find(&a.trace_dir)?;
    if let Some(p) = &a.invocations {
        files.invocations = p.clone();
    }
    if let Some(p) = &a.durations {
        files.durations = p.clone();
    }
    if a.memory.is_some() {
        files.memory = a.memory.clone();
    }
    let profiles = a
        .profiles
        .iter()
        .map(|p| {
            Function::from_name(p.trim()).with_context(|| {
                format!(
                    "--profiles: unknown function `{p}`; the suite has: {}",
                    Function::names()
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    workload::check_name("--namespace", &a.namespace).map_err(anyhow::Error::msg)?;
    let trace = Trace::load(&files)?;
    let spec = a.platform.apply(PlatformSpec::default())?;
    let seed = seed_or_random(a.seed);
    let replay = Replay {
        minutes: a.minutes,
        functions: a.functions,
        invocation_scale: a.invocation_scale,
        profiles,
        min_run: a.min_run,
        max_run: a.max_run,
        namespace: a.namespace.clone(),
        code_size_kb: a.code_size_kb,
        timeout: a.timeout,
    };
    // Calibrate each suite function once, in this process, before the run starts.
    let mut cache = std::collections::HashMap::new();
    let mut calib = |f: Function| {
        *cache
            .entry(f)
            .or_insert_with(|| functions::calibrate(f, Duration::from_millis(20)))
    };
    let mut plan = azure::plan(&trace, &replay, seed, &mut calib)?;
    let duration = a.duration.map_or(plan.duration, |d| d.min(plan.duration));
    for s in &mut plan.streams {
        s.cut(duration);
    }
    let run = LocalRun {
        platform: platform_config(&spec, a.platform.cgroup_root.as_deref()),
        drain: spec.drain_timeout,
        actions: plan.actions.into_iter().map(Arc::new).collect(),
        wall_duration: wall(duration, a.time_scale),
    };
    let schedule = Schedule::new(plan.streams, a.time_scale);
    let name = format!(
        "Azure Functions 2019 minutes {}..{} ({} invocations before thinning by {})",
        a.minutes.0, a.minutes.1, plan.invocations, a.invocation_scale
    );
    local(run, schedule, &a.out, |s| {
        s.mode = "azure".into();
        s.workload = name.clone();
        s.seed = seed;
        s.time_scale = a.time_scale;
    })
}

fn openwhisk_cmd(a: OpenWhiskArgs) -> Result<()> {
    let w = Workload::from_file(&a.workload)?;
    let target = Target::resolve(
        a.ow.openwhisk_auth.as_deref(),
        a.ow.apihost.as_deref(),
        w.namespace.as_deref(),
        a.ow.insecure,
    )?;
    let seed = seed_or_random(a.seed.or(w.seed));
    let duration = a.duration.unwrap_or(w.duration);
    let inj = Injection {
        actions: w
            .functions
            .iter()
            .map(|f| Invocable {
                name: f.name.clone(),
                params: f.params.clone(),
            })
            .collect(),
        wall_duration: wall(duration, a.time_scale),
        concurrency: a.ow.concurrency,
        retries: a.ow.retries,
        request_timeout: Duration::from_secs(20),
    };
    let schedule = Schedule::new(w.streams(seed, duration), a.time_scale);
    let signals = Signals::install()?;
    let pb = progress_bar(a.quiet, inj.wall_duration.as_millis() as u64, RUN_BAR);
    let result = openwhisk::inject(target, &inj, schedule, &signals, pb.as_ref());
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let mut s = result?;
    s.workload = format!("{} ({})", w.name, a.workload.display());
    s.seed = seed;
    s.time_scale = a.time_scale;
    if let Some(p) = &a.summary_json {
        let text = serde_json::to_string_pretty(&s).expect("the summary always serializes");
        std::fs::write(p, text + "\n")
            .with_context(|| format!("cannot write the summary {}", p.display()))?;
    }
    if !a.quiet {
        eprint!("{}", s.render());
    }
    Ok(())
}

fn list_functions(calibrate: bool) -> Result<()> {
    println!(
        "{:<11} {:<50} {:<15}{}",
        "function",
        "profile",
        "input",
        if calibrate {
            " input for 100 ms here"
        } else {
            ""
        }
    );
    for f in functions::ALL {
        let extra = if calibrate {
            let ms = functions::calibrate(f, Duration::from_millis(50));
            format!(" {}", f.input_for_work(100.0 / ms))
        } else {
            String::new()
        };
        println!(
            "{:<11} {:<50} {:<15}{extra}",
            f.name(),
            f.profile(),
            f.input_unit()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workload_file_alone_means_run() {
        let v = |xs: &[&str]| xs.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            normalise_args(v(&["pws-load", "w.yaml", "-q"])),
            v(&["pws-load", "run", "w.yaml", "-q"])
        );
        assert_eq!(
            normalise_args(v(&["pws-load", "azure", "--trace-dir", "d"])),
            v(&["pws-load", "azure", "--trace-dir", "d"])
        );
        let cli = Cli::try_parse_from(normalise_args(v(&[
            "pws-load",
            "w.yml",
            "--time-scale",
            "2",
            "--pause-grace",
            "20ms",
        ])))
        .unwrap();
        let Command::Run(r) = cli.command else {
            panic!("not run")
        };
        assert_eq!(r.time_scale, 2.0);
        assert_eq!(r.platform.pause_grace, Some(Duration::from_millis(20)));
        assert!(
            Cli::try_parse_from(v(&["pws-load", "run", "w.yaml", "--duration", "5 parsecs"]))
                .is_err()
        );
        assert!(
            Cli::try_parse_from(v(&["pws-load", "run", "w.yaml", "--time-scale", "0"])).is_err()
        );
        assert!(Cli::try_parse_from(v(&[
            "pws-load",
            "azure",
            "--trace-dir",
            "d",
            "--minutes",
            "3..1"
        ]))
        .is_err());
    }
}
