//! Summing the CPUs' activation-window segments per package as the accounting gives them,
//! round by round, as `package_merge` does for the (interval, cgroup) cells.
//!
//! Each CPU hands over its final segments (steal and IRQ time taken out) with the interval
//! before which it has handed over all of them (its horizon). A segment lies in one interval,
//! so an interval's segments are summed once every CPU's horizon has passed it, each adding its
//! CPUs in stream order: the sums are those of gathering every CPU's segments at the end
//! ([`SegmentUsage::gather`]), bit for bit, without holding every CPU's list of
//! them and then their sorted copy (on an hour of a busy node those were the join's peak).
//!
//! The sums go to a spill file as they are made, in that order (about time order), and only
//! which record holds each (segment, package) stays in memory: 12 bytes a segment, where the
//! sums themselves were 64 (39 MB of an hour's accounting and join, 250 MB at 200 activations
//! a second).

use std::os::unix::fs::FileExt;

use anyhow::{Context, Result};

use super::cpu::Usage;
use super::package_merge::Streams;
use crate::spill;

/// A CPU's segment: (segment, interval) and its usage, as the walk gives it.
pub type Segment = ((usize, usize), Usage);

/// The merge of every CPU stream's segments into per-(segment, package) sums.
#[derive(Debug)]
pub struct SegmentMerge {
    /// The streams' segments not yet summed, keyed (interval, segment).
    streams: Streams,
    /// The sums, in the order summed: indexed by key at the end.
    out: SegmentWriter,
    /// Scratch for one package's sums of a round.
    summed: Vec<(usize, u64, Usage)>,
}

impl SegmentMerge {
    /// One stream per entry of `packages` (a CPU stream's package), in the order the sums add
    /// them; `expected` segments in all, about (room for their index is made once); usages of
    /// at most `columns` counters.
    pub fn new(
        packages: impl IntoIterator<Item = u32>,
        expected: usize,
        columns: usize,
    ) -> Result<Self> {
        Ok(Self {
            streams: Streams::new(packages),
            out: SegmentWriter::new(expected, columns)?,
            summed: Vec::new(),
        })
    }

    /// Stream `n`'s next segments (in any order), and the interval before which it has now
    /// given all of its segments.
    pub fn push(&mut self, n: usize, segments: Vec<Segment>, horizon: usize) {
        let mut keyed: Vec<((usize, u64), Usage)> = segments
            .into_iter()
            .map(|((seg, i), u)| ((i, seg as u64), u))
            .collect();
        keyed.sort_unstable_by_key(|(k, _)| *k);
        self.streams.push(n, keyed, horizon);
    }

    /// Sums the segments of every interval that all streams have passed.
    pub fn advance(&mut self) -> Result<()> {
        let Some(horizon) = self.streams.horizon() else {
            return Ok(());
        };
        for pkg in self.streams.packages.clone() {
            self.streams.sum_before(pkg, horizon, &mut self.summed);
            for (_, seg, u) in self.summed.drain(..) {
                self.out.push(seg as usize, pkg, &u)?;
            }
        }
        Ok(())
    }

    /// Every stream done: sums what is left and returns the segments' usage by (segment,
    /// package), one entry per key.
    pub fn finish(mut self) -> Result<SegmentUsage> {
        self.streams.end();
        self.advance()?;
        self.out.finish()
    }
}

/// Writes ((segment, package), usage) records of one size (`record_len`) to a spill file,
/// noting each one's key and number.
#[derive(Debug)]
struct SegmentWriter {
    out: spill::Writer,
    columns: usize,
    index: Vec<(u32, u32, u32)>,
}

/// Bytes of a record: segment u64, package u32, counter count u32, CPU time u64, then
/// `columns` counters (f64; those past the count are 0), little-endian, bit for bit.
fn record_len(columns: usize) -> usize {
    24 + 8 * columns
}

impl SegmentWriter {
    fn new(expected: usize, columns: usize) -> Result<Self> {
        Ok(Self {
            out: spill::Writer::new("the activation windows' segment usage")?,
            columns,
            index: Vec::with_capacity(expected),
        })
    }

    fn push(&mut self, seg: usize, pkg: u32, u: &Usage) -> Result<()> {
        anyhow::ensure!(
            u.counters.len() <= self.columns,
            "segment {seg}'s usage has {} counters, the trace {}",
            u.counters.len(),
            self.columns
        );
        let (s, n) = (u32::try_from(seg), u32::try_from(self.index.len()));
        let (Ok(s), Ok(n)) = (s, n) else {
            anyhow::bail!("more than 4 G activation-window segments");
        };
        let columns = self.columns;
        self.out.record(|b| {
            b.extend_from_slice(&(seg as u64).to_le_bytes());
            b.extend_from_slice(&pkg.to_le_bytes());
            b.extend_from_slice(&spill::count(u.counters.len()).to_le_bytes());
            b.extend_from_slice(&u.cpu_ns.to_le_bytes());
            for k in 0..columns {
                let c = u.counters.get(k).copied().unwrap_or(0.0);
                b.extend_from_slice(&c.to_le_bytes());
            }
        })?;
        self.index.push((s, pkg, n));
        Ok(())
    }

