//! `smartwatts` in the main comparison: the SmartWatts 2.4.1 port run over a trace's intervals
//! as if they were hwpc-sensor ticks — intervals grouped into ticks of its
//! `sensor_reports_frequency` (1 s by default), the package energy as the RAPL reading, each
//! cgroup as a target whose core counters are its CPU time and counters over the tick. Every
//! interval of a tick gets the tick's estimate.
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
use super::linear::FitError;
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
        let config = SmartWattsConfig {
            disable_dram_formula: true,
            ..self.config.clone()
        };
        let period_ns = u64::from(config.sensor_reports_frequency).max(1) * 1_000_000;
        let Ok(mut sw) = SmartWatts::new(config.clone()) else {
            self.note = Some("smartwatts: invalid configuration".into());
            return;
        };
        // Intervals grouped into ticks of the sensor's period (1 s by default), as
        // hwpc-sensor reports them: SmartWatts divides each tick's energy by that period.
        let mut ticks: Vec<(Vec<u64>, f64, HashMap<u64, Usage>)> = Vec::new();
        let mut tick_start = None;
        for iv in &ds.intervals {
            let new_tick = tick_start.is_none_or(|t| iv.start >= t + period_ns);
            if new_tick {
                tick_start = Some(iv.start);
                ticks.push((Vec::new(), 0.0, HashMap::new()));
            }
            let t = ticks.last_mut().expect("a tick");
            t.0.push(iv.start);
            t.1 += iv.energy_j;
            for (cg, u) in &iv.cgroups {
                t.2.entry(*cg).or_default().add(u);
            }
        }
        let sensor: Arc<str> = Arc::from("pws");
        let mut by_ts: HashMap<i64, usize> = HashMap::new();
        let mut outcomes = Vec::new();
        for (i, (_, energy_j, cgroups)) in ticks.iter().enumerate() {
            let ts = i as i64 * i64::from(config.sensor_reports_frequency);
            by_ts.insert(ts, i);
            let mut socket = SocketTick {
                global: Some(GlobalSample {
                    rapl_joules: [(config.cpu_rapl_ref_event.clone(), *energy_j)]
                        .into_iter()
                        .collect(),
                    msr: Vec::new(),
                }),
                targets: Vec::new(),
            };
            let mut cgs: Vec<(&u64, &Usage)> = cgroups.iter().collect();
            cgs.sort_by_key(|(cg, _)| **cg);
            for (cg, u) in cgs {
                socket.targets.push(TargetSample {
                    target: Arc::from(cg.to_string().as_str()),
                    cpus: vec![Self::events(ds, u)],
                });
            }
            outcomes.extend(sw.push(Tick {
                timestamp_ms: ts,
                sensor: sensor.clone(),
                sockets: [(0, socket)].into_iter().collect(),
            }));
        }
        outcomes.extend(sw.flush());
        for o in outcomes {
            let Some(&ti) = by_ts.get(&o.timestamp_ms) else {
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
                for &start in &ticks[ti].0 {
                    self.estimates.insert(start, (g, targets.clone()));
                }
            }
        }
        let window = self.config.learn_history_window_size;
        if !self.estimates.is_empty() && ticks.len() < window {
            // SmartWatts 2.4.1 fits no intercept before its history window is full.
            self.note = Some(format!(
                "smartwatts fits its intercept only once its history window is full ({window} ticks of {} ms) and this trace has {} ticks: its static power is 0 and all its power counts as dynamic (record longer, or lower --learn-history-window-size)",
                config.sensor_reports_frequency,
                ticks.len()
            ));
        }
        if self.estimates.is_empty() {
            self.note = Some(format!(
                "smartwatts estimated no interval ({} ticks of {} ms; it needs {} before its first model)",
                ticks.len(),
                config.sensor_reports_frequency,
                self.config.learn_min_samples_required
            ));
        }
    }
}

impl Model for SmartWattsModel {
    fn name(&self) -> String {
        "smartwatts".into()
    }

    /// Runs once over the whole trace; what goes wrong is in `note`, not an error.
    fn fit(&mut self, ds: &Dataset, _train: &[usize]) -> Result<(), FitError> {
        if !self.ran {
            self.run(ds);
        }
        Ok(())
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
