//! Measurement quality: could this run measure what its user wants? From one trace's replay:
//! each energy counter's own update period, resolution, wraps, gaps and resets
//! ([`update_period`]); each CPU's effective sampling; the trace's clock sync and how many
//! cgroups the kernel carried; each function's activations against the counter's period
//! ([`resolvable`]); and a verdict. [`interval`] uses the same measurement to pick the
//! tables' default interval. Written as the `quality` table with the others and printed by
//! `pws-analyze quality` ([`report`]).

pub mod interval;
pub mod report;
pub mod resolvable;
pub mod update_period;

use serde::Serialize;

use crate::analyze::Analysis;
use crate::replay::energy_gaps::Status;
use crate::tables::Table;
use pws_trace::records::EnergyDomain;
use resolvable::Durations;

pub use resolvable::{FunctionQuality, Verdict};
pub use update_period::{CounterQuality, UPDATES_PER_INTERVAL};

/// A counter the quality report cannot describe.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    #[error("energy counter {counter:?} has {readings} reading(s): at least two are needed to see it move")]
    TooFewReadings { counter: String, readings: usize },
    #[error(
        "energy counter {counter:?} has unit {unit} J per count: not a positive number of joules"
    )]
    BadUnit { counter: String, unit: f64 },
}

/// One counter as the analysis used it: its own behaviour and how the tables' intervals fared.
#[derive(Debug, Clone, Serialize)]
pub struct CounterReport {
    #[serde(flatten)]
    pub counter: CounterQuality,
    /// The tables' interval holds fewer than N updates of this counter.
    pub interval_too_short: bool,
    /// Intervals with measured energy; those at 0 W, and those above
    /// `max_plausible_w × (1 + 1/N)`: on a counter that does not move at every reading,
    /// neither is power the source drew, both are a counter that moved 0 or 2 times in a too
    /// short interval (on one that does, the latter is a burst shorter than N readings).
    pub intervals_measured: u64,
    pub intervals_zero_w: u64,
    pub intervals_above_plausible: u64,
    pub max_interval_w: Option<f64>,
}

/// One CPU's perf sampling.
#[derive(Debug, Clone, Serialize)]
pub struct CpuQuality {
    pub cpu: u32,
    pub samples: u64,
    /// Samples over the span between the CPU's first and last record.
    pub sampling_hz: Option<f64>,
    pub lost_records: u64,
    pub throttled: u64,
    /// Samples an activation of the trace's median length gets while it runs on this CPU.
    pub samples_per_activation: Option<f64>,
}

/// The trace as a whole.
#[derive(Debug, Clone, Serialize)]
pub struct TraceQuality {
    pub seconds: f64,
    pub interval_ms: f64,
    pub interval_auto: bool,
    /// The recorder's own share of the machine's CPU time; None when the trace does not show
    /// it, `recorder_cpu` says why.
    pub recorder_cpu_share: Option<f64>,
    pub recorder_cpu: String,
    pub clock_pairs: usize,
    pub clock_uncertainty_max_us: Option<f64>,
    /// How far the wall clock moved against the monotonic clock over the trace (NTP).
    pub wall_clock_moved_ms: Option<f64>,
    pub live_cgroups_max: u64,
    pub live_cgroups_mean: f64,
    pub activation_median_ms: Option<f64>,
}

/// Everything the report says about one trace.
#[derive(Debug, Clone, Serialize)]
pub struct Quality {
    pub run: String,
    pub host: String,
    pub counters: Vec<CounterReport>,
    /// Counters that could not be described, and why.
    pub counter_errors: Vec<String>,
    pub cpus: Vec<CpuQuality>,
    pub trace: TraceQuality,
    pub functions: Vec<FunctionQuality>,
    pub verdict: Verdict,
    /// The activations that used a GPU against the coarsest GPU counter (NVML's ~100 ms), where
    /// the trace has one: what a GPU's counter resolves of them.
    pub gpu_functions: Vec<FunctionQuality>,
    pub gpu_verdict: Option<Verdict>,
}

