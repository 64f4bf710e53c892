//! What runs where, drawn before anything is written (the truth goes in the trace-info block,
//! which comes first): function activations by Poisson arrivals into their containers, a
//! daemon that exists from the start, and `--system-cgroups` scopes created and removed during
//! the run that are busy but run no function.
//!
//! Without `--keep-alive` each function has one container, made at the trace's start and never
//! paused. With `--keep-alive D` containers come and go as OpenWhisk's invoker pool makes
//! them: an activation runs in an idle (paused) container of its function when there is one
//! (the one freed last, so the others age out), else in a new one (a cold start); a container
//! runs one activation at a time, is paused (its cgroup frozen) from the end of each run to the
//! start of the next, and is removed D after its last run ends.

use std::collections::BTreeMap;

use pws_trace::records::CgroupOp;
use rand::rngs::StdRng;
use rand::Rng;

use super::functions::Function;

pub const DAEMON_CGROUP: u64 = 2;
pub const DAEMON_IPS: f64 = 1.0e9;
/// `--system-cgroups` scopes: cgroup ids from here, busy `SYSTEM_BURST_MS` every
/// `SYSTEM_PERIOD_MS` while they exist.
pub const SYSTEM_CGROUP_BASE: u64 = 3000;
const SYSTEM_IPS: f64 = 2.0e9;
const SYSTEM_BURST_MS: u64 = 4;
const SYSTEM_PERIOD_MS: u64 = 30;

/// What runs on a CPU for one millisecond: (cgroup, pid, instructions/s at full frequency);
/// pid 0 is idle.
pub type Slot = (u64, u32, f64);
pub const IDLE_SLOT: Slot = (0, 0, 0.0);

/// One activation: function, start and end (ms from the start), CPU, and its instructions per
/// second at full frequency.
#[derive(Debug, Clone, Copy)]
pub struct Act {
    pub function: usize,
    pub start: u64,
    pub end: u64,
    pub cpu: usize,
    pub ips: f64,
    /// Index in [`Schedule::containers`].
    pub container: usize,
    /// It made its container (cold start).
    pub cold: bool,
}

/// A function container: its function, cgroup, and life (ms).
#[derive(Debug, Clone)]
pub struct Container {
    pub function: usize,
    pub cgroup_id: u64,
    /// What its Docker-style id is made of (the id is this number in 64 hex digits).
    pub serial: u64,
    pub created: u64,
    /// None: still there at the trace's end.
    pub removed: Option<u64>,
    /// Its process: the pid its tasks carry (without `--keep-alive`, concurrent runs are
    /// threads with the pids that follow it), and its GPU process under `--gpus`.
    pub pid: u32,
    /// Its runs (start, end) in order; with `--keep-alive`, one at a time.
    pub runs: Vec<(u64, u64)>,
}

/// Keep-alive containers' cgroup ids and pids start here (above every fixed one).
const POOL_CGROUP_BASE: u64 = 1_000_000;
const POOL_PID_BASE: u32 = 100_000;

/// Each activation retires instructions at its function's `ips` times a factor drawn uniformly
/// within ± this (its input differs): a function's power per CPU-second varies from one
/// activation to the next around the function's own, so a coefficient per function (or any
/// model of CPU time alone) is never exactly the truth.
pub const IPS_JITTER: f64 = 0.06;

/// A system scope: cgroup id, created and removed (ms).
#[derive(Debug, Clone, Copy)]
pub struct SystemScope {
    pub cgroup_id: u64,
    pub created: u64,
    pub removed: u64,
}

/// Per CPU, its busy spans (start ms → end ms and what runs), which never overlap; time
/// outside them is idle. A few dozen spans a second, so it is kept whole.
pub struct Schedule {
    pub spans: Vec<BTreeMap<u64, (u64, Slot)>>,
    /// Sorted by start; an activation's index here is its id.
    pub acts: Vec<Act>,
    pub scopes: Vec<SystemScope>,
    pub functions: Vec<Function>,
    pub containers: Vec<Container>,
    /// `--keep-alive` in ms; None: one container per function for the whole trace.
    pub keep_alive: Option<u64>,
    pub ms_total: u64,
}

impl Schedule {
    fn is_free(&self, cpu: usize, a: u64, b: u64) -> bool {
        // Spans do not overlap: only the last one starting before `b` can reach into [a, b).
        self.spans[cpu]
            .range(..b)
            .next_back()
            .is_none_or(|(_, &(end, _))| end <= a)
    }

