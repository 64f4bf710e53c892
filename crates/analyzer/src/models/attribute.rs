//! Each model compared on held-out time, then used to split the measured energy of every
//! interval among cgroups, with the static (idle) part placed by an idle policy.
//!
//! In each interval the model's idle power (at most the measured power) is the static part;
//! the rest is dynamic and goes to cgroups by the model's weights. The static part goes by the
//! policy. Whatever a rule cannot place (no weights, no live container) is `unassigned`, so the
//! rows of any (model, policy) always add up to the measured energy.

use std::cell::RefCell;

use super::dataset::Dataset;
pub use super::idle_policy::{IdlePolicy, Live, Presence};
use super::linear::FitError;
use super::model::Model;
pub use super::protocol::Protocol;
use super::recent_intervals::RecentIntervals;

/// Cgroup key of energy no rule placed.
pub const UNASSIGNED: u64 = u64::MAX - 1;

/// One attribution row: a cgroup's energy in an interval under a model and policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub interval: usize,
    pub cgroup: u64,
    pub dynamic_j: f64,
    pub idle_j: f64,
}

/// Errors of a model on one held-out fold, in W.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldError {
    pub fold: usize,
    pub n: usize,
    pub mae_w: f64,
    pub mape: f64,
    pub rmse_w: f64,
    /// Why the model could not be fitted on the other folds (then nothing is scored).
    pub fit_error: Option<String>,
    /// Every point scored, in time order: what the uncertainty of the model's attribution is
    /// drawn from (`attribution::uncertainty`).
    pub held_out: Vec<HeldOut>,
    /// The static power of the fit on the other folds (NaN where it failed): how much it
    /// moves from fold to fold says how well the data pin it down.
    pub idle_w: f64,
}

/// One held-out point (an interval, or a model's own tick): the power the model predicted
/// with coefficients fitted on the other folds, the power measured, and how long it lasted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldOut {
    pub predicted_w: f64,
    pub measured_w: f64,
    pub secs: f64,
}

/// The model scored by `protocol` ([`score`]); then fitted on everything ([`fit_whole`]), and
/// the result of that last fit is returned beside the folds' errors: when it failed, the model
/// has no coefficients to attribute with.
#[cfg(test)]
pub fn evaluate(
    model: &mut dyn Model,
    ds: &Dataset,
    protocol: &Protocol,
) -> (Vec<FoldError>, Result<(), FitError>) {
    let errs = score(model, ds, protocol);
    (errs, fit_whole(model, ds))
}

/// The model scored by `protocol` (blocked k-fold with a gap, see [`Protocol`]): each fold's
/// errors and held-out points. The model is left fitted on the last fold's training set:
/// [`fit_whole`] fits it for the attribution.
pub fn score(model: &mut dyn Model, ds: &Dataset, protocol: &Protocol) -> Vec<FoldError> {
    let folds = protocol.blocks(ds);
    let mut out = Vec::new();
    if folds.len() >= 2 {
        for (f, held) in folds.iter().enumerate() {
            let train = protocol.train(ds, held);
            // A failed fit is scored with nothing, never with an earlier fold's coefficients.
            if let Err(e) = model.fit(ds, &train) {
                out.push(FoldError {
                    fold: f,
                    n: 0,
                    mae_w: f64::NAN,
                    mape: f64::NAN,
                    rmse_w: f64::NAN,
                    fit_error: Some(e.to_string()),
                    held_out: Vec::new(),
                    idle_w: f64::NAN,
                });
                continue;
            }
            // (predicted, measured) W of the fold: each interval, or the model's own spans
            // (its ticks), each in the fold that holds most of it.
            let points: Vec<(f64, f64, f64)> = match model.score_spans(ds) {
                // Only measured intervals: gap estimates and missing energy are not data.
                None => ds
                    .range(held.clone())
                    .filter(|iv| iv.fitted)
                    .map(|iv| (model.predict_w(&iv), iv.power_w(), iv.secs()))
                    .collect(),
                Some(spans) => spans
                    .iter()
                    .filter(|s| s.home(ds).is_some_and(|h| held.contains(&h)))
                    .map(|s| (s.predicted_w, s.measured_w(ds), s.secs(ds)))
                    .collect(),
            };
            let (mut abs, mut pct, mut sq, mut n_pct) = (0.0, 0.0, 0.0, 0usize);
            let mut scored = 0usize;
            // Sized once: kept for the uncertainty, grown by doubling it was a third unused.
            let mut held_out = Vec::with_capacity(points.len());
            for (p, m, secs) in points {
                // An online model has no estimate for some intervals, and a tick over missing
                // energy has no measurement: not scored.
                if !p.is_finite() || !m.is_finite() {
                    continue;
                }
                held_out.push(HeldOut {
                    predicted_w: p,
                    measured_w: m,
                    secs,
                });
                scored += 1;
                abs += (p - m).abs();
                sq += (p - m).powi(2);
                if m > 0.0 {
                    pct += ((p - m) / m).abs();
                    n_pct += 1;
                }
            }
            // A fold with nothing scored has no error (null in model_eval), not a zero one.
            let n = if scored > 0 { scored as f64 } else { f64::NAN };
            out.push(FoldError {
                fold: f,
                n: scored,
                mae_w: abs / n,
                mape: if n_pct > 0 {
                    100.0 * pct / n_pct as f64
                } else {
                    f64::NAN
                },
                rmse_w: (sq / n).sqrt(),
                fit_error: None,
                held_out,
                idle_w: model.idle_w(),
            });
        }
    }
    out
}

