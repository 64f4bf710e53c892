//! `smartwatts` in the main comparison: the SmartWatts 2.4.1 port run over an input's
//! intervals as if they were hwpc-sensor ticks — the energy counter's joules as the RAPL
//! reading, each cgroup as a target whose core counters are its CPU time and counters over the
//! tick.
//!
//! Ticks are what smartwatts would have been given:
//! - hwpc-sensor reports: the sensor's own ticks (each interval is one, unless `--interval`
//!   merged them), and `--sensor-reports-frequency` defaults to the reports' own period;
//! - traces: ticks of exactly `--sensor-reports-frequency` (1 s by default) from the first
//!   interval, each grid interval split at tick boundaries pro rata (energy, CPU time and
//!   counters by overlap), because smartwatts divides a tick's energy by that period whatever
//!   the tick's length. A last, incomplete tick is not given to it (the sensor would not have
//!   reported it yet).
//!
//! SmartWatts is an online model: each estimate uses only what came before, so "fitting" runs
//! it once over the whole input in time order and the cross-validation folds score those
//! online estimates, at its own ticks (a tick's estimate against the tick's measured mean
//! power). An interval gets the estimates of the ticks it overlaps, weighted by overlap. Its
//! per-target power is its own: (wᵀx_t / wᵀX) × its estimate. Its static part for the idle
//! policies is the intercept of the last accepted model.

use std::collections::HashMap;
use std::sync::Arc;

use pws_trace::records::EnergyDomain;

use super::dataset::{Dataset, Interval};
use super::linear::FitError;
use super::model::{Model, ScoreSpan};
use super::smartwatts::config::{Scope, DEFAULT_REPORTS_FREQUENCY_MS};
use super::smartwatts::formula::{GLOBAL_ESTIMATE_TARGET, RAPL_TARGET};
use super::smartwatts::{
    Events, GlobalSample, SmartWatts, SmartWattsConfig, SmartWattsOptions, SocketTick,
    TargetSample, Tick, GLOBAL_TARGET,
};
use crate::inputs::hwpc_analysis::SensorTicks;

/// How an input's intervals become SmartWatts ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickSource {
    /// Each interval is one tick (hwpc-sensor reports: the sensor's own ticks).
    Intervals,
    /// Ticks of exactly the configured period, intervals split at their boundaries.
    Period,
}

/// A tick's targets' W by cgroup key, sorted by key.
type Targets = Box<[(u64, f64)]>;

/// What SmartWatts said of one tick. Which intervals the tick holds is not kept but found
/// from the intervals' times (`SmartWattsModel::ticks_over`): an hour of 10 ms intervals in
/// 1 s ticks was 6 MB of parts, and 6 MB more of interval starts and an interval → ticks map
/// (`bench/README.md`, session 22).
#[derive(Debug, Clone, Default)]
struct TickState {
    /// The RAPL power SmartWatts reported for the tick (its energy over the period), if any.
    rapl_w: Option<f64>,
    /// The global estimate and each target's W, by cgroup key (sorted; a hash map per tick was
    /// twice the bytes).
    estimate: Option<(f64, Targets)>,
}

#[derive(Debug)]
pub struct SmartWattsModel {
    config: SmartWattsConfig,
    scope: Scope,
    source: TickSource,
    ticks: Vec<TickState>,
    /// Ticks of the period: tick k is [t0 + k·period, t0 + (k + 1)·period). An interval's
    /// estimate is made from its ticks' when asked, overlap-weighted, rather than kept per
    /// interval (an hour of 10 ms intervals × hundreds of live containers was 290 MB).
    t0: u64,
    period_ns: u64,
    /// Ticks that are intervals: each interval's start, in order (interval i is tick i).
    starts: Vec<u64>,
    /// Intervals with at least one estimating tick.
    intervals_estimated: usize,
    intercept: f64,
    ran: bool,
    /// Why its results need a word (no intercept yet, or no estimate at all), if so.
    pub note: Option<String>,
}

impl SmartWattsModel {
    /// SmartWatts on one energy counter: `scope` says which formula models it (smartwatts'
    /// `cpu` for RAPL PKG, `dram` for DRAM), with that scope's threshold and switch.
    pub fn new(config: SmartWattsConfig, scope: Scope, source: TickSource) -> Self {
        Self {
            config,
            scope,
            source,
            ticks: Vec::new(),
            t0: 0,
            period_ns: 0,
            starts: Vec::new(),
            intervals_estimated: 0,
            intercept: 0.0,
            ran: false,
            note: None,
        }
    }

