use crate::codec::{put_records, Dec, DecodeResult, Put};
use crate::records::{code_enum, Payload};
use crate::BlockKind;

code_enum! {
    /// Where energy readings come from. `Simulated` is never a measurement, and every output
    /// derived from it says so.
    EnergySource {
        PerfPowerPmu = 1 => "perf-power",
        Powercap = 2 => "powercap",
        Msr = 3 => "msr",
        Nvml = 4 => "nvml",
        Simulated = 5 => "simulated",
    }
}

impl EnergySource {
    /// True for every source that reads a real counter.
    pub fn is_measured(self) -> bool {
        !matches!(self, Self::Simulated | Self::Other(_))
    }
}

code_enum! {
    /// The part of the machine an energy counter covers (RAPL's domains, plus GPUs).
    EnergyDomain {
        Package = 1 => "package",
        Dram = 2 => "dram",
        Cores = 3 => "cores",
        Uncore = 4 => "uncore",
        Psys = 5 => "psys",
        Gpu = 6 => "gpu",
    }
}

/// One reading: a timestamp on the trace clock and the counter's raw value, unconverted and
/// not unwrapped (the analyzer does both, so the trace keeps the raw truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnergySample {
    pub ts_ns: u64,
    pub raw: u64,
}

/// Readings of one counter.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergySeries {
    pub source: EnergySource,
    pub domain: EnergyDomain,
    /// Package (socket) or device index.
    pub index: u32,
    /// The counter's own name (`energy-pkg`, `intel-rapl:0`, `MSR_PKG_ENERGY_STATUS`, …).
    pub name: String,
    /// Joules per raw unit.
    pub unit_joules: f64,
    /// The counter wraps to 0 when it reaches this value (`max_energy_range_uj` + 1, 2^32 for
    /// MSRs); 0 when it does not wrap or the range is unknown.
    pub wrap: u64,
    pub samples: Vec<EnergySample>,
}

/// The payload of an energy block: one or more series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnergyBlock {
    pub series: Vec<EnergySeries>,
}

impl Payload for EnergyBlock {
    const KIND: BlockKind = BlockKind::ENERGY;

    fn encode(&self, out: &mut Vec<u8>) {
        put_records(out, &self.series, |b, s| {
            b.put_u8(s.source.code());
            b.put_u8(s.domain.code());
            b.put_varint(s.index.into());
            b.put_str(&s.name);
            b.put_f64(s.unit_joules);
            b.put_varint(s.wrap);
            b.put_varint(s.samples.len() as u64);
            // Deltas: readings are close in time and value, so most take 2–4 bytes.
            // Wrapping arithmetic makes any sequence of u64s round-trip, wraps included.
            let (mut ts, mut raw) = (0u64, 0u64);
            for x in &s.samples {
                b.put_varint(x.ts_ns.wrapping_sub(ts));
                b.put_svarint(x.raw.wrapping_sub(raw) as i64);
                ts = x.ts_ns;
                raw = x.raw;
            }
        });
    }
}

impl EnergySeries {
    /// Raw units counted between two readings of a counter that wraps at `wrap`: the
    /// non-negative difference modulo `wrap` (one wrap at most between readings), or the plain
    /// difference for a counter that does not wrap.
    pub fn raw_delta(wrap: u64, prev: u64, next: u64) -> u64 {
        if wrap == 0 || next >= prev {
            next.wrapping_sub(prev)
        } else {
            // Compute (wrap - prev) + next without overflowing when wrap is 2^64-ish.
            (wrap - prev.min(wrap)).wrapping_add(next)
        }
    }
}

impl EnergyBlock {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let series = d.records("energy series", |r| {
            let source = EnergySource::from_code(r.u8("energy source")?);
            let domain = EnergyDomain::from_code(r.u8("energy domain")?);
            let index = r.varint_u32("energy index")?;
            let name = r.string("energy counter name")?;
            let unit_joules = r.f64("energy unit")?;
            let wrap = r.varint("energy wrap")?;
            let n = r.count("energy samples", 2)?;
            let mut samples = Vec::with_capacity(n);
            let (mut ts, mut raw) = (0u64, 0u64);
            for _ in 0..n {
                ts = ts.wrapping_add(r.varint("energy timestamp")?);
                raw = raw.wrapping_add(r.svarint("energy value")? as u64);
                samples.push(EnergySample { ts_ns: ts, raw });
            }
            Ok(EnergySeries {
                source,
                domain,
                index,
                name,
                unit_joules,
                wrap,
                samples,
            })
        })?;
        Ok(Self { series })
    }
}
