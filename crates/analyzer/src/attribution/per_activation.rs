//! Every activation's joules under every (domain, model, idle policy), kept as dense columns:
//! an hour of a busy node has ~10⁵ activations × ~30 keys, and a map keyed by (activation,
//! key) spent a tree node and two strings on each (1.3 GB for an hour of 50 activations a
//! second). Per key a column of idle joules; what does not depend on the idle policy (the
//! dynamic joules, whether the energy is complete, measured, and the dynamic energy's
//! uncertainty) is one column per (domain, model): 9 B per activation and key, plus 32 B per
//! (domain, model).

use std::collections::HashMap;

use super::uncertainty::Bound;
use super::{DomainJoules, Key};

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

#[derive(Debug, Default)]
pub struct PerActivation {
    /// Activations in the trace: every column's length.
    n: usize,
    keys: Vec<Key>,
    index: HashMap<Key, usize>,
    /// Key → its (domain, model) in `shared`.
    group_of: Vec<usize>,
    groups: HashMap<(String, String), usize>,
    /// Per key: idle J per activation, and whether it has a value.
    idle: Vec<Vec<f64>>,
    present: Vec<Vec<bool>>,
    /// Per (domain, model): what every idle policy shares.
    shared: Vec<Vec<Shared>>,
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

impl PerActivation {
    pub fn new(activations: usize) -> Self {
        Self {
            n: activations,
            ..Self::default()
        }
    }

    fn key_index(&mut self, key: &Key) -> usize {
        if let Some(&k) = self.index.get(key) {
            return k;
        }
        let group = (key.0.clone(), key.1.clone());
        let next = self.shared.len();
        let g = *self.groups.entry(group).or_insert(next);
        if g == next {
            self.shared.push(vec![Shared::default(); self.n]);
        }
        self.keys.push(key.clone());
        self.group_of.push(g);
        self.idle.push(vec![0.0; self.n]);
        self.present.push(vec![false; self.n]);
        self.index.insert(key.clone(), self.keys.len() - 1);
        self.keys.len() - 1
    }

    /// Adds one package's part of activation `ai`'s energy under `key`. The policy-independent
    /// part (the dynamic joules among it) is taken when `shared_too` (the caller's first idle
    /// policy, once per package), so it is counted once however many policies there are.
    pub fn add(&mut self, ai: usize, key: &Key, part: &Part, shared_too: bool) {
        let k = self.key_index(key);
        self.idle[k][ai] += part.idle_j;
        self.present[k][ai] = true;
        if !shared_too {
            return;
        }
        let s = &mut self.shared[self.group_of[k]][ai];
        if s.flags & STARTED == 0 {
            *s = Shared {
                dynamic_j: 0.0,
                half_width_sq: 0.0,
                systematic_j: 0.0,
                flags: STARTED
                    | COMPLETE
                    | HAS_HALF_WIDTH
                    | if part.measured { MEASURED } else { 0 },
            };
        }
        s.dynamic_j += part.dynamic_j;
        if !part.complete {
            s.flags &= !COMPLETE;
        }
        // Energy partly unknown has no interval to quote; the packages' parts are independent,
        // so their squares add.
        match part.bound {
            Some(b) if s.flags & COMPLETE != 0 && s.flags & HAS_HALF_WIDTH != 0 => {
                s.half_width_sq += b.half_width_j.powi(2);
            }
            _ => s.flags &= !HAS_HALF_WIDTH,
        }
        s.systematic_j += part.bound.map_or(0.0, |b| b.systematic_j);
    }

    #[cfg(test)]
    pub fn get(&self, ai: usize, key: &Key) -> Option<DomainJoules> {
        let &k = self.index.get(key)?;
        self.at(k, ai)
    }

    fn at(&self, k: usize, ai: usize) -> Option<DomainJoules> {
        if !*self.present[k].get(ai)? {
            return None;
        }
        let s = self.shared[self.group_of[k]][ai];
        Some(DomainJoules {
            dynamic_j: s.dynamic_j,
            idle_j: self.idle[k][ai],
            complete: s.flags & COMPLETE != 0,
            measured: s.flags & MEASURED != 0,
            half_width_sq: (s.flags & HAS_HALF_WIDTH != 0).then_some(s.half_width_sq),
            systematic_j: s.systematic_j,
        })
    }

