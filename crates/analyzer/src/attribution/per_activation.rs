//! Every activation's joules under every (domain, model, idle policy), kept as dense columns:
//! an hour of a busy node has ~10⁵ activations × ~30 keys, and a map keyed by (activation,
//! key) spent a tree node and two strings on each (1.3 GB for an hour of 50 activations a
//! second). Per key, each counter's column of idle joules, written to a spill file as it is
//! made and read back a chunk at a time (`spill::Chunked`) as the rows are written: held in memory, a
//! (domain, model)'s five policies were 8 MiB of an hour's attribution peak (`bench/README.md`,
//! session 27). What does not depend on the idle policy (the dynamic joules, whether the
//! energy is complete, measured, and the dynamic energy's uncertainty) is one column per
//! (domain, model) in memory: 32 B per activation, summed over the domain's counters as they
//! come.

use std::collections::HashMap;
use std::fs::File;

use anyhow::{ensure, Context, Result};

use super::uncertainty::Bound;
use super::{DomainJoules, Key};
use crate::spill;

/// One package's part of an activation's energy under one key (`PerActivation::add`).
#[derive(Debug, Clone, Copy)]
pub struct Part {
    /// The same under every idle policy of the model.
    pub dynamic_j: f64,
    pub idle_j: f64,
    /// Every interval it overlaps had known energy (the same under every model and policy).
    pub complete: bool,
    /// The counter is measured, not simulated.
    pub measured: bool,
    /// Its dynamic energy's uncertainty on this counter, where known.
    pub bound: Option<Bound>,
}

#[derive(Debug)]
pub struct PerActivation {
    /// Activations in the trace: every column's length.
    n: usize,
    keys: Vec<Key>,
    index: HashMap<Key, usize>,
    /// Key → its (domain, model) in `shared`.
    group_of: Vec<usize>,
    groups: HashMap<(String, String), usize>,
    /// Per key: its counters' idle columns, in the order they were added.
    idle: Vec<Vec<IdleColumn>>,
    /// Per (domain, model): what every idle policy shares.
    shared: Vec<Vec<Shared>>,
    /// The idle columns, one after another (made at the first).
    spill: Option<spill::Writer>,
}

/// One counter's idle joules under one key: `n` f64 from byte `start` of the spill file (0
/// for an activation it has no part of), and which activations it has parts of.
#[derive(Debug)]
struct IdleColumn {
    start: u64,
    has: Vec<u64>,
}

impl IdleColumn {
    fn has(&self, ai: usize) -> bool {
        self.has[ai / 64] & (1 << (ai % 64)) != 0
    }
}

/// The policy-independent part of [`DomainJoules`].
#[derive(Debug, Clone, Copy, Default)]
struct Shared {
    dynamic_j: f64,
    half_width_sq: f64,
    systematic_j: f64,
    flags: u8,
}

const STARTED: u8 = 1;
const COMPLETE: u8 = 2;
const MEASURED: u8 = 4;
const HAS_HALF_WIDTH: u8 = 8;

impl Shared {
    /// Adds one package's policy-independent part.
    fn add(&mut self, part: &Part) {
        if self.flags & STARTED == 0 {
            *self = Shared {
                dynamic_j: 0.0,
                half_width_sq: 0.0,
                systematic_j: 0.0,
                flags: STARTED
                    | COMPLETE
                    | HAS_HALF_WIDTH
                    | if part.measured { MEASURED } else { 0 },
            };
        }
        self.dynamic_j += part.dynamic_j;
        if !part.complete {
            self.flags &= !COMPLETE;
        }
        // Energy partly unknown has no interval to quote; the packages' parts are independent,
        // so their squares add.
        match part.bound {
            Some(b) if self.flags & COMPLETE != 0 && self.flags & HAS_HALF_WIDTH != 0 => {
                self.half_width_sq += b.half_width_j.powi(2);
            }
            _ => self.flags &= !HAS_HALF_WIDTH,
        }
        self.systematic_j += part.bound.map_or(0.0, |b| b.systematic_j);
    }
}

impl PerActivation {
    pub fn new(activations: usize) -> Self {
        Self {
            n: activations,
            keys: Vec::new(),
            index: HashMap::new(),
            group_of: Vec::new(),
            groups: HashMap::new(),
            idle: Vec::new(),
            shared: Vec::new(),
            spill: None,
        }
    }

