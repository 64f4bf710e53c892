//! The interface every power model implements, and the three simple ones.
//!
//! A model does two things on the same data: it predicts an interval's total power from what
//! ran (so its error against the measurement can be compared on held-out time), and it weighs
//! each cgroup's share of the interval's dynamic power (so energy can be attributed). The
//! attribution itself always splits the *measured* power, so every model's attributed energy
//! plus the unassigned row adds up to the measurement.

use super::dataset::{Dataset, Interval};
use super::linear::{self, FitError};
use crate::replay::cpu::{Usage, CLOCK_COUNTERS};

pub trait Model: Send + Sync {
    fn name(&self) -> String;
    /// Fits on the intervals `train` (indices into `ds.intervals`). On an error the model
    /// keeps no coefficients (none of an earlier fit): it predicts nothing until a fit succeeds.
    fn fit(&mut self, ds: &Dataset, train: &[usize]) -> Result<(), FitError>;
    /// Total power (W) the model expects in interval `iv`.
    fn predict_w(&self, iv: &Interval) -> f64;
    /// Static power (W): what the machine draws with nothing running.
    fn idle_w(&self) -> f64;
    /// The weight of some usage over `secs` in an interval's dynamic power (non-negative; the
    /// caller normalises over the interval's cgroups).
    fn weight(&self, u: &Usage, secs: f64) -> f64;
    /// The weight of usage `u` of cgroup `cg` in interval `iv`: [`Model::weight`] for a model
    /// whose coefficients are the same for every cgroup and all the time; a model with a
    /// coefficient per function or per stretch of time overrides it.
    fn cgroup_weight(&self, iv: &Interval, _cg: u64, u: &Usage) -> f64 {
        self.weight(u, iv.secs())
    }
    /// Each cgroup's weight, aligned with `iv.cgroups`.
    fn weights(&self, iv: &Interval) -> Vec<f64> {
        iv.cgroups
            .iter()
            .map(|(cg, u)| self.cgroup_weight(iv, *cg, u))
            .collect()
    }
    /// Static power (W) in interval `iv`: [`Model::idle_w`] but for a model whose intercept
    /// moves over the run.
    fn idle_w_at(&self, _iv: &Interval) -> f64 {
        self.idle_w()
    }
    /// Fitted parameters, for the `models` table.
    fn params(&self) -> Vec<(String, f64)>;
    /// What the last fit left out or constrained, one sentence each, for the summary notes.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// The spans the model must be scored over, when not each interval on its own: a model
    /// that estimates at its own tick (SmartWatts) is judged on that tick's mean power, not on
    /// the grid's 10 ms intervals inside it.
    fn score_spans(&self, _ds: &Dataset) -> Option<Vec<ScoreSpan>> {
        None
    }
}

/// A span a model is scored over: parts of intervals, and the model's mean power over it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSpan {
    /// (interval index, fraction of that interval inside the span).
    pub parts: Vec<(usize, f64)>,
    pub predicted_w: f64,
}

impl ScoreSpan {
    /// The measured mean power over the span.
    pub fn measured_w(&self, ds: &Dataset) -> f64 {
        let (mut j, mut secs) = (0.0, 0.0);
        for &(i, f) in &self.parts {
            let iv = &*ds.interval(i);
            j += f * iv.energy_j;
            secs += f * iv.secs();
        }
        j / secs
    }

    /// How long the span lasts, in seconds.
    pub fn secs(&self, ds: &Dataset) -> f64 {
        self.parts
            .iter()
            .map(|&(i, f)| f * ds.interval(i).secs())
            .sum()
    }

