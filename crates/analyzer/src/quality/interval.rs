//! The tables' interval: `--interval auto` (the default) picks it from what the energy
//! counters can resolve; an explicit duration wins.
//!
//! A reading lags the true counter by up to one update, so an interval's energy is uncertain
//! by about one update period at each end: an interval as short as the update period reads
//! 0 W or twice the power in turn. Auto takes the smallest step holding
//! [`UPDATES_PER_INTERVAL`] updates of the coarsest counter (energy quantised by ≤ ~1/N),
//! never below [`FLOOR`], whole milliseconds.

use std::str::FromStr;
use std::time::Duration;

use pws_trace::records::EnergySeries;

use super::update_period::{self, UPDATES_PER_INTERVAL};

/// The shortest interval auto picks (and its choice without energy readings): below it the
/// per-interval CPU time of a 1 kHz sampler is a handful of samples.
pub const FLOOR: Duration = Duration::from_millis(10);

/// `--interval`: `auto` or a duration ("10ms", "1s").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalArg {
    Auto,
    Fixed(Duration),
}

impl FromStr for IntervalArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        let d = humantime::parse_duration(s)
            .map_err(|e| format!("{s:?}: `auto` or a duration such as 10ms or 1s ({e})"))?;
        if d.is_zero() {
            return Err(format!("{s:?}: the interval must be longer than zero"));
        }
        Ok(Self::Fixed(d))
    }
}

/// The interval used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub interval: Duration,
    /// Picked by `auto` (else given).
    pub auto: bool,
    /// The coarsest counter's effective update period (ns), where one was measured.
    pub update_period_ns: Option<u64>,
}

/// The interval for a trace with these energy counters.
pub fn choose(arg: IntervalArg, energy: &[EnergySeries]) -> Chosen {
    let update_period_ns = energy
        .iter()
        .filter_map(|s| update_period::measure(s).ok())
        .filter_map(|q| q.effective_period_ns())
        .max();
    match arg {
        IntervalArg::Fixed(d) => Chosen {
            interval: d,
            auto: false,
            update_period_ns,
        },
        IntervalArg::Auto => Chosen {
            interval: auto_for(update_period_ns),
            auto: true,
            update_period_ns,
        },
    }
}

/// N updates of the period, to the nearest millisecond (a period measured as 10.0002 ms is
/// the 10 ms tick), at least [`FLOOR`].
pub fn auto_for(update_period_ns: Option<u64>) -> Duration {
    let Some(u) = update_period_ns else {
        return FLOOR;
    };
    let ms = (u.saturating_mul(UPDATES_PER_INTERVAL) + 500_000) / 1_000_000;
    Duration::from_millis(ms).max(FLOOR)
}

/// Whether an interval this long holds fewer than N updates of a counter of this period.
pub fn too_short(interval: Duration, update_period_ns: u64) -> bool {
    (interval.as_nanos() as u64) < update_period_ns.saturating_mul(UPDATES_PER_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_holds_n_updates_above_the_floor() {
        assert_eq!(auto_for(None), FLOOR);
        assert_eq!(auto_for(Some(300_000)), FLOOR, "RAPL read every 0.3 ms");
        assert_eq!(auto_for(Some(10_000_000)), Duration::from_millis(100));
        assert_eq!(auto_for(Some(10_000_200)), Duration::from_millis(100));
        assert_eq!(auto_for(Some(100_400_000)), Duration::from_millis(1004));
        assert!(too_short(Duration::from_millis(10), 10_000_000));
        assert!(!too_short(Duration::from_millis(100), 10_000_000));
    }

    #[test]
    fn the_argument_is_auto_or_a_positive_duration() {
        assert_eq!("auto".parse::<IntervalArg>(), Ok(IntervalArg::Auto));
        assert_eq!(
            "250ms".parse::<IntervalArg>(),
            Ok(IntervalArg::Fixed(Duration::from_millis(250)))
        );
        assert!("0s"
            .parse::<IntervalArg>()
            .unwrap_err()
            .contains("longer than zero"));
        assert!("soon".parse::<IntervalArg>().is_err());
    }
}
