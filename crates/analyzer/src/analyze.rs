//! `pws-analyze TRACE… -o DIR`: each trace replayed (traces in parallel, and each trace's CPUs
//! in parallel), its lifecycles rebuilt, and the tables written as one hive-partitioned dataset.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::join::cold_start::Start;
use crate::manifest::Input;
use crate::models::attribute::IdlePolicy;
use crate::progress::{InputProgress, Progress};
use crate::replay::cpu::{IDLE, UNKNOWN};
use crate::replay::energy::{self, Energy};
use crate::replay::grid::Grid;
use crate::replay::lifecycle::{self, Lifecycles};
use crate::replay::{self, Loaded, Replayed};
use crate::summary::Summary;
use crate::tables::{Partition, Table};
use crate::timefmt::ClockMap;

// The group's members named: clap empties the group of a struct that flattens another, and
// the main command's `Option<RunArgs>` would then always be None (clap-rs/clap#4697).
#[derive(Debug, clap::Args)]
#[group(args = ["traces", "manifest", "output"])]
pub struct RunArgs {
    /// Inputs to analyse, recognised by content: .pws traces, perf.data files, hwpc-sensor
    /// reports, or directories of them (walked; a `manifest.csv` in one lists and labels its
    /// traces). Several make one dataset, partitioned by run and host.
    #[arg(required_unless_present = "manifest", value_name = "INPUT")]
    pub traces: Vec<PathBuf>,
    /// A manifest of runs (CSV: trace,run,host,workload,config[,more…]; paths relative to it):
    /// labels the inputs it lists, every column carried into every table; without INPUT, its
    /// traces are the inputs.
    #[arg(long, value_name = "CSV")]
    pub manifest: Option<PathBuf>,
    /// Output directory for the Parquet dataset.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Shortest interval of the tables ("10ms", "1s"): energy readings closer than this are
    /// merged; without energy readings, the fixed step. `auto`: 10 updates of the coarsest
    /// energy counter, as measured in the trace, at least 10 ms (README, "Measurement quality").
    #[arg(long, default_value = "auto", value_name = "auto|DURATION")]
    pub interval: crate::quality::interval::IntervalArg,
    /// Run id for every table (default: the trace's `run` metadata, else its file name).
    #[arg(long)]
    pub run: Option<String>,
    /// Skip corrupt blocks and report them, instead of stopping at the first one.
    #[arg(long)]
    pub skip_bad_blocks: bool,
    /// No progress bar and no summary table.
    #[arg(short, long)]
    pub quiet: bool,
    /// Also write the summary of every trace as JSON (for scripts and benchmarks).
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Idle-power policies to attribute with (comma-separated; each gives its own rows; the
    /// printed summary uses the first). Default: all of them, side by side, `by-lifetime`
    /// first because it shows the keep-alive cost.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "by-lifetime,unassigned,proportional,even,by-memory"
    )]
    pub idle_policy: Vec<IdlePolicy>,
    /// Rows of the `attribution` table: `per-interval` (every grid interval: the biggest table
    /// by far), `per-second` (the intervals of each second summed, same columns) or `none`
    /// (no table). No other table changes.
    #[arg(long, value_enum, default_value_t, value_name = "GRAIN")]
    pub attribution: crate::attribution::grain::Grain,
    /// Counter the counter-ratio model splits by (it falls back to CPU time without it).
    #[arg(long, default_value = "instructions")]
    pub ratio_counter: String,
    /// Ridge penalty of linear-offline (on standardised features; 0 = least squares).
    #[arg(long, default_value_t = 0.0)]
    pub ridge: f64,
    /// Counters linear-offline regresses on besides CPU time (comma-separated; default: every
    /// counter of the trace except the CPU clocks).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Contiguous time blocks for the models' cross-validation.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Links the activation join may use: `auto` (invoker log, records, then time overlap) or
    /// `time-overlap` (ignore every container link: to check the time-overlap join).
    #[arg(long, value_enum, default_value_t = crate::join::JoinMode::Auto)]
    pub join: crate::join::JoinMode,
    /// The scoring protocol's gap and the per-function and local-linear models' options.
    #[command(flatten)]
    pub comparison: crate::models::options::ComparisonOptions,
    /// SmartWatts' options, as `pws-analyze smartwatts` takes them.
    #[command(flatten, next_help_heading = "SmartWatts")]
    pub smartwatts: crate::models::smartwatts::SmartWattsOptions,
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let inputs = crate::manifest::expand(&args.traces, args.manifest.as_deref())?;
    // The join's per-activation usage is spilled beside the tables, not to a tmpfs.
    crate::spill::set_dir(&args.output);
    for n in &inputs.notes {
        eprintln!("pws-analyze: {n}");
    }
    let paths: Vec<&Path> = inputs.inputs.iter().map(|i| i.path.as_path()).collect();
    let visible = !args.quiet && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let progress = Progress::new(&paths, visible);
    let results: Vec<(PathBuf, Result<Summary>)> = inputs
        .inputs
        .par_iter()
        .map(|i| {
            let r = analyse(i, &inputs.extra_columns, args, &progress.input(&i.path));
            (i.path.clone(), r)
        })
        .collect();
    progress.finish();
    let mut code = ExitCode::SUCCESS;
    let mut seen: HashMap<(&str, &str), &Path> = HashMap::new();
    for (path, r) in &results {
        if let Ok(s) = r {
            if let Some(other) = seen.insert((s.run.as_str(), s.host.as_str()), path) {
                eprintln!(
                    "pws-analyze: warning: {} and {} are both run {:?} on host {:?}: their rows share one partition (give each its own `--metadata run=…` when recording, or analyse them separately with --run)",
                    other.display(),
                    path.display(),
                    s.run,
                    s.host
                );
            }
        }
    }
    if let Some(p) = &args.summary_json {
        let all: Vec<serde_json::Value> = results
            .iter()
            .map(|(path, r)| match r {
                Ok(s) => s.json(path),
                Err(e) => serde_json::json!({"trace": path.display().to_string(), "error": format!("{e:#}")}),
            })
            .collect();
        std::fs::write(p, format!("{:#}\n", serde_json::Value::Array(all)))
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    for (path, r) in &results {
        match r {
            Ok(s) if !args.quiet => print!("{}", s.text(path)),
            Ok(_) => {}
            Err(e) => {
                eprintln!("pws-analyze: {}: {e:#}", path.display());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

/// Everything computed for one trace, before it becomes tables (or a timeline).
pub(crate) struct Analysis {
    /// This input's file name in each partition (a hash of its path), so inputs of one run
    /// and host never overwrite each other.
    pub(crate) part: String,
    pub(crate) run: String,
    pub(crate) host: String,
    pub(crate) l: Loaded,
    pub(crate) clock: ClockMap,
    pub(crate) grid: Grid,
    /// The interval the grid was made with, and whether `auto` chose it.
    pub(crate) interval: crate::quality::interval::Chosen,
    pub(crate) life: Lifecycles,
    pub(crate) rep: Replayed,
    pub(crate) energy: Vec<Energy>,
    pub(crate) cgroup_path: HashMap<u64, String>,
    /// Activation index → usage (its windows' segments, by the concurrency rule).
    pub(crate) act_usage: crate::join::activation_totals::ActivationTotals,
    /// The activation join: function-container evidence per container row, each
    /// activation's usage per interval and package, its presence share.
    pub(crate) joined: Option<crate::join::Joined>,
    /// hwpc-sensor reports' ticks (None for traces), for SmartWatts.
    pub(crate) sensor_ticks: Option<crate::inputs::hwpc_analysis::SensorTicks>,
    /// SM-busy time per GPU, cgroup and activation (empty without NVML reads).
    pub(crate) gpu: crate::gpu::GpuUsage,
    /// A synthetic trace's truth, taken out of its metadata at load.
    pub(crate) truth: crate::models::truth_metadata::TruthMetadata,
}

impl Analysis {
    /// Whether container row `ci` is a function container (`join::function_containers`); on
    /// hwpc-sensor reports every target stands for one.
    pub(crate) fn is_function_container(&self, ci: usize) -> bool {
        self.joined
            .as_ref()
            .is_none_or(|j| j.evidence.get(ci).is_some_and(|e| e.is_function()))
    }
}

/// One input replayed and written; `extra` are the manifest's own label columns.
fn analyse(
    input: &Input,
    extra: &[String],
    args: &RunArgs,
    progress: &InputProgress<'_>,
) -> Result<Summary> {
    let labels = &input.labels;
    let run = args.run.as_deref().or(labels.run.as_deref());
    let mut an = replay_trace(
        &input.path,
        args.interval,
        args.skip_bad_blocks,
        run,
        args.join,
        progress,
    )?;
    if let Some(h) = &labels.host {
        an.host = h.clone();
    }
    let meta = |k: &str| {
        an.l.info
            .metadata
            .iter()
            .find(|(m, _)| m == k)
            .map(|(_, v)| v.clone())
    };
    let mut columns = vec![
        (
            "workload".to_owned(),
            labels.workload.clone().or_else(|| meta("workload")),
        ),
        (
            "config".to_owned(),
            labels.config.clone().or_else(|| meta("config")),
        ),
    ];
    columns.extend(extra.iter().cloned().zip(labels.extra.iter().cloned()));
    let p = Partition {
        run: an.run.clone(),
        host: an.host.clone(),
        part: an.part.clone(),
        labels: columns,
    };
    // The package cells (on disk) go to the tables, which read them for `usage` and each
    // counter's dataset.
    let cells = std::mem::take(&mut an.rep.per_package);
    write_tables(&mut an, cells, args, &p)
}

/// One trace replayed on the grid of `interval`: lifecycles, the activation join, CPU time per
/// interval and activation, energy per interval. `run` overrides the trace's run id.
/// `part-<16 hex>`: a hash of the input's absolute path, stable across runs of the analyzer.
fn part_name(path: &Path) -> String {
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    part_name_of(&abs)
}

/// XXH3-64 (seed 0) of the path's bytes: a fixed specification, so per-trace jobs built with
/// different toolchains name the same input's part alike.
fn part_name_of(abs: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let h = twox_hash::XxHash3_64::oneshot(abs.as_os_str().as_bytes());
    format!("part-{h:016x}")
}

/// What an input opens to: a trace to replay (a .pws trace, or a perf.data file converted to
/// one), or hwpc-sensor reports, whose usage is already per target and tick.
enum Opened {
    Trace(Loaded),
    Hwpc(crate::inputs::hwpc_analysis::HwpcInput),
}

/// Any input, recognised by its content.
fn open_input(path: &Path, skip_bad_blocks: bool) -> Result<Opened> {
    use crate::inputs::detect::{detect, InputKind};
    match detect(path)? {
        InputKind::Pws => replay::load(path, skip_bad_blocks).map(Opened::Trace),
        InputKind::PerfData => {
            let (trace, notes) = crate::inputs::perf_data::to_trace(path)?;
            let mut l = replay::load_trace(trace, path, skip_bad_blocks)?;
            l.notes.extend(notes);
            Ok(Opened::Trace(l))
        }
        InputKind::HwpcCsvDir | InputKind::HwpcJson => {
            let h = crate::inputs::hwpc_analysis::open(path)
                .with_context(|| format!("reading hwpc-sensor reports {}", path.display()))?;
            Ok(Opened::Hwpc(h))
        }
    }
}

/// hwpc-sensor reports: no perf stream to replay and no activations; the reports' ticks make
/// the grid and their targets the cgroups (see `inputs::hwpc_analysis`).
fn replay_hwpc(
    h: crate::inputs::hwpc_analysis::HwpcInput,
    path: &Path,
    interval: crate::quality::interval::IntervalArg,
    run: Option<&str>,
) -> Result<Analysis> {
    // The reports' ticks are the grid: auto has no counter of its own to measure first.
    let interval = crate::quality::interval::choose(interval, &[]);
    let (l, mut r) = h.replay(interval.interval)?;
    let energy = energy::on_grid(&l.energy, &r.grid);
    r.rep.merge_packages(&replay::package_of(&l))?;
    Ok(Analysis {
        part: part_name(path),
        run: run_id(&l, path, run),
        host: l.info.hostname.clone(),
        clock: ClockMap::new(l.clock.clone()),
        l,
        grid: r.grid,
        interval,
        life: r.life,
        rep: r.rep,
        energy,
        cgroup_path: r.cgroup_path,
        act_usage: Default::default(),
        joined: None,
        sensor_ticks: Some(r.sensor_ticks),
        gpu: crate::gpu::GpuUsage::default(),
        truth: Default::default(),
    })
}

pub(crate) fn replay_trace(
    path: &Path,
    interval: crate::quality::interval::IntervalArg,
    skip_bad_blocks: bool,
    run: Option<&str>,
    join: crate::join::JoinMode,
    progress: &InputProgress<'_>,
) -> Result<Analysis> {
    let mut l = match open_input(path, skip_bad_blocks)? {
        Opened::Trace(l) => l,
        Opened::Hwpc(h) => return replay_hwpc(h, path, interval, run),
    };
    let truth = crate::models::truth_metadata::TruthMetadata::take(&mut l.info.metadata);
    crate::memory::phase("load");
    let clock = ClockMap::new(l.clock.clone());
    let (side, perf_blocks) = replay::scan_side_band(&l, progress)?;
    // Read by the side-band pass only, which returns what the replay reads of them.
    l.perf_blocks = Vec::new();
    crate::memory::phase("side band");
    let tracepoints: Vec<_> = side
        .iter()
        .flat_map(|c| c.tracepoints.iter().cloned())
        .collect();
    let mut cgroup_path: HashMap<u64, String> = HashMap::new();
    for c in &side {
        for (id, p) in &c.cgroup_paths {
            cgroup_path.insert(*id, p.clone());
        }
    }
    let mut cgroups = lifecycle::cgroups(&l.cgroup_events, &tracepoints);
    for g in &mut cgroups {
        if g.path.is_empty() {
            if let Some(p) = cgroup_path.get(&g.id) {
                g.path = p.clone();
            }
        }
        if g.hierarchy == 0 && !g.path.is_empty() {
            cgroup_path.entry(g.id).or_insert_with(|| g.path.clone());
        }
    }
    crate::replay::paused::apply(&mut cgroups, &l.containers, l.info.start_monotonic_ns);
    // Held to the end of the attribution: each cgroup's frozen spans without room to grow (an
    // hour's 181 k spans had 2 MiB of it).
    for g in &mut cgroups {
        g.frozen.shrink_to_fit();
    }
    crate::memory::phase("cgroups");
    // The load's and the side band's transients, freed in small pieces, go back before the
    // lifecycles are built beside what they keep.
    crate::memory::release_free_heap();
    let interval = crate::quality::interval::choose(interval, &l.energy);
    let grid = make_grid(&l, interval.interval)?;
    // Exact links first; then every window (linked, and each unlinked activation on each
    // candidate container) is kept apart by the replay, and the join finishes on exact CPU time.
    // The records move into the lifecycles (`life.activations`): not kept twice.
    let records = std::mem::take(&mut l.activations);
    let mut life = match join {
        crate::join::JoinMode::Auto => lifecycle::build(cgroups, &l.containers, records),
        crate::join::JoinMode::TimeOverlap => {
            let none = crate::replay::text::Text::default();
            let unlinked: Vec<_> = records
                .into_iter()
                .map(|r| crate::replay::compact_records::CompactRecord {
                    container_id: none.clone(),
                    ..r
                })
                .collect();
            lifecycle::build(cgroups, &[], unlinked)
        }
    };
    crate::memory::phase("lifecycles");
    // Attach events place GPU processes in cgroups (`gpu::pid_cgroups`): a few per task.
    let attach: Vec<_> = if l.gpu.is_empty() {
        Vec::new()
    } else {
        l.cgroup_events
            .iter()
            .filter(|e| e.op == pws_trace::records::CgroupOp::Attach)
            .cloned()
            .collect()
    };
    // Read into the lifecycles; a busy hour holds hundreds of MB of these events.
    l.cgroup_events = Vec::new();
    l.containers = Vec::new();
    // The accounting allocates on rayon's threads, from other malloc arenas: what this thread
    // freed would stay resident beside it.
    crate::memory::release_free_heap();
    let pending = crate::join::plan(&life, &grid);
    crate::memory::phase("join plan");
    // Steal and IRQ time out, and the cells summed per package, as the CPUs are walked.
    let mut rep = replay::replay_perf(&l, &grid, &pending.plan.by_cgroup, perf_blocks, progress)?;
    crate::memory::phase("accounting");
    // The accounting's threads freed their walks' state in their own malloc arenas, which the
    // join (on this thread) does not reuse: given back before it.
    crate::memory::release_free_heap();
    let mut joined = crate::join::finish(&mut life, pending, &mut rep, &grid)?;
    crate::memory::phase("join");
    // The activations' totals move out of the join: nothing else reads them.
    let act_usage = std::mem::take(&mut joined.usage.total);
    let energy = energy::on_grid(&l.energy, &grid);
    let gpu = if l.gpu.is_empty() {
        crate::gpu::GpuUsage::default()
    } else {
        let pids = crate::gpu::pid_cgroups::PidCgroups::new(&rep.per_cpu, &tracepoints, &attach);
        let step = interval.interval.as_nanos().max(1) as u64;
        crate::gpu::GpuUsage::new(&l.gpu, &clock, (&grid, step), &l.energy, &pids, &life)
    };
    Ok(Analysis {
        part: part_name(path),
        run: run_id(&l, path, run),
        host: l.info.hostname.clone(),
        l,
        clock,
        grid,
        interval,
        life,
        rep,
        energy,
        cgroup_path,
        act_usage,
        joined: Some(joined),
        sensor_ticks: None,
        gpu,
        truth,
    })
}

/// Says when the host's wall clock moved against its monotonic clock during the trace (an NTP
/// step or a strong slew): times are right per pair, but hosts align only as well as NTP did.
fn clock_note(pairs: &[pws_trace::records::ClockPair]) -> Option<String> {
    let offsets = pairs
        .iter()
        .map(|p| i128::from(p.realtime_ns) - i128::from(p.monotonic_ns));
    let (lo, hi) = offsets.fold((i128::MAX, i128::MIN), |(lo, hi), o| (lo.min(o), hi.max(o)));
    let moved_ms = (hi - lo) as f64 / 1e6;
    (pairs.len() > 1 && moved_ms > 1.0).then(|| {
        format!(
            "the host's wall clock moved by {moved_ms:.1} ms against its monotonic clock during the trace (NTP): each time is converted with the clock pair before it"
        )
    })
}

/// The grid: energy readings thinned to at least `interval` apart, else a fixed step over the
/// trace's span.
fn make_grid(l: &Loaded, interval: Duration) -> Result<Grid> {
    let step = interval.as_nanos().max(1) as u64;
    if let Some(g) = Grid::from_readings(energy::reading_times(&l.energy), step) {
        return Ok(g);
    }
    let start = l.info.start_monotonic_ns;
    let end = l.end_ns.max(start + step);
    Grid::fixed(start, end, step).context("the trace spans no time")
}

fn run_id(l: &Loaded, path: &Path, run: Option<&str>) -> String {
    run.map(str::to_owned)
        .or_else(|| {
            l.info
                .metadata
                .iter()
                .find(|(k, _)| k == "run")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
}

pub(crate) fn cgroup_name(an: &Analysis, key: u64) -> String {
    if let Some(n) = crate::replay::steal_irq::label(key) {
        return n.into();
    }
    match key {
        IDLE => "<idle>".into(),
        UNKNOWN => "<unknown>".into(),
        id => an
            .cgroup_path
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("<cgroup {id}>")),
    }
}

/// `cells`: the replay's per-package cells (`Replayed::per_package`), taken out of `an`.
fn write_tables(
    an: &mut Analysis,
    cells: crate::replay::PackageCells,
    args: &RunArgs,
    p: &Partition,
) -> Result<Summary> {
    let (run, host) = (an.run.clone(), an.host.clone());
    let ts = |ns: u64| {
        an.clock
            .to_realtime_ns(ns)
            .and_then(|v| i64::try_from(v).ok())
    };
    let ts_opt = |ns: Option<u64>| ns.and_then(ts);
    let mut files = Vec::new();
    let out = &args.output;

    // power: one row per energy counter and interval.
    let mut t = Table::keyed("power")
        .ts("interval_start")
        .ts("interval_end")
        .str("domain")
        .u64("package")
        .str("source")
        .bool("measured")
        .str("counter")
        .str("status")
        .f64("energy_j")
        .f64("power_w");
    for e in &an.energy {
        for i in 0..an.grid.len() {
            let (a, b) = an.grid.span(i);
            let secs = (b - a) as f64 / 1e9;
            // A gap is missing data (null), never a 0 J measurement.
            let j = e.known(i);
            t.push_key(&run, &host)
                .push_ts(ts(a))
                .push_ts(ts(b))
                .push_str(&e.domain.to_string())
                .push_u64(Some(e.package.into()))
                .push_str(if e.is_measured() {
                    "measured"
                } else {
                    "simulated"
                })
                .push_bool(Some(e.is_measured()))
                .push_str(&e.name)
                .push_str(e.status[i].as_str())
                .push_f64(j)
                .push_f64(j.map(|j| j / secs));
            t.flush_if_full(out, p)?;
        }
    }
    files.push(t.write(out, p)?);

    // usage: one row per interval, package and cgroup.
    let mut t = Table::keyed("usage")
        .float_dictionaries()
        .ts("interval_start")
        .ts("interval_end")
        .u64("package")
        .str("cgroup")
        .u64("cgroup_id")
        .u64("cpu_ns");
    for name in &an.rep.columns {
        t = t.f64(name);
    }
    // By interval, then package, then cgroup: each package's cells are sorted by interval and
    // cgroup, so the packages' runs for one interval are taken in turn, read from disk.
    let mut readers: Vec<(u32, std::iter::Peekable<_>)> = cells
        .iter()
        .map(|(pkg, c)| (*pkg, c.iter().peekable()))
        .collect();
    loop {
        let mut next_i: Option<usize> = None;
        for (_, r) in &mut readers {
            if let Some(Err(_)) = r.peek() {
                r.next().transpose()?;
            }
            if let Some(Ok(c)) = r.peek() {
                next_i = Some(next_i.map_or(c.0, |n| n.min(c.0)));
            }
        }
        let Some(next_i) = next_i else { break };
        for (pkg, r) in &mut readers {
            while let Some(c) = r.next_if(|c| c.as_ref().is_ok_and(|c| c.0 == next_i)) {
                let (i, cg, u) = c?;
                let (a, b) = an.grid.span(i);
                t.push_key(&run, &host)
                    .push_ts(ts(a))
                    .push_ts(ts(b))
                    .push_u64(Some((*pkg).into()))
                    .push_str(&cgroup_name(an, cg))
                    .push_u64(
                        (cg != IDLE && cg != UNKNOWN && !crate::replay::steal_irq::is_pseudo(cg))
                            .then_some(cg),
                    )
                    .push_u64(Some(u.cpu_ns));
                for k in 0..an.rep.columns.len() {
                    t.push_f64(Some(u.counters.get(k).copied().unwrap_or(0.0)));
                }
                t.flush_if_full(out, p)?;
            }
        }
    }
    files.push(t.write(out, p)?);

    // containers
    let end_ns = an.grid.end().max(an.l.end_ns);
    let mut t = Table::keyed("containers")
        .str("container_id")
        .str("cgroup")
        .u64("cgroup_id")
        .str("action")
        .str("namespace")
        .ts("created")
        .ts("destroyed")
        .ts("init_start")
        .ts("init_end")
        .u64("paused_ns")
        .str("paused_source")
        .u64("activations")
        .bool("function_container")
        .str("evidence");
    for (ci, c) in an.life.containers.iter().enumerate() {
        let g = c.cgroup.map(|i| &an.life.cgroups[i]);
        // hwpc reports: every target is a container row standing for itself.
        let evidence = an.joined.as_ref().map_or(
            crate::join::function_containers::Evidence::Runtime("hwpc-target"),
            |j| j.evidence[ci],
        );
        t.push_key(&run, &host)
            .push_str(&c.container_id)
            .push_str(g.map(|g| g.path.as_str()).unwrap_or(""))
            .push_u64(g.map(|g| g.id))
            .push_str(&c.action)
            .push_str(&c.namespace)
            .push_ts(ts_opt(c.created))
            .push_ts(ts_opt(c.destroyed))
            .push_ts(ts_opt(c.init_start))
            .push_ts(ts_opt(c.init_end))
            .push_u64(Some(g.map(|g| g.frozen_ns(end_ns)).unwrap_or(0)))
            .push_str(&g.map_or(String::new(), |g| g.paused_sources.label()))
            .push_u64(Some(c.activations))
            .push_bool(Some(evidence.is_function()))
            .push_str(evidence.as_str());
    }
    files.push(t.write(out, p)?);

    // activations
    let mut t = Table::keyed("activations")
        .str("activation_id")
        .str("action")
        .str("namespace")
        .str("container_id")
        .str("join_method")
        .str("start_type")
        .bool("cold")
        .u64("wait_ms")
        .u64("init_ms")
        .u64("run_ms")
        .ts("start")
        .ts("end")
        .u64("status_code")
        .u64("cpu_ns")
        .u64("platform_cpu_ns");
    for name in &an.rep.columns {
        t = t.f64(name);
    }
    let mut cold = 0;
    for (ai, a) in an.life.activations.iter().enumerate() {
        let r = &a.record;
        let is_cold = Start::of(a.start_type) == Start::Cold;
        cold += usize::from(is_cold);
        let run_ms = r
            .duration_ms()
            .map(|d| d.saturating_sub(r.init_ms().unwrap_or(0)));
        let cid = a
            .container()
            .map(|c| an.life.containers[c].container_id.as_str())
            .unwrap_or("");
        t.push_key(&run, &host)
            .push_str(r.activation_id.as_str(&mut [0; 32]))
            .push_str(&r.action)
            .push_str(&r.namespace)
            .push_str(cid)
            .push_str(a.method.as_str())
            .push_str(&a.start_type.to_string())
            .push_bool(Some(is_cold))
            .push_u64(r.wait_ms())
            .push_u64(r.init_ms())
            .push_u64(run_ms)
            .push_ts((r.start_ns > 0).then_some(r.start_ns).and_then(ts))
            .push_ts((r.end_ns > 0).then_some(r.end_ns).and_then(ts))
            .push_u64(r.status_code())
            .push_u64(Some(an.act_usage.cpu_ns(ai)))
            .push_u64(r.platform_cpu_ns());
        for k in 0..an.rep.columns.len() {
            t.push_f64(Some(an.act_usage.counter(ai, k)));
        }
        // In the writer as they come: an hour's 180 k rows held as builders, then encoded in
        // one batch, were 52 MiB over the tables before them.
        t.flush_if_full(out, p)?;
    }
    let activations_part = t.write(out, p)?;
    files.push(activations_part.clone());
    // The activations' usage totals are in the table now, and nothing below reads them: not
    // held through the attribution and the derived tables (9 MB of an hour's peak).
    an.act_usage = Default::default();

    let mut notes = an.l.notes.clone();
    notes.extend(clock_note(&an.l.clock));
    notes.extend(an.rep.steal_irq.iter().flat_map(|r| r.notes()));
    notes.extend(an.gpu.notes());
    if let Some(st) = &an.l.statistics {
        for s in st.sources.iter().filter(|s| s.errors > 0) {
            notes.push(format!(
                "recorder source {}: {} errors while recording, last: {}",
                s.name, s.errors, s.last_error
            ));
        }
    }
    if let Some(j) = &an.joined {
        notes.extend(j.notes.iter().cloned());
    }
    // What the summary and the quality table read of the activations and the join, taken now;
    // the attribution reads the activations' windows, containers and text only, which go
    // apart (to disk for the text): the records are not held through it (~35 MB of an hour).
    let quality = crate::quality::assess(an);
    let activations = an.life.activations.len();
    let prewarmed = an
        .life
        .activations
        .iter()
        .filter(|a| Start::of(a.start_type) == Start::Prewarmed)
        .count();
    let containers = an.life.containers.len();
    let function_containers = an.joined.as_ref().map_or(an.life.containers.len(), |j| {
        j.evidence.iter().filter(|e| e.is_function()).count()
    });
    let acts = crate::attribution::activations::Activations::take(&mut an.life)?;
    // What the attribution reads of the raw energy readings is each counter's resolution, and
    // a GPU's readings (on its own update windows): the CPU counters' go before it (an hour's
    // at a 10 ms period are 6 MB).
    let resolutions = crate::attribution::uncertainty::Resolution::of_counters(an);
    an.l.energy
        .retain(|s| s.domain == pws_trace::records::EnergyDomain::Gpu);
    // The attribution's models and rows come next: the replay's and the join's freed heap
    // goes back first, not kept beside them.
    crate::memory::release_free_heap();
    crate::memory::phase("tables before attribution");
    let (attr_files, at, mut written) =
        crate::attribution::tables(an, &acts, cells, &resolutions, args, p)?;
    drop(acts);
    crate::memory::phase("attribution");
    // The derived tables run polars on its own threads, whose allocations do not reuse what
    // this thread freed: the activations' per-interval usage goes now (nothing below reads
    // it), and the heap's free pages go back to the system before polars starts (on an hour's
    // trace the peak was this phase, 200 MB over the attribution's).
    if let Some(j) = an.joined.as_mut() {
        j.usage.release_cells();
    }
    // The lifecycles go before polars starts, and the raw energy readings (the grid's joules
    // are in `an.energy`; an hour's readings are 6 MB).
    an.life = crate::replay::lifecycle::Lifecycles::default();
    an.joined = None;
    an.l.energy = Vec::new();
    // What the summary reads of the grid and of each counter's joules on it, taken now: the
    // derived tables do not read them, and they do not stay beside polars (an hour's grid and
    // joules are 7 MiB).
    let seconds = (an.grid.end() - an.grid.start()) as f64 / 1e9;
    let energy: Vec<(String, f64, bool, usize)> = an
        .energy
        .iter()
        .map(|e| {
            (
                format!("{} {} {}", e.source, e.domain, e.package),
                e.total_j(),
                e.is_measured(),
                e.status
                    .iter()
                    .filter(|s| **s == crate::replay::energy_gaps::Status::Missing)
                    .count(),
            )
        })
        .collect();
    let gap_notes: Vec<String> = an
        .energy
        .iter()
        .filter(|e| !e.gaps.is_empty())
        .map(|e| {
            let estimated = e.gaps.iter().filter(|g| g.estimated).count();
            let missing = e.gaps.len() - estimated;
            format!(
                "energy {}: {} gaps in the readings: {estimated} long pauses whose counter delta was kept and spread by time (`estimated` in power, attributed but not fitted), {missing} spans unknown (a reset, or a pause the counter may have wrapped across: `missing`, null energy, neither fitted nor attributed)",
                e.name,
                e.gaps.len()
            )
        })
        .collect();
    an.energy = Vec::new();
    an.grid = an.grid.outline();
    crate::memory::release_free_heap();
    let an: &Analysis = an;
    written.activations = activations_part;
    files.extend(attr_files);
    notes.extend(at.notes.iter().cloned());
    let models = crate::derived::model_errors::mean_errors(&written)?;
    let model = crate::summary::summary_model(&models);
    let policy = args.idle_policy[0].as_str();
    let (t_fn, functions) =
        crate::derived::functions::table(&written, &run, &host, (&model, policy))?;
    files.push(t_fn.write(out, p)?);
    crate::memory::phase("derived: functions");
    files.push(crate::derived::comparison::write(
        &written, &run, &host, out, p,
    )?);
    crate::memory::phase("derived (polars)");
    files.push(quality.table().write(out, p)?);
    notes.extend(quality.notes());
    for c in &an.rep.per_cpu {
        let s = &c.stats;
        if s.lost_records > 0 {
            notes.push(format!("CPU {}: {} perf records lost while recording; the spans across them are not charged", c.cpu, s.lost_records));
        }
        if s.throttled > 0 {
            notes.push(format!("CPU {}: the kernel throttled sampling {} times (raise kernel.perf_event_max_sample_rate or lower --freq); the spans until sampling resumed are not charged", c.cpu, s.throttled));
        }
        if s.unknown_ids > 0 {
            notes.push(format!("CPU {}: {} records named event ids of another perf session running at the same time; not decoded", c.cpu, s.unknown_ids));
        }
        if s.decode_errors > 0 {
            notes.push(format!(
                "CPU {}: {} perf blocks could not be decoded to their end ({})",
                c.cpu, s.decode_errors, s.first_error
            ));
        }
    }
    notes.extend(gap_notes);
    let sums = crate::derived::accounting::function_sums(&written, &model, policy)?;
    let accounting = crate::summary::accounting(&at, &sums, &model, policy, &written.keys);
    Ok(Summary {
        run,
        host,
        seconds,
        energy,
        torn: an.l.torn.clone(),
        energy_sources: an
            .l
            .info
            .sources
            .iter()
            .filter(|s| s.kind == "energy" && s.status == pws_trace::records::SourceStatus::Used)
            .map(|s| s.name.clone())
            .collect(),
        activations,
        cold,
        prewarmed,
        containers,
        function_containers,
        perf_records: an.rep.per_cpu.iter().map(|c| c.stats.records).sum(),
        perf_samples: an
            .rep
            .per_cpu
            .iter()
            .map(|c| c.stats.group_samples + c.stats.tracepoints)
            .sum(),
        models,
        protocol: at.protocol,
        functions,
        accounting,
        summary_model: model,
        summary_policy: policy.to_owned(),
        steal_irq: an.rep.steal_irq.as_ref().map(|r| r.json()),
        notes,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::ClockPair;

    fn pair(mono_s: u64, offset_ns: u64) -> ClockPair {
        ClockPair {
            monotonic_ns: mono_s * 1_000_000_000,
            realtime_ns: 1_700_000_000_000_000_000 + mono_s * 1_000_000_000 + offset_ns,
            uncertainty_ns: 100,
        }
    }

    #[test]
    fn a_wall_clock_step_is_noted() {
        let steady = [pair(1, 0), pair(2, 300_000), pair(3, 0)];
        assert_eq!(
            clock_note(&steady),
            None,
            "0.3 ms of slew is NTP's normal work"
        );
        let stepped = [pair(1, 0), pair(2, 0), pair(3, 25_000_000)];
        let n = clock_note(&stepped).unwrap();
        assert!(n.contains("25.0 ms"), "{n}");
        assert_eq!(clock_note(&[pair(1, 0)]), None);
    }

    /// Pinned: a change here renames every part of existing results. The values are XXH3-64
    /// of the bytes, as the reference implementation (python `xxhash.xxh3_64`) gives them.
    #[test]
    fn part_names_are_xxh3_of_the_path_bytes() {
        assert_eq!(twox_hash::XxHash3_64::oneshot(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(
            part_name_of(Path::new("/data/exp1/node-1/exp1.pws")),
            "part-a4cad47b25365324"
        );
        assert_eq!(
            part_name_of(Path::new("/data/exp1/nœud-1/exp1.pws")),
            "part-ed7ca15f756060e6"
        );
    }
}
