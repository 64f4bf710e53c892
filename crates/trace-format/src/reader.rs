//! Trace reader over a memory-mapped (or in-memory) trace.
//!
//! It validates the file header, walks the blocks, checks every CRC, and tells a torn tail
//! (what a killed writer leaves) from corruption in the middle (an error naming the offset and
//! the kind, or, with [`ReadOptions::skip_bad_blocks`], a skipped region). It never panics and
//! allocates at most one decompressed block (≤ 64 MiB) at a time beyond what it returns.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::header::{
    BlockHeader, FileHeader, BLOCK_ALIGN, BLOCK_FLAG_ZSTD, BLOCK_HEADER_LEN,
    BLOCK_PAYLOAD_FLAGS_MASK, BLOCK_SYNC, KNOWN_BLOCK_FLAGS,
};
use crate::records::{EndBlock, IndexEntry, Record, END_TRAILER_LEN, END_TRAILER_MAGIC};
use crate::{BlockKind, Error, Result};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Skip blocks whose CRC or header is bad (and resynchronise on the next valid block
    /// header) instead of stopping with an error. What was skipped is in [`ScanStatus`].
    pub skip_bad_blocks: bool,
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

/// An open trace.
pub struct Trace {
    bytes: Bytes,
    header: FileHeader,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("path", &self.path)
            .field("len", &self.data().len())
            .field("header", &self.header)
            .finish()
    }
}

impl Trace {
    /// Maps the trace at `path` and validates its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let file = File::open(path).map_err(err)?;
        let len = file.metadata().map_err(err)?.len();
        // An empty file cannot be mapped; it is simply not a trace.
        let bytes = if len == 0 {
            Bytes::Owned(Vec::new())
        } else {
            // SAFETY: the map is read-only and private to this process. A trace being
            // appended to by a live recorder is fine: we only read the length mapped now.
            // Truncating the file under a reader would fault it, as with every mmap reader.
            Bytes::Mapped(unsafe { memmap2::Mmap::map(&file) }.map_err(err)?)
        };
        let mut t = Self::from_bytes(bytes)?;
        t.path = Some(path.to_owned());
        Ok(t)
    }

    /// A trace held in memory (tests, network buffers).
    pub fn from_vec(data: Vec<u8>) -> Result<Self> {
        Self::from_bytes(Bytes::Owned(data))
    }

    fn from_bytes(bytes: Bytes) -> Result<Self> {
        let data: &[u8] = match &bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        };
        let header = FileHeader::decode(data)?;
        Ok(Self {
            bytes,
            header,
            path: None,
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn header(&self) -> FileHeader {
        self.header
    }

    /// The whole file.
    pub fn data(&self) -> &[u8] {
        match &self.bytes {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }

    /// Iterates over the blocks in file order, stopping at the first bad block with an error.
    pub fn blocks(&self) -> Blocks<'_> {
        self.blocks_with(ReadOptions::default())
    }

    pub fn blocks_with(&self, opts: ReadOptions) -> Blocks<'_> {
        Blocks {
            data: self.data(),
            pos: self.header.header_len as usize,
            opts,
            done: false,
            status: ScanStatus::default(),
        }
    }

    /// The block whose header starts at `offset`, with its CRC checked.
    pub fn block_at(&self, offset: u64) -> Result<Block<'_>> {
        let data = self.data();
        let pos = usize::try_from(offset).map_err(|_| Error::NoBlockAt(offset))?;
        if pos < self.header.header_len as usize || pos % BLOCK_ALIGN != 0 || pos >= data.len() {
            return Err(Error::NoBlockAt(offset));
        }
        match parse_block(data, pos) {
            Step::Block(b, _) => Ok(b),
            Step::Torn => Err(Error::NoBlockAt(offset)),
            Step::Bad { error, .. } => Err(error),
        }
    }

    /// Every block's offset and kind: from the end block when the trace was finished and its
    /// index checks out, else by scanning (a trace whose recorder was killed).
    pub fn index(&self) -> Result<TraceIndex> {
        self.index_with(ReadOptions::default())
    }

    pub fn index_with(&self, opts: ReadOptions) -> Result<TraceIndex> {
        if let Some(end) = self.end_block() {
            return Ok(TraceIndex {
                entries: end.index.clone(),
                end: Some(end),
                status: None,
            });
        }
        let mut blocks = self.blocks_with(opts);
        let mut entries = Vec::new();
        let mut end = None;
        for b in blocks.by_ref() {
            let b = b?;
            if b.kind() == BlockKind::END {
                end = b.decode().ok().and_then(|r| match r {
                    Record::End(e) => Some(e),
                    _ => None,
                });
            } else {
                entries.push(IndexEntry {
                    offset: b.offset,
                    kind: b.kind(),
                });
            }
        }
        Ok(TraceIndex {
            entries,
            end,
            status: Some(blocks.status),
        })
    }

    /// The end block found through the trailer, if the trace is finished and it is sound.
    pub fn end_block(&self) -> Option<EndBlock> {
        let data = self.data();
        let len = data.len();
        if len < self.header.header_len as usize + BLOCK_HEADER_LEN + END_TRAILER_LEN {
            return None;
        }
        if data[len - 8..] != END_TRAILER_MAGIC {
            return None;
        }
        let mut off = [0u8; 8];
        off.copy_from_slice(&data[len - 16..len - 8]);
        let offset = u64::from_le_bytes(off);
        let block = self.block_at(offset).ok()?;
        if block.kind() != BlockKind::END
            || block.header.flags & BLOCK_PAYLOAD_FLAGS_MASK != 0
            || block.offset + block.total_len() != len as u64
        {
            return None;
        }
        let Ok(Record::End(end)) = block.decode() else {
            return None;
        };
        // The index must point at block headers, in increasing order, before the end block.
        let mut prev = None;
        for e in &end.index {
            let p = e.offset as usize;
            if prev.is_some_and(|q| q >= e.offset)
                || e.offset >= offset
                || p % BLOCK_ALIGN != 0
                || BlockHeader::decode(&data[p..]).map(|h| h.kind) != Some(e.kind)
            {
                return None;
            }
            prev = Some(e.offset);
        }
        (end.self_offset == offset).then_some(end)
    }
}