    fn finish(self) -> Result<SegmentUsage> {
        let (file, len) = self.out.finish()?;
        let mut index = self.index;
        // By key, a key's records in the order written (the record number ends the tuple).
        index.sort_unstable();
        index.shrink_to_fit();
        Ok(SegmentUsage {
            file: Some(file),
            len,
            record: record_len(self.columns),
            index,
        })
    }
}

/// The replay's segment usage, per package: (segment, package) and usage, one entry per key,
/// read back by segment ([`SegmentUsage::reader`]). The records are on disk, in the order
/// summed; in memory, (segment, package, record number) sorted by key.
#[derive(Debug, Default)]
pub struct SegmentUsage {
    file: Option<std::fs::File>,
    len: u64,
    record: usize,
    index: Vec<(u32, u32, u32)>,
}

impl SegmentUsage {
    /// Each CPU's (segment, interval) usage, on its package, in the order given: a key's
    /// parts are added in that order (so the sums are those of one map filled CPU by CPU).
    /// A segment lies in one interval, so the interval is not part of the key. The
    /// accounting sums them round by round instead (`replay::segment_merge`); this is what its
    /// tests compare it with.
    #[cfg(test)]
    pub fn gather<M>(per_cpu: Vec<(u32, M)>) -> Self
    where
        M: IntoIterator<Item = ((usize, usize), Usage)>,
        M::IntoIter: ExactSizeIterator,
    {
        let per_cpu: Vec<(u32, M::IntoIter)> = per_cpu
            .into_iter()
            .map(|(pkg, m)| (pkg, m.into_iter()))
            .collect();
        let n = per_cpu.iter().map(|(_, m)| m.len()).sum();
        // (segment, package, the CPU's position): a CPU gives a segment once, so the keys
        // are distinct and sorting them in place keeps a key's parts in CPU order (a stable
        // sort would take half the list again as scratch). The position fits the key's
        // padding.
        let mut parts: Vec<((usize, u32, u32), Usage)> = Vec::with_capacity(n);
        for (at, (pkg, m)) in per_cpu.into_iter().enumerate() {
            let at = u32::try_from(at).unwrap_or(u32::MAX);
            parts.extend(m.map(|((seg, _), u)| ((seg, pkg, at), u)));
        }
        parts.sort_unstable_by_key(|(k, _)| *k);
        let mut cells: Vec<((usize, u32), Usage)> = parts
            .into_iter()
            .map(|((seg, pkg, _), u)| ((seg, pkg), u))
            .collect();
        // Summed in place, each key's sum started from zero as a map's entry would be.
        for i in 0..cells.len() {
            if i == 0 || cells[i - 1].0 != cells[i].0 {
                let mut sum = Usage::default();
                sum.add(&cells[i].1);
                cells[i].1 = sum;
            }
        }
        Self::from_summed(cells)
    }

    /// Sums already made, in any order. A key listed twice is added into one entry.
    #[cfg(test)]
    pub fn from_summed(cells: Vec<((usize, u32), Usage)>) -> Self {
        let columns = cells.iter().map(|c| c.1.counters.len()).max().unwrap_or(0);
        let mut w = SegmentWriter::new(cells.len(), columns).expect("a spill file");
        for ((seg, pkg), u) in &cells {
            w.push(*seg, *pkg, u).expect("spilled");
        }
        w.finish().expect("spilled")
    }

