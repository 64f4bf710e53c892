//! A dataset's intervals on disk (`crate::spill`), read back as the models and the attribution
//! ask for them: every pass (a fold's fit, a policy's attribution, the activations in turn)
//! goes through the intervals in time order, or near it, so a chunk of the file and the last
//! intervals decoded ([`RecentIntervals`]) serve almost every request. What stays in memory is
//! where each interval starts (8 bytes an interval), one chunk and the recent intervals.
//!
//! An interval, little-endian: start and end (u64), energy (f64), fitted (u8), its cgroup
//! count (u32), its total, then each cgroup's key (u64) and usage; a usage is its CPU time
//! (u64), its counter count (u32) and counters (f64 each). Values are written bit for bit.

use std::cell::RefCell;
use std::rc::Rc;

use anyhow::Result;

use super::dataset::Interval;
use super::recent_intervals::RecentIntervals;
use crate::spill::{count, put_usage, take, usage_into, Chunked, Indexed, IndexedWriter};

#[derive(Debug)]
pub struct SpilledIntervals {
    /// One record an interval.
    spilled: Indexed,
    reader: RefCell<Reader>,
}

struct Reader {
    chunk: Chunked,
    recent: RecentIntervals<Rc<Interval>>,
    /// The first read that failed (the interval stands as an empty one).
    error: Option<String>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("error", &self.error)
            .finish()
    }
}

/// Writes intervals in order.
pub struct Writer {
    out: IndexedWriter,
}

impl SpilledIntervals {
    pub fn writer() -> Result<Writer> {
        Ok(Writer {
            out: IndexedWriter::new("a dataset's intervals")?,
        })
    }

    pub fn len(&self) -> usize {
        self.spilled.len()
    }

    /// Interval `i` (< `len()`); one with no energy and no usage where the file could not be
    /// read, which [`SpilledIntervals::check`] then reports.
    pub fn get(&self, i: usize) -> Rc<Interval> {
        let mut r = self.reader.borrow_mut();
        let Reader {
            chunk,
            recent,
            error,
        } = &mut *r;
        recent
            .get_or_make(i, |old| {
                // The interval it replaces, when nobody holds it any more: its room reused
                // (a fresh interval per request was a tenth of an hour's analysis).
                let mut iv = old
                    .filter(|o| Rc::strong_count(o) == 1 && Rc::weak_count(o) == 0)
                    .unwrap_or_default();
                let into = Rc::get_mut(&mut iv).expect("held by nobody else");
                let bytes = match self.spilled.bytes(chunk, i) {
                    Ok(b) => b,
                    Err(e) => {
                        error.get_or_insert_with(|| {
                            format!("reading a dataset's spilled intervals: {e}")
                        });
                        *into = unreadable();
                        return iv;
                    }
                };
                if decode_into(bytes, into).is_none() {
                    let (from, to) = self.spilled.range(i).unwrap_or_default();
                    error.get_or_insert_with(|| {
                        format!("spilled interval {i} is cut short (bytes {from}..{to})")
                    });
                    *into = unreadable();
                }
                iv
            })
            .clone()
    }

    pub fn check(&self) -> Result<()> {
        match &self.reader.borrow().error {
            Some(e) => Err(anyhow::anyhow!("{e}")),
            None => Ok(()),
        }
    }
}

fn unreadable() -> Interval {
    Interval {
        energy_j: f64::NAN,
        ..Interval::default()
    }
}

impl Writer {
    pub fn push(&mut self, iv: &Interval) -> Result<()> {
        self.out.push(|b| {
            b.extend_from_slice(&iv.start.to_le_bytes());
            b.extend_from_slice(&iv.end.to_le_bytes());
            b.extend_from_slice(&iv.energy_j.to_le_bytes());
            b.push(u8::from(iv.fitted));
            b.extend_from_slice(&count(iv.cgroups.len()).to_le_bytes());
            put_usage(b, &iv.total);
            for (cg, u) in &iv.cgroups {
                b.extend_from_slice(&cg.to_le_bytes());
                put_usage(b, u);
            }
        })
    }

    pub fn finish(self) -> Result<SpilledIntervals> {
        Ok(SpilledIntervals {
            spilled: self.out.finish()?,
            reader: RefCell::new(Reader {
                chunk: Chunked::default(),
                recent: RecentIntervals::default(),
                error: None,
            }),
        })
    }
}

