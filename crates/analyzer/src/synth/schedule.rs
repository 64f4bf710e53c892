//! What runs where, drawn before anything is written (the truth goes in the trace-info block,
//! which comes first): function activations by Poisson arrivals into one container per
//! function, a daemon that exists from the start, and `--system-cgroups` scopes created and
//! removed during the run that are busy but run no function.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::Rng;

/// A synthetic function: its container's cgroup, its pace and its arrivals.
pub struct Function {
    pub name: &'static str,
    pub cgroup_id: u64,
    /// Instructions per second while running, at full frequency.
    pub ips: f64,
    /// Arrivals per second (times the concurrency, so concurrent runs really happen).
    pub rate: f64,
    /// Run time range, ms.
    pub run_ms: (u64, u64),
}

pub const FUNCTIONS: [Function; 3] = [
    Function {
        name: "integer-loop",
        cgroup_id: 1001,
        ips: 3.0e9,
        rate: 12.0,
        run_ms: (5, 40),
    },
    Function {
        name: "memory-stream",
        cgroup_id: 1002,
        ips: 0.4e9,
        rate: 8.0,
        run_ms: (10, 60),
    },
    Function {
        name: "hash",
        cgroup_id: 1003,
        ips: 1.5e9,
        rate: 10.0,
        run_ms: (3, 30),
    },
];
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
}

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

    /// Function activations by Poisson arrivals, at most `concurrency` at once per container
    /// (a later one waits for the first to end), each on a CPU free for its whole run (dropped
    /// when none is, a full node); then the system scopes and the daemon, where a CPU is free.
    pub fn draw(
        ms_total: u64,
        cpus: usize,
        concurrency: usize,
        system_cgroups: usize,
        rng: &mut StdRng,
    ) -> Self {
        let mut s = Self {
            spans: vec![BTreeMap::new(); cpus],
            acts: Vec::new(),
            scopes: Vec::new(),
        };
        let concurrency = concurrency.max(1);
        for (fi, f) in FUNCTIONS.iter().enumerate() {
            let mut t = 0f64;
            // Ends of the runs in the container: a new one waits while `concurrency` run.
            let mut running: Vec<u64> = Vec::new();
            loop {
                t += -(1.0 - rng.random::<f64>()).ln() / (f.rate * concurrency as f64) * 1000.0;
                let mut start = t as u64 + 1;
                running.retain(|&e| e > start);
                if running.len() >= concurrency {
                    start = running.iter().copied().min().unwrap_or(start);
                    running.retain(|&e| e > start);
                }
                let len = rng.random_range(f.run_ms.0..=f.run_ms.1);
                let ips = f.ips * rng.random_range(1.0 - IPS_JITTER..=1.0 + IPS_JITTER);
                if start + len + 1 >= ms_total {
                    break;
                }
                if let Some(cpu) = s.free_cpu(cpus, start, start + len, rng) {
                    // Concurrent runs are threads of one process: one pid each.
                    let pid = 100 + 16 * fi as u32 + running.len() as u32;
                    s.spans[cpu].insert(start, (start + len, (f.cgroup_id, pid, ips)));
                    s.acts.push(Act {
                        function: fi,
                        start,
                        end: start + len,
                        cpu,
                        ips,
                    });
                    running.push(start + len);
                }
            }
        }
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
        s
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

/// The first activation of each function (in start order) is its container's cold start.
pub fn cold_starts(acts: &[Act]) -> Vec<bool> {
    let mut first = [true; FUNCTIONS.len()];
    acts.iter()
        .map(|a| std::mem::replace(&mut first[a.function], false))
        .collect()
}
