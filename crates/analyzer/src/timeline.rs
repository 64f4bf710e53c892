//! `pws-analyze timeline TRACE -o FILE.json`: a trace as Chrome trace-event JSON, which
//! ui.perfetto.dev and chrome://tracing open, to look at an experiment instead of reading it.
//!
//! Built from the same replay as the tables ([`analyze::replay_trace`]), so the timeline shows
//! what the tables say. Layout:
//! - process "machine": counter tracks, power per energy counter (W) and busy CPUs per package
//!   (CPU time of everything but the idle task over wall time), one value per grid interval;
//! - one process per container (action and short container id): a `container` thread with its
//!   life and, nested in it, its init (cold start); `activations` with each run; `paused` with
//!   the frozen spans (a thread of their own, since they overlap the life slice);
//! - process "unlinked activations": activations no container was found for.
//!
//! A viewer draws the slices of one thread only when they nest or are disjoint, so slices of a
//! row that overlap otherwise (concurrent activations) go on extra threads ("activations 2").
//! Times are µs since the origin: the trace's start, or the first thing drawn if something came
//! earlier; the metadata gives the origin in UTC and where the trace's own start falls.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pws_trace::records::{ClockPair, StartType};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::analyze::{self, Analysis};
use crate::display;
use crate::progress::Progress;
use crate::replay::cpu::IDLE;
use crate::timefmt::ClockMap;

#[derive(Debug, clap::Args)]
pub struct TimelineArgs {
    /// Trace (.pws) to draw.
    #[arg(value_name = "TRACE")]
    pub trace: PathBuf,
    /// Chrome trace-event JSON to write (open it at https://ui.perfetto.dev or chrome://tracing).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Shortest interval of the power and CPU counters ("10ms", "1s", or `auto`: from the
    /// energy counters' update period), as for the tables: energy readings closer than this
    /// are merged; without energy readings, the fixed step.
    #[arg(long, default_value = "auto", value_name = "auto|DURATION")]
    pub interval: crate::quality::interval::IntervalArg,
    /// Skip corrupt blocks and report them, instead of stopping at the first one.
    #[arg(long)]
    pub skip_bad_blocks: bool,
}

/// Process ids: the counters, the activations without a container, then one per container.
const PID_MACHINE: u32 = 1;
const PID_UNLINKED: u32 = 2;
const PID_FIRST_CONTAINER: u32 = 3;