    /// The model for one energy counter of an input, from the command line's options: the
    /// period given, else the hwpc reports' own (`sensor`, None for traces), else 1 s; the
    /// sensor's ticks when the intervals are those ticks, else ticks of the period.
    pub fn for_input(
        options: &SmartWattsOptions,
        sensor: Option<&SensorTicks>,
        domain: EnergyDomain,
    ) -> Self {
        let period = sensor
            .and_then(|s| s.period_ms)
            .unwrap_or(DEFAULT_REPORTS_FREQUENCY_MS);
        let source = match sensor {
            Some(s) if s.intervals_are_ticks => TickSource::Intervals,
            _ => TickSource::Period,
        };
        let scope = match domain {
            EnergyDomain::Dram => Scope::Dram,
            _ => Scope::Cpu,
        };
        Self::new(options.config(period), scope, source)
    }

    /// Whether it estimated anything: a SmartWatts that never accepted a model (an input
    /// shorter than it needs to learn) has nothing to compare or attribute with.
    pub fn estimated(&self) -> bool {
        self.intervals_estimated > 0
    }

    fn events(ds: &Dataset, cpu_ns: f64, counters: &[f64]) -> Events {
        let mut pairs: Vec<(Arc<str>, i64)> = vec![(Arc::from("cpu_ns"), cpu_ns.round() as i64)];
        for (name, v) in ds.columns.iter().zip(counters) {
            pairs.push((Arc::from(name.as_str()), v.round() as i64));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.into_iter().collect()
    }

    /// The ticks' parts of intervals.
    fn tick_parts(&self, ds: &Dataset, period_ns: u64) -> Vec<Vec<(usize, f64)>> {
        match self.source {
            TickSource::Intervals => (0..ds.len()).map(|i| vec![(i, 1.0)]).collect(),
            TickSource::Period => {
                let (Some(first), Some(last)) = (ds.first(), ds.last()) else {
                    return Vec::new();
                };
                let t0 = first.start;
                let n = ((last.end.saturating_sub(t0)) / period_ns) as usize;
                let mut ticks = vec![Vec::new(); n];
                for (i, iv) in ds.iter().enumerate() {
                    let len = iv.end.saturating_sub(iv.start);
                    if len == 0 {
                        continue;
                    }
                    let first_k = (iv.start.saturating_sub(t0) / period_ns) as usize;
                    for (k, tick) in ticks.iter_mut().enumerate().skip(first_k) {
                        let (a, b) = (t0 + k as u64 * period_ns, t0 + (k as u64 + 1) * period_ns);
                        if a >= iv.end {
                            break;
                        }
                        let overlap = b.min(iv.end).saturating_sub(a.max(iv.start));
                        if overlap > 0 {
                            tick.push((i, overlap as f64 / len as f64));
                        }
                    }
                }
                ticks
            }
        }
    }

    fn run(&mut self, ds: &Dataset) {
        self.ran = true;
        if !self.config.enabled(self.scope) {
            self.note = Some(format!(
                "smartwatts not run: --disable-{}-formula",
                self.scope
            ));
            return;
        }
        // One formula: this counter's, fed as its scope's reference RAPL event.
        let config = SmartWattsConfig {
            disable_cpu_formula: self.scope != Scope::Cpu,
            disable_dram_formula: self.scope != Scope::Dram,
            ..self.config.clone()
        };
        let period_ms = config.sensor_reports_frequency;
        let sw = SmartWatts::new(config.clone());
        let mut sw = match sw {
            Ok(sw) => sw,
            Err(e) => {
                self.note = Some(format!("smartwatts not run: {e}"));
                return;
            }
        };
        let period_ns = u64::from(period_ms) * 1_000_000;
        let rapl_event = config.rapl_ref_event(self.scope).to_owned();
        let sensor: Arc<str> = Arc::from("pws");
        let width = ds.columns.len();
        let parts = self.tick_parts(ds, period_ns);
        let mut outcomes = Vec::new();
        for (k, tick) in parts.iter().enumerate() {
            // A tick over missing energy is a report the sensor never sent: skipped.
            if tick
                .iter()
                .any(|&(i, _)| !ds.interval(i).energy_j.is_finite())
            {
                continue;
            }
            let mut energy_j = 0.0;
            // Cgroup key → (CPU ns, counters), the intervals' shares summed.
            let mut usage: HashMap<u64, (f64, Vec<f64>)> = HashMap::new();
            for &(i, f) in tick {
                let iv = &*ds.interval(i);
                energy_j += f * iv.energy_j;
                for (cg, u) in &iv.cgroups {
                    let e = usage.entry(*cg).or_insert_with(|| (0.0, vec![0.0; width]));
                    e.0 += f * u.cpu_ns as f64;
                    for (c, v) in e.1.iter_mut().zip(&u.counters) {
                        *c += f * v;
                    }
                }
            }
            let mut cgs: Vec<(u64, (f64, Vec<f64>))> = usage.into_iter().collect();
            cgs.sort_by_key(|(cg, _)| *cg);
            let socket = SocketTick {
                global: Some(GlobalSample {
                    rapl_joules: [(rapl_event.clone(), energy_j)].into_iter().collect(),
                    msr: Vec::new(),
                }),
                targets: cgs
                    .iter()
                    .map(|(cg, (ns, counters))| TargetSample {
                        target: Arc::from(cg.to_string().as_str()),
                        cpus: vec![Self::events(ds, *ns, counters)],
                    })
                    .collect(),
            };
            outcomes.extend(sw.push(Tick {
                timestamp_ms: k as i64 * i64::from(period_ms),
                sensor: sensor.clone(),
                sockets: [(0, socket)].into_iter().collect(),
            }));
        }
        outcomes.extend(sw.flush());
        self.ticks = vec![TickState::default(); parts.len()];
        drop(parts);
        match self.source {
            TickSource::Period => {
                self.t0 = ds.first().map_or(0, |iv| iv.start);
                self.period_ns = period_ns;
            }
            TickSource::Intervals => self.starts = ds.iter().map(|iv| iv.start).collect(),
        }
        for o in outcomes {
            let Some(tick) = usize::try_from(o.timestamp_ms / i64::from(period_ms))
                .ok()
                .and_then(|k| self.ticks.get_mut(k))
            else {
                continue;
            };
            if let Some(f) = &o.formula {
                self.intercept = f.intercept;
            }
            let mut global = None;
            let mut targets: HashMap<u64, f64> = HashMap::new();
            for e in &o.estimates {
                match &*e.target {
                    GLOBAL_ESTIMATE_TARGET => global = Some(e.power_w),
                    RAPL_TARGET => tick.rapl_w = Some(e.power_w),
                    GLOBAL_TARGET => {}
                    t => {
                        if let Ok(cg) = t.parse::<u64>() {
                            targets.insert(cg, e.power_w);
                        }
                    }
                }
            }
            tick.estimate = global.map(|g| {
                let mut targets: Vec<(u64, f64)> = targets.into_iter().collect();
                targets.sort_unstable_by_key(|t| t.0);
                (g, targets.into_boxed_slice())
            });
        }
        self.intervals_estimated = ds
            .iter()
            .enumerate()
            .filter(|(i, iv)| self.ticks_of(iv, Some(*i)).next().is_some())
            .count();
        let window = self.config.learn_history_window_size;
        if self.intervals_estimated == 0 {
            self.note = Some(format!(
                "smartwatts estimated nothing ({} ticks of {period_ms} ms; it needs more than {} before its first model, and holds back the last 5): left out of the comparison",
                self.ticks.len(),
                self.config.learn_min_samples_required
            ));
        } else if self.ticks.len() < window {
            // SmartWatts 2.4.1 fits no intercept before its history window is full.
            self.note = Some(format!(
                "smartwatts fits its intercept only once its history window is full ({window} ticks of {period_ms} ms) and this input has {} ticks: its static power is 0 and all its power counts as dynamic (record longer, or lower --learn-history-window-size)",
                self.ticks.len()
            ));
        }
    }
}

impl SmartWattsModel {
    /// The ticks holding part of interval `iv` (`index`, where the caller knows it):
    /// (tick, the fraction of the interval in it), in time order. As `tick_parts` splits.
    fn ticks_over(
        &self,
        iv: &Interval,
        index: Option<usize>,
    ) -> impl Iterator<Item = (usize, f64)> + '_ {
        let n = self.ticks.len();
        let (start, end) = (iv.start, iv.end);
        let (period, whole): (std::ops::Range<usize>, Option<usize>) = match self.source {
            TickSource::Intervals => {
                let i = index.or_else(|| self.starts.binary_search(&start).ok());
                (0..0, i.filter(|&i| i < n))
            }
            TickSource::Period if end > start && self.period_ns > 0 => {
                let first = (start.saturating_sub(self.t0) / self.period_ns) as usize;
                (first.min(n)..n, None)
            }
            TickSource::Period => (0..0, None),
        };
        let (t0, p, len) = (self.t0, self.period_ns, end.saturating_sub(start));
        let split = period
            .map_while(move |k| {
                let a = t0 + k as u64 * p;
                (a < end).then_some((k, a, a + p))
            })
            .filter_map(move |(k, a, b)| {
                let overlap = b.min(end).saturating_sub(a.max(start));
                (overlap > 0).then(|| (k, overlap as f64 / len as f64))
            });
        whole.map(|i| (i, 1.0)).into_iter().chain(split)
    }

