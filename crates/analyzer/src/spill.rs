//! Spill files: state written once and read back by later passes in order, kept on disk rather
//! than in memory (an hour of a busy node makes tens of MB of some of it).
//!
//! A spill file lives in the output directory, not in the system's temporary directory, which
//! is memory on many systems (tmpfs). Its name is removed as soon as it is open, so it is gone
//! when closed, or when the process ends however it ends.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::replay::cpu::Usage;

static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Spill files go to `dir` from now on (the analysis's output directory); until this is
/// called, to the system's temporary directory.
pub fn set_dir(dir: &Path) {
    *DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_owned());
}

fn dir() -> PathBuf {
    DIR.lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(std::env::temp_dir)
}

/// A new, empty spill file open for reading and writing, its name already removed.
pub fn create() -> Result<File> {
    create_in(&dir())
}

fn create_in(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {} for a spill file", dir.display()))?;
    let path = dir.join(format!(
        ".pws-spill-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create the spill file {}", path.display()))?;
    std::fs::remove_file(&path)
        .with_context(|| format!("cannot unlink the spill file {}", path.display()))?;
    Ok(file)
}

/// Bytes read (and buffered when written) at once: a pass in file order reads each chunk once.
pub const CHUNK: usize = 256 * 1024;

/// Writes a new spill file record by record: a record's bytes are made in one reused vector,
/// then buffered out; each record's end offset is returned ([`IndexedWriter`] keeps them).
#[derive(Debug)]
pub struct Writer {
    out: BufWriter<File>,
    bytes: Vec<u8>,
    at: u64,
    /// What is spilled, for errors ("a dataset's intervals").
    what: &'static str,
}

impl Writer {
    pub fn new(what: &'static str) -> Result<Self> {
        let file = create().with_context(|| format!("spilling {what}"))?;
        Ok(Self {
            out: BufWriter::with_capacity(CHUNK, file),
            bytes: Vec::new(),
            at: 0,
            what,
        })
    }

    /// Appends the record `fill` makes; returns the file's length after it.
    pub fn record(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Result<u64> {
        self.bytes.clear();
        fill(&mut self.bytes);
        self.out
            .write_all(&self.bytes)
            .with_context(|| format!("writing {} to the spill file", self.what))?;
        self.at += self.bytes.len() as u64;
        Ok(self.at)
    }

    /// The file written, and its length.
    pub fn finish(self) -> Result<(File, u64)> {
        let what = self.what;
        let file = self
            .out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {what} to the spill file"))?;
        Ok((file, self.at))
    }
}

/// Writes records found again by their number: a [`Writer`] and where each record starts (8
/// bytes a record, in memory). Numbers not written are empty records.
#[derive(Debug)]
pub struct IndexedWriter {
    out: Writer,
    starts: Vec<u64>,
}

impl IndexedWriter {
    pub fn new(what: &'static str) -> Result<Self> {
        Ok(Self {
            out: Writer::new(what)?,
            starts: vec![0],
        })
    }

    /// Appends record `n` (numbers in increasing order; those skipped are empty).
    pub fn record(&mut self, n: usize, fill: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        debug_assert!(n + 1 >= self.starts.len(), "records in order");
        let at = self.starts.last().copied().unwrap_or(0);
        self.starts.resize(self.starts.len().max(n + 1), at);
        let end = self.out.record(fill)?;
        self.starts.push(end);
        Ok(())
    }

    /// Appends the record after the last one.
    pub fn push(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.record(self.starts.len() - 1, fill)
    }

    pub fn finish(self) -> Result<Indexed> {
        let (file, _) = self.out.finish()?;
        let mut starts = self.starts;
        starts.shrink_to_fit();
        Ok(Indexed { file, starts })
    }
}

/// Records written by an [`IndexedWriter`], read by number.
#[derive(Debug)]
pub struct Indexed {
    file: File,
    /// Record `n` is bytes `starts[n]..starts[n + 1]`.
    starts: Vec<u64>,
}

impl Indexed {
    /// Records written (the last number written, plus one).
    pub fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// Where record `n` is in the file; None past the last.
    pub fn range(&self, n: usize) -> Option<(u64, u64)> {
        Some((*self.starts.get(n)?, *self.starts.get(n + 1)?))
    }

