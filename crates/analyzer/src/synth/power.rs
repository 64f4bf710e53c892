//! The synthetic machine's power and its energy counters.
//!
//! Each package draws `IDLE_W` plus, per busy CPU, `W_PER_BUSY_CPU × s(f)` and
//! `J_PER_INSTRUCTION` per instruction retired, where `f` is the package's frequency (a
//! fraction of the nominal one). With `--power linear` the frequency never moves, so power is
//! an exact linear function of busy CPU time and instructions, which linear-offline can
//! recover. With `--power dvfs` each package moves between frequencies every few hundred
//! milliseconds; instructions retire at `ips × f` but a busy CPU draws `W × f³` (voltage scales
//! with frequency), which no linear function of CPU time and instructions gives: no model is
//! exactly right, so the truth measures model quality, not plumbing.
//!
//! The counters are read every `READ_MS` by default, like pws-record's energy thread. `--energy-gaps N`
//! leaves N spans of `GAP_MS` without readings and resets every counter once;
//! `--energy-update-period` moves a counter only at its update instants (RAPL ~1 ms, NVML
//! ~100 ms) while it is still read every `--energy-read-period` (default `READ_MS`), and
//! `--energy-update-jitter J` moves each update instant by up to ±J (the recorder's simulated
//! source ticks with /proc/stat's jiffies, ~10 ms apart but not on a fixed beat: read at the
//! same period, a reading then sees zero or two ticks); `--energy-noise F` multiplies each
//! reading's increment by `1 + F·z` (z standard normal, clipped at ±3).

use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::schedule::Slot;

pub const IDLE_W: f64 = 40.0;
pub const W_PER_BUSY_CPU: f64 = 6.0;
pub const J_PER_INSTRUCTION: f64 = 4e-9;
/// Energy readings every this many ms by default (`--energy-read-period`).
pub const READ_MS: u64 = 10;
/// Length of each `--energy-gaps` span without readings.
pub const GAP_MS: u64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PowerShape {
    /// Power exactly linear in busy CPU time and instructions.
    Linear,
    /// Frequency moves over the run; a busy CPU draws W·f³ while instructions retire ∝ f.
    Dvfs,
}

/// Frequency of each package, piecewise constant over the run.
pub struct Frequency {
    /// Per package: (from ms, f), sorted.
    steps: Vec<Vec<(u64, f64)>>,
}

impl Frequency {
    pub fn draw(shape: PowerShape, packages: usize, ms_total: u64, rng: &mut StdRng) -> Self {
        let steps = (0..packages)
            .map(|_| match shape {
                PowerShape::Linear => vec![(0, 1.0)],
                PowerShape::Dvfs => {
                    let mut v = Vec::new();
                    let mut t = 0;
                    while t < ms_total {
                        v.push((t, rng.random_range(0.5..=1.0)));
                        t += rng.random_range(200..=1500);
                    }
                    v
                }
            })
            .collect();
        Self { steps }
    }

    pub fn at(&self, package: usize, ms: u64) -> f64 {
        let s = &self.steps[package];
        let i = s.partition_point(|&(t, _)| t <= ms);
        s[i.saturating_sub(1)].1
    }
}

/// Dynamic power (W) of one CPU running `slot` at frequency `f`.
pub fn cpu_dynamic_w(slot: Slot, f: f64) -> f64 {
    if slot.1 == 0 {
        return 0.0;
    }
    W_PER_BUSY_CPU * f.powi(3) + J_PER_INSTRUCTION * slot.2 * f
}

/// The scenario's energy-counter options.
#[derive(Debug, Clone, Copy)]
pub struct CounterOptions {
    pub gaps: usize,
    pub noise: f64,
    pub update_ms: u64,
    /// Each update instant moves by a uniform draw in ±this many ms (0: a fixed beat).
    pub jitter_ms: u64,
}

/// One package's counter: the true energy, what the device shows, what was last reported.
pub struct Counter {
    true_uj: f64,
    /// True energy at the last update instant (what the device shows).
    device_uj: f64,
    /// Device value at the last reading, and the reported raw value then.
    last_device: f64,
    reported: f64,
    /// Subtracted after the reset.
    reset_base: f64,
    /// With jitter: the next update instant (ms).
    next_update_ms: u64,
}

/// Where the readings are missing and when the counters reset.
pub struct Gaps {
    spans: Vec<(u64, u64)>,
    reset_ms: Option<u64>,
}

impl Gaps {
    /// N spans spread over the run, and one reset between the first two (or in the middle).
    pub fn new(n: usize, ms_total: u64) -> Self {
        let spans: Vec<(u64, u64)> = (0..n)
            .map(|k| {
                let at = (k as u64 + 1) * ms_total / (n as u64 + 2);
                let at = at / READ_MS * READ_MS;
                (at, at + GAP_MS)
            })
            .collect();
        let reset_ms = (n > 0).then(|| (ms_total * 5 / 7) / READ_MS * READ_MS + 3 * READ_MS);
        Self { spans, reset_ms }
    }

    /// No reading is taken at `ms` (strictly inside a gap).
    pub fn skips(&self, ms: u64) -> bool {
        self.spans.iter().any(|&(a, b)| ms > a && ms < b)
    }

    pub fn spans(&self) -> &[(u64, u64)] {
        &self.spans
    }

    pub fn reset_ms(&self) -> Option<u64> {
        self.reset_ms
    }
}

impl Counter {
    pub fn new() -> Self {
        Self {
            true_uj: 0.0,
            device_uj: 0.0,
            last_device: 0.0,
            reported: 0.0,
            reset_base: 0.0,
            next_update_ms: 0,
        }
    }

    /// Adds one millisecond at `p` W ending at `ms + 1`; the device catches up at its update
    /// instants.
    /// `rng` draws the jittered update instants (untouched without jitter, so a trace without
    /// it is the same as before the option existed).
    pub fn run_ms(&mut self, ms: u64, p: f64, o: &CounterOptions, rng: &mut StdRng) {
        self.true_uj += p * 1e3;
        let period = o.update_ms.max(1);
        if o.jitter_ms == 0 {
            if (ms + 1) % period == 0 {
                self.device_uj = self.true_uj;
            }
            return;
        }
        if self.next_update_ms == 0 {
            self.next_update_ms = period;
        }
        if ms + 1 >= self.next_update_ms {
            self.device_uj = self.true_uj;
            // The next beat, moved by the jitter but never before the next millisecond.
            let j = o.jitter_ms.min(period - 1) as i64;
            let shift = rng.random_range(-j..=j);
            let next = (ms + 1) as i64 + period as i64 + shift;
            self.next_update_ms = next.max(ms as i64 + 2) as u64;
        }
    }

    /// The raw value a reading at `ms` returns (µJ); `reset` zeroes the counter first.
    pub fn read(&mut self, o: &CounterOptions, reset: bool, rng: &mut StdRng) -> u64 {
        let inc = self.device_uj - self.last_device;
        self.last_device = self.device_uj;
        let z: f64 = StandardNormal.sample(rng);
        self.reported += inc * (1.0 + o.noise * z.clamp(-3.0, 3.0)).max(0.0);
        if reset {
            self.reset_base = self.reported;
        }
        (self.reported - self.reset_base).round() as u64
    }
}
