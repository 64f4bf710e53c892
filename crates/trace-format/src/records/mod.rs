//! Typed payloads of the block kinds the format defines (1.0, cpu-stat since 1.1, gpu since 1.2,
//! perf-index since 1.3), one module each.
//!
//! Each payload type knows its [`BlockKind`] and encodes itself; [`Record::decode`] turns a
//! block's payload back into the type its kind names. Unknown kinds decode to
//! [`Record::Unknown`] so consumers can skip them.

mod activation;
mod cgroup;
mod clock_sync;
mod container;
mod cpu_stat;
mod end;
mod energy;
mod gpu;
mod perf_data;
mod perf_index;
mod statistics;
mod trace_info;

pub use activation::{ActivationRecord, ActivationSource, Activations, StartType};
pub use cgroup::{CgroupEvent, CgroupEvents, CgroupOp};
pub use clock_sync::{ClockPair, ClockSync};
pub use container::{ContainerEvent, ContainerEvents, ContainerOp};
pub use cpu_stat::{CpuStatBlock, CpuStatSample, CpuStatSeries, TimeAccounting, PROC_STAT_FIELDS};
pub use end::{EndBlock, IndexEntry, KindTotal, END_TRAILER_LEN, END_TRAILER_MAGIC};
pub use energy::{EnergyBlock, EnergyDomain, EnergySample, EnergySeries, EnergySource};
pub use gpu::{GpuBlock, GpuDeviceReads, GpuProcess, GpuProcessSample, GpuRead};
pub use perf_data::{PerfData, PERF_DATA_HEADER_LEN, PERF_DATA_SYNTHESIZED};
pub use perf_index::{PerfIndex, PerfIndexEntry, PERF_INDEX_NO_SIDE_BAND};
pub use statistics::{CpuStats, SourceStats, Statistics};
pub use trace_info::{
    CpuInfo, PerfEventId, PerfEventInfo, SourceInfo, SourceStatus, TraceInfo, CLOCK_MONOTONIC,
};

use crate::codec::DecodeError;
use crate::BlockKind;

/// A payload that is the content of one block kind.
pub trait Payload {
    const KIND: BlockKind;
    fn encode(&self, out: &mut Vec<u8>);
}

/// A decoded block payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    TraceInfo(Box<TraceInfo>),
    PerfData(PerfData<'a>),
    Energy(EnergyBlock),
    CgroupEvents(CgroupEvents),
    Activations(Activations),
    ContainerEvents(ContainerEvents),
    Statistics(Statistics),
    ClockSync(ClockSync),
    End(EndBlock),
    CpuStat(CpuStatBlock),
    Gpu(GpuBlock),
    PerfIndex(PerfIndex),
    /// A kind this reader does not know; skip it.
    Unknown(BlockKind),
}

impl<'a> Record<'a> {
    /// Decodes `payload` as the content of a `kind` block. Borrowed payloads stay borrowed
    /// where the type allows it (raw perf data), so mapped traces are not copied.
    pub fn decode(
        kind: BlockKind,
        payload: std::borrow::Cow<'a, [u8]>,
    ) -> Result<Self, DecodeError> {
        use std::borrow::Cow;
        if kind == BlockKind::PERF_DATA {
            return match payload {
                Cow::Borrowed(b) => PerfData::decode(b).map(Record::PerfData),
                Cow::Owned(mut v) => {
                    // Reuse the decompressed buffer rather than copy the ring bytes again.
                    let PerfData {
                        cpu,
                        flags,
                        ring_offset,
                        ..
                    } = PerfData::decode(&v)?;
                    v.drain(..PERF_DATA_HEADER_LEN);
                    Ok(Record::PerfData(PerfData {
                        cpu,
                        flags,
                        ring_offset,
                        data: Cow::Owned(v),
                    }))
                }
            };
        }
        let b: &[u8] = &payload;
        Ok(match kind {
            BlockKind::TRACE_INFO => Record::TraceInfo(Box::new(TraceInfo::decode(b)?)),
            BlockKind::ENERGY => Record::Energy(EnergyBlock::decode(b)?),
            BlockKind::CGROUP_EVENTS => Record::CgroupEvents(CgroupEvents::decode(b)?),
            BlockKind::ACTIVATIONS => Record::Activations(Activations::decode(b)?),
            BlockKind::CONTAINER_EVENTS => Record::ContainerEvents(ContainerEvents::decode(b)?),
            BlockKind::STATISTICS => Record::Statistics(Statistics::decode(b)?),
            BlockKind::CLOCK_SYNC => Record::ClockSync(ClockSync::decode(b)?),
            BlockKind::END => Record::End(EndBlock::decode(b)?),
            BlockKind::CPU_STAT => Record::CpuStat(CpuStatBlock::decode(b)?),
            BlockKind::GPU => Record::Gpu(GpuBlock::decode(b)?),
            BlockKind::PERF_INDEX => Record::PerfIndex(PerfIndex::decode(b)?),
            other => Record::Unknown(other),
        })
    }
}

/// Defines a one-byte code enum whose unknown values survive a round trip as `Other(code)`.
macro_rules! code_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal => $label:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)+
            /// A code this version does not define.
            Other(u8),
        }

        impl $name {
            pub fn code(self) -> u8 {
                match self {
                    $(Self::$variant => $code,)+
                    Self::Other(c) => c,
                }
            }

            pub fn from_code(c: u8) -> Self {
                match c {
                    $($code => Self::$variant,)+
                    other => Self::Other(other),
                }
            }

            /// The name FORMAT.md and every output use.
            pub fn label(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(Self::$variant => std::borrow::Cow::Borrowed($label),)+
                    Self::Other(c) => std::borrow::Cow::Owned(format!("unknown-{c}")),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.label())
            }
        }
    };
}
pub(crate) use code_enum;
