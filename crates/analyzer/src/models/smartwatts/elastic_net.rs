//! Elastic-net linear regression by cyclic coordinate descent, following scikit-learn 1.9's
//! `ElasticNet` with a dense X and `precompute=False` (the path smartwatts takes): centre X
//! and y when fitting an intercept, minimise
//! `1/(2n)·‖y − Xw‖² + α·ρ·‖w‖₁ + α·(1−ρ)/2·‖w‖²` one coordinate at a time, stop on the
//! duality gap, and drop features with the gap-safe screening rule as sklearn 1.9 does.
//!
//! Matching sklearn's iteration path matters, not only its optimum: with raw hardware
//! counters (~10⁹ per second) as features the solver often stops at `max_iter`, so the
//! coefficients smartwatts uses are wherever sklearn's descent was after 1000 sweeps. The
//! steps, stopping tests and screening decisions are sklearn's; only the bookkeeping differs
//! (Xᵀr is updated through XᵀX, O(p) per step instead of O(n)), which changes rounding alone:
//! the tests find sklearn's coefficients to 1e-9 and its sweep counts exactly.
//! Written from the algorithm's description (Friedman et al. 2010 for the updates, Fercoq et
//! al. 2015 / Ndiaye et al. 2017 for the gap and the screening), not from sklearn's code.

use std::fmt;

/// Solver settings, with sklearn's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ElasticNet {
    /// Overall penalty strength α.
    pub alpha: f64,
    /// Share ρ of the penalty that is L1 (1 = lasso, 0 = ridge).
    pub l1_ratio: f64,
    /// Centre X and y and fit an intercept; otherwise the intercept is 0.
    pub fit_intercept: bool,
    /// Constrain every coefficient to be ≥ 0.
    pub positive: bool,
    /// Maximum number of sweeps over the features.
    pub max_iter: usize,
    /// Stopping tolerance, relative: the gap is compared with `tol · ‖y‖²`.
    pub tol: f64,
}

impl Default for ElasticNet {
    fn default() -> Self {
        ElasticNet {
            alpha: 1.0,
            l1_ratio: 0.5,
            fit_intercept: true,
            positive: false,
            max_iter: 1000,
            tol: 1e-4,
        }
    }
}

/// A fitted model: `predict(x) = coef · x + intercept`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub coef: Vec<f64>,
    pub intercept: f64,
    /// Duality gap reached, divided by the number of samples as sklearn's `dual_gap_` is.
    pub dual_gap: f64,
    /// Sweeps done (sklearn's `n_iter_`).
    pub n_iter: usize,
    /// False when `max_iter` ran out before the gap reached the tolerance (sklearn then warns).
    pub converged: bool,
}

impl Fitted {
    pub fn predict(&self, x: &[f64]) -> f64 {
        dot(&self.coef, x) + self.intercept
    }
}

/// Why a fit was refused; sklearn raises `ValueError` in the same cases.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    NoSamples,
    NoFeatures,
    /// A row does not have as many values as the first one, or y has another length.
    Shape {
        row: usize,
        expected: usize,
        found: usize,
    },
    NonFiniteInput,
    /// The descent diverged (the input is far too large for f64).
    NonFiniteResult,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::NoSamples => write!(f, "no samples to fit"),
            FitError::NoFeatures => write!(f, "samples have no features"),
            FitError::Shape {
                row,
                expected,
                found,
            } => write!(f, "row {row} has {found} values, expected {expected}"),
            FitError::NonFiniteInput => write!(f, "input contains NaN or infinity"),
            FitError::NonFiniteResult => {
                write!(f, "coordinate descent produced non-finite coefficients")
            }
        }
    }
}

impl std::error::Error for FitError {}

