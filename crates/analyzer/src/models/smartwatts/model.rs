//! The learning state of one frequency layer: its sample and error windows and its current
//! power model, refitted as smartwatts 2.4.1 does it.

use std::collections::VecDeque;

use super::config::ErrorWindowMethod;
use super::elastic_net::{ElasticNet, FitError, Fitted};

/// The model of a layer once a fit has been accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerModel {
    pub fit: Fitted,
    /// 1 for the first accepted fit of the layer, then +1 per accepted refit.
    pub id: u32,
}

/// What a refit attempt did.
#[derive(Debug, Clone, PartialEq)]
pub enum Learn {
    /// Fewer samples than `learn-min-samples-required`.
    TooFewSamples,
    Accepted,
    /// The intercept fell outside [0, TDP): the previous model stays.
    RejectedIntercept(f64),
    /// The solver refused the samples (sklearn would raise; the previous model stays).
    Failed(FitError),
}

/// One frequency layer: samples (RAPL power, global counters), errors of its model, the model.
#[derive(Debug, Clone)]
pub struct FrequencyLayer {
    pub frequency_mhz: u32,
    min_samples: usize,
    history_size: usize,
    error_window_size: usize,
    events: VecDeque<Vec<f64>>,
    power: VecDeque<f64>,
    errors: VecDeque<f64>,
    /// Event names of the samples, fixed by the first one (the features must not change).
    pub event_names: Option<Vec<String>>,
    pub model: Option<PowerModel>,
    accepted: u32,
}

impl FrequencyLayer {
    pub fn new(frequency_mhz: u32, min_samples: usize, history: usize, errors: usize) -> Self {
        FrequencyLayer {
            frequency_mhz,
            min_samples,
            history_size: history,
            error_window_size: errors,
            events: VecDeque::with_capacity(history),
            power: VecDeque::with_capacity(history),
            errors: VecDeque::with_capacity(errors),
            event_names: None,
            model: None,
            accepted: 0,
        }
    }

    pub fn samples(&self) -> usize {
        self.events.len()
    }

    /// Keep a sample, dropping the oldest past the window (a `deque(maxlen=…)`).
    pub fn store_sample(&mut self, power_w: f64, events: Vec<f64>) {
        if self.history_size == 0 {
            return;
        }
        if self.events.len() == self.history_size {
            self.events.pop_front();
            self.power.pop_front();
        }
        self.events.push_back(events);
        self.power.push_back(power_w);
    }

    pub fn store_error(&mut self, error_w: f64) {
        if self.errors.len() == self.error_window_size {
            self.errors.pop_front();
        }
        self.errors.push_back(error_w);
    }

    /// The error window summarised: Python's `statistics.median` or `mean`. `None` when empty.
    pub fn window_error(&self, method: ErrorWindowMethod) -> Option<f64> {
        if self.errors.is_empty() {
            return None;
        }
        let n = self.errors.len();
        Some(match method {
            ErrorWindowMethod::Mean => self.errors.iter().sum::<f64>() / n as f64,
            ErrorWindowMethod::Median => {
                // Asked at every tick: a selection, not a sort (the same values either way).
                let mut v: Vec<f64> = self.errors.iter().copied().collect();
                let (below, mid, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
                if n % 2 == 1 {
                    *mid
                } else {
                    let low = below.iter().copied().max_by(f64::total_cmp).expect("n ≥ 2");
                    (low + *mid) / 2.0
                }
            }
        })
    }

    /// Try a new model on the sample window and clear the error window whatever comes of it.
    /// The intercept is fitted only once the window is full (before that it is 0), and a fit
    /// is kept only if `min_intercept ≤ intercept < max_intercept`.
    pub fn update_model(&mut self, min_intercept: f64, max_intercept: f64) -> Learn {
        let outcome = self.learn(min_intercept, max_intercept);
        self.errors.clear();
        outcome
    }

    fn learn(&mut self, min_intercept: f64, max_intercept: f64) -> Learn {
        if self.events.len() < self.min_samples {
            return Learn::TooFewSamples;
        }
        let solver = ElasticNet {
            fit_intercept: self.events.len() == self.history_size,
            positive: true,
            ..ElasticNet::default()
        };
        let fit = match solver.fit(self.events.make_contiguous(), self.power.make_contiguous()) {
            Ok(f) => f,
            Err(e) => return Learn::Failed(e),
        };
        if !(min_intercept <= fit.intercept && fit.intercept < max_intercept) {
            return Learn::RejectedIntercept(fit.intercept);
        }
        self.accepted += 1;
        self.model = Some(PowerModel {
            fit,
            id: self.accepted,
        });
        Learn::Accepted
    }
}

impl PowerModel {
    pub fn predict(&self, events: &[f64]) -> f64 {
        self.fit.predict(events)
    }

