//! The tables' interval: `--interval auto` (the default) picks it from what the energy
//! counters can resolve; an explicit duration wins.
//!
//! A reading lags the true counter by up to one update, so an interval's energy is uncertain
//! by about one update period at each end: an interval as short as the update period reads
//! 0 W or twice the power in turn. Auto takes the smallest step holding
//! [`UPDATES_PER_INTERVAL`] updates of the coarsest counter (energy quantised by ≤ ~1/N),
//! never below [`FLOOR`], whole milliseconds.
//!
//! A counter that moved at every reading shows no quantisation at the readings: a period
//! above the read period would leave some readings without a move, and one equal to it with
//! a drifting phase too, so it is either much faster than the reads (RAPL's 1 ms read every
//! 10 ms) or locked to them; either way each reading is a resolved step and auto keeps the
//! floor (the grid is never finer than the readings). Measuring intervals of N reads there
//! would only throw away intervals the models need.

use std::str::FromStr;
use std::time::Duration;

use pws_trace::records::EnergySeries;

use super::update_period::{self, CounterQuality, UPDATES_PER_INTERVAL};

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

/// The interval used, and whether `auto` picked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub interval: Duration,
    pub auto: bool,
}

/// The interval for a trace with these energy counters (those the quality report cannot
/// describe have no say: it names them).
pub fn choose(arg: IntervalArg, energy: &[EnergySeries]) -> Chosen {
    match arg {
        IntervalArg::Fixed(d) => Chosen {
            interval: d,
            auto: false,
        },
        IntervalArg::Auto => Chosen {
            // Not a GPU's: its ~100 ms counter would make every CPU interval a second; its
            // cadence is in its activations' uncertainty instead.
            interval: energy
                .iter()
                .filter(|s| s.domain != pws_trace::records::EnergyDomain::Gpu)
                .filter_map(|s| update_period::measure(s).ok())
                .map(|c| auto_for_counter(&c))
                .max()
                .unwrap_or(FLOOR),
            auto: true,
        },
    }
}

/// What auto needs for one counter: N of its updates, or the floor when it moved at every
/// reading.
pub fn auto_for_counter(c: &CounterQuality) -> Duration {
    if c.update_period_at_most {
        FLOOR
    } else {
        auto_for(c.effective_period_ns())
    }
}

/// An interval shorter than auto would pick for this counter: its energy is quantised.
pub fn too_short_for(interval: Duration, c: &CounterQuality) -> bool {
    interval < auto_for_counter(c)
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
    }

    fn counter(period_ms: f64, at_most: bool) -> CounterQuality {
        CounterQuality {
            name: "c".into(),
            source: "simulated".into(),
            domain: "package".into(),
            package: 0,
            readings: 100,
            read_period_ms: 10.0,
            update_period_ms: Some(period_ms),
            update_period_p99_ms: Some(period_ms),
            update_period_at_most: at_most,
            moved_share: 1.0,
            unit_j: 1e-6,
            smallest_increment_j: None,
            wraps: 0,
            resets: 0,
            gaps_estimated: 0,
            gaps_missing: 0,
            max_plausible_w: None,
            change_instants: Vec::new(),
        }
    }

    #[test]
    fn a_counter_that_moves_at_every_reading_keeps_the_floor() {
        let (tick, every_read) = (counter(10.0, false), counter(10.0, true));
        assert_eq!(auto_for_counter(&tick), Duration::from_millis(100));
        assert_eq!(auto_for_counter(&every_read), FLOOR);
        let ten = Duration::from_millis(10);
        assert!(too_short_for(ten, &tick) && !too_short_for(ten, &every_read));
        assert!(!too_short_for(Duration::from_millis(100), &tick));
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
