//! PowerAPI SmartWatts as released in `smartwatts` 2.4.1 (PyPI, with powerapi 2.10.0 and
//! scikit-learn 1.9.1), ported to run offline on ticks.
//!
//! Per (scope, sensor, socket) — scope `cpu` models `RAPL_ENERGY_PKG`, `dram` models
//! `RAPL_ENERGY_DRAM`, both from the same core counters:
//! - a tick is estimated once more than [`engine::PENDING_TICKS`] later ticks have arrived, so the
//!   last five ticks of an input get no estimate (unless [`SmartWatts::flush`]);
//! - nothing is said about a tick in which no target ran; otherwise the RAPL energy divided by
//!   `--sensor-reports-frequency` is reported as target `rapl`;
//! - the package frequency `int(base · mean(APERF) / mean(MPERF))` picks a layer, the highest
//!   multiple of the base clock not above it (up to 100×); without APERF/MPERF the base
//!   frequency's layer is used (smartwatts 2.4.1 fails there);
//! - the features are the running targets' core counters summed over the socket's CPUs and
//!   over targets, ordered by event name; the `all` target's own core counters are unused;
//! - until the layer has a model, the tick only adds a sample and a fit is tried (once at
//!   least `--learn-min-samples-required` samples are kept): ElasticNet, α = 1, l1_ratio =
//!   0.5, positive weights, 1000 sweeps, tol 1e-4, intercept fitted only when the
//!   `--learn-history-window-size` window is full, kept only if 0 ≤ intercept < `--cpu-tdp`;
//! - with a model: `global` = wᵀX + b, and each target gets `ratio · global` where
//!   `ratio = wᵀx_t / wᵀX` (0 when either is not positive); |rapl − global| joins the error
//!   window, and when its median (or mean) exceeds the scope's threshold the layer is refitted
//!   and the error window cleared, whether or not the refit is accepted.
//!
//! Where smartwatts 2.4.1 raises and stops a socket's formula for good (a missing RAPL event,
//! a frequency below the lowest layer, targets with different events), this port skips that
//! tick only and says why ([`formula::Skip`]).

pub mod config;
pub mod elastic_net;
pub mod engine;
pub mod formula;
pub mod frequency;
pub mod model;
pub mod tick;

pub use config::{SmartWattsConfig, SmartWattsOptions};
pub use engine::SmartWatts;
pub use formula::Outcome;
pub use tick::{Events, GlobalSample, SocketTick, TargetSample, Tick, GLOBAL_TARGET};

#[cfg(test)]
mod tests;
