//! One formula — one scope (cpu or dram) of one socket of one sensor — turning a tick into
//! power estimates, as smartwatts 2.4.1's `HwPCReportHandler._process_oldest_tick` does.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use super::config::{Scope, SmartWattsConfig};
use super::frequency::{pkg_frequency, CpuTopology, PkgFrequency};
use super::model::FrequencyLayer;
use super::tick::{Events, SocketTick, TargetSample};

/// Target names smartwatts uses for the measured and the modelled machine-wide power.
pub const RAPL_TARGET: &str = "rapl";
pub const GLOBAL_ESTIMATE_TARGET: &str = "global";

/// Which formula produced an estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormulaId {
    /// The `rapl` row: the measured reference, named by its event as smartwatts does.
    Rapl(Arc<str>),
    /// A layer's model: smartwatts names it by a SHA-1 of the pickled sklearn object; this
    /// port by the layer and the model's number within it.
    Model { layer_mhz: u32, model_id: u32 },
}

impl fmt::Display for FormulaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormulaId::Rapl(event) => f.write_str(event),
            FormulaId::Model {
                layer_mhz,
                model_id,
            } => write!(f, "{layer_mhz}MHz#{model_id}"),
        }
    }
}

/// One power estimate (a smartwatts `PowerReport`).
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub target: Arc<str>,
    pub power_w: f64,
    pub formula: FormulaId,
    /// The target's share of the global estimate; 1 for `rapl` and `global`.
    pub ratio: f64,
}

/// State of the model used for a tick (a smartwatts `FormulaReport`), after any refit.
#[derive(Debug, Clone, PartialEq)]
pub struct FormulaReport {
    pub layer_mhz: u32,
    pub pkg_frequency_mhz: i64,
    pub samples: usize,
    pub model_id: u32,
    /// |RAPL − global estimate|, W.
    pub error_w: f64,
    pub intercept: f64,
    pub coef: Vec<f64>,
}

/// Why a tick was not (fully) estimated. smartwatts 2.4.1 logs the first two and goes on; on
/// the others it raises and stops the socket's formula for good, where this port skips the
/// tick only.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    /// No report of the `all` target for this tick and socket.
    MissingGlobal,
    /// Mean MPERF of zero.
    InvalidPkgFrequency,
    MissingRaplEvent(String),
    /// Package frequency below the lowest layer (one base clock).
    BelowLowestLayer(i64),
    /// A target's events differ from the others', or from the layer's earlier samples.
    EventsMismatch {
        target: String,
    },
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::MissingGlobal => write!(f, "missing global report (target `all`)"),
            Skip::InvalidPkgFrequency => write!(f, "PKG frequency is invalid (MPERF is 0)"),
            Skip::MissingRaplEvent(e) => write!(f, "global report has no {e} for this socket"),
            Skip::BelowLowestLayer(mhz) => {
                write!(f, "package frequency {mhz} MHz is below the lowest layer")
            }
            Skip::EventsMismatch { target } => write!(
                f,
                "target {target} does not report the same core events as the others"
            ),
        }
    }
}

/// Everything one formula says about one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub timestamp_ms: i64,
    pub sensor: Arc<str>,
    pub socket: u32,
    pub scope: Scope,
    pub estimates: Vec<Estimate>,
    pub formula: Option<FormulaReport>,
    pub skipped: Option<Skip>,
}

/// One scope of one socket: a layer per frequency band.
#[derive(Debug, Clone)]
pub struct Formula {
    pub scope: Scope,
    topology: CpuTopology,
    layers: Vec<FrequencyLayer>,
    /// Names every estimate repeats, shared rather than allocated per estimate.
    rapl_event: Arc<str>,
    rapl_target: Arc<str>,
    global_target: Arc<str>,
}

impl Formula {
    pub fn new(scope: Scope, config: &SmartWattsConfig) -> Self {
        let topology =
            CpuTopology::new(config.cpu_tdp, config.cpu_base_clock, config.cpu_base_freq);
        let layers = topology
            .layers()
            .into_iter()
            .map(|mhz| {
                FrequencyLayer::new(
                    mhz,
                    config.learn_min_samples_required,
                    config.learn_history_window_size,
                    config.learn_error_window_size,
                )
            })
            .collect();
        Formula {
            scope,
            topology,
            layers,
            rapl_event: Arc::from(config.rapl_ref_event(scope)),
            rapl_target: Arc::from(RAPL_TARGET),
            global_target: Arc::from(GLOBAL_ESTIMATE_TARGET),
        }
    }

    pub fn layers(&self) -> &[FrequencyLayer] {
        &self.layers
    }

