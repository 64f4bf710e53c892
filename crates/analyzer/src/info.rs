//! `pws-analyze info`: what a trace holds, read without decoding perf records or inflating
//! perf-data blocks, so it stays fast on multi-gigabyte traces.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pws_trace::records::{
    ClockPair, EnergySource, PerfData, SourceStatus, Statistics, TraceInfo, CLOCK_MONOTONIC,
    PERF_DATA_HEADER_LEN,
};
use pws_trace::{BlockKind, ReadOptions, Record, SkippedRegion, Trace};
use serde_json::{json, Value};

use crate::timefmt::{bytes, ClockMap};

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Trace files (.pws) to describe.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
    /// Print JSON instead of text (one object per trace, one per line).
    #[arg(long)]
    json: bool,
    /// Skip corrupt blocks and report them, instead of stopping at the first one.
    #[arg(long)]
    skip_bad_blocks: bool,
}

pub fn run(args: &InfoArgs) -> Result<ExitCode> {
    let opts = ReadOptions {
        skip_bad_blocks: args.skip_bad_blocks,
    };
    let mut code = ExitCode::SUCCESS;
    for (i, path) in args.traces.iter().enumerate() {
        match Summary::read(path, opts) {
            Ok(s) if args.json => println!("{}", s.to_json()),
            Ok(s) => {
                if i > 0 {
                    println!();
                }
                print!("{}", s.to_text());
            }
            Err(e) => {
                eprintln!("pws-analyze: {e:#}");
                if !args.skip_bad_blocks
                    && e.chain().any(|c| {
                        c.downcast_ref::<pws_trace::Error>()
                            .and_then(|e| e.offset())
                            .is_some()
                    })
                {
                    eprintln!("pws-analyze: hint: --skip-bad-blocks reads past corrupt blocks and lists them");
                }
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

#[derive(Debug, Default, Clone, Copy)]
struct KindCount {
    blocks: u64,
    stored: u64,
    raw: u64,
}

/// One GPU's NVML reads (gpu blocks).
#[derive(Debug, Default)]
struct GpuInfo {
    name: String,
    uuid: String,
    mig: bool,
    reads: u64,
    power_reads: u64,
    samples: u64,
    /// Most compute processes seen at one read.
    processes_max: usize,
}

/// A reading's time and its [steal, irq, softirq] in ns.
type Reading = (u64, [f64; 3]);

/// Per-CPU /proc/stat readings (cpu-stat blocks): how many, and each CPU's first and last
/// steal, irq and softirq values in ns.
#[derive(Debug, Default)]
struct CpuStatInfo {
    ticks_per_s: u64,
    /// How the kernel accounts (irq, steal) time.
    accounting: (String, String),
    fields: Vec<String>,
    readings: u64,
    /// cpu → ((first ts, [steal, irq, softirq]), (last ts, …)).
    cpus: BTreeMap<u32, (Reading, Reading)>,
}

impl CpuStatInfo {
    fn add(&mut self, b: pws_trace::records::CpuStatBlock) {
        let ns = 1e9 / b.ticks_per_s.max(1) as f64;
        let at: Vec<Option<usize>> = crate::replay::steal_irq::KINDS
            .iter()
            .map(|(_, f)| b.field(f))
            .collect();
        self.ticks_per_s = b.ticks_per_s;
        self.accounting = (b.irq_time.to_string(), b.steal_time.to_string());
        self.fields.clone_from(&b.fields);
        for s in b.cpus {
            for x in s.samples {
                self.readings += 1;
                let v: [f64; 3] = std::array::from_fn(|k| {
                    at[k]
                        .and_then(|i| x.values.get(i))
                        .map_or(0.0, |&t| t as f64 * ns)
                });
                let e = self
                    .cpus
                    .entry(s.cpu)
                    .or_insert(((x.ts_ns, v), (x.ts_ns, v)));
                if x.ts_ns < e.0 .0 {
                    e.0 = (x.ts_ns, v);
                }
                if x.ts_ns >= e.1 .0 {
                    e.1 = (x.ts_ns, v);
                }
            }
        }
    }

    /// Seconds of steal, irq and softirq over the trace, summed over CPUs.
    fn totals_s(&self) -> [f64; 3] {
        std::array::from_fn(|k| {
            self.cpus
                .values()
                .map(|(a, b)| (b.1[k] - a.1[k]).max(0.0) / 1e9)
                .sum()
        })
    }

    /// Mean time between readings of one CPU, ms.
    fn period_ms(&self) -> f64 {
        let (span, n) = self
            .cpus
            .values()
            .fold((0u64, 0u64), |(s, n), (a, b)| (s + (b.0 - a.0), n + 1));
        let gaps = self.readings.saturating_sub(n);
        if gaps == 0 {
            0.0
        } else {
            span as f64 / gaps as f64 / 1e6
        }
    }
}

#[derive(Debug)]
struct EnergyCounter {
    source: EnergySource,
    domain: String,
    index: u32,
    name: String,
    unit_joules: f64,
    wrap: u64,
    samples: u64,
}

/// Everything `info` reports about one trace.
#[derive(Debug, Default)]
struct Summary {
    path: PathBuf,
    file_bytes: u64,
    version: (u16, u16),
    header_flags: u32,
    info: Option<TraceInfo>,
    extra_info_blocks: u64,
    kinds: BTreeMap<BlockKind, KindCount>,
    end_via_trailer: bool,
    end_monotonic_ns: Option<u64>,
    torn_tail: Option<(u64, u64)>,
    skipped: Vec<SkippedRegion>,
    trailing_bytes: u64,
    span: Option<(u64, u64)>,
    /// The trace-info start pair and every clock-sync pair, for UTC conversion.
    clock_pairs: Vec<ClockPair>,
    clock_sync_pairs: u64,
    energy: BTreeMap<(u8, u8, u32, String), EnergyCounter>,
    cpu_stat: Option<CpuStatInfo>,
    gpus: BTreeMap<u32, GpuInfo>,
    perf_cpus: BTreeMap<u32, (u64, u64)>,
    cgroup_ops: BTreeMap<String, u64>,
    activations: u64,
    container_events: u64,
    stats: Option<Statistics>,
}

impl Summary {
    fn read(path: &Path, opts: ReadOptions) -> Result<Self> {
        use crate::inputs::detect::{detect, InputKind};
        let shown = crate::display(path);
        // The other inputs pws-analyze takes are not traces: say what they are, not "bad magic".
        if let Ok(kind @ (InputKind::PerfData | InputKind::HwpcCsvDir | InputKind::HwpcJson)) =
            detect(path)
        {
            let what = if kind == InputKind::PerfData {
                "a perf.data file"
            } else {
                "PowerAPI hwpc-sensor reports"
            };
            anyhow::bail!(
                "{shown} is {what}, not a .pws trace: `info` describes .pws traces; `pws-analyze {shown} -o DIR` analyses it"
            );
        }
        let trace = Trace::open(path).with_context(|| format!("cannot read trace {shown}"))?;
        let header = trace.header();
        let mut s = Summary {
            path: path.to_owned(),
            file_bytes: trace.data().len() as u64,
            version: (header.major, header.minor),
            header_flags: header.flags,
            end_via_trailer: trace.end_block().is_some(),
            ..Summary::default()
        };
        let mut blocks = trace.blocks_with(opts);
        for block in blocks.by_ref() {
            let block = block.with_context(|| format!("{shown}: trace is corrupt"))?;
            let kind = block.kind();
            let c = s.kinds.entry(kind).or_default();
            c.blocks += 1;
            c.stored += u64::from(block.header.stored_len);
            c.raw += u64::from(block.header.raw_len);
            if kind == BlockKind::PERF_DATA {
                // Only the 16-byte fixed part: perf records are the analysis' business.
                let head = block.payload_prefix(PERF_DATA_HEADER_LEN)?;
                let p = PerfData::decode(&head).map_err(|e| {
                    anyhow::anyhow!(
                        "{shown}: perf-data block at byte offset {}: {e}",
                        block.offset
                    )
                })?;
                let e = s.perf_cpus.entry(p.cpu).or_default();
                e.0 += 1;
                e.1 += u64::from(block.header.raw_len).saturating_sub(PERF_DATA_HEADER_LEN as u64);
                continue;
            }
            let record = block
                .decode()
                .with_context(|| format!("{shown}: cannot decode block"))?;
            s.add(record);
        }
        let status = blocks.into_status();
        s.torn_tail = status.torn_tail;
        s.skipped = status.skipped;
        s.trailing_bytes = status.trailing_bytes;
        Ok(s)
    }

    fn see(&mut self, ts: u64) {
        if ts == 0 {
            return; // "not placed"
        }
        self.span = Some(match self.span {
            None => (ts, ts),
            Some((a, b)) => (a.min(ts), b.max(ts)),
        });
    }

    fn add(&mut self, record: Record<'_>) {
        match record {
            Record::TraceInfo(info) => {
                if self.info.is_some() {
                    self.extra_info_blocks += 1;
                } else {
                    self.see(info.start_monotonic_ns);
                    self.clock_pairs.push(ClockPair {
                        monotonic_ns: info.start_monotonic_ns,
                        realtime_ns: info.start_realtime_ns,
                        uncertainty_ns: 0,
                    });
                    self.info = Some(*info);
                }
            }
            Record::Energy(e) => {
                for series in e.series {
                    for x in &series.samples {
                        self.see(x.ts_ns);
                    }
                    let key = (
                        series.source.code(),
                        series.domain.code(),
                        series.index,
                        series.name.clone(),
                    );
                    let c = self.energy.entry(key).or_insert_with(|| EnergyCounter {
                        source: series.source,
                        domain: series.domain.to_string(),
                        index: series.index,
                        name: series.name,
                        unit_joules: series.unit_joules,
                        wrap: series.wrap,
                        samples: 0,
                    });
                    c.samples += series.samples.len() as u64;
                }
            }
            Record::CgroupEvents(c) => {
                for e in c.events {
                    self.see(e.ts_ns);
                    *self.cgroup_ops.entry(e.op.to_string()).or_default() += 1;
                }
            }
            Record::Activations(a) => {
                for r in a.records {
                    self.see(r.start_ns);
                    self.see(r.end_ns);
                    self.activations += 1;
                }
            }
            Record::ContainerEvents(c) => {
                for e in c.events {
                    self.see(e.ts_ns);
                    self.container_events += 1;
                }
            }
            Record::Statistics(st) => {
                self.see(st.ts_ns);
                // Cumulative counters: the latest block is the final word.
                if self.stats.as_ref().is_none_or(|old| st.ts_ns >= old.ts_ns) {
                    self.stats = Some(st);
                }
            }
            Record::ClockSync(c) => {
                for p in c.pairs {
                    self.see(p.monotonic_ns);
                    self.clock_sync_pairs += 1;
                    self.clock_pairs.push(p);
                }
            }
            Record::End(end) => {
                self.see(end.end_monotonic_ns);
                self.end_monotonic_ns = Some(end.end_monotonic_ns);
            }
            Record::CpuStat(c) => {
                for s in &c.cpus {
                    for x in &s.samples {
                        self.see(x.ts_ns);
                    }
                }
                self.cpu_stat.get_or_insert_with(Default::default).add(c);
            }
            Record::Gpu(g) => {
                for d in g.devices {
                    for r in &d.reads {
                        self.see(r.ts_ns);
                    }
                    let i = self.gpus.entry(d.device).or_default();
                    if i.uuid.is_empty() {
                        (i.name, i.uuid) = (d.name, d.uuid);
                    }
                    i.mig |= d.mig;
                    for r in &d.reads {
                        i.reads += 1;
                        i.power_reads += u64::from(r.power_mw.is_some());
                        i.samples += r.utilization.len() as u64;
                        i.processes_max = i.processes_max.max(r.processes.len());
                    }
                }
            }
            Record::PerfData(_) | Record::PerfIndex(_) | Record::Unknown(_) => {}
        }
    }

    fn ended_cleanly(&self) -> bool {
        self.end_monotonic_ns.is_some() && self.torn_tail.is_none() && self.skipped.is_empty()
    }

    fn state(&self) -> String {
        let mut parts = vec![];
        if self.end_monotonic_ns.is_some() {
            parts.push("ended cleanly".to_string());
        } else {
            parts.push("not ended cleanly (no end block: the recorder was stopped abruptly or is still running)".into());
        }
        if let Some((off, n)) = self.torn_tail {
            parts.push(format!("torn tail: {n} bytes ignored from offset {off}"));
        }
        if !self.skipped.is_empty() {
            let n: u64 = self.skipped.iter().map(|s| s.bytes).sum();
            parts.push(format!(
                "{} corrupt region(s) skipped, {n} bytes",
                self.skipped.len()
            ));
        }
        if self.trailing_bytes > 0 {
            parts.push(format!("{} bytes after the end block", self.trailing_bytes));
        }
        parts.join("; ")
    }

    fn clock_name(&self) -> String {
        match self.info.as_ref().map(|i| i.clock) {
            Some(CLOCK_MONOTONIC) => "CLOCK_MONOTONIC".into(),
            Some(c) => format!("clockid {c}"),
            None => "unknown (no trace-info block)".into(),
        }
    }

    fn energy_label(source: EnergySource) -> &'static str {
        if source.is_measured() {
            "measured"
        } else {
            "SIMULATED, not a measurement"
        }
    }

    fn to_text(&self) -> String {
        use std::fmt::Write;
        let clocks = ClockMap::new(self.clock_pairs.clone());
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(
            w,
            "trace       {} ({}), format {}.{}",
            crate::display(&self.path),
            bytes(self.file_bytes),
            self.version.0,
            self.version.1
        );
        let _ = writeln!(w, "state       {}", self.state());
        match &self.info {
            None => {
                let _ = writeln!(w, "host        unknown: the trace has no trace-info block");
            }
            Some(i) => {
                let _ = writeln!(
                    w,
                    "host        {} (Linux {} {}), {}",
                    i.hostname, i.kernel_release, i.arch, i.cpu_model
                );
                let online = i.cpus.iter().filter(|c| c.online).count();
                let packages: std::collections::BTreeSet<_> =
                    i.cpus.iter().map(|c| c.package).collect();
                let cores: std::collections::BTreeSet<_> =
                    i.cpus.iter().map(|c| (c.package, c.die, c.core)).collect();
                let _ = writeln!(
                    w,
                    "cpus        {} logical ({online} online), {} package(s), {} core(s)",
                    i.cpus.len(),
                    packages.len(),
                    cores.len()
                );
                let _ = writeln!(
                    w,
                    "recorder    {} {}: {}",
                    i.recorder,
                    i.recorder_version,
                    i.command_line.join(" ")
                );
            }
        }
        let _ = writeln!(
            w,
            "clock       {}; {} clock-sync pair(s)",
            self.clock_name(),
            self.clock_sync_pairs
        );
        match self.span {
            Some((a, b)) => {
                let utc = |t| clocks.to_rfc3339(t).unwrap_or_else(|| format!("{t} ns"));
                let _ = writeln!(
                    w,
                    "span        {} → {} ({:.3} s)",
                    utc(a),
                    utc(b),
                    (b - a) as f64 / 1e9
                );
            }
            None => {
                let _ = writeln!(w, "span        no timestamps outside perf records");
            }
        }
        if let Some(i) = &self.info {
            let _ = writeln!(w, "sources");
            if i.sources.is_empty() {
                let _ = writeln!(w, "  (none listed)");
            }
            for s in &i.sources {
                let _ = writeln!(
                    w,
                    "  {:<12} {:<22} {:<12} {}",
                    s.kind, s.name, s.status, s.detail
                );
            }
            if !i.perf_events.is_empty() {
                let names: Vec<_> = i.perf_events.iter().map(|e| e.name.as_str()).collect();
                let _ = writeln!(w, "perf events {}", names.join(", "));
            }
        }
        let _ = writeln!(
            w,
            "blocks      {:<18} {:>8} {:>12} {:>12} {:>7}",
            "kind", "count", "stored", "raw", "ratio"
        );
        for (k, c) in &self.kinds {
            let ratio = if c.stored > 0 {
                c.raw as f64 / c.stored as f64
            } else {
                1.0
            };
            let _ = writeln!(
                w,
                "            {:<18} {:>8} {:>12} {:>12} {:>6.1}x",
                k.to_string(),
                c.blocks,
                bytes(c.stored),
                bytes(c.raw),
                ratio
            );
        }
        for (cpu, (n, b)) in &self.perf_cpus {
            let _ = writeln!(
                w,
                "perf cpu {cpu:<3}{n:>8} block(s), {} of ring data",
                bytes(*b)
            );
        }
        if self.energy.is_empty() {
            let _ = writeln!(w, "energy      no energy counters recorded");
        }
        for c in self.energy.values() {
            let _ = writeln!(
                w,
                "energy      {} {} {} {:?}: {} samples, {} J/unit, wrap {} ({})",
                c.source,
                c.domain,
                c.index,
                c.name,
                c.samples,
                c.unit_joules,
                c.wrap,
                Self::energy_label(c.source)
            );
        }
        for (d, g) in &self.gpus {
            let _ = writeln!(
                w,
                "gpu         {d} {:?} ({}){}: {} reads ({} with instantaneous power), {} per-process utilisation samples, up to {} compute processes",
                g.name,
                g.uuid,
                if g.mig { ", MIG on" } else { "" },
                g.reads,
                g.power_reads,
                g.samples,
                g.processes_max
            );
        }
        match &self.cpu_stat {
            Some(c) => {
                let [st, irq, soft] = c.totals_s();
                let _ = writeln!(
                    w,
                    "cpu-stat    {} readings of {} CPU(s), every {:.0} ms on average (ticks of 1/{} s): steal {st:.3} s, irq {irq:.3} s, softirq {soft:.3} s over the trace; kernel: IRQ time {}, steal time {} (of tasks' CPU time)",
                    c.readings / c.cpus.len().max(1) as u64,
                    c.cpus.len(),
                    c.period_ms(),
                    c.ticks_per_s,
                    c.accounting.0,
                    c.accounting.1
                );
            }
            None => {
                let _ = writeln!(w, "cpu-stat    no /proc/stat readings: steal and IRQ time stay counted as the interrupted tasks'");
            }
        }
        if !self.cgroup_ops.is_empty() {
            let ops: Vec<_> = self
                .cgroup_ops
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(w, "cgroups     {}", ops.join(", "));
        }
        let _ = writeln!(
            w,
            "activations {} record(s), {} container event(s)",
            self.activations, self.container_events
        );
        match &self.stats {
            Some(st) => {
                let lost = st.lost_records();
                let throttled: u64 = st.cpus.iter().map(|c| c.throttled).sum();
                let _ = writeln!(w, "lost        {lost} perf record(s) lost on {} CPU(s), {throttled} throttling event(s)", st.cpus.len());
                for src in st.sources.iter().filter(|s| s.errors > 0) {
                    let _ = writeln!(
                        w,
                        "errors      {}: {} of {} reads failed, last: {}",
                        src.name, src.errors, src.reads, src.last_error
                    );
                }
            }
            None => {
                let _ = writeln!(w, "lost        unknown: no statistics block");
            }
        }
        if let Some(i) = &self.info {
            for (k, v) in &i.metadata {
                let _ = writeln!(w, "metadata    {k} = {v}");
            }
        }
        for s in &self.skipped {
            let _ = writeln!(
                w,
                "skipped     {} bytes at offset {}: {}",
                s.bytes, s.offset, s.reason
            );
        }
        o
    }

    fn to_json(&self) -> Value {
        let clocks = ClockMap::new(self.clock_pairs.clone());
        let info = self.info.as_ref().map(|i| {
            json!({
                "hostname": i.hostname,
                "kernel_release": i.kernel_release,
                "kernel_version": i.kernel_version,
                "arch": i.arch,
                "cpu_model": i.cpu_model,
                "recorder": i.recorder,
                "recorder_version": i.recorder_version,
                "command_line": i.command_line,
                "cpus": i.cpus.iter().map(|c| json!({
                    "cpu": c.cpu, "online": c.online, "package": c.package, "die": c.die,
                    "core": c.core, "numa_node": c.numa_node,
                })).collect::<Vec<_>>(),
                "perf_events": i.perf_events.iter().map(|e| json!({
                    "name": e.name, "pmu": e.pmu, "attr_bytes": e.attr.len(), "ids": e.ids.len(),
                })).collect::<Vec<_>>(),
                "sources": i.sources.iter().map(|s| json!({
                    "kind": s.kind, "name": s.name, "status": s.status.to_string(),
                    "used": s.status == SourceStatus::Used, "detail": s.detail,
                })).collect::<Vec<_>>(),
                "metadata": i.metadata.iter().cloned().collect::<BTreeMap<_, _>>(),
            })
        });
        json!({
            "path": crate::display(&self.path),
            "file_bytes": self.file_bytes,
            "format_version": format!("{}.{}", self.version.0, self.version.1),
            "header_flags": self.header_flags,
            "ended_cleanly": self.ended_cleanly(),
            "end_block": self.end_monotonic_ns.is_some(),
            "end_via_trailer": self.end_via_trailer,
            "state": self.state(),
            "torn_tail": self.torn_tail.map(|(offset, bytes)| json!({"offset": offset, "bytes": bytes})),
            "skipped": self.skipped.iter().map(|s| json!({"offset": s.offset, "bytes": s.bytes, "reason": s.reason})).collect::<Vec<_>>(),
            "trailing_bytes": self.trailing_bytes,
            "clock": self.clock_name(),
            "clock_sync_pairs": self.clock_sync_pairs,
            "trace_info": info,
            "extra_trace_info_blocks": self.extra_info_blocks,
            "span": self.span.map(|(a, b)| json!({
                "first_ns": a, "last_ns": b, "seconds": (b - a) as f64 / 1e9,
                "first_utc": clocks.to_rfc3339(a), "last_utc": clocks.to_rfc3339(b),
            })),
            "blocks": self.kinds.iter().map(|(k, c)| json!({
                "kind": k.0, "name": k.to_string(), "count": c.blocks, "stored_bytes": c.stored, "raw_bytes": c.raw,
            })).collect::<Vec<_>>(),
            "perf_cpus": self.perf_cpus.iter().map(|(cpu, (n, b))| json!({"cpu": cpu, "blocks": n, "bytes": b})).collect::<Vec<_>>(),
            "cpu_stat": self.cpu_stat.as_ref().map(|c| {
                let [steal, irq, softirq] = c.totals_s();
                json!({"ticks_per_s": c.ticks_per_s, "fields": c.fields, "cpus": c.cpus.len(),
                    "readings": c.readings, "period_ms": c.period_ms(),
                    "kernel_irq_time": c.accounting.0, "kernel_steal_time": c.accounting.1,
                    "steal_s": steal, "irq_s": irq, "softirq_s": softirq})
            }),
            "gpus": self.gpus.iter().map(|(d, g)| json!({
                "device": d, "name": g.name, "uuid": g.uuid, "mig": g.mig, "reads": g.reads,
                "power_reads": g.power_reads, "samples": g.samples, "processes_max": g.processes_max,
            })).collect::<Vec<_>>(),
            "energy": self.energy.values().map(|c| json!({
                "source": c.source.to_string(), "measured": c.source.is_measured(), "domain": c.domain,
                "index": c.index, "name": c.name, "unit_joules": c.unit_joules, "wrap": c.wrap, "samples": c.samples,
            })).collect::<Vec<_>>(),
            "cgroup_events": self.cgroup_ops,
            "activations": self.activations,
            "container_events": self.container_events,
            "lost_records": self.stats.as_ref().map(|s| s.lost_records()),
            "statistics": self.stats.as_ref().map(|st| json!({
                "ts_ns": st.ts_ns,
                "cpus": st.cpus.iter().map(|c| json!({
                    "cpu": c.cpu, "bytes": c.bytes, "lost_events": c.lost_events, "lost_records": c.lost_records,
                    "throttled": c.throttled, "unthrottled": c.unthrottled, "wakeups": c.wakeups,
                })).collect::<Vec<_>>(),
                "sources": st.sources.iter().map(|s| json!({
                    "name": s.name, "reads": s.reads, "errors": s.errors, "last_error": s.last_error,
                })).collect::<Vec<_>>(),
            })),
        })
    }
}