impl ElasticNet {
    /// Fit on `rows` (one sample each) and `y`. Coefficients start at zero (no warm start).
    pub fn fit<R: AsRef<[f64]>>(&self, rows: &[R], y: &[f64]) -> Result<Fitted, FitError> {
        let n = rows.len();
        if n == 0 {
            return Err(FitError::NoSamples);
        }
        let p = rows[0].as_ref().len();
        if p == 0 {
            return Err(FitError::NoFeatures);
        }
        if y.len() != n {
            return Err(FitError::Shape {
                row: n,
                expected: n,
                found: y.len(),
            });
        }
        // Column-major copy: every step of the descent walks one feature over all samples.
        let mut x = vec![0.0; n * p];
        for (i, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != p {
                return Err(FitError::Shape {
                    row: i,
                    expected: p,
                    found: row.len(),
                });
            }
            for (j, &v) in row.iter().enumerate() {
                x[j * n + i] = v;
            }
        }
        let mut y = y.to_vec();
        if !x.iter().chain(&y).all(|v| v.is_finite()) {
            return Err(FitError::NonFiniteInput);
        }

        let mut x_offset = vec![0.0; p];
        let mut y_offset = 0.0;
        if self.fit_intercept {
            for (j, off) in x_offset.iter_mut().enumerate() {
                let col = &mut x[j * n..(j + 1) * n];
                *off = col.iter().sum::<f64>() / n as f64;
                col.iter_mut().for_each(|v| *v -= *off);
            }
            y_offset = y.iter().sum::<f64>() / n as f64;
            y.iter_mut().for_each(|v| *v -= y_offset);
        }

        // sklearn scales the objective by n before calling its solver.
        let l1 = self.alpha * self.l1_ratio * n as f64;
        let l2 = self.alpha * (1.0 - self.l1_ratio) * n as f64;
        let mut cd = Descent::new(&x, n, p, &y, l1, l2, self.positive);
        let (gap, n_iter, converged) = cd.run(self.max_iter, self.tol);
        let coef = cd.w;

        let intercept = if self.fit_intercept {
            y_offset - dot(&x_offset, &coef)
        } else {
            0.0
        };
        if !coef.iter().all(|c| c.is_finite()) || !intercept.is_finite() {
            return Err(FitError::NonFiniteResult);
        }
        Ok(Fitted {
            coef,
            intercept,
            dual_gap: gap / n as f64,
            n_iter,
            converged,
        })
    }
}

/// State of one coordinate descent: weights, residuals, and the screened feature set.
struct Descent<'a> {
    x: &'a [f64],
    n: usize,
    y: &'a [f64],
    /// L1 and L2 penalties, already multiplied by n.
    l1: f64,
    l2: f64,
    positive: bool,
    w: Vec<f64>,
    /// Xᵀ(y − Xw), kept up to date after every coordinate step through the Gram matrix:
    /// O(p) per step instead of O(n) for the residuals themselves. It is the same descent;
    /// only rounding differs, and the residuals are recomputed whenever the gap is.
    xtr: Vec<f64>,
    /// XᵀX, row-major p×p.
    gram: Vec<f64>,
    /// Residuals y − Xw as of the last gap computation.
    r: Vec<f64>,
    norm2: Vec<f64>,
    /// Xᵀr − l2·w, from the last gap computation (the screening rule reads it).
    xta: Vec<f64>,
    /// Features still in play, in increasing order; `None` when screening is off.
    active: Option<Vec<usize>>,
    excluded: Vec<bool>,
}

impl<'a> Descent<'a> {
    fn new(x: &'a [f64], n: usize, p: usize, y: &'a [f64], l1: f64, l2: f64, pos: bool) -> Self {
        let mut gram = vec![0.0; p * p];
        for j in 0..p {
            for k in j..p {
                let g = dot(col(x, n, j), col(x, n, k));
                gram[j * p + k] = g;
                gram[k * p + j] = g;
            }
        }
        let norm2 = (0..p).map(|j| gram[j * p + j]).collect();
        let xtr = (0..p).map(|j| dot(col(x, n, j), y)).collect();
        Descent {
            x,
            n,
            y,
            l1,
            l2,
            positive: pos,
            w: vec![0.0; p],
            xtr,
            gram,
            r: y.to_vec(),
            norm2,
            xta: vec![0.0; p],
            // Screening needs an L1 penalty: without one no feature is provably zero.
            active: (l1 != 0.0).then(Vec::new),
            excluded: vec![false; p],
        }
    }

