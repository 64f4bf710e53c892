//! A cgroup's frozen (paused) spans, packed: 16 bytes a span rather than the 24 of
//! `(u64, Option<u64>)`. An hour of a busy node holds one per warm activation (181 k in the
//! scale benchmark's hour), each kept from the lifecycles to the end of the attribution.

/// The end stored for an open span (frozen until the trace ends): no trace reaches it, 2⁶⁴ ns
/// being 584 years.
const OPEN: u64 = u64::MAX;

/// (start, end) of each frozen span in trace ns, in the order seen; an open one's end is
/// `None` to every reader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrozenSpans(Vec<(u64, u64)>);

impl FrozenSpans {
    /// The spans as (start, end), `None` for an open one.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Option<u64>)> + '_ {
        self.0.iter().map(|&(a, b)| (a, (b != OPEN).then_some(b)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Opens a span at `t`, unless the last one is still open (a second freeze of a frozen
    /// cgroup changes nothing).
    pub fn freeze(&mut self, t: u64) {
        if self.0.last().is_none_or(|s| s.1 != OPEN) {
            self.0.push((t, OPEN));
        }
    }

    /// Ends the last span at `t` if it is open (a thaw of a running cgroup changes nothing).
    pub fn thaw(&mut self, t: u64) {
        if let Some(s) = self.0.last_mut().filter(|s| s.1 == OPEN) {
            s.1 = t.min(OPEN - 1);
        }
    }

    /// Drops the room to grow: the spans are held to the end of the attribution.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }

    /// The spans as (start, end) pairs, `None` for an open one.
    pub fn to_vec(&self) -> Vec<(u64, Option<u64>)> {
        self.iter().collect()
    }
}

/// A closed span's end is kept as given, short of `u64::MAX` ns, which reads as open (taken
/// one ns earlier).
impl FromIterator<(u64, Option<u64>)> for FrozenSpans {
    fn from_iter<I: IntoIterator<Item = (u64, Option<u64>)>>(spans: I) -> Self {
        Self(
            spans
                .into_iter()
                .map(|(a, b)| (a, b.map_or(OPEN, |b| b.min(OPEN - 1))))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_open_close_and_read_back_as_given() {
        let mut f = FrozenSpans::default();
        f.thaw(5); // nothing open: nothing to end
        f.freeze(10);
        f.freeze(12); // already frozen
        f.thaw(20);
        f.thaw(25); // already thawed
        f.freeze(30);
        assert_eq!(f.to_vec(), [(10, Some(20)), (30, None)]);
        let g: FrozenSpans = [(1, Some(2)), (3, None), (4, Some(u64::MAX))]
            .into_iter()
            .collect();
        assert_eq!(
            g.to_vec(),
            [(1, Some(2)), (3, None), (4, Some(u64::MAX - 1))]
        );
        assert_eq!(std::mem::size_of::<(u64, u64)>(), 16);
    }
}