    /// The keys with at least one activation, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        let mut keys: Vec<&Key> = self.keys.iter().collect();
        keys.sort();
        keys.into_iter()
    }

    /// Every (activation, key, joules): by domain and model, then activation by activation,
    /// then by idle policy. An activation's rows under one (domain, model) are adjacent (its id
    /// and the parts the policies share compress as runs), and each (domain, model) is a block
    /// of row groups the derived tables read alone.
    pub fn iter_by_block(&self) -> impl Iterator<Item = (usize, &Key, DomainJoules)> {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by(|&a, &b| self.keys[a].cmp(&self.keys[b]));
        // Sorted keys: each (domain, model) is one run of them.
        let same_block = |&a: &usize, &b: &usize| {
            self.keys[a].0 == self.keys[b].0 && self.keys[a].1 == self.keys[b].1
        };
        let blocks: Vec<Vec<usize>> = order.chunk_by(same_block).map(<[usize]>::to_vec).collect();
        blocks.into_iter().flat_map(move |b| {
            (0..self.n).flat_map(move |ai| {
                b.clone()
                    .into_iter()
                    .filter_map(move |k| Some((ai, &self.keys[k], self.at(k, ai)?)))
            })
        })
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

    #[test]
    fn packages_add_and_policies_share_the_uncertainty() {
        let mut s = PerActivation::new(3);
        let (even, prop) = (key("package", "m", "even"), key("package", "m", "prop"));
        // Two packages, two policies each; the first policy carries the shared part.
        for (i, hw) in [(0, 3.0), (1, 4.0)] {
            s.add(2, &even, &part(1.0, 0.5 + i as f64, true, Some(hw)), true);
            s.add(2, &prop, &part(1.0, 2.0, true, Some(hw)), false);
        }
        let e = s.get(2, &even).unwrap();
        assert_eq!((e.dynamic_j, e.idle_j), (2.0, 2.0));
        assert_eq!(e.half_width_sq, Some(25.0));
        assert_eq!(e.systematic_j, 0.5);
        assert!(e.complete && e.measured);
        let p = s.get(2, &prop).unwrap();
        assert_eq!((p.dynamic_j, p.idle_j), (2.0, 4.0));
        assert_eq!(p.half_width_sq, Some(25.0), "shared, counted once");
        assert!(s.get(1, &even).is_none());
        assert!(s.get(0, &key("x", "m", "even")).is_none());
    }

    #[test]
    fn incomplete_energy_has_no_interval_to_quote() {
        let mut s = PerActivation::new(1);
        let k = key("package", "m", "even");
        s.add(0, &k, &part(1.0, 0.0, true, Some(1.0)), true);
        s.add(0, &k, &part(1.0, 0.0, false, Some(1.0)), true);
        let j = s.get(0, &k).unwrap();
        assert!(!j.complete);
        assert_eq!(j.half_width_sq, None);
        // An unknown bound on any package leaves none either.
        let mut s = PerActivation::new(1);
        s.add(0, &k, &part(1.0, 0.0, true, None), true);
        s.add(0, &k, &part(1.0, 0.0, true, Some(1.0)), true);
        assert_eq!(s.get(0, &k).unwrap().half_width_sq, None);
    }

    #[test]
    fn iterates_by_domain_and_model_then_activation_then_policy() {
        let mut s = PerActivation::new(3);
        let (z, a) = (key("package", "z", "p"), key("package", "a", "p"));
        let q = key("package", "a", "q");
        s.add(2, &z, &part(1.0, 0.0, true, None), true);
        s.add(0, &z, &part(1.0, 0.0, true, None), true);
        s.add(2, &a, &part(1.0, 0.0, true, None), true);
        s.add(0, &q, &part(1.0, 0.0, true, None), true);
        s.add(2, &q, &part(1.0, 0.0, true, None), true);
        let rows: Vec<(usize, &str, &str)> = s
            .iter_by_block()
            .map(|(ai, k, _)| (ai, k.1.as_str(), k.2))
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
        assert_eq!(
            s.keys().map(|k| (k.1.as_str(), k.2)).collect::<Vec<_>>(),
            [("a", "p"), ("a", "q"), ("z", "p")]
        );
    }
}
