//! Least squares with an optional ridge penalty, for the models' small fits (a handful of
//! features): the normal equations solved by Gaussian elimination with partial pivoting.
//! Features are standardised first so the penalty treats them alike; the intercept is not
//! penalised.

/// A fitted linear model `y = intercept + Σ coef_k x_k`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fit {
    pub intercept: f64,
    pub coef: Vec<f64>,
}

impl Fit {
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept + self.coef.iter().zip(x).map(|(c, v)| c * v).sum::<f64>()
    }
}

/// Fits `y ≈ a + Σ b_k x_k` on rows `xs` (one feature vector each); `ridge` ≥ 0 is the penalty
/// on standardised coefficients. None when there are no rows.
pub fn fit(xs: &[Vec<f64>], y: &[f64], ridge: f64) -> Option<Fit> {
    let n = xs.len();
    if n == 0 || y.len() != n {
        return None;
    }
    let k = xs[0].len();
    let mean_y = y.iter().sum::<f64>() / n as f64;
    let mut mean = vec![0.0; k];
    for x in xs {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += v / n as f64;
        }
    }
    let mut sd = vec![0.0; k];
    for x in xs {
        for j in 0..k {
            sd[j] += (x[j] - mean[j]).powi(2) / n as f64;
        }
    }
    for (s, m) in sd.iter_mut().zip(&mean) {
        *s = s.sqrt();
        // Rounding leaves a constant feature a tiny spread: it is constant, it drops out.
        if *s <= 1e-9 * (m.abs() + 1.0) {
            *s = 0.0;
        }
    }
    // Normal equations on centred, standardised features (constant features drop out).
    let mut a = vec![vec![0.0; k + 1]; k];
    for (x, &yv) in xs.iter().zip(y) {
        let z: Vec<f64> = (0..k)
            .map(|j| {
                if sd[j] > 0.0 {
                    (x[j] - mean[j]) / sd[j]
                } else {
                    0.0
                }
            })
            .collect();
        for r in 0..k {
            for c in 0..k {
                a[r][c] += z[r] * z[c];
            }
            a[r][k] += z[r] * (yv - mean_y);
        }
    }
    for (r, row) in a.iter_mut().enumerate() {
        row[r] += if sd[r] > 0.0 { ridge * n as f64 } else { 1.0 };
    }
    let beta_z = solve(a)?;
    let coef: Vec<f64> = (0..k)
        .map(|j| if sd[j] > 0.0 { beta_z[j] / sd[j] } else { 0.0 })
        .collect();
    let intercept = mean_y - coef.iter().zip(&mean).map(|(c, m)| c * m).sum::<f64>();
    Some(Fit { intercept, coef })
}

/// Solves the augmented system `a` (k rows of k + 1), or None if singular.
fn solve(mut a: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let k = a.len();
    for col in 0..k {
        let p = (col..k).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[p][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, p);
        let pivot = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot[col];
                if f != 0.0 {
                    for (x, p) in row[col..].iter_mut().zip(&pivot[col..]) {
                        *x -= f * p;
                    }
                }
            }
        }
    }
    Some((0..k).map(|r| a[r][k] / a[r][r]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_plane_and_shrinks_with_ridge() {
        let xs: Vec<Vec<f64>> = (0..50)
            .map(|i| vec![i as f64, ((i * 7) % 11) as f64, 3.0])
            .collect();
        let y: Vec<f64> = xs.iter().map(|x| 5.0 + 2.0 * x[0] - 0.5 * x[1]).collect();
        let f = fit(&xs, &y, 0.0).unwrap();
        assert!((f.intercept - 5.0).abs() < 1e-9, "{f:?}");
        assert!((f.coef[0] - 2.0).abs() < 1e-9 && (f.coef[1] + 0.5).abs() < 1e-9);
        assert_eq!(f.coef[2], 0.0, "a constant feature drops out");
        assert!((f.predict(&[10.0, 2.0, 3.0]) - 24.0).abs() < 1e-9);
        let r = fit(&xs, &y, 10.0).unwrap();
        assert!(r.coef[0].abs() < f.coef[0].abs());
        assert!(fit(&[], &[], 0.0).is_none());
    }
}
