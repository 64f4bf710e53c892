//! Least squares for the models' small fits (a handful of features, many intervals), solved by
//! Householder QR (nalgebra) on the standardised design matrix — never by the normal
//! equations, whose condition number is the square of the design's.
//!
//! 1. A feature whose spread is at most [`COLLINEAR_TOL`] of its RMS value is constant: the
//!    intercept already covers it, so it is dropped.
//! 2. The other features are centred and scaled to unit standard deviation, then taken in the
//!    caller's order: each is kept only if, projected on the features kept before it, its
//!    residual is more than [`COLLINEAR_TOL`] of its standard deviation (the diagonal of R in
//!    the QR of the kept columns and it); otherwise it is numerically a linear combination of
//!    them and is dropped, and the fit says of which. A fixed order rather than nalgebra's
//!    `ColPivQR`: that one pivots on the largest entry, not the largest residual norm, so it is
//!    not reliably rank-revealing, and every standardised column has the same norm anyway, so
//!    the order decides which of two collinear features stays — callers list the most
//!    meaningful first (CPU time).
//! 3. The kept columns are solved by QR, centred so the intercept is free and unpenalised, with
//!    `√(ridge·n)·I` rows appended when a ridge is asked for; with `nonneg`, by Lawson–Hanson
//!    NNLS whose subproblems use the same QR.
//!
//! All of it after one QR of the n × k design: the later steps work on its k × k R.

use nalgebra::{DMatrix, DVector};

/// Relative tolerance for a feature to count as constant or collinear: its residual (around
/// its mean, or after projection on the kept features) over its RMS or standard deviation.
/// Beyond a condition number of 1e8 half the digits of a coefficient are rounding.
pub const COLLINEAR_TOL: f64 = 1e-8;

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Options {
    /// Penalty on standardised coefficients, ≥ 0 (0 = plain least squares).
    pub ridge: f64,
    /// Coefficients constrained to ≥ 0 (the intercept stays free).
    pub nonneg: bool,
}

/// Why a feature was left out of a fit.
#[derive(Debug, Clone, PartialEq)]
pub enum Dropped {
    /// It does not vary over the rows: the intercept covers it.
    Constant { value: f64 },
    /// It is, within [`COLLINEAR_TOL`], a linear combination of the kept features `with` (those
    /// that weigh at least 1 % of the largest in it, by standardised coefficient); `residual`
    /// is what is left of it after that combination, in its standard deviations (√(1 − R²)).
    Collinear { with: Vec<usize>, residual: f64 },
}

/// A fitted linear model `y = intercept + Σ coef_k x_k`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fit {
    pub intercept: f64,
    /// One per feature; exactly 0 for a dropped or pinned one.
    pub coef: Vec<f64>,
    /// Features left out, by index, and why.
    pub dropped: Vec<(usize, Dropped)>,
    /// Features the non-negativity constraint held at 0, by index, with the coefficient the
    /// unconstrained fit on the same features gives them.
    pub pinned: Vec<(usize, f64)>,
}

impl Fit {
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept + self.coef.iter().zip(x).map(|(c, v)| c * v).sum::<f64>()
    }

    /// What was dropped or pinned and why, one sentence each, with the features' `names`.
    pub fn notes(&self, names: &[String], unit: &str) -> Vec<String> {
        let name = |i: usize| names.get(i).map_or("?", String::as_str);
        let mut out = Vec::new();
        for (i, d) in &self.dropped {
            out.push(match d {
                Dropped::Constant { value } => format!(
                    "{} dropped: constant at {value}{unit} over the intervals fitted, the intercept covers it",
                    name(*i)
                ),
                Dropped::Collinear { with, residual } => format!(
                    "{} dropped: collinear with {} (residual {residual:.1e} of its standard deviation, R² ≈ 1 − {:.1e})",
                    name(*i),
                    with.iter().map(|&j| name(j)).collect::<Vec<_>>().join(" + "),
                    residual * residual
                ),
            });
        }
        for (i, free) in &self.pinned {
            out.push(format!(
                "{} held at 0 W per unit{unit} by the non-negativity constraint (an unconstrained fit gives {free:.3e})",
                name(*i)
            ));
        }
        out
    }
}

