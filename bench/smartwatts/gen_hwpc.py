#!/usr/bin/env python3
"""Write a seeded sequence of hwpc-sensor CSV reports (rapl.csv, msr.csv, core.csv) for the
smartwatts comparison.

The RAPL energy of each socket follows a hidden linear model of the targets' core counters,
plus a system background and Gaussian noise; the package frequency moves between a few
plateaus so that several frequency layers get a model; half-way through, the idle power of
every socket jumps, which makes smartwatts' error window exceed its threshold and recalibrate.

Standard library only. The files follow hwpc-sensor's CSV output: one file per events group,
columns `timestamp,sensor,target,socket,cpu,<events>,time_enabled,time_running`, values are
deltas since the previous tick, RAPL in units of 2^-32 J. Rows are sorted by timestamp, the
`all` target first in each tick and each target's rows contiguous, which is what powerapi's
CSV puller needs (it reads the files in lock-step, keyed on the last file's timestamps).
"""

import argparse
import csv
import os
import random

CORE_EVENTS = [
    "CPU_CLK_THREAD_UNHALTED:REF_P",
    "CPU_CLK_THREAD_UNHALTED:THREAD_P",
    "INSTRUCTIONS_RETIRED",
    "LLC_MISSES",
]
BASE_MHZ = 2100
# (name, cpus, instructions per cycle, LLC misses per instruction, mean utilisation, first tick)
TARGETS = [
    ("/docker/web", [0, 1, 4], 1.8, 0.002, 0.45, 0),
    ("/docker/db", [2, 5], 0.7, 0.02, 0.6, 0),
    ("/docker/batch", [3, 6, 7], 2.4, 0.0005, 0.85, 40),
    ("/docker/cache", [0, 7], 1.1, 0.008, 0.3, 0),
]
# Package frequency plateaus (MHz), kept 30+ MHz inside a 100 MHz layer.
PLATEAUS = [2150, 1850, 2550, 2150, 1650]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory to write rapl.csv, msr.csv, core.csv")
    ap.add_argument("--ticks", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=20250601)
    ap.add_argument("--sockets", type=int, default=2)
    ap.add_argument("--cpus-per-socket", type=int, default=4)
    ap.add_argument("--sensor", default="pws-bench")
    ap.add_argument("--period-ms", type=int, default=1000)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    n_cpus = a.sockets * a.cpus_per_socket
    sock_of = [c // a.cpus_per_socket for c in range(n_cpus)]
    period = a.period_ms / 1000.0
    tsc = int(BASE_MHZ * 1e6 * period)
    t0 = 1_700_000_000_000
    os.makedirs(a.out, exist_ok=True)

    files = {g: open(os.path.join(a.out, f"{g}.csv"), "w", newline="", encoding="utf-8")
             for g in ("rapl", "msr", "core")}
    w = {g: csv.writer(f) for g, f in files.items()}
    head = ["timestamp", "sensor", "target", "socket", "cpu"]
    w["rapl"].writerow(head + ["RAPL_ENERGY_DRAM", "RAPL_ENERGY_PKG", "time_enabled", "time_running"])
    w["msr"].writerow(head + ["APERF", "MPERF", "TSC", "time_enabled", "time_running"])
    w["core"].writerow(head + CORE_EVENTS + ["time_enabled", "time_running"])

    util = {name: mean for name, _, _, _, mean, _ in TARGETS}
    plateau_len = max(1, a.ticks // len(PLATEAUS))
    enabled = 0
    for k in range(a.ticks):
        ts = t0 + k * a.period_ms
        enabled += int(period * 1e9)
        base_f = PLATEAUS[min(k // plateau_len, len(PLATEAUS) - 1)]
        freq = [base_f + rng.randint(-25, 25) for _ in range(a.sockets)]

        # Per-target, per-CPU counters for this tick.
        per_target = {}
        busy = [0.02] * n_cpus  # background activity of the system itself
        for name, cpus, ipc, mpi, mean, start in TARGETS:
            if k < start:
                continue
            u = util[name] + rng.gauss(0.0, 0.08) + 0.3 * (mean - util[name])
            util[name] = min(0.98, max(0.02, u))
            rows = {}
            for c in cpus:
                uc = min(1.0, max(0.0, util[name] * rng.uniform(0.7, 1.1)))
                ref = int(uc * tsc)
                thread = int(ref * freq[sock_of[c]] / BASE_MHZ)
                instr = int(thread * ipc * rng.uniform(0.85, 1.15))
                llc = int(instr * mpi * rng.uniform(0.7, 1.3))
                rows[c] = [ref, thread, instr, llc]
                busy[c] += uc
            per_target[name] = rows

        # RAPL from the hidden model, per socket.
        jump = 6.0 if k >= a.ticks // 2 else 0.0
        for s in range(a.sockets):
            tot = [0, 0, 0, 0]
            for rows in per_target.values():
                for c, v in rows.items():
                    if sock_of[c] == s:
                        tot = [x + y for x, y in zip(tot, v)]
            pkg = (14.0 + 3.0 * s + jump + 6.5 * tot[1] / 1e9 + 4.0 * tot[2] / 1e9
                   + 0.9 * tot[3] / 1e6 + rng.gauss(0.0, 0.4))
            dram = 2.5 + 0.5 * s + 0.35 * tot[3] / 1e6 + 0.2 * tot[2] / 1e9 + rng.gauss(0.0, 0.1)
            first_cpu = s * a.cpus_per_socket
            w["rapl"].writerow([ts, a.sensor, "all", s, first_cpu,
                                int(max(dram, 0.1) * period * 2**32),
                                int(max(pkg, 0.1) * period * 2**32), enabled, enabled])

        for c in range(n_cpus):
            mperf = int(min(1.0, busy[c]) * tsc)
            aperf = int(mperf * freq[sock_of[c]] / BASE_MHZ)
            w["msr"].writerow([ts, a.sensor, "all", sock_of[c], c, aperf, mperf, tsc, enabled, enabled])

        # The `all` target's own core counters (smartwatts ignores them), then each target.
        for c in range(n_cpus):
            agg = [0, 0, 0, 0]
            for rows in per_target.values():
                if c in rows:
                    agg = [x + y for x, y in zip(agg, rows[c])]
            bg = int(0.02 * tsc)
            agg = [agg[0] + bg, agg[1] + bg, agg[2] + bg // 2, agg[3] + bg // 1000]
            w["core"].writerow([ts, a.sensor, "all", sock_of[c], c, *agg, enabled, enabled])
        for name, rows in per_target.items():
            for c in sorted(rows):
                w["core"].writerow([ts, a.sensor, name, sock_of[c], c, *rows[c], enabled, enabled])

    for f in files.values():
        f.close()


if __name__ == "__main__":
    main()
