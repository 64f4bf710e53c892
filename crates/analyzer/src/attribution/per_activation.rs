//! Every activation's joules under every (domain, model, idle policy), kept as one dense
//! column per key: an hour of a busy node has ~10⁵ activations × ~30 keys, and a map keyed by
//! (activation, key) spent a tree node and two strings on each (1.3 GB for an hour of 50
//! activations a second); a column costs 40 bytes per activation.

use std::collections::HashMap;

use super::{DomainJoules, Key};

#[derive(Debug, Default)]
pub struct PerActivation {
    /// Activations in the trace: every column's length.
    n: usize,
    keys: Vec<Key>,
    index: HashMap<Key, usize>,
    columns: Vec<Vec<Packed>>,
}

/// [`DomainJoules`] in 40 bytes rather than 56 (its option and booleans as bits).
#[derive(Debug, Clone, Copy, Default)]
struct Packed {
    dynamic_j: f64,
    idle_j: f64,
    half_width_sq: f64,
    systematic_j: f64,
    flags: u8,
}

const PRESENT: u8 = 1;
const COMPLETE: u8 = 2;
const MEASURED: u8 = 4;
const HAS_HALF_WIDTH: u8 = 8;

impl Packed {
    fn pack(j: DomainJoules) -> Self {
        let bit = |b: bool, f: u8| if b { f } else { 0 };
        Self {
            dynamic_j: j.dynamic_j,
            idle_j: j.idle_j,
            half_width_sq: j.half_width_sq.unwrap_or(0.0),
            systematic_j: j.systematic_j,
            flags: PRESENT
                | bit(j.complete, COMPLETE)
                | bit(j.measured, MEASURED)
                | bit(j.half_width_sq.is_some(), HAS_HALF_WIDTH),
        }
    }

    fn unpack(self) -> Option<DomainJoules> {
        (self.flags & PRESENT != 0).then_some(DomainJoules {
            dynamic_j: self.dynamic_j,
            idle_j: self.idle_j,
            complete: self.flags & COMPLETE != 0,
            measured: self.flags & MEASURED != 0,
            half_width_sq: (self.flags & HAS_HALF_WIDTH != 0).then_some(self.half_width_sq),
            systematic_j: self.systematic_j,
        })
    }
}

impl PerActivation {
    pub fn new(activations: usize) -> Self {
        Self {
            n: activations,
            ..Self::default()
        }
    }

    /// Changes the joules of activation `ai` under `key` by `f`; `init` makes them the first
    /// time.
    pub fn update(
        &mut self,
        ai: usize,
        key: &Key,
        init: impl FnOnce() -> DomainJoules,
        f: impl FnOnce(&mut DomainJoules),
    ) {
        let k = match self.index.get(key) {
            Some(&k) => k,
            None => {
                self.keys.push(key.clone());
                self.columns.push(vec![Packed::default(); self.n]);
                self.index.insert(key.clone(), self.keys.len() - 1);
                self.keys.len() - 1
            }
        };
        let slot = &mut self.columns[k][ai];
        let mut j = slot.unpack().unwrap_or_else(init);
        f(&mut j);
        *slot = Packed::pack(j);
    }

    pub fn get(&self, ai: usize, key: &Key) -> Option<DomainJoules> {
        let &k = self.index.get(key)?;
        self.columns[k].get(ai)?.unpack()
    }

    /// The keys with at least one activation, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        let mut keys: Vec<&Key> = self.keys.iter().collect();
        keys.sort();
        keys.into_iter()
    }

    /// Every (activation, key, joules), by activation and then key.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Key, DomainJoules)> {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by(|&a, &b| self.keys[a].cmp(&self.keys[b]));
        (0..self.n).flat_map(move |ai| {
            order
                .clone()
                .into_iter()
                .filter_map(move |k| Some((ai, &self.keys[k], self.columns[k][ai].unpack()?)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(d: &str, m: &str, p: &'static str) -> Key {
        (d.to_owned(), m.to_owned(), p)
    }

    #[test]
    fn entries_add_up_and_iterate_by_activation_then_key() {
        let mut s = PerActivation::new(3);
        let (b, a) = (key("package", "z", "p"), key("package", "a", "p"));
        let init = || DomainJoules {
            complete: true,
            half_width_sq: Some(0.0),
            ..DomainJoules::default()
        };
        s.update(2, &b, init, |j| j.dynamic_j += 1.0);
        s.update(2, &b, init, |j| j.dynamic_j += 2.0);
        s.update(0, &b, init, |j| j.idle_j = 5.0);
        s.update(2, &a, init, |j| {
            j.complete = false;
            j.half_width_sq = None;
            j.systematic_j = 0.5;
        });
        assert_eq!(s.get(2, &b).unwrap().dynamic_j, 3.0);
        // Every field comes back as it went in.
        assert_eq!(
            s.get(2, &a),
            Some(DomainJoules {
                complete: false,
                half_width_sq: None,
                systematic_j: 0.5,
                ..DomainJoules::default()
            })
        );
        assert_eq!(s.get(0, &b).unwrap().half_width_sq, Some(0.0));
        assert!(s.get(0, &b).unwrap().complete);
        assert!(s.get(1, &b).is_none());
        assert!(s.get(0, &key("x", "y", "p")).is_none());
        let rows: Vec<(usize, &str)> = s.iter().map(|(ai, k, _)| (ai, k.1.as_str())).collect();
        assert_eq!(rows, [(0, "z"), (2, "a"), (2, "z")]);
        assert_eq!(
            s.keys().map(|k| k.1.as_str()).collect::<Vec<_>>(),
            ["a", "z"]
        );
    }
}
