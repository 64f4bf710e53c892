//! Perf records of one CPU as pws-record's rings hold them: a `cpu-clock` leader sampled
//! `--freq` times a second with (unless `--counters none`) `instructions` and a
//! `context-switches` sampler in its group, every sample reading the group, with cgroup ids.

use pws_trace::perf::{read_format, sample};
use pws_trace::records::{PerfEventId, PerfEventInfo};

use super::schedule::{Slot, IDLE_SLOT};

const MS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Counters {
    /// cpu-clock, instructions and context-switches, as on a machine with a PMU.
    Default,
    /// CPU time only (cpu-clock and context-switches), as on VMs and most clouds.
    None,
}

/// Group members: 1 the leader (cpu-clock), 2 instructions, 3 context-switches.
fn members(c: Counters) -> &'static [u64] {
    match c {
        Counters::Default => &[1, 2, 3],
        Counters::None => &[1, 3],
    }
}

/// Event ids: CPU c has leader 100(c+1)+1, instructions 100(c+1)+2, context-switches 100(c+1)+3.
fn id(cpu: u32, member: u64) -> u64 {
    100 * u64::from(cpu + 1) + member
}

const SAMPLE_TYPE: u64 =
    sample::IDENTIFIER | sample::TID | sample::TIME | sample::READ | sample::CGROUP;

fn attr(type_: u32, config: u64) -> Vec<u8> {
    let mut a = vec![0u8; 64];
    a[0..4].copy_from_slice(&type_.to_le_bytes());
    a[4..8].copy_from_slice(&64u32.to_le_bytes());
    a[8..16].copy_from_slice(&config.to_le_bytes());
    a[24..32].copy_from_slice(&SAMPLE_TYPE.to_le_bytes());
    let rf = read_format::GROUP
        | read_format::ID
        | read_format::TOTAL_TIME_ENABLED
        | read_format::TOTAL_TIME_RUNNING;
    a[32..40].copy_from_slice(&rf.to_le_bytes());
    a[40..48].copy_from_slice(&(1u64 << 18).to_le_bytes()); // sample_id_all
    a
}

/// The trace-info description of the events on `cpus` CPUs.
pub fn events(cpus: u32, counters: Counters) -> Vec<PerfEventInfo> {
    let ev = |name: &str, pmu: &str, t: u32, config: u64, m: u64| PerfEventInfo {
        name: name.into(),
        pmu: pmu.into(),
        attr: attr(t, config),
        ids: (0..cpus)
            .map(|c| PerfEventId {
                cpu: c,
                id: id(c, m),
            })
            .collect(),
        format: String::new(),
    };
    members(counters)
        .iter()
        .map(|&m| match m {
            1 => ev("cpu-clock", "software", 1, 0, 1),
            2 => ev("instructions", "cpu", 0, 1, 2),
            _ => ev("context-switches", "software", 1, 3, 3),
        })
        .collect()
}

/// One CPU's counters and task, kept from one block to the next.
pub struct Encoder {
    pub cpu: u32,
    members: &'static [u64],
    /// The timer's period and how many periods make a millisecond.
    period_ns: u64,
    ticks_per_ms: u64,
    /// Ring bytes written before this chunk (the block's `ring_offset`).
    pub ring_offset: u64,
    clock_ns: u64,
    instructions: f64,
    switches: u64,
    current: Slot,
    pub samples: u64,
}

impl Encoder {
    pub fn new(cpu: u32, freq: u32, counters: Counters) -> Self {
        let ticks_per_ms = u64::from(freq / 1000);
        Self {
            cpu,
            members: members(counters),
            period_ns: MS / ticks_per_ms,
            ticks_per_ms,
            ring_offset: 0,
            clock_ns: 0,
            instructions: 0.0,
            switches: 0,
            current: IDLE_SLOT,
            samples: 0,
        }
    }

    /// One millisecond starting at `t` running `slot` at frequency `f`: a switch sample first
    /// if the task changes (it reads the counters of the task that leaves), then the counters
    /// advance and a timer sample ends each period.
    pub fn run_ms(&mut self, buf: &mut Vec<u8>, t: u64, slot: Slot, f: f64) {
        if slot.1 != self.current.1 || slot.0 != self.current.0 {
            self.switches += 1;
            let (cg, pid, _) = self.current;
            self.sample(buf, t, 3, pid, cg);
            self.current = slot;
        }
        let per_tick = slot.2 * f * 1e-3 / self.ticks_per_ms as f64;
        for k in 1..=self.ticks_per_ms {
            self.clock_ns += self.period_ns;
            self.instructions += per_tick;
            self.sample(buf, t + k * self.period_ns, 1, slot.1, slot.0);
        }
    }

    /// Appends one sample to `buf`: header, identifier, pid/tid, time, the group read (nr,
    /// time enabled, time running, then (value, id) per member), cgroup.
    fn sample(&mut self, buf: &mut Vec<u8>, t: u64, member: u64, pid: u32, cgroup: u64) {
        let cpu = self.cpu;
        let n = self.members.len() as u64;
        let words = 8 + 2 * n;
        let size = 8 * words;
        let mut w: Vec<u64> = Vec::with_capacity(words as usize);
        w.push(u64::from(pws_trace::perf::PERF_RECORD_SAMPLE) | size << 48);
        w.push(id(cpu, member));
        w.push(u64::from(pid) | u64::from(pid) << 32);
        w.push(t);
        w.extend([n, self.clock_ns, self.clock_ns]);
        for &m in self.members {
            let v = match m {
                1 => self.clock_ns,
                2 => self.instructions.round() as u64,
                _ => self.switches,
            };
            w.extend([v, id(cpu, m)]);
        }
        w.push(if pid == 0 { 1 } else { cgroup });
        let at = buf.len();
        buf.resize(at + size as usize, 0);
        for (dst, x) in buf[at..].chunks_exact_mut(8).zip(w) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
        self.samples += 1;
    }
}