    fn xj(&self, j: usize) -> &'a [f64] {
        col(self.x, self.n, j)
    }

    /// Returns (duality gap, sweeps done, converged).
    fn run(&mut self, max_iter: usize, tol: f64) -> (f64, usize, bool) {
        // The gap is compared with tol·‖y‖², which scales like the objective (G(0) = ‖y‖²/2);
        // the coefficient-change test uses tol as it is.
        let gap_tol = tol * dot(self.y, self.y);
        let (mut gap, mut dual_norm) = self.gap();
        if gap <= gap_tol {
            return (gap, 0, true);
        }
        if self.active.is_some() {
            self.screen(gap, dual_norm, true);
        }
        let p = self.w.len();
        let mut sweeps = 0;
        let mut converged = false;
        for it in 0..max_iter {
            sweeps = it + 1;
            let mut w_max: f64 = 0.0;
            let mut d_w_max: f64 = 0.0;
            let n_active = self.active.as_ref().map_or(p, Vec::len);
            for k in 0..n_active {
                let j = self.active.as_ref().map_or(k, |a| a[k]);
                if self.norm2[j] == 0.0 {
                    continue;
                }
                let w_old = self.w[j];
                // Correlation of feature j with the residual that excludes feature j itself.
                let rho = self.xtr[j] + w_old * self.norm2[j];
                let w_new = if self.positive && rho < 0.0 {
                    0.0
                } else {
                    rho.signum() * (rho.abs() - self.l1).max(0.0) / (self.norm2[j] + self.l2)
                };
                // signum(0.0) is 1 in Rust but the update must be 0 there; max(…, 0) above
                // already gives 0 whenever |rho| ≤ l1, which covers rho = 0.
                self.w[j] = w_new;
                if w_new != w_old {
                    // r −= (w_new − w_old)·X_j, seen through Xᵀ.
                    let g = &self.gram[j * p..(j + 1) * p];
                    axpy(w_old - w_new, g, &mut self.xtr);
                }
                d_w_max = fmax(d_w_max, (w_new - w_old).abs());
                w_max = fmax(w_max, w_new.abs());
            }
            if w_max == 0.0 || d_w_max / w_max <= tol || it == max_iter - 1 {
                // Coefficients barely moved: the duality gap decides.
                (gap, dual_norm) = self.gap();
                if gap <= gap_tol {
                    converged = true;
                    break;
                }
                if self.active.is_some() {
                    self.screen(gap, dual_norm, false);
                }
            }
        }
        (gap, sweeps, converged)
    }

    /// Duality gap of the current w, and the dual norm of Xᵀr − l2·w (left in `xta`).
    fn gap(&mut self) -> (f64, f64) {
        let (l1, l2) = (self.l1, self.l2);
        self.r.copy_from_slice(self.y);
        for (j, &wj) in self.w.iter().enumerate() {
            if wj != 0.0 {
                axpy(-wj, col(self.x, self.n, j), &mut self.r);
            }
        }
        let w_l2 = if l2 > 0.0 { dot(&self.w, &self.w) } else { 0.0 };
        let r_norm2 = dot(&self.r, &self.r);
        for j in 0..self.w.len() {
            let v = dot(self.xj(j), &self.r);
            self.xtr[j] = v;
            self.xta[j] = if l1 == 0.0 { v } else { v - l2 * self.w[j] };
        }
        if l1 == 0.0 {
            let xtr2 = dot(&self.xta, &self.xta);
            if l2 == 0.0 {
                // Ordinary least squares has no dual gap: use the gradient's squared norm.
                return (xtr2, xtr2);
            }
            // Ridge: the dual of formulation B, feasible for any residual.
            let ry = dot(&self.r, self.y);
            let gap = r_norm2 + 0.5 * l2 * w_l2 - ry + xtr2 / (2.0 * l2);
            return (gap, xtr2);
        }
        let dual_norm = if self.positive {
            self.xta.iter().copied().fold(f64::NEG_INFINITY, fmax)
        } else {
            self.xta.iter().map(|v| v.abs()).fold(0.0, fmax)
        };
        let ry = dot(&self.r, self.y);
        let w_l1: f64 = self.w.iter().map(|v| v.abs()).sum();
        let primal = 0.5 * (r_norm2 + l2 * w_l2) + l1 * w_l1;
        // Scale the residual into the dual feasible set ‖Xᵀθ‖∞ ≤ l1.
        let scale = if dual_norm > l1 { l1 / dual_norm } else { 1.0 };
        let dual = -0.5 * scale * scale * (r_norm2 + l2 * w_l2) + scale * ry;
        (primal - dual, dual_norm)
    }

    /// Gap-safe screening: a feature whose dual constraint is slack by more than the gap
    /// allows is zero at the optimum, so it is set to zero and left out of later sweeps.
    fn screen(&mut self, gap: f64, dual_norm: f64, first: bool) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        active.clear();
        let radius = (2.0 * gap).sqrt() / self.l1;
        for j in 0..self.w.len() {
            if first && self.norm2[j] == 0.0 {
                self.w[j] = 0.0;
                self.excluded[j] = true;
                continue;
            }
            if !first && self.excluded[j] {
                continue;
            }
            let xj_theta = self.xta[j] / fmax(self.l1, dual_norm);
            let d_j = (1.0 - xj_theta.abs()) / (self.norm2[j] + self.l2).sqrt();
            if d_j <= radius {
                active.push(j);
                self.excluded[j] = false;
            } else {
                if self.w[j] != 0.0 {
                    let p = self.w.len();
                    axpy(self.w[j], &self.gram[j * p..(j + 1) * p], &mut self.xtr);
                    axpy(self.w[j], self.xj(j), &mut self.r);
                    self.w[j] = 0.0;
                }
                self.excluded[j] = true;
            }
        }
        self.active = Some(active);
    }
}

