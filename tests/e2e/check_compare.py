#!/usr/bin/env python3
"""`pws-analyze compare` against the same comparison computed with DuckDB and scipy.

tests/compare.rs analyses synthetic runs labelled by a manifest, runs

    pws-analyze compare RESULTS --by COLUMNS [--baseline VALUE] --json > compare.json

and then this script with --results RESULTS --json compare.json. The per-run figures and the
activations are computed here with DuckDB SQL over the written tables, the means, standard
deviations and intervals with pandas and scipy; every number of the JSON must agree to a
relative 1e-9. Exits 1 naming every disagreement.
"""

import argparse
import json
import math
import sys

import duckdb
from scipy import stats

RTOL = 1e-9
PER_RUN = ["energy_per_activation_j", "cold_energy_mean_j", "cold_share",
           "keep_alive_j_per_hour", "energy_per_success_j", "total_j"]

failures = []


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= RTOL * max(abs(a), abs(b), 1e-12)


def estimate(values):
    """Mean with mean ± t(n-1) sd/sqrt(n), as (mean, sd, n, lo, hi)."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n < 2:
        return (mean, None, n, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    hw = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    # Energies and shares: the interval is cut at 0.
    return (mean, sd, n, max(mean - hw, 0.0), mean + hw)


def change(g, b):
    """100 (g/b - 1) with the delta method and Welch-Satterthwaite's df."""
    if g is None or b is None or b[0] == 0:
        return None
    r = g[0] / b[0]
    value = 100 * (r - 1)
    if g[1] is None or b[1] is None or g[0] == 0:
        return (value, None, None)
    a = g[1] ** 2 / g[2] / g[0] ** 2
    c = b[1] ** 2 / b[2] / b[0] ** 2
    if a + c <= 0:
        return (value, None, None)
    df = (a + c) ** 2 / (a * a / (g[2] - 1) + c * c / (b[2] - 1))
    hw = 100 * stats.t.ppf(0.975, df) * r * math.sqrt(a + c)
    return (value, max(value - hw, -100.0), value + hw)


