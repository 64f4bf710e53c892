//! PowerAPI hwpc-sensor reports as an input of `pws-analyze INPUT… -o DIR`: the reports become
//! what a trace's replay gives — energy readings, each CPU's usage per interval and cgroup, the
//! cgroups' lifetimes — so the same tables, models and idle policies run on them.
//!
//! What each part of the reports becomes:
//! - Spans: the sensor reads and resets its counters at every tick, so a report covers the
//!   time since its target's previous report (a target's first report, since the previous
//!   tick). The input's first tick covers the machine-wide target's `time_enabled` (the time
//!   since the sensor enabled its events), at most the median tick spacing. Report timestamps
//!   (epoch milliseconds of the sensor's clock) are the trace clock, mapped 1:1 onto UTC.
//! - Energy: the machine-wide target's `rapl` group (the first CPU of each socket, as powerapi
//!   reads it): per-tick deltas in 2^-32 J summed into one cumulative counter per socket and
//!   event, read by the sensor through the perf power PMU, so measured.
//! - A target's usage: its `core` group (the group SmartWatts reads targets from), per CPU.
//!   CPU time is the increase of `time_enabled`: for a cgroup event the kernel advances the
//!   event's time only while a task of the cgroup (or of a descendant) runs on the event's CPU
//!   (`perf_cgroup_event_time`, `update_cgrp_time_from_event`), so that increase is the
//!   cgroup's CPU time there. Counters are the values, scaled by enabled/running where the
//!   kernel multiplexed the group.
//! - The machine-wide target (`all`; before hwpc-sensor monitored a `system` cgroup, its
//!   machine-wide target was `system`, taken as such when there is no `all` and it carries
//!   RAPL) is the total, not a cgroup. What it counted beyond the targets' sum is the pseudo
//!   cgroup `<outside targets>` (its `core` counters minus the targets'). With its `msr` group,
//!   MPERF/TSC is each CPU's busy share (MPERF advances only in C0): busy time beyond the
//!   targets' is `<outside targets>`'s CPU time, the rest of the span `<idle>`.
//! - Targets are containers: present from their first report to their last, so the idle
//!   policies that split static power among live containers apply to them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use pws_trace::records::{
    ClockPair, ClockSync, CpuInfo, EnergyBlock, EnergyDomain, EnergySample, EnergySeries,
    EnergySource, SourceInfo, SourceStatus, TraceInfo,
};
use pws_trace::{Trace, TraceWriter, WriterOptions};
use rustc_hash::FxHashMap;

use super::hwpc::{self, Report, Times};
use crate::models::smartwatts::{Events, GLOBAL_TARGET};
use crate::replay::cpu::{CpuReplay, Usage, IDLE};
use crate::replay::grid::Grid;
use crate::replay::lifecycle::{Cgroup, Container, Lifecycles};
use crate::replay::{self, Loaded, Replayed};

/// hwpc-sensor's RAPL unit: the perf power PMU's 2^-32 J.
const RAPL_UNIT_J: f64 = 1.0 / 4_294_967_296.0;
/// The group whose per-CPU counters are a target's usage.
const CORE_GROUP: &str = "core";
/// The machine-wide target of hwpc-sensor before `all` (2018 reports, like the CSV fixtures).
const OLD_GLOBAL_TARGET: &str = "system";
/// Name of what the machine-wide target counted beyond the targets.
pub const OUTSIDE: &str = "<outside targets>";
/// `clockid_t` of CLOCK_REALTIME: report timestamps are the sensor's wall clock.
const CLOCK_REALTIME: u32 = 0;
/// The recorder named in the trace info.
const RECORDER: &str = "hwpc-sensor (reports read by pws-analyze)";
/// Energy samples per block of the in-memory trace.
const SAMPLES_PER_BLOCK: usize = 16_384;

/// What one report said about one CPU, over the span it covers.
#[derive(Debug)]
struct Piece {
    start: u64,
    end: u64,
    cpu: u32,
    key: u64,
    usage: Usage,
}

/// A target: a cgroup key, and when it was reported.
#[derive(Debug)]
struct Target {
    name: Arc<str>,
    key: u64,
    /// Start of the span of its first report, and that report's tick.
    first_start: u64,
    first_tick: usize,
    last_ts: u64,
    last_tick: usize,
    /// Its last report's time (the start of its next report's span).
    prev_ts: u64,
}

/// hwpc-sensor reports, read and turned into per-CPU pieces of usage; [`HwpcInput::replay`]
/// places them on the grid of an interval.
#[derive(Debug)]
pub struct HwpcInput {
    loaded: Loaded,
    pieces: Vec<Piece>,
    columns: Vec<String>,
    targets: Vec<Target>,
    outside: Option<u64>,
    /// The first tick's start, then every tick.
    bounds: Vec<u64>,
}

