//! `local-linear`: linear-offline's regression (power on CPU time and counters per second,
//! coefficients ≥ 0) fitted again for each stretch of the run on the measured intervals nearest
//! to it in time, before *and after* it — what no online meter can do — so its coefficients
//! follow drifts of frequency, temperature and load mix that one fit over the run averages out.
//!
//! The run is cut into steps of a quarter of the window (`--local-window`); each step's fit
//! uses the training intervals nearest to its centre, as many as the window holds at the
//! training set's mean interval length. Where its neighbourhood is held out by the
//! cross-validation (the held-out block and its gap), the nearest training intervals are
//! further away: the window never includes what it is scored on. A step whose window cannot be
//! fitted (nothing varies in it) uses the fit over all the training intervals, and the notes
//! say how many did. One fit per step, not per interval: a few thousand small fits for an hour
//! at 10 ms.

use std::time::Duration;

use super::dataset::{Dataset, Interval};
use super::linear::{self, Fit, FitError};
use super::model::{feature_rates, feature_set, Model};
use crate::replay::cpu::Usage;

/// Default `--local-window`: see the analyzer README ("Read before trusting a model") for the
/// windows tried on `synth --power dvfs --energy-noise 0.02`.
pub const DEFAULT_WINDOW: &str = "1s";

const NONNEG: linear::Options = linear::Options {
    ridge: 0.0,
    nonneg: true,
};

#[derive(Debug, Clone)]
struct Steps {
    /// Start of step 0 and the step length, ns.
    t0: u64,
    step: u64,
    /// Per step, its fit, and whether it is local (false: the whole-run fit stands in).
    fits: Vec<(Fit, bool)>,
    /// The fit on every training interval.
    global: Fit,
    /// Why the first step that fell back could not be fitted.
    first_error: Option<FitError>,
}

impl Steps {
    fn at(&self, iv: &Interval) -> &Fit {
        let k = (iv.start.saturating_sub(self.t0) / self.step) as usize;
        &self.fits[k.min(self.fits.len() - 1)].0
    }
}

#[derive(Debug, Clone)]
pub struct LocalLinear {
    window: Duration,
    names: Vec<String>,
    columns: Vec<usize>,
    /// None before a successful fit, and after a failed one.
    fit: Option<Steps>,
}

impl LocalLinear {
    /// Features as linear-offline's ([`feature_set`]); `window` is checked at the fit.
    pub fn new(ds: &Dataset, window: Duration, features: Option<&[String]>) -> Self {
        let (names, columns) = feature_set(ds, features);
        Self {
            window,
            names,
            columns,
            fit: None,
        }
    }

    fn solve(&self, ds: &Dataset, train: &[usize]) -> Result<Steps, FitError> {
        let window = u64::try_from(self.window.as_nanos()).unwrap_or(u64::MAX);
        if window == 0 {
            return Err(FitError::BadWindow(self.window.as_secs_f64()));
        }
        let (Some(first), Some(last)) = (ds.first(), ds.last()) else {
            return Err(FitError::NoRows);
        };
        let mut design = linear::Design::with_capacity(self.names.len(), train.len());
        for &i in train {
            let iv = &*ds.interval(i);
            design.push(&feature_rates(&iv.total, &self.columns, iv.secs()))?;
        }
        let xs = design.rows();
        let y: Vec<f64> = train.iter().map(|&i| ds.interval(i).power_w()).collect();
        let global = linear::fit(xs, &y, NONNEG)?;
        // Training intervals are in time order: the nearest to any instant are a contiguous run.
        let mid: Vec<u64> = train
            .iter()
            .map(|&i| {
                let iv = &*ds.interval(i);
                iv.start + (iv.end - iv.start) / 2
            })
            .collect();
        let mean_ns = train
            .iter()
            .map(|&i| (ds.interval(i).end - ds.interval(i).start) as f64)
            .sum::<f64>()
            / train.len() as f64;
        // As many intervals as the window holds, and never fewer than a few per feature.
        let want = ((window as f64 / mean_ns).ceil() as usize)
            .max(4 * (self.names.len() + 1))
            .min(train.len());
        let step = (window / 4).max(1);
        let (t0, t1) = (first.start, last.end);
        let n_steps = (t1.saturating_sub(t0)).div_ceil(step).max(1) as usize;
        let mut first_error = None;
        let fits = (0..n_steps)
            .map(|s| {
                let c = t0 + s as u64 * step + step / 2;
                let (mut lo, mut hi) = {
                    let p = mid.partition_point(|&m| m < c);
                    (p, p)
                };
                while hi - lo < want {
                    let left = (lo > 0).then(|| c.abs_diff(mid[lo - 1]));
                    let right = (hi < mid.len()).then(|| c.abs_diff(mid[hi]));
                    match (left, right) {
                        (Some(l), Some(r)) if l <= r => lo -= 1,
                        (Some(_), None) => lo -= 1,
                        _ => hi += 1,
                    }
                }
                match linear::fit(xs.slice(lo..hi), &y[lo..hi], NONNEG) {
                    Ok(f) => (f, true),
                    Err(e) => {
                        first_error.get_or_insert(e);
                        (global.clone(), false)
                    }
                }
            })
            .collect();
        Ok(Steps {
            t0,
            step,
            fits,
            global,
            first_error,
        })
    }
}

