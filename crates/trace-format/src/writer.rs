//! Append-only trace writer.
//!
//! Blocks are written whole, in order, and never rewritten, so a writer killed at any point
//! leaves a prefix of complete blocks followed by at most one torn block, which readers
//! report and ignore. `flush()` hands everything written so far to the kernel, so a killed
//! writer loses nothing flushed, and makes it durable (fdatasync) when `sync_interval` has
//! passed since the last time, so a machine crash loses at most that much; the writer flushes
//! by itself at least every `flush_interval`. `sync()` and `finish` always make it durable.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::header::{padded, BlockHeader, FileHeader, BLOCK_FLAG_ZSTD, MAX_PAYLOAD_LEN};
use crate::records::{
    EndBlock, IndexEntry, KindTotal, Payload, PerfData, PerfIndex, PerfIndexEntry,
    PERF_INDEX_NO_SIDE_BAND,
};
use crate::{BlockKind, Error, Result};

/// Where a trace goes: anything writable that can also be made durable.
pub trait Sink: Write {
    /// Makes everything written so far survive a crash of the machine.
    fn sync(&mut self) -> io::Result<()>;
}

impl Sink for File {
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

impl Sink for Vec<u8> {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for io::Sink {
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn sync(&mut self) -> io::Result<()> {
        (**self).sync()
    }
}

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// zstd level for block payloads, `None` to store everything uncompressed.
    pub compression_level: Option<i32>,
    /// Payloads shorter than this are stored as they are: compressing them saves nothing.
    pub min_compress_len: usize,
    /// Longest time written blocks may stay in the writer's buffer before they are handed to
    /// the kernel (what a killed writer can lose).
    pub flush_interval: Duration,
    /// Longest time blocks handed to the kernel may stay unsynced (what a machine crash can
    /// lose). Each fdatasync costs a small write and a device flush, so a recorder left on for
    /// hours syncs less often than it flushes.
    pub sync_interval: Duration,
    /// Size of the write buffer in front of the sink.
    pub buffer_size: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            compression_level: Some(zstd::DEFAULT_COMPRESSION_LEVEL),
            min_compress_len: 512,
            flush_interval: Duration::from_secs(1),
            sync_interval: Duration::from_secs(1),
            buffer_size: 1 << 20,
        }
    }
}

impl WriterOptions {
    pub fn uncompressed() -> Self {
        Self {
            compression_level: None,
            ..Self::default()
        }
    }
}

/// Writes a trace: the file header at creation, then blocks, then the end block at
/// [`finish`](TraceWriter::finish).
pub struct TraceWriter<S: Sink> {
    out: BufWriter<S>,
    opts: WriterOptions,
    compressor: Option<zstd::bulk::Compressor<'static>>,
    offset: u64,
    index: Vec<IndexEntry>,
    totals: BTreeMap<u16, KindTotal>,
    /// Reused for encoding payloads and for compressed output, so steady-state writing
    /// allocates nothing.
    scratch: Vec<u8>,
    compressed: Vec<u8>,
    last_flush: Instant,
    last_sync: Instant,
    failed: bool,
    /// Perf-data blocks written since the last perf-index block.
    perf_index: Vec<PerfIndexEntry>,
}

impl<S: Sink> std::fmt::Debug for TraceWriter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("offset", &self.offset)
            .field("blocks", &self.index.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl TraceWriter<File> {
    /// Creates (or truncates) `path` with mode 0600: traces hold command lines and cgroup
    /// paths that other users need not see.
    pub fn create(path: impl AsRef<Path>, opts: WriterOptions) -> Result<Self> {
        let path = path.as_ref();
        let mut oo = OpenOptions::new();
        oo.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut oo, 0o600);
        let file = oo.open(path).map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::new(file, opts)
    }
}

impl<S: Sink> TraceWriter<S> {
    /// Writes the file header to `sink`.
    pub fn new(sink: S, opts: WriterOptions) -> Result<Self> {
        let compressor = match opts.compression_level {
            Some(level) => Some(zstd::bulk::Compressor::new(level).map_err(Error::Compress)?),
            None => None,
        };
        let mut w = Self {
            out: BufWriter::with_capacity(opts.buffer_size, sink),
            opts,
            compressor,
            offset: 0,
            index: Vec::new(),
            totals: BTreeMap::new(),
            scratch: Vec::new(),
            compressed: Vec::new(),
            last_flush: Instant::now(),
            last_sync: Instant::now(),
            failed: false,
            perf_index: Vec::new(),
        };
        let header = FileHeader::current().encode();
        w.put(&[&header])?;
        Ok(w)
    }

    /// Bytes written so far (header and blocks), buffered or not.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Blocks written so far.
    pub fn blocks_written(&self) -> usize {
        self.index.len()
    }

    /// Encodes and writes one typed block; returns its byte offset.
    pub fn write<P: Payload>(&mut self, payload: &P) -> Result<u64> {
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        payload.encode(&mut buf);
        let r = self.write_block(P::KIND, &[&buf]);
        self.scratch = buf;
        r
    }

