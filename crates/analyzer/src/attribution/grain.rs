//! The time grain of the `attribution` table (`--attribution`): a row per grid interval, the
//! intervals of each second of the run summed, or no table at all.
//!
//! Only the table depends on it: the per-activation, keep-alive and per-cgroup sums
//! (`activation_energy`, `functions`, the summary) are made from the per-interval shares
//! whatever the grain, so they are the same under every choice.

use std::collections::BTreeMap;

use crate::models::attribute::{Attributed, IdlePolicy, Live, Share};

/// How many rows the `attribution` table has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Grain {
    /// A row per grid interval, cgroup, domain, model and idle policy: the largest table by
    /// far (hundreds of MB per hour of a busy node at a 10 ms grid).
    PerInterval,
    /// The grid intervals that start in the same second of the run (counted from the grid's
    /// start) summed into one row per cgroup, domain, model and idle policy: the same columns,
    /// `interval_start`/`interval_end` the span of the whole intervals summed.
    #[default]
    PerSecond,
    /// No `attribution` table; every other table is unchanged.
    None,
}

/// A second, in ns: the bucket `per-second` sums over.
const SECOND_NS: u64 = 1_000_000_000;

/// The grid's intervals grouped into the table's rows: bucket `b` is the intervals
/// `firsts[b]..firsts[b + 1]` and spans `spans[b]` (whole intervals, so buckets tile the grid).
/// Per bucket, not per interval: an hour's 10 ms grid has 360,000 intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    firsts: Vec<usize>,
    spans: Vec<(u64, u64)>,
}

impl Buckets {
    /// The buckets of `grain` over the grid intervals `spans` (in time order); None when the
    /// table is not written.
    pub fn new(grain: Grain, spans: &[(u64, u64)]) -> Option<Self> {
        match grain {
            Grain::None => None,
            Grain::PerInterval => Some(Self {
                firsts: (0..=spans.len()).collect(),
                spans: spans.to_vec(),
            }),
            Grain::PerSecond => {
                let start = spans.first().map_or(0, |s| s.0);
                let (mut firsts, mut out): (Vec<usize>, Vec<(u64, u64)>) = (Vec::new(), Vec::new());
                let mut second = None;
                for (i, &(a, b)) in spans.iter().enumerate() {
                    let s = (a - start) / SECOND_NS;
                    if second != Some(s) {
                        second = Some(s);
                        out.push((a, b));
                        firsts.push(i);
                    }
                    out.last_mut().expect("pushed above").1 = b;
                }
                firsts.push(spans.len());
                Some(Self { firsts, spans: out })
            }
        }
    }

    /// Bucket `b`'s span (ns).
    pub fn span(&self, b: usize) -> (u64, u64) {
        self.spans[b]
    }

    /// Bucket `b`'s intervals.
    fn intervals(&self, b: usize) -> std::ops::Range<usize> {
        self.firsts[b]..self.firsts[b + 1]
    }

    /// The bucket of interval `i`.
    fn of(&self, i: usize) -> usize {
        self.firsts.partition_point(|&f| f <= i) - 1
    }

    fn per_interval(&self) -> bool {
        // As many buckets as intervals.
        self.firsts.last() == Some(&self.spans.len())
    }
}

/// One row of the table: a cgroup's energy in a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub bucket: usize,
    pub cgroup: u64,
    pub dynamic_j: f64,
    pub idle_j: f64,
    /// Some interval of the bucket had an energy gap's estimate.
    pub estimated: bool,
}

/// The rows of one (domain, model, idle policy), handed to `emit` in bucket then cgroup
/// order, from `shares` (`att`'s, in order: the caller may read them too as they pass);
/// `estimated(i)` says whether interval `i`'s energy is an estimate. At `per-interval` every
/// row is one of `Attributed::rows`, unchanged. Coarser, the live containers' idle energy in
/// a bucket is one integral each (`Density::over`), so the work is buckets × live containers,
/// not intervals × live containers.
#[allow(clippy::too_many_arguments)]
pub fn rows<E>(
    buckets: &Buckets,
    att: &Attributed<'_>,
    shares: impl Iterator<Item = Share>,
    live: &Live,
    policy: IdlePolicy,
    estimated: impl Fn(usize) -> bool,
    emit: impl FnMut(Row) -> Result<(), E>,
) -> Result<(), E> {
    if buckets.per_interval() {
        return sum(buckets, att.rows(shares), estimated, emit);
    }
    let density = live.density(policy, &att.idle);
    let starts = if policy.by_container() {
        live.by_start()
    } else {
        Vec::new()
    };
    let (mut next, mut active): (usize, Vec<(usize, usize)>) = (0, Vec::new());
    let mut shares = shares.peekable();
    sum(
        buckets,
        (0..buckets.spans.len()).flat_map(|b| {
            let ivs = buckets.intervals(b);
            let mut out: Vec<Share> = Vec::new();
            while let Some(s) = shares.next_if(|s| s.interval < ivs.end) {
                out.push(s);
            }
            while next < starts.len() && starts[next].0 < ivs.end {
                active.push((starts[next].1, starts[next].2));
                next += 1;
            }
            active.retain(|&(last, _)| last >= ivs.start);
            let (a, z) = buckets.span(b);
            let mut cs: Vec<usize> = active.iter().map(|&(_, c)| c).collect();
            cs.sort_unstable();
            out.extend(cs.into_iter().filter_map(|c| {
                let j = density.over(c, a, z);
                (j > 0.0).then(|| Share {
                    interval: ivs.start,
                    cgroup: live.containers[c].cgroup,
                    dynamic_j: 0.0,
                    idle_j: j,
                })
            }));
            out
        }),
        estimated,
        emit,
    )
}

