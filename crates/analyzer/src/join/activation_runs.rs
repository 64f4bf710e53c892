//! Each activation's usage by (interval, package) and its share of its container's presence by
//! interval: written by the join one activation at a time ([`RunsWriter`], from
//! `windows::apportion`), read back by the attribution in activation order, once per counter,
//! model and idle policy ([`RunReader`]).
//!
//! They were the join's largest part on a long trace (55 MB of an hour at 50 activations a
//! second, held through the whole attribution), so they are spilled to disk (`crate::spill`):
//! what stays in memory is where each activation's run starts (8 bytes an activation) and, per
//! reader, one chunk of the file and the activation being read.
//!
//! A run, little-endian: its cell count and presence count (u32 each); each cell's interval
//! (u64), package (u32) and usage (`spill::put_usage`); each presence's interval (u64) and
//! nanoseconds (f64). Values are written bit for bit, so the
//! attribution reads what the join computed.

use anyhow::Result;

use crate::replay::cpu::Usage;
use crate::spill::{count, put_usage, take, usage_into, Chunked, Indexed, IndexedWriter};

/// The spilled runs of every activation, one record an activation (`spill::Indexed`).
#[derive(Debug, Default)]
pub struct ActivationRuns {
    /// None where nothing was written (no activation was joined).
    spilled: Option<Indexed>,
}

impl ActivationRuns {
    /// A reader positioned nowhere; each reads the file on its own.
    pub fn reader(&self) -> RunReader<'_> {
        RunReader {
            runs: self,
            chunk: Chunked::default(),
            current: None,
            cells: Vec::new(),
            presence: Vec::new(),
            error: None,
        }
    }
}

/// Writes runs in activation order.
pub struct RunsWriter {
    out: IndexedWriter,
}

impl RunsWriter {
    /// A writer to a new spill file.
    pub fn new() -> Result<Self> {
        Ok(Self {
            out: IndexedWriter::new("the activations' usage")?,
        })
    }

    /// Appends activation `a`'s run (cells and presence each sorted by key); activations come
    /// in increasing order, and those skipped have empty runs.
    pub fn push(
        &mut self,
        a: usize,
        cells: &[((usize, u32), Usage)],
        presence: &[(usize, f64)],
    ) -> Result<()> {
        self.out.record(a, |b| {
            b.extend_from_slice(&count(cells.len()).to_le_bytes());
            b.extend_from_slice(&count(presence.len()).to_le_bytes());
            for ((k, pkg), u) in cells {
                b.extend_from_slice(&(*k as u64).to_le_bytes());
                b.extend_from_slice(&pkg.to_le_bytes());
                put_usage(b, u);
            }
            for (k, ns) in presence {
                b.extend_from_slice(&(*k as u64).to_le_bytes());
                b.extend_from_slice(&ns.to_le_bytes());
            }
        })
    }

    /// The runs written, for reading.
    pub fn finish(self) -> Result<ActivationRuns> {
        Ok(ActivationRuns {
            spilled: Some(self.out.finish()?),
        })
    }
}

/// Reads one activation's run at a time, from a chunk of the file read at once: reading in
/// activation order reads the file once, front to back.
pub struct RunReader<'a> {
    runs: &'a ActivationRuns,
    chunk: Chunked,
    current: Option<usize>,
    cells: Vec<((usize, u32), Usage)>,
    presence: Vec<(usize, f64)>,
    /// The first read that failed: the runs it left out read as empty, so whoever reads must
    /// ask ([`RunReader::error`]) before trusting a pass.
    error: Option<String>,
}

impl RunReader<'_> {
    /// Activation `a`'s usage in interval `k` on package `pkg`.
    #[cfg(test)]
    pub fn get(&mut self, a: usize, k: usize, pkg: u32) -> Option<&Usage> {
        self.load(a);
        self.find(k, pkg)
    }

    /// In the run loaded by the last [`RunReader::load`].
    pub fn find(&self, k: usize, pkg: u32) -> Option<&Usage> {
        self.cells
            .iter()
            .find(|(key, _)| *key == (k, pkg))
            .map(|(_, u)| u)
    }

    /// Activation `a`'s presence in interval `k`, ns.
    pub fn presence(&mut self, a: usize, k: usize) -> Option<f64> {
        self.load(a);
        self.presence
            .iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| *v)
    }

    /// What a failed read of the spill file said; None while every read succeeded.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Makes activation `a`'s run the current one.
    pub fn load(&mut self, a: usize) {
        if self.current == Some(a) {
            return;
        }
        self.current = Some(a);
        self.cells.clear();
        self.presence.clear();
        let Some(spilled) = &self.runs.spilled else {
            return;
        };
        let Some((from, to)) = spilled.range(a) else {
            return;
        };
        if from == to {
            return;
        }
        let bytes = match spilled.bytes(&mut self.chunk, a) {
            Ok(b) => b,
            Err(e) => {
                self.error
                    .get_or_insert_with(|| format!("reading the spilled activations' usage: {e}"));
                return;
            }
        };
        if decode(bytes, &mut self.cells, &mut self.presence).is_none() {
            self.cells.clear();
            self.presence.clear();
            self.error.get_or_insert_with(|| {
                format!("the spilled usage of activation {a} is cut short (bytes {from}..{to})")
            });
        }
    }
}