    /// Writes bytes copied from a perf ring as a perf-data block. The ring's bytes may come
    /// in two parts (before and after the ring's wrap point); they are not copied again
    /// unless they are compressed. The block goes into the next perf-index block, its side
    /// band not known.
    pub fn write_perf_data(
        &mut self,
        cpu: u32,
        flags: u32,
        ring_offset: u64,
        parts: &[&[u8]],
    ) -> Result<u64> {
        // Not checked: it may hold side band, as far as the index can say.
        self.write_perf_data_checked(cpu, flags, ring_offset, parts, true)
    }

    /// [`TraceWriter::write_perf_data`] for a caller that read every record of `parts`:
    /// `side_band` says whether one is a tracepoint sample or a `PERF_RECORD_CGROUP`; where
    /// none is, the perf index says so, and readers that want only the side band skip the
    /// block.
    pub fn write_perf_data_checked(
        &mut self,
        cpu: u32,
        flags: u32,
        ring_offset: u64,
        parts: &[&[u8]],
        side_band: bool,
    ) -> Result<u64> {
        let head = PerfData::encode_header(cpu, flags, ring_offset);
        let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
        all.push(&head);
        all.extend_from_slice(parts);
        let offset = self.write_block(BlockKind::PERF_DATA, &all)?;
        self.perf_index.push(PerfIndexEntry {
            offset,
            cpu,
            flags: if side_band {
                0
            } else {
                PERF_INDEX_NO_SIDE_BAND
            },
        });
        Ok(offset)
    }

    /// The perf-data blocks written since the last perf-index block, as one.
    fn write_perf_index(&mut self) -> Result<()> {
        if self.perf_index.is_empty() {
            return Ok(());
        }
        let entries = std::mem::take(&mut self.perf_index);
        self.write(&PerfIndex { entries }).map(drop)
    }

