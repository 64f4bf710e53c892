//! `per-function`: a power per CPU-second (and per counter, where the trace has counters) for
//! each function, fitted across all of its activations in the run — what the repetition of
//! serverless functions makes possible.
//!
//! Power = one intercept (static power, shared) + Σ over groups g and features k of
//! β_{g,k} · x_{g,k}, where x_{g,k} is feature k per second summed over the cgroups of g. A
//! group is a function (`namespace/action` of its containers: every container of the action
//! is one group); cgroups that are not function containers (system scopes, daemons, the root)
//! share one group, `<other>`.
//!
//! A function seen for a few milliseconds would get whatever coefficient fits its noise, so
//! each group's coefficients are pulled toward the pooled ones β_pooled (linear-offline's fit
//! on the same intervals) by a ridge penalty λ_k (β_{g,k} − β_pooled,k)², empirical-Bayes
//! style: λ_k is what `prior_cpu_s` CPU-seconds of work at the pooled coefficients weigh in the
//! least squares (`prior_cpu_s` / mean interval length × feature k's run-wide rate per
//! CPU-second, squared). A function with much more CPU time than that keeps its own
//! coefficients; one with much less gets nearly the pooled ones; `models` gives each group's
//! `prior_share`, the weight of the prior in its CPU coefficient, λ / (λ + Σ x̃²). Coefficients
//! are ≥ 0 (Lawson–Hanson NNLS on the QR of the penalised, centred design, as in [`linear`]).

use std::collections::HashMap;

use nalgebra::{DMatrix, DVector};

use super::dataset::{Dataset, Interval};
use super::linear::{self, FitError};
use super::model::{feature_rates, feature_set, Model};
use crate::analyze::Analysis;
use crate::replay::cpu::Usage;

/// Default `--per-function-prior`, CPU-seconds: a function with 10 CPU-seconds in the run
/// keeps 98 % of its own coefficient; one 30 ms activation gets 13 % of its own.
pub const DEFAULT_PRIOR_CPU_S: f64 = 0.2;

/// Name of the group of cgroups that run no function.
pub const OTHER: &str = "<other>";
/// The group of function containers with no action known.
pub const NO_ACTION: &str = "<no action>";

/// Which function each cgroup runs: cgroup key → group; a key not in `of` is in `<other>`.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    pub of: HashMap<u64, usize>,
    /// Function names, by group (`<other>` is group `names.len()`).
    pub names: Vec<String>,
}

impl Groups {
    /// The function containers' cgroups, grouped by function (`namespace/action`; a container
    /// with no action, an hwpc-sensor target, is its own function).
    pub(crate) fn of_analysis(an: &Analysis) -> Self {
        let mut out = Self::default();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (ci, c) in an.life.containers.iter().enumerate() {
            if !an.is_function_container(ci) {
                continue;
            }
            let Some(cg) = an.life.cgroup_id(ci) else {
                continue;
            };
            let name = match (c.namespace.as_str(), c.action.as_str()) {
                // Containers no activation named (stem cells never used, a join that could not
                // tell the action) share one group: there is no function to learn.
                (_, "") => NO_ACTION.to_owned(),
                ("", a) => a.to_owned(),
                (n, a) => format!("{n}/{a}"),
            };
            let next = by_name.len();
            let g = *by_name.entry(name.clone()).or_insert(next);
            if g == out.names.len() {
                out.names.push(name);
            }
            out.of.insert(cg, g);
        }
        out
    }

    fn group(&self, cg: u64) -> usize {
        self.of.get(&cg).copied().unwrap_or(self.names.len())
    }

    fn count(&self) -> usize {
        self.names.len() + 1
    }

    fn name(&self, g: usize) -> &str {
        self.names.get(g).map_or(OTHER, String::as_str)
    }
}

