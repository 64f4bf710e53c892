//! The interval a user can quote with each activation's dynamic energy (nominal 95 %), and
//! with a function's mean energy. TABLES.md, `activation_energy`, says what it covers.
//!
//! An activation's dynamic energy is, in every interval it overlaps, its share `s` of the
//! interval's dynamic energy (its usage through the model over everyone's). Its error is that
//! share of the error in the interval's energy, and that error has independent sources, each
//! turned into a 95 % half-width in joules and combined root-sum-square:
//!
//! - **model** (held-out error): the relative error of the model's predicted power on
//!   held-out time (`models::attribute::score`), summed over windows of as many consecutive
//!   held-out points as the activation overlaps intervals, its empirical 95 % quantile (so
//!   correlated errors, a model's bias and a counter's lag are in it as they are in the
//!   activation's sum), applied to the activation's share of the predicted energy;
//! - **static power**: the dynamic energy is what is above the model's idle power, so an error
//!   in that moves energy between idle and dynamic; how far the folds' fits move it (a
//!   delete-a-block jackknife) times the activation's share-seconds;
//! - **counter quantum**: each reading is off by less than the counter's unit, and the
//!   activation's part of that is bounded by the variation of its share across readings;
//! - **usage resolution**: CPU time is exact, but counters are read at samples and spread by
//!   time between two readings, so at each end the counter-driven part of its power is known
//!   to one sampling span;
//! - **update period**: a counter that moves less often than it is read (NVML's 100 ms) shows
//!   each change at a reading after it happened; an activation's ends are then known only to
//!   ±(power × update period) each.
//!
//! An interval whose energy is an energy gap's estimate (the gap's delta spread by time) is not
//! a measurement of that interval: there the activation's share of the difference between the
//! estimate and the model's prediction is added in full, on top of the rest.

use std::collections::HashMap;

use pws_trace::records::EnergySeries;

use super::activation_energy::{share_of_container, ActivationCells};
use super::DomainJoules;
use crate::analyze::Analysis;
use crate::models::attribute::{FoldError, HeldOut};
use crate::models::dataset::Dataset;
use crate::models::model::Model;
use crate::models::recent_intervals::RecentIntervals;
use crate::replay::cpu::{CpuReplay, Usage};
use crate::replay::energy::Energy;

/// z of a two-sided 95 % normal interval: the fallback where there are too few held-out
/// points for an empirical quantile.
const Z95: f64 = 1.959_964;
/// An empirical quantile is taken over windows of at most (held-out points / this) points, so
/// that at least this many disjoint windows stand behind it; longer activations keep the
/// relative error of the longest such window (it is not assumed to shrink further).
const MIN_WINDOWS: usize = 20;
/// A counter moves less often than it is read when its changes are this much further apart
/// than its readings (the spacing of changes is a whole number of readings).
const SLOWER: f64 = 1.5;

/// How finely an energy counter and the usage beside it resolve time and energy.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Resolution {
    /// The counter's quantum (its unit), J.
    pub quantum_j: f64,
    /// Median spacing of its readings, s.
    pub reading_s: f64,
    /// Median spacing of the readings at which its cumulative value changed, s.
    pub update_s: f64,
    /// Mean span between two usage readings (group samples) on a CPU, s: counter deltas are
    /// spread by time inside one. On a GPU, the driver's utilisation sampling period.
    pub usage_s: f64,
    /// On a GPU, the tables' interval, s: a counter that moves (or is read) less often than
    /// the intervals it is spread over leaves an activation's ends unresolved by its period even
    /// when it moves at every reading. 0 elsewhere (CPU counters are read once an interval).
    pub interval_s: f64,
}

impl Resolution {
    /// From the counter's raw readings (those of `e`, if the input kept them) and the CPUs'
    /// sampling.
    pub fn measure(an: &Analysis, e: &Energy) -> Self {
        let series = e.series(&an.l.energy);
        let (reading_s, update_s) = series.map_or((0.0, 0.0), update_period);
        Self {
            quantum_j: series
                .map(|s| s.unit_joules)
                .filter(|u| u.is_finite() && *u > 0.0)
                .unwrap_or(0.0),
            reading_s,
            update_s,
            usage_s: usage_span(&an.rep.per_cpu),
            interval_s: 0.0,
        }
    }

