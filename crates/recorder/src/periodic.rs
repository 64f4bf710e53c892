//! Sources read on a clock — the energy counters and /proc/stat — on one schedule, so they
//! share its wake-ups: a thread of their own when energy is read on a user-space clock (`spawn`:
//! a read every few milliseconds must come on time), else the main thread's loop between its
//! ring wake-ups (`Schedule`, session.rs), whose tick they ride. (NVML's GPUs run the same loop
//! on a thread of their own: a GPU read takes milliseconds, and the CPU counters must not wait
//! behind it.)
//!
//! Over an hour what a recorder costs is its wake-ups: on the development VM each timer wake-up
//! of a sleeping thread costs 15–60 µs of CPU (more the rarer they are; schedstat, and `perf`
//! puts most of it in the switch back in), more than the reads it serves (/proc/stat: ~3 µs).
//! With a thread per source, /proc/stat's ten reads a second cost ten wake-ups of their own on
//! top of the energy thread's hundred, and both threads also woke every 50 ms to look at a stop
//! flag. Here each source keeps its own grid of
//! absolute deadlines (so 1 ms does not drift), the thread sleeps until the earliest one, reads
//! every source that is due — in the order given, so energy, first, is read on time and the
//! slower /proc/stat after it — and stopping wakes it at once (`unpark`), with no polling.
//!
//! No timer slack: letting the kernel end sleeps up to a millisecond late saved too little to
//! tell from this VM's noise, and a late energy read stretches the span the next one covers; the
//! analyzer's plausibility check allows an interval one update period of excess, and an
//! end-to-end run with a 1 ms slack went past it by 0.01 %.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pws_trace::records::SourceStats;

/// How often what was read is sent: the trace writer's flush rhythm.
const SEND_EVERY: Duration = Duration::from_secs(1);

/// A source read at a steady period. Its reads accumulate until `take` hands them over.
pub trait Periodic<T>: Send {
    /// Time to the next read, asked after each read (a source may lengthen it while its reads
    /// have nothing new: /proc/stat); one past the clock's range (`Duration::MAX`) reads at
    /// start and stop only.
    fn interval(&self) -> Duration;
    /// One read; a failed read is counted in `stats`, not returned: sampling goes on.
    fn read(&mut self);
    /// The read at stop; a source that holds readings back (waiting for data still to come)
    /// hands them all over here.
    fn read_last(&mut self) {
        self.read();
    }
    /// What was read since the last call, None if nothing was.
    fn take(&mut self) -> Option<T>;
    /// Reads attempted and failed so far.
    fn stats(&self) -> SourceStats;
}

/// The running thread.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<SourceStats>>,
}

impl Sampler {
    /// Reads every source once more, sends what is left and returns their statistics, in the
    /// order the sources were given. Err if the thread panicked.
    pub fn finish(self) -> std::thread::Result<Vec<SourceStats>> {
        self.stop.store(true, Ordering::Release);
        // After the store: a thread between its look at `stop` and `park` finds the token.
        self.thread.thread().unpark();
        self.thread.join()
    }

    /// Whether the thread has ended by itself (nobody left to send to).
    #[cfg(test)]
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Starts the thread. Every source is read at once, then on its grid; what was read is sent
/// about every second, and a last time at `finish`. The thread also ends when the receiver is
/// gone (nobody left to record what it reads).
pub fn spawn<T: Send + 'static>(
    sources: Vec<Box<dyn Periodic<T>>>,
    tx: Sender<T>,
) -> std::io::Result<Sampler> {
    spawn_named("pws-sampler", sources, tx)
}

/// [`spawn`] under another thread name: a source too slow to share the sampling thread (NVML's
/// GPUs, milliseconds a read) gets a thread of its own, named for `top` and profiles.
pub fn spawn_named<T: Send + 'static>(
    name: &str,
    sources: Vec<Box<dyn Periodic<T>>>,
    tx: Sender<T>,
) -> std::io::Result<Sampler> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(sources, &flag, &tx))?;
    Ok(Sampler { stop, thread })
}

