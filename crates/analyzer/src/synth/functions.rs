//! The synthetic functions: how fast each retires instructions (its power per CPU-second), how
//! long it runs and how popular it is.
//!
//! By default three functions of very different instruction rates (`KINDS`), at 12, 8 and 10
//! activations a second. `--functions N` cycles through those kinds, each function's pace and
//! run time moved by its own factor (so no two share a coefficient), and `--rate R` splits R
//! activations a second over them by a Zipf law of exponent [`ZIPF_EXPONENT`]: the k-th most
//! popular function gets R·k^−s / Σ j^−s.
//!
//! Why Zipf with s = 1: in the Azure Functions 2019 trace (Shahrad et al., "Serverless in the
//! Wild", USENIX ATC 2020) invocation rates span eight orders of magnitude and a fifth of the
//! functions take nearly all invocations; per-function popularity is close to a power law.
//! Over the few dozen functions one invoker keeps warm, s = 1 gives that shape (with 50
//! functions the top fifth takes 65 % of the activations, the top one 22 %) while the least
//! popular still runs often enough (R/(N·H_N), 0.2/s at R = 50) to be seen in a short test; a
//! larger exponent leaves the tail functions with no activation at all in minutes-long runs.

/// A synthetic function: its container's cgroup (one container per function without
/// `--keep-alive`), its pace and its arrivals.
#[derive(Debug, Clone)]
pub struct Function {
    pub name: String,
    pub cgroup_id: u64,
    /// Instructions per second while running, at full frequency.
    pub ips: f64,
    /// Arrivals per second (times the concurrency, so concurrent runs really happen).
    pub rate: f64,
    /// Run time range, ms.
    pub run_ms: (u64, u64),
}

/// The three kinds of function; their rates are the default trace's (30 a second in all).
struct Kind {
    name: &'static str,
    ips: f64,
    rate: f64,
    run_ms: (u64, u64),
}

const KINDS: [Kind; 3] = [
    Kind {
        name: "integer-loop",
        ips: 3.0e9,
        rate: 12.0,
        run_ms: (5, 40),
    },
    Kind {
        name: "memory-stream",
        ips: 0.4e9,
        rate: 8.0,
        run_ms: (10, 60),
    },
    Kind {
        name: "hash",
        ips: 1.5e9,
        rate: 10.0,
        run_ms: (3, 30),
    },
];

/// The exponent of the functions' popularity under `--rate` (see the module's documentation).
pub const ZIPF_EXPONENT: f64 = 1.0;
/// `--functions` at most: function cgroup ids (from 1001) stay below the system scopes' (3000).
pub const MAX_FUNCTIONS: u32 = 1000;
const FIRST_CGROUP: u64 = 1001;

/// The default trace's three functions, at their own rates.
fn defaults() -> Vec<Function> {
    KINDS
        .iter()
        .enumerate()
        .map(|(k, kind)| Function {
            name: kind.name.into(),
            cgroup_id: FIRST_CGROUP + k as u64,
            ips: kind.ips,
            rate: kind.rate,
            run_ms: kind.run_ms,
        })
        .collect()
}

/// `n` functions sharing `rate` activations a second (None: the default trace's rates, or 30 a
/// second in all); exactly the default trace's three when neither is given.
pub fn catalog(n: usize, rate: Option<f64>) -> Vec<Function> {
    if n == KINDS.len() && rate.is_none() {
        return defaults();
    }
    let total = rate.unwrap_or_else(|| KINDS.iter().map(|k| k.rate).sum());
    let weight = |k: usize| ((k + 1) as f64).powf(-ZIPF_EXPONENT);
    let norm: f64 = (0..n).map(weight).sum();
    (0..n)
        .map(|k| {
            let kind = &KINDS[k % KINDS.len()];
            let round = k / KINDS.len();
            // Golden-ratio steps spread each round's factors over [0.7, 1.3) without repeats:
            // every function has its own power per CPU-second and its own run times.
            let (pace, length) = if round == 0 {
                (1.0, 1.0)
            } else {
                let u = |x: f64| (round as f64 * x).fract();
                (0.7 + 0.6 * u(0.618_034), 0.6 + 0.8 * u(0.414_214))
            };
            let scale = |ms: u64| ((ms as f64 * length).round() as u64).max(1);
            Function {
                name: if round == 0 {
                    kind.name.into()
                } else {
                    format!("{}-{round}", kind.name)
                },
                cgroup_id: FIRST_CGROUP + k as u64,
                ips: kind.ips * pace,
                rate: total * weight(k) / norm,
                run_ms: (scale(kind.run_ms.0), scale(kind.run_ms.1)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_three_are_unchanged_and_more_are_zipf_popular() {
        let d = catalog(3, None);
        let rates: Vec<f64> = d.iter().map(|f| f.rate).collect();
        assert_eq!(rates, [12.0, 8.0, 10.0]);
        assert_eq!(d[1].name, "memory-stream");

        let f = catalog(50, Some(50.0));
        let total: f64 = f.iter().map(|f| f.rate).sum();
        assert!((total - 50.0).abs() < 1e-9, "{total}");
        // Zipf, s = 1: rank k has 1/k of the first's rate.
        for (k, g) in f.iter().enumerate() {
            let want = f[0].rate / (k + 1) as f64;
            assert!((g.rate - want).abs() < 1e-9, "{k}: {} vs {want}", g.rate);
        }
        let top10: f64 = f[..10].iter().map(|f| f.rate).sum();
        assert!((0.6..0.7).contains(&(top10 / total)), "{}", top10 / total);
        // Every name, cgroup and pace is its own.
        let mut names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 50);
        let mut paces: Vec<u64> = f.iter().map(|f| f.ips as u64).collect();
        paces.sort_unstable();
        paces.dedup();
        assert_eq!(paces.len(), 50);
        assert!(f
            .iter()
            .all(|f| f.run_ms.0 >= 1 && f.run_ms.0 <= f.run_ms.1));
        assert!(f.last().unwrap().cgroup_id < super::super::schedule::SYSTEM_CGROUP_BASE);
    }
}