/// `shares` (in bucket order) summed per bucket and cgroup.
fn sum<E>(
    buckets: &Buckets,
    shares: impl IntoIterator<Item = Share>,
    estimated: impl Fn(usize) -> bool,
    mut emit: impl FnMut(Row) -> Result<(), E>,
) -> Result<(), E> {
    // One bucket at a time: memory is the cgroups of a bucket, not of the run.
    let mut acc: BTreeMap<u64, Row> = BTreeMap::new();
    let mut current = None;
    let mut est = false;
    for s in shares {
        // In order: a bucket's intervals come together, so it is searched for once.
        let b = match current {
            Some(b) if buckets.intervals(b).contains(&s.interval) => b,
            _ => buckets.of(s.interval),
        };
        if current != Some(b) {
            for (_, r) in std::mem::take(&mut acc) {
                emit(r)?;
            }
            current = Some(b);
            est = buckets.intervals(b).any(&estimated);
        }
        let r = acc.entry(s.cgroup).or_insert(Row {
            bucket: b,
            cgroup: s.cgroup,
            dynamic_j: 0.0,
            idle_j: 0.0,
            estimated: est,
        });
        r.dynamic_j += s.dynamic_j;
        r.idle_j += s.idle_j;
    }
    for (_, r) in acc {
        emit(r)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::attribute::UNASSIGNED;

    fn share(interval: usize, cgroup: u64, dynamic_j: f64, idle_j: f64) -> Share {
        Share {
            interval,
            cgroup,
            dynamic_j,
            idle_j,
        }
    }

    fn collect(b: &Buckets, shares: &[Share], est: &[usize]) -> Vec<Row> {
        let mut out = Vec::new();
        sum(
            b,
            shares.iter().copied(),
            |i| est.contains(&i),
            |r| -> Result<(), ()> {
                out.push(r);
                Ok(())
            },
        )
        .unwrap();
        out
    }

    #[test]
    fn per_second_buckets_are_whole_intervals_starting_in_the_same_second() {
        // 0.4 s intervals from t = 10 s: starts 0, 0.4, 0.8 | 1.2, 1.6 | 2.0, 2.4, 2.8 | 3.2.
        let spans: Vec<(u64, u64)> = (0..9)
            .map(|i| {
                (
                    10_000_000_000 + i * 400_000_000,
                    10_400_000_000 + i * 400_000_000,
                )
            })
            .collect();
        let b = Buckets::new(Grain::PerSecond, &spans).unwrap();
        assert_eq!(b.firsts, vec![0, 3, 5, 8, 9]);
        let of: Vec<usize> = (0..9).map(|i| b.of(i)).collect();
        assert_eq!(of, vec![0, 0, 0, 1, 1, 2, 2, 2, 3]);
        assert_eq!(b.span(0), (10_000_000_000, 11_200_000_000));
        assert_eq!(b.span(1), (11_200_000_000, 12_000_000_000));
        assert_eq!(b.span(3), (13_200_000_000, 13_600_000_000));
        // Longer than a second: each interval its own bucket.
        let long = [(0, 2_500_000_000), (2_500_000_000, 5_000_000_000)];
        assert_eq!(
            Buckets::new(Grain::PerSecond, &long).unwrap().spans,
            long.to_vec()
        );
        assert_eq!(Buckets::new(Grain::None, &spans), None);
    }

    #[test]
    fn per_second_rows_sum_the_shares_and_per_interval_rows_are_the_shares() {
        let spans: Vec<(u64, u64)> = (0..4)
            .map(|i| (i * 500_000_000, (i + 1) * 500_000_000))
            .collect();
        let shares = [
            share(0, 7, 1.0, 0.5),
            share(0, UNASSIGNED, 0.0, 2.0),
            share(1, 3, 0.25, 0.0),
            share(1, 7, 2.0, 0.5),
            share(3, 7, 4.0, 1.0),
        ];
        let per_interval = collect(
            &Buckets::new(Grain::PerInterval, &spans).unwrap(),
            &shares,
            &[1],
        );
        let back: Vec<Share> = per_interval
            .iter()
            .map(|r| share(r.bucket, r.cgroup, r.dynamic_j, r.idle_j))
            .collect();
        assert_eq!(back, shares.to_vec());
        assert_eq!(
            per_interval.iter().map(|r| r.estimated).collect::<Vec<_>>(),
            vec![false, false, true, true, false]
        );
        let per_second = collect(
            &Buckets::new(Grain::PerSecond, &spans).unwrap(),
            &shares,
            &[1],
        );
        let want = vec![
            Row {
                bucket: 0,
                cgroup: 3,
                dynamic_j: 0.25,
                idle_j: 0.0,
                estimated: true,
            },
            Row {
                bucket: 0,
                cgroup: 7,
                dynamic_j: 3.0,
                idle_j: 1.0,
                estimated: true,
            },
            // Estimated: its bucket holds interval 1.
            Row {
                bucket: 0,
                cgroup: UNASSIGNED,
                dynamic_j: 0.0,
                idle_j: 2.0,
                estimated: true,
            },
            Row {
                bucket: 1,
                cgroup: 7,
                dynamic_j: 4.0,
                idle_j: 1.0,
                estimated: false,
            },
        ];
        assert_eq!(per_second, want);
    }
}