/// Sources read on their own grids of absolute deadlines, by whichever loop hosts them: the
/// sampling thread, or the main thread between its ring wake-ups (session.rs).
pub struct Schedule<T> {
    sources: Vec<Box<dyn Periodic<T>>>,
    start: Instant,
    due: Vec<Option<Instant>>,
}

impl<T> Schedule<T> {
    /// Every source is due at once.
    pub fn new(sources: Vec<Box<dyn Periodic<T>>>) -> Self {
        let start = Instant::now();
        let due = vec![Some(start); sources.len()];
        Self {
            sources,
            start,
            due,
        }
    }

    /// Moves every source's grid to start at `start` (a host loop's own grid): each is next
    /// due at its first deadline on it after now.
    pub fn align(&mut self, start: Instant) {
        self.start = start;
        let now = Instant::now();
        for (s, d) in self.sources.iter().zip(self.due.iter_mut()) {
            *d = next_on_grid(start, s.interval(), now);
        }
    }

    /// The earliest deadline; None if no source has one.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.iter().flatten().min().copied()
    }

    /// Reads every source that is due, in the order given.
    pub fn read_due(&mut self) {
        for (s, d) in self.sources.iter_mut().zip(self.due.iter_mut()) {
            if d.is_some_and(|d| d <= Instant::now()) {
                s.read();
                *d = next_on_grid(self.start, s.interval(), Instant::now());
            }
        }
    }

    /// What each source read since the last call, in the order given.
    pub fn take(&mut self) -> Vec<T> {
        self.sources.iter_mut().filter_map(|s| s.take()).collect()
    }

    /// Every source's last read (at stop), then what is left to hand over.
    pub fn read_last(&mut self) -> Vec<T> {
        for s in self.sources.iter_mut() {
            s.read_last();
        }
        self.take()
    }

    pub fn stats(&self) -> Vec<SourceStats> {
        self.sources.iter().map(|s| s.stats()).collect()
    }
}

fn run<T>(
    sources: Vec<Box<dyn Periodic<T>>>,
    stop: &AtomicBool,
    tx: &Sender<T>,
) -> Vec<SourceStats> {
    let mut schedule = Schedule::new(sources);
    let mut last_send = schedule.start;
    loop {
        if stop.load(Ordering::Acquire) {
            for m in schedule.read_last() {
                if tx.send(m).is_err() {
                    break;
                }
            }
            return schedule.stats();
        }
        schedule.read_due();
        if last_send.elapsed() >= SEND_EVERY {
            last_send = Instant::now();
            for m in schedule.take() {
                if tx.send(m).is_err() {
                    return schedule.stats();
                }
            }
        }
        park_until(schedule.next_due(), stop);
    }
}

/// The first deadline of the grid `start + k × step` after `now`: after a stall, the next one
/// still ahead, with no burst of catch-up reads. None past the clock's range.
pub fn next_on_grid(start: Instant, step: Duration, now: Instant) -> Option<Instant> {
    let step = step.as_nanos().max(1);
    let k = now.saturating_duration_since(start).as_nanos() / step + 1;
    let at = k.checked_mul(step)?;
    let secs = u64::try_from(at / 1_000_000_000).ok()?;
    start.checked_add(Duration::new(secs, (at % 1_000_000_000) as u32))
}

