//! `pws-analyze TRACE… -o DIR`: each trace replayed (traces in parallel, and each trace's CPUs
//! in parallel), its lifecycles rebuilt, and the tables written as one hive-partitioned dataset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::manifest::Input;
use crate::models::attribute::{self, IdlePolicy, Live, Share, UNASSIGNED};
use crate::models::dataset::Dataset;
use crate::models::model::{LinearOffline, Model, ShareModel};
use crate::progress::{InputProgress, Progress};
use crate::replay::cpu::{Usage, Window, IDLE, UNKNOWN};
use crate::replay::energy::{self, Energy};
use crate::replay::grid::Grid;
use crate::replay::lifecycle::{self, Lifecycles};
use crate::replay::{self, Loaded, Replayed};
use crate::tables::{Partition, Table};
use crate::timefmt::ClockMap;

#[derive(Debug, clap::Args)]
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
    /// merged; without energy readings, the fixed step.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub interval: Duration,
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
}

pub fn run(args: &RunArgs) -> Result<ExitCode> {
    let inputs = crate::manifest::expand(&args.traces, args.manifest.as_deref())?;
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

/// (energy counter, model, mean held-out MAE in W, mean MAPE in %).
pub type ModelError = (String, String, f64, f64);
/// (function, model, idle policy, domain).
type FnKey = (String, String, String, String);
/// (activation, domain, package, idle policy) → (model, joules).
type SideBySide = BTreeMap<(usize, String, u32, &'static str), Vec<(String, f64)>>;

/// What one trace gave, for the printed summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub run: String,
    pub host: String,
    pub seconds: f64,
    pub energy: Vec<(String, f64, bool)>,
    pub activations: usize,
    pub cold: usize,
    pub containers: usize,
    /// Perf records decoded, and samples among them.
    pub perf_records: u64,
    pub perf_samples: u64,
    pub models: Vec<ModelError>,
    pub functions: Vec<FunctionLine>,
    pub summary_policy: String,
    pub notes: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl Summary {
    fn models_summary_name(&self) -> &str {
        let has = |m: &str| self.models.iter().any(|x| x.1 == m);
        if has("truth") {
            "truth"
        } else if has("linear-offline") {
            "linear-offline"
        } else {
            self.models.first().map_or("", |x| x.1.as_str())
        }
    }

    fn json(&self, path: &Path) -> serde_json::Value {
        serde_json::json!({
            "trace": path.display().to_string(),
            "run": self.run,
            "host": self.host,
            "seconds": self.seconds,
            "activations": self.activations,
            "cold": self.cold,
            "containers": self.containers,
            "perf_records": self.perf_records,
            "perf_samples": self.perf_samples,
            "energy": self.energy.iter().map(|(n, j, m)| serde_json::json!({"counter": n, "joules": j, "measured": m})).collect::<Vec<_>>(),
            "models": self.models.iter().map(|(d, m, mae, mape)| serde_json::json!({"domain": d, "model": m, "mae_w": mae, "mape": mape})).collect::<Vec<_>>(),
            "notes": self.notes,
            "files": self.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        })
    }

    fn text(&self, path: &Path) -> String {
        // hwpc-sensor reports have no perf stream: saying "0 perf records" would read as a loss.
        let replayed = if self.perf_records > 0 {
            format!(
                "; {} perf records ({} samples) replayed",
                self.perf_records, self.perf_samples
            )
        } else {
            String::new()
        };
        let mut s = format!(
            "{}: run {} on {}, {:.1} s: {} activations ({} cold) in {} containers{replayed}\n",
            path.display(),
            self.run,
            self.host,
            self.seconds,
            self.activations,
            self.cold,
            self.containers,
        );
        for (name, j, measured) in &self.energy {
            s += &format!(
                "  energy {name}: {j:.3} J{}\n",
                if *measured {
                    ""
                } else {
                    " (SIMULATED, not a measurement)"
                }
            );
        }
        if self.energy.is_empty() {
            s += "  energy: none in this trace (recorded with --energy none, or no source found): power and attribution tables are empty\n";
        }
        if !self.functions.is_empty() {
            s += &format!(
                "  energy per function ({} domain, model {}, idle policy {}; J):\n",
                self.functions[0].domain,
                self.models_summary_name(),
                self.summary_policy
            );
            s += "    function                      acts  cold   mean/act   cold/act   warm/act  keep-alive  keep-alive share\n";
            let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.3}"));
            for l in &self.functions {
                let share = l
                    .keep_alive_j
                    .filter(|_| l.total_j > 0.0)
                    .map_or("-".to_owned(), |k| {
                        format!("{:.1} %", 100.0 * k / l.total_j)
                    });
                s += &format!(
                    "    {:<28} {:>5} {:>5} {:>10} {:>10} {:>10} {:>11} {:>17}\n",
                    l.function,
                    l.activations,
                    l.cold,
                    f(l.mean_j),
                    f(l.cold_j),
                    f(l.warm_j),
                    f(l.keep_alive_j),
                    share
                );
            }
        }
        if !self.models.is_empty() {
            s += "  models (held-out error vs the energy readings):\n";
            for (dom, m, mae, mape) in &self.models {
                s += &format!("    {dom:<12} {m:<15} MAE {mae:8.3} W  MAPE {mape:6.2} %\n");
            }
        }
        for n in &self.notes {
            s += &format!("  note: {n}\n");
        }
        s
    }
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
    pub(crate) life: Lifecycles,
    pub(crate) rep: Replayed,
    pub(crate) energy: Vec<Energy>,
    pub(crate) cgroup_path: HashMap<u64, String>,
    /// Activation index → usage (exact windows, or from intervals for time-overlap joins).
    pub(crate) act_usage: Vec<Usage>,
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
    write_tables(&an, args, &p)
}

/// One trace replayed on the grid of `interval`: lifecycles, the activation join, CPU time per
/// interval and activation, energy per interval. `run` overrides the trace's run id.
/// `part-<16 hex>`: a hash of the input's absolute path, stable across runs of the analyzer.
fn part_name(path: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    // DefaultHasher::new() has fixed keys: the same path always gives the same name.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    abs.hash(&mut h);
    format!("part-{:016x}", h.finish())
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
    interval: Duration,
    run: Option<&str>,
) -> Result<Analysis> {
    let (l, r) = h.replay(interval)?;
    let energy = energy::on_grid(&l.energy, &r.grid);
    Ok(Analysis {
        part: part_name(path),
        run: run_id(&l, path, run),
        host: l.info.hostname.clone(),
        clock: ClockMap::new(l.clock.clone()),
        l,
        grid: r.grid,
        life: r.life,
        rep: r.rep,
        energy,
        cgroup_path: r.cgroup_path,
        act_usage: Vec::new(),
    })
}

pub(crate) fn replay_trace(
    path: &Path,
    interval: Duration,
    skip_bad_blocks: bool,
    run: Option<&str>,
    progress: &InputProgress<'_>,
) -> Result<Analysis> {
    let l = match open_input(path, skip_bad_blocks)? {
        Opened::Trace(l) => l,
        Opened::Hwpc(h) => return replay_hwpc(h, path, interval, run),
    };
    let clock = ClockMap::new(l.clock.clone());
    let (side, inflated) = replay::scan_side_band(&l, progress)?;
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
    let grid = make_grid(&l, interval)?;
    // First join without CPU time (exact links only), to charge CPU to their windows.
    let no_cpu = |_: u64, _: u64, _: u64| 0;
    let life = lifecycle::build(cgroups.clone(), &l.containers, &l.activations, &no_cpu);
    let windows = activation_windows(&life);
    let rep = replay::replay_perf(&l, &grid, &windows, inflated.as_ref(), progress)?;
    drop(inflated);
    // Then the time-overlap fallback for activations no log linked, from per-interval usage.
    let cells = merged_cells(&rep);
    let cpu_in = |cg: u64, a: u64, b: u64| cpu_between(&grid, &cells, cg, a, b).0;
    let life = lifecycle::build(cgroups, &l.containers, &l.activations, &cpu_in);
    let mut act_usage = Vec::with_capacity(life.activations.len());
    for (i, a) in life.activations.iter().enumerate() {
        let u = match (a.method, a.container.and_then(|c| life.cgroup_id(c))) {
            (lifecycle::JoinMethod::TimeOverlap, Some(cg)) => {
                let (ns, counters) =
                    cpu_between(&grid, &cells, cg, a.record.start_ns, a.record.end_ns);
                Usage {
                    cpu_ns: ns,
                    counters,
                }
            }
            _ => rep.activations.get(&i).cloned().unwrap_or_default(),
        };
        act_usage.push(u);
    }
    let energy = energy::on_grid(&l.energy, &grid);
    Ok(Analysis {
        part: part_name(path),
        run: run_id(&l, path, run),
        host: l.info.hostname.clone(),
        l,
        clock,
        grid,
        life,
        rep,
        energy,
        cgroup_path,
        act_usage,
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

/// The kernel's CPU time of the activation's container over the activation, where the platform
/// measured it (pws-load's `cgroupUsageUsec` annotation; OpenWhisk has none).
fn platform_cpu_ns(raw: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    v["annotations"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == "cgroupUsageUsec")?["value"]
        .as_u64()
        .map(|us| us * 1000)
}

/// The grid: energy readings thinned to at least `interval` apart, else a fixed step over the
/// trace's span.
fn make_grid(l: &Loaded, interval: Duration) -> Result<Grid> {
    let step = interval.as_nanos().max(1) as u64;
    let times = energy::reading_times(&l.energy);
    let mut kept: Vec<u64> = Vec::new();
    for t in times {
        if kept.last().is_none_or(|&k| t >= k + step) {
            kept.push(t);
        }
    }
    if let Some(g) = Grid::from_times(kept) {
        return Ok(g);
    }
    let start = l.info.start_monotonic_ns;
    let end = l.end_ns.max(start + step);
    Grid::fixed(start, end, step).context("the trace spans no time")
}

fn activation_windows(life: &Lifecycles) -> HashMap<u64, Vec<Window>> {
    let mut w: HashMap<u64, Vec<Window>> = HashMap::new();
    for (i, a) in life.activations.iter().enumerate() {
        let Some(cg) = a.container.and_then(|c| life.cgroup_id(c)) else {
            continue;
        };
        if a.record.start_ns == 0 || a.record.end_ns <= a.record.start_ns {
            continue;
        }
        w.entry(cg).or_default().push(Window {
            start: a.record.start_ns,
            end: a.record.end_ns,
            activation: i,
        });
    }
    for ws in w.values_mut() {
        ws.sort_by_key(|x| x.start);
    }
    w
}

/// (interval, cgroup) → usage over all CPUs.
fn merged_cells(rep: &Replayed) -> HashMap<(usize, u64), Usage> {
    let mut m: HashMap<(usize, u64), Usage> = HashMap::new();
    for c in &rep.per_cpu {
        for (k, u) in &c.cells {
            m.entry(*k).or_default().add(u);
        }
    }
    m
}

/// CPU time and counters of a cgroup between `a` and `b`, from interval cells pro rata.
fn cpu_between(
    grid: &Grid,
    cells: &HashMap<(usize, u64), Usage>,
    cg: u64,
    a: u64,
    b: u64,
) -> (u64, Vec<f64>) {
    let mut ns = 0f64;
    let mut counters: Vec<f64> = Vec::new();
    grid.split(a, b, |i, x, y| {
        if let Some(u) = cells.get(&(i, cg)) {
            let (s, e) = grid.span(i);
            let share = (y - x) as f64 / (e - s) as f64;
            ns += u.cpu_ns as f64 * share;
            if counters.len() < u.counters.len() {
                counters.resize(u.counters.len(), 0.0);
            }
            for (c, v) in counters.iter_mut().zip(&u.counters) {
                *c += v * share;
            }
        }
    });
    (ns.round() as u64, counters)
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

fn cgroup_name(an: &Analysis, key: u64) -> String {
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

fn write_tables(an: &Analysis, args: &RunArgs, p: &Partition) -> Result<Summary> {
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
        .f64("energy_j")
        .f64("power_w");
    for e in &an.energy {
        for i in 0..an.grid.len() {
            let (a, b) = an.grid.span(i);
            let secs = (b - a) as f64 / 1e9;
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
                .push_f64(Some(e.joules[i]))
                .push_f64(Some(e.joules[i] / secs));
            t.flush_if_full(out, p)?;
        }
    }
    files.push(t.write(out, p)?);

    // usage: one row per interval, package and cgroup.
    let package_of: HashMap<u32, u32> = an.l.info.cpus.iter().map(|c| (c.cpu, c.package)).collect();
    let mut per_pkg: BTreeMap<(usize, u32, u64), Usage> = BTreeMap::new();
    for c in &an.rep.per_cpu {
        let pkg = package_of.get(&c.cpu).copied().unwrap_or(0);
        for ((i, cg), u) in &c.cells {
            per_pkg.entry((*i, pkg, *cg)).or_default().add(u);
        }
    }
    let mut t = Table::keyed("usage")
        .ts("interval_start")
        .ts("interval_end")
        .u64("package")
        .str("cgroup")
        .u64("cgroup_id")
        .u64("cpu_ns");
    for name in &an.rep.columns {
        t = t.f64(name);
    }
    for ((i, pkg, cg), u) in &per_pkg {
        let (a, b) = an.grid.span(*i);
        t.push_key(&run, &host)
            .push_ts(ts(a))
            .push_ts(ts(b))
            .push_u64(Some((*pkg).into()))
            .push_str(&cgroup_name(an, *cg))
            .push_u64((*cg != IDLE && *cg != UNKNOWN).then_some(*cg))
            .push_u64(Some(u.cpu_ns));
        for k in 0..an.rep.columns.len() {
            t.push_f64(Some(u.counters.get(k).copied().unwrap_or(0.0)));
        }
        t.flush_if_full(out, p)?;
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
        .u64("activations");
    for c in &an.life.containers {
        let g = c.cgroup.map(|i| &an.life.cgroups[i]);
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
            .push_u64(Some(c.activations));
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
    for (a, u) in an.life.activations.iter().zip(&an.act_usage) {
        let r = &a.record;
        let is_cold = matches!(a.start_type, pws_trace::records::StartType::Cold);
        cold += usize::from(is_cold);
        let run_ms = r
            .duration_ms
            .map(|d| d.saturating_sub(r.init_ms.unwrap_or(0)));
        let cid = a
            .container
            .map(|c| an.life.containers[c].container_id.as_str())
            .unwrap_or("");
        t.push_key(&run, &host)
            .push_str(&r.activation_id)
            .push_str(&r.action)
            .push_str(&r.namespace)
            .push_str(cid)
            .push_str(a.method.as_str())
            .push_str(&a.start_type.to_string())
            .push_bool(Some(is_cold))
            .push_u64(r.wait_ms)
            .push_u64(r.init_ms)
            .push_u64(run_ms)
            .push_ts((r.start_ns > 0).then_some(r.start_ns).and_then(ts))
            .push_ts((r.end_ns > 0).then_some(r.end_ns).and_then(ts))
            .push_u64(r.status_code)
            .push_u64(Some(u.cpu_ns))
            .push_u64(platform_cpu_ns(&r.raw));
        for k in 0..an.rep.columns.len() {
            t.push_f64(Some(u.counters.get(k).copied().unwrap_or(0.0)));
        }
    }
    files.push(t.write(out, p)?);

    let mut notes = an.l.notes.clone();
    notes.extend(clock_note(&an.l.clock));
    if let Some(st) = &an.l.statistics {
        for s in st.sources.iter().filter(|s| s.errors > 0) {
            notes.push(format!(
                "recorder source {}: {} errors while recording, last: {}",
                s.name, s.errors, s.last_error
            ));
        }
    }
    let (attr_files, attr_notes, attributed) = attribution_tables(an, args, &run, &host, p)?;
    files.extend(attr_files);
    notes.extend(attr_notes);
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
    for e in &an.energy {
        if !e.gaps.is_empty() {
            notes.push(format!(
                "energy {}: {} gaps in the readings, left out",
                e.name,
                e.gaps.len()
            ));
        }
    }
    Ok(Summary {
        run,
        host,
        seconds: (an.grid.end() - an.grid.start()) as f64 / 1e9,
        energy: an
            .energy
            .iter()
            .map(|e| {
                (
                    format!("{} {} {}", e.source, e.domain, e.package),
                    e.total_j(),
                    e.is_measured(),
                )
            })
            .collect(),
        activations: an.life.activations.len(),
        cold,
        containers: an.life.containers.len(),
        perf_records: an.rep.per_cpu.iter().map(|c| c.stats.records).sum(),
        perf_samples: an
            .rep
            .per_cpu
            .iter()
            .map(|c| c.stats.group_samples + c.stats.tracepoints)
            .sum(),
        models: attributed.models,
        functions: attributed.functions,
        summary_policy: args.idle_policy[0].as_str().to_owned(),
        notes,
        files,
    })
}

/// Models fitted and compared per energy counter, and the energy attributed under every model
/// and idle policy: tables `models`, `model_eval`, `attribution`, `activation_energy`,
/// `functions`.
fn attribution_tables(
    an: &Analysis,
    args: &RunArgs,
    run: &str,
    host: &str,
    p: &Partition,
) -> Result<(Vec<PathBuf>, Vec<String>, Attributed)> {
    let ts = |ns: u64| {
        an.clock
            .to_realtime_ns(ns)
            .and_then(|v| i64::try_from(v).ok())
    };
    let package_of: HashMap<u32, u32> = an.l.info.cpus.iter().map(|c| (c.cpu, c.package)).collect();
    let spans: Vec<(u64, u64)> = (0..an.grid.len()).map(|i| an.grid.span(i)).collect();
    let live = live_containers(an, &spans);
    let mut t_models = Table::keyed("models")
        .str("domain")
        .u64("package")
        .str("model")
        .str("source")
        .str("param")
        .f64("value");
    let mut t_eval = Table::keyed("model_eval")
        .str("domain")
        .u64("package")
        .str("model")
        .str("source")
        .u64("fold")
        .u64("intervals")
        .f64("mae_w")
        .f64("mape")
        .f64("rmse_w");
    let mut t_attr = Table::keyed("attribution")
        .ts("interval_start")
        .ts("interval_end")
        .str("domain")
        .u64("package")
        .str("cgroup")
        .str("container_id")
        .str("model")
        .str("idle_policy")
        .str("source")
        .f64("power_w")
        .f64("energy_j")
        .f64("dynamic_j")
        .f64("idle_j");
    let mut t_act = Table::keyed("activation_energy")
        .str("activation_id")
        .str("action")
        .str("domain")
        .u64("package")
        .str("model")
        .str("idle_policy")
        .str("source")
        .f64("energy_j")
        .f64("dynamic_j")
        .f64("idle_j");
    let mut notes = Vec::new();
    let mut summary = Vec::new();
    // Container of each cgroup key, and activation windows per cgroup.
    let container_of: HashMap<u64, usize> = an
        .life
        .containers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.cgroup.map(|g| (an.life.cgroups[g].id, i)))
        .collect();
    // (function key, model, policy, domain) → per-activation joules, for the functions table.
    let mut per_fn: BTreeMap<FnKey, Vec<(f64, bool)>> = BTreeMap::new();
    // (activation, domain, package, policy) → (model, joules): every model side by side.
    let mut side_by_side: SideBySide = BTreeMap::new();
    let mut keep_alive: BTreeMap<FnKey, f64> = BTreeMap::new();
    for e in &an.energy {
        // psys covers the whole machine; the other domains one package.
        let whole = matches!(e.domain, pws_trace::records::EnergyDomain::Psys);
        let mut cells: HashMap<(usize, u64), Usage> = HashMap::new();
        for c in &an.rep.per_cpu {
            if !whole && package_of.get(&c.cpu).copied().unwrap_or(0) != e.package {
                continue;
            }
            for ((i, cg), u) in &c.cells {
                cells.entry((*i, *cg)).or_default().add(u);
            }
        }
        let ds = Dataset::new(
            an.rep.columns.clone(),
            &spans,
            &e.joules,
            cells.into_iter().map(|((i, cg), u)| (i, cg, u)),
        );
        let source = if e.is_measured() {
            "measured"
        } else {
            "simulated"
        };
        let domain = e.domain.to_string();
        let ratio = ShareModel::counter_ratio(&ds, &args.ratio_counter);
        if let Some(why) = &ratio.fallback {
            notes.push(format!("{domain} {}: counter-ratio: {why}", e.package));
        }
        let mut models: Vec<Box<dyn Model>> = vec![
            Box::new(ShareModel::cpu_share()),
            Box::new(ratio),
            Box::new(LinearOffline::new(
                &ds,
                args.ridge,
                args.features.as_deref(),
            )),
        ];
        let mut sw = crate::models::smartwatts_model::SmartWattsModel::new(
            crate::models::smartwatts::SmartWattsConfig::default(),
        );
        sw.fit(&ds, &[]);
        if let Some(why) = &sw.note {
            notes.push(format!("{domain} {}: {why}", e.package));
        }
        models.push(Box::new(sw));
        if let Some(t) = crate::models::truth::Truth::from_metadata(&an.l.info.metadata, &ds) {
            models.push(Box::new(t));
        }
        for m in models.iter_mut() {
            let errs = attribute::evaluate(m.as_mut(), &ds, args.folds);
            let name = m.name();
            for fe in &errs {
                t_eval
                    .push_key(run, host)
                    .push_str(&domain)
                    .push_u64(Some(e.package.into()))
                    .push_str(&name)
                    .push_str(source)
                    .push_u64(Some(fe.fold as u64))
                    .push_u64(Some(fe.n as u64))
                    .push_f64(Some(fe.mae_w))
                    .push_f64(Some(fe.mape))
                    .push_f64(Some(fe.rmse_w));
            }
            // Folds where the model estimated nothing (an online model still learning) do
            // not count; each fold weighs by the intervals it scored.
            let scored: Vec<_> = errs.iter().filter(|x| x.n > 0).collect();
            let n: f64 = scored.iter().map(|x| x.n as f64).sum();
            if n > 0.0 {
                let mean = |f: fn(&attribute::FoldError) -> f64| {
                    let (mut sum, mut w) = (0.0, 0.0);
                    for x in scored.iter().filter(|x| f(x).is_finite()) {
                        sum += f(x) * x.n as f64;
                        w += x.n as f64;
                    }
                    if w > 0.0 {
                        sum / w
                    } else {
                        f64::NAN
                    }
                };
                summary.push((
                    format!("{domain} {}", e.package),
                    name.clone(),
                    mean(|x| x.mae_w),
                    mean(|x| x.mape),
                ));
            }
            for (k, v) in m.params() {
                t_models
                    .push_key(run, host)
                    .push_str(&domain)
                    .push_u64(Some(e.package.into()))
                    .push_str(&name)
                    .push_str(source)
                    .push_str(&k)
                    .push_f64(Some(v));
            }
            for &policy in &args.idle_policy {
                let shares = attribute::attribute(&ds, m.as_ref(), policy, &live);
                for sh in &shares {
                    let (a, b) = spans[sh.interval];
                    let (name_cg, cid) = if sh.cgroup == UNASSIGNED {
                        ("<unassigned>".to_owned(), String::new())
                    } else {
                        (
                            cgroup_name(an, sh.cgroup),
                            container_of
                                .get(&sh.cgroup)
                                .map(|&c| an.life.containers[c].container_id.clone())
                                .unwrap_or_default(),
                        )
                    };
                    let j = sh.dynamic_j + sh.idle_j;
                    t_attr
                        .push_key(run, host)
                        .push_ts(ts(a))
                        .push_ts(ts(b))
                        .push_str(&domain)
                        .push_u64(Some(e.package.into()))
                        .push_str(&name_cg)
                        .push_str(&cid)
                        .push_str(&name)
                        .push_str(policy.as_str())
                        .push_str(source)
                        .push_f64(Some(j / ((b - a) as f64 / 1e9)))
                        .push_f64(Some(j))
                        .push_f64(Some(sh.dynamic_j))
                        .push_f64(Some(sh.idle_j));
                    t_attr.flush_if_full(&args.output, p)?;
                }
                let acts = activation_energy(an, &ds, m.as_ref(), &shares, &live);
                for (ai, (dj, ij)) in acts.iter().enumerate() {
                    let a = &an.life.activations[ai];
                    if a.container.is_none() {
                        continue;
                    }
                    t_act
                        .push_key(run, host)
                        .push_str(&a.record.activation_id)
                        .push_str(&a.record.action)
                        .push_str(&domain)
                        .push_u64(Some(e.package.into()))
                        .push_str(&name)
                        .push_str(policy.as_str())
                        .push_str(source)
                        .push_f64(Some(dj + ij))
                        .push_f64(Some(*dj))
                        .push_f64(Some(*ij));
                    let key = (
                        a.record.namespace.clone() + "/" + &a.record.action,
                        name.clone(),
                        policy.as_str().to_owned(),
                        domain.clone(),
                    );
                    let cold = matches!(a.start_type, pws_trace::records::StartType::Cold);
                    per_fn.entry(key).or_default().push((dj + ij, cold));
                    side_by_side
                        .entry((ai, domain.clone(), e.package, policy.as_str()))
                        .or_default()
                        .push((name.clone(), dj + ij));
                }
                // Keep-alive: what each container was given outside its activations.
                for (ci, c) in an.life.containers.iter().enumerate() {
                    let Some(cg) = c.cgroup.map(|g| an.life.cgroups[g].id) else {
                        continue;
                    };
                    if c.action.is_empty() {
                        continue;
                    }
                    let total: f64 = shares
                        .iter()
                        .filter(|s| s.cgroup == cg)
                        .map(|s| s.dynamic_j + s.idle_j)
                        .sum();
                    let inside: f64 = an
                        .life
                        .activations
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| a.container == Some(ci))
                        .map(|(ai, _)| acts[ai].0 + acts[ai].1)
                        .sum();
                    let key = (
                        c.namespace.clone() + "/" + &c.action,
                        name.clone(),
                        policy.as_str().to_owned(),
                        domain.clone(),
                    );
                    *keep_alive.entry(key).or_default() += (total - inside).max(0.0);
                }
            }
        }
    }
    let mut fn_summary = Vec::new();
    let mut t_fn = Table::keyed("functions")
        .str("function")
        .str("domain")
        .str("model")
        .str("idle_policy")
        .u64("activations")
        .u64("cold_starts")
        .f64("energy_mean_j")
        .f64("energy_p50_j")
        .f64("energy_p99_j")
        .f64("cold_energy_mean_j")
        .f64("warm_energy_mean_j")
        .f64("keep_alive_j");
    for ((f, model, policy, domain), v) in &per_fn {
        let mut js: Vec<f64> = v.iter().map(|x| x.0).collect();
        js.sort_by(f64::total_cmp);
        let mean = |xs: &[f64]| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
        let q = |p: f64| {
            js.get(((js.len() as f64 - 1.0) * p).round() as usize)
                .copied()
        };
        let cold: Vec<f64> = v.iter().filter(|x| x.1).map(|x| x.0).collect();
        let warm: Vec<f64> = v.iter().filter(|x| !x.1).map(|x| x.0).collect();
        let ka = keep_alive
            .get(&(f.clone(), model.clone(), policy.clone(), domain.clone()))
            .copied();
        t_fn.push_key(run, host)
            .push_str(f)
            .push_str(domain)
            .push_str(model)
            .push_str(policy)
            .push_u64(Some(v.len() as u64))
            .push_u64(Some(cold.len() as u64))
            .push_f64(mean(&js))
            .push_f64(q(0.5))
            .push_f64(q(0.99))
            .push_f64(mean(&cold))
            .push_f64(mean(&warm))
            .push_f64(ka);
        if *model == summary_model(&per_fn) && policy == args.idle_policy[0].as_str() {
            fn_summary.push(FunctionLine {
                function: f.clone(),
                domain: domain.clone(),
                activations: v.len(),
                cold: cold.len(),
                mean_j: mean(&js),
                cold_j: mean(&cold),
                warm_j: mean(&warm),
                keep_alive_j: ka,
                total_j: js.iter().sum::<f64>() + ka.unwrap_or(0.0),
            });
        }
    }
    let out = &args.output;
    let files = vec![
        t_models.write(out, p)?,
        t_eval.write(out, p)?,
        t_attr.write(out, p)?,
        t_act.write(out, p)?,
        t_fn.write(out, p)?,
        comparison_table(an, &side_by_side).write(out, p)?,
    ];
    Ok((
        files,
        notes,
        Attributed {
            models: summary,
            functions: fn_summary,
        },
    ))
}

/// The model the printed summary shows: the ground truth when the trace has one, else
/// linear-offline (the best-informed of the offline models), else the first.
fn summary_model(per_fn: &BTreeMap<FnKey, Vec<(f64, bool)>>) -> String {
    let has = |m: &str| per_fn.keys().any(|k| k.1 == m);
    ["truth", "linear-offline"]
        .into_iter()
        .find(|m| has(m))
        .map(str::to_owned)
        .or_else(|| per_fn.keys().next().map(|k| k.1.clone()))
        .unwrap_or_default()
}

/// What the attribution adds to the printed summary.
#[derive(Debug, Default)]
pub struct Attributed {
    pub models: Vec<ModelError>,
    pub functions: Vec<FunctionLine>,
}

/// One function in the printed summary (one model and the first idle policy asked for).
#[derive(Debug, Clone)]
pub struct FunctionLine {
    pub function: String,
    pub domain: String,
    pub activations: usize,
    pub cold: usize,
    pub mean_j: Option<f64>,
    pub cold_j: Option<f64>,
    pub warm_j: Option<f64>,
    pub keep_alive_j: Option<f64>,
    pub total_j: f64,
}

/// `activation_comparison`: each activation's energy under every model in one row, with the
/// spread between models (max − min, and relative to their mean).
fn comparison_table(an: &Analysis, rows: &SideBySide) -> Table {
    let mut models: Vec<String> = rows
        .values()
        .flat_map(|v| v.iter().map(|(m, _)| m.clone()))
        .collect();
    models.sort();
    models.dedup();
    let mut t = Table::keyed("activation_comparison")
        .str("activation_id")
        .str("action")
        .str("domain")
        .u64("package")
        .str("idle_policy");
    for m in &models {
        t = t.f64(&format!("{m}_j"));
    }
    t = t.f64("spread_j").f64("spread_pct");
    let (run, host) = (an.run.as_str(), an.host.as_str());
    for ((ai, domain, package, policy), v) in rows {
        let a = &an.life.activations[*ai];
        t.push_key(run, host)
            .push_str(&a.record.activation_id)
            .push_str(&a.record.action)
            .push_str(domain)
            .push_u64(Some((*package).into()))
            .push_str(policy);
        for m in &models {
            t.push_f64(v.iter().find(|(n, _)| n == m).map(|(_, j)| *j));
        }
        let js: Vec<f64> = v.iter().map(|(_, j)| *j).collect();
        let (lo, hi) = js
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &j| {
                (l.min(j), h.max(j))
            });
        let mean = js.iter().sum::<f64>() / js.len().max(1) as f64;
        t.push_f64(Some(hi - lo))
            .push_f64((mean > 0.0).then(|| 100.0 * (hi - lo) / mean));
    }
    t
}

/// Each activation's energy in one (model, policy): in every interval it overlaps, the
/// interval's attributed dynamic energy times the activation's own weight (its usage inside
/// its window, through the model) over the weight of everything that ran; and its container's
/// idle share for the part of the container's presence the window covers.
/// (dynamic J, idle J) per activation.
fn activation_energy(
    an: &Analysis,
    ds: &Dataset,
    model: &dyn Model,
    shares: &[Share],
    live: &[Vec<Live>],
) -> Vec<(f64, f64)> {
    let mut by: HashMap<(usize, u64), (f64, f64)> = HashMap::new();
    for s in shares {
        let e = by.entry((s.interval, s.cgroup)).or_default();
        e.0 += s.dynamic_j;
        e.1 += s.idle_j;
    }
    an.life
        .activations
        .iter()
        .enumerate()
        .map(|(ai, a)| {
            let Some(cg) = a.container.and_then(|c| an.life.cgroup_id(c)) else {
                return (0.0, 0.0);
            };
            let (mut d, mut i) = (0.0, 0.0);
            an.grid
                .split(a.record.start_ns, a.record.end_ns, |k, x, y| {
                    let iv = &ds.intervals[k];
                    let secs = iv.secs();
                    let Some((dj, ij)) = by.get(&(k, cg)) else {
                        return;
                    };
                    // The activation's part of its container's dynamic energy: its own usage
                    // through the model over the container's, else by CPU time (a model that
                    // weighs whole targets only, like smartwatts).
                    if let (Some(u), Ok(ci)) = (
                        an.rep.activation_intervals.get(&(ai, k)),
                        iv.cgroups.binary_search_by_key(&cg, |(c, _)| *c),
                    ) {
                        let cont = &iv.cgroups[ci].1;
                        let (wa, wc) = (model.weight(u, secs), model.weight(cont, secs));
                        let f = if wc > 0.0 {
                            wa / wc
                        } else if cont.cpu_ns > 0 {
                            u.cpu_ns as f64 / cont.cpu_ns as f64
                        } else {
                            0.0
                        };
                        d += dj * f.clamp(0.0, 1.0);
                    }
                    let alive = live[k]
                        .iter()
                        .find(|l| l.cgroup == cg)
                        .map_or(1.0, |l| l.alive);
                    let f = (y - x) as f64 / (secs * 1e9) / alive.max(1e-9);
                    i += ij * f.min(1.0);
                });
            (d, i)
        })
        .collect()
}

/// Containers present in each interval: alive and running fractions, memory limit.
fn live_containers(an: &Analysis, spans: &[(u64, u64)]) -> Vec<Vec<Live>> {
    let end = an.grid.end();
    let mut mem: HashMap<usize, f64> = HashMap::new();
    for a in &an.life.activations {
        if let (Some(c), Some(m)) = (a.container, a.record.memory_limit_mb) {
            mem.insert(c, m as f64);
        }
    }
    // A container cgroup with containers below it and no activation of its own (a Kubernetes
    // pod, a load generator's parent cgroup) only groups them: its children pay, not it too.
    let mut parents: HashSet<&str> = HashSet::new();
    for g in an.life.containers.iter().filter_map(|c| c.cgroup) {
        let g = &an.life.cgroups[g];
        if g.hierarchy == 0 {
            let p = g.path.trim_end_matches('/');
            // Every proper ancestor; not the empty prefix before the leading `/`.
            parents.extend(
                p.match_indices('/')
                    .filter(|&(i, _)| i > 0)
                    .map(|(i, _)| &p[..i]),
            );
        }
    }
    let groups_others = |path: &str| parents.contains(path.trim_end_matches('/'));
    let mut live = vec![Vec::new(); spans.len()];
    for (ci, c) in an.life.containers.iter().enumerate() {
        let Some(g) = c.cgroup.map(|g| &an.life.cgroups[g]) else {
            continue;
        };
        if g.hierarchy != 0 || (c.activations == 0 && groups_others(&g.path)) {
            continue;
        }
        let from = c.created.unwrap_or(an.grid.start());
        let to = c.destroyed.unwrap_or(end);
        an.grid.split(from, to, |i, x, y| {
            let (a, b) = spans[i];
            let len = (b - a) as f64;
            let frozen: u64 = g
                .frozen
                .iter()
                .map(|(fa, fb)| {
                    let (fa, fb) = ((*fa).max(x), fb.unwrap_or(end).min(y));
                    fb.saturating_sub(fa)
                })
                .sum();
            live[i].push(Live {
                cgroup: g.id,
                alive: (y - x) as f64 / len,
                running: (y - x).saturating_sub(frozen) as f64 / len,
                memory_mb: mem.get(&ci).copied(),
            });
        });
    }
    live
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
}
