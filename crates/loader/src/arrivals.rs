//! When activations arrive and with what input: arrival processes (Poisson, fixed interval,
//! periodic bursts, or a trace's per-minute counts) and input size distributions, merged into
//! one time-ordered schedule. Everything is drawn from seeded generators, one pair per stream,
//! so a workload and a seed give the same arrivals every time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use serde::Deserialize;

use crate::workload::HumanDuration;

/// An arrival process, as written in a workload file: a map with exactly one of
/// `poisson: {rate}`, `interval: {every}`, `burst: {every, count, spacing}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "OneArrival")]
pub enum ArrivalSpec {
    /// Exponential inter-arrival times, `rate` per second on average.
    Poisson { rate: f64 },
    /// One arrival every `every`, the first at the function's start.
    Interval { every: HumanDuration },
    /// `count` arrivals `spacing` apart (default: all at once), every `every`.
    Burst {
        every: HumanDuration,
        count: u32,
        spacing: Option<HumanDuration>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneArrival {
    poisson: Option<PoissonFields>,
    interval: Option<IntervalFields>,
    burst: Option<BurstFields>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PoissonFields {
    rate: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalFields {
    every: HumanDuration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BurstFields {
    every: HumanDuration,
    count: u32,
    #[serde(default)]
    spacing: Option<HumanDuration>,
}

impl TryFrom<OneArrival> for ArrivalSpec {
    type Error = String;
    fn try_from(o: OneArrival) -> Result<Self, String> {
        match (o.poisson, o.interval, o.burst) {
            (Some(p), None, None) => Ok(ArrivalSpec::Poisson { rate: p.rate }),
            (None, Some(i), None) => Ok(ArrivalSpec::Interval { every: i.every }),
            (None, None, Some(b)) => Ok(ArrivalSpec::Burst {
                every: b.every,
                count: b.count,
                spacing: b.spacing,
            }),
            _ => Err("give exactly one arrival process: poisson, interval or burst".into()),
        }
    }
}

/// An input size distribution, as written in a workload file: a map with exactly one of
/// `fixed: n`, `uniform: {min, max}`, `lognormal: {median, sigma, min, max}`, `choice: [..]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "OneInput")]
pub enum InputDist {
    Fixed(u64),
    /// Uniform integers in `[min, max]`.
    Uniform {
        min: u64,
        max: u64,
    },
    /// Lognormal around `median` (e^σ the spread factor), clamped to `[min, max]` if given.
    Lognormal {
        median: f64,
        sigma: f64,
        min: Option<u64>,
        max: Option<u64>,
    },
    /// One of `values`, equally likely.
    Choice(Vec<u64>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OneInput {
    fixed: Option<u64>,
    uniform: Option<UniformFields>,
    lognormal: Option<LognormalFields>,
    choice: Option<Vec<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UniformFields {
    min: u64,
    max: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LognormalFields {
    median: f64,
    sigma: f64,
    #[serde(default)]
    min: Option<u64>,
    #[serde(default)]
    max: Option<u64>,
}

impl TryFrom<OneInput> for InputDist {
    type Error = String;
    fn try_from(o: OneInput) -> Result<Self, String> {
        match (o.fixed, o.uniform, o.lognormal, o.choice) {
            (Some(v), None, None, None) => Ok(InputDist::Fixed(v)),
            (None, Some(u), None, None) => Ok(InputDist::Uniform {
                min: u.min,
                max: u.max,
            }),
            (None, None, Some(l), None) => Ok(InputDist::Lognormal {
                median: l.median,
                sigma: l.sigma,
                min: l.min,
                max: l.max,
            }),
            (None, None, None, Some(c)) => Ok(InputDist::Choice(c)),
            _ => Err(
                "give exactly one input distribution: fixed, uniform, lognormal or choice".into(),
            ),
        }
    }
}

impl InputDist {
    /// Why the distribution cannot be sampled, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        match self {
            InputDist::Fixed(_) => Ok(()),
            InputDist::Uniform { min, max } if min > max => {
                Err(format!("uniform: min {min} is above max {max}"))
            }
            InputDist::Uniform { .. } => Ok(()),
            InputDist::Lognormal {
                median,
                sigma,
                min,
                max,
            } => {
                if !(median.is_finite() && *median > 0.0) {
                    Err(format!(
                        "lognormal: median must be a positive number, not {median}"
                    ))
                } else if !(sigma.is_finite() && *sigma >= 0.0) {
                    Err(format!("lognormal: sigma must be ≥ 0, not {sigma}"))
                } else if matches!((min, max), (Some(a), Some(b)) if a > b) {
                    Err("lognormal: min is above max".into())
                } else {
                    Ok(())
                }
            }
            InputDist::Choice(v) if v.is_empty() => Err("choice: no values".into()),
            InputDist::Choice(_) => Ok(()),
        }
    }

    /// The largest value it can give.
    pub fn max_value(&self) -> Option<u64> {
        match self {
            InputDist::Fixed(v) => Some(*v),
            InputDist::Uniform { max, .. } => Some(*max),
            InputDist::Lognormal { max, .. } => *max,
            InputDist::Choice(v) => v.iter().copied().max(),
        }
    }

    /// One input (the distribution has passed [`InputDist::check`]).
    pub fn sample(&self, rng: &mut StdRng) -> u64 {
        match self {
            InputDist::Fixed(v) => *v,
            InputDist::Uniform { min, max } => rng.random_range(*min..=*max),
            InputDist::Lognormal {
                median,
                sigma,
                min,
                max,
            } => {
                let x = LogNormal::new(median.ln(), *sigma)
                    .map(|d| d.sample(rng))
                    .unwrap_or(*median);
                (x.round() as u64).clamp(min.unwrap_or(0), max.unwrap_or(u64::MAX))
            }
            InputDist::Choice(v) => v[rng.random_range(0..v.len())],
        }
    }
}

/// Arrival times (workload time, non-decreasing) of one stream.
pub trait TimeSource: Send {
    fn next(&mut self, rng: &mut StdRng) -> Option<Duration>;
}

/// Input sizes of one stream.
pub trait InputSource: Send {
    fn next(&mut self, rng: &mut StdRng) -> u64;
}

impl InputSource for InputDist {
    fn next(&mut self, rng: &mut StdRng) -> u64 {
        self.sample(rng)
    }
}

/// The times of an [`ArrivalSpec`] from `start`.
#[derive(Debug)]
pub struct SpecTimes {
    spec: ArrivalSpec,
    /// Poisson: the last arrival; interval: the next; burst: the current burst's start.
    t: Duration,
    /// Bursts: index within the current burst.
    k: u32,
    first: bool,
}

impl SpecTimes {
    pub fn new(spec: ArrivalSpec, start: Duration) -> Self {
        Self {
            spec,
            t: start,
            k: 0,
            first: true,
        }
    }
}

impl TimeSource for SpecTimes {
    fn next(&mut self, rng: &mut StdRng) -> Option<Duration> {
        let first = std::mem::replace(&mut self.first, false);
        match &self.spec {
            ArrivalSpec::Poisson { rate } => {
                let gap = Exp::new(*rate).ok()?.sample(rng);
                self.t += Duration::from_secs_f64(gap);
                Some(self.t)
            }
            ArrivalSpec::Interval { every } => {
                if !first {
                    self.t += every.0;
                }
                Some(self.t)
            }
            ArrivalSpec::Burst {
                every,
                count,
                spacing,
            } => {
                if self.k == *count {
                    self.k = 0;
                    self.t += every.0;
                }
                let at = self.t + spacing.map_or(Duration::ZERO, |s| s.0) * self.k;
                self.k += 1;
                Some(at)
            }
        }
    }
}

/// One function's arrivals, ending at `stop` (workload time, exclusive).
pub struct Stream {
    pub action: usize,
    times: Box<dyn TimeSource>,
    inputs: Box<dyn InputSource>,
    time_rng: StdRng,
    input_rng: StdRng,
    stop: Duration,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("action", &self.action)
            .field("stop", &self.stop)
            .finish()
    }
}

impl Stream {
    /// Stream `index` of a workload with `seed`; its generators depend only on both.
    pub fn new(
        action: usize,
        times: Box<dyn TimeSource>,
        inputs: Box<dyn InputSource>,
        stop: Duration,
        seed: u64,
        index: u64,
    ) -> Self {
        let base = seed ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            action,
            times,
            inputs,
            time_rng: StdRng::seed_from_u64(base),
            input_rng: StdRng::seed_from_u64(base.rotate_left(32) ^ 0x5851_F42D_4C95_7F2D),
            stop,
        }
    }

    /// Ends the stream at `stop` if that is earlier.
    pub fn cut(&mut self, stop: Duration) {
        self.stop = self.stop.min(stop);
    }

    fn next_time(&mut self) -> Option<Duration> {
        self.times
            .next(&mut self.time_rng)
            .filter(|t| *t < self.stop)
    }
}

/// One planned arrival.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Planned {
    /// Wall-clock offset from the start of the run.
    pub at: Duration,
    pub action: usize,
    pub input: u64,
}

/// All streams merged in time order; the workload clock runs `time_scale` times faster than
/// the wall clock.
#[derive(Debug)]
pub struct Schedule {
    streams: Vec<Stream>,
    heap: BinaryHeap<Reverse<(Duration, usize)>>,
    time_scale: f64,
}

impl Schedule {
    pub fn new(streams: Vec<Stream>, time_scale: f64) -> Self {
        let mut s = Self {
            streams,
            heap: BinaryHeap::new(),
            time_scale,
        };
        for i in 0..s.streams.len() {
            if let Some(t) = s.streams[i].next_time() {
                s.heap.push(Reverse((t, i)));
            }
        }
        s
    }

    fn wall(&self, t: Duration) -> Duration {
        Duration::from_secs_f64(t.as_secs_f64() / self.time_scale)
    }

    /// When the next arrival is due (wall offset).
    pub fn peek(&self) -> Option<Duration> {
        self.heap.peek().map(|Reverse((t, _))| self.wall(*t))
    }

    /// The next arrival.
    pub fn pop(&mut self) -> Option<Planned> {
        let Reverse((t, i)) = self.heap.pop()?;
        let s = &mut self.streams[i];
        let input = s.inputs.next(&mut s.input_rng);
        let action = s.action;
        if let Some(next) = s.next_time() {
            self.heap.push(Reverse((next, i)));
        }
        Some(Planned {
            at: self.wall(t),
            action,
            input,
        })
    }
}

impl Iterator for Schedule {
    type Item = Planned;
    fn next(&mut self) -> Option<Planned> {
        self.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn stream(spec: ArrivalSpec, input: InputDist, start: u64, stop: u64, i: u64) -> Stream {
        Stream::new(
            i as usize,
            Box::new(SpecTimes::new(spec, ms(start))),
            Box::new(input),
            ms(stop),
            7,
            i,
        )
    }

    #[test]
    fn interval_and_bursts_are_exact_and_stop_is_exclusive() {
        let every = ArrivalSpec::Interval {
            every: HumanDuration(ms(400)),
        };
        let s = Schedule::new(vec![stream(every, InputDist::Fixed(5), 100, 1700, 0)], 1.0);
        let at: Vec<_> = s.map(|p| (p.at, p.input)).collect();
        assert_eq!(
            at,
            [100, 500, 900, 1300].map(|t| (ms(t), 5)).to_vec(),
            "1700 itself is excluded"
        );
        let burst = ArrivalSpec::Burst {
            every: HumanDuration(ms(1000)),
            count: 3,
            spacing: Some(HumanDuration(ms(10))),
        };
        let s = Schedule::new(vec![stream(burst, InputDist::Fixed(1), 0, 2500, 0)], 2.0);
        let at: Vec<_> = s.map(|p| p.at.as_millis()).collect();
        assert_eq!(at, vec![0, 5, 10, 500, 505, 510, 1000, 1005, 1010]);
    }

    #[test]
    fn poisson_rate_is_right_and_seeded() {
        let spec = ArrivalSpec::Poisson { rate: 50.0 };
        let run = || {
            Schedule::new(
                vec![stream(spec.clone(), InputDist::Fixed(1), 0, 100_000, 3)],
                1.0,
            )
            .map(|p| p.at)
            .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same arrivals");
        // 5000 expected; 5 standard deviations is ±354.
        assert!((4650..5350).contains(&a.len()), "{}", a.len());
        assert!(a.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn streams_merge_in_time_order() {
        let s = Schedule::new(
            vec![
                stream(
                    ArrivalSpec::Interval {
                        every: HumanDuration(ms(300)),
                    },
                    InputDist::Fixed(1),
                    0,
                    1000,
                    0,
                ),
                stream(
                    ArrivalSpec::Poisson { rate: 20.0 },
                    InputDist::Fixed(2),
                    0,
                    1000,
                    1,
                ),
            ],
            1.0,
        );
        let all: Vec<_> = s.collect();
        assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(all.iter().filter(|p| p.action == 0).count(), 4);
        assert!(all.iter().all(|p| p.input == p.action as u64 + 1));
    }

    #[test]
    fn input_distributions_stay_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let u = InputDist::Uniform { min: 10, max: 20 };
        assert!((0..1000)
            .map(|_| u.sample(&mut rng))
            .all(|x| (10..=20).contains(&x)));
        let l = InputDist::Lognormal {
            median: 1000.0,
            sigma: 0.5,
            min: Some(500),
            max: Some(1500),
        };
        let xs: Vec<u64> = (0..2000).map(|_| l.sample(&mut rng)).collect();
        assert!(xs.iter().all(|x| (500..=1500).contains(x)));
        let below = xs.iter().filter(|x| **x < 1000).count();
        assert!((800..1200).contains(&below), "median near 1000: {below}");
        let c = InputDist::Choice(vec![3, 4]);
        assert!((0..100)
            .map(|_| c.sample(&mut rng))
            .all(|x| x == 3 || x == 4));
        assert!(InputDist::Choice(vec![]).check().is_err());
        assert!(InputDist::Uniform { min: 2, max: 1 }.check().is_err());
        assert!(InputDist::Lognormal {
            median: -1.0,
            sigma: 1.0,
            min: None,
            max: None
        }
        .check()
        .is_err());
    }
}
