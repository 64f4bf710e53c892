//! The Powerful Serverless trace format (`.pws`): what `pws-record` writes and `pws-analyze`
//! reads. A file header, then self-delimiting, checksummed, optionally zstd-compressed
//! blocks, then an end block with totals and an index. `FORMAT.md` in this crate documents
//! every byte; this crate is its reference implementation.
//!
//! ```
//! use pws_trace::{records::ClockSync, records::ClockPair, Record, Trace, TraceWriter, WriterOptions};
//!
//! let mut w = TraceWriter::new(Vec::new(), WriterOptions::default())?;
//! w.write(&ClockSync { pairs: vec![ClockPair { monotonic_ns: 1, realtime_ns: 2, uncertainty_ns: 0 }] })?;
//! let bytes = w.finish(10)?;
//!
//! let trace = Trace::from_vec(bytes)?;
//! for block in trace.blocks() {
//!     if let Record::ClockSync(c) = block?.decode()? {
//!         assert_eq!(c.pairs[0].realtime_ns, 2);
//!     }
//! }
//! # Ok::<(), pws_trace::Error>(())
//! ```

mod codec;
mod error;
mod header;
mod kind;
pub mod perf;
mod reader;
pub mod records;
mod writer;

pub use codec::DecodeError;
pub use error::{Error, Result};
pub use header::{
    BlockHeader, FileHeader, BLOCK_ALIGN, BLOCK_FLAG_ZSTD, BLOCK_HEADER_LEN,
    BLOCK_PAYLOAD_FLAGS_MASK, BLOCK_SYNC, FILE_HEADER_LEN, FILE_MAGIC, FORMAT_MAJOR, FORMAT_MINOR,
    MAX_PAYLOAD_LEN,
};
pub use kind::BlockKind;
pub use reader::{
    Block, Blocks, Inflater, ReadOptions, ScanStatus, SkippedRegion, Trace, TraceIndex,
};
pub use records::{Payload, Record};
pub use writer::{Sink, TraceWriter, WriterOptions};