/// The parts of an analysis an hwpc input gives.
#[derive(Debug)]
pub struct Replay {
    pub grid: Grid,
    pub life: Lifecycles,
    pub rep: Replayed,
    pub cgroup_path: HashMap<u64, String>,
    /// The sensor's ticks, for SmartWatts.
    pub sensor_ticks: SensorTicks,
}

/// What SmartWatts needs to know of the sensor's ticks to see them as smartwatts does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SensorTicks {
    /// The median step between the reports' timestamps, in whole ms (the period hwpc-sensor
    /// was run with); None with a single tick.
    pub period_ms: Option<u32>,
    /// Every interval of the grid is one tick of the sensor (`--interval` merged none).
    pub intervals_are_ticks: bool,
}

impl SensorTicks {
    fn new(bounds: &[u64], grid_len: usize) -> Self {
        // bounds[0] is the start of the first report's span, not a report: left out.
        let mut steps: Vec<u64> = bounds
            .get(1..)
            .unwrap_or_default()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect();
        steps.sort_unstable();
        let period_ms = steps
            .get(steps.len() / 2)
            .map(|&ns| ((ns + 500_000) / 1_000_000).clamp(1, u64::from(u32::MAX)) as u32);
        SensorTicks {
            period_ms,
            intervals_are_ticks: grid_len + 1 == bounds.len(),
        }
    }
}

/// Reads the reports (a directory of CSV files or a JSON file): errors name the file and line
/// of the report at fault.
pub fn open(path: &Path) -> Result<HwpcInput> {
    let hwpc::Reports { reports, warnings } = hwpc::read(path)?;
    let mut notes = warnings;
    let n_reports = reports.len();
    let sensor = one_sensor(&reports, path)?;
    let global = global_target(&reports, &mut notes);
    let ticks = by_tick(reports, &mut notes)?;
    let first = first_span(&ticks, global.as_deref())?;
    let columns = Columns::new(&ticks);
    let mut b = Builder::new(global.clone(), &columns);
    let mut bounds = vec![ticks[0].0 - first];
    for (k, (t, reports)) in ticks.iter().enumerate() {
        let tick_start = *bounds.last().expect("a bound");
        b.tick(k, tick_start, *t, reports)?;
        bounds.push(*t);
    }
    let Builder {
        pieces,
        targets,
        cpus,
        series,
        outside,
        no_core,
        unknown_rapl,
        excerpt,
        no_times,
        ..
    } = b;
    let mut no_core: Vec<_> = no_core.into_iter().collect();
    no_core.sort();
    if !no_core.is_empty() {
        notes.push(format!(
            "hwpc: target(s) {} have no `{CORE_GROUP}` group: no usage for them",
            no_core.join(", ")
        ));
    }
    let mut unknown_rapl: Vec<_> = unknown_rapl.into_iter().collect();
    unknown_rapl.sort();
    if !unknown_rapl.is_empty() {
        notes.push(format!(
            "hwpc: RAPL event(s) {} of no known domain left out",
            unknown_rapl.join(", ")
        ));
    }
    if excerpt > 0 {
        notes.push(format!(
            "hwpc: {excerpt} first report(s) of a target on a CPU have a time_enabled longer than twice their span: the reports start after the sensor did, so that CPU time is unknown and counted 0 (their counters are kept)"
        ));
    }
    if no_times > 0 {
        notes.push(format!(
            "hwpc: {no_times} report(s) of a target on a CPU have no time_enabled: their CPU time is unknown and counted 0"
        ));
    }
    notes.push(format!(
        "hwpc-sensor reports of sensor {sensor}: {n_reports} reports, {} ticks, {} targets{}",
        ticks.len(),
        targets.len(),
        match &global {
            Some(g) => format!(", machine-wide target `{g}`"),
            None => String::new(),
        }
    ));
    let energy: Vec<EnergySeries> = series
        .into_iter()
        .map(|((socket, name), (domain, samples))| EnergySeries {
            source: EnergySource::PerfPowerPmu,
            domain,
            index: socket,
            name,
            unit_joules: RAPL_UNIT_J,
            wrap: 0,
            samples,
        })
        .collect();
    let info = trace_info(path, &sensor, global.as_deref(), &cpus, &energy, &bounds);
    let trace = in_memory_trace(&info, &energy, &bounds)?;
    let mut loaded = replay::load_trace(trace, path, false)?;
    loaded.notes.extend(notes);
    Ok(HwpcInput {
        loaded,
        pieces,
        columns: columns.names,
        targets,
        outside,
        bounds,
    })
}