pub fn run(args: &TimelineArgs) -> Result<ExitCode> {
    // Written beside the output and renamed once complete: a failed run leaves no torn JSON
    // that a viewer would half-open. Created before the replay, so a bad output path fails
    // at once.
    let mut part = args.output.clone().into_os_string();
    part.push(".part");
    let part = PathBuf::from(part);
    let file = File::create(&part).with_context(|| format!("cannot create {}", display(&part)))?;
    // The replay's spill files beside the output too, not in a tmpfs /tmp.
    let dir = args.output.parent().filter(|d| !d.as_os_str().is_empty());
    crate::spill::set_dir(dir.unwrap_or(Path::new(".")));
    let written = analyze::replay_trace(
        &args.trace,
        args.interval,
        args.skip_bad_blocks,
        None,
        crate::join::JoinMode::Auto,
        &Progress::hidden().input(&args.trace),
    )
    .with_context(|| format!("replaying {}", display(&args.trace)))
    .and_then(|an| {
        let counts = write(&an, args, BufWriter::new(file))
            .with_context(|| format!("writing {}", display(&args.output)))?;
        std::fs::rename(&part, &args.output).with_context(|| {
            format!(
                "cannot rename {} to {}",
                display(&part),
                display(&args.output)
            )
        })?;
        Ok((an, counts))
    });
    let (an, c) = match written {
        Ok(x) => x,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    println!(
        "{}: {} containers, {} activations ({} unlinked{}), {} pauses, {} power counter(s) ({}) over {} intervals; open it at https://ui.perfetto.dev",
        display(&args.output),
        c.containers,
        c.activations,
        c.unlinked,
        if c.unplaced > 0 {
            format!(", {} without times left out", c.unplaced)
        } else {
            String::new()
        },
        c.pauses,
        an.energy.len(),
        energy_source(&an),
        an.grid.len(),
    );
    for n in &an.l.notes {
        println!("  note: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// What was drawn, for the summary line and the metadata.
#[derive(Debug, Default)]
struct Counts {
    containers: usize,
    activations: usize,
    unlinked: usize,
    /// Activations without placed start and end times: not drawable.
    unplaced: usize,
    pauses: usize,
}

/// "measured", "simulated", both, or "none": simulated energy is never a measurement, and
/// every output derived from it says so.
fn energy_source(an: &Analysis) -> &'static str {
    let measured = an.energy.iter().any(|e| e.is_measured());
    let simulated = an.energy.iter().any(|e| !e.is_measured());
    match (measured, simulated) {
        (true, true) => "measured and simulated",
        (true, false) => "measured",
        (false, true) => "simulated",
        (false, false) => "none",
    }
}

/// Trace-clock instants as µs since the origin, and as UTC.
struct Clock {
    origin: u64,
    end: u64,
    utc: ClockMap,
}

impl Clock {
    fn new(an: &Analysis) -> Self {
        let (mut origin, mut end) = (an.l.info.start_monotonic_ns, an.l.end_ns);
        let mut see = |a: u64, b: u64| {
            origin = origin.min(a);
            end = end.max(b);
        };
        see(an.grid.start(), an.grid.end());
        for a in &an.life.activations {
            if placed(a.record.start_ns, a.record.end_ns) {
                see(a.record.start_ns, a.record.end_ns);
            }
        }
        for c in &an.life.containers {
            for t in [c.created, c.destroyed, c.init_start, c.init_end]
                .into_iter()
                .flatten()
            {
                see(t, t);
            }
        }
        for g in &an.life.cgroups {
            for (a, b) in g.frozen.iter() {
                see(a, b.unwrap_or(a));
            }
        }
        // Without clock-sync pairs, the trace-info block's own pair still places the start.
        let utc = if an.l.clock.is_empty() {
            ClockMap::new(vec![ClockPair {
                monotonic_ns: an.l.info.start_monotonic_ns,
                realtime_ns: an.l.info.start_realtime_ns,
                uncertainty_ns: 0,
            }])
        } else {
            an.clock.clone()
        };
        Self { origin, end, utc }
    }

    fn us(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.origin) as f64 / 1e3
    }

    fn dur_us(a: u64, b: u64) -> f64 {
        b.saturating_sub(a) as f64 / 1e3
    }

    fn utc(&self, ns: u64) -> Value {
        self.utc.to_rfc3339(ns).map_or(Value::Null, Value::String)
    }
}

/// Activation times of 0 mean the recorder could not place them.
fn placed(start: u64, end: u64) -> bool {
    start > 0 && end >= start
}

/// One trace-event. Fields a phase does not use are left out.
#[derive(Serialize)]
struct Event<'a> {
    ph: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    cat: &'a str,
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    tid: Option<u32>,
    /// Scope of an instant event: "t", its thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Value::is_null")]
    args: &'a Value,
}

impl<'a> Event<'a> {
    fn meta(name: &'a str, pid: u32, tid: Option<u32>, args: &'a Value) -> Self {
        Self {
            ph: "M",
            name,
            cat: "",
            ts: 0.0,
            dur: None,
            pid,
            tid,
            s: None,
            args,
        }
    }
}

/// The JSON document written as it goes: events one by one, the metadata at the end (it holds
/// counts known only then), so memory does not grow with the number of events.
struct EventWriter<W: Write> {
    out: W,
    events: u64,
}

impl<W: Write> EventWriter<W> {
    fn new(mut out: W) -> Result<Self> {
        out.write_all(b"{\"traceEvents\":[\n")?;
        Ok(Self { out, events: 0 })
    }

    fn event(&mut self, e: &Event<'_>) -> Result<()> {
        if self.events > 0 {
            self.out.write_all(b",\n")?;
        }
        serde_json::to_writer(&mut self.out, e)?;
        self.events += 1;
        Ok(())
    }

    fn finish(mut self, metadata: &Value) -> Result<()> {
        self.out
            .write_all(b"\n],\"displayTimeUnit\":\"ms\",\"metadata\":")?;
        serde_json::to_writer(&mut self.out, metadata)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()?;
        Ok(())
    }
}

fn write(an: &Analysis, args: &TimelineArgs, out: impl Write) -> Result<Counts> {
    let clock = Clock::new(an);
    let mut w = EventWriter::new(out)?;
    let mut counts = Counts::default();
    counters(an, &clock, &mut w)?;

    // Containers in order of appearance, so the process list reads top-down in time.
    let mut order: Vec<usize> = (0..an.life.containers.len()).collect();
    order.sort_by_key(|&ci| {
        let c = &an.life.containers[ci];
        (c.created.unwrap_or(clock.origin), c.container_id.as_str())
    });
    let mut acts_of: Vec<Vec<usize>> = vec![Vec::new(); an.life.containers.len()];
    let mut unlinked = Vec::new();
    for (ai, a) in an.life.activations.iter().enumerate() {
        if !placed(a.record.start_ns, a.record.end_ns) {
            counts.unplaced += 1;
            continue;
        }
        counts.activations += 1;
        match a.container() {
            Some(ci) => acts_of[ci].push(ai),
            None => unlinked.push(ai),
        }
    }
    counts.unlinked = unlinked.len();
    for (rank, &ci) in order.iter().enumerate() {
        let pid = PID_FIRST_CONTAINER + rank as u32;
        let (name, mut slices) = container_slices(an, &clock, ci, &mut counts);
        slices.extend(acts_of[ci].iter().map(|&ai| activation_slice(an, ai)));
        let cgroup = an.life.containers[ci]
            .cgroup
            .map(|g| an.life.cgroups[g].path.as_str())
            .unwrap_or("");
        let meta = json!({"name": name, "cgroup": cgroup});
        process(&mut w, &clock, pid, pid, &meta, slices)?;
        counts.containers += 1;
    }
    if !unlinked.is_empty() {
        let slices = unlinked
            .iter()
            .map(|&ai| activation_slice(an, ai))
            .collect();
        let meta = json!({"name": "unlinked activations"});
        // Listed after the containers.
        let sort = PID_FIRST_CONTAINER + order.len() as u32;
        process(&mut w, &clock, PID_UNLINKED, sort, &meta, slices)?;
    }
    w.finish(&metadata(an, args, &clock, &counts))?;
    Ok(counts)
}

/// Counter tracks of the "machine" process: each value holds from its interval's start to the
/// next; a 0 after the last interval, where the readings end.
fn counters<W: Write>(an: &Analysis, clock: &Clock, w: &mut EventWriter<W>) -> Result<()> {
    let name = json!({"name": format!("machine: {}", an.host)});
    w.event(&Event::meta("process_name", PID_MACHINE, None, &name))?;
    let sort = json!({"sort_index": 0});
    w.event(&Event::meta("process_sort_index", PID_MACHINE, None, &sort))?;
    let counter = |w: &mut EventWriter<W>, name: &str, cat: &str, t: u64, args: &Value| {
        w.event(&Event {
            ph: "C",
            name,
            cat,
            ts: clock.us(t),
            dur: None,
            pid: PID_MACHINE,
            tid: None,
            s: None,
            args,
        })
    };
    let n = an.grid.len();
    for e in &an.energy {
        let track = power_track(e);
        for i in 0..n {
            let (a, b) = an.grid.span(i);
            // As the `power` table: the interval's joules over its whole length.
            let watts = e.joules[i] / ((b - a) as f64 / 1e9);
            counter(w, &track, "power", a, &json!({ "W": watts }))?;
        }
        counter(w, &track, "power", an.grid.end(), &json!({ "W": 0.0 }))?;
    }

    // Busy CPUs per package: every cgroup but the idle task's, including time no sample could
    // attribute to a cgroup (a task ran then all the same).
    let mut busy: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (&pkg, cells) in &an.rep.per_package {
        let row = busy.entry(pkg).or_insert_with(|| vec![0; n]);
        for c in cells.iter() {
            let (i, cg, u) = c?;
            if cg != IDLE && i < n {
                row[i] += u.cpu_ns;
            }
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    for i in 0..=n {
        let (t, len) = if i < n {
            let (a, b) = an.grid.span(i);
            (a, (b - a) as f64)
        } else {
            (an.grid.end(), 0.0)
        };
        let args: Map<String, Value> = busy
            .iter()
            .map(|(pkg, row)| {
                let v = if i < n { row[i] as f64 / len } else { 0.0 };
                (format!("package {pkg}"), json!(v))
            })
            .collect();
        counter(w, "busy CPUs", "cpu", t, &Value::Object(args))?;
    }
    Ok(())
}

/// The counter track of one energy counter; the source in the name, so a simulated counter
/// is never read as a measured one.
fn power_track(e: &crate::replay::energy::Energy) -> String {
    format!("power {} {} ({})", e.domain, e.package, e.source)
}

/// Rows of a process, each drawn on one or more threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Row {
    Container,
    Activations,
    Paused,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Activations => "activations",
            Self::Paused => "paused",
        }
    }
}

