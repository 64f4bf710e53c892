//! Trace reader over a memory-mapped (or in-memory) trace.
//!
//! It validates the file header, walks the blocks, checks every CRC, and tells a torn tail
//! (what a killed writer leaves) from corruption in the middle (an error naming the offset and
//! the kind, or, with [`ReadOptions::skip_bad_blocks`], a skipped region). It never panics and
//! allocates at most one decompressed block (≤ 64 MiB) at a time beyond what it returns.
//!
//! Memory: pages of a mapped file that were read count in the process's resident set until
//! they are unmapped, so a reader that walks a 2 GB trace would end up "using" 2 GB. The block
//! iterator therefore gives back the pages it has walked past, and [`Trace::release`] does the
//! same for a range a caller is done with (random access, as the analyzer's per-CPU passes do):
//! what stays mapped is a window, not the file. The data stay in the page cache, so reading
//! them again costs a minor fault, not a disk read.

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
            // SAFETY: the map is read-only (a shared mapping of the file: its pages are the page
            // cache's). A trace being appended to by a live recorder is fine: we only read the
            // length mapped now. Truncating the file under a reader would fault it, as with
            // every mmap reader.
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
            behind: Releaser::new(self.map()),
        }
    }

    fn map(&self) -> Option<&memmap2::Mmap> {
        match &self.bytes {
            Bytes::Mapped(m) => Some(m),
            Bytes::Owned(_) => None,
        }
    }

    /// Unmaps the pages holding bytes `offset .. offset + len` of a mapped trace, so they stop
    /// counting in this process's memory. Nothing changes for the caller but speed: the bytes
    /// are still readable, and reading them again maps them again from the page cache. A
    /// trace held in memory ([`Trace::from_vec`]) is left as it is.
    ///
    /// The range is widened to the aligned 2 MiB windows it touches (clamped to the file):
    /// reading a page also maps its neighbours in such a window, and neighbours that belong to
    /// a block released earlier would otherwise stay mapped for good. Bytes of neighbouring
    /// blocks in those windows are unmapped too and come back when read.
    pub fn release(&self, offset: u64, len: u64) -> std::io::Result<()> {
        let Some(m) = self.map() else {
            return Ok(());
        };
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(m.len());
        let end = usize::try_from(offset.saturating_add(len))
            .unwrap_or(usize::MAX)
            .min(m.len());
        if start >= end {
            return Ok(());
        }
        let (start, end) = (window_start(m, start), window_end(m, end));
        unmap(m, start, end)
    }

    /// [`Trace::release`] of the bytes a block takes in the file (header, payload, padding).
    pub fn release_block(&self, block: &Block<'_>) -> std::io::Result<()> {
        self.release(block.offset, block.total_len())
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
        // That reads a page of every block: they are given back as the check moves on.
        let mut behind = Releaser::new(self.map());
        let mut prev = None;
        for e in &end.index {
            let p = e.offset as usize;
            if prev.is_some_and(|q| q >= e.offset)
                || e.offset >= offset
                || p % BLOCK_ALIGN != 0
                || BlockHeader::decode(&data[p..]).map(|h| h.kind) != Some(e.kind)
            {
                behind.all();
                return None;
            }
            behind.upto(p);
            prev = Some(e.offset);
        }
        behind.all();
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

    /// The payload, as [`Block::payload`], inflated into `inflater`'s buffer: for callers
    /// that inflate block after block (the analyzer's replay), which then allocate nothing and
    /// fault no fresh pages in per block.
    pub fn payload_in<'s>(&self, inflater: &'s mut Inflater) -> Result<&'s [u8]>
    where
        'a: 's,
    {
        let unknown = self.header.flags & BLOCK_PAYLOAD_FLAGS_MASK & !KNOWN_BLOCK_FLAGS;
        if unknown != 0 {
            return Err(self.bad(format!("unknown block flags {unknown:#06x}")));
        }
        if !self.is_compressed() {
            return Ok(self.stored);
        }
        let raw_len = self.header.raw_len as usize;
        let buf = &mut inflater.buf;
        buf.clear();
        buf.reserve(raw_len);
        // zstd writes into the buffer's capacity, so it fails rather than grow past it; a
        // bigger capacity left by an earlier block is caught by the length check.
        let n = inflater
            .dctx
            .decompress_to_buffer(self.stored, buf)
            .map_err(|e| self.bad(format!("zstd decompression failed: {e}")))?;
        if n != raw_len {
            return Err(self.bad(format!("decompressed to {n} bytes, header says {raw_len}")));
        }
        Ok(&buf[..])
    }

    /// Inflates a compressed block's payload into `out`, which must be `raw_len` bytes: for
    /// callers that keep many payloads in one allocation of their own.
    pub fn payload_to(&self, inflater: &mut Inflater, out: &mut [u8]) -> Result<()> {
        let unknown = self.header.flags & BLOCK_PAYLOAD_FLAGS_MASK & !KNOWN_BLOCK_FLAGS;
        if unknown != 0 {
            return Err(self.bad(format!("unknown block flags {unknown:#06x}")));
        }
        let raw_len = self.header.raw_len as usize;
        if !self.is_compressed() || out.len() != raw_len {
            return Err(self.bad(format!(
                "cannot inflate into {} bytes (compressed: {}, raw length {raw_len})",
                out.len(),
                self.is_compressed()
            )));
        }
        let n = inflater
            .dctx
            .decompress_to_buffer(self.stored, out)
            .map_err(|e| self.bad(format!("zstd decompression failed: {e}")))?;
        if n != raw_len {
            return Err(self.bad(format!("decompressed to {n} bytes, header says {raw_len}")));
        }
        Ok(())
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

/// A zstd context and an output buffer kept from block to block ([`Block::payload_in`]).
pub struct Inflater {
    dctx: zstd::bulk::Decompressor<'static>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("capacity", &self.buf.capacity())
            .finish()
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Self {
            dctx: zstd::bulk::Decompressor::default(),
            buf: Vec::new(),
        }
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

/// Iterator over blocks; see [`Blocks::status`] once it is done. Over a mapped trace it unmaps
/// the pages it has walked past (see [`Trace::release`]), so a walk over the whole file keeps
/// a few MiB mapped, not the file; blocks already returned stay readable.
#[derive(Debug)]
pub struct Blocks<'a> {
    data: &'a [u8],
    pos: usize,
    opts: ReadOptions,
    done: bool,
    status: ScanStatus,
    behind: Releaser<'a>,
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
            // The caller asks for the next block: it is done with the bytes before it.
            self.behind.upto(self.pos);
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
        self.behind.all();
        None
    }
}