impl HwpcInput {
    /// The reports on the grid of `interval`: tick times kept at least `interval` apart (the
    /// last one always kept), each report's usage spread over the intervals its span
    /// overlaps, in proportion.
    pub fn replay(self, interval: Duration) -> Result<(Loaded, Replay)> {
        let step = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        let grid = Grid::from_readings(self.bounds.iter().copied(), step)
            .context("the hwpc reports span no time")?;
        let width = self.columns.len();
        let mut per_cpu: BTreeMap<u32, FxHashMap<(usize, u64), Usage>> = BTreeMap::new();
        for p in &self.pieces {
            let cells = per_cpu.entry(p.cpu).or_default();
            let len = (p.end - p.start) as f64;
            // CPU time split so that the parts add up to the whole exactly.
            let (mut done, mut given) = (0f64, 0u64);
            grid.split(p.start, p.end, |i, x, y| {
                let share = (y - x) as f64 / len;
                done += share;
                let upto = (p.usage.cpu_ns as f64 * done).round() as u64;
                let ns = upto.min(p.usage.cpu_ns).saturating_sub(given);
                given += ns;
                let u = cells.entry((i, p.key)).or_default();
                u.cpu_ns += ns;
                if u.counters.len() < width {
                    u.counters.resize(width, 0.0);
                }
                for (c, v) in u.counters.iter_mut().zip(&p.usage.counters) {
                    *c += v * share;
                }
            });
        }
        let rep = Replayed {
            columns: self.columns,
            per_cpu: per_cpu
                .into_iter()
                .map(|(cpu, cells)| CpuReplay {
                    cpu,
                    cells: crate::replay::cpu::sorted_cells(cells),
                    ..CpuReplay::default()
                })
                .collect(),
            per_package: Default::default(),
            segments: Default::default(),
            steal_irq: None,
        };
        let n_ticks = self.bounds.len() - 1;
        let mut life = Lifecycles::default();
        let mut cgroup_path = HashMap::new();
        for t in &self.targets {
            // Present from the span of its first report; gone after its last, unless that was
            // the last tick of the input.
            let created = (t.first_tick > 0).then_some(t.first_start);
            let destroyed = (t.last_tick + 1 < n_ticks).then_some(t.last_ts);
            life.cgroups.push(Cgroup {
                id: t.key,
                hierarchy: 0,
                path: t.name.to_string(),
                existed_at_start: t.first_tick == 0,
                created,
                destroyed,
                frozen: Default::default(),
                paused_sources: Default::default(),
            });
            life.containers.push(Container {
                container_id: t.name.to_string(),
                cgroup: Some(life.cgroups.len() - 1),
                created,
                destroyed,
                ..Container::default()
            });
            cgroup_path.insert(t.key, t.name.to_string());
        }
        if let Some(k) = self.outside {
            cgroup_path.insert(k, OUTSIDE.to_owned());
        }
        let sensor_ticks = SensorTicks::new(&self.bounds, grid.len());
        Ok((
            self.loaded,
            Replay {
                grid,
                life,
                rep,
                cgroup_path,
                sensor_ticks,
            },
        ))
    }
}

/// One input is one machine: reports of several sensors are refused.
fn one_sensor(reports: &[Report], path: &Path) -> Result<String> {
    let mut names: Vec<&str> = reports.iter().map(|r| &*r.sensor).collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [one] => Ok((*one).to_owned()),
        _ => bail!(
            "{}: reports of {} sensors ({}): one input is one machine, give each sensor's reports as their own input",
            path.display(),
            names.len(),
            names.join(", ")
        ),
    }
}

/// The machine-wide target: `all`, else an old sensor's `system` carrying RAPL.
fn global_target(reports: &[Report], notes: &mut Vec<String>) -> Option<Arc<str>> {
    if reports.iter().any(|r| &*r.target == GLOBAL_TARGET) {
        return Some(Arc::from(GLOBAL_TARGET));
    }
    let old = reports
        .iter()
        .any(|r| &*r.target == OLD_GLOBAL_TARGET && r.groups.iter().any(|g| &*g.name == "rapl"));
    if old {
        notes.push(format!(
            "hwpc: no `{GLOBAL_TARGET}` target: `{OLD_GLOBAL_TARGET}` (with RAPL) taken as the machine-wide target, as hwpc-sensor named it before 2019"
        ));
        return Some(Arc::from(OLD_GLOBAL_TARGET));
    }
    notes.push(format!(
        "hwpc: no machine-wide target (`{GLOBAL_TARGET}`): no energy readings, and nothing is known outside the targets"
    ));
    None
}

