use crate::codec::{Dec, DecodeResult, Put};
use crate::records::Payload;
use crate::BlockKind;

/// A CLOCK_MONOTONIC instant and the CLOCK_REALTIME reading taken at it: how trace times
/// become UTC, and how traces of different hosts are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockPair {
    pub monotonic_ns: u64,
    pub realtime_ns: u64,
    /// Half the time between the two monotonic reads that bracket the realtime read.
    pub uncertainty_ns: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClockSync {
    pub pairs: Vec<ClockPair>,
}

impl Payload for ClockSync {
    const KIND: BlockKind = BlockKind::CLOCK_SYNC;

    fn encode(&self, out: &mut Vec<u8>) {
        out.put_varint(self.pairs.len() as u64);
        for p in &self.pairs {
            out.put_u64(p.monotonic_ns);
            out.put_u64(p.realtime_ns);
            out.put_u32(p.uncertainty_ns);
        }
    }
}

impl ClockSync {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let n = d.count("clock pairs", 20)?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push(ClockPair {
                monotonic_ns: d.u64("monotonic")?,
                realtime_ns: d.u64("realtime")?,
                uncertainty_ns: d.u32("uncertainty")?,
            });
        }
        Ok(Self { pairs })
    }
}