/// Decodes an interval into `iv`, reusing its cgroups' room.
fn decode_into(mut b: &[u8], iv: &mut Interval) -> Option<()> {
    let b = &mut b;
    iv.start = u64::from_le_bytes(take(b)?);
    iv.end = u64::from_le_bytes(take(b)?);
    iv.energy_j = f64::from_le_bytes(take(b)?);
    iv.fitted = take::<1>(b)?[0] != 0;
    let n = u32::from_le_bytes(take(b)?) as usize;
    usage_into(b, &mut iv.total)?;
    iv.cgroups.truncate(n);
    iv.cgroups.resize_with(n, Default::default);
    for (cg, u) in iv.cgroups.iter_mut() {
        *cg = u64::from_le_bytes(take(b)?);
        usage_into(b, u)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::recent_intervals::RECENT;
    use crate::replay::cpu::Usage;
    use crate::spill::CHUNK;

    fn iv(i: usize) -> Interval {
        let u = |ns: u64, c: &[f64]| Usage {
            cpu_ns: ns,
            counters: c.iter().copied().collect(),
        };
        let cgroups: Vec<(u64, Usage)> = (0..(i % 3) as u64)
            .map(|c| {
                (
                    c * 7,
                    u(i as u64 + c, &[0.1 * i as f64, -0.0][..(c as usize)]),
                )
            })
            .collect();
        Interval {
            start: i as u64 * 10,
            end: i as u64 * 10 + 10,
            energy_j: if i % 5 == 0 { f64::NAN } else { i as f64 / 3.0 },
            fitted: i % 2 == 0,
            total: u(i as u64, &[i as f64 + 0.1]),
            cgroups,
        }
    }

    fn same(a: &Interval, b: &Interval) -> bool {
        a.start == b.start
            && a.end == b.end
            && a.energy_j.to_bits() == b.energy_j.to_bits()
            && a.fitted == b.fitted
            && a.total == b.total
            && a.cgroups == b.cgroups
            && a.cgroups.iter().zip(&b.cgroups).all(|(x, y)| {
                x.1.counters
                    .iter()
                    .zip(&y.1.counters)
                    .all(|(p, q)| p.to_bits() == q.to_bits())
            })
    }

    /// Several chunks and more intervals than the cache holds, read forwards, backwards and
    /// at random: every one as written, bit for bit.
    #[test]
    fn intervals_read_back_as_written_in_any_order() {
        let n = 3 * RECENT + 5000;
        let mut w = SpilledIntervals::writer().unwrap();
        for i in 0..n {
            w.push(&iv(i)).unwrap();
        }
        let s = w.finish().unwrap();
        assert_eq!(s.len(), n);
        assert!(
            s.spilled.range(n - 1).unwrap().1 > 2 * CHUNK as u64,
            "several chunks"
        );
        for i in (0..n).chain((0..n).rev()) {
            assert!(same(&s.get(i), &iv(i)), "interval {i}");
        }
        let mut x = 12345usize;
        for _ in 0..5000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (x >> 33) % n;
            assert!(same(&s.get(i), &iv(i)), "interval {i}");
        }
        s.check().unwrap();
    }

    /// A spill file cut short under the analysis (a full disk, another process): the intervals
    /// past the cut read as empty ones, and `check` says so, so no pass is trusted.
    #[test]
    fn a_file_cut_short_is_an_error_not_a_panic() {
        let mut w = SpilledIntervals::writer().unwrap();
        for i in 0..100 {
            w.push(&iv(i)).unwrap();
        }
        let s = w.finish().unwrap();
        assert!(same(&s.get(10), &iv(10)));
        s.check().unwrap();
        let (at, _) = s.spilled.range(50).unwrap();
        s.spilled.file().set_len(at + 3).unwrap();
        // Past the chunk read before the cut.
        s.reader.borrow_mut().chunk = Chunked::default();
        let lost = s.get(80);
        assert!(lost.energy_j.is_nan() && lost.cgroups.is_empty());
        let e = s.check().unwrap_err().to_string();
        assert!(e.contains("spilled intervals"), "{e}");
    }
}