/// Reports grouped by tick (ns since the epoch), in time order; a second report of a target
/// at one tick replaces the first, with a warning.
fn by_tick(mut reports: Vec<Report>, notes: &mut Vec<String>) -> Result<Vec<(u64, Vec<Report>)>> {
    reports.sort_by_key(|r| r.timestamp_ms);
    let mut ticks: Vec<(u64, Vec<Report>)> = Vec::new();
    for r in reports {
        let ns = u64::try_from(r.timestamp_ms)
            .ok()
            .and_then(|ms| ms.checked_mul(1_000_000))
            .ok_or_else(|| {
                anyhow!(
                    "{}: timestamp {} ms is not a time since 1970",
                    r.origin,
                    r.timestamp_ms
                )
            })?;
        if ticks.last().is_none_or(|(t, _)| *t != ns) {
            ticks.push((ns, Vec::new()));
        }
        let tick = &mut ticks.last_mut().expect("a tick").1;
        match tick.iter_mut().find(|x| x.target == r.target) {
            Some(earlier) => {
                notes.push(format!(
                    "{}: a second report of target {} at tick {} ms replaces the one of {}",
                    r.origin, r.target, r.timestamp_ms, earlier.origin
                ));
                *earlier = r;
            }
            None => tick.push(r),
        }
    }
    if ticks.is_empty() {
        bail!("no hwpc report");
    }
    Ok(ticks)
}

/// How long the first tick is: the machine-wide target's time since its events were enabled
/// (the sensor's first read), at most the median tick spacing (the reports may start long
/// after the sensor did); without it, the spacing.
fn first_span(ticks: &[(u64, Vec<Report>)], global: Option<&str>) -> Result<u64> {
    let mut steps: Vec<u64> = ticks.windows(2).map(|w| w[1].0 - w[0].0).collect();
    steps.sort_unstable();
    let spacing = steps.get(steps.len() / 2).copied();
    let enabled = ticks[0]
        .1
        .iter()
        .find(|r| Some(&*r.target) == global)
        .and_then(|r| {
            r.groups
                .iter()
                .flat_map(|g| g.times.iter().filter_map(|(_, t)| t.enabled))
                .max()
        })
        .filter(|&e| e > 0);
    let d = match (enabled, spacing) {
        (Some(e), Some(s)) => e.min(s),
        (Some(e), None) => e,
        (None, Some(s)) => s,
        (None, None) => bail!(
            "one tick only, and no time_enabled in its machine-wide report: the time the reports cover is unknown"
        ),
    };
    // The first tick's span starts before its report: not before the epoch.
    if ticks[0].0 == 0 {
        bail!("the first report's timestamp is 0: hwpc-sensor timestamps are ms since the epoch, and the span before the first report cannot start before it");
    }
    Ok(d.min(ticks[0].0))
}

/// Counter columns: the `core` groups' events, in order of first appearance, named as
/// pws-record names the same generic events where the hwpc (libpfm4) name is one of them.
struct Columns {
    names: Vec<String>,
    of: HashMap<Arc<str>, usize>,
}

impl Columns {
    fn new(ticks: &[(u64, Vec<Report>)]) -> Self {
        let mut raw: Vec<Arc<str>> = Vec::new();
        let mut of: HashMap<Arc<str>, usize> = HashMap::new();
        let core = ticks
            .iter()
            .flat_map(|(_, rs)| rs.iter())
            .flat_map(|r| r.groups.iter().filter(|g| &*g.name == CORE_GROUP));
        for g in core {
            for (_, cpus) in &g.sockets {
                for (_, ev) in cpus {
                    for name in ev.names() {
                        if !of.contains_key(name) {
                            of.insert(Arc::from(name), raw.len());
                            raw.push(Arc::from(name));
                        }
                    }
                }
            }
        }
        let generic: Vec<Option<&str>> = raw.iter().map(|r| generic_name(r)).collect();
        let names = raw
            .iter()
            .zip(&generic)
            .map(|(r, g)| match g {
                // Renamed only when no other column has, or takes, that name.
                Some(g)
                    if generic.iter().filter(|x| **x == Some(*g)).count() == 1
                        && !raw.iter().any(|x| &**x == *g) =>
                {
                    (*g).to_owned()
                }
                _ => r.to_string(),
            })
            .collect();
        Self { names, of }
    }

    /// A CPU's events as a row of counters, scaled by `scale`; negative values are refused.
    fn row(&self, ev: &Events, scale: f64, origin: &hwpc::Origin, cpu: u32) -> Result<Vec<f64>> {
        let mut row = vec![0.0; self.names.len()];
        for (name, v) in ev.iter() {
            if v < 0 {
                bail!("{origin}: cpu {cpu}: event `{name}` is negative ({v})");
            }
            if let Some(&i) = self.of.get(name) {
                row[i] = v as f64 * scale;
            }
        }
        Ok(row)
    }
}