/// `x > y ? x : y`, the comparison sklearn uses (not IEEE maxNum: NaN propagates from x).
fn fmax(x: f64, y: f64) -> f64 {
    if x > y {
        x
    } else {
        y
    }
}

fn col(x: &[f64], n: usize, j: usize) -> &[f64] {
    &x[j * n..(j + 1) * n]
}

/// Four running sums, like BLAS kernels: a single chain of dependent additions would make
/// the descent latency-bound. (sklearn's BLAS sums in yet another order; the difference is
/// rounding, far below what the tests or the comparison can see.)
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a4, b4) = (a[..n].chunks_exact(4), b[..n].chunks_exact(4));
    let (ra, rb) = (a4.remainder(), b4.remainder());
    let mut s = [0.0f64; 4];
    for (x, y) in a4.zip(b4) {
        for ((sk, xk), yk) in s.iter_mut().zip(x).zip(y) {
            *sk += xk * yk;
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    (s[0] + s[1]) + (s[2] + s[3]) + tail
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += a * x);
}

#[cfg(test)]
mod tests {
    //! Expected values are scikit-learn 1.9.1's `ElasticNet` on the same problems, computed
    //! once with `bench/smartwatts/sklearn_reference.py` in the comparison's venv and pasted
    //! here, so this test needs no Python.

    use super::*;

    /// Knuth's MMIX LCG, as in `sklearn_reference.py`.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn counters(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut g = Lcg(seed);
        let (mut rows, mut y) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let r#ref = 200_000_000 + g.next() % 1_800_000_000;
            let thread = r#ref * (19 + g.next() % 6) / 21;
            let instr = thread * (5 + g.next() % 20) / 10;
            let llc = instr / (200 + g.next() % 2000);
            rows.push(vec![r#ref as f64, thread as f64, instr as f64, llc as f64]);
            let noise = ((g.next() % 2001) as f64 - 1000.0) / 1000.0;
            y.push(
                20.0 + 6.5 * thread as f64 / 1e9
                    + 4.0 * instr as f64 / 1e9
                    + 0.9 * llc as f64 / 1e6
                    + noise,
            );
        }
        (rows, y)
    }

    fn rows(x: &[&[f64]]) -> Vec<Vec<f64>> {
        x.iter().map(|r| r.to_vec()).collect()
    }

    #[track_caller]
    fn check(fit: &Fitted, coef: &[f64], intercept: f64, n_iter: usize) {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
        assert_eq!(fit.coef.len(), coef.len());
        for (got, want) in fit.coef.iter().zip(coef) {
            assert!(
                close(*got, *want),
                "coef {:?} vs sklearn {coef:?}",
                fit.coef
            );
        }
        assert!(
            close(fit.intercept, intercept) || fit.intercept == intercept,
            "intercept {} vs sklearn {intercept}",
            fit.intercept
        );
        assert_eq!(fit.n_iter, n_iter, "sweeps");
    }

    #[test]
    fn small_positive_with_intercept() {
        let x = rows(&[
            &[1., 2., 0.],
            &[2., 1., 1.],
            &[3., 4., 0.],
            &[4., 3., 2.],
            &[5., 6., 1.],
            &[6., 5., 3.],
            &[7., 8., 2.],
            &[8., 7., 4.],
        ]);
        let y = [3.1, 4.2, 7.9, 9.1, 12.2, 13.8, 16.1, 18.3];
        let m = ElasticNet {
            positive: true,
            ..ElasticNet::default()
        };
        let fit = m.fit(&x, &y).expect("fit");
        check(
            &fit,
            &[1.2345049658295846, 0.7100460097815465, 0.27242109473804976],
            1.394336330800579,
            32,
        );
        assert!(fit.converged);
    }

