//! Frequency layers: smartwatts keeps one power model per 100 MHz-wide (one base clock) band of
//! package frequency, and picks the band from the average APERF/MPERF of the socket's CPUs.

use super::tick::Events;

/// The CPU description smartwatts builds from its options: ratios 1 to 100 of the base clock,
/// the base ratio being `cpu-base-freq / cpu-base-clock` rounded down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTopology {
    pub tdp: u32,
    pub base_clock: u32,
    pub ratio_min: u32,
    pub ratio_base: u32,
    pub ratio_max: u32,
}

impl CpuTopology {
    pub fn new(tdp: u32, base_clock: u32, base_freq: u32) -> Self {
        CpuTopology {
            tdp,
            base_clock,
            ratio_min: 1,
            ratio_base: base_freq / base_clock,
            ratio_max: 100,
        }
    }

    /// MHz that APERF/MPERF = 1 stands for.
    pub fn base_frequency(&self) -> u32 {
        self.base_clock * self.ratio_base
    }

    /// Lowest frequency of every layer, increasing, in MHz.
    pub fn layers(&self) -> Vec<u32> {
        (self.ratio_min..=self.ratio_max)
            .map(|r| r * self.base_clock)
            .collect()
    }

    /// Index in `layers()` of the highest layer not above `mhz`; `None` below the lowest
    /// (smartwatts 2.4.1 stops the socket's formula there: `max()` of nothing).
    pub fn layer_index(&self, mhz: i64) -> Option<usize> {
        let lowest = i64::from(self.ratio_min * self.base_clock);
        if mhz < lowest {
            return None;
        }
        let r = (mhz / i64::from(self.base_clock)).min(i64::from(self.ratio_max));
        usize::try_from(r - i64::from(self.ratio_min)).ok()
    }
}

/// Package frequency from the MSR counters of a socket's CPUs, as smartwatts computes it:
/// `int(base · mean(APERF) / mean(MPERF))`, each mean over the CPUs that report the event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PkgFrequency {
    /// MHz, truncated toward zero like Python's `int()`.
    Mhz(i64),
    /// No APERF or MPERF was read: smartwatts 2.4.1 would fail; this port uses the base
    /// frequency's layer.
    Unknown,
    /// The mean MPERF is zero: smartwatts logs "PKG frequency is invalid" and skips the tick.
    Invalid,
}

pub fn pkg_frequency(base_frequency: u32, msr: &[Events]) -> PkgFrequency {
    let mean = |event: &str| {
        let (sum, count) = msr
            .iter()
            .filter_map(|cpu| cpu.get(event))
            .fold((0i128, 0u32), |(s, c), v| (s + i128::from(v), c + 1));
        // Python sums the integers exactly, then divides once.
        (count > 0).then(|| sum as f64 / f64::from(count))
    };
    let (Some(aperf), Some(mperf)) = (mean("APERF"), mean("MPERF")) else {
        return PkgFrequency::Unknown;
    };
    if mperf == 0.0 {
        return PkgFrequency::Invalid;
    }
    let mhz = (f64::from(base_frequency) * aperf) / mperf;
    if !mhz.is_finite() {
        return PkgFrequency::Invalid;
    }
    PkgFrequency::Mhz(mhz.trunc() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_follow_base_clock_and_clamp_at_the_top() {
        let t = CpuTopology::new(125, 100, 2150);
        assert_eq!(t.ratio_base, 21);
        assert_eq!(t.base_frequency(), 2100);
        let layers = t.layers();
        assert_eq!((layers[0], layers[99], layers.len()), (100, 10_000, 100));
        assert_eq!(t.layer_index(99), None);
        assert_eq!(t.layer_index(100).map(|i| layers[i]), Some(100));
        assert_eq!(t.layer_index(2199).map(|i| layers[i]), Some(2100));
        assert_eq!(t.layer_index(2200).map(|i| layers[i]), Some(2200));
        assert_eq!(t.layer_index(50_000).map(|i| layers[i]), Some(10_000));
    }

    #[test]
    fn pkg_frequency_is_ratio_of_means() {
        let cpu = |a: i64, m: i64| Events::from_iter([("APERF".into(), a), ("MPERF".into(), m)]);
        assert_eq!(
            pkg_frequency(2100, &[cpu(200, 100)]),
            PkgFrequency::Mhz(4200)
        );
        // Means 150 and 100: 2100 · 1.5 = 3150; averaging per-CPU ratios would give 3500.
        let msr = [cpu(100, 50), cpu(200, 150)];
        assert_eq!(pkg_frequency(2100, &msr), PkgFrequency::Mhz(3150));
        // 2100 / 11 = 190.9…, truncated.
        assert_eq!(pkg_frequency(2100, &[cpu(1, 11)]), PkgFrequency::Mhz(190));
        assert_eq!(pkg_frequency(2100, &[cpu(1, 0)]), PkgFrequency::Invalid);
        assert_eq!(pkg_frequency(2100, &[]), PkgFrequency::Unknown);
    }
}
