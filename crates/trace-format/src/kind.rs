use std::fmt;

/// A block's kind. Kinds this reader does not know are kept as numbers and skipped by
/// consumers: that is how the format stays forward compatible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockKind(pub u16);

impl BlockKind {
    pub const TRACE_INFO: BlockKind = BlockKind(1);
    pub const PERF_DATA: BlockKind = BlockKind(2);
    pub const ENERGY: BlockKind = BlockKind(3);
    pub const CGROUP_EVENTS: BlockKind = BlockKind(4);
    pub const ACTIVATIONS: BlockKind = BlockKind(5);
    pub const CONTAINER_EVENTS: BlockKind = BlockKind(6);
    pub const STATISTICS: BlockKind = BlockKind(7);
    pub const CLOCK_SYNC: BlockKind = BlockKind(8);
    pub const END: BlockKind = BlockKind(9);
    /// Since 1.1.
    pub const CPU_STAT: BlockKind = BlockKind(10);
    /// Since 1.2.
    pub const GPU: BlockKind = BlockKind(11);
    /// Since 1.3.
    pub const PERF_INDEX: BlockKind = BlockKind(12);

    /// Every kind this version defines, in numeric order.
    pub const KNOWN: [BlockKind; 12] = [
        Self::TRACE_INFO,
        Self::PERF_DATA,
        Self::ENERGY,
        Self::CGROUP_EVENTS,
        Self::ACTIVATIONS,
        Self::CONTAINER_EVENTS,
        Self::STATISTICS,
        Self::CLOCK_SYNC,
        Self::END,
        Self::CPU_STAT,
        Self::GPU,
        Self::PERF_INDEX,
    ];

    /// The kind's name as FORMAT.md and the tools print it, or `None` for an unknown kind.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::TRACE_INFO => "trace-info",
            Self::PERF_DATA => "perf-data",
            Self::ENERGY => "energy",
            Self::CGROUP_EVENTS => "cgroup-events",
            Self::ACTIVATIONS => "activations",
            Self::CONTAINER_EVENTS => "container-events",
            Self::STATISTICS => "statistics",
            Self::CLOCK_SYNC => "clock-sync",
            Self::END => "end",
            Self::CPU_STAT => "cpu-stat",
            Self::GPU => "gpu",
            Self::PERF_INDEX => "perf-index",
            _ => return None,
        })
    }

    pub fn is_known(self) -> bool {
        self.name().is_some()
    }
}

impl fmt::Display for BlockKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown-kind-{}", self.0),
        }
    }
}