    /// Every counter's (`an.energy`'s, in order), read from the raw readings: taken before the
    /// attribution, which then needs no CPU counter's raw readings (`analyze::write_tables`).
    pub fn of_counters(an: &Analysis) -> Vec<Self> {
        an.energy
            .iter()
            .map(|e| {
                if super::is_gpu(e) {
                    Self::measure_gpu(an, e)
                } else {
                    Self::measure(an, e)
                }
            })
            .collect()
    }

    /// A GPU's counter, compared with the tables' interval. Its usage is not spread from
    /// samples at the activation's ends as a CPU counter's is: a sampling period's SM time goes
    /// whole to the activations that ran in it (`gpu::utilization`), so the period adds no end
    /// error (what it blurs between activations of one container is in the split, like any
    /// model's).
    pub fn measure_gpu(an: &Analysis, e: &Energy) -> Self {
        Self {
            usage_s: 0.0,
            interval_s: an.interval.interval.as_secs_f64(),
            ..Self::measure(an, e)
        }
    }

    /// The period that leaves an activation's ends unresolved, s (0: none beyond the
    /// held-out errors).
    fn unresolved_s(&self) -> f64 {
        if self.update_s > SLOWER * self.reading_s {
            self.update_s
        } else if self.interval_s > 0.0
            && self.update_s.max(self.reading_s) > SLOWER * self.interval_s
        {
            self.update_s.max(self.reading_s)
        } else {
            0.0
        }
    }
}

fn median(mut v: Vec<u64>) -> Option<u64> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// (median reading spacing, median spacing of the readings where the counter changed), s. A
/// counter that changed fewer than twice is taken to change at every reading.
pub fn update_period(s: &EnergySeries) -> (f64, f64) {
    let mut samples = s.samples.clone();
    samples.sort_by_key(|x| x.ts_ns);
    let reading = median(
        samples
            .windows(2)
            .map(|w| w[1].ts_ns - w[0].ts_ns)
            .filter(|&d| d > 0)
            .collect(),
    )
    .unwrap_or(0);
    let changes: Vec<u64> = samples
        .windows(2)
        .filter(|w| w[1].raw != w[0].raw)
        .map(|w| w[1].ts_ns)
        .collect();
    let update = median(changes.windows(2).map(|w| w[1] - w[0]).collect())
        .unwrap_or(reading)
        .max(reading);
    (reading as f64 / 1e9, update as f64 / 1e9)
}

/// Median over CPUs of their mean span between group samples, s (0 without samples).
fn usage_span(cpus: &[CpuReplay]) -> f64 {
    let spans: Vec<u64> = cpus
        .iter()
        .filter(|c| c.stats.group_samples > 1 && c.stats.last_ns > c.stats.first_ns)
        .map(|c| (c.stats.last_ns - c.stats.first_ns) / (c.stats.group_samples - 1))
        .collect();
    median(spans).map_or(0.0, |ns| ns as f64 / 1e9)
}

/// A model's held-out errors, as relative errors of its predicted energy over windows of
/// consecutive held-out points.
#[derive(Debug, Clone)]
pub struct HeldOutError {
    /// Per fold, in time order: (measured − predicted, predicted) energy of each point, J.
    folds: Vec<Vec<(f64, f64)>>,
    points: usize,
    /// Median length of a point (an interval, or the model's own tick), s.
    point_s: f64,
    /// |Σ (measured − predicted)| / Σ predicted over every point: the part of the error
    /// common to every activation, which no number of them averages out.
    pub bias: f64,
    /// Root mean square of the points' relative errors (the Gaussian fallback).
    rms: f64,
    /// Window length → 95 % quantile of the window's |relative error|.
    quantiles: HashMap<usize, f64>,
}