/// pws-record's name of a generic event hwpc-sensor configs name with libpfm4's name.
fn generic_name(libpfm: &str) -> Option<&'static str> {
    Some(match libpfm {
        "INSTRUCTIONS_RETIRED"
        | "INSTRUCTION_RETIRED"
        | "INST_RETIRED:ANY"
        | "INST_RETIRED:ANY_P"
        | "RETIRED_INSTRUCTIONS" => "instructions",
        "CPU_CLK_THREAD_UNHALTED:THREAD_P"
        | "CPU_CLK_UNHALTED:THREAD_P"
        | "CPU_CLK_UNHALTED:THREAD"
        | "UNHALTED_CORE_CYCLES"
        | "CYCLES_NOT_IN_HALT" => "cycles",
        // The architectural LLC-misses event, what perf's generic `cache-misses` counts.
        "LLC_MISSES" => "cache-misses",
        _ => return None,
    })
}

/// The RAPL domain of an hwpc (libpfm4) RAPL event.
fn rapl_domain(event: &str) -> Option<EnergyDomain> {
    Some(match event {
        "RAPL_ENERGY_PKG" => EnergyDomain::Package,
        "RAPL_ENERGY_DRAM" => EnergyDomain::Dram,
        "RAPL_ENERGY_CORES" => EnergyDomain::Cores,
        // PP1, as pws-record files perf's `energy-gpu`.
        "RAPL_ENERGY_GPU" => EnergyDomain::Uncore,
        "RAPL_ENERGY_PSYS" => EnergyDomain::Psys,
        _ => return None,
    })
}

/// The state carried from tick to tick while the reports are read.
struct Builder<'c> {
    global: Option<Arc<str>>,
    columns: &'c Columns,
    pieces: Vec<Piece>,
    targets: Vec<Target>,
    index: HashMap<Arc<str>, usize>,
    /// (target, CPU) → the core group's last times.
    times: HashMap<(Arc<str>, u32), Times>,
    /// CPU → socket.
    cpus: BTreeMap<u32, u32>,
    /// (socket, RAPL event) → (domain, cumulative readings).
    series: BTreeMap<(u32, String), (EnergyDomain, Vec<EnergySample>)>,
    prev_global: Option<u64>,
    outside: Option<u64>,
    next_key: u64,
    no_core: HashSet<String>,
    unknown_rapl: HashSet<String>,
    excerpt: u64,
    no_times: u64,
}

impl<'c> Builder<'c> {
    fn new(global: Option<Arc<str>>, columns: &'c Columns) -> Self {
        Self {
            global,
            columns,
            pieces: Vec::new(),
            targets: Vec::new(),
            index: HashMap::new(),
            times: HashMap::new(),
            cpus: BTreeMap::new(),
            series: BTreeMap::new(),
            prev_global: None,
            outside: None,
            next_key: 1,
            no_core: HashSet::new(),
            unknown_rapl: HashSet::new(),
            excerpt: 0,
            no_times: 0,
        }
    }

    /// One tick at `t`, the previous one (or the first tick's start) at `tick_start`: targets
    /// first, then the machine-wide target, which needs their sums.
    fn tick(&mut self, k: usize, tick_start: u64, t: u64, reports: &[Report]) -> Result<()> {
        let global = self.global.clone();
        let is_global = |r: &Report| global.as_deref() == Some(&*r.target);
        // CPU → the targets' CPU time and counters.
        let mut sums: HashMap<u32, (u64, Vec<f64>)> = HashMap::new();
        for r in reports.iter().filter(|r| !is_global(r)) {
            let (key, start) = self.target(r, k, tick_start, t);
            let Some(core) = r.groups.iter().find(|g| &*g.name == CORE_GROUP) else {
                self.no_core.insert(r.target.to_string());
                continue;
            };
            for (socket, cpus) in &core.sockets {
                for (cpu, ev) in cpus {
                    self.cpus.entry(*cpu).or_insert(*socket);
                    let span = t - start;
                    let (ns, scale) =
                        self.cpu_time((r.target.clone(), *cpu), core.times_of(*cpu), span, true);
                    let counters = self.columns.row(ev, scale, &r.origin, *cpu)?;
                    let s = sums
                        .entry(*cpu)
                        .or_insert_with(|| (0, vec![0.0; counters.len()]));
                    s.0 += ns;
                    for (a, b) in s.1.iter_mut().zip(&counters) {
                        *a += b;
                    }
                    // Targets are reported on every CPU: `usage` has rows for what ran.
                    if ns == 0 && counters.iter().all(|c| *c == 0.0) {
                        continue;
                    }
                    self.pieces.push(Piece {
                        start,
                        end: t,
                        cpu: *cpu,
                        key,
                        usage: Usage {
                            cpu_ns: ns,
                            counters: counters.into(),
                        },
                    });
                }
            }
        }
        if let Some(g) = reports.iter().find(|r| is_global(r)) {
            let start = self.prev_global.unwrap_or(tick_start);
            self.global_report(g, start, t, &sums)?;
            self.prev_global = Some(t);
        }
        Ok(())
    }

