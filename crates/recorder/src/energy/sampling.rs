//! Energy reads for the sampling thread (`crate::periodic`): every counter read at once,
//! timestamped on the trace clock — or, clocked by the kernel, the readings it took drained
//! once a second — and handed over as one block (all counters, the samples since the last one)
//! about every second.

use std::time::Duration;

use pws_trace::records::{EnergyBlock, EnergySample, EnergySeries, SourceStats};

use super::kernel_clocked::DRAIN_EVERY;
use super::{ClockedReader, CounterDesc, CounterReader};
use crate::clock::monotonic_ns;
use crate::periodic::Periodic;

/// One energy source's reads. Read errors are counted, the last one kept, and sampling goes
/// on; `reads` counts every attempt.
pub struct EnergyReads {
    reader: Reader,
    interval: Duration,
    values: Vec<u64>,
    series: Vec<EnergySeries>,
    stats: SourceStats,
}

/// Who takes the readings.
enum Reader {
    /// This thread, one read per wake-up.
    Thread(Box<dyn CounterReader>),
    /// The kernel; this thread drains them.
    Kernel(Box<dyn ClockedReader>),
}

impl EnergyReads {
    pub fn new(reader: Box<dyn CounterReader>, interval: Duration) -> Self {
        let counters = reader.counters().to_vec();
        Self::with(Reader::Thread(reader), &counters, interval)
    }

    /// Readings the kernel takes, drained every [`DRAIN_EVERY`].
    pub fn clocked(reader: Box<dyn ClockedReader>) -> Self {
        let counters = reader.counters().to_vec();
        Self::with(Reader::Kernel(reader), &counters, DRAIN_EVERY)
    }

    fn with(reader: Reader, counters: &[CounterDesc], interval: Duration) -> Self {
        let stats = SourceStats {
            name: match counters.first() {
                Some(c) => format!("energy:{}", c.source),
                None => "energy".into(),
            },
            ..SourceStats::default()
        };
        let series: Vec<EnergySeries> = counters
            .iter()
            .map(|c| EnergySeries {
                source: c.source,
                domain: c.domain,
                index: c.index,
                name: c.name.clone(),
                unit_joules: c.unit_joules,
                wrap: c.wrap,
                samples: Vec::new(),
            })
            .collect();
        Self {
            values: vec![0u64; series.len()],
            reader,
            interval,
            series,
            stats,
        }
    }

    fn read_or_drain(&mut self, last: bool) {
        let (series, stats) = (&mut self.series, &mut self.stats);
        match &mut self.reader {
            Reader::Thread(r) => read_now(r.as_mut(), &mut self.values, series, stats),
            Reader::Kernel(c) => drain(c.as_mut(), last, series, stats),
        }
    }
}

/// One read of every counter by this thread, timestamped at the middle of the read.
fn read_now(
    reader: &mut dyn CounterReader,
    values: &mut [u64],
    series: &mut [EnergySeries],
    stats: &mut SourceStats,
) {
    let t0 = monotonic_ns();
    let r = reader.read(values);
    let t1 = monotonic_ns();
    stats.reads += 1;
    match r {
        Ok(()) => {
            let ts_ns = t0 + t1.saturating_sub(t0) / 2;
            for (s, &raw) in series.iter_mut().zip(values.iter()) {
                s.samples.push(EnergySample { ts_ns, raw });
            }
        }
        Err(e) => {
            stats.errors += 1;
            stats.last_error = e.to_string();
        }
    }
}

/// The readings the kernel took since the last drain; `reads` counts the first counter's.
fn drain(
    reader: &mut dyn ClockedReader,
    last: bool,
    series: &mut [EnergySeries],
    stats: &mut SourceStats,
) {
    let lost_before = reader.lost();
    let r = reader.drain(last, &mut |first, ts_ns, raws| {
        for (s, &raw) in series[first..].iter_mut().zip(raws) {
            s.samples.push(EnergySample { ts_ns, raw });
        }
        if first == 0 {
            stats.reads += 1;
        }
    });
    let lost = reader.lost() - lost_before;
    if lost > 0 {
        stats.errors += lost;
        stats.last_error =
            format!("the kernel dropped {lost} samples of the energy clock: a ring was full");
    }
    if let Err(e) = r {
        stats.errors += 1;
        stats.last_error = e.to_string();
    }
}