/// A slice before it is placed on a thread.
struct Slice {
    row: Row,
    start: u64,
    end: u64,
    name: String,
    cat: &'static str,
    args: Value,
    /// An instant event at the start as well, with this name (cold starts).
    instant: Option<&'static str>,
}

/// Threads of one row: a slice goes on the first whose open slices it nests in (or which has
/// none open), else on a new one. Slices must come in order of start, longer first on ties.
#[derive(Default)]
struct Lanes {
    /// Per lane, the ends of the slices still open, innermost last.
    open: Vec<Vec<u64>>,
}

impl Lanes {
    fn place(&mut self, start: u64, end: u64) -> usize {
        for (i, open) in self.open.iter_mut().enumerate() {
            while open.last().is_some_and(|&e| e <= start) {
                open.pop();
            }
            if open.last().is_none_or(|&e| e >= end) {
                open.push(end);
                return i;
            }
        }
        self.open.push(vec![end]);
        self.open.len() - 1
    }
}

/// Writes one process: its name and place in the list, its threads' names, its slices.
fn process<W: Write>(
    w: &mut EventWriter<W>,
    clock: &Clock,
    pid: u32,
    sort_index: u32,
    name: &Value,
    mut slices: Vec<Slice>,
) -> Result<()> {
    slices.sort_by_key(|s| (s.row, s.start, Reverse(s.end)));
    let mut lanes: BTreeMap<Row, Lanes> = BTreeMap::new();
    let lane: Vec<usize> = slices
        .iter()
        .map(|s| lanes.entry(s.row).or_default().place(s.start, s.end))
        .collect();
    w.event(&Event::meta("process_name", pid, None, name))?;
    let sort = json!({ "sort_index": sort_index });
    w.event(&Event::meta("process_sort_index", pid, None, &sort))?;
    // Thread ids: rows in order, each row's lanes one after the other, from 1.
    let mut first_tid: BTreeMap<Row, u32> = BTreeMap::new();
    let mut tid = 1;
    for (row, l) in &lanes {
        first_tid.insert(*row, tid);
        for k in 0..l.open.len() {
            let name = match k {
                0 => row.name().to_owned(),
                k => format!("{} {}", row.name(), k + 1),
            };
            let t = Some(tid + k as u32);
            w.event(&Event::meta(
                "thread_name",
                pid,
                t,
                &json!({ "name": name }),
            ))?;
            let sort = json!({ "sort_index": tid + k as u32 });
            w.event(&Event::meta("thread_sort_index", pid, t, &sort))?;
        }
        tid += l.open.len() as u32;
    }
    for (s, k) in slices.iter().zip(lane) {
        let tid = Some(first_tid[&s.row] + k as u32);
        w.event(&Event {
            ph: "X",
            name: &s.name,
            cat: s.cat,
            ts: clock.us(s.start),
            dur: Some(Clock::dur_us(s.start, s.end)),
            pid,
            tid,
            s: None,
            args: &s.args,
        })?;
        if let Some(name) = s.instant {
            w.event(&Event {
                ph: "i",
                name,
                cat: s.cat,
                ts: clock.us(s.start),
                dur: None,
                pid,
                tid,
                s: Some("t"),
                args: &Value::Null,
            })?;
        }
    }
    Ok(())
}