    /// A target's key and the start of its report's span.
    fn target(&mut self, r: &Report, k: usize, tick_start: u64, t: u64) -> (u64, u64) {
        match self.index.get(&r.target) {
            Some(&i) => {
                let x = &mut self.targets[i];
                let start = x.prev_ts;
                x.prev_ts = t;
                x.last_ts = t;
                x.last_tick = k;
                (x.key, start)
            }
            None => {
                let key = self.key();
                self.index.insert(r.target.clone(), self.targets.len());
                self.targets.push(Target {
                    name: r.target.clone(),
                    key,
                    first_start: tick_start,
                    first_tick: k,
                    last_ts: t,
                    last_tick: k,
                    prev_ts: t,
                });
                (key, tick_start)
            }
        }
    }

    fn key(&mut self) -> u64 {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    /// CPU time of a report over `span` from its times, and the factor its counters are
    /// scaled by. Times are totals since the events were enabled: the increase since the
    /// previous report, or the total itself on a first report (or after the sensor reopened
    /// the events, when the total went down).
    /// `counted`: whether a missing or pre-dated `time_enabled` goes into the notes' tallies
    /// (not for the machine-wide target, whose CPU time is not used).
    fn cpu_time(
        &mut self,
        key: (Arc<str>, u32),
        now: Times,
        span: u64,
        counted: bool,
    ) -> (u64, f64) {
        let prev = self.times.insert(key, now);
        let inc = |now: Option<u64>, before: Option<u64>| {
            now.map(|n| match before {
                Some(b) if b <= n => n - b,
                _ => n,
            })
        };
        let enabled = inc(now.enabled, prev.and_then(|p| p.enabled));
        let running = inc(now.running, prev.and_then(|p| p.running));
        let scale = match (enabled, running) {
            (Some(e), Some(r)) if r > 0 && r < e => e as f64 / r as f64,
            _ => 1.0,
        };
        let ns = match enabled {
            None => {
                self.no_times += u64::from(counted);
                0
            }
            // A total far longer than the span: the sensor ran before the reports start.
            Some(e) if prev.is_none() && e > span.saturating_mul(2) => {
                self.excerpt += u64::from(counted);
                0
            }
            // Reads are not exactly at the tick times: never more than the span.
            Some(e) => e.min(span),
        };
        (ns, scale)
    }

    /// The machine-wide report over [start, t): RAPL readings, and per CPU what the targets
    /// do not explain (`sums`: the targets' CPU time and counters per CPU).
    fn global_report(
        &mut self,
        g: &Report,
        start: u64,
        t: u64,
        sums: &HashMap<u32, (u64, Vec<f64>)>,
    ) -> Result<()> {
        if let Some(rapl) = g.groups.iter().find(|x| &*x.name == "rapl") {
            for (socket, cpus) in &rapl.sockets {
                // One CPU per socket reads RAPL; a second would count the package again.
                let Some((_, ev)) = cpus.first() else {
                    continue;
                };
                for (name, v) in ev.iter() {
                    let Some(domain) = rapl_domain(name) else {
                        self.unknown_rapl.insert(name.to_owned());
                        continue;
                    };
                    let v = u64::try_from(v).map_err(|_| {
                        anyhow!(
                            "{}: socket {socket}: RAPL event `{name}` is negative ({v})",
                            g.origin
                        )
                    })?;
                    let (_, samples) = self
                        .series
                        .entry((*socket, name.to_owned()))
                        .or_insert_with(|| {
                            (
                                domain,
                                vec![EnergySample {
                                    ts_ns: start,
                                    raw: 0,
                                }],
                            )
                        });
                    let last = samples.last().map_or(0, |s| s.raw);
                    let raw = last
                        .checked_add(v)
                        .ok_or_else(|| anyhow!("{}: RAPL event `{name}` overflows", g.origin))?;
                    samples.push(EnergySample { ts_ns: t, raw });
                }
            }
        }
        let span = t - start;
        // CPU → busy time, from MPERF/TSC.
        let mut busy: BTreeMap<u32, u64> = BTreeMap::new();
        if let Some(msr) = g.groups.iter().find(|x| &*x.name == "msr") {
            for (socket, cpus) in &msr.sockets {
                for (cpu, ev) in cpus {
                    if let (Some(m), Some(tsc)) = (ev.get("MPERF"), ev.get("TSC")) {
                        if tsc > 0 && m >= 0 {
                            let share = (m as f64 / tsc as f64).min(1.0);
                            busy.insert(*cpu, (share * span as f64).round() as u64);
                            self.cpus.entry(*cpu).or_insert(*socket);
                        }
                    }
                }
            }
        }
        // CPU → the machine-wide counters.
        let mut total: BTreeMap<u32, Vec<f64>> = BTreeMap::new();
        if let Some(core) = g.groups.iter().find(|x| &*x.name == CORE_GROUP) {
            for (socket, cpus) in &core.sockets {
                for (cpu, ev) in cpus {
                    self.cpus.entry(*cpu).or_insert(*socket);
                    let (_, scale) =
                        self.cpu_time((g.target.clone(), *cpu), core.times_of(*cpu), span, false);
                    total.insert(*cpu, self.columns.row(ev, scale, &g.origin, *cpu)?);
                }
            }
        }
        let cpus: Vec<u32> = busy.keys().chain(total.keys()).copied().collect();
        let mut done = HashSet::new();
        for cpu in cpus {
            if !done.insert(cpu) {
                continue;
            }
            let (t_ns, t_counters) = sums.get(&cpu).cloned().unwrap_or_default();
            let b = busy.get(&cpu).copied();
            let counters: Vec<f64> = match total.get(&cpu) {
                Some(all) => all
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (a - t_counters.get(i).copied().unwrap_or(0.0)).max(0.0))
                    .collect(),
                None => vec![0.0; self.columns.names.len()],
            };
            let ns = b.map_or(0, |b| b.saturating_sub(t_ns));
            if ns > 0 || counters.iter().any(|c| *c > 0.0) {
                let key = match self.outside {
                    Some(k) => k,
                    None => {
                        let k = self.key();
                        self.outside = Some(k);
                        k
                    }
                };
                self.pieces.push(Piece {
                    start,
                    end: t,
                    cpu,
                    key,
                    usage: Usage {
                        cpu_ns: ns,
                        counters: counters.into(),
                    },
                });
            }
            if let Some(b) = b {
                let idle = span.saturating_sub(b.max(t_ns));
                if idle > 0 {
                    self.pieces.push(Piece {
                        start,
                        end: t,
                        cpu,
                        key: IDLE,
                        usage: Usage {
                            cpu_ns: idle,
                            counters: Default::default(),
                        },
                    });
                }
            }
        }
        Ok(())
    }
}

