use crate::codec::{Dec, DecodeResult, Put};
use crate::records::Payload;
use crate::BlockKind;

/// Set in [`PerfIndexEntry::flags`] when the writer read every record of the block and found
/// no side band in it: no tracepoint sample and no `PERF_RECORD_CGROUP`. A reader that only
/// wants the side band can skip such a block without inflating it.
pub const PERF_INDEX_NO_SIDE_BAND: u32 = 1;

/// Where perf-data blocks are, which CPU's ring each copies, and what is in them: what a
/// reader would otherwise learn only by inflating each block (its CPU is in its payload).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PerfIndex {
    pub entries: Vec<PerfIndexEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerfIndexEntry {
    /// The perf-data block's byte offset in the file.
    pub offset: u64,
    /// Its payload's `cpu`.
    pub cpu: u32,
    /// [`PERF_INDEX_NO_SIDE_BAND`]; other bits reserved (written 0, ignored when read).
    pub flags: u32,
}

impl PerfIndexEntry {
    /// The writer checked the block: no tracepoint sample, no cgroup record.
    pub fn no_side_band(&self) -> bool {
        self.flags & PERF_INDEX_NO_SIDE_BAND != 0
    }
}

impl Payload for PerfIndex {
    const KIND: BlockKind = BlockKind::PERF_INDEX;

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.entries.len() as u64);
        for e in &self.entries {
            out.put_u64(e.offset);
            out.put_u32(e.cpu);
            out.put_u32(e.flags);
        }
    }
}

impl PerfIndex {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let n = d.count("perf index entries", 16)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(PerfIndexEntry {
                offset: d.u64("block offset")?,
                cpu: d.u32("cpu")?,
                flags: d.u32("flags")?,
            });
        }
        Ok(Self { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_a_short_payload_is_an_error() {
        let ix = PerfIndex {
            entries: vec![
                PerfIndexEntry {
                    offset: 24,
                    cpu: 3,
                    flags: PERF_INDEX_NO_SIDE_BAND,
                },
                PerfIndexEntry {
                    offset: 1 << 40,
                    cpu: 0,
                    flags: 0,
                },
            ],
        };
        let mut p = Vec::new();
        ix.encode(&mut p);
        let back = PerfIndex::decode(&p).unwrap();
        assert_eq!(back, ix);
        assert!(back.entries[0].no_side_band() && !back.entries[1].no_side_band());
        assert!(PerfIndex::decode(&p[..p.len() - 1]).is_err());
    }
}