/// Why a fit has no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    #[error("no intervals to fit on")]
    NoRows,
    #[error("row {row} has {found} values, expected {expected}")]
    Shape {
        row: usize,
        expected: usize,
        found: usize,
    },
    #[error("row {row} has a value that is not finite")]
    NonFinite { row: usize },
    #[error("ridge {0} is not a finite number ≥ 0")]
    BadRidge(f64),
    #[error("prior strength {0} CPU-seconds is not a finite number ≥ 0")]
    BadPrior(f64),
    #[error("window {0} s is not a positive duration")]
    BadWindow(f64),
    #[error(
        "every feature is constant over the {rows} intervals fitted: nothing to fit a slope to"
    )]
    AllConstant { rows: usize },
    #[error("{rows} intervals for {features} varying features and an intercept: too few to fit")]
    TooFewRows { rows: usize, features: usize },
    #[error("the least-squares solve found no solution (a singular system)")]
    Singular,
    #[error("the non-negative least squares did not converge in {0} iterations")]
    NoConvergence(usize),
}

/// The rows a fit is made on: `k` features each, stored one row after another. An hour's
/// training set is ~300 k intervals of a few features; as a vector per row, each row's header
/// and allocation (~40 B) outweighed its values, and the fits' transient was an hour's
/// attribution peak (`bench/README.md`, session 25).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Design {
    values: Vec<f64>,
    k: usize,
    n: usize,
}

impl Design {
    /// Room for `rows` rows of `k` features.
    pub fn with_capacity(k: usize, rows: usize) -> Self {
        Self {
            values: Vec::with_capacity(k * rows),
            k,
            n: 0,
        }
    }

    /// Appends a row, which must have the design's `k` features.
    pub fn push(&mut self, row: &[f64]) -> Result<(), FitError> {
        if row.len() != self.k {
            return Err(FitError::Shape {
                row: self.n,
                expected: self.k,
                found: row.len(),
            });
        }
        self.values.extend_from_slice(row);
        self.n += 1;
        Ok(())
    }

    /// The design of `rows`, each as long as the first.
    #[cfg(test)]
    pub fn from_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<Self, FitError> {
        let k = rows.first().map_or(0, |r| r.as_ref().len());
        let mut d = Self::with_capacity(k, rows.len());
        for r in rows {
            d.push(r.as_ref())?;
        }
        Ok(d)
    }

    /// All its rows.
    pub fn rows(&self) -> Rows<'_> {
        Rows {
            values: &self.values,
            k: self.k,
            n: self.n,
        }
    }
}

/// Some rows of a [`Design`], in order.
#[derive(Debug, Clone, Copy)]
pub struct Rows<'a> {
    values: &'a [f64],
    k: usize,
    n: usize,
}

impl<'a> Rows<'a> {
    pub fn len(&self) -> usize {
        self.n
    }

    /// Features per row.
    pub fn width(&self) -> usize {
        self.k
    }

    /// Row `r` (< `len()`).
    pub fn row(&self, r: usize) -> &'a [f64] {
        &self.values[r * self.k..(r + 1) * self.k]
    }

    /// Rows `range` of these.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Rows<'a> {
        assert!(
            range.start <= range.end && range.end <= self.n,
            "rows out of range"
        );
        Rows {
            values: &self.values[range.start * self.k..range.end * self.k],
            k: self.k,
            n: range.end - range.start,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a [f64]> + '_ {
        (0..self.n).map(|r| self.row(r))
    }
}