    /// A target's share of the global estimate: the model's power above its intercept,
    /// relative to the global one, times the global estimate. Returns (power W, ratio);
    /// (0, 0) when either is not above the intercept.
    pub fn cap(&self, raw_target_w: f64, raw_global_w: f64) -> (f64, f64) {
        let b = self.fit.intercept;
        let target = raw_target_w - b;
        let global = raw_global_w - b;
        if global <= 0.0 || target <= 0.0 {
            return (0.0, 0.0);
        }
        let ratio = target / global;
        (target + ratio * b, ratio)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> FrequencyLayer {
        FrequencyLayer::new(2100, 3, 4, 3)
    }

    #[test]
    fn windows_drop_the_oldest_and_median_is_pythons() {
        let mut l = layer();
        for e in [5.0, 1.0, 3.0, 10.0] {
            l.store_error(e);
        }
        // Window of 3: [1, 3, 10].
        assert_eq!(l.window_error(ErrorWindowMethod::Median), Some(3.0));
        l.store_error(4.0);
        // [3, 10, 4] → 4; even count averages the middle two.
        assert_eq!(l.window_error(ErrorWindowMethod::Median), Some(4.0));
        assert_eq!(l.window_error(ErrorWindowMethod::Mean), Some(17.0 / 3.0));
        for i in 0..6 {
            l.store_sample(f64::from(i), vec![f64::from(i)]);
        }
        assert_eq!(l.samples(), 4);
        assert_eq!(l.power.front(), Some(&2.0));
    }

    #[test]
    fn refit_needs_min_samples_clears_errors_and_checks_intercept() {
        let mut l = layer();
        l.store_sample(10.0, vec![1.0]);
        l.store_error(1.0);
        assert_eq!(l.update_model(0.0, 400.0), Learn::TooFewSamples);
        assert_eq!(l.window_error(ErrorWindowMethod::Median), None);
        l.store_sample(20.0, vec![2.0]);
        l.store_sample(30.0, vec![3.0]);
        // Not full yet: no intercept, accepted as model 1.
        assert_eq!(l.update_model(0.0, 400.0), Learn::Accepted);
        let m = l.model.clone().expect("model");
        assert_eq!((m.id, m.fit.intercept), (1, 0.0));
        // Full window of 4 with a large intercept (~100 W): refused under a 50 W TDP.
        l.store_sample(101.0, vec![1.0]);
        l.store_sample(102.0, vec![2.0]);
        l.store_sample(103.0, vec![3.0]);
        l.store_sample(104.0, vec![4.0]);
        assert!(matches!(l.update_model(0.0, 50.0), Learn::RejectedIntercept(b) if b > 50.0));
        assert_eq!(l.model.as_ref().map(|m| m.id), Some(1));
        assert_eq!(l.update_model(0.0, 400.0), Learn::Accepted);
        assert_eq!(l.model.as_ref().map(|m| m.id), Some(2));
    }

    #[test]
    fn cap_shares_the_intercept_by_ratio() {
        let fit = Fitted {
            coef: vec![1.0],
            intercept: 10.0,
            dual_gap: 0.0,
            n_iter: 1,
            converged: true,
        };
        let m = PowerModel { fit, id: 1 };
        let (p, r) = m.cap(15.0, 30.0);
        assert_eq!(r, 0.25);
        assert_eq!(p, 5.0 + 0.25 * 10.0);
        assert_eq!(m.cap(9.0, 30.0), (0.0, 0.0));
        assert_eq!(m.cap(15.0, 10.0), (0.0, 0.0));
    }
}
