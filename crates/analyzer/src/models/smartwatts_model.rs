//! `smartwatts` in the main comparison: the SmartWatts 2.4.1 port run over a trace's intervals
//! as if they were hwpc-sensor ticks — one tick per interval, the package energy as its RAPL
//! reading, each cgroup as a target whose core counters are the interval's CPU time and
//! counters.
//!
//! SmartWatts is an online model: each interval's estimate uses only what came before it, so
//! "fitting" runs it once over the whole trace in time order and the cross-validation folds
//! score those online estimates (intervals it did not estimate — before its first accepted
//! model, and the last five it holds back — are left out of the errors). Its per-target power
//! is its own: (wᵀx_t / wᵀX) × its estimate. Its static part for the idle policies is the
//! intercept of the last accepted model.

use std::collections::HashMap;
use std::sync::Arc;

use super::dataset::{Dataset, Interval};
use super::model::Model;
use super::smartwatts::formula::{GLOBAL_ESTIMATE_TARGET, RAPL_TARGET};
use super::smartwatts::{
    Events, GlobalSample, SmartWatts, SmartWattsConfig, SocketTick, TargetSample, Tick,
    GLOBAL_TARGET,
};
use crate::replay::cpu::Usage;

#[derive(Debug)]
pub struct SmartWattsModel {
    config: SmartWattsConfig,
    /// Interval start → (global estimate W, target key → W).
    estimates: HashMap<u64, (f64, HashMap<u64, f64>)>,
    intercept: f64,
    ran: bool,
    /// Why it estimated nothing, if so.
    pub note: Option<String>,
}

impl SmartWattsModel {
    pub fn new(config: SmartWattsConfig) -> Self {
        Self {
            config,
            estimates: HashMap::new(),
            intercept: 0.0,
            ran: false,
            note: None,
        }
    }

    fn events(ds: &Dataset, u: &Usage) -> Events {
        let mut e = Events::new();
        let mut pairs: Vec<(Arc<str>, i64)> = vec![(Arc::from("cpu_ns"), u.cpu_ns as i64)];
        for (name, v) in ds.columns.iter().zip(&u.counters) {
            pairs.push((Arc::from(name.as_str()), v.round() as i64));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in pairs {
            e.insert(k, v);
        }
        e
    }

    fn run(&mut self, ds: &Dataset) {
        self.ran = true;
        let period_ms = ds
            .intervals
            .first()
            .map_or(1000, |iv| ((iv.end - iv.start) / 1_000_000).max(1));
        let mut config = self.config.clone();
        // Energy is divided by the configured period: the intervals' own length.
        config.sensor_reports_frequency = u32::try_from(period_ms).unwrap_or(u32::MAX);
        config.disable_dram_formula = true;
        let Ok(mut sw) = SmartWatts::new(config.clone()) else {
            self.note = Some("smartwatts: invalid configuration".into());
            return;
        };
        let sensor: Arc<str> = Arc::from("pws");
        let mut by_ts: HashMap<i64, u64> = HashMap::new();
        let mut outcomes = Vec::new();
        for (i, iv) in ds.intervals.iter().enumerate() {
            // Ticks on a regular clock of the configured period, as hwpc-sensor sends them.
            let ts = i as i64 * period_ms as i64;
            by_ts.insert(ts, iv.start);
            let mut socket = SocketTick {
                global: Some(GlobalSample {
                    rapl_joules: [(config.cpu_rapl_ref_event.clone(), iv.energy_j)]
                        .into_iter()
                        .collect(),
                    msr: Vec::new(),
                }),
                targets: Vec::new(),
            };
            for (cg, u) in &iv.cgroups {
                socket.targets.push(TargetSample {
                    target: Arc::from(cg.to_string().as_str()),
                    cpus: vec![Self::events(ds, u)],
                });
            }
            let tick = Tick {
                timestamp_ms: ts,
                sensor: sensor.clone(),
                sockets: [(0, socket)].into_iter().collect(),
            };
            outcomes.extend(sw.push(tick));
        }
        outcomes.extend(sw.flush());
        for o in outcomes {
            let Some(&start) = by_ts.get(&o.timestamp_ms) else {
                continue;
            };
            if let Some(f) = &o.formula {
                self.intercept = f.intercept;
            }
            let mut global = None;
            let mut targets = HashMap::new();
            for e in &o.estimates {
                match &*e.target {
                    GLOBAL_ESTIMATE_TARGET => global = Some(e.power_w),
                    RAPL_TARGET | GLOBAL_TARGET => {}
                    t => {
                        if let Ok(cg) = t.parse::<u64>() {
                            targets.insert(cg, e.power_w);
                        }
                    }
                }
            }
            if let Some(g) = global {
                self.estimates.insert(start, (g, targets));
            }
        }
        if self.estimates.is_empty() {
            self.note = Some(format!(
                "smartwatts estimated no interval (it needs {} samples before its first model)",
                self.config.learn_min_samples_required
            ));
        }
    }
}

impl Model for SmartWattsModel {
    fn name(&self) -> String {
        "smartwatts".into()
    }

    fn fit(&mut self, ds: &Dataset, _train: &[usize]) {
        if !self.ran {
            self.run(ds);
        }
    }

    fn predict_w(&self, iv: &Interval) -> f64 {
        self.estimates.get(&iv.start).map_or(f64::NAN, |e| e.0)
    }

    fn idle_w(&self) -> f64 {
        self.intercept.max(0.0)
    }

    fn weight(&self, _u: &Usage, _secs: f64) -> f64 {
        // Per-target power comes from the interval's estimates (see `weights`); a usage alone
        // has none.
        0.0
    }

    fn weights(&self, iv: &Interval) -> Vec<f64> {
        let est = self.estimates.get(&iv.start);
        iv.cgroups
            .iter()
            .map(|(cg, _)| {
                est.and_then(|(_, t)| t.get(cg))
                    .copied()
                    .unwrap_or(0.0)
                    .max(0.0)
            })
            .collect()
    }

    fn params(&self) -> Vec<(String, f64)> {
        vec![
            ("last_intercept_w".into(), self.intercept),
            ("intervals_estimated".into(), self.estimates.len() as f64),
            ("cpu_tdp".into(), f64::from(self.config.cpu_tdp)),
        ]
    }
}