/// The model fitted on every interval with measured energy: when this fails, it has no
/// coefficients to attribute with.
pub fn fit_whole(model: &mut dyn Model, ds: &Dataset) -> Result<(), FitError> {
    let all: Vec<usize> = (0..ds.len()).filter(|&i| ds.interval(i).fitted).collect();
    model.fit(ds, &all)
}

/// One (model, idle policy)'s split of every interval, made as it is read: an interval's rows
/// are a function of its usage, the model and the live containers, so they are computed again
/// when asked rather than held for the run (one (model, policy)'s rows were tens of MB of an
/// hour's peak). The idle energy a container policy places is kept per interval (`idle`), not
/// as a row per live container: a container's share of an interval is
/// [`Attributed::container_idle`], of its whole life [`Live::idle_over_life`];
/// [`Attributed::rows`] gives every row when a table needs them.
pub struct Attributed<'a> {
    ds: &'a Dataset,
    model: &'a dyn Model,
    policy: IdlePolicy,
    live: &'a Live<'a>,
    /// Per interval: (idle J the policy places among the live containers, the sum of their
    /// weights); (0, 0) where it places none there.
    pub idle: Vec<(f64, f64)>,
    /// The rows of intervals asked one at a time ([`Attributed::share`]), by interval modulo
    /// its length: the activations, in time order, ask the same few intervals in turn.
    recent: RefCell<RecentIntervals<Rows>>,
}

/// One interval's rows, by cgroup: (dynamic, idle) J.
type Rows = Vec<(u64, (f64, f64))>;

