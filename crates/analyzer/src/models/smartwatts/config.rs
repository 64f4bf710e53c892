//! SmartWatts' parameters, with the names and defaults of smartwatts 2.4.1's command line.

use std::fmt;

/// Which RAPL domain a formula models. smartwatts runs one formula per scope and socket, both
/// fed the same core counters; only the reference RAPL event and error threshold differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Cpu,
    Dram,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Cpu, Scope::Dram];

    /// The name smartwatts writes in its reports' `scope` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Cpu => "cpu",
            Scope::Dram => "dram",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the error window is summarised before comparing it with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorWindowMethod {
    Median,
    Mean,
}

/// Everything smartwatts 2.4.1 lets one set about its formula (not its inputs and outputs).
#[derive(Debug, Clone, PartialEq)]
pub struct SmartWattsConfig {
    /// `--cpu-tdp`, W: a model whose intercept is not below it is refused.
    pub cpu_tdp: u32,
    /// `--cpu-base-clock`, MHz: frequency layers are its multiples, from 1× to 100×.
    pub cpu_base_clock: u32,
    /// `--cpu-base-freq`, MHz: APERF/MPERF is relative to it.
    pub cpu_base_freq: u32,
    /// `--cpu-error-threshold`, W.
    pub cpu_error_threshold: f64,
    /// `--dram-error-threshold`, W.
    pub dram_error_threshold: f64,
    /// `--cpu-rapl-ref-event`.
    pub cpu_rapl_ref_event: String,
    /// `--dram-rapl-ref-event`.
    pub dram_rapl_ref_event: String,
    /// `--disable-cpu-formula`.
    pub disable_cpu_formula: bool,
    /// `--disable-dram-formula`.
    pub disable_dram_formula: bool,
    /// `--sensor-reports-frequency`, ms: RAPL energy is divided by it, not by the actual
    /// time between two reports.
    pub sensor_reports_frequency: u32,
    /// `--learn-min-samples-required`.
    pub learn_min_samples_required: usize,
    /// `--learn-history-window-size`: samples kept per layer; an intercept is fitted only
    /// once the window is full.
    pub learn_history_window_size: usize,
    /// `--learn-error-window-size`.
    pub learn_error_window_size: usize,
    /// `--learn-error-window-method`.
    pub learn_error_window_method: ErrorWindowMethod,
}

impl Default for SmartWattsConfig {
    fn default() -> Self {
        SmartWattsConfig {
            cpu_tdp: 400,
            cpu_base_clock: 100,
            cpu_base_freq: 2100,
            cpu_error_threshold: 2.0,
            dram_error_threshold: 2.0,
            cpu_rapl_ref_event: "RAPL_ENERGY_PKG".into(),
            dram_rapl_ref_event: "RAPL_ENERGY_DRAM".into(),
            disable_cpu_formula: false,
            disable_dram_formula: false,
            sensor_reports_frequency: DEFAULT_REPORTS_FREQUENCY_MS,
            learn_min_samples_required: 10,
            learn_history_window_size: 60,
            learn_error_window_size: 60,
            learn_error_window_method: ErrorWindowMethod::Median,
        }
    }
}

impl SmartWattsConfig {
    /// The checks of smartwatts' validator, plus the values it accepts but then crashes on
    /// (a zero base clock, reports frequency or error window).
    pub fn validate(&self) -> Result<(), String> {
        if self.disable_cpu_formula && self.disable_dram_formula {
            return Err("at least one of the two formula scopes must be enabled".into());
        }
        if self.cpu_base_clock == 0 {
            return Err("--cpu-base-clock must be positive".into());
        }
        if self.cpu_base_freq < self.cpu_base_clock {
            return Err("--cpu-base-freq must be at least --cpu-base-clock".into());
        }
        for (name, v) in [
            ("--cpu-error-threshold", self.cpu_error_threshold),
            ("--dram-error-threshold", self.dram_error_threshold),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(format!("{name} must be a non-negative number of watts"));
            }
        }
        if self.sensor_reports_frequency == 0 {
            return Err("--sensor-reports-frequency must be positive".into());
        }
        if self.learn_error_window_size == 0 {
            return Err("--learn-error-window-size must be at least 1".into());
        }
        Ok(())
    }

    pub fn enabled(&self, scope: Scope) -> bool {
        match scope {
            Scope::Cpu => !self.disable_cpu_formula,
            Scope::Dram => !self.disable_dram_formula,
        }
    }

    pub fn rapl_ref_event(&self, scope: Scope) -> &str {
        match scope {
            Scope::Cpu => &self.cpu_rapl_ref_event,
            Scope::Dram => &self.dram_rapl_ref_event,
        }
    }

    pub fn error_threshold(&self, scope: Scope) -> f64 {
        match scope {
            Scope::Cpu => self.cpu_error_threshold,
            Scope::Dram => self.dram_error_threshold,
        }
    }
}