impl HeldOutError {
    /// None where the model was scored on nothing (a failed cross-validation, an online
    /// model still learning): its error is unknown.
    ///
    /// The folds' points are taken: each fold's are dropped once copied (on an hour's trace
    /// they were held, and copied into vectors grown by doubling, through the model's whole
    /// attribution).
    pub fn from_folds(errs: Vec<FoldError>) -> Option<Self> {
        let point = |h: &HeldOut| {
            let p = h.predicted_w * h.secs;
            (h.measured_w * h.secs - p, p)
        };
        let scored = |h: &&HeldOut| h.secs > 0.0;
        let mut secs: Vec<f64> = errs
            .iter()
            .flat_map(|f| &f.held_out)
            .filter(scored)
            .map(|h| h.secs)
            .collect();
        let folds: Vec<Vec<(f64, f64)>> = errs
            .into_iter()
            .map(|f| {
                let mut v = Vec::with_capacity(f.held_out.iter().filter(scored).count());
                v.extend(f.held_out.iter().filter(scored).map(point));
                v
            })
            .filter(|f| !f.is_empty())
            .collect();
        let points: usize = folds.iter().map(Vec::len).sum();
        let (mut sum_r, mut sum_p, mut sq, mut n) = (0.0, 0.0, 0.0, 0usize);
        for &(r, p) in folds.iter().flatten() {
            sum_r += r;
            sum_p += p;
            if p > 0.0 {
                sq += (r / p).powi(2);
                n += 1;
            }
        }
        if n == 0 || sum_p <= 0.0 {
            return None;
        }
        secs.sort_by(f64::total_cmp);
        Some(Self {
            point_s: secs[secs.len() / 2],
            points,
            bias: sum_r.abs() / sum_p,
            rms: (sq / n as f64).sqrt(),
            folds,
            quantiles: HashMap::new(),
        })
    }

    /// The 95 % quantile of |Σ (measured − predicted)| / Σ predicted over windows of `m`
    /// consecutive held-out points of one fold (every such window, overlapping).
    pub fn relative(&mut self, m: usize) -> f64 {
        if self.points < MIN_WINDOWS {
            return Z95 * self.rms;
        }
        let longest = self.folds.iter().map(Vec::len).max().unwrap_or(1);
        let m = ladder(m.clamp(1, (self.points / MIN_WINDOWS).clamp(1, longest)));
        if let Some(q) = self.quantiles.get(&m) {
            return *q;
        }
        let mut rel = Vec::new();
        for f in &self.folds {
            let (mut r, mut p) = (0.0, 0.0);
            for (i, &(ri, pi)) in f.iter().enumerate() {
                r += ri;
                p += pi;
                if i >= m {
                    r -= f[i - m].0;
                    p -= f[i - m].1;
                }
                if i + 1 >= m && p > 0.0 {
                    rel.push((r / p).abs());
                }
            }
        }
        let q = if rel.is_empty() {
            Z95 * self.rms
        } else {
            // The upper empirical quantile: at least 95 % of the windows are within it.
            let k = ((0.95 * rel.len() as f64).ceil() as usize).clamp(1, rel.len());
            *rel.select_nth_unstable_by(k - 1, f64::total_cmp).1
        };
        self.quantiles.insert(m, q);
        q
    }
}

/// `m` with all but its three highest bits cleared (at most 12.5 % less): the windows a long
/// trace's activations need come in a few dozen lengths rather than one per activation, and a
/// shorter window's relative error is, if anything, larger.
fn ladder(m: usize) -> usize {
    let keep = (usize::BITS - m.leading_zeros()).saturating_sub(3);
    m >> keep << keep
}

/// What one activation's dynamic energy on one counter is exposed to, from the intervals its
/// window overlaps.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Exposure {
    /// Intervals it overlaps, and their length (s).
    pub intervals: usize,
    pub secs: f64,
    /// Σ x and Σ x², x = its share of an interval's dynamic energy × the interval's predicted
    /// energy (measured where the model predicts nothing): its part of the interval's error.
    pub x1: f64,
    pub x2: f64,
    /// Σ |change of its share| from reading to reading, from 0 before its first interval to 0
    /// after its last: how much of each reading's error can reach it.
    pub share_variation: f64,
    /// The predicted dynamic energy its share gives it that the model draws from counters
    /// rather than CPU time, J.
    pub counter_j: f64,
    /// Σ its share × |estimated − predicted energy| over the intervals whose energy is an
    /// energy gap's estimate, J.
    pub estimated_j: f64,
    /// Σ its share × the interval's length: what an error in the static power reaches, s.
    pub share_secs: f64,
    /// Its own length, s.
    pub length_s: f64,
}