/// Blocks go into any channel whose message is made from an EnergyBlock (the writer's, so it
/// wakes on one channel only).
impl<T: From<EnergyBlock>> Periodic<T> for EnergyReads {
    fn interval(&self) -> Duration {
        self.interval
    }

    /// One read of every counter, timestamped at the middle of the read; or the kernel's
    /// readings since the last drain.
    fn read(&mut self) {
        self.read_or_drain(false);
    }

    /// The kernel's readings are all taken, none held back for a CPU that lags.
    fn read_last(&mut self) {
        self.read_or_drain(true);
    }

    fn take(&mut self) -> Option<T> {
        if self.series.iter().all(|s| s.samples.is_empty()) {
            return None;
        }
        let block = EnergyBlock {
            series: self
                .series
                .iter_mut()
                .map(|s| {
                    let n = s.samples.len();
                    let samples = std::mem::replace(&mut s.samples, Vec::with_capacity(n));
                    EnergySeries {
                        name: s.name.clone(),
                        samples,
                        ..*s
                    }
                })
                .collect(),
        };
        Some(block.into())
    }

    fn stats(&self) -> SourceStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::tests::desc;
    use crate::energy::CounterDesc;
    use crate::periodic;
    use pws_trace::records::EnergyDomain;
    use std::io;
    use std::sync::mpsc;
    use std::time::Instant;

    /// Counts its reads: counter 0 reads n, counter 1 reads 1000 + 2n. Fails the reads that
    /// `fail` selects.
    struct Counting {
        counters: Vec<CounterDesc>,
        n: u64,
        fail: fn(u64) -> bool,
    }

    impl Counting {
        fn boxed(fail: fn(u64) -> bool) -> Box<dyn CounterReader> {
            Box::new(Self {
                counters: vec![
                    desc("energy-pkg", EnergyDomain::Package),
                    desc("energy-ram", EnergyDomain::Dram),
                ],
                n: 0,
                fail,
            })
        }
    }

    impl CounterReader for Counting {
        fn counters(&self) -> &[CounterDesc] {
            &self.counters
        }
        fn read(&mut self, out: &mut [u64]) -> io::Result<()> {
            let n = self.n;
            self.n += 1;
            if (self.fail)(n) {
                return Err(io::Error::other(format!("read {n} failed")));
            }
            out.copy_from_slice(&[n, 1000 + 2 * n]);
            Ok(())
        }
    }

