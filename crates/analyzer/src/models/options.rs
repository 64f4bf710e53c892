//! Command-line options of the model comparison's scoring protocol and of the models that
//! have them (`per-function`, `local-linear`), flattened into `pws-analyze`'s arguments.

use std::time::Duration;

use super::protocol::Protocol;

#[derive(Debug, Clone, clap::Args)]
pub struct ComparisonOptions {
    /// Time left out of the training set on each side of each held-out block when scoring the
    /// models (blocked k-fold with a gap: neighbouring intervals are autocorrelated).
    #[arg(long, default_value = super::protocol::DEFAULT_GAP, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub cv_gap: Duration,
    /// local-linear's window: each stretch of the run is fitted on this much measured time
    /// nearest to it, before and after it.
    #[arg(long, default_value = super::local_linear::DEFAULT_WINDOW, value_parser = positive_duration, value_name = "DURATION")]
    pub local_window: Duration,
    /// per-function's prior strength: each function's coefficients are pulled toward the
    /// pooled ones as strongly as this many CPU-seconds of work at the pooled coefficients
    /// would pull them.
    #[arg(long, default_value_t = super::per_function::DEFAULT_PRIOR_CPU_S, value_parser = non_negative, value_name = "CPU_SECONDS")]
    pub per_function_prior: f64,
}

/// A duration longer than zero ("1s", "500ms").
fn positive_duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d > Duration::ZERO => Ok(d),
        Ok(_) => Err("must be longer than 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A finite number ≥ 0.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err("must be a finite number ≥ 0".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl ComparisonOptions {
    pub fn protocol(&self, folds: usize) -> Protocol {
        Protocol {
            folds,
            gap: self.cv_gap,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        o: ComparisonOptions,
    }

    #[test]
    fn defaults_and_bad_values() {
        let c = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(c.o.protocol(5).name(), "blocked-5-fold-gap-1s");
        assert_eq!(c.o.local_window, Duration::from_secs(1));
        assert_eq!(c.o.per_function_prior, 0.2);
        for bad in [
            &["x", "--local-window", "0s"][..],
            &["x", "--per-function-prior=-1"],
            &["x", "--per-function-prior", "NaN"],
            &["x", "--cv-gap", "soon"],
        ] {
            let e = Cli::try_parse_from(bad).unwrap_err().to_string();
            assert!(e.contains("invalid value"), "{bad:?}: {e}");
        }
    }
}