/// Each activation's exposure on the counter of `ds` (in the order of `cells.activations()`;
/// `cells` from `activation_energy::cells`): its share of every interval exactly as
/// `activation_energy::dynamic` gives it, which depends on the model but not the idle policy.
/// Made as they are read, in activation order.
pub fn exposures<'a, 'c>(
    an: &'a Analysis,
    ds: &'a Dataset,
    model: &'a dyn Model,
    cells: &'a ActivationCells<'c>,
) -> impl Iterator<Item = Exposure> + use<'a, 'c> {
    // Recent intervals → (their cgroups' weights, their sum, their predicted power).
    let mut per_interval = RecentIntervals::<(Vec<f64>, f64, f64)>::default();
    let idle_w = model.idle_w();
    (0..cells.activations().len()).map(move |ai| {
        let (start, end) = cells.activations().window(ai);
        let mut x = Exposure {
            length_s: end.saturating_sub(start) as f64 / 1e9,
            ..Exposure::default()
        };
        let container = cells.activations().container(ai);
        let Some(cg) = container.and_then(|c| an.life.cgroup_id(c)) else {
            return x;
        };
        let mut prev = 0.0;
        super::activation_energy::visit_intervals(an, cells, ai, |k| {
            let iv = &*ds.interval(k);
            let secs = iv.secs();
            let (w, sum_w, predicted_w) = per_interval.get_or_make(k, |_| {
                let w = model.weights(iv);
                let sum: f64 = w.iter().sum();
                let p = model.predict_w(iv);
                (w, sum, if p.is_finite() { p } else { iv.power_w() })
            });
            let mut s = 0.0;
            let mut counter_part = 0.0;
            if let (Some(u), Ok(ci)) = (
                cells.get(ai, k),
                iv.cgroups.binary_search_by_key(&cg, |(c, _)| *c),
            ) {
                // The same part of the container as `activation_energy::dynamic` gives.
                let f = share_of_container(model, iv, cg, &u, &iv.cgroups[ci].1);
                if *sum_w > 0.0 {
                    s = f * w[ci].max(0.0) / *sum_w;
                }
                // The part of its weight that counters carry.
                let wa = model.cgroup_weight(iv, cg, &u);
                if wa > 0.0 {
                    let cpu_only = Usage {
                        cpu_ns: u.cpu_ns,
                        counters: smallvec::smallvec![0.0; u.counters.len()],
                    };
                    counter_part =
                        ((wa - model.cgroup_weight(iv, cg, &cpu_only)) / wa).clamp(0.0, 1.0);
                }
            }
            let xi = if predicted_w.is_finite() {
                s * *predicted_w * secs
            } else {
                0.0
            };
            x.intervals += 1;
            x.secs += secs;
            x.x1 += xi;
            x.x2 += xi * xi;
            x.share_secs += s * secs;
            // Finite energy that is not fitted is a gap's estimate (`Status::Estimated`).
            if !iv.fitted && iv.energy_j.is_finite() && predicted_w.is_finite() {
                x.estimated_j += s * (iv.energy_j - *predicted_w * secs).abs();
            }
            x.share_variation += (s - prev).abs();
            prev = s;
            if predicted_w.is_finite() {
                x.counter_j += s * (*predicted_w - idle_w).max(0.0) * secs * counter_part;
            }
        });
        x.share_variation += prev;
        x
    })
}

/// One activation's uncertainty on one counter: the 95 % half-width of its dynamic energy and
/// the part of it common to every activation (the model's bias and its static power's
/// uncertainty), J.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bound {
    pub half_width_j: f64,
    pub systematic_j: f64,
}

/// A model's uncertainty on one counter.
#[derive(Debug, Clone)]
pub struct Uncertainty {
    held_out: Option<HeldOutError>,
    /// 95 % half-width of the static power, W.
    idle_w: f64,
    pub resolution: Resolution,
}

impl Uncertainty {
    /// From the model's cross-validation folds (taken: their points are kept here, in a
    /// smaller form) and the counter's resolution.
    pub fn new(errs: Vec<FoldError>, resolution: Resolution) -> Self {
        let idle_w = idle_half_width(&errs);
        Self {
            held_out: HeldOutError::from_folds(errs),
            idle_w,
            resolution,
        }
    }