    fn run_for(
        reader: Box<dyn CounterReader>,
        interval: Duration,
        run: Duration,
    ) -> (SourceStats, Vec<(Duration, EnergyBlock)>, Duration) {
        let (tx, rx) = mpsc::channel::<EnergyBlock>();
        let t0 = Instant::now();
        let reads: Box<dyn Periodic<EnergyBlock>> = Box::new(EnergyReads::new(reader, interval));
        let sampler = periodic::spawn(vec![reads], tx).unwrap();
        let mut blocks = Vec::new();
        while t0.elapsed() < run {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(10)) {
                blocks.push((t0.elapsed(), b));
            }
        }
        let stats = sampler.finish().unwrap().remove(0);
        // The thread has ended, so its sender is gone and this drains the final block.
        let elapsed = t0.elapsed();
        blocks.extend(rx.iter().map(|b| (elapsed, b)));
        (stats, blocks, elapsed)
    }

    #[test]
    fn one_millisecond_sampling_does_not_drift() {
        let (stats, blocks, elapsed) = run_for(
            Counting::boxed(|_| false),
            Duration::from_millis(1),
            Duration::from_millis(300),
        );
        // Under a second: one block, the final one, sent at stop.
        assert_eq!(blocks.len(), 1, "{stats:?}");
        assert!(blocks[0].0 >= Duration::from_millis(300));
        let s = &blocks[0].1.series;
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "energy-pkg");
        assert_eq!(s[1].domain, EnergyDomain::Dram);
        let n = s[0].samples.len();
        eprintln!("{n} samples in 300 ms at 1 ms; {stats:?}");
        // ~300 on an idle machine; a busy 2-core VM may lose some to scheduling, never gain.
        assert!(n >= 100, "{n}");
        // No burst either: at most one read per elapsed millisecond, plus the ones at start and
        // at stop (which wakes the thread between deadlines).
        assert!(n as u128 <= elapsed.as_millis() + 2, "{n} in {elapsed:?}");
        assert_eq!(stats.reads, n as u64);
        assert_eq!(stats.errors, 0);
        assert_eq!(stats.name, "energy:perf-power");
        // Raw values verbatim, timestamps increasing on the trace clock.
        for (i, x) in s[0].samples.iter().enumerate() {
            assert_eq!(x.raw, i as u64);
            assert_eq!(s[1].samples[i].raw, 1000 + 2 * i as u64);
            assert_eq!(s[1].samples[i].ts_ns, x.ts_ns);
        }
        let ts: Vec<u64> = s[0].samples.iter().map(|x| x.ts_ns).collect();
        assert!(ts.windows(2).all(|w| w[1] > w[0]));
        let span = Duration::from_nanos(ts[n - 1] - ts[0]);
        assert!(
            span >= Duration::from_millis(280) && span < Duration::from_millis(400),
            "{span:?}"
        );
        assert!(ts[n - 1] <= monotonic_ns());
    }

    #[test]
    fn blocks_about_every_second_and_a_last_one_at_stop() {
        let (stats, blocks, _) = run_for(
            Counting::boxed(|_| false),
            Duration::from_millis(10),
            Duration::from_millis(2500),
        );
        let at: Vec<_> = blocks.iter().map(|b| b.0).collect();
        eprintln!("blocks at {at:?}");
        assert_eq!(blocks.len(), 3, "{at:?}");
        assert!(at[0] >= Duration::from_millis(950) && at[0] < Duration::from_millis(1500));
        assert!(at[1] >= Duration::from_millis(1950) && at[1] < Duration::from_millis(2500));
        assert!(at[2] >= Duration::from_millis(2500));
        // The blocks continue each other: no sample lost or repeated between them.
        let raws: Vec<u64> = blocks
            .iter()
            .flat_map(|b| b.1.series[0].samples.iter().map(|x| x.raw))
            .collect();
        assert_eq!(raws, (0..raws.len() as u64).collect::<Vec<_>>());
        assert_eq!(stats.reads, raws.len() as u64);
        assert!(raws.len() >= 150, "{}", raws.len());
    }

    #[test]
    fn read_errors_are_counted_and_sampling_goes_on() {
        let (stats, blocks, _) = run_for(
            Counting::boxed(|n| n % 3 == 1),
            Duration::from_millis(1),
            Duration::from_millis(150),
        );
        let samples: Vec<u64> = blocks
            .iter()
            .flat_map(|b| b.1.series[0].samples.iter().map(|x| x.raw))
            .collect();
        assert!(stats.reads >= 30, "{stats:?}");
        assert_eq!(stats.errors, stats.reads - samples.len() as u64);
        assert_eq!(
            stats.errors,
            (0..stats.reads).filter(|n| n % 3 == 1).count() as u64
        );
        assert!(samples.iter().all(|n| n % 3 != 1));
        assert!(stats.last_error.starts_with("read "), "{stats:?}");

        // A reader that always fails sends nothing, and still ends cleanly.
        let (stats, blocks, _) = run_for(
            Counting::boxed(|_| true),
            Duration::from_millis(1),
            Duration::from_millis(100),
        );
        assert!(blocks.is_empty());
        assert!(
            stats.errors >= 20 && stats.errors == stats.reads,
            "{stats:?}"
        );
    }
}