#[derive(Debug, Clone)]
struct Fitted {
    intercept: f64,
    /// The features used (indices into `PerFunction::names`): those the pooled fit kept.
    kept: Vec<usize>,
    /// [group][kept feature], W per unit per second.
    coef: Vec<Vec<f64>>,
    /// Pooled coefficient of each kept feature.
    pooled: Vec<f64>,
    /// Per group: the prior's weight in its CPU coefficient, and its CPU-seconds fitted on.
    prior_share: Vec<f64>,
    cpu_s: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct PerFunction {
    groups: Groups,
    names: Vec<String>,
    columns: Vec<usize>,
    prior_cpu_s: f64,
    /// None before a successful fit, and after a failed one.
    fit: Option<Fitted>,
}

impl PerFunction {
    /// `prior_cpu_s` (≥ 0, finite; see the module doc) is checked at the fit.
    pub fn new(
        ds: &Dataset,
        groups: Groups,
        features: Option<&[String]>,
        prior_cpu_s: f64,
    ) -> Self {
        let (names, columns) = feature_set(ds, features);
        Self {
            groups,
            names,
            columns,
            prior_cpu_s,
            fit: None,
        }
    }

    fn solve(&self, ds: &Dataset, train: &[usize]) -> Result<Fitted, FitError> {
        if !(self.prior_cpu_s.is_finite() && self.prior_cpu_s >= 0.0) {
            return Err(FitError::BadPrior(self.prior_cpu_s));
        }
        let y: Vec<f64> = train.iter().map(|&i| ds.interval(i).power_w()).collect();
        let mut design = linear::Design::with_capacity(self.names.len(), train.len());
        for &i in train {
            let iv = &*ds.interval(i);
            design.push(&feature_rates(&iv.total, &self.columns, iv.secs()))?;
        }
        let totals = design.rows();
        let pooled = linear::fit(
            totals,
            &y,
            linear::Options {
                ridge: 0.0,
                nonneg: true,
            },
        )?;
        let kept: Vec<usize> = (0..self.names.len())
            .filter(|j| !pooled.dropped.iter().any(|(d, _)| d == j))
            .collect();
        let (n, nk, ng) = (train.len(), kept.len(), self.groups.count());
        let p = ng * nk;
        // One training interval's features per group and second: column g·nk + k.
        let row = |i: usize, out: &mut [f64]| {
            out.fill(0.0);
            let iv = &*ds.interval(i);
            for (cg, u) in &iv.cgroups {
                let g = self.groups.group(*cg);
                let f = feature_rates(u, &self.columns, iv.secs());
                for (k, &j) in kept.iter().enumerate() {
                    out[g * nk + k] += f[j];
                }
            }
        };
        let mut cpu_s = vec![0.0; ng];
        for &i in train {
            for (cg, u) in &*ds.interval(i).cgroups {
                cpu_s[self.groups.group(*cg)] += u.cpu_ns as f64 / 1e9;
            }
        }
        // λ_k: `prior_cpu_s` CPU-seconds at feature k's run-wide rate per CPU-second, on
        // intervals of the mean length (a busy CPU is 1e9 CPU-ns per second).
        let secs: f64 = train.iter().map(|&i| ds.interval(i).secs()).sum();
        let busy: f64 = totals.iter().map(|t| t[0]).sum::<f64>() / 1e9;
        let lambda: Vec<f64> = kept
            .iter()
            .map(|&j| {
                // No CPU time at all fails the pooled fit above; this guards the division.
                let per_cpu_s = if busy > 0.0 {
                    totals.iter().map(|t| t[j]).sum::<f64>() / busy
                } else {
                    0.0
                };
                self.prior_cpu_s / (secs / n as f64) * per_cpu_s * per_cpu_s
            })
            .collect();
        let nf = n as f64;
        let mean_y = y.iter().sum::<f64>() / nf;
        let mut mean = vec![0.0; p];
        let mut x = vec![0.0; p];
        for &i in train {
            row(i, &mut x);
            for (m, v) in mean.iter_mut().zip(&x) {
                *m += v / nf;
            }
        }
        // The centred design [x̃ | ỹ] (the intercept is free and unpenalised) and the penalty
        // rows √λ_k (β_{g,k} − β_pooled,k), reduced chunk by chunk to the triangle R of their
        // QR (TSQR): memory in the number of columns, not the run's length.
        const CHUNK: usize = 4096;
        let mut r_aug = DMatrix::<f64>::zeros(p + 1, p + 1);
        let mut ss = vec![0.0; p];
        let reduce = |r_aug: &mut DMatrix<f64>, rows: &[(Vec<f64>, f64)]| {
            let mut m = DMatrix::<f64>::zeros(p + 1 + rows.len(), p + 1);
            m.view_mut((0, 0), (p + 1, p + 1)).copy_from(r_aug);
            for (r, (xr, yr)) in rows.iter().enumerate() {
                for c in 0..p {
                    m[(p + 1 + r, c)] = xr[c];
                }
                m[(p + 1 + r, p)] = *yr;
            }
            let r = m.qr().r();
            r_aug.fill(0.0);
            let h = r.nrows().min(p + 1);
            r_aug.view_mut((0, 0), (h, p + 1)).copy_from(&r.rows(0, h));
        };
        for (block, ys) in train.chunks(CHUNK).zip(y.chunks(CHUNK)) {
            let rows: Vec<(Vec<f64>, f64)> = block
                .iter()
                .zip(ys)
                .map(|(&i, &yv)| {
                    let mut xr = vec![0.0; p];
                    row(i, &mut xr);
                    for c in 0..p {
                        xr[c] -= mean[c];
                        ss[c] += xr[c] * xr[c];
                    }
                    (xr, yv - mean_y)
                })
                .collect();
            reduce(&mut r_aug, &rows);
        }
        let penalty: Vec<(Vec<f64>, f64)> = (0..p)
            .map(|c| {
                let k = c % nk;
                let mut xr = vec![0.0; p];
                xr[c] = lambda[k].sqrt();
                (xr, lambda[k].sqrt() * pooled.coef[kept[k]])
            })
            .collect();
        reduce(&mut r_aug, &penalty);
        // Columns scaled to unit norm for the NNLS tolerances (R of the scaled design is R
        // with scaled columns); a column never used and without prior (a counter that never
        // counted) has coefficient 0.
        let scale: Vec<f64> = (0..p).map(|c| (ss[c] + lambda[c % nk]).sqrt()).collect();
        let live: Vec<usize> = (0..p).filter(|&c| scale[c] > 0.0).collect();
        let rr = DMatrix::from_fn(p, live.len(), |r, c| r_aug[(r, live[c])] / scale[live[c]]);
        let rhs = DVector::from_fn(p, |r, _| r_aug[(r, p)]);
        let gamma = linear::nnls(&rr, &rhs)?;
        // The prior's weight in each group's first coefficient (CPU time's, unless dropped).
        let prior_share: Vec<f64> = (0..ng)
            .map(|g| {
                let c = g * nk;
                if nk > 0 && scale[c] > 0.0 {
                    lambda[0] / (ss[c] + lambda[0])
                } else {
                    1.0
                }
            })
            .collect();
        let mut coef = vec![vec![0.0; nk]; ng];
        let mut intercept = mean_y;
        for (&c, gm) in live.iter().zip(gamma.iter()) {
            let beta = gm / scale[c];
            coef[c / nk][c % nk] = beta;
            intercept -= beta * mean[c];
        }
        if !intercept.is_finite() || !coef.iter().flatten().all(|c| c.is_finite()) {
            return Err(FitError::Singular);
        }
        Ok(Fitted {
            intercept,
            pooled: kept.iter().map(|&j| pooled.coef[j]).collect(),
            kept,
            coef,
            prior_share,
            cpu_s,
        })
    }
}

impl Model for PerFunction {
    fn name(&self) -> String {
        "per-function".into()
    }