    /// What the intervals are made of, for the `models` table (`interval:` rows): the relative
    /// held-out error of one point (its 95 % quantile, null where unknown) and the bias, the
    /// static power's half-width, the counter's quantum, reading and update periods, and the
    /// usage's sampling span.
    pub fn params(&mut self) -> Vec<(String, f64)> {
        let r = self.resolution;
        let (q1, bias) = self
            .held_out
            .as_mut()
            .map_or((f64::NAN, f64::NAN), |h| (h.relative(1), h.bias));
        [
            ("q95_rel", q1),
            ("bias_rel", bias),
            ("idle_w_half_width", self.idle_w),
            ("counter_quantum_j", r.quantum_j),
            ("counter_reading_s", r.reading_s),
            ("counter_update_s", r.update_s),
            ("usage_span_s", r.usage_s),
        ]
        .into_iter()
        .map(|(k, v)| (format!("interval:{k}"), v))
        .collect()
    }

    /// The bound of a dynamic energy with exposure `x`; None where the model's held-out error
    /// is unknown and the activation has a part of the counter's energy.
    pub fn dynamic(&mut self, x: &Exposure) -> Option<Bound> {
        if x.x1 <= 0.0 && x.share_variation <= 0.0 && x.estimated_j <= 0.0 {
            return Some(Bound::default());
        }
        let r = self.resolution;
        let held = self.held_out.as_mut()?;
        let m = if held.point_s > 0.0 {
            (x.secs / held.point_s).round().max(1.0) as usize
        } else {
            x.intervals.max(1)
        };
        // Q_m is the relative error of a sum over m points; × √n ‖x‖₂ gives it back for
        // independent errors (Q_m ≈ 1.96 σ/√m) and over-covers correlated ones (‖x‖₁ ≤ √n ‖x‖₂).
        let model = held.relative(m) * (x.intervals as f64).sqrt() * x.x2.sqrt();
        let quantum = r.quantum_j * x.share_variation;
        let ends = std::f64::consts::SQRT_2;
        let usage = if x.length_s > 0.0 {
            ends * r.usage_s * x.counter_j / x.length_s
        } else {
            0.0
        };
        // A counter that changes at every reading resolves each interval, and its lag inside
        // a reading spacing is in the held-out errors; one that moves less often leaves the
        // activation's ends unresolved by its update period.
        let update = if x.secs > 0.0 {
            ends * r.unresolved_s() * x.x1 / x.secs
        } else {
            0.0
        };
        let idle = self.idle_w * x.share_secs;
        // How far a gap's estimate is from the prediction is a known offset, not a spread.
        let hw = [model, idle, quantum, usage, update]
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
            + x.estimated_j;
        // The model's bias and its static power are the same for every activation.
        Some(Bound {
            half_width_j: hw,
            systematic_j: held.bias * x.x1 + idle,
        })
    }
}

/// The 95 % half-width of the static power from the folds' fits (each on all but one block):
/// the delete-a-block jackknife's standard error, √((k−1)/k · Σ (θᵢ − θ̄)²), times Student's t
/// with k − 1 degrees of freedom. 0 with fewer than two fitted folds.
fn idle_half_width(errs: &[FoldError]) -> f64 {
    let v: Vec<f64> = errs
        .iter()
        .map(|f| f.idle_w)
        .filter(|w| w.is_finite())
        .collect();
    if v.len() < 2 {
        return 0.0;
    }
    let k = v.len() as f64;
    let mean = v.iter().sum::<f64>() / k;
    let ss: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
    student_t95(v.len() - 1) * ((k - 1.0) / k * ss).sqrt()
}

/// Two-sided 95 % quantile of Student's t with `df` degrees of freedom.
fn student_t95(df: usize) -> f64 {
    const T: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    match df {
        0 => f64::INFINITY,
        1..=10 => T[df - 1],
        // Cornish–Fisher's first correction to the normal quantile: within 0.002 beyond 10.
        _ => Z95 + (Z95.powi(3) + Z95) / (4.0 * df as f64),
    }
}

