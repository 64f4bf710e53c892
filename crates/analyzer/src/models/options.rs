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
    #[arg(long, default_value = super::local_linear::DEFAULT_WINDOW, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub local_window: Duration,
    /// per-function's prior strength: each function's coefficients are pulled toward the
    /// pooled ones as strongly as this many CPU-seconds of work at the pooled coefficients
    /// would pull them.
    #[arg(long, default_value_t = super::per_function::DEFAULT_PRIOR_CPU_S, value_name = "CPU_SECONDS")]
    pub per_function_prior: f64,
}

impl ComparisonOptions {
    pub fn protocol(&self, folds: usize) -> Protocol {
        Protocol {
            folds,
            gap: self.cv_gap,
        }
    }
}