impl Attributed<'_> {
    /// Every row, by interval then cgroup: the dynamic energy by the model's weights, the idle
    /// energy of `proportional`, and what no rule placed (`UNASSIGNED`).
    pub fn shares(&self) -> impl Iterator<Item = Share> + '_ {
        let mut rows = Rows::new();
        (0..self.ds.len()).flat_map(move |i| {
            self.interval_rows(i, &mut rows);
            rows.iter()
                .map(|&(cgroup, (dynamic_j, idle_j))| Share {
                    interval: i,
                    cgroup,
                    dynamic_j,
                    idle_j,
                })
                .collect::<Vec<_>>()
        })
    }

    /// The row of cgroup `cg` in interval `i`, if it has one.
    pub fn share(&self, i: usize, cg: u64) -> Option<Share> {
        let mut recent = self.recent.borrow_mut();
        let rows = recent.get_or_make(i, |old| {
            let mut rows = old.unwrap_or_default();
            self.interval_rows(i, &mut rows);
            rows
        });
        rows.binary_search_by_key(&cg, |(c, _)| *c)
            .ok()
            .map(|k| Share {
                interval: i,
                cgroup: cg,
                dynamic_j: rows[k].1 .0,
                idle_j: rows[k].1 .1,
            })
    }

    /// Container `c`'s idle joules in interval `i`; None where it has no share there (a
    /// share may be 0 J, when the interval's idle energy is).
    pub fn container_idle(&self, c: usize, i: usize) -> Option<f64> {
        let (idle, total) = self.idle.get(i).copied().unwrap_or((0.0, 0.0));
        if total <= 0.0 || !self.live.present(c, i) {
            return None;
        }
        let x = self.live.weight(self.policy, c, i);
        (x > 0.0).then(|| idle * x / total)
    }

    /// Every row, (interval, cgroup) in order: `shares` (those of [`Attributed::shares`], in
    /// order) with each live container's idle energy merged in. As many as intervals × live
    /// containers, so made as they are read.
    pub fn rows<'s>(
        &'s self,
        shares: impl Iterator<Item = Share> + 's,
    ) -> impl Iterator<Item = Share> + 's {
        let (live, policy) = (self.live, self.policy);
        let starts = if policy.by_container() {
            live.by_start()
        } else {
            Vec::new()
        };
        let mut next = 0;
        let mut active: Vec<(usize, usize)> = Vec::new();
        let mut shares = shares.peekable();
        (0..self.idle.len()).flat_map(move |i| {
            while next < starts.len() && starts[next].0 <= i {
                active.push((starts[next].1, starts[next].2));
                next += 1;
            }
            active.retain(|&(last, _)| last >= i);
            let mut rows: std::collections::BTreeMap<u64, (f64, f64)> = Default::default();
            while let Some(s) = shares.next_if(|s| s.interval == i) {
                let r = rows.entry(s.cgroup).or_default();
                r.0 += s.dynamic_j;
                r.1 += s.idle_j;
            }
            // In container order, as the idle policy summed them before.
            let mut cs: Vec<usize> = active.iter().map(|&(_, c)| c).collect();
            cs.sort_unstable();
            for c in cs {
                if let Some(j) = self.container_idle(c, i) {
                    rows.entry(live.containers[c].cgroup).or_default().1 += j;
                }
            }
            rows.into_iter()
                .map(move |(cgroup, (dynamic_j, idle_j))| Share {
                    interval: i,
                    cgroup,
                    dynamic_j,
                    idle_j,
                })
                .collect::<Vec<_>>()
        })
    }

    /// Interval `i`'s rows, by cgroup, into `rows`: its measured energy less the model's idle
    /// power is dynamic, split by the model's weights; the idle part goes by the policy (only
    /// `proportional` places it here: the container policies' is in `idle`).
    fn interval_rows(&self, i: usize, rows: &mut Rows) {
        rows.clear();
        let iv = &*self.ds.interval(i);
        // Missing energy is not attributed (an estimated gap is).
        if !iv.energy_j.is_finite() {
            return;
        }
        let (idle, dynamic) = split_idle(self.model, iv);
        let w = self.model.weights(iv);
        let sum_w: f64 = w.iter().sum();
        // The interval's cgroups are sorted and distinct: with a dynamic split, row k is
        // cgroup k's.
        let by_position = sum_w > 0.0;
        if by_position {
            for ((cg, _), wi) in iv.cgroups.iter().zip(&w) {
                rows.push((*cg, (dynamic * wi / sum_w, 0.0)));
            }
        } else {
            row(rows, UNASSIGNED).0 += dynamic;
        }
        let total = match self.policy {
            IdlePolicy::Unassigned => 0.0,
            IdlePolicy::Proportional => sum_w,
            p => self.live.total(p, i),
        };
        if total > 0.0 {
            if !self.policy.by_container() {
                for (k, ((cg, _), &x)) in iv.cgroups.iter().zip(&w).enumerate() {
                    if x > 0.0 {
                        let r = if by_position {
                            &mut rows[k].1
                        } else {
                            row(rows, *cg)
                        };
                        r.1 += idle * x / total;
                    }
                }
            }
        } else if idle > 0.0 {
            row(rows, UNASSIGNED).1 += idle;
        }
        rows.sort_by_key(|(cg, _)| *cg);
    }
}

/// An interval's measured energy (known) split into the model's idle part (its idle power,
/// at most the measurement) and the dynamic rest, J.
fn split_idle(model: &dyn Model, iv: &super::dataset::Interval) -> (f64, f64) {
    let idle_w = model.idle_w_at(iv);
    let e = iv.energy_j.max(0.0);
    let idle = (idle_w * iv.secs()).min(e);
    (idle, e - idle)
}