    fn fit(&mut self, ds: &Dataset, train: &[usize]) -> Result<(), FitError> {
        self.fit = None;
        self.fit = Some(self.solve(ds, train)?);
        Ok(())
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        let Some(f) = &self.fit else {
            return f64::NAN;
        };
        f.intercept
            + iv.cgroups
                .iter()
                .map(|(cg, u)| self.cgroup_weight(iv, *cg, u))
                .sum::<f64>()
    }

    fn idle_w(&self) -> f64 {
        self.fit.as_ref().map_or(0.0, |f| f.intercept.max(0.0))
    }

    /// Usage of no known cgroup: through the pooled coefficients.
    fn weight(&self, u: &Usage, secs: f64) -> f64 {
        let Some(f) = &self.fit else {
            return 0.0;
        };
        let x = feature_rates(u, &self.columns, secs);
        f.kept.iter().zip(&f.pooled).map(|(&j, c)| c * x[j]).sum()
    }

    fn cgroup_weight(&self, iv: &Interval, cg: u64, u: &Usage) -> f64 {
        let Some(f) = &self.fit else {
            return 0.0;
        };
        let x = feature_rates(u, &self.columns, iv.secs());
        let coef = &f.coef[self.groups.group(cg)];
        f.kept.iter().zip(coef).map(|(&j, c)| c * x[j]).sum()
    }

