//! Each package's (interval, cgroup) cells, sorted by interval and cgroup, on disk: written by
//! the accounting as it finishes intervals (`package_merge`), read front to back by whatever
//! needs them (the `usage` table, each counter's dataset, the timeline). An hour of eight
//! CPUs is millions of cells (~60 MB), which were held from the accounting to the models.
//!
//! A cell, little-endian: its interval and cgroup key (u64 each) and its usage
//! (`spill::put_usage`).

use std::fs::File;

use anyhow::{Context, Result};

use super::cpu::Usage;
use crate::spill::{put_usage, take, usage_into, Chunked};

/// One package's cells.
#[derive(Debug, Default)]
pub struct SpilledCells {
    /// None where no cell was written.
    file: Option<File>,
    bytes: u64,
}

/// Writes one package's cells in order; its file is made with its first cell.
#[derive(Debug)]
pub struct CellsWriter {
    out: Option<crate::spill::Writer>,
}

impl SpilledCells {
    pub fn writer() -> CellsWriter {
        CellsWriter { out: None }
    }

    /// The cells in order, read as they are asked; an item is an error where the file could
    /// not be read (and the last item then).
    pub fn iter(&self) -> Cells<'_> {
        Cells {
            of: self,
            chunk: Chunked::default(),
            at: 0,
            failed: false,
        }
    }
}

impl CellsWriter {
    /// Appends a cell (after those written: by interval, then cgroup).
    pub fn push(&mut self, interval: usize, cgroup: u64, u: &Usage) -> Result<()> {
        let out = match &mut self.out {
            Some(out) => out,
            None => self
                .out
                .insert(crate::spill::Writer::new("a package's usage cells")?),
        };
        out.record(|b| {
            b.extend_from_slice(&(interval as u64).to_le_bytes());
            b.extend_from_slice(&cgroup.to_le_bytes());
            put_usage(b, u);
        })?;
        Ok(())
    }

    pub fn finish(self) -> Result<SpilledCells> {
        let (file, bytes) = match self.out {
            Some(out) => {
                let (file, bytes) = out.finish()?;
                (Some(file), bytes)
            }
            None => (None, 0),
        };
        Ok(SpilledCells { file, bytes })
    }
}

/// A package's cells, front to back.
pub struct Cells<'a> {
    of: &'a SpilledCells,
    chunk: Chunked,
    /// File offset of the next cell.
    at: u64,
    failed: bool,
}

/// Room for a cell's bytes: its keys, CPU time, counter count and eight counters; a cell with
/// more is read again with room for it.
const CELL_ROOM: u64 = 8 + 8 + 8 + 4 + 8 * 8;

impl Iterator for Cells<'_> {
    type Item = Result<(usize, u64, Usage)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.of.bytes {
            return None;
        }
        let file = self.of.file.as_ref()?;
        let mut room = CELL_ROOM;
        loop {
            let to = (self.at + room).min(self.of.bytes);
            let bytes = match self.chunk.bytes(file, self.of.bytes, self.at, to) {
                Ok(b) => b,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e).context("reading a package's spilled usage cells"));
                }
            };
            let mut b = bytes;
            let cell = (|| {
                let i = u64::from_le_bytes(take(&mut b)?) as usize;
                let cg = u64::from_le_bytes(take(&mut b)?);
                let mut u = Usage::default();
                usage_into(&mut b, &mut u)?;
                Some((i, cg, u))
            })();
            match cell {
                Some(c) => {
                    self.at += (bytes.len() - b.len()) as u64;
                    return Some(Ok(c));
                }
                None if to < self.of.bytes => room *= 4,
                None => {
                    self.failed = true;
                    return Some(Err(anyhow::anyhow!(
                        "a package's spilled usage cells end inside a cell (byte {})",
                        self.at
                    )));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::CHUNK;

    fn cell(i: usize, counters: usize) -> (usize, u64, Usage) {
        let u = Usage {
            cpu_ns: i as u64 * 3,
            counters: (0..counters).map(|c| i as f64 / (c + 1) as f64).collect(),
        };
        (i / 3, (i % 3) as u64 * 1000, u)
    }

    /// Many chunks, cells with no counters and with more than the room guessed: read back as
    /// written, twice, bit for bit.
    #[test]
    fn cells_read_back_in_order_as_written() {
        let want: Vec<_> = (0..40_000).map(|i| cell(i, [0, 1, 3, 20][i % 4])).collect();
        let mut w = SpilledCells::writer();
        for (i, cg, u) in &want {
            w.push(*i, *cg, u).unwrap();
        }
        let s = w.finish().unwrap();
        for _ in 0..2 {
            let got: Vec<_> = s.iter().collect::<Result<_>>().unwrap();
            assert_eq!(got, want);
        }
        let none = SpilledCells::writer().finish().unwrap();
        assert!(none.iter().next().is_none());
    }

    /// Cut past its first chunk: the cells before the cut read back, then one error, and
    /// nothing after it.
    #[test]
    fn a_file_cut_short_is_an_error_not_a_panic() {
        let mut w = SpilledCells::writer();
        let n = 4 * CHUNK / 40;
        for i in 0..n {
            let (i, cg, u) = cell(i, 2);
            w.push(i, cg, &u).unwrap();
        }
        let s = w.finish().unwrap();
        s.file
            .as_ref()
            .unwrap()
            .set_len(2 * CHUNK as u64 + 3)
            .unwrap();
        let read: Vec<_> = s.iter().collect();
        assert!(read.len() > 1000 && read.len() < n, "{} read", read.len());
        let e = read.last().unwrap().as_ref().unwrap_err().to_string();
        assert!(e.contains("spilled usage cells"), "{e}");
        for (k, r) in read[..read.len() - 1].iter().enumerate() {
            assert_eq!(r.as_ref().unwrap(), &cell(k, 2), "cell {k}");
        }
    }
}
