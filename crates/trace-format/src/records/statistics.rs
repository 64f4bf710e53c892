use crate::codec::{put_records, Dec, DecodeResult, Put};
use crate::records::Payload;
use crate::BlockKind;

/// Recorder counters, cumulative since the start: a later statistics block supersedes an
/// earlier one, so a killed recorder still leaves its last known figures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Statistics {
    pub ts_ns: u64,
    pub cpus: Vec<CpuStats>,
    pub sources: Vec<SourceStats>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuStats {
    pub cpu: u32,
    /// Bytes copied out of this CPU's ring.
    pub bytes: u64,
    /// PERF_RECORD_LOST records seen, and the records they say were lost.
    pub lost_events: u64,
    pub lost_records: u64,
    /// PERF_RECORD_THROTTLE / UNTHROTTLE records seen.
    pub throttled: u64,
    pub unthrottled: u64,
    pub wakeups: u64,
}

/// Reads and errors of a non-perf source (an energy counter, an activation feed, …).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceStats {
    pub name: String,
    pub reads: u64,
    pub errors: u64,
    pub last_error: String,
}

impl Payload for Statistics {
    const KIND: BlockKind = BlockKind::STATISTICS;

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.ts_ns);
        put_records(out, &self.cpus, |b, c| {
            b.put_varint(c.cpu.into());
            b.put_varint(c.bytes);
            b.put_varint(c.lost_events);
            b.put_varint(c.lost_records);
            b.put_varint(c.throttled);
            b.put_varint(c.unthrottled);
            b.put_varint(c.wakeups);
        });
        put_records(out, &self.sources, |b, s| {
            b.put_str(&s.name);
            b.put_varint(s.reads);
            b.put_varint(s.errors);
            b.put_str(&s.last_error);
        });
    }
}

impl Statistics {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let ts_ns = d.u64("statistics time")?;
        let cpus = d.records("cpu statistics", |r| {
            Ok(CpuStats {
                cpu: r.varint_u32("cpu")?,
                bytes: r.varint("bytes")?,
                lost_events: r.varint("lost events")?,
                lost_records: r.varint("lost records")?,
                throttled: r.varint("throttled")?,
                unthrottled: r.varint("unthrottled")?,
                wakeups: r.varint("wakeups")?,
            })
        })?;
        let sources = d.records("source statistics", |r| {
            Ok(SourceStats {
                name: r.string("source name")?,
                reads: r.varint("reads")?,
                errors: r.varint("errors")?,
                last_error: r.string("last error")?,
            })
        })?;
        Ok(Self {
            ts_ns,
            cpus,
            sources,
        })
    }

    pub fn lost_records(&self) -> u64 {
        self.cpus.iter().map(|c| c.lost_records).sum()
    }
}