impl Model for LocalLinear {
    fn name(&self) -> String {
        "local-linear".into()
    }

    fn fit(&mut self, ds: &Dataset, train: &[usize]) -> Result<(), FitError> {
        self.fit = None;
        self.fit = Some(self.solve(ds, train)?);
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.fit.as_ref().map_or(f64::NAN, |s| {
            s.at(iv)
                .predict(&feature_rates(&iv.total, &self.columns, iv.secs()))
        })
    }

    /// The mean of the steps' intercepts.
    fn idle_w(&self) -> f64 {
        self.fit.as_ref().map_or(0.0, |s| {
            let sum: f64 = s.fits.iter().map(|(f, _)| f.intercept).sum();
            (sum / s.fits.len() as f64).max(0.0)
        })
    }

    fn idle_w_at(&self, iv: &Interval) -> f64 {
        self.fit
            .as_ref()
            .map_or(0.0, |s| s.at(iv).intercept.max(0.0))
    }

    /// Usage outside any interval: through the whole-run fit.
    fn weight(&self, u: &Usage, secs: f64) -> f64 {
        self.fit.as_ref().map_or(0.0, |s| {
            let x = feature_rates(u, &self.columns, secs);
            s.global.coef.iter().zip(&x).map(|(c, v)| c * v).sum()
        })
    }

    /// Coefficients ≥ 0 and features ≥ 0: never negative.
    fn cgroup_weight(&self, iv: &Interval, _cg: u64, u: &Usage) -> f64 {
        self.fit.as_ref().map_or(0.0, |s| {
            let x = feature_rates(u, &self.columns, iv.secs());
            s.at(iv).coef.iter().zip(&x).map(|(c, v)| c * v).sum()
        })
    }