/// A container's process name, and its life, init and paused slices.
fn container_slices(
    an: &Analysis,
    clock: &Clock,
    ci: usize,
    counts: &mut Counts,
) -> (String, Vec<Slice>) {
    let c = &an.life.containers[ci];
    let g = c.cgroup.map(|i| &an.life.cgroups[i]);
    let name = match c.action.as_str() {
        "" => format!("cgroup {}", short_id(&c.container_id)),
        action => format!("{action} {}", short_id(&c.container_id)),
    };
    // Created before the trace or destroyed after it: the life runs to the timeline's edge.
    let from = c.created.unwrap_or(clock.origin);
    let to = c.destroyed.unwrap_or(clock.end).max(from);
    let mut life = Map::new();
    life.insert("container_id".into(), json!(c.container_id));
    life.insert("action".into(), json!(c.action));
    life.insert("namespace".into(), json!(c.namespace));
    if let Some(g) = g {
        life.insert("cgroup".into(), json!(g.path));
        life.insert("cgroup_id".into(), json!(g.id));
        life.insert(
            "paused_ms".into(),
            json!(g.frozen_ns(clock.end) as f64 / 1e6),
        );
    }
    life.insert(
        "created".into(),
        c.created
            .map_or(json!("before the trace"), |t| clock.utc(t)),
    );
    life.insert(
        "destroyed".into(),
        c.destroyed
            .map_or(json!("still alive at the end"), |t| clock.utc(t)),
    );
    life.insert("activations".into(), json!(c.activations));
    let mut slices = vec![Slice {
        row: Row::Container,
        start: from,
        end: to,
        name: "life".into(),
        cat: "container",
        args: Value::Object(life),
        instant: None,
    }];
    if let Some(start) = c.init_start {
        // An init whose end the log never gave is drawn as an instant.
        let end = c.init_end.unwrap_or(start).max(start);
        slices.push(Slice {
            row: Row::Container,
            start,
            end,
            name: "init".into(),
            cat: "init",
            args: json!({
                "init_ms": Clock::dur_us(start, end) / 1e3,
                "ended": c.init_end.is_some(),
            }),
            instant: None,
        });
    }
    for (a, b) in g.into_iter().flat_map(|g| g.frozen.iter()) {
        let end = b.unwrap_or(clock.end).max(a);
        counts.pauses += 1;
        slices.push(Slice {
            row: Row::Paused,
            start: a,
            end,
            name: "paused".into(),
            cat: "paused",
            args: json!({
                "paused_ms": Clock::dur_us(a, end) / 1e3,
                "thawed": b.is_some(),
                "paused_source": g.map(|g| g.paused_sources.label()),
            }),
            instant: None,
        });
    }
    (name, slices)
}