    /// A CPU free for all of `[a, b)`, searching from a random one so every package works.
    fn free_cpu(&self, cpus: usize, a: u64, b: u64, rng: &mut StdRng) -> Option<usize> {
        let first = rng.random_range(0..cpus);
        (0..cpus)
            .map(|k| (first + k) % cpus)
            .find(|&c| self.is_free(c, a, b))
    }

    /// Function activations by Poisson arrivals, each on a CPU free for its whole run (dropped
    /// when none is, a full node). Without `keep_alive`, at most `concurrency` at once in each
    /// function's one container (a later one waits for the first to end); with it, each in an
    /// idle container of its function or a new one. Then the system scopes and the daemon,
    /// where a CPU is free.
    pub fn draw(
        ms_total: u64,
        cpus: usize,
        concurrency: usize,
        system_cgroups: usize,
        functions: Vec<Function>,
        keep_alive: Option<u64>,
        rng: &mut StdRng,
    ) -> Self {
        let mut s = Self {
            spans: vec![BTreeMap::new(); cpus],
            acts: Vec::new(),
            scopes: Vec::new(),
            containers: Vec::new(),
            functions: Vec::new(),
            keep_alive,
            ms_total,
        };
        let concurrency = concurrency.max(1);
        for (fi, f) in functions.iter().enumerate() {
            if keep_alive.is_none() {
                s.containers.push(Container {
                    function: fi,
                    cgroup_id: f.cgroup_id,
                    serial: 0x5157_c000 + fi as u64,
                    created: 0,
                    removed: None,
                    pid: 100 + 16 * fi as u32,
                    runs: Vec::new(),
                });
            }
            // This function's containers (indices in s.containers) not yet removed.
            let mut pool: Vec<usize> = Vec::new();
            let mut t = 0f64;
            // Ends of the runs in the container: a new one waits while `concurrency` run.
            let mut running: Vec<u64> = Vec::new();
            loop {
                t += -(1.0 - rng.random::<f64>()).ln() / (f.rate * concurrency as f64) * 1000.0;
                let mut start = t as u64 + 1;
                running.retain(|&e| e > start);
                // With keep-alive a busy container means a new one, never a wait.
                if keep_alive.is_none() && running.len() >= concurrency {
                    start = running.iter().copied().min().unwrap_or(start);
                    running.retain(|&e| e > start);
                }
                let len = rng.random_range(f.run_ms.0..=f.run_ms.1);
                let ips = f.ips * rng.random_range(1.0 - IPS_JITTER..=1.0 + IPS_JITTER);
                if start + len + 1 >= ms_total {
                    break;
                }
                let Some(cpu) = s.free_cpu(cpus, start, start + len, rng) else {
                    continue;
                };
                let (container, cold, pid) = match keep_alive {
                    // Concurrent runs are threads of one process: one pid each.
                    None => {
                        let c = s.containers.len() - 1;
                        (c, false, s.containers[c].pid + running.len() as u32)
                    }
                    Some(ka) => {
                        let (c, cold) = s.take_container(&mut pool, fi, start, ka);
                        (c, cold, s.containers[c].pid)
                    }
                };
                let cgroup = s.containers[container].cgroup_id;
                s.spans[cpu].insert(start, (start + len, (cgroup, pid, ips)));
                s.containers[container].runs.push((start, start + len));
                s.acts.push(Act {
                    function: fi,
                    start,
                    end: start + len,
                    cpu,
                    ips,
                    container,
                    cold,
                });
                running.push(start + len);
            }
            if let Some(ka) = keep_alive {
                for c in pool {
                    let c = &mut s.containers[c];
                    let end = c.runs.last().map_or(c.created, |r| r.1);
                    c.removed = (end + ka < ms_total).then_some(end + ka);
                }
            }
        }
        s.functions = functions;
        for k in 0..system_cgroups {
            let created = rng.random_range(0..ms_total / 2);
            let removed =
                (created + rng.random_range(ms_total / 4..=ms_total / 2)).min(ms_total - 1);
            let id = SYSTEM_CGROUP_BASE + k as u64;
            s.scopes.push(SystemScope {
                cgroup_id: id,
                created,
                removed,
            });
            let mut ms = created + 1 + k as u64;
            while ms + SYSTEM_BURST_MS < removed {
                if let Some(cpu) = s.free_cpu(cpus, ms, ms + SYSTEM_BURST_MS, rng) {
                    let slot = (id, 60 + k as u32, SYSTEM_IPS);
                    s.spans[cpu].insert(ms, (ms + SYSTEM_BURST_MS, slot));
                }
                ms += SYSTEM_PERIOD_MS;
            }
        }
        for ms in (50..ms_total).step_by(100) {
            if let Some(cpu) = s.free_cpu(cpus, ms, ms + 2, rng) {
                s.spans[cpu].insert(ms, (ms + 2, (DAEMON_CGROUP, 50, DAEMON_IPS)));
            }
        }
        s.acts.sort_by_key(|a| (a.start, a.function));
        if keep_alive.is_none() {
            // The first activation of each function (in start order) is its container's cold
            // start.
            let mut first = vec![true; s.functions.len()];
            for a in &mut s.acts {
                a.cold = std::mem::replace(&mut first[a.function], false);
            }
        }
        s
    }