/// Block offsets of a trace, and how they were found.
#[derive(Debug, Clone)]
pub struct TraceIndex {
    pub entries: Vec<IndexEntry>,
    pub end: Option<EndBlock>,
    /// What a scan found (torn tail, skipped regions); `None` when the end block's index was used.
    pub status: Option<ScanStatus>,
}

/// One block, borrowed from the trace.
#[derive(Debug, Clone, Copy)]
pub struct Block<'a> {
    /// Byte offset of the block header in the file.
    pub offset: u64,
    pub header: BlockHeader,
    stored: &'a [u8],
}

impl<'a> Block<'a> {
    pub fn kind(&self) -> BlockKind {
        self.header.kind
    }

    pub fn is_compressed(&self) -> bool {
        self.header.flags & BLOCK_FLAG_ZSTD != 0
    }

    /// Bytes the block takes in the file.
    pub fn total_len(&self) -> u64 {
        self.header.total_len()
    }

    /// The payload as stored (compressed if the block is).
    pub fn stored(&self) -> &'a [u8] {
        self.stored
    }

    fn bad(&self, reason: String) -> Error {
        Error::BadPayload {
            offset: self.offset,
            kind: self.kind(),
            reason,
        }
    }

    /// The payload, decompressed if needed: borrowed from the map when stored raw.
    pub fn payload(&self) -> Result<Cow<'a, [u8]>> {
        let unknown = self.header.flags & BLOCK_PAYLOAD_FLAGS_MASK & !KNOWN_BLOCK_FLAGS;
        if unknown != 0 {
            return Err(self.bad(format!("unknown block flags {unknown:#06x}")));
        }
        if !self.is_compressed() {
            return Ok(Cow::Borrowed(self.stored));
        }
        let raw_len = self.header.raw_len as usize;
        // The capacity bounds the allocation: zstd fails rather than grow past it.
        let out = zstd::bulk::decompress(self.stored, raw_len)
            .map_err(|e| self.bad(format!("zstd decompression failed: {e}")))?;
        if out.len() != raw_len {
            return Err(self.bad(format!(
                "decompressed to {} bytes, header says {raw_len}",
                out.len()
            )));
        }
        Ok(Cow::Owned(out))
    }

    /// At most the first `n` bytes of the payload, decompressing only as far as needed: enough
    /// to read a perf-data block's CPU without inflating the whole block.
    pub fn payload_prefix(&self, n: usize) -> Result<Cow<'a, [u8]>> {
        if !self.is_compressed() {
            return self.payload().map(|p| match p {
                Cow::Borrowed(b) => Cow::Borrowed(&b[..n.min(b.len())]),
                Cow::Owned(mut v) => {
                    v.truncate(n);
                    Cow::Owned(v)
                }
            });
        }
        use std::io::Read;
        let want = n.min(self.header.raw_len as usize);
        let mut out = vec![0u8; want];
        zstd::stream::read::Decoder::with_buffer(self.stored)
            .and_then(|mut d| d.read_exact(&mut out))
            .map_err(|e| self.bad(format!("zstd decompression failed: {e}")))?;
        Ok(Cow::Owned(out))
    }

    /// The payload decoded as the type its kind names ([`Record::Unknown`] for unknown kinds).
    pub fn decode(&self) -> Result<Record<'a>> {
        if !self.kind().is_known() {
            return Ok(Record::Unknown(self.kind()));
        }
        Record::decode(self.kind(), self.payload()?).map_err(|e| self.bad(e.0))
    }
}

