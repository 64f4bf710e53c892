//! A run on the local platform: the schedule's arrivals are submitted at their times, the pool
//! is stepped in between, and the end (duration reached, or a signal) drains and cleans up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use indicatif::ProgressBar;

use crate::arrivals::Schedule;
use crate::outputs::Outputs;
use crate::platform::{self, Action, Platform};
use crate::signals::Signals;
use crate::summary::Summary;

#[derive(Debug)]
pub struct LocalRun {
    pub platform: platform::Config,
    /// How long the end waits for running (and queued) activations.
    pub drain: Duration,
    /// Action i of the schedule's arrivals.
    pub actions: Vec<Arc<Action>>,
    pub wall_duration: Duration,
}

/// The pool is stepped at least this often, for signals and progress.
const TICK: Duration = Duration::from_millis(100);

pub fn run(
    r: LocalRun,
    mut schedule: Schedule,
    out: Arc<Outputs>,
    signals: &Signals,
    progress: Option<&ProgressBar>,
) -> Result<Summary> {
    let mut p = Platform::new(r.platform, out)?;
    let t0 = Instant::now();
    let end = t0 + r.wall_duration;
    loop {
        if signals.stop() {
            break;
        }
        let now = Instant::now();
        if now >= end {
            break;
        }
        while let Some(at) = schedule.peek() {
            if t0 + at > now {
                break;
            }
            if let Some(a) = schedule.pop() {
                p.submit(Arc::clone(&r.actions[a.action]), a.input);
            }
        }
        let next = schedule.peek().map_or(end, |at| t0 + at);
        p.run_until(next.min(end).min(Instant::now() + TICK));
        if let Some(pb) = progress {
            let s = p.summary();
            pb.set_position(t0.elapsed().as_millis() as u64);
            pb.set_message(format!(
                "{} arrived, {} done, {} running, {} queued",
                s.accepted,
                s.recorded(),
                p.busy(),
                p.queued()
            ));
        }
    }
    let interrupted = signals.stop();
    // After a signal, what is queued is not started; at the planned end it still is.
    let mut s = p.shutdown(r.drain, !interrupted, &|| signals.hurry());
    s.interrupted = interrupted;
    s.wall_seconds = t0.elapsed().as_secs_f64();
    Ok(s)
}