    /// The (domain, model) of `key` in `shared`, made at its first key.
    fn group_index(&mut self, key: &Key) -> usize {
        let next = self.shared.len();
        let g = *self
            .groups
            .entry((key.0.clone(), key.1.clone()))
            .or_insert(next);
        if g == next {
            self.shared.push(vec![Shared::default(); self.n]);
        }
        g
    }

    fn key_index(&mut self, key: &Key) -> usize {
        if let Some(&k) = self.index.get(key) {
            return k;
        }
        let g = self.group_index(key);
        self.keys.push(key.clone());
        self.group_of.push(g);
        self.idle.push(Vec::new());
        self.index.insert(key.clone(), self.keys.len() - 1);
        self.keys.len() - 1
    }

    /// Adds one counter's parts of the activations' energy under `key`: `(activation, part)`
    /// by increasing activation. The policy-independent part (the dynamic joules among it) is
    /// taken when `shared_too` (the caller's first idle policy, once per package), so it is
    /// counted once however many policies there are.
    pub fn add(
        &mut self,
        key: &Key,
        parts: impl IntoIterator<Item = (usize, Part)>,
        shared_too: bool,
    ) -> Result<()> {
        // A key has rows only where an activation has a part under it.
        let mut parts = parts.into_iter().peekable();
        if parts.peek().is_none() {
            return Ok(());
        }
        let g = self.group_index(key);
        let n = self.n;
        let out = match &mut self.spill {
            Some(w) => w,
            None => self
                .spill
                .insert(spill::Writer::new("the activations' idle joules")?),
        };
        // An empty record: the file's length, where the column starts.
        let start = out.record(|_| {})?;
        let shared = &mut self.shared[g];
        let mut has = vec![0u64; n.div_ceil(64)];
        let mut next = 0;
        // Written a chunk at a time, not a spill record per value (an hour at 200 activations
        // a second is 22 M values).
        let mut piece: Vec<u8> = Vec::with_capacity(spill::CHUNK);
        let mut put = |v: f64, piece: &mut Vec<u8>| -> Result<()> {
            piece.extend_from_slice(&v.to_le_bytes());
            if piece.len() >= spill::CHUNK {
                out.record(|b| b.extend_from_slice(piece))?;
                piece.clear();
            }
            Ok(())
        };
        for (ai, part) in parts {
            ensure!(
                ai >= next && ai < n,
                "activation {ai}'s part out of order or past the {n} activations"
            );
            for _ in next..ai {
                put(0.0, &mut piece)?;
            }
            put(part.idle_j, &mut piece)?;
            has[ai / 64] |= 1 << (ai % 64);
            next = ai + 1;
            if shared_too {
                shared[ai].add(&part);
            }
        }
        for _ in next..n {
            put(0.0, &mut piece)?;
        }
        let end = out.record(|b| b.extend_from_slice(&piece))?;
        debug_assert_eq!(end, start + 8 * n as u64);
        // Only a column written whole is a key's: after an error, the key and its columns are
        // as they were (the next column starts where the file ends).
        let k = self.key_index(key);
        self.idle[k].push(IdleColumn { start, has });
        Ok(())
    }

    /// Activation `ai`'s joules under key `k`, its idle columns read from `file` (of length
    /// `len`) through `chunks`, one per column: the counters' idle parts added in the order
    /// they came.
    fn at(
        &self,
        k: usize,
        ai: usize,
        chunks: &mut [spill::Chunked],
        (file, len): (&File, u64),
    ) -> Result<Option<DomainJoules>> {
        let mut idle_j = None;
        for (c, chunk) in self.idle[k].iter().zip(chunks) {
            if c.has(ai) {
                let at = c.start + 8 * ai as u64;
                let b = chunk
                    .bytes(file, len, at, at + 8)
                    .context("reading the activations' idle joules back from their spill file")?;
                let v = f64::from_le_bytes(b.try_into().expect("8 bytes asked"));
                *idle_j.get_or_insert(0.0) += v;
            }
        }
        let Some(idle_j) = idle_j else {
            return Ok(None);
        };
        let s = self.shared[self.group_of[k]][ai];
        Ok(Some(DomainJoules {
            dynamic_j: s.dynamic_j,
            idle_j,
            complete: s.flags & COMPLETE != 0,
            measured: s.flags & MEASURED != 0,
            half_width_sq: (s.flags & HAS_HALF_WIDTH != 0).then_some(s.half_width_sq),
            systematic_j: s.systematic_j,
        }))
    }