    /// Every (segment, package) and its usage, in key order (tests).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (usize, u32, Usage)> {
        let mut r = self.reader();
        let mut all = Vec::new();
        let mut one = Vec::new();
        let last = self.index.last().map_or(0, |e| e.0 as usize + 1);
        for s in 0..last {
            r.of_segment(s, &mut one).expect("read back");
            all.extend(one.drain(..).map(|(p, u)| (s, p, u)));
        }
        all.into_iter()
    }

    /// Each segment's CPU time, summed over its packages, for segments `0..n` (from the file
    /// in order: integer sums, so in any order the same).
    pub fn cpu_ns_per_segment(&self, n: usize) -> Result<Vec<u64>> {
        let mut per_seg = vec![0u64; n];
        let Some(file) = &self.file else {
            return Ok(per_seg);
        };
        let mut chunk = spill::Chunked::default();
        let mut at = 0u64;
        while at < self.len {
            let to = (at + (spill::CHUNK - spill::CHUNK % self.record) as u64).min(self.len);
            let bytes = chunk
                .bytes(file, self.len, at, to)
                .context("reading the activation windows' segment usage back")?;
            for r in bytes.chunks(self.record) {
                let (seg, cpu_ns) = (le_u64(r, 0), le_u64(r, 16));
                let (Some(seg), Some(cpu_ns)) = (seg, cpu_ns) else {
                    anyhow::bail!("the activation windows' segment usage spill is cut short");
                };
                if let Some(s) = per_seg.get_mut(seg as usize) {
                    *s += cpu_ns;
                }
            }
            at = to;
        }
        Ok(per_seg)
    }

    /// A reader of the records by segment.
    pub fn reader(&self) -> SegmentReader<'_> {
        SegmentReader {
            usage: self,
            chunk: Vec::new(),
            chunk_at: 0,
        }
    }
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a [`SegmentUsage`]'s records by segment, through a small window of the file: the
/// split asks for the segments of one activation after another, in about the order they
/// were written, so each piece of the file is read about once.
#[derive(Debug)]
pub struct SegmentReader<'a> {
    usage: &'a SegmentUsage,
    chunk: Vec<u8>,
    /// File offset of `chunk[0]`.
    chunk_at: u64,
}

/// Bytes read at once by a [`SegmentReader`]: records near the one asked.
const READER_CHUNK: usize = 16 * 1024;

