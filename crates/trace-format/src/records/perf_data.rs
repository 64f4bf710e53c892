use std::borrow::Cow;

use crate::codec::{Dec, DecodeResult};
use crate::records::Payload;
use crate::BlockKind;

/// Length of the fixed part in front of the raw bytes; a multiple of 8 so the perf records
/// that follow keep the 8-byte alignment the kernel gave them.
pub const PERF_DATA_HEADER_LEN: usize = 16;
/// Flag: the records were synthesized by the recorder (tasks and cgroups that existed at
/// start, as `perf record` does), not copied from a kernel ring.
pub const PERF_DATA_SYNTHESIZED: u32 = 1;

/// Bytes copied verbatim from one CPU's perf ring buffer: whole `perf_event_header` records,
/// to be decoded against the `perf_event_attr`s in the trace info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfData<'a> {
    pub cpu: u32,
    pub flags: u32,
    /// Position in the ring (the kernel's `data_tail`) where these bytes started. Consecutive
    /// blocks of one CPU continue each other; a jump means bytes were not copied.
    pub ring_offset: u64,
    pub data: Cow<'a, [u8]>,
}

impl PerfData<'_> {
    pub fn into_owned(self) -> PerfData<'static> {
        PerfData {
            cpu: self.cpu,
            flags: self.flags,
            ring_offset: self.ring_offset,
            data: Cow::Owned(self.data.into_owned()),
        }
    }

    /// Writes the 16-byte fixed part; the writer appends the raw bytes after it without
    /// copying them into an intermediate buffer.
    pub fn encode_header(cpu: u32, flags: u32, ring_offset: u64) -> [u8; PERF_DATA_HEADER_LEN] {
        let mut h = [0u8; PERF_DATA_HEADER_LEN];
        h[0..4].copy_from_slice(&cpu.to_le_bytes());
        h[4..8].copy_from_slice(&flags.to_le_bytes());
        h[8..16].copy_from_slice(&ring_offset.to_le_bytes());
        h
    }
}

impl<'a> PerfData<'a> {
    pub fn decode(payload: &'a [u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let cpu = d.u32("perf data cpu")?;
        let flags = d.u32("perf data flags")?;
        let ring_offset = d.u64("perf data ring offset")?;
        Ok(Self {
            cpu,
            flags,
            ring_offset,
            data: Cow::Borrowed(d.rest()),
        })
    }
}

impl Payload for PerfData<'_> {
    const KIND: BlockKind = BlockKind::PERF_DATA;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&Self::encode_header(self.cpu, self.flags, self.ring_offset));
        out.extend_from_slice(&self.data);
    }
}