    /// Record `n`'s bytes (`n < len()`), read through `chunk`.
    pub fn bytes<'c>(&self, chunk: &'c mut Chunked, n: usize) -> std::io::Result<&'c [u8]> {
        let end = self.starts[self.len()];
        chunk.bytes(&self.file, end, self.starts[n], self.starts[n + 1])
    }

    /// The file, for tests that cut it short.
    #[cfg(test)]
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Reads byte ranges of a spill file through one chunk of it.
#[derive(Debug, Default)]
pub struct Chunked {
    chunk: Vec<u8>,
    /// File offset of `chunk[0]`.
    at: u64,
}

impl Chunked {
    /// Bytes `from..to` of `file`, whose length is `len`: from the chunk held when it has
    /// them, else from a new chunk read from `from` on.
    pub fn bytes(&mut self, file: &File, len: u64, from: u64, to: u64) -> std::io::Result<&[u8]> {
        use std::os::unix::fs::FileExt;
        if from < self.at || to > self.at + self.chunk.len() as u64 {
            let n = (to - from).max(CHUNK as u64).min(len.saturating_sub(from)) as usize;
            self.chunk.resize(n, 0);
            self.at = from;
            if let Err(e) = file.read_exact_at(&mut self.chunk, from) {
                self.chunk.clear();
                return Err(e);
            }
        }
        let (a, b) = ((from - self.at) as usize, (to - self.at) as usize);
        self.chunk.get(a..b).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("bytes {from}..{to} are past the spill file's end"),
            )
        })
    }
}

/// Counts are u32 in spill files (no interval, activation or usage has 4 G of anything).
pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Appends a usage: its CPU time (u64), counter count (u32) and counters (f64 each), little-
/// endian, bit for bit.
pub fn put_usage(b: &mut Vec<u8>, u: &Usage) {
    b.extend_from_slice(&u.cpu_ns.to_le_bytes());
    b.extend_from_slice(&count(u.counters.len()).to_le_bytes());
    for c in &u.counters {
        b.extend_from_slice(&c.to_le_bytes());
    }
}

/// Reads a usage written by [`put_usage`] into `u` (its room reused), taking it off `b`; None
/// where `b` ends first.
pub fn usage_into(b: &mut &[u8], u: &mut Usage) -> Option<()> {
    u.cpu_ns = u64::from_le_bytes(take(b)?);
    let n = u32::from_le_bytes(take(b)?) as usize;
    let (values, rest) = b.split_at_checked(n.checked_mul(8)?)?;
    *b = rest;
    u.counters.clear();
    u.counters.extend(values.chunks_exact(8).map(|c| {
        c.try_into()
            .map_or(f64::NAN, |bytes: [u8; 8]| f64::from_le_bytes(bytes))
    }));
    Some(())
}

/// The next `N` bytes of `b`, taken off it; None where it is shorter.
pub fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
    let (head, rest) = b.split_first_chunk::<N>()?;
    *b = rest;
    Some(*head)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    #[test]
    fn chunked_reads_give_the_bytes_asked_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = super::create_in(dir.path()).unwrap();
        let data: Vec<u8> = (0..3 * super::CHUNK + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        f.write_all(&data).unwrap();
        let len = data.len() as u64;
        let mut c = super::Chunked::default();
        for (from, to) in [(0, 10), (5, 300_000), (len - 3, len), (100, 101), (0, len)] {
            let got = c.bytes(&f, len, from, to).unwrap();
            assert_eq!(got, &data[from as usize..to as usize], "{from}..{to}");
        }
        assert!(c.bytes(&f, len, len, len + 1).is_err(), "past the end");
        let mut b: &[u8] = &[1, 0, 0, 0, 9];
        assert_eq!(super::take::<4>(&mut b), Some([1, 0, 0, 0]));
        assert_eq!(super::take::<4>(&mut b), None, "one byte left");
    }

    #[test]
    fn a_spill_file_has_no_name_and_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = super::create_in(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "unlinked at once"
        );
        f.write_all(b"spilled").unwrap();
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "spilled");
    }
}
