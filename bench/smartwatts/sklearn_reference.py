#!/usr/bin/env python3
"""Print scikit-learn's ElasticNet results on the small fixed problems of the Rust solver's
unit test (crates/analyzer/src/models/smartwatts/elastic_net.rs, `mod tests`).

Run once with the comparison's venv (`bench/smartwatts/.venv/bin/python`, scikit-learn as
pinned in requirements.txt); the printed values were pasted into the test. The problems are
built from integers only, so Rust rebuilds exactly the same matrices.
"""

import warnings

import sklearn
from sklearn.linear_model import ElasticNet


def lcg(seed):
    """64-bit LCG (Knuth's MMIX constants): the same stream in the Rust test."""
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        yield state >> 33


def counters(n, seed):
    """hwpc-like rows: ref cycles, thread cycles (≈ ref · f), instructions, LLC misses."""
    g = lcg(seed)
    rows, y = [], []
    for _ in range(n):
        ref = 200_000_000 + next(g) % 1_800_000_000
        thread = ref * (19 + next(g) % 6) // 21
        instr = thread * (5 + next(g) % 20) // 10
        llc = instr // (200 + next(g) % 2000)
        rows.append([ref, thread, instr, llc])
        noise = (next(g) % 2001 - 1000) / 1000.0
        y.append(20.0 + 6.5 * thread / 1e9 + 4.0 * instr / 1e9 + 0.9 * llc / 1e6 + noise)
    return rows, y


PROBLEMS = {
    # name: (X, y, ElasticNet kwargs)
    "small_positive_intercept": (
        [[1, 2, 0], [2, 1, 1], [3, 4, 0], [4, 3, 2], [5, 6, 1], [6, 5, 3], [7, 8, 2], [8, 7, 4]],
        [3.1, 4.2, 7.9, 9.1, 12.2, 13.8, 16.1, 18.3],
        dict(positive=True),
    ),
    "negative_feature_clamped": (
        [[1, 8], [2, 7], [3, 6], [4, 5], [5, 4], [6, 3]],
        [2.0, 4.1, 5.9, 8.2, 9.9, 12.1],
        dict(positive=True, fit_intercept=False),
    ),
    "signed_lasso_heavy": (
        [[1, 8, 3], [2, 7, 1], [3, 6, 4], [4, 5, 1], [5, 4, 5], [6, 3, 9], [7, 2, 2]],
        [1.0, 1.5, 3.2, 3.1, 5.0, 7.7, 5.1],
        dict(alpha=0.1, l1_ratio=0.7),
    ),
    "ridge_only": (
        [[1, 2], [2, 3], [3, 5], [4, 4], [5, 7]],
        [2.0, 3.5, 5.5, 6.0, 8.5],
        dict(alpha=0.5, l1_ratio=0.0),
    ),
    "counters_no_intercept": (*counters(10, 7), dict(positive=True, fit_intercept=False)),
    "counters_window_full": (*counters(60, 11), dict(positive=True)),
}


def main():
    print(f"# scikit-learn {sklearn.__version__}")
    for name, (x, y, kw) in PROBLEMS.items():
        m = ElasticNet(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(x, y)
        coef = ", ".join(repr(float(c)) for c in m.coef_)
        print(f"{name}: coef [{coef}] intercept {float(m.intercept_)!r} n_iter {m.n_iter_}")


if __name__ == "__main__":
    main()