/// The report of one replayed trace.
pub fn assess(an: &Analysis) -> Quality {
    let mut counters = Vec::new();
    let mut counter_errors = Vec::new();
    for s in &an.l.energy {
        match update_period::measure(s) {
            Ok(c) => counters.push(on_intervals(an, c)),
            Err(e) => counter_errors.push(e.to_string()),
        }
    }
    let durations = resolvable::durations(an);
    let median_ns = {
        let mut d: Vec<u64> = durations.iter().filter_map(|x| x.1).collect();
        update_period::percentile(&mut d, 0.5)
    };
    // The CPU's counters judge every activation; a GPU's, those that used it.
    let gpu = |c: &&CounterQuality| c.domain == EnergyDomain::Gpu.to_string();
    let coarsest = |on_gpu: bool| {
        counters
            .iter()
            .map(|c| &c.counter)
            .filter(|c| gpu(c) == on_gpu && c.effective_period_ns().is_some())
            .max_by_key(|c| c.effective_period_ns())
    };
    let (functions, verdict) = resolvable::assess(&durations, coarsest(false));
    let (gpu_functions, gpu_verdict) = match coarsest(true) {
        Some(c) => {
            let used: Durations = durations
                .iter()
                .enumerate()
                .filter(|(ai, _)| an.gpu.used_by(*ai))
                .map(|(_, d)| d.clone())
                .collect();
            let (f, v) = resolvable::assess(&used, Some(c));
            (f, Some(v))
        }
        None => (Vec::new(), None),
    };
    // The functions are judged: the instants are not read again, and are not held through the
    // attribution and the derived tables (an hour's at 100 readings a second: 2.7 MiB).
    for c in &mut counters {
        c.counter.change_instants = Vec::new();
    }
    Quality {
        run: an.run.clone(),
        host: an.host.clone(),
        counters,
        counter_errors,
        cpus: cpus(an, median_ns),
        trace: trace(an, median_ns),
        functions,
        verdict,
        gpu_functions,
        gpu_verdict,
    }
}

/// The counter's readings against the tables' intervals.
fn on_intervals(an: &Analysis, c: CounterQuality) -> CounterReport {
    let too_short = interval::too_short_for(an.interval.interval, &c);
    let bound = c
        .max_plausible_w
        .map(|w| w * (1.0 + 1.0 / UPDATES_PER_INTERVAL as f64));
    let (mut measured, mut zero, mut above, mut max_w) = (0, 0, 0, None::<f64>);
    let e = an
        .energy
        .iter()
        .find(|e| e.name == c.name && e.package == c.package && e.domain.to_string() == c.domain);
    for (i, (j, st)) in e
        .iter()
        .flat_map(|e| e.joules.iter().zip(&e.status))
        .enumerate()
    {
        if *st != Status::Measured {
            continue;
        }
        let (a, b) = an.grid.span(i);
        let w = j / ((b - a) as f64 / 1e9);
        measured += 1;
        zero += u64::from(*j <= 0.0);
        above += u64::from(bound.is_some_and(|x| w > x));
        max_w = Some(max_w.map_or(w, |m| m.max(w)));
    }
    CounterReport {
        counter: c,
        interval_too_short: too_short,
        intervals_measured: measured,
        intervals_zero_w: zero,
        intervals_above_plausible: above,
        max_interval_w: max_w,
    }
}

fn cpus(an: &Analysis, median_ns: Option<u64>) -> Vec<CpuQuality> {
    an.rep
        .per_cpu
        .iter()
        .map(|c| {
            let s = &c.stats;
            let span = s.last_ns.saturating_sub(s.first_ns);
            let hz = (span > 0).then(|| s.group_samples as f64 / (span as f64 / 1e9));
            CpuQuality {
                cpu: c.cpu,
                samples: s.group_samples,
                sampling_hz: hz,
                lost_records: s.lost_records,
                throttled: s.throttled,
                samples_per_activation: hz.zip(median_ns).map(|(hz, d)| hz * d as f64 / 1e9),
            }
        })
        .collect()
}

fn trace(an: &Analysis, median_ns: Option<u64>) -> TraceQuality {
    let (start, end) = (an.grid.start(), an.grid.end().max(an.grid.start() + 1));
    // Every cgroup alive over [created or start, removed or end]: the kernel's load.
    let mut events: Vec<(u64, i64)> = Vec::new();
    let mut alive_ns = 0u128;
    for g in &an.life.cgroups {
        let from = g.created.unwrap_or(start).clamp(start, end);
        let to = g.destroyed.unwrap_or(end).clamp(start, end);
        if to > from {
            events.push((from, 1));
            events.push((to, -1));
            alive_ns += u128::from(to - from);
        }
    }
    // Removals first at one instant: a cgroup replaced at once is not two.
    events.sort_unstable();
    let (mut live, mut max) = (0i64, 0i64);
    for (_, d) in events {
        live += d;
        max = max.max(live);
    }
    let pairs = &an.l.clock;
    let offsets = pairs
        .iter()
        .map(|p| i128::from(p.realtime_ns) - i128::from(p.monotonic_ns));
    let moved = (pairs.len() > 1).then(|| {
        let (lo, hi) = offsets.fold((i128::MAX, i128::MIN), |(lo, hi), o| (lo.min(o), hi.max(o)));
        (hi - lo) as f64 / 1e6
    });
    TraceQuality {
        seconds: (end - start) as f64 / 1e9,
        interval_ms: an.interval.interval.as_secs_f64() * 1e3,
        interval_auto: an.interval.auto,
        recorder_cpu_share: None,
        recorder_cpu: "not in trace: pws-record writes neither its pid nor its cgroup nor its own CPU time (its statistics hold bytes, losses and wakeups per CPU); its CPU time is in the usage of whatever cgroup it ran in".into(),
        clock_pairs: pairs.len(),
        clock_uncertainty_max_us: pairs
            .iter()
            .map(|p| p.uncertainty_ns as f64 / 1e3)
            .reduce(f64::max),
        wall_clock_moved_ms: moved,
        live_cgroups_max: max.max(0) as u64,
        live_cgroups_mean: alive_ns as f64 / (end - start) as f64,
        activation_median_ms: median_ns.map(|d| d as f64 / 1e6),
    }
}