    fn params(&self) -> Vec<(String, f64)> {
        let Some(s) = &self.fit else {
            return Vec::new();
        };
        let local = s.fits.iter().filter(|(_, l)| *l).count();
        let mut p = vec![
            ("window_s".to_owned(), self.window.as_secs_f64()),
            ("step_s".to_owned(), s.step as f64 / 1e9),
            ("steps".to_owned(), s.fits.len() as f64),
            (
                "steps_whole_run_fit".to_owned(),
                (s.fits.len() - local) as f64,
            ),
        ];
        // Mean, min and max over the steps: how far the coefficients move over the run.
        let mut stats = |name: String, v: &dyn Fn(&Fit) -> f64| {
            let vals: Vec<f64> = s.fits.iter().map(|(f, _)| v(f)).collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let (lo, hi) = vals
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                    (a.min(*x), b.max(*x))
                });
            p.push((name.clone(), mean));
            p.push((format!("{name}:min"), lo));
            p.push((format!("{name}:max"), hi));
        };
        stats("idle_w".into(), &|f| f.intercept);
        for (j, n) in self.names.iter().enumerate() {
            stats(format!("w_per_{n}_per_s"), &|f| {
                f.coef.get(j).copied().unwrap_or(0.0)
            });
        }
        p
    }

    fn notes(&self) -> Vec<String> {
        let Some(s) = &self.fit else {
            return Vec::new();
        };
        let fell_back = s.fits.iter().filter(|(_, l)| !*l).count();
        match &s.first_error {
            Some(e) if fell_back > 0 => vec![format!(
                "{fell_back} of {} steps could not be fitted on their window (first: {e}): the fit over the whole run stands in for them",
                s.fits.len()
            )],
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 ms intervals over 20 s: 30 W static, and a power per busy CPU that moves from 10 W
    /// to 20 W at 10 s (a frequency step).
    fn ds() -> Dataset {
        let intervals = (0..2000u64)
            .map(|i| {
                let ns = ((i * 7) % 11) * 1_000_000;
                let w = if i < 1000 { 10.0 } else { 20.0 };
                let u = Usage {
                    cpu_ns: ns,
                    counters: smallvec::smallvec![],
                };
                Interval {
                    start: i * 10_000_000,
                    end: (i + 1) * 10_000_000,
                    energy_j: 0.3 + w * ns as f64 / 1e9,
                    fitted: true,
                    cgroups: vec![(1, u.clone())],
                    total: u,
                }
            })
            .collect();
        Dataset::of_intervals(vec![], intervals)
    }

    #[test]
    fn coefficients_follow_a_step_that_one_fit_averages_out() {
        let d = ds();
        let all: Vec<usize> = (0..d.len()).collect();
        let mut m = LocalLinear::new(&d, Duration::from_secs(2), None);
        m.fit(&d, &all).unwrap();
        let slope = |m: &LocalLinear, iv: &Interval| {
            m.cgroup_weight(iv, 1, &iv.total) * iv.secs() / iv.total.cpu_ns as f64
        };
        // Away from the step, each side's own slope, exactly.
        for (i, w) in [(100, 10.0), (500, 10.0), (1500, 20.0), (1900, 20.0)] {
            let iv = &*d.interval(i);
            assert!(
                (slope(&m, iv) * 1e9 - w).abs() < 1e-6,
                "{i}: {}",
                slope(&m, iv)
            );
            assert!((m.idle_w_at(iv) - 30.0).abs() < 1e-6);
            assert!((m.predict_w(iv) - iv.power_w()).abs() < 1e-6);
        }
        let p: std::collections::HashMap<String, f64> = m.params().into_iter().collect();
        assert_eq!(p["steps"], 40.0);
        assert!(
            (p["w_per_cpu_ns_per_s:min"] * 1e9 - 10.0).abs() < 1e-6,
            "{p:?}"
        );
        assert!(
            (p["w_per_cpu_ns_per_s:max"] * 1e9 - 20.0).abs() < 1e-6,
            "{p:?}"
        );
        // Without the intervals of 4 s .. 8 s, the window there reaches the nearest training
        // intervals on both sides, and never the held-out ones.
        let train: Vec<usize> = (0..400).chain(800..2000).collect();
        let d2 = d.altered(|ivs| {
            for iv in &mut ivs[400..800] {
                iv.energy_j = 1e6; // would wreck any fit that used it
            }
        });
        m.fit(&d2, &train).unwrap();
        let iv = &*d2.interval(601);
        assert!((slope(&m, iv) * 1e9 - 10.0).abs() < 1e-6);
        assert!(m.notes().is_empty());
    }

    #[test]
    fn a_window_with_nothing_to_fit_falls_back_and_says_so() {
        let d = ds().altered(|ivs| {
            for iv in &mut ivs[..500] {
                iv.cgroups[0].1.cpu_ns = 0;
                iv.total.cpu_ns = 0;
                iv.energy_j = 0.3;
            }
        });
        let all: Vec<usize> = (0..d.len()).collect();
        let mut m = LocalLinear::new(&d, Duration::from_secs(1), None);
        m.fit(&d, &all).unwrap();
        let notes = m.notes();
        assert!(
            notes.len() == 1 && notes[0].contains("could not be fitted on their window"),
            "{notes:?}"
        );
        assert!(m
            .params()
            .iter()
            .any(|(k, v)| k == "steps_whole_run_fit" && *v > 0.0));
        let mut zero = LocalLinear::new(&d, Duration::ZERO, None);
        assert!(matches!(zero.fit(&d, &all), Err(FitError::BadWindow(_))));
        assert!(zero.predict_w(&d.interval(0)).is_nan());
    }
}