/// SmartWatts' options on the command line, with smartwatts 2.4.1's names and defaults: one
/// definition flattened into both `pws-analyze smartwatts` and the main command, so the two
/// cannot drift apart.
#[derive(Debug, Clone, clap::Args)]
pub struct SmartWattsOptions {
    /// CPU TDP (W): models with an intercept at or above it are refused.
    #[arg(long, default_value_t = 400)]
    pub cpu_tdp: u32,
    /// CPU base clock (MHz): the width of a frequency layer.
    #[arg(long, default_value_t = 100)]
    pub cpu_base_clock: u32,
    /// CPU base frequency (MHz): what APERF/MPERF = 1 stands for.
    #[arg(long, default_value_t = 2100)]
    pub cpu_base_freq: u32,
    /// Error threshold of the CPU power models (W).
    #[arg(long, default_value_t = 2.0)]
    pub cpu_error_threshold: f64,
    /// Error threshold of the DRAM power models (W).
    #[arg(long, default_value_t = 2.0)]
    pub dram_error_threshold: f64,
    /// RAPL event used as reference for the CPU power models.
    #[arg(long, default_value = "RAPL_ENERGY_PKG")]
    pub cpu_rapl_ref_event: String,
    /// RAPL event used as reference for the DRAM power models.
    #[arg(long, default_value = "RAPL_ENERGY_DRAM")]
    pub dram_rapl_ref_event: String,
    /// Disable the CPU formula.
    #[arg(long)]
    pub disable_cpu_formula: bool,
    /// Disable the DRAM formula.
    #[arg(long)]
    pub disable_dram_formula: bool,
    /// Period of the sensor's reports (ms); RAPL energy is divided by it. Default: 1000; in
    /// the main command, hwpc-sensor reports' own period (the median step of their
    /// timestamps), else 1000.
    #[arg(long, value_name = "MS")]
    pub sensor_reports_frequency: Option<u32>,
    /// Minimum number of samples before a power model is learnt.
    #[arg(long, default_value_t = 10)]
    pub learn_min_samples_required: usize,
    /// Samples kept per frequency layer to learn from.
    #[arg(long, default_value_t = 60)]
    pub learn_history_window_size: usize,
    /// Errors kept per layer to decide on relearning.
    #[arg(long, default_value_t = 60)]
    pub learn_error_window_size: usize,
    /// How the error window is summarised.
    #[arg(long, value_enum, default_value_t = ErrorWindowMethod::Median)]
    pub learn_error_window_method: ErrorWindowMethod,
}

/// smartwatts 2.4.1's `--sensor-reports-frequency` default (ms).
pub const DEFAULT_REPORTS_FREQUENCY_MS: u32 = 1000;

impl SmartWattsOptions {
    /// The configuration these options give; `period_ms` is the reports' period when
    /// `--sensor-reports-frequency` was not given.
    pub fn config(&self, period_ms: u32) -> SmartWattsConfig {
        SmartWattsConfig {
            cpu_tdp: self.cpu_tdp,
            cpu_base_clock: self.cpu_base_clock,
            cpu_base_freq: self.cpu_base_freq,
            cpu_error_threshold: self.cpu_error_threshold,
            dram_error_threshold: self.dram_error_threshold,
            cpu_rapl_ref_event: self.cpu_rapl_ref_event.clone(),
            dram_rapl_ref_event: self.dram_rapl_ref_event.clone(),
            disable_cpu_formula: self.disable_cpu_formula,
            disable_dram_formula: self.disable_dram_formula,
            sensor_reports_frequency: self.sensor_reports_frequency.unwrap_or(period_ms),
            learn_min_samples_required: self.learn_min_samples_required,
            learn_history_window_size: self.learn_history_window_size,
            learn_error_window_size: self.learn_error_window_size,
            learn_error_window_method: self.learn_error_window_method,
        }
    }
}
