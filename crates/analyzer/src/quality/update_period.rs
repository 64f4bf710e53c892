//! One energy counter's own behaviour, from its raw readings: how often it really moves (the
//! spacing of the readings at which the cumulative value changed), what one count is worth,
//! and its wraps, resets and gaps (classified by the replay's `energy_gaps`, the same rule the
//! tables use).
//!
//! A counter read more slowly than it updates moves at every reading: the readings then bound
//! its update period from above and cannot show it (`at_most`). That bound is still what the
//! analysis can resolve, since energy is only known at the readings.

use std::borrow::Cow;
use std::collections::VecDeque;

use pws_trace::records::{EnergySample, EnergySeries};
use serde::Serialize;

use crate::replay::energy_gaps::{GapRule, Status};

use super::QualityError;

/// An interval holding this many counter updates has its energy quantised by at most about
/// 1/N: a reading lags the true counter by up to one update at each end.
pub const UPDATES_PER_INTERVAL: u64 = 10;

/// When at least this share of ordinary readings moved the counter, it updates at least as
/// often as it is read (a period 0.1 % above the read period would leave one reading in a
/// thousand without a move).
const EVERY_READ: f64 = 0.999;

/// What one counter's readings say about the counter itself.
#[derive(Debug, Clone, Serialize)]
pub struct CounterQuality {
    pub name: String,
    pub source: String,
    pub domain: String,
    pub package: u32,
    pub readings: usize,
    /// Median spacing of ordinary readings.
    pub read_period_ms: f64,
    /// Median and 99th percentile of the spacing of the readings at which the counter moved
    /// (None when it moved fewer than twice in a row of ordinary readings).
    pub update_period_ms: Option<f64>,
    pub update_period_p99_ms: Option<f64>,
    /// The counter moved at (nearly) every reading: its update period is at most the read
    /// period, and may be much shorter.
    pub update_period_at_most: bool,
    /// Share of ordinary readings at which the counter moved.
    pub moved_share: f64,
    /// Joules one count is worth.
    pub unit_j: f64,
    /// Smallest nonzero increment between two ordinary readings, in joules.
    pub smallest_increment_j: Option<f64>,
    pub wraps: u64,
    pub resets: u64,
    /// Long pauses whose delta was kept (estimated) and steps that are unknown (missing).
    pub gaps_estimated: u64,
    pub gaps_missing: u64,
    /// Highest power over spans holding at least [`UPDATES_PER_INTERVAL`] updates: what the
    /// source really draws at most, to a quantisation of 1/N.
    pub max_plausible_w: Option<f64>,
    /// Trace-clock instants (ns) of the readings at which the counter moved, sorted.
    #[serde(skip)]
    pub change_instants: Vec<u64>,
}

impl CounterQuality {
    /// The update period the analysis can resolve (ns): the measured one, or the read period
    /// when every reading moved the counter.
    pub fn effective_period_ns(&self) -> Option<u64> {
        self.update_period_ms.map(|ms| (ms * 1e6).round() as u64)
    }
}

