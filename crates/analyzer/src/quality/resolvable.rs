//! Each function's activations against the energy counter's update period: an activation
//! shorter than the period may see the counter not move at all; one covered by at least two
//! updates has an energy the counter resolves, uncertain by about one update period of power
//! against its own length (± P·u over P·d: u/d).
//!
//! The reference is the coarsest counter (the one the tables' auto interval follows): its
//! effective update period, and the instants it moved at.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::analyze::Analysis;
use crate::replay::text::Text;

use super::update_period::{percentile, CounterQuality};

/// The verdict's bound on relative uncertainty: an activation is resolvable "within 5 %" when
/// it spans at least 20 update periods (and two updates at least).
pub const WITHIN: f64 = 0.05;

/// One function's activations against the counter.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionQuality {
    pub function: String,
    pub activations: u64,
    /// Activations with a start and an end (the others are not judged).
    pub timed: u64,
    pub median_ms: Option<f64>,
    /// Shares of the timed activations: shorter than the update period; covered by at least
    /// two counter updates; resolvable within [`WITHIN`].
    pub shorter_than_update_share: Option<f64>,
    pub resolvable_share: Option<f64>,
    pub within_share: Option<f64>,
    /// Update period over the median activation's length: its energy's relative uncertainty.
    pub median_relative_uncertainty: Option<f64>,
}

/// The run in one line: what share of its activations the counter resolves within
/// [`WITHIN`].
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub within_pct: f64,
    pub counter: Option<String>,
    pub update_period_ms: Option<f64>,
    /// The counter moved at every reading: the period is a bound, the shares a floor.
    pub update_period_at_most: bool,
    pub activations: u64,
    pub timed: u64,
    pub resolvable: u64,
    pub within: u64,
    pub within_share: Option<f64>,
    pub line: String,
}

/// (function, run length in ns where the record has a start and an end, start ns).
pub type Durations = Vec<(Text, Option<u64>, u64)>;

/// Every activation's function and length.
pub fn durations(an: &Analysis) -> Durations {
    an.life
        .activations
        .iter()
        .map(|a| {
            let r = &a.record;
            let d = (r.start_ns > 0 && r.end_ns > r.start_ns).then(|| r.end_ns - r.start_ns);
            // The record's shared text, not a copy per activation (an hour's 180 k were 9 MB).
            (r.action.clone(), d, r.start_ns)
        })
        .collect()
}