fn trace_info(
    path: &Path,
    sensor: &str,
    global: Option<&str>,
    cpus: &BTreeMap<u32, u32>,
    energy: &[EnergySeries],
    bounds: &[u64],
) -> TraceInfo {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let format = if path.is_dir() { "csv" } else { "json" };
    let mut metadata = vec![
        ("source".to_owned(), "hwpc-sensor".to_owned()),
        ("converted_from".to_owned(), file_name.clone()),
        ("hwpc_format".to_owned(), format.to_owned()),
    ];
    if let Some(g) = global {
        metadata.push(("hwpc_global_target".to_owned(), g.to_owned()));
    }
    let rapl: Vec<String> = energy
        .iter()
        .map(|s| format!("{} socket {}", s.name, s.index))
        .collect();
    TraceInfo {
        hostname: sensor.to_owned(),
        recorder: RECORDER.into(),
        clock: CLOCK_REALTIME,
        start_monotonic_ns: bounds[0],
        start_realtime_ns: bounds[0],
        cpus: cpus
            .iter()
            .map(|(&cpu, &package)| CpuInfo {
                cpu,
                online: true,
                package,
                die: u32::MAX,
                core: u32::MAX,
                numa_node: u32::MAX,
            })
            .collect(),
        sources: vec![
            SourceInfo {
                kind: "perf".into(),
                name: "hwpc-sensor".into(),
                status: SourceStatus::Used,
                detail: format!(
                    "{file_name}: per-target `{CORE_GROUP}` counters per CPU and tick, CPU time from their time_enabled"
                ),
            },
            SourceInfo {
                kind: "energy".into(),
                name: "hwpc-sensor rapl".into(),
                status: if energy.is_empty() {
                    SourceStatus::Unavailable
                } else {
                    SourceStatus::Used
                },
                detail: if energy.is_empty() {
                    "no RAPL readings in the machine-wide target's reports".into()
                } else {
                    format!("RAPL through the perf power PMU: {}", rapl.join(", "))
                },
            },
            SourceInfo {
                kind: "activations".into(),
                name: "hwpc-sensor".into(),
                status: SourceStatus::Unavailable,
                detail: "hwpc-sensor reports hold no function activations".into(),
            },
        ],
        metadata,
        ..TraceInfo::default()
    }
}