/// Fits `y ≈ a + Σ b_k x_k` on rows `xs`, dropping constant and collinear features (see the
/// module doc).
pub fn fit(xs: Rows<'_>, y: &[f64], opts: Options) -> Result<Fit, FitError> {
    let n = xs.len();
    if n == 0 {
        return Err(FitError::NoRows);
    }
    if y.len() != n {
        return Err(FitError::Shape {
            row: 0,
            expected: n,
            found: y.len(),
        });
    }
    let k = xs.width();
    for (row, (x, yv)) in xs.iter().zip(y).enumerate() {
        if !yv.is_finite() || !x.iter().all(|v| v.is_finite()) {
            return Err(FitError::NonFinite { row });
        }
    }
    if !(opts.ridge.is_finite() && opts.ridge >= 0.0) {
        return Err(FitError::BadRidge(opts.ridge));
    }
    let nf = n as f64;
    let mean_y = y.iter().sum::<f64>() / nf;
    let mean: Vec<f64> = (0..k)
        .map(|j| xs.iter().map(|x| x[j]).sum::<f64>() / nf)
        .collect();
    let sd: Vec<f64> = (0..k)
        .map(|j| (xs.iter().map(|x| (x[j] - mean[j]).powi(2)).sum::<f64>() / nf).sqrt())
        .collect();
    let mut dropped = Vec::new();
    let mut varying = Vec::new();
    for j in 0..k {
        let rms = (mean[j] * mean[j] + sd[j] * sd[j]).sqrt();
        if sd[j] <= COLLINEAR_TOL * rms {
            dropped.push((j, Dropped::Constant { value: mean[j] }));
        } else {
            varying.push(j);
        }
    }
    if varying.is_empty() {
        return Err(FitError::AllConstant { rows: n });
    }
    // With the intercept, n rows span at most n − 1 centred directions.
    if n <= varying.len() {
        return Err(FitError::TooFewRows {
            rows: n,
            features: varying.len(),
        });
    }
    // One QR of the standardised design, Z = QR: every least-squares problem on a subset of
    // its columns is the same on R's columns with Qᵀ(y − ȳ) as right-hand side (Q is
    // orthonormal), so the selection and NNLS below work on k × k matrices, not n × k.
    let k_var = varying.len();
    let z = DMatrix::from_fn(n, k_var, |r, c| {
        let j = varying[c];
        (xs.row(r)[j] - mean[j]) / sd[j]
    });
    let mut qty = DVector::from_iterator(n, y.iter().map(|v| v - mean_y));
    let qr = z.qr();
    qr.q_tr_mul(&mut qty);
    let r = qr.r();
    let rhs = qty.rows(0, k_var).into_owned();
    let mut kept: Vec<usize> = Vec::new();
    let mut kept_cols: Vec<usize> = Vec::new();
    for (c, &j) in varying.iter().enumerate() {
        if !kept_cols.is_empty() {
            let a = r.select_columns(kept_cols.iter());
            let rj = r.column(c).into_owned();
            let beta = qr_solve(&a, &rj).ok_or(FitError::Singular)?;
            // Unit standard deviation: the column's norm is √n.
            let residual = (&rj - &a * &beta).norm() / nf.sqrt();
            if residual <= COLLINEAR_TOL {
                let top = beta.amax();
                let with = kept
                    .iter()
                    .zip(beta.iter())
                    .filter(|(_, b)| b.abs() >= 0.01 * top)
                    .map(|(&i, _)| i)
                    .collect();
                dropped.push((j, Dropped::Collinear { with, residual }));
                continue;
            }
        }
        kept.push(j);
        kept_cols.push(c);
    }
    dropped.sort_by_key(|(j, _)| *j);

    let m = kept.len();
    let penalty = (opts.ridge * nf).sqrt();
    let rows = if penalty > 0.0 { k_var + m } else { k_var };
    let mut a = DMatrix::zeros(rows, m);
    a.view_mut((0, 0), (k_var, m))
        .copy_from(&r.select_columns(kept_cols.iter()));
    let mut b = DVector::zeros(rows);
    b.rows_mut(0, k_var).copy_from(&rhs);
    if penalty > 0.0 {
        for c in 0..m {
            a[(k_var + c, c)] = penalty;
        }
    }
    let free = qr_solve(&a, &b).ok_or(FitError::Singular)?;
    let beta = if opts.nonneg {
        nnls(&a, &b)?
    } else {
        free.clone()
    };
    let mut coef = vec![0.0; k];
    let mut pinned = Vec::new();
    for (c, &j) in kept.iter().enumerate() {
        coef[j] = beta[c] / sd[j];
        if opts.nonneg && beta[c] == 0.0 {
            pinned.push((j, free[c] / sd[j]));
        }
    }
    let intercept = mean_y - coef.iter().zip(&mean).map(|(c, m)| c * m).sum::<f64>();
    if !intercept.is_finite() || !coef.iter().all(|c| c.is_finite()) {
        return Err(FitError::Singular);
    }
    Ok(Fit {
        intercept,
        coef,
        dropped,
        pinned,
    })
}

