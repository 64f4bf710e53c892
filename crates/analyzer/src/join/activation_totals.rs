//! Each activation's usage over all packages, held from the join to the `activations` table:
//! its CPU time and counter deltas in two flat columns. As a `Usage` each (its counters in a
//! small vector) an hour of a busy node's 181 k activations held 8.3 MiB at the join's peak;
//! here 5.5 MiB with three counters (`bench/README.md`, session 26).

use crate::replay::cpu::Usage;

#[derive(Debug, Default)]
pub struct ActivationTotals {
    cpu_ns: Vec<u64>,
    /// `width` values per activation, in the trace's counter columns' order.
    counters: Vec<f64>,
    width: usize,
}

impl ActivationTotals {
    /// `n` activations with nothing yet, of `width` counters each.
    pub fn new(n: usize, width: usize) -> Self {
        Self {
            cpu_ns: vec![0; n],
            counters: vec![0.0; n * width],
            width,
        }
    }

    /// Adds `f` × `u` to activation `ai`, as `Usage::add_scaled` does
    /// ([`crate::replay::cpu::add_scaled_into`]: the same sums, to the bit).
    pub fn add_scaled(&mut self, ai: usize, u: &Usage, f: f64) -> anyhow::Result<()> {
        anyhow::ensure!(
            u.counters.len() <= self.width,
            "a segment's usage has {} counters, the trace {}",
            u.counters.len(),
            self.width
        );
        let row = &mut self.counters[ai * self.width..][..self.width];
        crate::replay::cpu::add_scaled_into(&mut self.cpu_ns[ai], row, u, f);
        Ok(())
    }

    /// Activations, joined or not.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.cpu_ns.len()
    }

    /// Activation `ai`'s CPU time (0 where it was not joined, or is not one).
    pub fn cpu_ns(&self, ai: usize) -> u64 {
        self.cpu_ns.get(ai).copied().unwrap_or(0)
    }

    /// Activation `ai`'s counter `k` (0 where it was not joined, or is not one).
    pub fn counter(&self, ai: usize, k: usize) -> f64 {
        if k >= self.width {
            return 0.0;
        }
        self.counters
            .get(ai * self.width + k)
            .copied()
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same sums as a `Usage` filled with `add_scaled`, to the bit.
    #[test]
    fn sums_are_a_usages_to_the_bit() {
        let parts = [
            (Usage::one(15, 0.1), 1.0 / 3.0),
            (Usage::one(7, 2.7), 0.5),
            (
                Usage {
                    cpu_ns: 11,
                    counters: smallvec::smallvec![0.3, 1e9 / 7.0],
                },
                1.0 / 7.0,
            ),
        ];
        let mut t = ActivationTotals::new(2, 2);
        let mut want = Usage::default();
        for (u, f) in &parts {
            t.add_scaled(1, u, *f).unwrap();
            want.add_scaled(u, *f);
        }
        assert_eq!(t.cpu_ns(1), want.cpu_ns);
        for k in 0..2 {
            assert_eq!(t.counter(1, k).to_bits(), want.counters[k].to_bits());
        }
        assert_eq!((t.cpu_ns(0), t.counter(0, 1)), (0, 0.0), "nothing added");
        assert_eq!((t.cpu_ns(5), t.counter(1, 2)), (0, 0.0), "out of range");
        assert_eq!(t.len(), 2);
        let wide = Usage {
            cpu_ns: 1,
            counters: smallvec::smallvec![1.0, 2.0, 3.0],
        };
        assert!(
            t.add_scaled(0, &wide, 1.0).is_err(),
            "more counters than the trace"
        );
    }
}