/// A trace holding what the reports give besides usage: trace info, the clock (report times
/// are the sensor's wall clock) and the RAPL counters.
fn in_memory_trace(info: &TraceInfo, energy: &[EnergySeries], bounds: &[u64]) -> Result<Trace> {
    let mut w = TraceWriter::new(Vec::new(), WriterOptions::default())?;
    w.write(info)?;
    w.write(&ClockSync {
        pairs: vec![ClockPair {
            monotonic_ns: bounds[0],
            realtime_ns: bounds[0],
            uncertainty_ns: 0,
        }],
    })?;
    let longest = energy.iter().map(|s| s.samples.len()).max().unwrap_or(0);
    for from in (0..longest).step_by(SAMPLES_PER_BLOCK) {
        let series = energy
            .iter()
            .filter(|s| s.samples.len() > from)
            .map(|s| EnergySeries {
                samples: s.samples[from..(from + SAMPLES_PER_BLOCK).min(s.samples.len())].to_vec(),
                name: s.name.clone(),
                ..*s
            })
            .collect();
        w.write(&EnergyBlock { series })?;
    }
    let end = *bounds.last().expect("a bound");
    Ok(Trace::from_vec(w.finish(end)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(e: u64, r: u64) -> Times {
        Times {
            enabled: Some(e),
            running: Some(r),
        }
    }

    #[test]
    fn cpu_time_is_the_increase_of_time_enabled() {
        let cols = Columns {
            names: Vec::new(),
            of: HashMap::new(),
        };
        let mut b = Builder::new(Some(Arc::from("all")), &cols);
        let k = || (Arc::<str>::from("web"), 3);
        // First report: the total since the events were enabled.
        assert_eq!(b.cpu_time(k(), times(400, 400), 1000, true), (400, 1.0));
        // Then increases; multiplexed half the time: counters doubled.
        assert_eq!(b.cpu_time(k(), times(700, 550), 1000, true), (300, 2.0));
        // Never more than the span.
        assert_eq!(b.cpu_time(k(), times(2000, 1850), 1000, true).0, 1000);
        // Reopened events (the total went down): the new total.
        assert_eq!(b.cpu_time(k(), times(50, 50), 1000, true).0, 50);
        // A first report far longer than its span: the reports are an excerpt.
        let k2 = || (Arc::<str>::from("db"), 3);
        assert_eq!(b.cpu_time(k2(), times(85_000, 85_000), 1000, true).0, 0);
        assert_eq!(b.excerpt, 1);
        assert_eq!(b.cpu_time(k2(), times(85_600, 85_600), 1000, true).0, 600);
        assert_eq!(b.cpu_time(k2(), Times::default(), 1000, true).0, 0);
        assert_eq!(b.no_times, 1);
        // The machine-wide target's CPU time is not used: not tallied.
        assert_eq!(b.cpu_time(k2(), Times::default(), 1000, false).0, 0);
        assert_eq!(b.no_times, 1);
    }

    #[test]
    fn a_first_report_at_time_zero_is_an_error_not_an_underflow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("reports.json");
        let line = |ts: u64| {
            format!(
                r#"{{"timestamp":{ts},"sensor":"s","target":"all","groups":{{"rapl":{{"0":{{"0":{{"RAPL_ENERGY_PKG":4294967296}}}}}}}}}}"#
            )
        };
        std::fs::write(&p, format!("{}\n{}\n", line(0), line(1000))).unwrap();
        let Err(err) = open(&p) else {
            panic!("a first report at 0 was accepted")
        };
        assert!(format!("{err:#}").contains("timestamp is 0"), "{err:#}");
    }

    #[test]
    fn generic_events_get_pws_names_unless_ambiguous() {
        let report = |events: &[&str]| {
            let ev: Events = events.iter().map(|e| (Arc::from(*e), 1)).collect();
            Report {
                timestamp_ms: 1,
                sensor: Arc::from("s"),
                target: Arc::from("t"),
                groups: vec![hwpc::Group {
                    name: Arc::from("core"),
                    sockets: vec![(0, vec![(0, ev)])],
                    times: Vec::new(),
                }],
                origin: hwpc::Origin {
                    file: Arc::from("x"),
                    line: 1,
                    report: None,
                },
            }
        };
        let c = Columns::new(&[(
            1,
            vec![report(&["INSTRUCTIONS_RETIRED", "LLC_MISSES", "MY_EVENT"])],
        )]);
        assert_eq!(c.names, ["instructions", "cache-misses", "MY_EVENT"]);
        let c = Columns::new(&[(
            1,
            vec![report(&["INSTRUCTIONS_RETIRED", "INST_RETIRED:ANY"])],
        )]);
        assert_eq!(c.names, ["INSTRUCTIONS_RETIRED", "INST_RETIRED:ANY"]);
    }
}