/// The counter described from its readings; fewer than two readings, or a unit that is not a
/// positive number of joules, is an error naming the counter.
pub fn measure(s: &EnergySeries) -> Result<CounterQuality, QualityError> {
    // Readings come in time order, each instant once: copied (sorted, deduplicated) only
    // where they do not (an hour at 100 reads a second is 6 MB a counter).
    let samples: Cow<'_, [EnergySample]> = if s.samples.windows(2).all(|w| w[0].ts_ns < w[1].ts_ns)
    {
        Cow::Borrowed(&s.samples)
    } else {
        let mut v = s.samples.clone();
        v.sort_by_key(|x| x.ts_ns);
        v.dedup_by_key(|x| x.ts_ns);
        Cow::Owned(v)
    };
    if samples.len() < 2 {
        return Err(QualityError::TooFewReadings {
            counter: s.name.clone(),
            readings: samples.len(),
        });
    }
    if !(s.unit_joules.is_finite() && s.unit_joules > 0.0) {
        return Err(QualityError::BadUnit {
            counter: s.name.clone(),
            unit: s.unit_joules,
        });
    }
    let rule = GapRule::new(s, &samples);
    // Sized once: at most one of each per reading.
    let n_max = samples.len();
    let (mut reads, mut spacings) = (Vec::with_capacity(n_max), Vec::with_capacity(n_max));
    let (mut wraps, mut resets, mut estimated, mut missing) = (0, 0, 0, 0);
    let (mut moved, mut ordinary) = (0usize, 0usize);
    let mut smallest: Option<u64> = None;
    let mut last_change: Option<u64> = None;
    let mut change_instants = Vec::with_capacity(n_max);
    // The highest power over UPDATES_PER_INTERVAL moves in a row, within runs cut at every
    // gap: each change instant and cumulative joules against the one that many moves before
    // it, the run's last few kept (the runs were 6–12 MB of an hour's quality pass).
    let n = UPDATES_PER_INTERVAL as usize;
    let mut run: VecDeque<(u64, f64)> = VecDeque::with_capacity(n + 1);
    let mut max_plausible_w: Option<f64> = None;
    let mut cumulative = 0.0;
    for w in samples.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.raw < a.raw {
            if s.wrap == 0 {
                resets += 1;
            } else {
                wraps += 1;
            }
        }
        match rule.classify(a, b) {
            Status::Measured => {}
            kind => {
                if kind == Status::Estimated {
                    estimated += 1;
                } else {
                    missing += 1;
                }
                // Across a gap the instant of the next update is unknown.
                last_change = None;
                run.clear();
                continue;
            }
        }
        ordinary += 1;
        reads.push(b.ts_ns - a.ts_ns);
        let delta = EnergySeries::raw_delta(s.wrap, a.raw, b.raw);
        if delta == 0 {
            continue;
        }
        moved += 1;
        smallest = Some(smallest.map_or(delta, |m| m.min(delta)));
        cumulative += delta as f64 * s.unit_joules;
        // From change to change: the energy between two moves is exactly what the counter
        // added, whereas a reading before a move lags the update it follows.
        if run.len() == n {
            let (t0, e0) = run.pop_front().expect("n ≥ 1 moves kept");
            let p = (cumulative - e0) / ((b.ts_ns - t0) as f64 / 1e9);
            max_plausible_w = Some(max_plausible_w.map_or(p, |m| m.max(p)));
        }
        run.push_back((b.ts_ns, cumulative));
        change_instants.push(b.ts_ns);
        if let Some(l) = last_change {
            spacings.push(b.ts_ns - l);
        }
        last_change = Some(b.ts_ns);
    }
    let moved_share = if ordinary == 0 {
        0.0
    } else {
        moved as f64 / ordinary as f64
    };
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok(CounterQuality {
        name: s.name.clone(),
        source: s.source.to_string(),
        domain: s.domain.to_string(),
        package: s.index,
        readings: samples.len(),
        read_period_ms: percentile(&mut reads, 0.5).map_or(0.0, ms),
        update_period_ms: percentile(&mut spacings, 0.5).map(ms),
        update_period_p99_ms: percentile(&mut spacings, 0.99).map(ms),
        update_period_at_most: ordinary > 0 && moved_share >= EVERY_READ,
        moved_share,
        unit_j: s.unit_joules,
        smallest_increment_j: smallest.map(|d| d as f64 * s.unit_joules),
        wraps,
        resets,
        gaps_estimated: estimated,
        gaps_missing: missing,
        max_plausible_w,
        change_instants,
    })
}

/// The `q` quantile (nearest rank) of `v`, sorted here.
pub fn percentile(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::{EnergyDomain, EnergySource};

    const MS: u64 = 1_000_000;

    fn series(wrap: u64, pts: impl IntoIterator<Item = (u64, u64)>) -> EnergySeries {
        EnergySeries {
            source: EnergySource::Powercap,
            domain: EnergyDomain::Package,
            index: 0,
            name: "intel-rapl:0".into(),
            unit_joules: 1e-6,
            wrap,
            samples: pts
                .into_iter()
                .map(|(ts_ns, raw)| EnergySample { ts_ns, raw })
                .collect(),
        }
    }

    #[test]
    fn a_staircase_read_faster_than_it_moves_shows_its_period() {
        // Read every ms, moves by 50 000 µJ every 10 ms (5 W): 1 s of readings.
        let s = series(0, (0..=1000).map(|k| (k * MS, k / 10 * 50_000)));
        let q = measure(&s).unwrap();
        assert_eq!(q.read_period_ms, 1.0);
        assert_eq!(
            (q.update_period_ms, q.update_period_p99_ms),
            (Some(10.0), Some(10.0))
        );
        assert!(!q.update_period_at_most);
        assert!((q.moved_share - 0.1).abs() < 1e-9, "{}", q.moved_share);
        assert!((q.smallest_increment_j.unwrap() - 0.05).abs() < 1e-12);
        assert_eq!(q.change_instants.len(), 100);
        let w = q.max_plausible_w.unwrap();
        assert!((w - 5.0).abs() < 1e-9, "{w}");
    }

    #[test]
    fn every_reading_moving_bounds_the_period_and_wraps_resets_are_counted() {
        // Moves 10 µJ at every 10 ms reading, wrapping at 25 µJ.
        let w = series(25, (0..=40).map(|k| (k * 10 * MS, (k * 10) % 25)));
        let q = measure(&w).unwrap();
        assert!(q.update_period_at_most);
        assert_eq!(q.update_period_ms, Some(10.0));
        assert_eq!((q.wraps, q.resets), (16, 0));
        // A counter without a range that goes back: a reset, a missing step, and the
        // spacing across it is not an update period.
        let r = series(0, [(0, 100), (10 * MS, 110), (20 * MS, 5), (30 * MS, 15)]);
        let q = measure(&r).unwrap();
        assert_eq!((q.resets, q.gaps_missing), (1, 1));
        assert_eq!(q.update_period_ms, None, "no two moves in a row");
    }

    #[test]
    fn too_few_readings_or_a_bad_unit_is_an_error() {
        let e = measure(&series(0, [(0, 1)])).unwrap_err();
        assert!(e.to_string().contains("intel-rapl:0"), "{e}");
        let mut s = series(0, [(0, 1), (MS, 2)]);
        s.unit_joules = 0.0;
        assert!(matches!(measure(&s), Err(QualityError::BadUnit { .. })));
    }
}
