//! 95 % intervals of a comparison: Student's t for a mean, and for the change of one mean
//! against another (a ratio) the delta method with Welch–Satterthwaite's degrees of freedom.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// A sample's summary: its mean, standard deviation (n − 1 in the denominator) and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub mean: f64,
    pub sd: Option<f64>,
    pub n: u64,
}

/// An estimate with its 95 % interval (None with fewer than two units).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
}

/// The two-sided 95 % quantile of Student's t with `df` (> 0, possibly fractional) degrees of
/// freedom: statrs' inverse CDF, which loses digits past 10⁴ degrees of freedom (3·10⁻⁶ off at
/// 10⁵, an hour of activations), so there the Cornish–Fisher expansion around the normal
/// quantile, whose next term is below 10⁻¹³.
pub fn t95(df: f64) -> Option<f64> {
    if df > 1e4 {
        const Z: f64 = 1.959_963_984_540_054;
        let (z3, z5) = (Z.powi(3), Z.powi(5));
        return Some(
            Z + (z3 + Z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * Z) / (96.0 * df * df),
        );
    }
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(t.inverse_cdf(0.975))
}

impl Sample {
    /// The squared standard error of the mean; None with fewer than two units.
    fn se_sq(&self) -> Option<f64> {
        let sd = self.sd.filter(|s| s.is_finite())?;
        (self.n >= 2).then(|| sd * sd / self.n as f64)
    }

    /// The mean with mean ± t(n − 1) · sd / √n.
    pub fn estimate(&self) -> Estimate {
        let hw = self
            .se_sq()
            .and_then(|v| Some(t95(self.n as f64 - 1.0)? * v.sqrt()));
        Estimate {
            value: self.mean,
            lo: hw.map(|h| self.mean - h),
            hi: hw.map(|h| self.mean + h),
        }
    }
}

impl Estimate {
    /// For a quantity that cannot be negative (energy, a share): the interval cut at 0.
    pub fn non_negative(self) -> Self {
        Self {
            lo: self.lo.map(|l| l.max(0.0)),
            ..self
        }
    }

    /// For a share: the interval within [0, 1].
    pub fn share(self) -> Self {
        Self {
            hi: self.hi.map(|h| h.min(1.0)),
            ..self.non_negative()
        }
    }
}

/// `group` against `baseline` in percent, 100 · (mean_g / mean_b − 1), with its interval:
/// the ratio's standard error by the delta method, r · √(se_g²/m_g² + se_b²/m_b²), and
/// t at Welch–Satterthwaite's degrees of freedom of the two relative variances. None where
/// the baseline's mean is 0 or either mean is not finite; no interval where either group has
/// fewer than two units or both vary not at all.
pub fn change_pct(group: &Sample, baseline: &Sample) -> Option<Estimate> {
    if !(group.mean.is_finite() && baseline.mean.is_finite()) || baseline.mean == 0.0 {
        return None;
    }
    let r = group.mean / baseline.mean;
    let value = 100.0 * (r - 1.0);
    let interval = (|| {
        if group.mean == 0.0 {
            return None;
        }
        let a = group.se_sq()? / (group.mean * group.mean);
        let b = baseline.se_sq()? / (baseline.mean * baseline.mean);
        if a + b <= 0.0 {
            return None;
        }
        let df =
            (a + b).powi(2) / (a * a / (group.n as f64 - 1.0) + b * b / (baseline.n as f64 - 1.0));
        let hw = 100.0 * t95(df)? * r * (a + b).sqrt();
        // Both means are non-negative: the ratio cannot fall below −100 %.
        Some(((value - hw).max(-100.0), value + hw))
    })();
    Some(Estimate {
        value,
        lo: interval.map(|i| i.0),
        hi: interval.map(|i| i.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Published two-sided 95 % critical values.
        // scipy.stats.t.ppf(0.975, df).
        for (df, t) in [
            (1.0, 12.706204736174694),
            (2.0, 4.302652729749462),
            (9.0, 2.262157162798205),
            (30.0, 2.0422724563012378),
            (1e4, 1.960201239890626),
            (1.0001e4, 1.960201216164641),
            (1e5, 1.9599877075346095),
            (1e6, 1.959966356814107),
            (2.5, 3.5746548420036817),
        ] {
            let got = t95(df).unwrap();
            assert!((got - t).abs() < 1e-9 * t, "df {df}: {got} against {t}");
        }
        // Fractional degrees of freedom lie between their neighbours.
        let t = t95(2.5).unwrap();
        assert!(t < 4.3027 && t > 3.1824);
        assert!(t95(0.0).is_none());
    }

    #[test]
    fn a_mean_interval_is_t_times_the_standard_error() {
        let s = Sample {
            mean: 10.0,
            sd: Some(2.0),
            n: 4,
        };
        let e = s.estimate();
        let hw = 3.182446305284263 * 2.0 / 2.0;
        assert!((e.lo.unwrap() - (10.0 - hw)).abs() < 1e-9);
        assert!((e.hi.unwrap() - (10.0 + hw)).abs() < 1e-9);
        let one = Sample { n: 1, ..s };
        assert_eq!(one.estimate().lo, None);
    }

    #[test]
    fn a_change_of_equal_relative_spreads_has_welch_degrees_of_freedom() {
        let b = Sample {
            mean: 10.0,
            sd: Some(1.0),
            n: 5,
        };
        let g = Sample {
            mean: 12.0,
            sd: Some(1.2),
            n: 5,
        };
        let c = change_pct(&g, &b).unwrap();
        assert!((c.value - 20.0).abs() < 1e-12);
        // Equal relative variances: df = 2 (n − 1) = 8.
        let a = 1.2f64.powi(2) / 5.0 / 144.0;
        let hw = 100.0 * t95(8.0).unwrap() * 1.2 * (2.0 * a).sqrt();
        assert!((c.hi.unwrap() - (20.0 + hw)).abs() < 1e-9);
        assert!((c.lo.unwrap() - (20.0 - hw)).abs() < 1e-9);
        // No baseline to divide by, or no spread: no change, or no interval.
        assert!(change_pct(&g, &Sample { mean: 0.0, ..b }).is_none());
        let flat = Sample { sd: Some(0.0), ..b };
        assert_eq!(change_pct(&flat, &flat).unwrap().lo, None);
    }
}