/// Sleeps until `deadline` (None: until stopped) or `stop`, whichever comes first.
fn park_until(deadline: Option<Instant>, stop: &AtomicBool) {
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                std::thread::park_timeout(left);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Counts its reads and hands them over as (name, read numbers).
    struct Counting {
        name: &'static str,
        interval: Duration,
        reads: Vec<u64>,
        n: u64,
    }

    impl Periodic<(&'static str, Vec<u64>)> for Counting {
        fn interval(&self) -> Duration {
            self.interval
        }
        fn read(&mut self) {
            self.reads.push(self.n);
            self.n += 1;
        }
        fn take(&mut self) -> Option<(&'static str, Vec<u64>)> {
            (!self.reads.is_empty()).then(|| (self.name, std::mem::take(&mut self.reads)))
        }
        fn stats(&self) -> SourceStats {
            SourceStats {
                name: self.name.into(),
                reads: self.n,
                ..SourceStats::default()
            }
        }
    }

    fn counting(name: &'static str, ms: u64) -> Box<dyn Periodic<(&'static str, Vec<u64>)>> {
        Box::new(Counting {
            name,
            interval: Duration::from_millis(ms),
            reads: Vec::new(),
            n: 0,
        })
    }

    #[test]
    fn two_sources_on_their_own_grids_in_one_thread() {
        let (tx, rx) = mpsc::channel();
        let s = spawn(vec![counting("fast", 10), counting("slow", 100)], tx).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let stats = s.finish().unwrap();
        let got: Vec<_> = rx.iter().collect();
        // A block each after about a second, and a last one each at stop.
        let fast: Vec<u64> = got
            .iter()
            .filter(|g| g.0 == "fast")
            .flat_map(|g| g.1.clone())
            .collect();
        let slow: Vec<u64> = got
            .iter()
            .filter(|g| g.0 == "slow")
            .flat_map(|g| g.1.clone())
            .collect();
        assert_eq!(got.iter().filter(|g| g.0 == "slow").count(), 2, "{got:?}");
        // Every read sent once, in order, none repeated.
        assert_eq!(fast, (0..fast.len() as u64).collect::<Vec<_>>());
        assert_eq!(slow, (0..slow.len() as u64).collect::<Vec<_>>());
        assert_eq!(stats[0].reads, fast.len() as u64);
        assert_eq!(stats[1].name, "slow");
        // ~151 and ~16 on a quiet machine; never more than the grid allows (+1 at stop).
        assert!((60..=152).contains(&fast.len()), "{}", fast.len());
        assert!((8..=17).contains(&slow.len()), "{}", slow.len());
    }

    #[test]
    fn stop_is_prompt_whatever_the_interval() {
        for ms in [60_000, u64::MAX] {
            let (tx, rx) = mpsc::channel();
            let s = spawn(vec![counting("long", ms)], tx).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            let t = Instant::now();
            let stats = s.finish().unwrap();
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "{:?}",
                t.elapsed()
            );
            // One read at start, one at stop, sent together.
            assert_eq!(stats[0].reads, 2);
            assert_eq!(rx.iter().collect::<Vec<_>>(), vec![("long", vec![0, 1])]);
        }
    }

    #[test]
    fn a_closed_receiver_ends_the_thread() {
        let (tx, rx) = mpsc::channel();
        drop(rx);
        let s = spawn(vec![counting("c", 100)], tx).unwrap();
        // The first send, after about a second, fails and the thread returns by itself.
        let t = Instant::now();
        while !s.is_finished() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(s.is_finished());
        assert!(s.finish().unwrap()[0].reads >= 5);
    }

    #[test]
    fn a_host_loop_reads_what_is_due_on_the_grid_it_gives() {
        let mut s = Schedule::new(vec![
            counting("each second", 1000),
            counting("slow", 60_000),
        ]);
        // Both due at once: the first reads.
        s.read_due();
        assert_eq!(s.take(), vec![("each second", vec![0]), ("slow", vec![0])]);
        // Then on the host's grid, from its start: nothing before the first deadline on it.
        let t0 = Instant::now() + Duration::from_millis(5);
        s.align(t0);
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(1)));
        s.read_due();
        assert!(s.take().is_empty());
        assert_eq!(
            s.read_last(),
            vec![("each second", vec![1]), ("slow", vec![1])]
        );
        assert_eq!(s.stats()[1].reads, 2);
    }

    #[test]
    fn the_grid_skips_what_a_stall_missed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(next_on_grid(t0, ms(10), t0), Some(t0 + ms(10)));
        assert_eq!(next_on_grid(t0, ms(10), t0 + ms(35)), Some(t0 + ms(40)));
        assert_eq!(next_on_grid(t0, ms(10), t0 + ms(40)), Some(t0 + ms(50)));
        assert_eq!(next_on_grid(t0, Duration::MAX, t0 + ms(40)), None);
    }
}