def check(what, got, want):
    """got: the JSON estimate {value, lo, hi} or None; want: (value, lo, hi) or None."""
    if want is None or got is None:
        if not (want is None and got is None):
            failures.append(f"{what}: pws-analyze {got}, DuckDB {want}")
        return
    for k, w in zip(["value", "lo", "hi"], want):
        if not close(got[k], w):
            failures.append(f"{what} {k}: pws-analyze {got[k]}, DuckDB {w}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    cmp = json.load(open(args.json))
    model, policy, by = cmp["model"], cmp["idle_policy"], cmp["by"]
    baseline = cmp["baseline"]
    d = args.results

    def table(name):
        return (f"read_parquet('{d}/{name}/**/*.parquet', union_by_name=true, "
                f"hive_partitioning=false)")

    byc = ", ".join(f'coalesce(CAST("{c}" AS VARCHAR), \'\') AS "{c}"' for c in by)
    byn = ", ".join(f'"{c}"' for c in by)
    con = duckdb.connect()
    con.execute(f"""
      CREATE TABLE acts AS SELECT run, host, activation_id, namespace, action, cold,
        status_code, {byc} FROM {table('activations')}
        -- each activation once per run: the row of the node that ran it, as the REST API's
        -- records reach every node's trace
        QUALIFY row_number() OVER (PARTITION BY run, activation_id
                                   ORDER BY join_method = 'none', host) = 1;
      CREATE TABLE e AS SELECT ae.domain, ae.energy_j, acts.* FROM
        (SELECT run, host, activation_id, domain, energy_j FROM {table('activation_energy')}
         WHERE model = $model AND idle_policy = $policy) ae
        JOIN acts USING (run, host, activation_id);
    """, {"model": model, "policy": policy})
    per_run = con.execute(f"""
      WITH run_acts AS (
        SELECT {byn}, run, namespace, action, count(*) AS n_act,
               sum(cold::INT) AS n_cold, sum((status_code = 0)::INT) AS n_ok
        FROM acts GROUP BY ALL),
      run_e AS (
        SELECT domain, {byn}, run, namespace, action, count(*) AS n_e, sum(energy_j) AS e_sum,
               sum(energy_j) FILTER (WHERE cold) AS cold_sum,
               count(energy_j) FILTER (WHERE cold) AS n_cold_e
        FROM e GROUP BY ALL),
      ka AS (
        SELECT domain, run, namespace, action, sum(keep_alive_j) AS ka
        FROM {table('container_energy')} WHERE model = $model AND idle_policy = $policy
        GROUP BY ALL),
      span AS (
        SELECT run, max(s) AS span_ns FROM (
          SELECT run, host, epoch_ns(max(interval_end)) - epoch_ns(min(interval_start)) AS s
          FROM {table('power')} GROUP BY ALL) GROUP BY run)
      SELECT r.*, a.n_act, a.n_cold, a.n_ok, coalesce(k.ka, 0) AS ka, s.span_ns
      FROM run_e r
      LEFT JOIN run_acts a USING ({byn}, run, namespace, action)
      LEFT JOIN ka k USING (domain, run, namespace, action)
      LEFT JOIN span s USING (run)
    """, {"model": model, "policy": policy}).df()

    def ratio(a, b):
        return a / b if b is not None and not math.isnan(b) and b > 0 else None

    per_run["energy_per_activation_j"] = [ratio(a, b) for a, b in zip(per_run.e_sum, per_run.n_e)]
    per_run["cold_energy_mean_j"] = [
        ratio(a, b) for a, b in zip(per_run.cold_sum, per_run.n_cold_e)]
    per_run["cold_share"] = [ratio(a, b) for a, b in zip(per_run.n_cold, per_run.n_act)]
    per_run["keep_alive_j_per_hour"] = [
        ratio(k, s / 3.6e12) for k, s in zip(per_run.ka, per_run.span_ns)]
    per_run["energy_per_success_j"] = [
        ratio(a + k, n) for a, k, n in zip(per_run.e_sum, per_run.ka, per_run.n_ok)]
    per_run["total_j"] = per_run.e_sum + per_run.ka
    acts = con.execute("SELECT * FROM e").df()

    key_cols = ["domain", "namespace", "action"] + by
    groups = {}
    for key, g in per_run.groupby(key_cols, dropna=False):
        groups[tuple(key)] = {"runs": g}
    for key, g in acts.groupby(key_cols, dropna=False):
        groups[tuple(key)]["acts"] = g

    rows = {(r["domain"], r["namespace"], r["action"], *r["group"]): r for r in cmp["rows"]}
    if set(rows) != set(groups):
        failures.append(f"groups: pws-analyze {sorted(rows)}, DuckDB {sorted(groups)}")
    unit_of = {}
    for key, g in groups.items():
        fn = key[:3]
        unit_of[fn] = unit_of.get(fn, True) and len(g["runs"]) >= 2

    def energy(key, cold=False):
        g = groups[key]
        if unit_of[key[:3]]:
            return estimate(list(g["runs"]["cold_energy_mean_j" if cold else
                                           "energy_per_activation_j"]))
        a = g["acts"]
        return estimate(list(a[a.cold].energy_j if cold else a.energy_j))

    for key, g in groups.items():
        r = rows.get(key)
        if r is None:
            continue
        runs = g["runs"]
        what = "/".join(str(k) for k in key)
        for col, want in [("runs", len(runs)), ("activations", int(runs.n_act.sum())),
                          ("activations_with_energy", int(runs.n_e.sum())),
                          ("cold_starts", int(runs.n_cold.sum())),
                          ("successes", int(runs.n_ok.sum()))]:
            if r[col] != want:
                failures.append(f"{what} {col}: pws-analyze {r[col]}, DuckDB {want}")
        unit = "run" if unit_of[key[:3]] else "activation"
        if r["unit"] != unit:
            failures.append(f"{what} unit: pws-analyze {r['unit']}, DuckDB {unit}")
        pick = lambda e: None if e is None else (e[0], e[3], e[4])
        check(f"{what} energy_per_activation_j", r["energy_per_activation_j"], pick(energy(key)))
        check(f"{what} cold_energy_mean_j", r["cold_energy_mean_j"], pick(energy(key, True)))
        for m in PER_RUN[2:]:
            want = pick(estimate(list(runs[m])))
            if m == "cold_share" and want is not None and want[2] is not None:
                want = (want[0], want[1], min(want[2], 1.0))  # a share's interval ends at 1
            check(f"{what} {m}", r[m], want)
        if baseline is not None and list(key[3:]) == baseline:
            zero = (0.0, None, None)
            check(f"{what} energy_per_activation_change_pct",
                  r["energy_per_activation_change_pct"], zero)
            check(f"{what} energy_per_success_change_pct",
                  r["energy_per_success_change_pct"],
                  zero if estimate(list(runs.energy_per_success_j)) else None)
        elif baseline is not None:
            bkey = (*key[:3], *baseline)
            if bkey in groups:
                check(f"{what} energy_per_activation_change_pct",
                      r["energy_per_activation_change_pct"], change(energy(key), energy(bkey)))
                check(f"{what} energy_per_success_change_pct",
                      r["energy_per_success_change_pct"],
                      change(estimate(list(runs.energy_per_success_j)),
                             estimate(list(groups[bkey]["runs"].energy_per_success_j))))
    print(f"compared {len(rows)} rows ({model}, {policy}, by {','.join(by)}, "
          f"baseline {baseline}) with DuckDB: {len(failures)} disagreements")
    for f in failures:
        print("FAIL", f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
