//! Readers of data recorded by other tools, turned into what the analyzer's models take.

pub mod detect;
pub mod hwpc;
pub mod hwpc_analysis;
pub mod perf_data;