impl SegmentReader<'_> {
    /// Segment `s`'s (package, usage), in package order, into `out` (emptied first); a
    /// package's records, were there several, added in the order written.
    pub fn of_segment(&mut self, s: usize, out: &mut Vec<(u32, Usage)>) -> Result<()> {
        out.clear();
        let u = self.usage;
        let Ok(s32) = u32::try_from(s) else {
            return Ok(());
        };
        let from = u.index.partition_point(|e| e.0 < s32);
        for &(seg, pkg, n) in u.index[from..].iter().take_while(|e| e.0 == s32) {
            let r = self.record(n)?;
            let parsed = (|| {
                let (rseg, head) = (le_u64(r, 0)?, r.get(8..16)?);
                let rpkg = u32::from_le_bytes(head[..4].try_into().ok()?);
                let k = u32::from_le_bytes(head[4..].try_into().ok()?) as usize;
                let cpu_ns = le_u64(r, 16)?;
                let counters: Vec<f64> = r
                    .get(24..24 + 8 * k)?
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                ((rseg, rpkg) == (u64::from(seg), pkg)).then_some(Usage {
                    cpu_ns,
                    counters: counters.into(),
                })
            })();
            let Some(usage) = parsed else {
                anyhow::bail!(
                    "the activation windows' segment usage spill does not hold segment {s}'s record {n}"
                );
            };
            match out.last_mut() {
                Some((p, sum)) if *p == pkg => sum.add(&usage),
                _ => out.push((pkg, usage)),
            }
        }
        Ok(())
    }

    /// Record `n`'s bytes, from the chunk held when it has them.
    fn record(&mut self, n: u32) -> Result<&[u8]> {
        let u = self.usage;
        let len = u.record as u64;
        let from = u64::from(n) * len;
        let Some(file) = u.file.as_ref().filter(|_| from + len <= u.len) else {
            anyhow::bail!("the activation windows' segment usage spill has no record {n}");
        };
        let held = self.chunk_at..self.chunk_at + self.chunk.len() as u64;
        if !(held.contains(&from) && from + len <= held.end) {
            // The chunk starts a little before the record: the split goes on about forward.
            let per = (READER_CHUNK / u.record).max(1) as u64;
            let first = u64::from(n).saturating_sub(per / 8);
            self.chunk_at = first * len;
            let to = (self.chunk_at + per * len).min(u.len);
            self.chunk.resize((to - self.chunk_at) as usize, 0);
            if let Err(e) = file.read_exact_at(&mut self.chunk, self.chunk_at) {
                self.chunk.clear();
                return Err(e).context("reading the activation windows' segment usage back");
            }
        }
        let a = (from - self.chunk_at) as usize;
        Ok(&self.chunk[a..a + u.record])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(v: &[(usize, usize, u64)]) -> Vec<Segment> {
        v.iter()
            .map(|&(seg, i, ns)| ((seg, i), Usage::one(ns, ns as f64 / 3.0)))
            .collect()
    }

    fn listed(u: &SegmentUsage) -> Vec<(usize, u32, u64, u64)> {
        u.iter()
            .map(|(s, p, u)| (s, p, u.cpu_ns, u.counters[0].to_bits()))
            .collect()
    }

    /// Round by round or gathered at the end, the same sums, bit for bit; a segment waits
    /// until every CPU has passed its interval.
    #[test]
    fn by_rounds_as_gathered_at_the_end() {
        // (segment, interval, ns); segment 4 is on CPUs 0 and 1 (package 0) and CPU 2
        // (package 1).
        let cpu0 = [(4, 0, 10), (9, 0, 7), (5, 1, 20), (6, 3, 1)];
        let cpu1 = [(4, 0, 3), (5, 1, 6), (7, 2, 2)];
        let cpu2 = [(4, 0, 9), (8, 3, 4)];
        let gathered =
            SegmentUsage::gather(vec![(0, segs(&cpu0)), (0, segs(&cpu1)), (1, segs(&cpu2))]);
        let mut m = SegmentMerge::new([0, 0, 1], 4, 1).unwrap();
        m.push(0, segs(&cpu0[..2]), 1);
        m.push(1, segs(&cpu1[..1]), 1);
        m.push(2, Vec::new(), 0);
        m.advance().unwrap();
        assert!(m.out.index.is_empty(), "CPU 2 has not passed interval 0");
        m.push(2, segs(&cpu2[..1]), 2);
        m.advance().unwrap();
        assert_eq!(
            m.out.index.len(),
            3,
            "interval 0: segment 4 on both packages, 9"
        );
        m.push(0, segs(&cpu0[2..]), usize::MAX);
        m.push(1, segs(&cpu1[1..]), 2);
        m.advance().unwrap();
        m.push(2, segs(&cpu2[1..]), 4);
        let got = m.finish().unwrap();
        assert_eq!(listed(&got), listed(&gathered));
        assert_eq!(
            got.iter()
                .map(|(s, p, u)| (s, p, u.cpu_ns))
                .collect::<Vec<_>>(),
            [
                (4, 0, 13),
                (4, 1, 9),
                (5, 0, 26),
                (6, 0, 1),
                (7, 0, 2),
                (8, 1, 4),
                (9, 0, 7)
            ]
        );
    }

    /// Read back by segment in any order, across the reader's chunks, each segment's entries
    /// are those summed, in package order; a spill file cut short is an error, never a wrong
    /// or a missing usage.
    #[test]
    fn segments_read_back_in_any_order_and_a_short_spill_is_an_error() {
        // 3,000 segments of 32-byte records: several of the reader's chunks.
        let n = 3000;
        let cells: Vec<((usize, u32), Usage)> = (0..n)
            .flat_map(|s| {
                let pkgs: &[u32] = if s % 7 == 0 { &[0, 1] } else { &[0] };
                pkgs.iter().map(move |&p| {
                    (
                        (s, p),
                        Usage::one(10 * s as u64 + u64::from(p), s as f64 / 3.0),
                    )
                })
            })
            .collect();
        let of = |s: usize| -> Vec<(u32, Usage)> {
            cells
                .iter()
                .filter(|c| c.0 .0 == s)
                .map(|c| (c.0 .1, c.1.clone()))
                .collect()
        };
        // Written in another order than the keys'.
        let mut written = cells.clone();
        written.rotate_left(n / 3);
        let u = SegmentUsage::from_summed(written);
        let (mut r, mut out) = (u.reader(), Vec::new());
        for s in (0..n).rev().step_by(3).chain(0..n) {
            r.of_segment(s, &mut out).unwrap();
            assert_eq!(out, of(s), "segment {s}");
        }
        r.of_segment(n + 5, &mut out).unwrap();
        assert!(out.is_empty(), "a segment without usage has none");
        let per = u.cpu_ns_per_segment(n).unwrap();
        assert!((0..n).all(|s| per[s] == of(s).iter().map(|x| x.1.cpu_ns).sum::<u64>()));
        u.file.as_ref().unwrap().set_len(u.len - 40).unwrap();
        let mut r = u.reader();
        let err = (0..n)
            .find_map(|s| r.of_segment(s, &mut out).err())
            .expect("an error");
        assert!(err.to_string().contains("segment usage"), "{err}");
        assert!(u.cpu_ns_per_segment(n).is_err());
    }

    /// A segment given again after its interval was summed (no walk does that) is added to
    /// its key, not listed twice.
    #[test]
    fn a_late_part_is_added_to_its_key() {
        let mut m = SegmentMerge::new([0], 0, 1).unwrap();
        m.push(0, segs(&[(3, 0, 5), (2, 1, 1)]), 2);
        m.advance().unwrap();
        m.push(0, segs(&[(3, 0, 7)]), 3);
        let got = m.finish().unwrap();
        let got: Vec<_> = got.iter().map(|(s, p, u)| (s, p, u.cpu_ns)).collect();
        assert_eq!(got, [(2, 0, 1), (3, 0, 12)]);
    }
}