/// (lo, hi) of an activation's dynamic energy: never below 0, and containing it.
pub fn dynamic_bounds(j: &DomainJoules) -> Option<(f64, f64)> {
    let hw = j.half_width_sq?.sqrt();
    Some(((j.dynamic_j - hw).max(0.0), j.dynamic_j + hw))
}

/// What the interval of a mean over activations needs: sums over the n activations.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MeanSums {
    pub n: usize,
    /// Their energy (dynamic + idle), J.
    pub energy_j: f64,
    pub idle_j: f64,
    /// The squares of their dynamic energy's half-widths; None where any is unknown.
    pub half_width_sq: Option<f64>,
    pub systematic_j: f64,
}

impl MeanSums {
    /// The sums over `parts` (the derived tables sum the written rows instead).
    #[cfg(test)]
    pub fn of(parts: impl IntoIterator<Item = DomainJoules>) -> Self {
        let mut s = Self {
            half_width_sq: Some(0.0),
            ..Self::default()
        };
        for j in parts {
            s.n += 1;
            s.energy_j += j.dynamic_j + j.idle_j;
            s.idle_j += j.idle_j;
            s.half_width_sq = s.half_width_sq.zip(j.half_width_sq).map(|(a, b)| a + b);
            s.systematic_j += j.systematic_j;
        }
        s
    }
}