/// One activation's run, named after its action, with what the tables give about it.
fn activation_slice(an: &Analysis, ai: usize) -> Slice {
    let a = &an.life.activations[ai];
    let r = &a.record;
    let mut args = Map::new();
    args.insert("activation_id".into(), json!(r.activation_id.to_string()));
    args.insert("namespace".into(), json!(&*r.namespace));
    args.insert("start_type".into(), json!(a.start_type.to_string()));
    args.insert("join".into(), json!(a.method.as_str()));
    if let Some(ci) = a.container() {
        args.insert(
            "container_id".into(),
            json!(an.life.containers[ci].container_id),
        );
    }
    let optional = [
        ("wait_ms", r.wait_ms()),
        ("init_ms", r.init_ms()),
        ("duration_ms", r.duration_ms()),
        ("status_code", r.status_code()),
        ("memory_limit_mb", r.memory_limit_mb()),
    ];
    for (k, v) in optional {
        if let Some(v) = v {
            args.insert(k.into(), json!(v));
        }
    }
    if let Some(code) = r.status_code() {
        args.insert("status".into(), json!(status(code)));
    }
    let cpu_ns = an.act_usage.cpu_ns(ai);
    args.insert("cpu_ms".into(), json!(cpu_ns as f64 / 1e6));
    Slice {
        row: Row::Activations,
        start: r.start_ns,
        end: r.end_ns,
        name: if r.action.is_empty() {
            "activation".into()
        } else {
            r.action.to_string()
        },
        cat: "activation",
        args: Value::Object(args),
        instant: (a.start_type == StartType::Cold).then_some("cold start"),
    }
}