    /// The container of function `fi` an activation arriving at `start` runs in: the idle one
    /// freed last, else a new one (a cold start). Containers idle for `ka` or more by then are
    /// removed from `pool` (their removal instant is set).
    fn take_container(
        &mut self,
        pool: &mut Vec<usize>,
        fi: usize,
        start: u64,
        ka: u64,
    ) -> (usize, bool) {
        let last_end = |c: &Container| c.runs.last().map_or(c.created, |r| r.1);
        let containers = &mut self.containers;
        pool.retain(|&c| {
            let end = last_end(&containers[c]);
            let gone = end + ka <= start;
            if gone {
                containers[c].removed = Some(end + ka);
            }
            !gone
        });
        let idle = pool
            .iter()
            .copied()
            .filter(|&c| last_end(&containers[c]) <= start)
            .max_by_key(|&c| (last_end(&containers[c]), c));
        if let Some(c) = idle {
            return (c, false);
        }
        let c = containers.len();
        containers.push(Container {
            function: fi,
            cgroup_id: POOL_CGROUP_BASE + c as u64,
            serial: 0x5157_d000_0000 + c as u64,
            created: start,
            removed: None,
            pid: POOL_PID_BASE + c as u32,
            runs: Vec::new(),
        });
        pool.push(c);
        (c, true)
    }

    /// Each container's paused time (ms): from the end of each run to the next, and from the
    /// last to its removal or the trace's end. Zero without `--keep-alive` (never paused).
    pub fn paused_ms(&self, c: &Container) -> u64 {
        if self.keep_alive.is_none() {
            return 0;
        }
        let gaps: u64 = c.runs.windows(2).map(|w| w[1].0 - w[0].1).sum();
        let last = c.runs.last().map_or(c.created, |r| r.1);
        gaps + c.removed.unwrap_or(self.ms_total) - last
    }

    /// Every function container's cgroup events (ms, op, container), in time order: made at
    /// the start (or, with `--keep-alive`, at its cold start), frozen between runs, thawed and
    /// removed `keep_alive` after its last run.
    pub fn container_events(&self) -> Vec<(u64, CgroupOp, usize)> {
        let mut ev = Vec::new();
        for (ci, c) in self.containers.iter().enumerate() {
            ev.push((c.created, CgroupOp::Mkdir, ci));
            if self.keep_alive.is_none() {
                continue;
            }
            for w in c.runs.windows(2) {
                if w[0].1 < w[1].0 {
                    ev.push((w[0].1, CgroupOp::Freeze, ci));
                    ev.push((w[1].0, CgroupOp::Thaw, ci));
                }
            }
            if let Some(&(_, end)) = c.runs.last() {
                ev.push((end, CgroupOp::Freeze, ci));
            }
            if let Some(r) = c.removed {
                // Thawed as it goes, so no paused span is left open past its removal.
                ev.push((r, CgroupOp::Thaw, ci));
                ev.push((r, CgroupOp::Rmdir, ci));
            }
        }
        // Stable: a container's thaw stays before its rmdir.
        ev.sort_by_key(|e| e.0);
        ev
    }