    /// The interval holding most of the span: the span belongs to its cross-validation fold.
    pub fn home(&self, ds: &Dataset) -> Option<usize> {
        self.parts
            .iter()
            .map(|&(i, f)| (i, f * ds.interval(i).secs()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

/// The feature a share model splits by.
#[derive(Debug, Clone)]
enum Feature {
    CpuTime,
    Counter(usize, String),
    /// A GPU's SM-busy time, its usage's one counter (`gpu::utilization::SM_BUSY`).
    SmBusy,
}

impl Feature {
    fn of(&self, u: &Usage) -> f64 {
        match self {
            Feature::CpuTime => u.cpu_ns as f64,
            Feature::SmBusy => u.counters.first().copied().unwrap_or(0.0),
            Feature::Counter(i, _) => u.counters.get(*i).copied().unwrap_or(0.0),
        }
    }
}

/// `cpu-share` (Scaphandre, Kepler 0.10) and `counter-ratio` (Kepler's ratio model): power =
/// idle + slope × the feature's total per second, fitted by least squares with the slope ≥ 0
/// (a power that falls as more runs would be no power per unit); each cgroup's dynamic share is
/// its share of the feature.
#[derive(Debug, Clone)]
pub struct ShareModel {
    name: &'static str,
    feature: Feature,
    /// None before a successful fit, and after a failed one.
    fit: Option<linear::Fit>,
    /// Why the counter was replaced by CPU time, if it was.
    pub fallback: Option<String>,
}

impl ShareModel {
    pub fn cpu_share() -> Self {
        Self {
            name: "cpu-share",
            feature: Feature::CpuTime,
            fit: None,
            fallback: None,
        }
    }

    /// `sm-share`, a GPU's: power = idle + slope × SM-busy time per second; each cgroup's
    /// dynamic share is its share of the SM-busy time (Kepler's and Alumet's GPU split, with
    /// the idle power fitted rather than taken as the lowest reading).
    pub fn sm_share() -> Self {
        Self {
            name: "sm-share",
            feature: Feature::SmBusy,
            fit: None,
            fallback: None,
        }
    }

    /// Splits by `counter` (e.g. "instructions", "cycles"); falls back to CPU time when the
    /// trace has no such counter or it never counted (a VM without a PMU).
    pub fn counter_ratio(ds: &Dataset, counter: &str) -> Self {
        let counted = ds.column(counter).filter(|&i| {
            ds.iter()
                .any(|iv| iv.total.counters.get(i).is_some_and(|v| *v > 0.0))
        });
        let (feature, fallback) = match counted {
            Some(i) => (Feature::Counter(i, counter.to_owned()), None),
            None => (
                Feature::CpuTime,
                Some(format!(
                    "counter {counter:?} not in this trace or always zero: split by CPU time"
                )),
            ),
        };
        Self {
            name: "counter-ratio",
            feature,
            fit: None,
            fallback,
        }
    }

    fn rate(&self, iv: &Interval) -> f64 {
        self.feature.of(&iv.total) / iv.secs()
    }

    fn feature_name(&self) -> String {
        match &self.feature {
            Feature::CpuTime => "cpu_ns".to_owned(),
            Feature::SmBusy => "sm_busy_ns".to_owned(),
            Feature::Counter(_, n) => n.clone(),
        }
    }
}

/// Ordinary least squares, except that power per unit of a feature is never negative.
const NONNEG: linear::Options = linear::Options {
    ridge: 0.0,
    nonneg: true,
};

impl Model for ShareModel {
    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn fit(&mut self, ds: &Dataset, train: &[usize]) -> Result<(), FitError> {
        let mut xs = linear::Design::with_capacity(1, train.len());
        for &i in train {
            xs.push(&[self.rate(&ds.interval(i))])?;
        }
        let y: Vec<f64> = train.iter().map(|&i| ds.interval(i).power_w()).collect();
        self.fit = None;
        self.fit = Some(linear::fit(xs.rows(), &y, NONNEG)?);
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.fit
            .as_ref()
            .map_or(f64::NAN, |f| f.predict(&[self.rate(iv)]))
    }

    fn idle_w(&self) -> f64 {
        self.fit.as_ref().map_or(0.0, |f| f.intercept.max(0.0))
    }

    fn weight(&self, u: &Usage, _secs: f64) -> f64 {
        self.feature.of(u)
    }

    fn params(&self) -> Vec<(String, f64)> {
        let Some(fit) = &self.fit else {
            return Vec::new();
        };
        let what = self.feature_name();
        let mut p = vec![
            ("idle_w".into(), fit.intercept),
            (
                format!("w_per_{what}_per_s"),
                fit.coef.first().copied().unwrap_or(0.0),
            ),
        ];
        for (_, free) in &fit.pinned {
            p.push((format!("pinned:{what}"), *free));
        }
        p
    }

    fn notes(&self) -> Vec<String> {
        self.fit
            .as_ref()
            .map(|f| f.notes(&[self.feature_name()], "/s"))
            .unwrap_or_default()
    }
}

/// `linear-offline`: least squares (ridge if asked) of power on every feature the trace has
/// (CPU time and each counter, per second), fitted on the whole trace — what an offline
/// analyser can do and an online meter cannot. Coefficients are constrained to ≥ 0 (power per
/// unit of work is never negative), constant and collinear features are dropped (see
/// [`linear`]), so a cgroup's dynamic weight, its own features through the same coefficients,
/// is ≥ 0 without any clipping.
#[derive(Debug, Clone)]
pub struct LinearOffline {
    pub ridge: f64,
    /// None before a successful fit, and after a failed one.
    fit: Option<linear::Fit>,
    names: Vec<String>,
    /// Counter columns used, by index into the usage's counters.
    columns: Vec<usize>,
}

impl LinearOffline {
    /// Features: see [`feature_set`].
    pub fn new(ds: &Dataset, ridge: f64, features: Option<&[String]>) -> Self {
        let (names, columns) = feature_set(ds, features);
        Self {
            ridge,
            fit: None,
            names,
            columns,
        }
    }

    fn features(&self, u: &Usage, secs: f64) -> Features {
        feature_rates(u, &self.columns, secs)
    }
}

/// The regression models' features: CPU time first (it is kept over any counter collinear with
/// it) and every counter but the clocks (`features` restricts them to the named ones). Returns
/// the names (`cpu_ns` first) and the counters' columns in the usage.
pub fn feature_set(ds: &Dataset, features: Option<&[String]>) -> (Vec<String>, Vec<usize>) {
    let mut names = vec!["cpu_ns".to_owned()];
    let mut columns = Vec::new();
    for (i, c) in ds.columns.iter().enumerate() {
        let wanted = match features {
            Some(f) => f.iter().any(|x| x == c),
            None => !CLOCK_COUNTERS.contains(&c.as_str()),
        };
        if wanted {
            names.push(c.clone());
            columns.push(i);
        }
    }
    (names, columns)
}

/// A usage's features, inline up to eight: made for every cgroup, interval, model and policy
/// of the attribution, where a heap allocation each was a tenth of an hour's analysis.
pub type Features = smallvec::SmallVec<[f64; 8]>;

/// Usage `u` over `secs` as the features of [`feature_set`], per second.
pub fn feature_rates(u: &Usage, columns: &[usize], secs: f64) -> Features {
    let mut x = Features::with_capacity(columns.len() + 1);
    x.push(u.cpu_ns as f64 / secs);
    for &k in columns {
        x.push(u.counters.get(k).copied().unwrap_or(0.0) / secs);
    }
    x
}

impl Model for LinearOffline {
    fn name(&self) -> String {
        "linear-offline".into()
    }

    fn fit(&mut self, ds: &Dataset, train: &[usize]) -> Result<(), FitError> {
        let mut xs = linear::Design::with_capacity(self.names.len(), train.len());
        for &i in train {
            let iv = &*ds.interval(i);
            xs.push(&self.features(&iv.total, iv.secs()))?;
        }
        let y: Vec<f64> = train.iter().map(|&i| ds.interval(i).power_w()).collect();
        self.fit = None;
        let opts = linear::Options {
            ridge: self.ridge,
            nonneg: true,
        };
        self.fit = Some(linear::fit(xs.rows(), &y, opts)?);
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.fit.as_ref().map_or(f64::NAN, |f| {
            f.predict(&self.features(&iv.total, iv.secs()))
        })
    }

    fn idle_w(&self) -> f64 {
        self.fit.as_ref().map_or(0.0, |f| f.intercept.max(0.0))
    }

    /// Coefficients ≥ 0 and features (CPU time, counter deltas) ≥ 0: never negative.
    fn weight(&self, u: &Usage, secs: f64) -> f64 {
        let Some(fit) = &self.fit else {
            return 0.0;
        };
        let x = self.features(u, secs);
        fit.coef.iter().zip(&x).map(|(c, v)| c * v).sum::<f64>()
    }

    fn params(&self) -> Vec<(String, f64)> {
        let Some(fit) = &self.fit else {
            return Vec::new();
        };
        let mut p = vec![
            ("idle_w".to_owned(), fit.intercept),
            ("ridge".to_owned(), self.ridge),
        ];
        let is_dropped = |j: usize| fit.dropped.iter().any(|(d, _)| *d == j);
        for (j, (n, c)) in self.names.iter().zip(&fit.coef).enumerate() {
            if !is_dropped(j) {
                p.push((format!("w_per_{n}_per_s"), *c));
            }
        }
        for (j, why) in &fit.dropped {
            // The residual of a collinear feature; null (NaN) for a constant one.
            let v = match why {
                linear::Dropped::Collinear { residual, .. } => *residual,
                linear::Dropped::Constant { .. } => f64::NAN,
            };
            p.push((format!("dropped:{}", self.names[*j]), v));
        }
        for (j, free) in &fit.pinned {
            p.push((format!("pinned:{}", self.names[*j]), *free));
        }
        p
    }

    fn notes(&self) -> Vec<String> {
        let Some(fit) = &self.fit else {
            return Vec::new();
        };
        let mut notes = fit.notes(&self.names, "/s");
        if !fit.pinned.is_empty() {
            notes.push(
                "features held at 0 give a cgroup no dynamic power, however much of them it uses"
                    .into(),
            );
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 s intervals, two cgroups; counters ref-cycles (3.7 per CPU-ns, up to 1e-10 relative
    /// noise), instructions, cache-misses. Power: 40 W + 8 W per busy CPU + 2 nJ per
    /// instruction − 5 nJ per cache miss (which a non-negative fit must refuse).
    fn ds() -> Dataset {
        let intervals = (0..40u64)
            .map(|i| {
                let u = |ns: u64, k: u64| Usage {
                    cpu_ns: ns,
                    counters: smallvec::smallvec![
                        3.7 * ns as f64 * (1.0 + 1e-10 * ((k % 5) as f64 - 2.0)),
                        (1 + (k * 7) % 13) as f64 * 1e8,
                        ((k * 5) % 11) as f64 * 1e6,
                    ],
                };
                let (a, b) = (
                    u((1 + i % 3) * 200_000_000, i),
                    u((i % 4) * 150_000_000, i + 17),
                );
                let mut total = a.clone();
                total.add(&b);
                let energy_j = 40.0 + 8.0 * total.cpu_ns as f64 / 1e9 + 2e-9 * total.counters[1]
                    - 5e-9 * total.counters[2];
                Interval {
                    start: i * 1_000_000_000,
                    end: (i + 1) * 1_000_000_000,
                    energy_j,
                    fitted: true,
                    cgroups: vec![(1, a), (2, b)],
                    total,
                }
            })
            .collect();
        Dataset::of_intervals(
            vec![
                "ref-cycles".into(),
                "instructions".into(),
                "cache-misses".into(),
            ],
            intervals,
        )
    }

    #[test]
    fn linear_offline_drops_a_collinear_counter_pins_a_negative_one_and_says_so() {
        let d = ds();
        let mut m = LinearOffline::new(&d, 0.0, None);
        let all: Vec<usize> = (0..d.len()).collect();
        m.fit(&d, &all).unwrap();
        let p: std::collections::HashMap<String, f64> = m.params().into_iter().collect();
        assert_eq!(p["ridge"], 0.0, "no ridge forced on");
        assert!(
            p["dropped:ref-cycles"] > 0.0 && p["dropped:ref-cycles"] <= 1e-8,
            "{p:?}"
        );
        assert!(!p.contains_key("w_per_ref-cycles_per_s"));
        assert_eq!(p["w_per_cache-misses_per_s"], 0.0);
        assert!(p["pinned:cache-misses"] < 0.0, "{p:?}");
        assert!(p["w_per_cpu_ns_per_s"] > 0.0 && p["w_per_instructions_per_s"] > 0.0);
        let notes = m.notes();
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("ref-cycles dropped: collinear with cpu_ns")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("cache-misses held at 0")),
            "{notes:?}"
        );
        for iv in d.iter() {
            assert!(m.weights(&iv).iter().all(|w| *w >= 0.0));
        }
    }
}