/// One run's cells and presence; None where the bytes end early.
fn decode(
    mut b: &[u8],
    cells: &mut Vec<((usize, u32), Usage)>,
    presence: &mut Vec<(usize, f64)>,
) -> Option<()> {
    let n_cells = u32::from_le_bytes(take(&mut b)?);
    let n_presence = u32::from_le_bytes(take(&mut b)?);
    for _ in 0..n_cells {
        let k = u64::from_le_bytes(take(&mut b)?) as usize;
        let pkg = u32::from_le_bytes(take(&mut b)?);
        let mut u = Usage::default();
        usage_into(&mut b, &mut u)?;
        cells.push(((k, pkg), u));
    }
    for _ in 0..n_presence {
        let k = u64::from_le_bytes(take(&mut b)?) as usize;
        presence.push((k, f64::from_le_bytes(take(&mut b)?)));
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::CHUNK;

    fn u(ns: u64, counters: &[f64]) -> Usage {
        Usage {
            cpu_ns: ns,
            counters: counters.iter().copied().collect(),
        }
    }

    /// An activation, its cells and its presence.
    type Run = (usize, Vec<((usize, u32), Usage)>, Vec<(usize, f64)>);

    fn written(runs: &[Run]) -> ActivationRuns {
        let mut w = RunsWriter::new().unwrap();
        for (a, cells, presence) in runs {
            w.push(*a, cells, presence).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn runs_read_back_bit_for_bit_in_any_order_and_skipped_activations_have_none() {
        let tiny = 0.1 + 0.2;
        let runs = written(&[
            (
                1,
                vec![((4, 0), u(10, &[tiny])), ((5, 1), u(20, &[]))],
                vec![(4, 1.5), (5, tiny)],
            ),
            (4, vec![((5, 0), u(30, &[1.0, -0.0, f64::MAX]))], vec![]),
            (5, vec![], vec![]),
        ]);
        let mut r = runs.reader();
        assert_eq!(r.get(0, 4, 0), None, "before the first run");
        assert_eq!(r.get(1, 4, 0), Some(&u(10, &[tiny])));
        assert_eq!(r.get(1, 5, 1).map(|u| u.counters.len()), Some(0));
        assert_eq!(r.presence(1, 5).map(f64::to_bits), Some(tiny.to_bits()));
        assert_eq!(r.get(2, 5, 0), None, "skipped");
        assert_eq!(r.get(3, 5, 0), None, "skipped");
        let c = r.get(4, 5, 0).unwrap().clone();
        assert_eq!(c, u(30, &[1.0, -0.0, f64::MAX]));
        assert!(c.counters[1].is_sign_negative(), "-0 stays -0");
        assert_eq!(r.get(4, 4, 0), None);
        assert_eq!(r.presence(4, 5), None);
        assert_eq!(r.get(5, 5, 0), None, "an empty run");
        assert_eq!(r.get(6, 5, 0), None, "past the end");
        // Back to the start: a second pass, or a random access.
        assert_eq!(r.get(1, 4, 0), Some(&u(10, &[tiny])));
        assert_eq!(r.error(), None);
        let nothing = ActivationRuns::default();
        assert_eq!(nothing.reader().get(0, 0, 0), None);
    }

    /// Runs across chunk boundaries (the file several chunks long), read forwards twice.
    #[test]
    fn a_long_file_reads_the_same_through_its_chunks() {
        let n = 3 * CHUNK / 100;
        let runs: Vec<_> = (0..n)
            .map(|a| {
                let cells = (0..(a % 4))
                    .map(|k| ((a + k, (k % 2) as u32), u(a as u64, &[a as f64 / 3.0])))
                    .collect();
                (a, cells, vec![(a, a as f64 * 0.5)])
            })
            .collect();
        let spilled = written(&runs);
        for _ in 0..2 {
            let mut r = spilled.reader();
            for (a, cells, presence) in &runs {
                for ((k, pkg), want) in cells {
                    assert_eq!(r.get(*a, *k, *pkg), Some(want), "activation {a}");
                }
                assert_eq!(r.presence(*a, presence[0].0), Some(presence[0].1));
            }
            assert_eq!(r.error(), None);
        }
    }

    #[test]
    fn a_file_cut_short_is_an_error_not_a_panic() {
        let runs: Vec<Run> = (0..1000)
            .map(|a| (a, vec![((a, 0), u(a as u64, &[1.0]))], vec![(a, 2.0)]))
            .collect();
        let spilled = written(&runs);
        let runs = spilled.spilled.as_ref().unwrap();
        let (at, _) = runs.range(500).unwrap();
        runs.file().set_len(at + 5).unwrap();
        let mut r = spilled.reader();
        assert_eq!(r.get(999, 999, 0), None);
        let e = r.error().expect("an error").to_owned();
        assert!(e.contains("spilled activations' usage"), "{e}");
    }
}