    /// What CPU `cpu` runs in each millisecond of `[c0, c0 + out.len())`.
    pub fn fill(&self, cpu: usize, c0: u64, out: &mut [Slot]) {
        out.fill(IDLE_SLOT);
        let c1 = c0 + out.len() as u64;
        // Sorted, non-overlapping spans: their ends are sorted too, so walking back from the
        // last span starting before c1 visits exactly those that reach into the chunk.
        for (&a, &(b, slot)) in self.spans[cpu]
            .range(..c1)
            .rev()
            .take_while(|(_, &(b, _))| b > c0)
        {
            let (a, b) = (a.max(c0), b.min(c1));
            out[(a - c0) as usize..(b - c0) as usize].fill(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::functions::catalog;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    /// Ten minutes of 50 functions at 50 a second kept warm 10 s: the pool behaves as
    /// OpenWhisk's, and the arrivals come at the rate asked for.
    #[test]
    fn kept_alive_containers_follow_the_invoker_pool() {
        let (ms_total, ka) = (600_000, 10_000);
        let mut rng = StdRng::seed_from_u64(3);
        let s = Schedule::draw(
            ms_total,
            8,
            1,
            0,
            catalog(50, Some(50.0)),
            Some(ka),
            &mut rng,
        );
        // Poisson: 4 standard deviations (a few runs are cut at the end).
        let n = s.acts.len() as f64;
        let want = 50.0 * ms_total as f64 / 1000.0;
        assert!((n - want).abs() < 4.0 * want.sqrt(), "{n} vs {want}");
        let seen: BTreeSet<usize> = s.acts.iter().map(|a| a.function).collect();
        assert_eq!(seen.len(), 50);

        let cold = s.acts.iter().filter(|a| a.cold).count();
        assert_eq!(cold, s.containers.len(), "a cold start is a container made");
        for (ci, c) in s.containers.iter().enumerate() {
            assert_eq!(c.created, c.runs[0].0, "made by its first run");
            assert!(
                c.runs.windows(2).all(|w| w[0].1 <= w[1].0),
                "one run at a time"
            );
            assert!(
                c.runs.windows(2).all(|w| w[1].0 < w[0].1 + ka),
                "never idle for the keep-alive between runs"
            );
            let last = c.runs.last().unwrap().1;
            assert_eq!(
                c.removed,
                (last + ka < ms_total).then_some(last + ka),
                "{ci}"
            );
            let busy: u64 = c.runs.iter().map(|r| r.1 - r.0).sum();
            let life = c.removed.unwrap_or(ms_total) - c.created;
            assert_eq!(s.paused_ms(c), life - busy, "paused whenever not running");
        }
        // A cold start only when every container of the function alive then is busy.
        for a in s.acts.iter().filter(|a| a.cold) {
            for (ci, c) in s.containers.iter().enumerate() {
                if c.function != a.function || ci == a.container || c.created > a.start {
                    continue;
                }
                let alive = c.removed.is_none_or(|r| r > a.start);
                let busy = c.runs.iter().any(|r| r.0 <= a.start && a.start < r.1);
                assert!(!alive || busy, "container {ci} was idle at {}", a.start);
            }
        }
        // Hundreds of containers alive at once is what a keep-alive of minutes gives; ten
        // seconds at this rate keeps several per popular function and one per rare one.
        let mut ev: Vec<(u64, i64)> = s
            .containers
            .iter()
            .flat_map(|c| {
                [(c.created, 1)]
                    .into_iter()
                    .chain(c.removed.map(|r| (r, -1)))
            })
            .collect();
        ev.sort_unstable();
        let peak = ev
            .iter()
            .scan(0, |n, e| {
                *n += e.1;
                Some(*n)
            })
            .max()
            .unwrap();
        assert!(peak >= 50, "{peak} alive at once");

        // The cgroup events pair up: frozen exactly the paused time, thawed before removal.
        let mut frozen: BTreeMap<usize, (Option<u64>, u64)> = BTreeMap::new();
        for (ms, op, ci) in s.container_events() {
            let f = frozen.entry(ci).or_default();
            match op {
                CgroupOp::Freeze => {
                    assert!(f.0.is_none());
                    f.0 = Some(ms);
                }
                CgroupOp::Thaw => f.1 += ms - f.0.take().unwrap(),
                CgroupOp::Rmdir => assert!(f.0.is_none(), "removed frozen"),
                _ => {}
            }
        }
        for (ci, (open, total)) in frozen {
            let c = &s.containers[ci];
            let total = total + open.map_or(0, |a| ms_total - a);
            assert_eq!(total, s.paused_ms(c), "{ci}");
        }
    }
}