    /// The estimating ticks over interval `iv`: (the fraction of the interval in the tick, the
    /// tick's global estimate W, its targets' W by cgroup key), in time order.
    fn ticks_of(
        &self,
        iv: &Interval,
        index: Option<usize>,
    ) -> impl Iterator<Item = (f64, f64, &[(u64, f64)])> + '_ {
        self.ticks_over(iv, index).filter_map(|(k, f)| {
            let (g, targets) = self.ticks[k].estimate.as_ref()?;
            Some((f, *g, &**targets))
        })
    }
}

impl Model for SmartWattsModel {
    fn name(&self) -> String {
        "smartwatts".into()
    }

    /// Runs once over the whole trace; what goes wrong is in `note`, not an error.
    fn fit(&mut self, ds: &Dataset, _train: &[usize]) -> Result<(), FitError> {
        if !self.ran {
            self.run(ds);
        }
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        let (mut w, mut g) = (0.0, 0.0);
        for (f, gt, _) in self.ticks_of(iv, None) {
            w += f;
            g += f * gt;
        }
        if w > 0.0 {
            g / w
        } else {
            f64::NAN
        }
    }

    fn idle_w(&self) -> f64 {
        self.intercept.max(0.0)
    }

    fn weight(&self, _u: &crate::replay::cpu::Usage, _secs: f64) -> f64 {
        // Per-target power comes from the interval's estimates (see `weights`); a usage alone
        // has none.
        0.0
    }

