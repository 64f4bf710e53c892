//! What was computed for the last few intervals asked, kept so that the activations, which ask
//! in time order for the same few intervals in turn, do not recompute them, while a run's worth
//! is never held (an hour's per-interval weights were ~35 MB).

/// How many intervals are kept: 10 s of a 10 ms grid, more than one activation spans.
pub const RECENT: usize = 1024;

/// A direct-mapped cache of per-interval values: interval `i` sits in slot `i % RECENT`, and a
/// later interval in the same slot replaces it. Values are recomputed when asked again, so
/// what it returns never depends on what it kept.
pub struct RecentIntervals<T> {
    slots: Vec<Option<(usize, T)>>,
}

impl<T> Default for RecentIntervals<T> {
    fn default() -> Self {
        Self {
            slots: std::iter::repeat_with(|| None).take(RECENT).collect(),
        }
    }
}

impl<T> RecentIntervals<T> {
    /// Interval `i`'s value, made by `make` when it is not kept; `make` gets the value it
    /// replaces, if any, to reuse its buffers.
    pub fn get_or_make(&mut self, i: usize, make: impl FnOnce(Option<T>) -> T) -> &mut T {
        let slot = &mut self.slots[i % RECENT];
        if slot.as_ref().is_none_or(|(k, _)| *k != i) {
            let old = slot.take().map(|(_, v)| v);
            *slot = Some((i, make(old)));
        }
        &mut slot.as_mut().expect("filled above").1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_once_while_kept_and_again_once_replaced() {
        let mut c = RecentIntervals::<(usize, u32)>::default();
        let mut made = 0u32;
        let mut ask = |c: &mut RecentIntervals<(usize, u32)>, i: usize| {
            *c.get_or_make(i, |_| {
                made += 1;
                (i, made)
            })
        };
        assert_eq!(ask(&mut c, 3), (3, 1));
        assert_eq!(ask(&mut c, 3), (3, 1), "kept: not made again");
        assert_eq!(
            ask(&mut c, 3 + RECENT),
            (3 + RECENT, 2),
            "same slot: replaced"
        );
        assert_eq!(ask(&mut c, 3), (3, 3), "made again, the same interval");
        assert_eq!(ask(&mut c, 4), (4, 4));
        assert_eq!(ask(&mut c, 3), (3, 3));
    }

    #[test]
    fn the_replaced_value_is_handed_to_make() {
        let mut c = RecentIntervals::<Vec<usize>>::default();
        c.get_or_make(0, |_| Vec::with_capacity(64)).push(0);
        let v = c.get_or_make(RECENT, |old| {
            let mut v = old.expect("slot 0 held interval 0");
            assert_eq!(v, vec![0]);
            v.clear();
            v
        });
        assert!(v.capacity() >= 64);
    }
}