/// What a walk over the blocks met besides good blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanStatus {
    /// Good blocks returned.
    pub blocks: u64,
    /// An incomplete last block (a killed writer): its offset and the bytes ignored.
    pub torn_tail: Option<(u64, u64)>,
    /// Regions skipped because of corruption (only with `skip_bad_blocks`).
    pub skipped: Vec<SkippedRegion>,
    /// Offset of the end block, if the walk reached one.
    pub end_offset: Option<u64>,
    /// Bytes after the end block (none in a trace our writer produced).
    pub trailing_bytes: u64,
}

impl ScanStatus {
    /// Bytes the walk did not return as blocks: torn tail, skipped regions, trailing bytes.
    pub fn ignored_bytes(&self) -> u64 {
        self.torn_tail.map_or(0, |(_, n)| n)
            + self.skipped.iter().map(|s| s.bytes).sum::<u64>()
            + self.trailing_bytes
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRegion {
    pub offset: u64,
    pub bytes: u64,
    pub reason: String,
}

/// Iterator over blocks; see [`Blocks::status`] once it is done.
#[derive(Debug)]
pub struct Blocks<'a> {
    data: &'a [u8],
    pos: usize,
    opts: ReadOptions,
    done: bool,
    status: ScanStatus,
}

impl<'a> Blocks<'a> {
    pub fn status(&self) -> &ScanStatus {
        &self.status
    }

    pub fn into_status(self) -> ScanStatus {
        self.status
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<Block<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.pos >= self.data.len() {
                self.done = true;
                break;
            }
            match parse_block(self.data, self.pos) {
                Step::Block(b, next) => {
                    self.status.blocks += 1;
                    if b.kind() == BlockKind::END {
                        self.status.end_offset = Some(b.offset);
                        self.status.trailing_bytes = (self.data.len() - next) as u64;
                        self.done = true;
                    }
                    self.pos = next;
                    return Some(Ok(b));
                }
                Step::Torn => {
                    self.status.torn_tail =
                        Some((self.pos as u64, (self.data.len() - self.pos) as u64));
                    self.done = true;
                }
                Step::Bad { error, resume } => {
                    if !self.opts.skip_bad_blocks {
                        self.done = true;
                        return Some(Err(error));
                    }
                    let next = resume.unwrap_or_else(|| resync(self.data, self.pos));
                    self.status.skipped.push(SkippedRegion {
                        offset: self.pos as u64,
                        bytes: (next - self.pos) as u64,
                        reason: error.to_string(),
                    });
                    self.pos = next;
                }
            }
        }
        None
    }
}

enum Step<'a> {
    Block(Block<'a>, usize),
    /// The block at this position is incomplete and runs to the end of the file.
    Torn,
    /// A bad block; `resume` is where the next one starts when the header could be trusted.
    Bad {
        error: Error,
        resume: Option<usize>,
    },
}

fn parse_block(data: &[u8], pos: usize) -> Step<'_> {
    let rest = &data[pos..];
    if rest.len() < BLOCK_HEADER_LEN {
        return Step::Torn;
    }
    let Some(header) = BlockHeader::decode(rest) else {
        // A crash can leave the end of a file zero-filled: that is a torn tail too.
        if rest.iter().all(|&b| b == 0) {
            return Step::Torn;
        }
        let kind = u16::from_le_bytes([rest[4], rest[5]]);
        let reason = if rest[0..4] != BLOCK_SYNC {
            format!(
                "sync bytes {:02x?} are not {:02x?}",
                &rest[0..4],
                BLOCK_SYNC
            )
        } else {
            format!(
                "header CRC32C mismatch (kind field reads {}, unverified)",
                BlockKind(kind)
            )
        };
        return Step::Bad {
            error: Error::CorruptBlockHeader {
                offset: pos as u64,
                reason,
            },
            resume: None,
        };
    };
    if let Err(reason) = header.check_lengths() {
        return Step::Bad {
            error: Error::ImpossibleLength {
                offset: pos as u64,
                kind: header.kind,
                reason,
            },
            resume: None,
        };
    }
    let stored_end = BLOCK_HEADER_LEN + header.stored_len as usize;
    let total = header.total_len() as usize;
    if total > rest.len() {
        return Step::Torn;
    }
    let stored = &rest[BLOCK_HEADER_LEN..stored_end];
    let computed = crc32c::crc32c(stored);
    if computed != header.payload_crc {
        return Step::Bad {
            error: Error::BadCrc {
                offset: pos as u64,
                kind: header.kind,
                stored: header.payload_crc,
                computed,
            },
            resume: Some(pos + total),
        };
    }
    Step::Block(
        Block {
            offset: pos as u64,
            header,
            stored,
        },
        pos + total,
    )
}

/// The next 8-aligned position after `pos` holding a valid block header, or the end of data.
fn resync(data: &[u8], pos: usize) -> usize {
    let mut p = pos + BLOCK_ALIGN;
    while p + BLOCK_HEADER_LEN <= data.len() {
        if data[p..p + 4] == BLOCK_SYNC
            && BlockHeader::decode(&data[p..]).is_some_and(|h| h.check_lengths().is_ok())
        {
            return p;
        }
        p += BLOCK_ALIGN;
    }
    data.len()
}