    fn weights(&self, iv: &Interval) -> Vec<f64> {
        let ticks: Vec<_> = self.ticks_of(iv, None).collect();
        let w: f64 = ticks.iter().map(|(f, _, _)| f).sum();
        iv.cgroups
            .iter()
            .map(|(cg, _)| {
                let mut sum = None;
                for (f, _, targets) in &ticks {
                    if let Ok(j) = targets.binary_search_by_key(cg, |t| t.0) {
                        *sum.get_or_insert(0.0) += f * targets[j].1;
                    }
                }
                sum.map_or(0.0, |s: f64| s / w).max(0.0)
            })
            .collect()
    }

    fn params(&self) -> Vec<(String, f64)> {
        vec![
            ("last_intercept_w".into(), self.intercept),
            (
                "intervals_estimated".into(),
                self.intervals_estimated as f64,
            ),
            (
                "ticks_estimated".into(),
                self.ticks.iter().filter(|t| t.estimate.is_some()).count() as f64,
            ),
            (
                "sensor_reports_frequency_ms".into(),
                f64::from(self.config.sensor_reports_frequency),
            ),
            ("cpu_tdp".into(), f64::from(self.config.cpu_tdp)),
        ]
    }

    fn score_spans(&self, ds: &Dataset) -> Option<Vec<ScoreSpan>> {
        // Each estimating tick's span, its parts found in one pass over the intervals.
        let mut span_of = vec![usize::MAX; self.ticks.len()];
        let mut spans = Vec::new();
        for (k, t) in self.ticks.iter().enumerate() {
            if let Some((g, _)) = &t.estimate {
                span_of[k] = spans.len();
                spans.push(ScoreSpan {
                    parts: Vec::new(),
                    predicted_w: *g,
                });
            }
        }
        for (i, iv) in ds.iter().enumerate() {
            for (k, f) in self.ticks_over(&iv, Some(i)) {
                if let Some(s) = spans.get_mut(span_of[k]) {
                    s.parts.push((i, f));
                }
            }
        }
        Some(spans)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analyze::{replay_trace, Analysis};
    use crate::progress::Progress;
    use crate::synth::{self, SynthArgs};

    /// The package's dataset of a trace replayed on the grid of `interval`, as the main
    /// command builds it (one package: every CPU's cells).
    fn dataset(trace: &std::path::Path, interval: Duration) -> Dataset {
        let progress = Progress::new(&[trace], false);
        let an: Analysis = replay_trace(
            trace,
            crate::quality::interval::IntervalArg::Fixed(interval),
            false,
            None,
            crate::join::JoinMode::Auto,
            &progress.input(trace),
        )
        .expect("replay");
        let spans = an.grid.spans();
        let mut cells: HashMap<(usize, u64), crate::replay::cpu::Usage> = HashMap::new();
        for c in an.rep.per_package.values().flat_map(|c| c.iter()) {
            let (i, cg, u) = c.expect("read back");
            cells.entry((i, cg)).or_default().add(&u);
        }
        Dataset::from_unsorted(
            an.rep.columns.clone(),
            &spans,
            &(0..an.grid.len())
                .map(|i| (an.energy[0].known(i), true))
                .collect::<Vec<_>>(),
            cells.into_iter().map(|((i, cg), u)| (i, cg, u)).collect(),
        )
        .expect("spilled")
    }

    /// With 300 ms intervals a 1 s tick cannot be whole intervals: each tick is exactly 1 s,
    /// and the power SmartWatts reports for it (its energy over the period) is the power
    /// measured over that second — from the 10 ms energy readings, not from the split.
    #[test]
    fn ticks_are_exactly_the_period_and_their_power_is_the_measured_one() {
        let d = tempfile::tempdir().expect("tempdir");
        let trace = d.path().join("s.pws");
        let mut a = SynthArgs::new(trace.clone());
        (a.seconds, a.seed) = (25, 3);
        synth::run(&a).expect("synth");
        let coarse = dataset(&trace, Duration::from_millis(300));
        let fine = dataset(&trace, Duration::from_millis(10));
        let mut m =
            SmartWattsModel::new(SmartWattsConfig::default(), Scope::Cpu, TickSource::Period);
        m.fit(&coarse, &[]).unwrap();
        let t0 = coarse.interval(0).start;
        assert_eq!(fine.interval(0).start, t0);
        let span = coarse.last().expect("intervals").end - t0;
        assert_eq!(m.ticks.len() as u64, span / 1_000_000_000);
        let mut checked = 0;
        let parts = m.tick_parts(&coarse, 1_000_000_000);
        assert_eq!(parts.len(), m.ticks.len());
        for (k, (t, parts)) in m.ticks.iter().zip(&parts).enumerate() {
            let secs: f64 = parts
                .iter()
                .map(|&(i, f)| f * coarse.interval(i).secs())
                .sum();
            assert!((secs - 1.0).abs() < 1e-9, "tick {k}: {secs} s");
            let (a, b) = (
                t0 + k as u64 * 1_000_000_000,
                t0 + (k as u64 + 1) * 1_000_000_000,
            );
            let measured_j: f64 = fine
                .iter()
                .filter(|iv| iv.start >= a && iv.end <= b)
                .map(|iv| iv.energy_j)
                .sum();
            let rapl_w = t.rapl_w.expect("every tick reported");
            assert!(
                (rapl_w - measured_j).abs() < 0.03 * measured_j,
                "tick {k}: SmartWatts' RAPL power {rapl_w} W, measured {measured_j} W"
            );
            checked += 1;
        }
        assert!(checked >= 24, "{checked} ticks");
        // It is scored at those ticks: one span per estimated tick, each exactly its tick.
        let spans = m.score_spans(&coarse).expect("spans");
        let estimating: Vec<&Vec<(usize, f64)>> = m
            .ticks
            .iter()
            .zip(&parts)
            .filter(|(t, _)| t.estimate.is_some())
            .map(|(_, p)| p)
            .collect();
        assert_eq!(spans.len(), estimating.len());
        // Found from the intervals' times, each span is its tick's split.
        for (s, p) in spans.iter().zip(estimating) {
            assert_eq!(&s.parts, p);
        }
        // And each interval's ticks, asked one interval at a time, are the same split.
        for (i, iv) in coarse.iter().enumerate() {
            let mine: Vec<(usize, f64)> = m.ticks_over(&iv, None).collect();
            let split: Vec<(usize, f64)> = parts
                .iter()
                .enumerate()
                .filter_map(|(k, p)| p.iter().find(|x| x.0 == i).map(|x| (k, x.1)))
                .collect();
            assert_eq!(mine, split, "interval {i}");
        }
        assert!(spans.len() >= 14, "{} ticks estimated", spans.len());
    }

    /// SmartWatts with its defaults run over `ds`, each interval a tick (hwpc-sensor's).
    fn fitted_on_intervals(ds: &Dataset) -> SmartWattsModel {
        let mut m = SmartWattsModel::new(
            SmartWattsConfig::default(),
            Scope::Cpu,
            TickSource::Intervals,
        );
        m.fit(ds, &[]).unwrap();
        m
    }

    /// hwpc-sensor's own ticks: each interval is one tick, all of it in that tick. An
    /// interval's power is its tick's estimate, its cgroups' weights that tick's targets', and
    /// the model is scored on the estimating ticks, each the one interval.
    #[test]
    fn intervals_as_ticks_are_estimated_and_scored_each_on_its_own() {
        let intervals: Vec<Interval> = (0..60u64)
            .map(|i| {
                let u = |ns: u64| crate::replay::cpu::Usage {
                    cpu_ns: ns,
                    counters: smallvec::smallvec![],
                };
                let (a, b) = (
                    100_000_000 + (i * 37 % 11) * 60_000_000,
                    (i * 53 % 7) * 90_000_000,
                );
                Interval {
                    start: 5_000_000_000 + i * 1_000_000_000,
                    end: 5_000_000_000 + (i + 1) * 1_000_000_000,
                    energy_j: 20.0 + 30.0 * (a + b) as f64 / 1e9 + (i % 3) as f64 * 0.1,
                    fitted: true,
                    cgroups: vec![(7, u(a)), (9, u(b))],
                    total: u(a + b),
                }
            })
            .collect();
        let ds = Dataset::of_intervals(vec![], intervals);
        let m = fitted_on_intervals(&ds);
        assert!(m.estimated(), "{:?}", m.note);
        assert_eq!(m.ticks.len(), ds.len());
        let spans = m.score_spans(&ds).expect("spans");
        let mut k_spans = spans.iter();
        for (k, t) in m.ticks.iter().enumerate() {
            let iv = ds.interval(k);
            let Some((g, targets)) = &t.estimate else {
                assert!(m.predict_w(&iv).is_nan(), "tick {k}: no estimate");
                continue;
            };
            assert_eq!(m.predict_w(&iv), *g, "tick {k}");
            let s = k_spans.next().expect("a span per estimating tick");
            assert_eq!((s.parts.as_slice(), s.predicted_w), (&[(k, 1.0)][..], *g));
            let want: Vec<f64> = [7u64, 9]
                .iter()
                .map(|cg| {
                    targets
                        .iter()
                        .find(|x| x.0 == *cg)
                        .map_or(0.0, |x| x.1.max(0.0))
                })
                .collect();
            assert_eq!(m.weights(&iv), want, "tick {k}");
        }
        assert!(k_spans.next().is_none());
        assert_eq!(m.intervals_estimated, spans.len());
    }

    /// A dataset of `n` 1 s intervals in which one cgroup runs: too few ticks to learn from.
    #[test]
    fn too_few_ticks_estimate_nothing_and_say_so() {
        let intervals: Vec<Interval> = (0..8u64)
            .map(|i| {
                let u = crate::replay::cpu::Usage {
                    cpu_ns: 500_000_000,
                    counters: smallvec::smallvec![],
                };
                Interval {
                    start: i * 1_000_000_000,
                    end: (i + 1) * 1_000_000_000,
                    energy_j: 30.0,
                    fitted: true,
                    cgroups: vec![(7, u.clone())],
                    total: u,
                }
            })
            .collect();
        let ds = Dataset::of_intervals(vec![], intervals);
        let m = fitted_on_intervals(&ds);
        assert!(!m.estimated());
        assert!(
            m.note
                .as_deref()
                .is_some_and(|n| n.contains("estimated nothing")),
            "{:?}",
            m.note
        );
        // A switched-off formula runs nothing, and says which switch.
        let mut off = SmartWattsModel::new(
            SmartWattsConfig {
                disable_cpu_formula: true,
                ..SmartWattsConfig::default()
            },
            Scope::Cpu,
            TickSource::Intervals,
        );
        off.fit(&ds, &[]).unwrap();
        assert!(!off.estimated());
        assert!(off
            .note
            .as_deref()
            .is_some_and(|n| n.contains("--disable-cpu-formula")));
    }
}