/// OpenWhisk's status codes.
fn status(code: u64) -> String {
    match code {
        0 => "success".into(),
        1 => "application error".into(),
        2 => "action developer error".into(),
        3 => "whisk internal error".into(),
        c => format!("status {c}"),
    }
}

/// A container id short enough for a track name: the last component of a cgroup path, without
/// a `.scope` suffix; a hex id (after a `docker-`-style prefix) cut to 12 digits as Docker
/// prints it, any other name kept whole.
fn short_id(id: &str) -> &str {
    let last = id.rsplit('/').next().unwrap_or(id);
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let hex = last.rsplit_once('-').map_or(last, |(_, h)| h);
    if hex.len() >= 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        &hex[..12]
    } else {
        last
    }
}

fn metadata(an: &Analysis, args: &TimelineArgs, clock: &Clock, counts: &Counts) -> Value {
    let start = an.l.info.start_monotonic_ns;
    let energy: Vec<Value> = an
        .energy
        .iter()
        .map(|e| {
            json!({
                "track": power_track(e),
                "counter": e.name,
                "source": e.source.to_string(),
                "measured": e.is_measured(),
                "domain": e.domain.to_string(),
                "package": e.package,
                "joules": e.total_j(),
            })
        })
        .collect();
    let mut notes = an.l.notes.clone();
    if an.energy.iter().any(|e| !e.is_measured()) {
        notes.push("energy from a simulated source: not a measurement".into());
    }
    json!({
        "generator": format!("pws-analyze timeline {}", env!("CARGO_PKG_VERSION")),
        "trace": display(&args.trace),
        "run": an.run,
        "host": an.host,
        "start_utc": clock.utc(clock.origin),
        "end_utc": clock.utc(clock.end),
        "span_us": clock.us(clock.end),
        "trace_start_utc": clock.utc(start),
        "trace_start_us": clock.us(start),
        "energy_source": energy_source(an),
        "energy": energy,
        "interval_ms": an.interval.interval.as_secs_f64() * 1e3,
        "intervals": an.grid.len(),
        "containers": counts.containers,
        "activations": counts.activations,
        "unlinked_activations": counts.unlinked,
        "unplaced_activations": counts.unplaced,
        "pauses": counts.pauses,
        "notes": notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_slices_get_their_own_lanes_nested_ones_share() {
        let mut l = Lanes::default();
        // [0,100) holds [10,20) and [20,30); [25,40) lies in [0,100) but overlaps [20,30)
        // without nesting in it: a second lane. [100,110) comes after all: the first again.
        let got: Vec<usize> = [(0, 100), (10, 20), (20, 30), (25, 40), (100, 110)]
            .iter()
            .map(|&(a, b)| l.place(a, b))
            .collect();
        assert_eq!(got, [0, 0, 0, 1, 0]);
        // Partial overlap with the open outer slice: a new lane.
        let mut l = Lanes::default();
        assert_eq!(
            [l.place(0, 50), l.place(40, 60), l.place(45, 55)],
            [0, 1, 1]
        );
    }

    #[test]
    fn short_ids_as_docker_prints_them() {
        let docker = "0123456789abcdef".repeat(4);
        assert_eq!(short_id(&docker), "0123456789ab");
        assert_eq!(
            short_id(&format!("/system.slice/docker-{docker}.scope")),
            "0123456789ab"
        );
        assert_eq!(short_id("/pws-load-18816"), "pws-load-18816");
        assert_eq!(short_id("wsk0_12_guest_float"), "wsk0_12_guest_float");
    }
}