/// Per function and for the whole run, against `reference`.
pub fn assess(
    durations: &Durations,
    reference: Option<&CounterQuality>,
) -> (Vec<FunctionQuality>, Verdict) {
    let u = reference.and_then(|c| c.effective_period_ns());
    // (timed, shorter, resolvable, within) per activation.
    let judge = |d: u64, start: u64| -> (bool, bool, bool) {
        let (Some(u), Some(c)) = (u, reference) else {
            return (false, false, false);
        };
        let moves = c.change_instants.partition_point(|&t| t <= start + d)
            - c.change_instants.partition_point(|&t| t < start);
        let resolvable = moves >= 2;
        (
            d < u,
            resolvable,
            resolvable && u as f64 / d as f64 <= WITHIN,
        )
    };
    let mut per: BTreeMap<&str, (u64, Vec<u64>, [u64; 3])> = BTreeMap::new();
    for (f, d, start) in durations {
        let e = per.entry(&**f).or_default();
        e.0 += 1;
        if let Some(d) = *d {
            e.1.push(d);
            let (s, r, w) = judge(d, *start);
            e.2[0] += u64::from(s);
            e.2[1] += u64::from(r);
            e.2[2] += u64::from(w);
        }
    }
    let share = |k: u64, n: usize| (u.is_some() && n > 0).then(|| k as f64 / n as f64);
    let mut functions = Vec::new();
    let (mut timed, mut resolvable, mut within) = (0, 0, 0);
    for (f, (n, mut ds, [s, r, w])) in per {
        timed += ds.len() as u64;
        resolvable += r;
        within += w;
        let median = percentile(&mut ds, 0.5);
        functions.push(FunctionQuality {
            function: f.to_owned(),
            activations: n,
            timed: ds.len() as u64,
            median_ms: median.map(|d| d as f64 / 1e6),
            shorter_than_update_share: share(s, ds.len()),
            resolvable_share: share(r, ds.len()),
            within_share: share(w, ds.len()),
            median_relative_uncertainty: u.zip(median).map(|(u, d)| u as f64 / d as f64),
        });
    }
    let activations = durations.len() as u64;
    let within_share = share(within, timed as usize);
    let at_most = reference.is_some_and(|c| c.update_period_at_most);
    let line = match (reference, u, within_share) {
        (Some(c), Some(u), Some(s)) => format!(
            "{:.1} % of the run's activations ({within} of {timed} timed) have energy resolvable within {:.0} % by {} (update period {}{:.1} ms: an activation must last ≥ {:.0} ms){}",
            100.0 * s,
            100.0 * WITHIN,
            c.name,
            if at_most { "≤ " } else { "" },
            u as f64 / 1e6,
            u as f64 / 1e6 / WITHIN,
            if at_most { "; the counter moved at every reading, so this is a floor: read it faster to know" } else { "" }
        ),
        (None, _, _) => "no energy counter in the trace: no activation's energy is measured, only modelled from CPU time".into(),
        (Some(c), None, _) => format!("energy counter {} never moved twice in a row: its update period is unknown, no activation's energy is resolvable", c.name),
        (Some(_), Some(_), None) => "no activation with a start and an end: nothing to judge".into(),
    };
    let verdict = Verdict {
        within_pct: 100.0 * WITHIN,
        counter: reference.map(|c| c.name.clone()),
        update_period_ms: u.map(|u| u as f64 / 1e6),
        update_period_at_most: at_most,
        activations,
        timed,
        resolvable,
        within,
        within_share,
        line,
    };
    (functions, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A counter that moved every `period_ms` for a second.
    fn counter(period_ms: u64) -> CounterQuality {
        CounterQuality {
            name: "c".into(),
            source: "simulated".into(),
            domain: "package".into(),
            package: 0,
            readings: 1001,
            read_period_ms: 1.0,
            update_period_ms: Some(period_ms as f64),
            update_period_p99_ms: Some(period_ms as f64),
            update_period_at_most: false,
            moved_share: 1.0 / period_ms as f64,
            unit_j: 1e-6,
            smallest_increment_j: None,
            wraps: 0,
            resets: 0,
            gaps_estimated: 0,
            gaps_missing: 0,
            max_plausible_w: None,
            change_instants: (1..=1000 / period_ms).map(|k| k * period_ms * MS).collect(),
        }
    }

    #[test]
    fn an_activation_is_resolvable_when_two_updates_fall_in_it() {
        let acts: Durations = vec![
            ("short".into(), Some(5 * MS), 101 * MS),
            ("short".into(), Some(15 * MS), 101 * MS),
            ("long".into(), Some(400 * MS), 105 * MS),
            ("long".into(), None, 0),
        ];
        let (fs, v) = assess(&acts, Some(&counter(10)));
        let short = fs.iter().find(|f| f.function == "short").unwrap();
        // 5 ms: shorter than the period, no update; 15 ms from 101: only 110.
        assert_eq!(short.shorter_than_update_share, Some(0.5));
        assert_eq!(short.resolvable_share, Some(0.0));
        let long = fs.iter().find(|f| f.function == "long").unwrap();
        assert_eq!((long.activations, long.timed), (2, 1));
        // 400 ms spans 40 updates: resolvable, ± 2.5 %, within 5 %.
        assert_eq!(
            (long.resolvable_share, long.within_share),
            (Some(1.0), Some(1.0))
        );
        assert_eq!(long.median_relative_uncertainty, Some(0.025));
        assert_eq!((v.timed, v.resolvable, v.within), (3, 1, 1));
        assert!(v.line.contains("33.3 %"), "{}", v.line);
        let (_, none) = assess(&acts, None);
        assert!(none.line.contains("no energy counter"), "{}", none.line);
        assert_eq!(none.within_share, None);
    }
}