    #[test]
    fn negative_feature_is_clamped() {
        let x = rows(&[
            &[1., 8.],
            &[2., 7.],
            &[3., 6.],
            &[4., 5.],
            &[5., 4.],
            &[6., 3.],
        ]);
        let y = [2.0, 4.1, 5.9, 8.2, 9.9, 12.1];
        let m = ElasticNet {
            positive: true,
            fit_intercept: false,
            ..ElasticNet::default()
        };
        let fit = m.fit(&x, &y).expect("fit");
        check(&fit, &[1.8445215732091247, 0.0655291377500286], 0.0, 10);
    }

    #[test]
    fn signed_mostly_lasso() {
        let x = rows(&[
            &[1., 8., 3.],
            &[2., 7., 1.],
            &[3., 6., 4.],
            &[4., 5., 1.],
            &[5., 4., 5.],
            &[6., 3., 9.],
            &[7., 2., 2.],
        ]);
        let y = [1.0, 1.5, 3.2, 3.1, 5.0, 7.7, 5.1];
        let m = ElasticNet {
            alpha: 0.1,
            l1_ratio: 0.7,
            ..ElasticNet::default()
        };
        let fit = m.fit(&x, &y).expect("fit");
        check(
            &fit,
            &[0.3653141796180576, -0.3600213261172032, 0.40178591360760857],
            2.703900220658041,
            329,
        );
    }

    #[test]
    fn ridge_only_uses_the_other_dual() {
        let x = rows(&[&[1., 2.], &[2., 3.], &[3., 5.], &[4., 4.], &[5., 7.]]);
        let y = [2.0, 3.5, 5.5, 6.0, 8.5];
        let m = ElasticNet {
            alpha: 0.5,
            l1_ratio: 0.0,
            ..ElasticNet::default()
        };
        let fit = m.fit(&x, &y).expect("fit");
        check(
            &fit,
            &[0.6903394600165399, 0.6246396497004659],
            0.4054950912084232,
            17,
        );
    }

    #[test]
    fn raw_counters_stop_at_max_iter_where_sklearn_does() {
        // smartwatts before its window is full: no intercept, 10 samples of raw counters.
        let (x, y) = counters(10, 7);
        let m = ElasticNet {
            positive: true,
            fit_intercept: false,
            ..ElasticNet::default()
        };
        let fit = m.fit(&x, &y).expect("fit");
        check(
            &fit,
            &[
                4.625446080313677e-09,
                8.582271434233355e-09,
                8.59004649550744e-09,
                4.3501176233699435e-06,
            ],
            0.0,
            1000,
        );
        assert!(!fit.converged);
    }

    #[test]
    fn raw_counters_full_window_with_intercept() {
        let (x, y) = counters(60, 11);
        let m = ElasticNet {
            positive: true,
            ..ElasticNet::default()
        };
        let fit = m.fit(&x, &y).expect("fit");
        check(
            &fit,
            &[
                1.178755033126625e-09,
                5.764736694233719e-09,
                3.745868375850571e-09,
                8.156329335951508e-07,
            ],
            20.02948272592723,
            118,
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let m = ElasticNet::default();
        let empty: [Vec<f64>; 0] = [];
        assert_eq!(m.fit(&empty, &[]), Err(FitError::NoSamples));
        assert_eq!(m.fit(&[vec![]], &[1.0]), Err(FitError::NoFeatures));
        assert!(matches!(
            m.fit(&[vec![1.0, 2.0], vec![1.0]], &[1.0, 2.0]),
            Err(FitError::Shape { row: 1, .. })
        ));
        assert_eq!(
            m.fit(&[vec![f64::NAN]], &[1.0]),
            Err(FitError::NonFiniteInput)
        );
        // A constant feature has no variance once centred: its weight stays 0.
        let fit = m
            .fit(
                &[vec![1.0, 3.0], vec![2.0, 3.0], vec![3.0, 3.0]],
                &[1.0, 2.0, 3.0],
            )
            .expect("fit");
        assert_eq!(fit.coef[1], 0.0);
    }
}