/// Least-squares solution of `a β ≈ b` for a tall `a` of full column rank, by Householder QR:
/// `R β = (Qᵀ b)[..m]`. None if R is singular.
fn qr_solve(a: &DMatrix<f64>, b: &DVector<f64>) -> Option<DVector<f64>> {
    let m = a.ncols();
    if a.nrows() < m {
        return None;
    }
    let qr = a.clone().qr();
    let mut qtb = b.clone();
    qr.q_tr_mul(&mut qtb);
    let r = qr.r();
    let x = r.solve_upper_triangular(&qtb.rows(0, m).into_owned())?;
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Lawson–Hanson active-set NNLS: `min ‖a β − b‖` with `β ≥ 0`, each passive-set subproblem
/// solved by [`qr_solve`] on the passive columns.
pub(crate) fn nnls(a: &DMatrix<f64>, b: &DVector<f64>) -> Result<DVector<f64>, FitError> {
    let m = a.ncols();
    let mut x = DVector::zeros(m);
    let mut passive = vec![false; m];
    // A gradient entry below this is rounding, not a direction that lowers the residual.
    let tol = 1e-10 * a.norm() * b.norm();
    let max_iter = 3 * m + 10;
    for _ in 0..max_iter {
        let w = a.tr_mul(&(b - a * &x));
        let Some(t) = (0..m)
            .filter(|&j| !passive[j] && w[j] > tol)
            .max_by(|&i, &j| w[i].total_cmp(&w[j]))
        else {
            return Ok(x);
        };
        passive[t] = true;
        let mut first = true;
        loop {
            let idx: Vec<usize> = (0..m).filter(|&j| passive[j]).collect();
            let sub = a.select_columns(idx.iter());
            let s_p = qr_solve(&sub, b).ok_or(FitError::Singular)?;
            let mut s = DVector::zeros(m);
            for (c, &j) in idx.iter().enumerate() {
                s[j] = s_p[c];
            }
            if idx.iter().all(|&j| s[j] > 0.0) {
                x = s;
                break;
            }
            if first && s[t] <= 0.0 {
                // The feature just let in only looked useful by rounding: x is optimal.
                passive[t] = false;
                return Ok(x);
            }
            first = false;
            // Step from x towards s until the first passive coefficient reaches 0; it (and any
            // other at 0) leaves the passive set.
            let Some((alpha, at)) = idx
                .iter()
                .filter(|&&j| s[j] <= 0.0)
                .map(|&j| {
                    let d = x[j] - s[j];
                    (if d > 0.0 { x[j] / d } else { 0.0 }, j)
                })
                .min_by(|p, q| p.0.total_cmp(&q.0))
            else {
                return Err(FitError::Singular);
            };
            x += (&s - &x) * alpha;
            x[at] = 0.0;
            for &j in &idx {
                if x[j] <= 0.0 {
                    x[j] = 0.0;
                    passive[j] = false;
                }
            }
            if !passive.iter().any(|&p| p) {
                break;
            }
        }
    }
    Err(FitError::NoConvergence(max_iter))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fits rows given one vector each.
    fn fit(xs: &[Vec<f64>], y: &[f64], opts: Options) -> Result<Fit, FitError> {
        super::fit(Design::from_rows(xs)?.rows(), y, opts)
    }

    const OLS: Options = Options {
        ridge: 0.0,
        nonneg: false,
    };

    #[test]
    fn recovers_an_exact_plane_and_shrinks_with_ridge() {
        let xs: Vec<Vec<f64>> = (0..50)
            .map(|i| vec![i as f64, ((i * 7) % 11) as f64, 3.0])
            .collect();
        let y: Vec<f64> = xs.iter().map(|x| 5.0 + 2.0 * x[0] - 0.5 * x[1]).collect();
        let f = fit(&xs, &y, OLS).unwrap();
        assert!((f.intercept - 5.0).abs() < 1e-9, "{f:?}");
        assert!((f.coef[0] - 2.0).abs() < 1e-12 && (f.coef[1] + 0.5).abs() < 1e-12);
        assert_eq!(f.coef[2], 0.0, "a constant feature drops out");
        assert_eq!(f.dropped, vec![(2, Dropped::Constant { value: 3.0 })]);
        assert!(f.pinned.is_empty());
        assert!((f.predict(&[10.0, 2.0, 3.0]) - 24.0).abs() < 1e-9);
        let r = fit(
            &xs,
            &y,
            Options {
                ridge: 10.0,
                nonneg: false,
            },
        )
        .unwrap();
        assert!(r.coef[0].abs() < f.coef[0].abs());
        assert!(r.coef[0] > 0.0);
        assert_eq!(fit(&[], &[], OLS), Err(FitError::NoRows));
        assert_eq!(
            fit(
                &xs,
                &y,
                Options {
                    ridge: -1.0,
                    nonneg: false
                }
            ),
            Err(FitError::BadRidge(-1.0))
        );
    }

    #[test]
    fn a_nearly_collinear_feature_is_dropped_and_named_and_the_rest_is_stable() {
        // x1 = 3.7 × x0 up to 1e-9 relative noise; power depends on x0 and x2.
        let xs: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                let x0 = 1e8 + 1e7 * ((i * 37) % 101) as f64;
                let noise = 1e-9 * (((i * 13) % 17) as f64 / 8.0 - 1.0);
                let x2 = 5e6 * ((i * 11) % 23) as f64;
                vec![x0, 3.7 * x0 * (1.0 + noise), x2]
            })
            .collect();
        let y: Vec<f64> = xs
            .iter()
            .map(|x| 20.0 + 1e-8 * x[0] + 3e-9 * x[2])
            .collect();
        for nonneg in [false, true] {
            let f = fit(&xs, &y, Options { ridge: 0.0, nonneg }).unwrap();
            assert_eq!(f.dropped.len(), 1, "{f:?}");
            let (j, Dropped::Collinear { with, residual }) = &f.dropped[0] else {
                panic!("{f:?}")
            };
            assert_eq!((*j, with.as_slice()), (1, &[0][..]));
            assert!(*residual < COLLINEAR_TOL && *residual > 0.0, "{residual}");
            assert_eq!(f.coef[1], 0.0);
            assert!((f.coef[0] - 1e-8).abs() < 1e-16, "{f:?}");
            assert!((f.coef[2] - 3e-9).abs() < 1e-17, "{f:?}");
            assert!((f.intercept - 20.0).abs() < 1e-6, "{f:?}");
            for x in &xs {
                let truth = 20.0 + 1e-8 * x[0] + 3e-9 * x[2];
                assert!((f.predict(x) - truth).abs() < 1e-9 * truth);
            }
            let names: Vec<String> = ["cpu_ns", "ref-cycles", "instructions"]
                .map(String::from)
                .to_vec();
            let notes = f.notes(&names, "/s");
            assert_eq!(notes.len(), 1);
            assert!(
                notes[0].starts_with("ref-cycles dropped: collinear with cpu_ns"),
                "{notes:?}"
            );
        }
    }

    #[test]
    fn nnls_keeps_coefficients_non_negative_and_recovers_a_non_negative_truth() {
        // Power = 10 + 2·x0 + 0·x1 + noise that OLS reads as a negative slope on x1.
        let xs: Vec<Vec<f64>> = (0..60)
            .map(|i| vec![(i % 10) as f64, ((i * 7) % 13) as f64])
            .collect();
        let y: Vec<f64> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| 10.0 + 2.0 * x[0] - 0.05 * x[1] + 0.01 * ((i % 3) as f64 - 1.0))
            .collect();
        let free = fit(&xs, &y, OLS).unwrap();
        assert!(free.coef[1] < 0.0, "{free:?}");
        let f = fit(
            &xs,
            &y,
            Options {
                ridge: 0.0,
                nonneg: true,
            },
        )
        .unwrap();
        assert_eq!(f.coef[1], 0.0, "{f:?}");
        assert!(f.coef[0] > 0.0);
        assert_eq!(f.pinned.len(), 1);
        assert_eq!(f.pinned[0].0, 1);
        assert!((f.pinned[0].1 - free.coef[1]).abs() < 1e-12);
        // It is the least-squares fit on x0 alone (the constrained optimum).
        let x0: Vec<Vec<f64>> = xs.iter().map(|x| vec![x[0]]).collect();
        let alone = fit(&x0, &y, OLS).unwrap();
        assert!((f.coef[0] - alone.coef[0]).abs() < 1e-12, "{f:?} {alone:?}");
        assert!((f.intercept - alone.intercept).abs() < 1e-10);

        // Exact data from non-negative coefficients, one of them 0: recovered exactly.
        let xs: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                vec![
                    (i % 7) as f64,
                    ((i * 3) % 11) as f64,
                    ((i * 5) % 13) as f64 + 0.5 * (i % 7) as f64,
                ]
            })
            .collect();
        let y: Vec<f64> = xs
            .iter()
            .map(|x| 4.0 + 1.5 * x[0] + 0.0 * x[1] + 0.25 * x[2])
            .collect();
        let f = fit(
            &xs,
            &y,
            Options {
                ridge: 0.0,
                nonneg: true,
            },
        )
        .unwrap();
        assert!((f.coef[0] - 1.5).abs() < 1e-10, "{f:?}");
        assert!(f.coef[1].abs() < 1e-10 && f.coef[1] >= 0.0, "{f:?}");
        assert!((f.coef[2] - 0.25).abs() < 1e-10, "{f:?}");
        assert!((f.intercept - 4.0).abs() < 1e-9, "{f:?}");
    }

    #[test]
    fn degenerate_data_is_an_error_not_a_fit() {
        let zeros: Vec<Vec<f64>> = (0..10).map(|_| vec![0.0, 0.0]).collect();
        let y: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(
            fit(&zeros, &y, OLS),
            Err(FitError::AllConstant { rows: 10 })
        );
        let few = vec![
            vec![1.0, 2.0, 0.5],
            vec![2.0, 1.0, 0.0],
            vec![0.0, 3.0, 1.0],
        ];
        assert_eq!(
            fit(&few, &[1.0, 2.0, 3.0], OLS),
            Err(FitError::TooFewRows {
                rows: 3,
                features: 3
            })
        );
        assert_eq!(
            fit(&[vec![1.0], vec![f64::NAN]], &[1.0, 2.0], OLS),
            Err(FitError::NonFinite { row: 1 })
        );
        assert!(matches!(
            fit(&[vec![1.0], vec![2.0, 3.0]], &[1.0, 2.0], OLS),
            Err(FitError::Shape { row: 1, .. })
        ));
        assert!(matches!(
            fit(&[vec![1.0], vec![2.0]], &[1.0], OLS),
            Err(FitError::Shape { row: 0, .. })
        ));
        // Rows of no features: nothing varies.
        let mut none = Design::with_capacity(0, 3);
        for _ in 0..3 {
            none.push(&[]).unwrap();
        }
        assert_eq!(
            super::fit(none.rows(), &[1.0, 2.0, 3.0], OLS),
            Err(FitError::AllConstant { rows: 3 })
        );
    }
}