    /// Estimate one tick: the measured `rapl` power, then once the layer has a model the
    /// `global` estimate and each target's share; learn from the tick in every case.
    /// `features` is `Features::of(&tick.targets)`, shared by the socket's formulas.
    pub fn process(
        &mut self,
        config: &SmartWattsConfig,
        tick: &SocketTick,
        features: &Result<Features, &str>,
        out: &mut Outcome,
    ) {
        let Some(global) = &tick.global else {
            out.skipped = Some(Skip::MissingGlobal);
            return;
        };
        // No target ran: smartwatts says nothing at all, not even the RAPL reference.
        if tick.targets.is_empty() {
            return;
        }
        let event = &*self.rapl_event;
        let Some(&joules) = global.rapl_joules.get(event) else {
            out.skipped = Some(Skip::MissingRaplEvent(event.to_string()));
            return;
        };
        // Divided by the configured period, not by the time since the previous report.
        let rapl_w = joules / (f64::from(config.sensor_reports_frequency) / 1000.0);
        out.estimates.push(Estimate {
            target: self.rapl_target.clone(),
            power_w: rapl_w,
            formula: FormulaId::Rapl(self.rapl_event.clone()),
            ratio: 1.0,
        });

        let base = self.topology.base_frequency();
        let pkg_mhz = match pkg_frequency(base, &global.msr) {
            PkgFrequency::Mhz(f) => f,
            PkgFrequency::Unknown => i64::from(base),
            PkgFrequency::Invalid => {
                out.skipped = Some(Skip::InvalidPkgFrequency);
                return;
            }
        };
        let Some(li) = self.topology.layer_index(pkg_mhz) else {
            out.skipped = Some(Skip::BelowLowestLayer(pkg_mhz));
            return;
        };

        let f = match features {
            Ok(f) => f,
            Err(target) => {
                out.skipped = Some(Skip::EventsMismatch {
                    target: target.to_string(),
                });
                return;
            }
        };
        let layer = &mut self.layers[li];
        match &layer.event_names {
            Some(names) if !names.iter().map(String::as_str).eq(f.names.iter().copied()) => {
                out.skipped = Some(Skip::EventsMismatch {
                    target: tick.targets[0].target.to_string(),
                });
                return;
            }
            Some(_) => {}
            None => layer.event_names = Some(f.names.iter().map(|e| e.to_string()).collect()),
        }
        let x_global = f.global.clone();
        let tdp = f64::from(self.topology.tdp);

        let Some(model) = &layer.model else {
            layer.store_sample(rapl_w, x_global);
            layer.update_model(0.0, tdp);
            return;
        };
        let formula = FormulaId::Model {
            layer_mhz: layer.frequency_mhz,
            model_id: model.id,
        };
        let raw_global = model.predict(&x_global);
        out.estimates.push(Estimate {
            target: self.global_target.clone(),
            power_w: raw_global,
            formula: formula.clone(),
            ratio: 1.0,
        });
        for (i, sample) in tick.targets.iter().enumerate() {
            let (power_w, ratio) = model.cap(model.predict(f.target(i)), raw_global);
            out.estimates.push(Estimate {
                target: sample.target.clone(),
                power_w,
                formula: formula.clone(),
                ratio,
            });
        }

        let error_w = (rapl_w - raw_global).abs();
        layer.store_sample(rapl_w, x_global);
        layer.store_error(error_w);
        let window = layer
            .window_error(config.learn_error_window_method)
            .unwrap_or(0.0);
        if window > config.error_threshold(self.scope) {
            layer.update_model(0.0, tdp);
        }
        // Reported after the refit, as smartwatts does: the new model's id and weights.
        if let Some(model) = &layer.model {
            out.formula = Some(FormulaReport {
                layer_mhz: layer.frequency_mhz,
                pkg_frequency_mhz: pkg_mhz,
                samples: layer.samples(),
                model_id: model.id,
                error_w,
                intercept: model.fit.intercept,
                coef: model.fit.coef.clone(),
            });
        }
    }
}

/// The model's inputs for one tick: each target's core counters summed over its CPUs, and
/// their sum over targets, as vectors ordered by event name.
#[derive(Debug, Clone, PartialEq)]
pub struct Features<'a> {
    pub names: Vec<&'a str>,
    /// Target after target, `names.len()` values each.
    targets: Vec<f64>,
    pub global: Vec<f64>,
}

impl<'a> Features<'a> {
    /// Fails with the name of a target that lacks an event another one has: smartwatts'
    /// vectors would then differ in length.
    pub fn of(targets: &'a [TargetSample]) -> Result<Self, &'a str> {
        let names = event_names(targets);
        let k = names.len();
        let mut sums = vec![0i128; k * targets.len()];
        let mut global = vec![0i128; k];
        let mut seen = vec![false; k];
        for (t, sum) in targets.iter().zip(sums.chunks_exact_mut(k.max(1))) {
            seen.fill(false);
            for cpu in &t.cpus {
                add(&names, cpu, sum, &mut seen);
            }
            if seen.contains(&false) {
                return Err(&t.target);
            }
            global.iter_mut().zip(&*sum).for_each(|(g, v)| *g += v);
        }
        // Python sums integers exactly and converts once.
        Ok(Features {
            targets: sums.iter().map(|&x| x as f64).collect(),
            global: global.iter().map(|&x| x as f64).collect(),
            names,
        })
    }

    /// The features of the `i`-th target.
    pub fn target(&self, i: usize) -> &[f64] {
        let k = self.names.len();
        &self.targets[i * k..(i + 1) * k]
    }
}

/// Every event name of the tick, sorted. hwpc-sensor counts the same events everywhere, so
/// the first CPU's names are tried first and a set is built only if some CPU differs.
fn event_names(targets: &[TargetSample]) -> Vec<&str> {
    let mut cpus = targets.iter().flat_map(|t| &t.cpus);
    let first: Vec<&str> = match cpus.next() {
        Some(c) => c.names().collect(),
        None => return Vec::new(),
    };
    if cpus.all(|c| c.names().eq(first.iter().copied())) {
        return first;
    }
    let all: BTreeSet<&str> = targets
        .iter()
        .flat_map(|t| &t.cpus)
        .flat_map(|c| c.names())
        .collect();
    all.into_iter().collect()
}

fn add(names: &[&str], cpu: &Events, sum: &mut [i128], seen: &mut [bool]) {
    if cpu.len() == names.len() && cpu.names().eq(names.iter().copied()) {
        for (i, v) in cpu.values().enumerate() {
            sum[i] += i128::from(v);
            seen[i] = true;
        }
        return;
    }
    for (k, v) in cpu.iter() {
        if let Ok(i) = names.binary_search(&k) {
            sum[i] += i128::from(v);
            seen[i] = true;
        }
    }
}
