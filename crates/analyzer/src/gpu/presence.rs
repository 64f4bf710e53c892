//! Each activation's share of its container's presence per update window of a GPU, for the
//! idle policies' per-activation split (`attribution::activation_energy`): the concurrency rule
//! of `join::windows` on the GPU's own grid. Between consecutive starts and ends of a
//! container's activations the same activations run, and the span's time is split equally
//! among them; each part goes to the windows it lies in. (The join's presence is on the
//! tables' intervals, which a GPU's windows do not line up with.)

use rustc_hash::FxHashMap;

use crate::replay::grid::Grid;

/// (activation, window) → its presence there, ns. `acts_of`: cgroup → its activations'
/// (start, end, activation index), as `gpu::GpuUsage::new` lists them.
pub fn on_grid(
    grid: &Grid,
    acts_of: &FxHashMap<u64, Vec<(u64, u64, usize)>>,
) -> FxHashMap<(usize, usize), f64> {
    let mut out: FxHashMap<(usize, usize), f64> = FxHashMap::default();
    for list in acts_of.values() {
        let mut bounds: Vec<u64> = list.iter().flat_map(|w| [w.0, w.1]).collect();
        bounds.sort_unstable();
        bounds.dedup();
        let at = |t: u64| bounds.partition_point(|&b| b < t);
        // How many of the container's activations run in each span [bounds[j], bounds[j + 1]).
        let mut depth = vec![0i64; bounds.len()];
        for w in list.iter().filter(|w| w.1 > w.0) {
            depth[at(w.0)] += 1;
            depth[at(w.1)] -= 1;
        }
        for j in 1..depth.len() {
            depth[j] += depth[j - 1];
        }
        for w in list.iter().filter(|w| w.1 > w.0) {
            for j in at(w.0)..at(w.1) {
                let share = 1.0 / depth[j] as f64;
                grid.split(bounds[j], bounds[j + 1], |k, x, y| {
                    *out.entry((w.2, k)).or_default() += (y - x) as f64 * share;
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows [0, 100) and [100, 250); a container running activation 0 over [50, 150) and
    /// activation 1 over [120, 200): alone, each has all its time; together ([120, 150)) they
    /// have half each; and each window's presences add up to the container's time in it.
    #[test]
    fn concurrent_activations_share_the_time_they_run_together() {
        let grid = Grid::from_times(vec![0, 100, 250]).unwrap();
        let acts = FxHashMap::from_iter([(7u64, vec![(50, 150, 0usize), (120, 200, 1)])]);
        let p = on_grid(&grid, &acts);
        assert_eq!(p[&(0, 0)], 50.0);
        assert_eq!(p[&(0, 1)], 20.0 + 15.0);
        assert_eq!(p[&(1, 1)], 15.0 + 50.0);
        assert_eq!(p.get(&(1, 0)), None, "not running in window 0");
        assert_eq!(
            p[&(0, 1)] + p[&(1, 1)],
            100.0,
            "the container's 100 ns in window 1"
        );
    }
}
