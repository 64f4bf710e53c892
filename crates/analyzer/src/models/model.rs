//! The interface every power model implements, and the three simple ones.
//!
//! A model does two things on the same data: it predicts an interval's total power from what
//! ran (so its error against the measurement can be compared on held-out time), and it weighs
//! each cgroup's share of the interval's dynamic power (so energy can be attributed). The
//! attribution itself always splits the *measured* power, so every model's attributed energy
//! plus the unassigned row adds up to the measurement.

use super::dataset::{Dataset, Interval};
use super::linear;
use crate::replay::cpu::{Usage, CLOCK_COUNTERS};

pub trait Model: Send + Sync {
    fn name(&self) -> String;
    /// Fits on the intervals `train` (indices into `ds.intervals`).
    fn fit(&mut self, ds: &Dataset, train: &[usize]);
    /// Total power (W) the model expects in interval `iv`.
    fn predict_w(&self, iv: &Interval) -> f64;
    /// Static power (W): what the machine draws with nothing running.
    fn idle_w(&self) -> f64;
    /// The weight of some usage over `secs` in an interval's dynamic power (non-negative; the
    /// caller normalises over the interval's cgroups).
    fn weight(&self, u: &Usage, secs: f64) -> f64;
    /// Each cgroup's weight, aligned with `iv.cgroups`.
    fn weights(&self, iv: &Interval) -> Vec<f64> {
        iv.cgroups
            .iter()
            .map(|(_, u)| self.weight(u, iv.secs()))
            .collect()
    }
    /// Fitted parameters, for the `models` table.
    fn params(&self) -> Vec<(String, f64)>;
    /// The spans the model must be scored over, when not each interval on its own: a model
    /// that estimates at its own tick (SmartWatts) is judged on that tick's mean power, not on
    /// the grid's 10 ms intervals inside it.
    fn score_spans(&self) -> Option<Vec<ScoreSpan>> {
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
            let iv = &ds.intervals[i];
            j += f * iv.energy_j;
            secs += f * iv.secs();
        }
        j / secs
    }

    /// The interval holding most of the span: the span belongs to its cross-validation fold.
    pub fn home(&self, ds: &Dataset) -> Option<usize> {
        self.parts
            .iter()
            .map(|&(i, f)| (i, f * ds.intervals[i].secs()))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

/// The feature a share model splits by.
#[derive(Debug, Clone)]
enum Feature {
    CpuTime,
    Counter(usize, String),
}

impl Feature {
    fn of(&self, u: &Usage) -> f64 {
        match self {
            Feature::CpuTime => u.cpu_ns as f64,
            Feature::Counter(i, _) => u.counters.get(*i).copied().unwrap_or(0.0),
        }
    }
}

/// `cpu-share` (Scaphandre, Kepler 0.10) and `counter-ratio` (Kepler's ratio model): power =
/// idle + slope × the feature's total per second, fitted by least squares; each cgroup's
/// dynamic share is its share of the feature.
#[derive(Debug, Clone)]
pub struct ShareModel {
    name: &'static str,
    feature: Feature,
    fit: linear::Fit,
    /// Why the counter was replaced by CPU time, if it was.
    pub fallback: Option<String>,
}

impl ShareModel {
    pub fn cpu_share() -> Self {
        Self {
            name: "cpu-share",
            feature: Feature::CpuTime,
            fit: linear::Fit::default(),
            fallback: None,
        }
    }

    /// Splits by `counter` (e.g. "instructions", "cycles"); falls back to CPU time when the
    /// trace has no such counter or it never counted (a VM without a PMU).
    pub fn counter_ratio(ds: &Dataset, counter: &str) -> Self {
        let counted = ds.column(counter).filter(|&i| {
            ds.intervals
                .iter()
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
            fit: linear::Fit::default(),
            fallback,
        }
    }

    fn rate(&self, iv: &Interval) -> f64 {
        self.feature.of(&iv.total) / iv.secs()
    }
}

impl Model for ShareModel {
    fn name(&self) -> String {
        self.name.to_owned()
    }

    fn fit(&mut self, ds: &Dataset, train: &[usize]) {
        let xs: Vec<Vec<f64>> = train
            .iter()
            .map(|&i| vec![self.rate(&ds.intervals[i])])
            .collect();
        let y: Vec<f64> = train.iter().map(|&i| ds.intervals[i].power_w()).collect();
        if let Some(f) = linear::fit(&xs, &y, 0.0) {
            self.fit = f;
        }
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.fit.predict(&[self.rate(iv)])
    }

    fn idle_w(&self) -> f64 {
        self.fit.intercept.max(0.0)
    }

    fn weight(&self, u: &Usage, _secs: f64) -> f64 {
        self.feature.of(u)
    }

    fn params(&self) -> Vec<(String, f64)> {
        let what = match &self.feature {
            Feature::CpuTime => "cpu_ns".to_owned(),
            Feature::Counter(_, n) => n.clone(),
        };
        vec![
            ("idle_w".into(), self.fit.intercept),
            (
                format!("w_per_{what}_per_s"),
                self.fit.coef.first().copied().unwrap_or(0.0),
            ),
        ]
    }
}

/// `linear-offline`: ridge regression of power on every feature the trace has (CPU time and
/// each counter, per second), fitted on the whole trace — what an offline analyser can do and
/// an online meter cannot. A cgroup's dynamic weight is its own features through the same
/// coefficients (negative contributions clipped to zero).
#[derive(Debug, Clone)]
pub struct LinearOffline {
    pub ridge: f64,
    fit: linear::Fit,
    names: Vec<String>,
    /// Counter columns used, by index into the usage's counters.
    columns: Vec<usize>,
}

impl LinearOffline {
    /// Features: CPU time and every counter but the clocks (`features` restricts them to the
    /// named ones). A tiny ridge keeps collinear counters solvable.
    pub fn new(ds: &Dataset, ridge: f64, features: Option<&[String]>) -> Self {
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
        Self {
            ridge: ridge.max(1e-9),
            fit: linear::Fit::default(),
            names,
            columns,
        }
    }

    fn features(&self, u: &Usage, secs: f64) -> Vec<f64> {
        let mut x = Vec::with_capacity(self.names.len());
        x.push(u.cpu_ns as f64 / secs);
        for &k in &self.columns {
            x.push(u.counters.get(k).copied().unwrap_or(0.0) / secs);
        }
        x
    }
}

impl Model for LinearOffline {
    fn name(&self) -> String {
        "linear-offline".into()
    }

    fn fit(&mut self, ds: &Dataset, train: &[usize]) {
        let xs: Vec<Vec<f64>> = train
            .iter()
            .map(|&i| self.features(&ds.intervals[i].total, ds.intervals[i].secs()))
            .collect();
        let y: Vec<f64> = train.iter().map(|&i| ds.intervals[i].power_w()).collect();
        if let Some(f) = linear::fit(&xs, &y, self.ridge) {
            self.fit = f;
        }
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.fit.predict(&self.features(&iv.total, iv.secs()))
    }

    fn idle_w(&self) -> f64 {
        self.fit.intercept.max(0.0)
    }

    fn weight(&self, u: &Usage, secs: f64) -> f64 {
        let x = self.features(u, secs);
        self.fit
            .coef
            .iter()
            .zip(&x)
            .map(|(c, v)| c * v)
            .sum::<f64>()
            .max(0.0)
    }

    fn params(&self) -> Vec<(String, f64)> {
        let mut p = vec![
            ("idle_w".to_owned(), self.fit.intercept),
            ("ridge".to_owned(), self.ridge),
        ];
        for (n, c) in self.names.iter().zip(&self.fit.coef) {
            p.push((format!("w_per_{n}_per_s"), *c));
        }
        p
    }
}