    fn params(&self) -> Vec<(String, f64)> {
        let Some(f) = &self.fit else {
            return Vec::new();
        };
        let mut p = vec![
            ("idle_w".to_owned(), f.intercept),
            ("prior_cpu_s".to_owned(), self.prior_cpu_s),
        ];
        for (k, &j) in f.kept.iter().enumerate() {
            p.push((format!("pooled:w_per_{}_per_s", self.names[j]), f.pooled[k]));
        }
        for (g, coef) in f.coef.iter().enumerate() {
            let name = self.groups.name(g);
            for (k, &j) in f.kept.iter().enumerate() {
                p.push((format!("w_per_{}_per_s:{name}", self.names[j]), coef[k]));
            }
            p.push((format!("cpu_s:{name}"), f.cpu_s[g]));
            p.push((format!("prior_share:{name}"), f.prior_share[g]));
        }
        p
    }

    fn notes(&self) -> Vec<String> {
        let Some(f) = &self.fit else {
            return Vec::new();
        };
        (0..self.groups.count())
            .filter(|&g| f.prior_share[g] > 0.5 && f.cpu_s[g] > 0.0)
            .map(|g| {
                format!(
                    "{}: only {:.3} CPU-seconds to fit on, its coefficients are mostly the pooled ones (prior weight {:.0} %)",
                    self.groups.name(g),
                    f.cpu_s[g],
                    100.0 * f.prior_share[g]
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 50 s of 10 ms intervals (two chunks of the QR): 30 W static; function A (cgroup 1) draws 20 W per busy CPU, B (2)
    /// 5 W, the daemon (9, no function) 10 W; C (3) runs in one interval only.
    fn ds() -> (Dataset, Groups) {
        let u = |ns: u64| Usage {
            cpu_ns: ns,
            counters: smallvec::smallvec![],
        };
        let intervals = (0..5000u64)
            .map(|i| {
                // Each busy in whole intervals, a third of the time or so: ~16 CPU-seconds.
                let a = if (i * 7) % 11 < 4 { 10_000_000 } else { 0 };
                let b = if (i * 5) % 13 < 4 { 10_000_000 } else { 0 };
                let d = if i % 10 == 0 { 2_000_000 } else { 0 };
                let c = if i == 200 { 10_000_000 } else { 0 };
                let mut cgroups = vec![(1, u(a)), (2, u(b)), (9, u(d))];
                if c > 0 {
                    cgroups.push((3, u(c)));
                }
                let total = u(a + b + c + d);
                // C really draws 100 W per busy CPU: one interval must not make it absurd.
                let energy_j = 0.3
                    + (20.0 * a as f64 + 5.0 * b as f64 + 10.0 * d as f64 + 100.0 * c as f64) / 1e9;
                Interval {
                    start: i * 10_000_000,
                    end: (i + 1) * 10_000_000,
                    energy_j,
                    fitted: true,
                    cgroups,
                    total,
                }
            })
            .collect();
        let groups = Groups {
            of: HashMap::from([(1, 0), (2, 1), (3, 2)]),
            names: vec!["ns/a".into(), "ns/b".into(), "ns/c".into()],
        };
        (Dataset::of_intervals(vec![], intervals), groups)
    }

    #[test]
    fn each_function_gets_its_power_and_a_rare_one_is_shrunk_to_the_pooled_one() {
        let (d, g) = ds();
        let mut m = PerFunction::new(&d, g, None, DEFAULT_PRIOR_CPU_S);
        let all: Vec<usize> = (0..d.len()).collect();
        m.fit(&d, &all).unwrap();
        let p: HashMap<String, f64> = m.params().into_iter().collect();
        let w = |name: &str| p[&format!("w_per_cpu_ns_per_s:{name}")] * 1e9;
        // A and B ran for ~16 CPU-seconds each: their own power, up to a small pull.
        assert!((w("ns/a") - 20.0).abs() < 0.5, "{p:?}");
        assert!((w("ns/b") - 5.0).abs() < 0.5, "{p:?}");
        let pooled = p["pooled:w_per_cpu_ns_per_s"] * 1e9;
        // The daemon, 0.8 CPU-seconds in 2 ms bursts: between its own 10 W and the pool's.
        assert!(w(OTHER) > 10.0 && w(OTHER) < pooled, "{p:?}");
        // C: 10 ms of CPU against a 0.2 CPU-s prior: mostly the pooled slope, far from 100 W.
        assert!(p["prior_share:ns/c"] > 0.9, "{p:?}");
        assert!((w("ns/c") - pooled).abs() < 0.2 * (100.0 - pooled), "{p:?}");
        assert!((m.idle_w() - 30.0).abs() < 1.0, "{p:?}");
        assert!(m.notes().iter().any(|n| n.starts_with("ns/c: only 0.010")));
        // Without a prior C is fitted on its one interval alone: the shrinkage did the work.
        let (d, g) = ds();
        let mut free = PerFunction::new(&d, g, None, 0.0);
        free.fit(&d, &all).unwrap();
        let p: HashMap<String, f64> = free.params().into_iter().collect();
        assert!(
            (p["w_per_cpu_ns_per_s:ns/c"] * 1e9 - 100.0).abs() < 1.0,
            "{p:?}"
        );
        // Weights: per cgroup, through its function's coefficient.
        let iv = &*d.interval(200);
        let ws = m.weights(iv);
        assert_eq!(ws.len(), iv.cgroups.len());
        assert!(ws.iter().all(|w| *w >= 0.0));
    }

    #[test]
    fn coefficients_are_never_negative_and_bad_priors_are_errors() {
        let (d, g) = ds();
        // B's usage now lowers the power: its coefficient is held at 0, not negative.
        let d = d.altered(|ivs| {
            for iv in ivs.iter_mut() {
                let b = iv.cgroups[1].1.cpu_ns as f64;
                iv.energy_j -= 10.0 * b / 1e9;
            }
        });
        let all: Vec<usize> = (0..d.len()).collect();
        let mut m = PerFunction::new(&d, g.clone(), None, 0.01);
        m.fit(&d, &all).unwrap();
        let p: HashMap<String, f64> = m.params().into_iter().collect();
        assert_eq!(p["w_per_cpu_ns_per_s:ns/b"], 0.0, "{p:?}");
        assert!(p.values().all(|v| *v >= 0.0), "{p:?}");
        let mut bad = PerFunction::new(&d, g, None, f64::NAN);
        assert!(matches!(bad.fit(&d, &all), Err(FitError::BadPrior(_))));
        assert!(bad.predict_w(&d.interval(0)).is_nan() && bad.params().is_empty());
    }
}