    /// The keys with at least one activation, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        let mut keys: Vec<&Key> = self.keys.iter().collect();
        keys.sort();
        keys.into_iter()
    }

    /// Hands `row` every (activation, key, joules): by domain and model, then activation by
    /// activation, then by idle policy. An activation's rows under one (domain, model) are
    /// adjacent (its id and the parts the policies share compress as runs), and each (domain,
    /// model) is a block of row groups the derived tables read alone.
    pub fn for_each_by_block(
        mut self,
        mut row: impl FnMut(usize, &Key, DomainJoules) -> Result<()>,
    ) -> Result<()> {
        // Nothing added: no rows.
        let Some(out) = self.spill.take() else {
            return Ok(());
        };
        let (file, len) = out.finish()?;
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by(|&a, &b| self.keys[a].cmp(&self.keys[b]));
        // Sorted keys: each (domain, model) is one run of them.
        let same_block = |&a: &usize, &b: &usize| {
            self.keys[a].0 == self.keys[b].0 && self.keys[a].1 == self.keys[b].1
        };
        let blocks: Vec<Vec<usize>> = order.chunk_by(same_block).map(<[usize]>::to_vec).collect();
        for b in blocks {
            // Per key of the block, per column: a chunk of the file, read on as the
            // activations pass.
            let mut chunks: Vec<Vec<spill::Chunked>> = b
                .iter()
                .map(|&k| {
                    (0..self.idle[k].len())
                        .map(|_| Default::default())
                        .collect()
                })
                .collect();
            for ai in 0..self.n {
                for (&k, key_chunks) in b.iter().zip(&mut chunks) {
                    if let Some(j) = self.at(k, ai, key_chunks, (&file, len))? {
                        row(ai, &self.keys[k], j)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(d: &str, m: &str, p: &'static str) -> Key {
        (d.to_owned(), m.to_owned(), p)
    }

    fn part(dynamic_j: f64, idle_j: f64, complete: bool, hw: Option<f64>) -> Part {
        Part {
            dynamic_j,
            idle_j,
            complete,
            measured: true,
            bound: hw.map(|h| Bound {
                half_width_j: h,
                systematic_j: 0.25,
            }),
        }
    }

    /// Every row, in the order written.
    fn rows(s: PerActivation) -> Vec<(usize, Key, DomainJoules)> {
        let mut out = Vec::new();
        s.for_each_by_block(|ai, k, j| {
            out.push((ai, k.clone(), j));
            Ok(())
        })
        .unwrap();
        out
    }

    fn get(rows: &[(usize, Key, DomainJoules)], ai: usize, k: &Key) -> Option<DomainJoules> {
        rows.iter().find(|r| r.0 == ai && r.1 == *k).map(|r| r.2)
    }

    #[test]
    fn packages_add_and_policies_share_the_uncertainty() {
        let mut s = PerActivation::new(3);
        let (even, prop) = (key("package", "m", "even"), key("package", "m", "prop"));
        // Two packages, two policies each; the first policy carries the shared part.
        for (i, hw) in [(0, 3.0), (1, 4.0)] {
            let p = part(1.0, 0.5 + i as f64, true, Some(hw));
            s.add(&even, [(2, p)], true).unwrap();
            s.add(&prop, [(2, part(1.0, 2.0, true, Some(hw)))], false)
                .unwrap();
        }
        let r = rows(s);
        let e = get(&r, 2, &even).unwrap();
        assert_eq!((e.dynamic_j, e.idle_j), (2.0, 2.0));
        assert_eq!(e.half_width_sq, Some(25.0));
        assert_eq!(e.systematic_j, 0.5);
        assert!(e.complete && e.measured);
        let p = get(&r, 2, &prop).unwrap();
        assert_eq!((p.dynamic_j, p.idle_j), (2.0, 4.0));
        assert_eq!(p.half_width_sq, Some(25.0), "shared, counted once");
        assert!(get(&r, 1, &even).is_none());
        assert!(get(&r, 0, &key("x", "m", "even")).is_none());
    }

    #[test]
    fn incomplete_energy_has_no_interval_to_quote() {
        let k = key("package", "m", "even");
        let mut s = PerActivation::new(1);
        s.add(&k, [(0, part(1.0, 0.0, true, Some(1.0)))], true)
            .unwrap();
        s.add(&k, [(0, part(1.0, 0.0, false, Some(1.0)))], true)
            .unwrap();
        let j = get(&rows(s), 0, &k).unwrap();
        assert!(!j.complete);
        assert_eq!(j.half_width_sq, None);
        // An unknown bound on any package leaves none either.
        let mut s = PerActivation::new(1);
        s.add(&k, [(0, part(1.0, 0.0, true, None))], true).unwrap();
        s.add(&k, [(0, part(1.0, 0.0, true, Some(1.0)))], true)
            .unwrap();
        assert_eq!(get(&rows(s), 0, &k).unwrap().half_width_sq, None);
    }

    #[test]
    fn iterates_by_domain_and_model_then_activation_then_policy() {
        let mut s = PerActivation::new(3);
        let (z, a) = (key("package", "z", "p"), key("package", "a", "p"));
        let q = key("package", "a", "q");
        let one = || part(1.0, 0.0, true, None);
        s.add(&z, [(0, one()), (2, one())], true).unwrap();
        s.add(&a, [(2, one())], true).unwrap();
        s.add(&q, [(0, one()), (2, one())], true).unwrap();
        s.add(&key("package", "none", "p"), [], true).unwrap();
        assert_eq!(
            s.keys().map(|k| (k.1.as_str(), k.2)).collect::<Vec<_>>(),
            [("a", "p"), ("a", "q"), ("z", "p")]
        );
        let rows: Vec<(usize, String, &str)> = rows(s)
            .into_iter()
            .map(|(ai, k, _)| (ai, k.1, k.2))
            .collect();
        let rows: Vec<(usize, &str, &str)> = rows
            .iter()
            .map(|(ai, m, p)| (*ai, m.as_str(), *p))
            .collect();
        assert_eq!(
            rows,
            [
                (0, "a", "q"),
                (2, "a", "p"),
                (2, "a", "q"),
                (0, "z", "p"),
                (2, "z", "p")
            ]
        );
    }

    /// Read back a chunk at a time, the idle columns give every activation its own joules,
    /// the counters' parts added in the order they came (as one sum in memory would), and
    /// an activation no counter gave a part has no row.
    #[test]
    fn idle_columns_read_back_across_chunks_as_summed_in_memory() {
        // Three chunks of the file a column, the last short.
        let n = 2 * spill::CHUNK / 8 + 37;
        let k = key("package", "m", "even");
        let mut s = PerActivation::new(n);
        let idle = |c: usize, ai: usize| (ai as f64 * 0.1 + c as f64).sqrt() * 1e-3;
        for c in 0..3 {
            // The third counter has no part of the odd activations.
            let parts = (0..n)
                .filter(|ai| ai % 7 != 3 && (c < 2 || ai % 2 == 0))
                .map(|ai| (ai, part(0.5, idle(c, ai), true, None)));
            s.add(&k, parts, c == 0).unwrap();
        }
        let r = rows(s);
        assert_eq!(r.len(), (0..n).filter(|ai| ai % 7 != 3).count());
        for (ai, _, j) in r {
            let mut want = 0.0;
            for c in 0..3 {
                if c < 2 || ai % 2 == 0 {
                    want += idle(c, ai);
                }
            }
            assert_eq!(j.idle_j.to_bits(), want.to_bits(), "activation {ai}");
            assert_eq!(j.dynamic_j, 0.5);
        }
    }

    #[test]
    fn parts_out_of_order_are_an_error_that_leaves_the_rest_whole() {
        let k = key("package", "m", "even");
        let mut s = PerActivation::new(3);
        let p = |idle_j| part(1.0, idle_j, true, None);
        let e = s.add(&k, [(2, p(0.0)), (1, p(0.0))], true).unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        assert!(
            s.add(&k, [(3, p(0.0))], true).is_err(),
            "past the activations"
        );
        assert_eq!(s.keys().count(), 0, "no column written whole");
        s.add(&k, [(0, p(2.5)), (2, p(4.0))], false).unwrap();
        let r = rows(s);
        assert_eq!(
            r.iter().map(|r| (r.0, r.2.idle_j)).collect::<Vec<_>>(),
            [(0, 2.5), (2, 4.0)]
        );
    }
}