/// Reading a page of a file mapping also maps its neighbours that are in the page cache
/// ("fault-around": Linux maps the window of `fault_around_bytes`, 64 KiB by default and at
/// most 2 MiB — one page table — aligned in the address space, around a faulting page).
/// Unmapping in windows of the largest size, so aligned, leaves none of those behind.
const FAULT_AROUND_MAX: usize = 2 << 20;

/// The offset in the map of the [`FAULT_AROUND_MAX`] boundary at or before offset `pos`
/// (0 at the most: the map need not start on one).
fn window_start(m: &memmap2::Mmap, pos: usize) -> usize {
    let base = m.as_ptr() as usize;
    ((base + pos) / FAULT_AROUND_MAX * FAULT_AROUND_MAX).saturating_sub(base)
}

/// The offset of the boundary at or after `pos`, at most the map's length.
fn window_end(m: &memmap2::Mmap, pos: usize) -> usize {
    let base = m.as_ptr() as usize;
    ((base + pos).div_ceil(FAULT_AROUND_MAX) * FAULT_AROUND_MAX - base).min(m.len())
}

/// Unmaps the part of a mapping a sequential walk has left behind, a window at a time: only
/// whole [`FAULT_AROUND_MAX`] windows before the reading position, so reading on never maps
/// again what was given back.
#[derive(Debug)]
struct Releaser<'a> {
    map: Option<&'a memmap2::Mmap>,
    /// Everything before this is unmapped (the map's start or a window boundary).
    done: usize,
}

impl<'a> Releaser<'a> {
    fn new(map: Option<&'a memmap2::Mmap>) -> Self {
        Self { map, done: 0 }
    }

    /// The walk is at `pos`: unmaps the whole windows before it.
    fn upto(&mut self, pos: usize) {
        let Some(m) = self.map else {
            return;
        };
        let to = window_start(m, pos.min(m.len()));
        if to > self.done {
            // Advisory: if the kernel refuses, the pages just stay mapped.
            let _ = unmap(m, self.done, to);
            self.done = to;
        }
    }

    /// The walk is over: unmaps the rest of the file (blocks a caller still holds stay
    /// readable).
    fn all(&mut self) {
        if let Some(m) = self.map {
            if self.done < m.len() {
                let _ = unmap(m, self.done, m.len());
                self.done = m.len();
            }
        }
    }
}