impl Quality {
    /// Lines for the analysis summary: the interval chosen, and where it is too short for a
    /// counter.
    pub fn notes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let t = &self.trace;
        // Said only when auto moved off the floor: a counter too coarse for 10 ms.
        let decisive = self
            .counters
            .iter()
            .filter(|c| !c.counter.update_period_at_most)
            .filter_map(|c| c.counter.update_period_ms.map(|u| (u, &c.counter.name)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let (true, Some((u, name))) = (t.interval_auto, decisive) {
            if t.interval_ms > interval::FLOOR.as_secs_f64() * 1e3 {
                out.push(format!(
                    "interval {:.0} ms (--interval auto): {UPDATES_PER_INTERVAL} updates of energy counter {name}, which moves every {u:.1} ms, so an interval's energy is quantised by at most ~{:.0} %; `pws-analyze quality` tells more",
                    t.interval_ms,
                    100.0 / UPDATES_PER_INTERVAL as f64
                ));
            }
        }
        // Too short for the counter, or showing its quantisation (0 W, or above what it can
        // draw) in more than 1 % of the intervals. A counter that moves at every reading is
        // not quantised at the readings: above its ten-reading maximum is a real burst.
        let quantised = |c: &&CounterReport| {
            c.interval_too_short
                || (!c.counter.update_period_at_most
                    && 100 * (c.intervals_zero_w + c.intervals_above_plausible)
                        > c.intervals_measured)
        };
        for c in self.counters.iter().filter(quantised) {
            let u = c.counter.update_period_ms.unwrap_or(0.0);
            let advice = if c.interval_too_short {
                format!(
                    "use --interval auto (it would pick {} ms)",
                    interval::auto_for_counter(&c.counter).as_millis()
                )
            } else {
                "give a longer --interval".to_owned()
            };
            out.push(format!(
                "energy {}: the interval ({:.0} ms) is too short for this counter, which moves every {}{u:.1} ms: an interval's energy is uncertain by ±{:.0} %; {} of {} measured intervals read 0 W and {} more than the counter's plausible maximum ({}): quantisation, not power; {advice}",
                c.counter.name,
                t.interval_ms,
                if c.counter.update_period_at_most { "≤ " } else { "" },
                100.0 * u / t.interval_ms,
                c.intervals_zero_w,
                c.intervals_measured,
                c.intervals_above_plausible,
                c.counter.max_plausible_w.map_or("unknown".into(), |w| format!("{w:.1} W")),
            ));
        }
        out.extend(self.counter_errors.iter().map(|e| format!("quality: {e}")));
        out
    }

    /// The `quality` table: one row per (scope, subject, metric), the metrics named as in the
    /// JSON report; numbers and flags in `value`, words in `text`.
    pub fn table(&self) -> Table {
        let mut t = Table::keyed("quality")
            .str("scope")
            .str("subject")
            .str("metric")
            .f64("value")
            .str("text");
        let mut push = |scope: &str, subject: &str, v: serde_json::Value| {
            let Some(o) = v.as_object() else { return };
            for (k, x) in o {
                let (value, text) = match x {
                    serde_json::Value::Number(n) => (n.as_f64(), None),
                    serde_json::Value::Bool(b) => (Some(f64::from(u8::from(*b))), None),
                    serde_json::Value::String(s) => (None, Some(s.clone())),
                    serde_json::Value::Null => (None, None),
                    other => (None, Some(other.to_string())),
                };
                t.push_key(&self.run, &self.host)
                    .push_str(scope)
                    .push_str(subject)
                    .push_str(k)
                    .push_f64(value)
                    .push_str(text.as_deref().unwrap_or(""));
            }
        };
        for c in &self.counters {
            push("counter", &c.counter.name, json(c));
        }
        for c in &self.cpus {
            push("cpu", &c.cpu.to_string(), json(c));
        }
        push("trace", "", json(&self.trace));
        for f in &self.functions {
            push("function", &f.function, json(f));
        }
        push("verdict", "", json(&self.verdict));
        for f in &self.gpu_functions {
            push("gpu_function", &f.function, json(f));
        }
        if let Some(v) = &self.gpu_verdict {
            push("gpu_verdict", "", json(v));
        }
        for e in &self.counter_errors {
            push("counter", "", serde_json::json!({ "error": e }));
        }
        t
    }
}

/// Any section as JSON, for the table's rows (plain data: it cannot fail to serialise).
fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