    /// Writes a block of any kind whose payload is the concatenation of `parts`; compresses
    /// it when that is enabled and saves space. Returns the block's byte offset.
    pub fn write_block(&mut self, kind: BlockKind, parts: &[&[u8]]) -> Result<u64> {
        if self.failed {
            return Err(Error::WriterClosed);
        }
        let raw_len: usize = parts.iter().map(|p| p.len()).sum();
        if raw_len > MAX_PAYLOAD_LEN {
            return Err(Error::PayloadTooLarge {
                len: raw_len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        let compress = kind != BlockKind::END && raw_len >= self.opts.min_compress_len;
        let mut flags = 0u16;
        let mut stored_compressed = false;
        if let (true, Some(c)) = (compress, self.compressor.as_mut()) {
            let input: &[u8] = if parts.len() == 1 {
                parts[0]
            } else {
                self.scratch.clear();
                for p in parts {
                    self.scratch.extend_from_slice(p);
                }
                &self.scratch
            };
            self.compressed.clear();
            self.compressed
                .reserve(zstd::zstd_safe::compress_bound(input.len()));
            c.compress_to_buffer(input, &mut self.compressed)
                .map_err(Error::Compress)?;
            // Keep the raw bytes when compression does not pay.
            if self.compressed.len() < raw_len {
                flags |= BLOCK_FLAG_ZSTD;
                stored_compressed = true;
            }
        }
        let compressed = std::mem::take(&mut self.compressed);
        let stored: Vec<&[u8]> = if stored_compressed {
            vec![&compressed[..]]
        } else {
            parts.to_vec()
        };
        let stored_len: usize = stored.iter().map(|p| p.len()).sum();
        let mut crc = 0u32;
        for p in &stored {
            crc = crc32c::crc32c_append(crc, p);
        }
        let header = BlockHeader {
            kind,
            flags,
            stored_len: stored_len as u32,
            raw_len: raw_len as u32,
            payload_crc: crc,
        };
        let offset = self.offset;
        let pad = [0u8; 8];
        let pad_len = (padded(stored_len as u64) - stored_len as u64) as usize;
        let encoded = header.encode();
        let mut pieces: Vec<&[u8]> = Vec::with_capacity(stored.len() + 2);
        pieces.push(&encoded);
        pieces.extend_from_slice(&stored);
        pieces.push(&pad[..pad_len]);
        let r = self.put(&pieces);
        drop(stored);
        self.compressed = compressed;
        r?;

        if kind != BlockKind::END {
            self.index.push(IndexEntry { offset, kind });
            let t = self.totals.entry(kind.0).or_insert(KindTotal {
                kind: kind.0,
                ..KindTotal::default()
            });
            t.blocks += 1;
            t.stored_bytes += stored_len as u64;
            t.raw_bytes += raw_len as u64;
        }
        self.flush_if_due()?;
        Ok(offset)
    }

    fn put(&mut self, pieces: &[&[u8]]) -> Result<()> {
        for p in pieces {
            if let Err(source) = self.out.write_all(p) {
                self.failed = true;
                return Err(Error::Write {
                    offset: self.offset,
                    source,
                });
            }
            self.offset += p.len() as u64;
        }
        Ok(())
    }

    /// Hands every block written so far to the kernel, and makes them durable if the sync
    /// interval has passed since they last were.
    pub fn flush(&mut self) -> Result<()> {
        let due = self.last_sync.elapsed() >= self.opts.sync_interval;
        self.flush_and(due)
    }

    /// Makes every block written so far durable, now.
    pub fn sync(&mut self) -> Result<()> {
        self.flush_and(true)
    }

    fn flush_and(&mut self, sync: bool) -> Result<()> {
        if self.failed {
            return Err(Error::WriterClosed);
        }
        // What reaches the kernel is indexed: a torn trace keeps the index of what it kept.
        self.write_perf_index()?;
        let mut r = self.out.flush();
        if sync && r.is_ok() {
            r = self.out.get_mut().sync();
            self.last_sync = Instant::now();
        }
        self.last_flush = Instant::now();
        r.map_err(|source| {
            self.failed = true;
            Error::Write {
                offset: self.offset,
                source,
            }
        })
    }

    /// Flushes if the flush interval has passed since the last flush; returns whether it did.
    /// Writers call this on a timer too, so an idle trace still reaches the kernel within the
    /// interval.
    pub fn flush_if_due(&mut self) -> Result<bool> {
        if self.last_flush.elapsed() >= self.opts.flush_interval {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes the end block (totals and index), flushes and syncs, and returns the sink.
    /// `end_monotonic_ns` is when recording stopped, on the trace clock.
    pub fn finish(mut self, end_monotonic_ns: u64) -> Result<S> {
        if self.failed {
            return Err(Error::WriterClosed);
        }
        self.write_perf_index()?;
        let end = EndBlock {
            end_monotonic_ns,
            kinds: self.totals.values().copied().collect(),
            index: std::mem::take(&mut self.index),
            self_offset: self.offset,
        };
        self.write(&end)?;
        self.sync()?;
        self.out.into_inner().map_err(|e| Error::Write {
            offset: self.offset,
            source: e.into_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ClockSync;

    /// Counts what reached it and how often it was synced.
    #[derive(Default)]
    struct Counting {
        bytes: usize,
        syncs: usize,
    }

    impl Write for Counting {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.bytes += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Counting {
        fn sync(&mut self) -> io::Result<()> {
            self.syncs += 1;
            Ok(())
        }
    }

    /// Perf-data blocks are listed in a perf-index block at each flush and before the end, with
    /// their CPU, and marked free of side band only when the caller checked.
    #[test]
    fn perf_blocks_are_indexed_at_each_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pws");
        let mut w = TraceWriter::create(&path, WriterOptions::default()).unwrap();
        let a = w.write_perf_data(3, 0, 0, &[&[1u8; 64]]).unwrap();
        let b = w
            .write_perf_data_checked(1, 0, 0, &[&[2u8; 64]], false)
            .unwrap();
        w.flush().unwrap();
        let c = w
            .write_perf_data_checked(0, 0, 64, &[&[3u8; 64]], true)
            .unwrap();
        w.finish(9).unwrap();
        let t = crate::Trace::open(&path).unwrap();
        let indexes: Vec<PerfIndex> = t
            .blocks()
            .filter_map(|b| match b.unwrap().decode().unwrap() {
                crate::Record::PerfIndex(ix) => Some(ix),
                _ => None,
            })
            .collect();
        let e = |offset, cpu, flags| PerfIndexEntry { offset, cpu, flags };
        assert_eq!(
            indexes,
            [
                PerfIndex {
                    entries: vec![e(a, 3, 0), e(b, 1, PERF_INDEX_NO_SIDE_BAND)]
                },
                PerfIndex {
                    entries: vec![e(c, 0, 0)]
                },
            ]
        );
    }

    #[test]
    fn flush_reaches_the_sink_every_time_and_syncs_only_when_the_interval_passed() {
        let opts = WriterOptions {
            sync_interval: Duration::from_millis(200),
            ..WriterOptions::default()
        };
        let mut w = TraceWriter::new(Counting::default(), opts).unwrap();
        w.write(&ClockSync::default()).unwrap();
        w.flush().unwrap();
        let sink = w.out.get_ref();
        assert_eq!((sink.bytes as u64, sink.syncs), (w.bytes_written(), 0));
        std::thread::sleep(Duration::from_millis(250));
        w.write(&ClockSync::default()).unwrap();
        w.flush().unwrap();
        assert_eq!(w.out.get_ref().syncs, 1);
        w.flush().unwrap();
        assert_eq!(w.out.get_ref().syncs, 1);
        w.sync().unwrap();
        assert_eq!(w.out.get_ref().syncs, 2);
        // The end is always made durable.
        let sink = w.finish(1).unwrap();
        assert_eq!(sink.syncs, 3);
    }
}