/// MADV_DONTNEED over bytes `start..end` of the mapping, rounded out to pages.
#[cfg(unix)]
fn unmap(m: &memmap2::Mmap, start: usize, end: usize) -> std::io::Result<()> {
    if start >= end {
        return Ok(());
    }
    // memmap2 moves `start` down to its page; the kernel rounds the length up to whole pages.
    // SAFETY: `Mmap::map` makes a read-only shared mapping of the file. For such a mapping,
    // MADV_DONTNEED only removes this process's page-table entries: the next access maps the
    // same page-cache page again (or reads it from the file), so every byte a live `&[u8]`
    // into the map sees is unchanged — no write, no zero-fill (that happens only for private
    // and anonymous mappings, which this is not).
    unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start) }
}

/// Elsewhere mapped pages are left to the system (memmap2 offers no such advice there).
#[cfg(not(unix))]
fn unmap(_: &memmap2::Mmap, _: usize, _: usize) -> std::io::Result<()> {
    Ok(())
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

// What is mapped is read from /proc/self/smaps.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::{TraceWriter, WriterOptions};

    /// Resident KiB of the mapping that starts at `ptr`, from /proc/self/smaps.
    fn mapped_kib(ptr: *const u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let start = format!("{:x}-", ptr as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        assert!(lines.next().is_some(), "the trace's mapping is in smaps");
        let rss = lines.find(|l| l.starts_with("Rss:")).expect("an Rss line");
        rss.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// CPUs of [`big_trace`], whose blocks take turns as pws-record's do.
    const CPUS: usize = 16;

    /// 256 perf-data blocks of 96 KiB, stored raw: 24 MiB to map.
    fn big_trace(path: &Path) {
        let mut w = TraceWriter::create(path, WriterOptions::uncompressed()).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..256u32 {
            let data: Vec<u8> = (0..96 << 10)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            w.write_perf_data(i % CPUS as u32, 0, 0, &[&data]).unwrap();
        }
        w.finish(1).unwrap();
    }

    fn sum(b: &[u8]) -> u64 {
        b.iter().map(|&x| u64::from(x)).sum()
    }

    #[test]
    fn a_walk_keeps_a_window_mapped_not_the_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("big.pws");
        big_trace(&path);
        let t = Trace::open(&path).unwrap();
        let ptr = t.data().as_ptr();
        let mut seen = Vec::new();
        let mut most = 0;
        for b in t.blocks() {
            seen.push(sum(b.unwrap().stored()));
            most = most.max(mapped_kib(ptr));
        }
        // The window (2 MiB steps) plus the block being read and what the kernel maps around
        // it, far from the 24 MiB of the file.
        assert!(most < 6 << 10, "{most} KiB mapped during the walk");
        assert!(mapped_kib(ptr) < 1 << 10, "after the walk");
        // Reading everything without the iterator maps it all (the measure works) ...
        let all = sum(t.data());
        assert!(mapped_kib(ptr) > 20 << 10, "{} KiB", mapped_kib(ptr));
        // ... and giving it back unmaps it, with the bytes unchanged when read again.
        t.release(0, u64::MAX).unwrap();
        assert!(mapped_kib(ptr) < 1 << 10, "{} KiB", mapped_kib(ptr));
        assert_eq!(sum(t.data()), all);
        let again: Vec<u64> = t.blocks().map(|b| sum(b.unwrap().stored())).collect();
        assert_eq!(again, seen);
    }

    #[test]
    fn releasing_blocks_in_any_order_leaves_nothing_mapped() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("big.pws");
        big_trace(&path);
        let t = Trace::open(&path).unwrap();
        let ptr = t.data().as_ptr();
        let offsets: Vec<u64> = t.blocks().map(|b| b.unwrap().offset).collect();
        // One CPU's blocks after another, as the analyzer's per-CPU passes read them: each
        // block's neighbours (other CPUs') were read and released before or come later.
        let mut most = 0;
        for cpu in 0..CPUS {
            for &off in offsets.iter().skip(1 + cpu).step_by(CPUS) {
                let b = t.block_at(off).unwrap();
                assert!(sum(b.stored()) > 0);
                most = most.max(mapped_kib(ptr));
                t.release_block(&b).unwrap();
            }
        }
        assert!(most < 8 << 10, "{most} KiB mapped at most");
        assert!(mapped_kib(ptr) < 1 << 10, "{} KiB left", mapped_kib(ptr));
        // A trace in memory has nothing to give back.
        let v = Trace::from_vec(std::fs::read(&path).unwrap()).unwrap();
        v.release(0, u64::MAX).unwrap();
        assert_eq!(v.data().len(), t.data().len());
    }
}