/// The row of `cg` in `rows`, made if it is not there (looked for from the end: the rows of
/// an interval without a dynamic split are few).
fn row(rows: &mut Rows, cg: u64) -> &mut (f64, f64) {
    let at = match rows.iter().rposition(|(c, _)| *c == cg) {
        Some(at) => at,
        None => {
            rows.push((cg, (0.0, 0.0)));
            rows.len() - 1
        }
    };
    &mut rows[at].1
}

/// Splits every interval's measured energy; `live` are the containers the idle policies
/// place idle energy among. The per-interval idle of a container policy is found here, in one
/// pass; the rows are made when read.
pub fn attribute<'a>(
    ds: &'a Dataset,
    model: &'a dyn Model,
    policy: IdlePolicy,
    live: &'a Live,
) -> Attributed<'a> {
    let mut idle = vec![(0.0, 0.0); ds.len()];
    if policy.by_container() {
        for (i, iv) in ds.iter().enumerate() {
            if !iv.energy_j.is_finite() {
                continue;
            }
            let total = live.total(policy, i);
            if total > 0.0 {
                idle[i] = (split_idle(model, &iv).0, total);
            }
        }
    }
    Attributed {
        ds,
        model,
        policy,
        live,
        idle,
        recent: RefCell::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::dataset::Interval;
    use crate::models::model::{LinearOffline, ShareModel};
    use crate::models::recent_intervals::RECENT;
    use crate::replay::cpu::Usage;

    fn ds() -> Dataset {
        // 1 s intervals: 50 W idle + 10 W per busy CPU; cgroups 1 and 2.
        let intervals = (0..20)
            .map(|i| {
                let a = (i % 3) * 300_000_000;
                let b = (i % 4) * 200_000_000;
                let u = |ns| Usage {
                    cpu_ns: ns,
                    counters: smallvec::smallvec![],
                };
                Interval {
                    start: i * 1_000_000_000,
                    end: (i + 1) * 1_000_000_000,
                    energy_j: 50.0 + 10.0 * (a + b) as f64 / 1e9,
                    fitted: true,
                    cgroups: vec![(1, u(a)), (2, u(b))],
                    total: u(a + b),
                }
            })
            .collect();
        Dataset::of_intervals(vec![], intervals)
    }

    /// An online model that has estimated nothing yet.
    struct Learning;
    impl Model for Learning {
        fn name(&self) -> String {
            "learning".into()
        }
        fn fit(&mut self, _: &Dataset, _: &[usize]) -> Result<(), FitError> {
            Ok(())
        }
        fn predict_w(&self, _: &Interval) -> f64 {
            f64::NAN
        }
        fn idle_w(&self) -> f64 {
            0.0
        }
        fn weight(&self, u: &Usage, _: f64) -> f64 {
            u.cpu_ns as f64
        }
        fn params(&self) -> Vec<(String, f64)> {
            vec![]
        }
    }

    /// No gap: these tests are about what is scored, not about leaks.
    fn k(folds: usize) -> Protocol {
        Protocol {
            folds,
            gap: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_fold_with_no_estimate_has_no_error_rather_than_zero() {
        let (errs, fitted) = evaluate(&mut Learning, &ds(), &k(4));
        assert_eq!(fitted, Ok(()));
        assert_eq!(errs.len(), 4);
        for e in &errs {
            assert_eq!(e.n, 0);
            assert!(
                e.mae_w.is_nan() && e.rmse_w.is_nan() && e.mape.is_nan(),
                "{e:?}"
            );
        }
    }

    /// A model that estimates per two-interval tick (a tick's mean right, its halves wrong).
    struct Ticked;
    impl Model for Ticked {
        fn name(&self) -> String {
            "ticked".into()
        }
        fn fit(&mut self, _: &Dataset, _: &[usize]) -> Result<(), FitError> {
            Ok(())
        }
        fn predict_w(&self, _: &Interval) -> f64 {
            0.0
        }
        fn idle_w(&self) -> f64 {
            0.0
        }
        fn weight(&self, u: &Usage, _: f64) -> f64 {
            u.cpu_ns as f64
        }
        fn params(&self) -> Vec<(String, f64)> {
            vec![]
        }
        fn score_spans(&self, _: &Dataset) -> Option<Vec<crate::models::model::ScoreSpan>> {
            let d = ds();
            Some(
                (0..10)
                    .map(|k| {
                        let (a, b) = (&*d.interval(2 * k), &*d.interval(2 * k + 1));
                        crate::models::model::ScoreSpan {
                            parts: vec![(2 * k, 1.0), (2 * k + 1, 1.0)],
                            predicted_w: (a.energy_j + b.energy_j) / 2.0,
                        }
                    })
                    .collect(),
            )
        }
    }

    #[test]
    fn a_model_with_its_own_ticks_is_scored_on_them() {
        let (errs, fitted) = evaluate(&mut Ticked, &ds(), &k(5));
        fitted.unwrap();
        // 20 intervals in 5 folds of 4: two ticks each, scored exactly, where every interval
        // on its own would be 50-70 W off its 0 W prediction.
        assert_eq!(errs.len(), 5);
        for e in &errs {
            assert_eq!(e.n, 2, "{e:?}");
            assert!(e.mae_w < 1e-9 && e.rmse_w < 1e-9, "{e:?}");
        }
    }

    #[test]
    fn a_fold_whose_fit_fails_is_reported_and_not_scored_with_another_folds_fit() {
        // CPU runs only in intervals 10..15 (fold 2 of 4): fold 2's training set has CPU time
        // 0 throughout, nothing to fit a slope to. The other folds see it vary.
        let d = ds().altered(|ivs| {
            for (i, iv) in ivs.iter_mut().enumerate() {
                let ns = if (10..15).contains(&i) {
                    (i as u64 - 9) * 100_000_000
                } else {
                    0
                };
                iv.cgroups = vec![(
                    1,
                    Usage {
                        cpu_ns: ns,
                        counters: smallvec::smallvec![],
                    },
                )];
                iv.total = iv.cgroups[0].1.clone();
                iv.energy_j = 50.0 + 10.0 * ns as f64 / 1e9;
            }
        });
        for mut m in [
            Box::new(ShareModel::cpu_share()) as Box<dyn Model>,
            Box::new(LinearOffline::new(&d, 0.0, None)),
        ] {
            let (errs, fitted) = evaluate(m.as_mut(), &d, &k(4));
            assert_eq!(fitted, Ok(()));
            assert_eq!(errs.len(), 4);
            let e = &errs[2];
            assert_eq!(e.n, 0, "{e:?}");
            assert!(e.mae_w.is_nan() && e.rmse_w.is_nan() && e.mape.is_nan());
            assert!(
                e.fit_error
                    .as_deref()
                    .is_some_and(|s| s.contains("constant")),
                "{e:?}"
            );
            // Fold 1's coefficients (exact) would have scored fold 2 at zero error: it was not.
            for f in [0, 1, 3] {
                let e = &errs[f];
                assert_eq!((e.n, e.fit_error.as_deref()), (5, None), "{e:?}");
                assert!(e.mae_w < 1e-9, "{e:?}");
            }
            assert!((m.idle_w() - 50.0).abs() < 1e-9);
        }
    }

    #[test]
    fn a_failed_final_fit_leaves_no_coefficients() {
        let d = ds();
        let mut m = ShareModel::cpu_share();
        assert_eq!(evaluate(&mut m, &d, &k(4)).1, Ok(()));
        assert!(m.predict_w(&d.interval(3)).is_finite());
        // Nothing ran anywhere: every fold and the final fit fail, and the model keeps none of
        // the coefficients it had.
        let d = d.altered(|ivs| {
            for iv in ivs.iter_mut() {
                iv.cgroups.clear();
                iv.total = Usage::default();
            }
        });
        let (errs, fitted) = evaluate(&mut m, &d, &k(4));
        assert!(matches!(fitted, Err(FitError::AllConstant { rows: 20 })));
        assert!(errs.iter().all(|e| e.n == 0 && e.fit_error.is_some()));
        assert!(m.predict_w(&d.interval(3)).is_nan());
        assert!(m.params().is_empty());
    }

    #[test]
    fn rows_asked_one_at_a_time_are_the_rows_read_in_order() {
        // More intervals than are kept: asking across them evicts and makes them again.
        let base = ds();
        let intervals: Vec<Interval> = (0..2 * RECENT as u64 + 37)
            .map(|i| {
                let mut iv = (*base.interval(i as usize % base.len())).clone();
                (iv.start, iv.end) = (i * 1_000_000_000, (i + 1) * 1_000_000_000);
                if i % 11 == 5 {
                    iv.energy_j = f64::NAN;
                }
                iv
            })
            .collect();
        let d = Dataset::of_intervals(vec![], intervals);
        let mut m = ShareModel::cpu_share();
        let known: Vec<usize> = (0..d.len()).filter(|i| i % 11 != 5).collect();
        m.fit(&d, &known).expect("fits");
        let spans: Vec<(u64, u64)> = d.iter().map(|iv| (iv.start, iv.end)).collect();
        let live = Live::new(&spans, vec![]);
        let a = attribute(&d, &m, IdlePolicy::Proportional, &live);
        let all: Vec<Share> = a.shares().collect();
        assert!(
            all.iter().any(|s| s.interval > RECENT),
            "past the kept ones"
        );
        assert!(
            all.iter().all(|s| s.interval % 11 != 5),
            "missing energy: no rows"
        );
        for k in [0, RECENT, 1, 2 * RECENT + 1, RECENT, 3, 0] {
            for s in all.iter().filter(|s| s.interval == k) {
                assert_eq!(a.share(k, s.cgroup), Some(*s), "interval {k}");
            }
            assert_eq!(a.share(k, 999), None);
        }
    }

    #[test]
    fn cpu_share_fits_idle_and_every_policy_adds_up() {
        let d = ds();
        let mut m = ShareModel::cpu_share();
        let (errs, fitted) = evaluate(&mut m, &d, &k(4));
        assert_eq!(fitted, Ok(()));
        assert_eq!(errs.len(), 4);
        assert!(errs.iter().all(|e| e.mae_w < 1e-6), "{errs:?}");
        assert!((m.idle_w() - 50.0).abs() < 1e-6);
        // Cgroup 1 all along (256 MB); cgroup 3 the first half of every second, frozen in
        // the even ones (no memory limit known).
        let mut ps = vec![Presence {
            cgroup: 1,
            from: 0,
            to: 20_000_000_000,
            frozen: vec![],
            memory_mb: Some(256.0),
        }];
        for i in 0..20u64 {
            let (a, b) = (i * 1_000_000_000, i * 1_000_000_000 + 500_000_000);
            ps.push(Presence {
                cgroup: 3,
                from: a,
                to: b,
                frozen: if i % 2 == 0 { vec![(a, b)] } else { vec![] },
                memory_mb: None,
            });
        }
        let spans: Vec<(u64, u64)> = d.iter().map(|iv| (iv.start, iv.end)).collect();
        let live = Live::new(&spans, ps);
        let total: f64 = d.iter().map(|iv| iv.energy_j).sum();
        for p in [
            IdlePolicy::Unassigned,
            IdlePolicy::Proportional,
            IdlePolicy::Even,
            IdlePolicy::ByLifetime,
            IdlePolicy::ByMemory,
        ] {
            let a = attribute(&d, &m, p, &live);
            let rows: Vec<Share> = a.rows(a.shares()).collect();
            let sum: f64 = rows.iter().map(|r| r.dynamic_j + r.idle_j).sum();
            assert!(
                (sum - total).abs() < 1e-6 * total,
                "{p:?}: {sum} vs {total}"
            );
            let idle_3: f64 = rows
                .iter()
                .filter(|r| r.cgroup == 3)
                .map(|r| r.idle_j)
                .sum();
            match p {
                IdlePolicy::ByLifetime => {
                    assert!((idle_3 - 20.0 * 50.0 / 3.0).abs() < 1e-6, "{idle_3}")
                }
                IdlePolicy::Unassigned | IdlePolicy::Proportional => assert_eq!(idle_3, 0.0),
                _ => assert!(idle_3 > 0.0),
            }
        }
        // Interval 0: nothing ran, so all its dynamic energy (none) and, under `unassigned`,
        // its idle energy are unassigned.
        let a = attribute(&d, &m, IdlePolicy::Unassigned, &live);
        let rows: Vec<Share> = a.rows(a.shares()).collect();
        let r0: Vec<&Share> = rows.iter().filter(|r| r.interval == 0).collect();
        assert!(r0
            .iter()
            .any(|r| r.cgroup == UNASSIGNED && (r.idle_j - 50.0).abs() < 1e-6));
    }
}