/// (lo, hi) of the mean energy (dynamic + idle) of n activations: their half-widths taken as
/// independent (they shrink with √n), plus their models' bias, common to them all, in full.
/// The idle share is the idle policy's rule, not a measurement: it carries no interval. None
/// where any activation has no bound, or there is none.
pub fn mean_bounds(s: &MeanSums) -> Option<(f64, f64)> {
    let var = s.half_width_sq?;
    if s.n == 0 {
        return None;
    }
    let n = s.n as f64;
    let (mean, hw) = (s.energy_j / n, var.sqrt() / n + s.systematic_j / n);
    Some(((mean - hw).max(s.idle_j / n), mean + hw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::{EnergyDomain, EnergySample, EnergySource};

    fn fold(points: &[(f64, f64)]) -> FoldError {
        FoldError {
            fold: 0,
            n: points.len(),
            mae_w: 0.0,
            mape: 0.0,
            rmse_w: 0.0,
            fit_error: None,
            idle_w: 40.0,
            held_out: points
                .iter()
                .map(|&(predicted_w, measured_w)| HeldOut {
                    predicted_w,
                    measured_w,
                    secs: 0.01,
                })
                .collect(),
        }
    }

    #[test]
    fn the_update_period_is_the_spacing_of_the_counter_s_changes_not_of_its_readings() {
        // Read every 10 ms, moving every 100 ms.
        let s = EnergySeries {
            source: EnergySource::Simulated,
            domain: EnergyDomain::Package,
            index: 0,
            name: "x".into(),
            unit_joules: 1e-6,
            wrap: 0,
            samples: (0..100u64)
                .map(|i| EnergySample {
                    ts_ns: i * 10_000_000,
                    raw: i / 10 * 1000,
                })
                .collect(),
        };
        let (reading, update) = update_period(&s);
        assert!((reading - 0.01).abs() < 1e-12 && (update - 0.1).abs() < 1e-12);
    }

    #[test]
    fn window_lengths_come_from_a_short_ladder_never_above_the_length_asked() {
        assert_eq!(
            (1..=9).map(ladder).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5, 6, 7, 8, 8]
        );
        assert_eq!((ladder(1000), ladder(1023), ladder(1024)), (896, 896, 1024));
        let lengths: std::collections::BTreeSet<usize> = (1..100_000).map(ladder).collect();
        assert!(lengths.len() < 70, "{}", lengths.len());
    }

    #[test]
    fn alternating_errors_cancel_over_windows_and_a_bias_does_not() {
        // ±5 % around 100 W, alternating: one point is 5 % off, two together are exact.
        let pts: Vec<(f64, f64)> = (0..200)
            .map(|i| (100.0, if i % 2 == 0 { 105.0 } else { 95.0 }))
            .collect();
        let mut h = HeldOutError::from_folds(vec![fold(&pts)]).unwrap();
        assert!((h.relative(1) - 0.05).abs() < 1e-9);
        assert!(h.relative(2) < 1e-9);
        assert!(h.bias < 1e-9);
        // A model 3 % low throughout: every window is 3 % off, and that is its bias.
        let pts: Vec<(f64, f64)> = (0..200).map(|_| (100.0, 103.0)).collect();
        let mut h = HeldOutError::from_folds(vec![fold(&pts)]).unwrap();
        assert!((h.relative(1) - 0.03).abs() < 1e-9 && (h.relative(8) - 0.03).abs() < 1e-9);
        assert!((h.bias - 0.03).abs() < 1e-9);
    }

    #[test]
    fn a_model_scored_on_nothing_gives_no_bound_but_no_share_needs_none() {
        let mut u = Uncertainty::new(vec![fold(&[])], Resolution::default());
        let x = Exposure {
            intervals: 2,
            secs: 0.02,
            x1: 0.5,
            x2: 0.125,
            share_variation: 1.0,
            ..Exposure::default()
        };
        assert_eq!(u.dynamic(&x), None);
        let none = Exposure {
            intervals: 2,
            secs: 0.02,
            ..Exposure::default()
        };
        assert_eq!(u.dynamic(&none), Some(Bound::default()));
    }

    #[test]
    fn a_counter_slower_than_its_readings_widens_the_ends() {
        let pts: Vec<(f64, f64)> = (0..200).map(|_| (100.0, 100.0)).collect();
        let x = Exposure {
            intervals: 2,
            secs: 0.02,
            x1: 1.0,
            x2: 0.5,
            ..Exposure::default()
        };
        let res = |update_s| Resolution {
            reading_s: 0.01,
            update_s,
            ..Resolution::default()
        };
        let mut exact = Uncertainty::new(vec![fold(&pts)], res(0.01));
        assert_eq!(exact.dynamic(&x).unwrap().half_width_j, 0.0);
        // 50 W of it, ±100 ms at each end.
        let mut slow = Uncertainty::new(vec![fold(&pts)], res(0.1));
        let hw = slow.dynamic(&x).unwrap().half_width_j;
        assert!((hw - 2f64.sqrt() * 50.0 * 0.1).abs() < 1e-9, "{hw}");
    }

    #[test]
    fn a_static_power_the_folds_disagree_on_widens_by_the_activation_s_share_seconds() {
        let pts: Vec<(f64, f64)> = (0..200).map(|_| (100.0, 100.0)).collect();
        let folds: Vec<FoldError> = [39.0, 41.0, 39.0, 41.0]
            .iter()
            .map(|&w| FoldError {
                idle_w: w,
                ..fold(&pts)
            })
            .collect();
        // Jackknife: √(3/4 · 4) = √3 W, × t(3) = 3.182.
        let x = Exposure {
            intervals: 1,
            secs: 0.01,
            x1: 0.5,
            x2: 0.25,
            share_secs: 0.005,
            ..Exposure::default()
        };
        let b = Uncertainty::new(folds, Resolution::default())
            .dynamic(&x)
            .unwrap();
        let want = 3.182 * 3f64.sqrt() * 0.005;
        assert!((b.half_width_j - want).abs() < 1e-12, "{b:?}");
        assert!((b.systematic_j - want).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn bounds_contain_the_energy_and_the_dynamic_one_stays_positive() {
        let j = DomainJoules {
            dynamic_j: 1.0,
            idle_j: 2.0,
            complete: true,
            measured: true,
            half_width_sq: Some(4.0),
            systematic_j: 0.1,
        };
        assert_eq!(dynamic_bounds(&j), Some((0.0, 3.0)));
        // Four alike: independent parts shrink by 2, the bias does not; never below the idle.
        let (lo, hi) = mean_bounds(&MeanSums::of([j; 4])).unwrap();
        assert!(
            (hi - (3.0 + 1.0 + 0.1)).abs() < 1e-12 && lo == 2.0,
            "{lo} {hi}"
        );
        let unknown = DomainJoules {
            half_width_sq: None,
            ..j
        };
        assert_eq!(mean_bounds(&MeanSums::of([j, unknown])), None);
        assert_eq!(mean_bounds(&MeanSums::of([])), None);
    }
}
