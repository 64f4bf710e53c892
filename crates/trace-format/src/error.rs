use std::io;
use std::path::PathBuf;

use crate::BlockKind;

/// Everything that can go wrong writing or reading a trace. Every variant about a block names
/// the byte offset of the block's header and, where the header could be trusted, its kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing the trace failed after {offset} bytes")]
    Write {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("the writer already failed or finished; nothing more can be written")]
    WriterClosed,
    #[error("block payload of {len} bytes exceeds the format's limit of {max} bytes")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("zstd compression failed: {0}")]
    Compress(#[source] io::Error),

    #[error("not a pws trace: {0}")]
    NotATrace(String),
    #[error(
        "trace format {major}.{minor} is not supported (this reader reads {}.x)",
        crate::FORMAT_MAJOR
    )]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("the trace needs format features this reader lacks (incompatible flags {0:#010x})")]
    IncompatibleFlags(u32),

    #[error("corrupt block header at byte offset {offset}: {reason}")]
    CorruptBlockHeader { offset: u64, reason: String },
    #[error("{kind} block at byte offset {offset}: CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    BadCrc {
        offset: u64,
        kind: BlockKind,
        stored: u32,
        computed: u32,
    },
    #[error("{kind} block at byte offset {offset}: impossible length: {reason}")]
    ImpossibleLength {
        offset: u64,
        kind: BlockKind,
        reason: String,
    },
    #[error("{kind} block at byte offset {offset}: {reason}")]
    BadPayload {
        offset: u64,
        kind: BlockKind,
        reason: String,
    },
    #[error("no block starts at byte offset {0}")]
    NoBlockAt(u64),
}

impl Error {
    /// The byte offset of the block an error is about, if it is about one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::CorruptBlockHeader { offset, .. }
            | Error::BadCrc { offset, .. }
            | Error::ImpossibleLength { offset, .. }
            | Error::BadPayload { offset, .. }
            | Error::NoBlockAt(offset) => Some(*offset),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
