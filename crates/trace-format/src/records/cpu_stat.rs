use crate::codec::{put_records, Dec, DecodeResult, Put};
use crate::records::{code_enum, Payload};
use crate::BlockKind;

code_enum! {
    /// Whether the kernel keeps a kind of time (IRQ, steal) out of the tasks' CPU time, as its
    /// build says (`CONFIG_IRQ_TIME_ACCOUNTING`, `CONFIG_PARAVIRT_TIME_ACCOUNTING`).
    TimeAccounting {
        Unknown = 0 => "unknown",
        /// Accounted apart, in nanoseconds: left out of tasks' and cgroups' CPU time.
        Apart = 1 => "apart",
        /// Not accounted apart: the tasks' CPU time includes it, and /proc/stat's value is
        /// tick samples (or 0).
        Included = 2 => "included",
    }
}

/// The names of /proc/stat's per-CPU values, in its order (proc(5)); a kernel may give fewer
/// (older ones) or more (later ones), and a block names the ones it holds.
pub const PROC_STAT_FIELDS: [&str; 10] = [
    "user",
    "nice",
    "system",
    "idle",
    "iowait",
    "irq",
    "softirq",
    "steal",
    "guest",
    "guest_nice",
];

/// One reading of one CPU's cumulative times, in ticks (`ticks_per_s` of the block).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuStatSample {
    pub ts_ns: u64,
    /// One value per field of the block, in its order.
    pub values: Vec<u64>,
}

/// One CPU's readings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuStatSeries {
    pub cpu: u32,
    pub samples: Vec<CpuStatSample>,
}

/// The payload of a cpu-stat block: per-CPU cumulative times from /proc/stat, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuStatBlock {
    /// Ticks per second of the values (`sysconf(_SC_CLK_TCK)`, USER_HZ).
    pub ticks_per_s: u64,
    /// How the kernel accounts IRQ (irq, softirq) time, and steal time.
    pub irq_time: TimeAccounting,
    pub steal_time: TimeAccounting,
    /// Names of the values of every sample, in order ("user", "nice", … "steal", …).
    pub fields: Vec<String>,
    pub cpus: Vec<CpuStatSeries>,
}

impl Default for CpuStatBlock {
    fn default() -> Self {
        Self {
            ticks_per_s: 0,
            irq_time: TimeAccounting::Unknown,
            steal_time: TimeAccounting::Unknown,
            fields: Vec::new(),
            cpus: Vec::new(),
        }
    }
}

impl CpuStatBlock {
    /// Position of a field by name.
    pub fn field(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == name)
    }

    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let ticks_per_s = d.varint("cpu-stat ticks per second")?;
        let irq_time = TimeAccounting::from_code(d.u8("cpu-stat irq accounting")?);
        let steal_time = TimeAccounting::from_code(d.u8("cpu-stat steal accounting")?);
        let n = d.count("cpu-stat fields", 1)?;
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            fields.push(d.string("cpu-stat field name")?);
        }
        let cpus = d.records("cpu-stat series", |r| {
            let cpu = r.varint_u32("cpu-stat cpu")?;
            let count = r.count("cpu-stat samples", 1 + n)?;
            let mut samples = Vec::with_capacity(count);
            let mut ts = 0u64;
            let mut values = vec![0u64; n];
            for _ in 0..count {
                ts = ts.wrapping_add(r.varint("cpu-stat timestamp")?);
                for v in values.iter_mut() {
                    *v = v.wrapping_add(r.svarint("cpu-stat value")? as u64);
                }
                samples.push(CpuStatSample {
                    ts_ns: ts,
                    values: values.clone(),
                });
            }
            Ok(CpuStatSeries { cpu, samples })
        })?;
        Ok(Self {
            ticks_per_s,
            irq_time,
            steal_time,
            fields,
            cpus,
        })
    }
}

impl Payload for CpuStatBlock {
    const KIND: BlockKind = BlockKind::CPU_STAT;

    /// Samples with fewer values than the block has fields are written with 0 for the missing
    /// ones, and extra values are left out: every sample holds exactly one value per field.
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.ticks_per_s);
        out.put_u8(self.irq_time.code());
        out.put_u8(self.steal_time.code());
        out.put_varint(self.fields.len() as u64);
        for f in &self.fields {
            out.put_str(f);
        }
        let n = self.fields.len();
        put_records(out, &self.cpus, |b, s| {
            b.put_varint(s.cpu.into());
            b.put_varint(s.samples.len() as u64);
            // Deltas from the previous sample: values move by a few ticks per reading.
            let mut ts = 0u64;
            let mut prev = vec![0u64; n];
            for x in &s.samples {
                b.put_varint(x.ts_ns.wrapping_sub(ts));
                ts = x.ts_ns;
                for (k, p) in prev.iter_mut().enumerate() {
                    let v = x.values.get(k).copied().unwrap_or(0);
                    b.put_svarint(v.wrapping_sub(*p) as i64);
                    *p = v;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_counters_that_go_back() {
        // iowait may decrease in /proc/stat (a known kernel quirk): deltas are signed.
        let b = CpuStatBlock {
            ticks_per_s: 100,
            irq_time: TimeAccounting::Included,
            steal_time: TimeAccounting::Other(9),
            fields: vec!["iowait".into(), "steal".into()],
            cpus: vec![
                CpuStatSeries {
                    cpu: 3,
                    samples: vec![
                        CpuStatSample {
                            ts_ns: 1_000,
                            values: vec![50, 7],
                        },
                        CpuStatSample {
                            ts_ns: 101_000,
                            values: vec![49, u64::MAX],
                        },
                    ],
                },
                CpuStatSeries::default(),
            ],
        };
        let mut p = Vec::new();
        b.encode(&mut p);
        assert_eq!(CpuStatBlock::decode(&p).unwrap(), b);
        assert_eq!(b.field("steal"), Some(1));
        // A sample with a value short is written with 0 for it.
        let short = CpuStatBlock {
            cpus: vec![CpuStatSeries {
                cpu: 0,
                samples: vec![CpuStatSample {
                    ts_ns: 5,
                    values: vec![1],
                }],
            }],
            ..b.clone()
        };
        let mut p = Vec::new();
        short.encode(&mut p);
        let back = CpuStatBlock::decode(&p).unwrap();
        assert_eq!(back.cpus[0].samples[0].values, [1, 0]);
        // Cut anywhere, it is an error, never a panic.
        for cut in 0..p.len() {
            let _ = CpuStatBlock::decode(&p[..cut]);
        }
        assert!(CpuStatBlock::decode(&p[..p.len() - 1]).is_err());
    }
}
