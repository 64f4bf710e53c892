#!/usr/bin/env python3
"""Helper for bench/recorder_overhead.sh (python3 standard library only).

Subcommands:
  run --out F [--stop-after S] -- CMD...   run CMD, stop it with SIGINT when this helper gets
                                           SIGINT/SIGTERM (or after S seconds), and write CMD's
                                           own user+sys CPU time (wait4 rusage), its wall time
                                           and the host's busy CPU time over the same span
  work --out F --procs P (--iters N | --seconds S)
                                           the CPU-bound workload: P forked workers each
                                           running N iterations of a Python integer loop (or
                                           for S seconds); writes the wall time and iterations
  perfstats --perf PERF --data F           `perf report --stats` of a perf.data as JSON
  report --dir D                           read every run under D, print the tables and
                                           PASS/FAIL lines, write D/results.json
"""

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- measuring


def host_cpu():
    """(busy, steal) seconds summed over all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    v = [int(x) for x in fields] + [0] * 10
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    busy = user + nice + system + irq + softirq  # guest time is already inside user
    return busy / CLK_TCK, steal / CLK_TCK


def proc_cpu(pid):
    """CPU seconds (user+sys) of every live thread of pid, from schedstat (ns precision)."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total / 1e9


def perf_users(exclude=()):
    """Processes other than `exclude` holding perf event fds: {pid: [comm, fds]}. Another
    recorder running at the same time competes for the CPUs and, on some kernels, even gets
    samples into the other's ring (see README)."""
    users = {}
    me = {os.getpid(), *exclude}
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in me:
            continue
        n = 0
        try:
            for fd in os.listdir(f"/proc/{d}/fd"):
                try:
                    if os.readlink(f"/proc/{d}/fd/{fd}") == "anon_inode:[perf_event]":
                        n += 1
                except OSError:
                    pass
            if n:
                with open(f"/proc/{d}/comm") as f:
                    users[d] = [f.read().strip(), n]
        except OSError:
            pass
    return users


def cmd_run(a):
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        sys.exit("run: no command")
    state = {"child": None, "stop_sent": None, "cpu_at_stop": None}

    def forward(signum, _frame):
        c = state["child"]
        if c is not None and state["stop_sent"] is None:
            state["cpu_at_stop"] = proc_cpu(c.pid)
            try:
                os.kill(c.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            state["stop_sent"] = state["stop_sent"] or time.monotonic()

    # Installed before the child starts: the child gets default dispositions on exec.
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    log = open(a.log, "w") if a.log else subprocess.DEVNULL
    busy0, steal0 = host_cpu()
    t0 = time.monotonic()
    child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT if a.log else None)
    state["child"] = child
    others = perf_users([child.pid])
    deadline = t0 + a.stop_after if a.stop_after else None
    mark_at = t0 + a.mark_after
    cpu_at_mark = None
    t_mark = None
    while True:
        # wait4 on this exact pid: the rusage is the command's own (plus any children it
        # reaped, which none of the recorders have), never the workload's.
        try:
            pid, status, ru = os.wait4(child.pid, os.WNOHANG)
        except ChildProcessError:
            sys.exit("run: lost the child")
        if pid == child.pid:
            break
        now = time.monotonic()
        if cpu_at_mark is None and now >= mark_at and state["stop_sent"] is None:
            cpu_at_mark, t_mark = proc_cpu(child.pid), now
            others.update(perf_users([child.pid]))
        if deadline and now >= deadline and state["stop_sent"] is None:
            forward(signal.SIGINT, None)
        if state["stop_sent"] and now - state["stop_sent"] > 60:
            os.kill(child.pid, signal.SIGKILL)
        time.sleep(0.02)
    t1 = time.monotonic()
    busy1, steal1 = host_cpu()
    child.returncode = os.waitstatus_to_exitcode(status)
    cpu = ru.ru_utime + ru.ru_stime
    stop_cpu = state["cpu_at_stop"]
    phases = None
    if cpu_at_mark is not None and stop_cpu is not None:
        # start: launch until --mark-after (opening events, snapshots, synthesis);
        # steady: from then until we asked it to stop; stop: draining, writing, exiting.
        phases = {
            "start_cpu_s": cpu_at_mark,
            "steady_cpu_s": stop_cpu - cpu_at_mark,
            "steady_wall_s": state["stop_sent"] - t_mark,
            "stop_cpu_s": cpu - stop_cpu,
        }
    out = {
        "cmd": cmd,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "cpu_s": cpu,
        "phases": phases,
        "max_rss_kb": ru.ru_maxrss,
        "wall_s": t1 - t0,
        "stop_to_exit_s": (t1 - state["stop_sent"]) if state["stop_sent"] else None,
        "exit": child.returncode,
        "host_busy_s": busy1 - busy0,
        "host_steal_s": steal1 - steal0,
        "other_perf_users": others,
    }
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    # A recorder stopped by our SIGINT may exit 0 or 130; anything else is worth a look.
    sys.exit(0 if child.returncode in (0, 130, -2) else 3)


def cmd_work(a):
    procs, iters, seconds = a.procs, a.iters, a.seconds
    r, w = os.pipe()
    t0 = time.monotonic()
    pids = []
    for _ in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(r)
            x = n = 0
            if iters:
                for j in range(iters):
                    x += j
                n = iters
            else:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    for j in range(100_000):
                        x += j
                    n += 100_000
            os.write(w, f"{n}\n".encode())
            os._exit(0)
        pids.append(pid)
    os.close(w)
    for p in pids:
        os.waitpid(p, 0)
    wall = time.monotonic() - t0
    done = [int(x) for x in os.read(r, 1 << 16).split()]
    out = {"procs": procs, "wall_s": wall, "iters_per_proc": min(done) if done else 0}
    out["iters_per_s_per_proc"] = out["iters_per_proc"] / wall if wall > 0 else 0
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"{wall:.2f}")


def perf_stats(perf, data):
    """SAMPLE / LOST counts from `perf report --stats` (its "Aggregated stats" block)."""
    p = subprocess.run(
        [perf, "report", "--stats", "-i", data],
        capture_output=True,
        text=True,
    )
    text = p.stdout + p.stderr
    agg = text.split("Aggregated stats:", 1)[-1]
    # Per-event blocks ("cpu-clock/.../ stats:") follow the aggregate: stop before them.
    agg = re.split(r"\n\S[^\n]* stats:\n", agg, maxsplit=1)[0]
    counts = {}
    for m in re.finditer(r"^\s*([A-Z_]+) events:\s+(\d+)", agg, re.M):
        counts.setdefault(m.group(1), int(m.group(2)))
    per_event = {}
    for m in re.finditer(r"^(\S[^\n]*) stats:\n\s+SAMPLE events:\s+(\d+)", text, re.M):
        per_event[m.group(1)] = int(m.group(2))
    return {
        "samples": counts.get("SAMPLE", 0),
        "lost": counts.get("LOST", 0) + counts.get("LOST_SAMPLES", 0),
        "events": counts,
        "samples_per_event": per_event,
        "report_exit": p.returncode,
    }


PERF_RECORD_NAMES = {1: "MMAP", 2: "LOST", 3: "COMM", 4: "EXIT", 5: "THROTTLE", 6: "UNTHROTTLE",
                     7: "FORK", 8: "READ", 9: "SAMPLE", 10: "MMAP2", 11: "AUX", 12: "ITRACE_START",
                     13: "LOST_SAMPLES", 14: "SWITCH", 15: "SWITCH_CPU_WIDE", 16: "NAMESPACES",
                     17: "KSYMBOL", 18: "BPF_EVENT", 19: "CGROUP", 20: "TEXT_POKE"}


def perf_data_records(path):
    """Counts the records of a perf.data file by walking its data section's record headers
    (perf_event_header: u32 type, u16 misc, u16 size); independent of the perf version."""
    import struct

    counts = {}
    with open(path, "rb") as f:
        head = f.read(104)
        if head[:8] != b"PERFILE2":
            return {"error": "not a perf.data file (or pipe mode)"}
        attr_size, attrs_off, attrs_size, data_off, data_size = struct.unpack_from("<QQQQQ", head, 16)
        # The ids of perf's own events: each attrs entry is an attr then a section of u64 ids.
        own = set()
        f.seek(attrs_off)
        attrs = f.read(attrs_size)
        for e in range(0, len(attrs) - attr_size + 1, attr_size):
            ids_off, ids_size = struct.unpack_from("<QQ", attrs, e + attr_size - 16)
            f.seek(ids_off)
            own.update(struct.unpack(f"<{ids_size // 8}Q", f.read(ids_size)))
        f.seek(data_off)
        buf = f.read(data_size)
    foreign = 0
    p, n = 0, len(buf)
    lost = 0
    while p + 8 <= n:
        ty, _misc, size = struct.unpack_from("<IHH", buf, p)
        if size < 8:
            break
        name = PERF_RECORD_NAMES.get(ty, str(ty))
        counts[name] = counts.get(name, 0) + 1
        # Every event the benchmark opens has PERF_SAMPLE_IDENTIFIER: the id comes first.
        if ty == 9 and own and p + 16 <= n and struct.unpack_from("<Q", buf, p + 8)[0] not in own:
            foreign += 1
        if ty == 2 and p + 24 <= n:  # LOST: header, id, lost
            lost += struct.unpack_from("<Q", buf, p + 16)[0]
        elif ty == 13 and p + 16 <= n:  # LOST_SAMPLES: header, lost
            lost += struct.unpack_from("<Q", buf, p + 8)[0]
        p += size
    return {"samples": counts.get("SAMPLE", 0), "foreign_samples": foreign, "lost": lost, "records": counts,
            "data_bytes": data_size, "parsed_to": p}


def tracepoint_names():
    """tracepoint id → "group:name", from tracefs."""
    names = {}
    for root in ("/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"):
        if not os.path.isdir(root):
            continue
        for grp in ("cgroup",):
            gdir = os.path.join(root, grp)
            for ev in os.listdir(gdir) if os.path.isdir(gdir) else []:
                try:
                    with open(os.path.join(gdir, ev, "id")) as f:
                        names[int(f.read())] = f"{grp}:{ev}"
                except (OSError, ValueError):
                    pass
        if names:
            break
    return names


SW_NAMES = {0: "cpu-clock", 1: "task-clock", 3: "context-switches", 9: "dummy"}


def stream_of(name):
    if name in ("cpu-clock", "cycles"):
        return "timer (cpu-clock)"
    if name == "context-switches":
        return "switch (context-switches)"
    if name.startswith("cgroup:"):
        return "tracepoint (cgroup:*)"
    return "other: " + name


def perf_samples_by_event(path):
    import struct

    tps = tracepoint_names()
    by_id = {}
    with open(path, "rb") as f:
        head = f.read(104)
        attr_size, attrs_off, attrs_size, data_off, data_size = struct.unpack_from("<QQQQQ", head, 16)
        f.seek(attrs_off)
        attrs = f.read(attrs_size)
        for e in range(0, len(attrs) - attr_size + 1, attr_size):
            ty, _size, config = struct.unpack_from("<IIQ", attrs, e)
            name = (SW_NAMES.get(config, f"software {config}") if ty == 1 else
                    tps.get(config, f"tracepoint {config}") if ty == 2 else f"type {ty} config {config}")
            ids_off, ids_size = struct.unpack_from("<QQ", attrs, e + attr_size - 16)
            f.seek(ids_off)
            for i in struct.unpack(f"<{ids_size // 8}Q", f.read(ids_size)):
                by_id[i] = name
        f.seek(data_off)
        buf = f.read(data_size)
    return count_samples(buf, by_id)


def count_samples(buf, by_id):
    import struct

    out = {}
    p, n = 0, len(buf)
    while p + 16 <= n:
        ty, _misc, size = struct.unpack_from("<IHH", buf, p)
        if size < 8:
            break
        if ty == 9:
            name = by_id.get(struct.unpack_from("<Q", buf, p + 8)[0], "ids of events it did not open")
            out[name] = out.get(name, 0) + 1
        p += size
    return out


def pws_samples_by_event(path, repo):
    """Needs an uncompressed trace (--compression-level 0): the repository's reader then
    works with the standard library alone."""
    sys.dont_write_bytecode = True  # leave no __pycache__ in the repository
    sys.path.insert(0, os.path.join(repo, "crates", "trace-format", "python"))
    import pws_read

    with open(path, "rb") as f:
        t = pws_read.read_trace(f.read(), False)
    by_id = {}
    out = {}
    for b in t["blocks"]:
        if b["name"] == "trace-info":
            for e in b["payload"]["perf_events"]:
                for i in e["ids"]:
                    by_id[i["id"]] = e["name"]
        elif b["name"] == "perf-data":
            for k, v in count_samples(bytes.fromhex(b["payload"]["data"]), by_id).items():
                out[k] = out.get(k, 0) + v
    return out


def cmd_streams(a):
    res = {}
    for tool, fn, arg in (("perf", perf_samples_by_event, (a.perf_data,)),
                          ("pws", pws_samples_by_event, (a.pws_trace, a.repo))):
        try:
            events = fn(*arg)
            streams = {}
            for name, n in events.items():
                streams[stream_of(name)] = streams.get(stream_of(name), 0) + n
            res[tool] = {"events": events, "streams": streams}
        except Exception as e:  # report, do not break the benchmark
            res[tool] = {"error": f"{type(e).__name__}: {e}"}
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


def cmd_switchload(a):
    """Two processes passing a byte back and forth through pipes: a context switch per hop."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    end = time.monotonic() + a.seconds
    pid = os.fork()
    if pid == 0:
        while os.read(r1, 1) == b"x":
            os.write(w2, b"x")
        os._exit(0)
    hops = 0
    t = time.monotonic()
    while t < end:
        os.write(w1, b"x")
        os.read(r2, 1)
        hops += 1
        time.sleep(1 / a.rate)  # a third switch per hop: sleeping
        t = time.monotonic()
    os.write(w1, b"q")
    os.waitpid(pid, 0)
    print(hops)


def cmd_perfstats(a):
    own = perf_data_records(a.data)
    try:
        own["samples_by_event"] = perf_samples_by_event(a.data)
    except Exception as e:  # informational only
        own["samples_by_event"] = {"error": str(e)}
    try:
        own["perf_report_stats"] = perf_stats(a.perf, a.data)
    except OSError as e:
        own["perf_report_stats"] = {"error": str(e)}
    print(json.dumps(own))


# --------------------------------------------------------------------------- reporting


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec=".3f"):
    return "—" if x is None else format(x, spec)


def ratio(a, b):
    return None if a is None or b in (None, 0) else a / b


def verdict(ok):
    return "n/a " if ok is None else ("PASS" if ok else "FAIL")


def table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def part1(d, params, results):
    """The workload bare, under perf record, under pws-record."""
    base = os.path.join(d, "p1")
    if not os.path.isdir(base):
        return []
    runs = {}
    for name in sorted(os.listdir(base)):
        mode, _, rep = name.rpartition("-")
        rd = os.path.join(base, name)
        r = {"work": load(os.path.join(rd, "work.json")), "run": load(os.path.join(rd, "run.json"))}
        if mode.startswith("pws"):
            s = load(os.path.join(rd, "summary.json")) or {}
            r["samples"] = s.get("samples")
            r["bytes"] = s.get("bytes")
            r["lost"] = s.get("lost_records")
            r["throttled"] = s.get("throttled")
        elif mode == "perf":
            s = load(os.path.join(rd, "perfstats.json")) or {}
            r["samples"] = s.get("samples")
            r["bytes"] = load(os.path.join(rd, "size.json"))
            r["lost"] = s.get("lost")
            r["throttled"] = (s.get("records") or {}).get("THROTTLE", 0)
            r["by_event"] = s.get("samples_by_event")
        elif mode == "perf-z":
            # perf.data -z holds COMPRESSED records: samples cannot be counted by walking headers.
            r["bytes"] = load(os.path.join(rd, "size.json"))
        runs.setdefault(mode, []).append(r)

    def stats(mode):
        rs = runs.get(mode, [])
        wall = med([r["work"]["wall_s"] for r in rs if r["work"]])
        cpu = med([r["run"]["cpu_s"] for r in rs if r.get("run")])
        user = med([r["run"]["user_s"] for r in rs if r.get("run")])
        sys_ = med([r["run"]["sys_s"] for r in rs if r.get("run")])
        bps = med([r["bytes"] / r["samples"] for r in rs if r.get("bytes") and r.get("samples")])
        samples = med([r.get("samples") for r in rs])
        nbytes = med([r.get("bytes") for r in rs])
        lost = sum(r.get("lost") or 0 for r in rs)
        throttled = sum(r.get("throttled") or 0 for r in rs)
        ph = lambda k: med([(r["run"].get("phases") or {}).get(k) for r in rs if r.get("run")])
        return {"n": len(rs), "wall_s": wall, "cpu_s": cpu, "user_s": user, "sys_s": sys_,
                "start_cpu_s": ph("start_cpu_s"), "steady_cpu_s": ph("steady_cpu_s"),
                "stop_cpu_s": ph("stop_cpu_s"),
                "during_ms_per_s": med([1000 * r["run"]["phases"]["steady_cpu_s"] / r["run"]["phases"]["steady_wall_s"]
                                        for r in rs if r.get("run") and (r["run"].get("phases") or {}).get("steady_wall_s")]),
                "fixed_cpu_s": med([r["run"]["phases"]["start_cpu_s"] + r["run"]["phases"]["stop_cpu_s"]
                                    for r in rs if r.get("run") and r["run"].get("phases")]),
                "bytes_per_sample": bps, "samples": samples, "bytes": nbytes, "lost": lost, "throttled": throttled,
                "walls": [round(r["work"]["wall_s"], 3) for r in rs if r["work"]],
                "cpus": [round(r["run"]["cpu_s"], 3) for r in rs if r.get("run")]}

    s = {m: stats(m) for m in runs}
    if "perf-z" in s and "perf" in s and s["perf"]["samples"]:
        # Same command, same streams: perf record's sample count stands for perf -z's.
        s["perf-z"]["bytes_per_sample"] = ratio(s["perf-z"]["bytes"], s["perf"]["samples"])
    perf_by_event = [r.get("by_event") or {} for r in runs.get("perf", [])]
    bare = s.get("bare", {}).get("wall_s")
    for m in s:
        s[m]["slowdown"] = ratio(s[m]["wall_s"], bare)
    results["part1"] = s
    perf = s.get("perf", {})
    labels = {"bare": "bare", "perf": "perf record", "perf-z": "perf record -z (info)", "pws": "pws-record",
              "pws-noenergy": "pws-record --energy none"}
    rows = []
    for m in ["bare", "perf", "perf-z", "pws", "pws-noenergy"]:
        if m not in s:
            continue
        x = s[m]
        rows.append([
            labels[m], x["n"], fmt(x["wall_s"], ".2f"), fmt(x["slowdown"], ".3f"),
            fmt(x["user_s"], ".3f"), fmt(x["sys_s"], ".3f"), fmt(x["cpu_s"], ".3f"),
            fmt(ratio(x["cpu_s"], perf.get("cpu_s")), ".2f") if m != "bare" else "",
            fmt(x["samples"], ".0f") if m != "bare" else "",
            fmt(x["bytes"], ".0f") if m != "bare" else "",
            fmt(x["bytes_per_sample"], ".1f") if m != "bare" else "",
            fmt(ratio(x["bytes_per_sample"], perf.get("bytes_per_sample")), ".3f") if m != "bare" else "",
            x["lost"] if m != "bare" else "",
            x["throttled"] if m != "bare" else "",
        ])
    lines = [
        f"Part 1 — CPU-bound workload ({params.get('procs')} workers, ~{params.get('work_seconds')} s bare), "
        f"{params.get('freq')} Hz, {params.get('reps')} repetitions, medians",
        table(rows, ["run", "n", "wall s", "slowdown", "rec user s", "rec sys s", "rec cpu s",
                     "cpu/perf", "samples", "bytes", "B/sample", "B/s÷perf", "lost", "throttled"]),
        "  recorder cpu s by phase (medians): " + "; ".join(
            f"{labels[m]}: start {fmt(s[m]['start_cpu_s'])} + during {fmt(s[m]['steady_cpu_s'])} + stop {fmt(s[m]['stop_cpu_s'])}"
            for m in s if m != "bare"),
        "    (start: first " + str(params.get("settle_s")) + " s, opening events and snapshots; during: while the workload ran; "
        "stop: from SIGINT to exit)",
        "  per second of recording (during): " + "; ".join(
            f"{labels[m]} {fmt(s[m]['during_ms_per_s'], '.2f')} ms/s" for m in s if m != "bare")
        + "; fixed (start + stop): " + "; ".join(
            f"{labels[m]} {fmt(s[m]['fixed_cpu_s'])} s" for m in s if m != "bare"),
        "  samples, bytes: medians per run; lost, throttled: totals over all runs"
        + ("; perf record -z: B/sample from perf record's sample count (same streams; its compressed file cannot be walked)"
           if "perf-z" in s else ""),
        "  perf record's samples by event, per run: " + "; ".join(
            ", ".join(f"{k} {v}" for k, v in sorted(b.items())) for b in perf_by_event),
        "  each run's workload wall s: " + "; ".join(f"{labels[m]} {s[m]['walls']}" for m in s),
        "  each run's recorder cpu s:  " + "; ".join(f"{labels[m]} {s[m]['cpus']}" for m in s if m != "bare"),
    ]
    return lines


def streams(d, params, results):
    r = load(os.path.join(d, "streams", "streams.json"))
    if not r:
        return []
    results["streams"] = r
    names = sorted({k for t in ("perf", "pws") for k in (r.get(t, {}).get("streams") or {})})
    rows = [[n] + [(r.get(t, {}).get("streams") or {}).get(n, 0) for t in ("perf", "pws")] for n in names]
    lines = ["Sample streams — a 2 s run of each recorder under a pipe ping-pong and three short-lived cgroups"]
    for t in ("perf", "pws"):
        if r.get(t, {}).get("error"):
            lines.append(f"  {t}: could not count ({r[t]['error']})")
    return lines + [table(rows, ["stream", "perf record", "pws-record"])]


def part2(d, params, results):
    rd = os.path.join(d, "p2")
    s = load(os.path.join(rd, "summary.json"))
    run = load(os.path.join(rd, "run.json"))
    if s is None:
        if os.path.isdir(rd):
            results["part2"] = {"error": "no summary (pws-record failed: see p2/tool.log)"}
            return ["Part 2 — loss check: pws-record wrote no summary (see p2/tool.log)"]
        return []
    per_cpu = s.get("per_cpu", [])
    cpus = s.get("cpus", len(per_cpu))
    secs = s.get("seconds") or 0
    expected = params.get("loss_freq", 0) * cpus * secs
    every_cpu = len(per_cpu) == cpus and all(c.get("bytes", 0) > 0 for c in per_cpu)
    ok = every_cpu and all(c.get("lost_records", 1) == 0 for c in per_cpu) and s.get("lost_records") == 0
    results["part2"] = {"summary": {k: v for k, v in s.items() if k != "sources"}, "run": run,
                        "expected_timer_samples": expected, "pass": ok}
    lines = [f"Part 2 — loss check: pws-record --freq {params.get('loss_freq')} for {secs:.1f} s, "
             f"workload on every CPU",
             table([[c["cpu"], c.get("bytes"), c.get("lost_records"), c.get("throttled"), c.get("wakeups")]
                    for c in per_cpu], ["cpu", "ring bytes", "lost", "throttled", "wakeups"]),
             f"  samples {s.get('samples')} (≈ {params.get('loss_freq')} Hz × {cpus} CPUs × {secs:.1f} s = "
             f"{expected:.0f} timer samples, plus switch samples), trace {s.get('bytes')} bytes, "
             f"recorder cpu {fmt(run and run['cpu_s'])} s"]
    return lines


def part3(d, params, results):
    base = os.path.join(d, "p3")
    if not os.path.isdir(base):
        return []
    data = {}
    for name in os.listdir(base):
        n, _, tool = name.partition("-")
        data.setdefault(int(n), {})[tool] = {
            "run": load(os.path.join(base, name, "run.json")),
            "summary": load(os.path.join(base, name, "summary.json")),
        }
    ns = sorted(data)
    out = {}
    rows = []
    for n in ns:
        t = data[n]
        get = lambda tool, k: (t.get(tool, {}).get("run") or {}).get(k)
        base_busy = get("baseline", "host_busy_s")
        row = {"baseline_host_busy_s": base_busy}
        for tool in ["pws", "perfstat"]:
            row[tool + "_cpu_s"] = get(tool, "cpu_s")
            ph = get(tool, "phases") or {}
            row[tool + "_start_cpu_s"] = ph.get("start_cpu_s")
            row[tool + "_steady_ms_per_s"] = (1000 * ph["steady_cpu_s"] / ph["steady_wall_s"]
                                              if ph.get("steady_wall_s") else None)
            hb = get(tool, "host_busy_s")
            row[tool + "_host_extra_s"] = None if hb is None or base_busy is None else hb - base_busy
        s = t.get("pws", {}).get("summary") or {}
        row["pws_samples"], row["pws_lost"] = s.get("samples"), s.get("lost_records")
        out[n] = row
        rows.append([n, fmt(row["pws_cpu_s"]), fmt(row["perfstat_cpu_s"]),
                     fmt(row["pws_start_cpu_s"]), fmt(row["perfstat_start_cpu_s"]),
                     fmt(row["pws_steady_ms_per_s"], ".2f"), fmt(row["perfstat_steady_ms_per_s"], ".2f"),
                     fmt(base_busy, ".2f"), fmt(row["pws_host_extra_s"], ".2f"), fmt(row["perfstat_host_extra_s"], ".2f"),
                     fmt(row["pws_samples"], "") if row["pws_samples"] is not None else "—",
                     fmt(row["pws_lost"], "") if row["pws_lost"] is not None else "—"])
    growth = {}
    if len(ns) >= 2:
        lo, hi = out[ns[0]], out[ns[-1]]
        for tool in ["pws", "perfstat"]:
            growth[tool] = ratio(hi[tool + "_steady_ms_per_s"], lo[tool + "_steady_ms_per_s"])
            growth[tool + "_total"] = ratio(hi[tool + "_cpu_s"], lo[tool + "_cpu_s"])
            growth[tool + "_start"] = ratio(hi[tool + "_start_cpu_s"], lo[tool + "_start_cpu_s"])
    results["part3"] = {"by_cgroups": out, "growth": growth}
    lines = [
        f"Part 3 — cost against the number of live cgroups ({params.get('cg_window')} s window each, "
        f"{params.get('cg_wakeups')} wakeups/s shared by all cgroups' processes)",
        table(rows, ["cgroups", "pws cpu s", "perf stat cpu s", "pws start s", "perf stat start s",
                     "pws ms/s", "perf stat ms/s", "host busy s, no tool", "pws host +s", "perf stat host +s",
                     "pws samples", "pws lost"]),
        "  cpu s: the tool's own user+sys over the whole run; start: its first second (opening, snapshot);",
        "  ms/s: its own CPU per second of steady running after that; host: busy CPU of the whole VM",
        "  (all CPUs, /proc/stat) minus the same window with no tool — noisy if anything else runs here.",
    ]
    if growth:
        lines.append(f"  growth {ns[0]} → {ns[-1]} cgroups: steady ms/s pws-record ×{fmt(growth['pws'], '.2f')}, "
                     f"perf stat -G ×{fmt(growth['perfstat'], '.2f')}; whole-run cpu pws-record ×{fmt(growth['pws_total'], '.2f')}, "
                     f"perf stat -G ×{fmt(growth['perfstat_total'], '.2f')}; start pws-record ×{fmt(growth['pws_start'], '.2f')}, "
                     f"perf stat -G ×{fmt(growth['perfstat_start'], '.2f')}")
    return lines


def part4(d, params, results):
    """Steady state: CPU per second from two recording lengths, and peak RSS at both."""
    base = os.path.join(d, "p4")
    if not os.path.isdir(base):
        return []
    short, long_ = params.get("steady_short_s"), params.get("steady_long_s")
    runs = {}
    for name in sorted(os.listdir(base)):
        mode, length, _rep = name.rsplit("-", 2)
        rd = os.path.join(base, name)
        run = load(os.path.join(rd, "run.json"))
        if run is None:
            continue
        summ = load(os.path.join(rd, "summary.json")) or {}
        runs.setdefault(mode, {}).setdefault(int(length), []).append(
            {"cpu_s": run["cpu_s"], "rss_mib": run["max_rss_kb"] / 1024, "lost": summ.get("lost_records")})
    out, rows = {}, []
    for mode, by_len in runs.items():
        a, b = by_len.get(short, []), by_len.get(long_, [])
        if not a or not b:
            continue
        ca, cb = med([r["cpu_s"] for r in a]), med([r["cpu_s"] for r in b])
        ra, rb = max(r["rss_mib"] for r in a), max(r["rss_mib"] for r in b)
        lost = sum(r["lost"] or 0 for r in a + b) if mode.startswith("pws") else None
        out[mode] = {"cpu_short_s": ca, "cpu_long_s": cb, "steady_ms_per_s": 1000 * (cb - ca) / (long_ - short),
                     "fixed_cpu_s": ca - (cb - ca) / (long_ - short) * short, "rss_short_mib": ra, "rss_long_mib": rb,
                     "lost": lost}
        x = out[mode]
        rows.append([mode, fmt(ca), fmt(cb), fmt(x["steady_ms_per_s"], ".2f"), fmt(x["fixed_cpu_s"]),
                     fmt(ra, ".1f"), fmt(rb, ".1f"), "" if lost is None else lost])
    results["part4"] = out
    return [f"Part 4 — steady state: recordings of {short} s and {long_} s (median of {params.get('steady_reps')}), "
            f"every CPU busy, {params.get('freq')} Hz",
            table(rows, ["mode", f"cpu {short} s", f"cpu {long_} s", "steady ms/s", "fixed s",
                         f"RSS {short} s MiB", f"RSS {long_} s MiB", "lost"]),
            f"  steady ms/s = (cpu {long_} s − cpu {short} s) / {long_ - short} s: what one more second of recording "
            "costs; fixed = the rest of the short run's CPU (start and stop)"]


def cmd_report(a):
    d = a.dir
    params = load(os.path.join(d, "params.json")) or {}
    results = {"params": params}
    lines = []
    for part in (streams, part1, part2, part3, part4):
        got = part(d, params, results)
        if got:
            lines += got + [""]

    # Targets.
    checks = []
    p1 = results.get("part1", {})
    perf, pws = p1.get("perf", {}), p1.get("pws", {})
    if perf and pws:
        r = ratio(pws.get("cpu_s"), perf.get("cpu_s"))
        checks.append(("recorder CPU time (user+sys) ≤ perf record's", r is not None and r <= 1.0,
                       f"pws {fmt(pws.get('cpu_s'))} s vs perf {fmt(perf.get('cpu_s'))} s, ratio {fmt(r, '.2f')}"))
        # The runs are short, so fixed costs weigh a lot; a recorder left on for hours pays
        # mostly its per-second cost. Like for like: perf record reads no energy counter, so
        # the stricter line compares it with pws-record --energy none; energy is shown apart.
        noe, perfz = p1.get("pws-noenergy", {}), p1.get("perf-z", {})
        for other, olabel in ((perf, "perf record"), (perfz, "perf record -z (both compress; info)")):
            pr, wr = other.get("during_ms_per_s"), noe.get("during_ms_per_s")
            pf, wf = other.get("fixed_cpu_s"), noe.get("fixed_cpu_s")
            if None in (pr, wr, pf, wf):
                continue
            if wr > pr and wf < pf:
                cross = f"; with these rates pws-record costs more for recordings longer than ~{(pf - wf) / ((wr - pr) / 1000):.0f} s"
            elif wr > pr:
                cross = "; pws-record costs more at any duration"
            elif wf > pf:
                cross = f"; pws-record costs less for recordings longer than ~{(wf - pf) / ((pr - wr) / 1000):.0f} s"
            else:
                cross = "; pws-record costs less at any duration"
            ok = (wr <= pr) if other is perf else None
            checks.append((f"(extra, stricter) CPU per second of recording, same streams: pws-record --energy none vs {olabel}", ok,
                           f"pws {fmt(wr, '.2f')} ms/s vs {fmt(pr, '.2f')} ms/s; fixed start+stop pws {fmt(wf)} s vs {fmt(pf)} s" + cross))
        we, wn = pws.get("during_ms_per_s"), noe.get("during_ms_per_s")
        if None not in (we, wn):
            reads = 1000.0 / params.get("energy_interval_ms", 10)
            checks.append(("energy source's own cost (info): pws-record minus pws-record --energy none, per second", None,
                           f"{fmt(we - wn, '.2f')} ms/s at {reads:.0f} reads/s ≈ {1000 * (we - wn) / reads:.1f} µs per read (thread wakeup included; "
                           "on a VM a timer wakeup alone costs tens of µs)"))
        r = ratio(pws.get("bytes_per_sample"), perf.get("bytes_per_sample"))
        checks.append(("bytes per sample ≤ 0.5 × perf.data's (default compression of each)", r is not None and r <= 0.5,
                       f"pws {fmt(pws.get('bytes_per_sample'), '.1f')} B vs perf {fmt(perf.get('bytes_per_sample'), '.1f')} B, ratio {fmt(r, '.3f')}"))
        r = ratio(pws.get("slowdown"), perf.get("slowdown"))
        checks.append(("workload slowdown vs perf record's (no target; info)", None,
                       f"pws ×{fmt(pws.get('slowdown'))} vs perf ×{fmt(perf.get('slowdown'))}, ratio {fmt(r, '.3f')}"))
        checks.append(("no lost records at the default frequency (both tools)",
                       (pws.get("lost") or 0) == 0 and (perf.get("lost") or 0) == 0,
                       f"pws {pws.get('lost')}, perf {perf.get('lost')} lost over all repetitions"))
    p4 = results.get("part4", {})
    noe, pz, pf, pw = (p4.get(m, {}) for m in ("pws-noenergy", "perf-z", "perf", "pws"))
    if noe and pz:
        w, z = noe["steady_ms_per_s"], pz["steady_ms_per_s"]
        checks.append(("steady CPU per second of recording, same streams: pws-record --energy none ≤ perf record -z",
                       w <= z, f"{fmt(w, '.2f')} vs {fmt(z, '.2f')} ms/s, ratio {fmt(ratio(w, z), '.2f')}"
                       + (f"; uncompressed perf record {fmt(pf['steady_ms_per_s'], '.2f')} ms/s, ratio {fmt(ratio(w, pf['steady_ms_per_s']), '.2f')}"
                          if pf else "")))
    pg = p4.get("perf-z-group", {})
    if noe and pg:
        w, g = noe["steady_ms_per_s"], pg["steady_ms_per_s"]
        checks.append(("steady CPU per second (info): pws-record --energy none vs perf record -z reading pws-record's "
                       "counter group in every timer sample", None, f"{fmt(w, '.2f')} vs {fmt(g, '.2f')} ms/s, ratio {fmt(ratio(w, g), '.2f')}"))
    if noe and pw:
        e = pw["steady_ms_per_s"] - noe["steady_ms_per_s"]
        reads = 1000.0 / params.get("energy_interval_ms", 10)
        if params.get("gpu"):
            # With a GPU, --energy auto reads it through NVML too: no target for the sum.
            checks.append(("energy sources' own steady cost, CPU source and nvml (info: pws-record minus pws-record --energy none)", None,
                           f"{fmt(e, '.2f')} ms/s (CPU source at {reads:.0f} reads/s, and the GPUs)"))
        else:
            checks.append(("energy source's own steady cost ≤ 1 ms/s (pws-record minus pws-record --energy none)", e <= 1.0,
                           f"{fmt(e, '.2f')} ms/s at {reads:.0f} reads/s"))
    pt = p4.get("pws-thread", {})
    if noe and pt:
        e = pt["steady_ms_per_s"] - noe["steady_ms_per_s"]
        reads = 1000.0 / params.get("energy_interval_ms", 10)
        checks.append(("energy source's own steady cost read by a waking thread (info: pws-record --energy-clock thread "
                       "minus --energy none)", None, f"{fmt(e, '.2f')} ms/s at {reads:.0f} reads/s ≈ {fmt(1000 * e / reads, '.1f')} µs per read"))
    pn = p4.get("pws-nvml", {})
    if noe and pn:
        e = pn["steady_ms_per_s"] - noe["steady_ms_per_s"]
        reads = 1000.0 / params.get("gpu_interval_ms", 100)
        checks.append(("nvml source's own steady cost (info: pws-record --energy nvml minus --energy none)", None,
                       f"{fmt(e, '.2f')} ms/s at {reads:.0f} reads/s of every GPU ≈ {fmt(e / reads, '.2f')} ms per read of all GPUs"))
    if pw:
        flat = pw["rss_long_mib"] <= 1.1 * pw["rss_short_mib"] + 1.0
        checks.append((f"pws-record peak RSS flat from {params.get('steady_short_s')} s to {params.get('steady_long_s')} s "
                       "(≤ ×1.1 + 1 MiB)", flat, f"{fmt(pw['rss_short_mib'], '.1f')} → {fmt(pw['rss_long_mib'], '.1f')} MiB"))
    if noe or pw:
        lost = (noe.get("lost") or 0) + (pw.get("lost") or 0)
        checks.append(("no lost records in the steady-state runs", lost == 0, f"{lost} lost"))
    st = results.get("streams")
    if st and "streams" in st.get("perf", {}) and "streams" in st.get("pws", {}):
        kinds = ["timer (cpu-clock)", "switch (context-switches)", "tracepoint (cgroup:*)"]
        have = lambda t, k: st[t]["streams"].get(k, 0) > 0
        missing = [k for k in kinds if have("perf", k) and not have("pws", k)]
        checks.append(("premise: pws-record records every sample stream perf record does", not missing,
                       "missing in pws-record: " + ", ".join(missing) + " — the comparison is then not like for like"
                       if missing else "timer, switch and tracepoint samples in both"))
    p2 = results.get("part2")
    if p2 is not None:
        s = p2.get("summary", {})
        checks.append((f"zero lost records at {params.get('loss_freq')} Hz on every CPU for {params.get('loss_seconds')} s",
                       p2.get("pass", False),
                       p2.get("error") or f"lost {s.get('lost_records')}, per CPU "
                       + ", ".join(f"cpu{c['cpu']}={c['lost_records']}" for c in s.get("per_cpu", []))
                       + f" (throttled {s.get('throttled')}: samples the kernel skipped, not lost records; see README)"))
    g = results.get("part3", {}).get("growth", {})
    if g:
        ok = g.get("pws") is not None and g["pws"] <= 1.5
        checks.append(("pws-record steady cost flat in the number of cgroups (≤ ×1.5 from fewest to most)", ok,
                       f"steady CPU per second pws-record ×{fmt(g.get('pws'), '.2f')}, perf stat -G ×{fmt(g.get('perfstat'), '.2f')} "
                       f"(whole run incl. start: pws-record ×{fmt(g.get('pws_total'), '.2f')}, perf stat -G ×{fmt(g.get('perfstat_total'), '.2f')})"))
    # Was the machine ours? Other perf users compete for the CPUs and, on this kind of
    # kernel, leak samples into our rings (perf.data then holds samples of unknown ids).
    overlapped, total, comms = [], 0, {}
    for root, _dirs, files in os.walk(d):
        if "run.json" in files:
            total += 1
            r = load(os.path.join(root, "run.json")) or {}
            o = r.get("other_perf_users") or {}
            if o:
                overlapped.append(os.path.relpath(root, d))
                for pid, (comm, _n) in o.items():
                    comms.setdefault(comm, set()).add(pid)
    foreign = {}
    for root, _dirs, files in os.walk(d):
        if "perfstats.json" in files:
            f = (load(os.path.join(root, "perfstats.json")) or {}).get("foreign_samples")
            if f:
                foreign[os.path.relpath(root, d)] = f
    results["interference"] = {"runs_overlapping_other_perf_users": overlapped, "runs": total,
                               "other_perf_users": {k: sorted(v) for k, v in comms.items()},
                               "perf_data_foreign_samples": foreign}
    if overlapped or foreign:
        lines.append("WARNING: the machine was not quiet")
        if overlapped:
            lines.append(f"  {len(overlapped)} of {total} measured runs overlapped with other processes holding perf events: "
                         + ", ".join(f"{c} (pids {', '.join(sorted(p)[:5])}{'…' if len(p) > 5 else ''})" for c, p in comms.items()))
            lines.append("  runs: " + ", ".join(sorted(overlapped)))
        if foreign:
            lines.append("  perf.data files holding samples with ids of events perf did not open: "
                         + ", ".join(f"{k}: {v}" for k, v in sorted(foreign.items())))
        lines.append("  their CPU and wall figures are inflated by the competition; rerun on a quiet machine")
        lines.append("")
    results["checks"] = [{"target": t, "pass": ok, "detail": det} for t, ok, det in checks]
    lines.append("Targets")
    for t, ok, det in checks:
        lines.append(f"  {verdict(ok)}  {t}: {det}")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(d, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(d, "results.txt"), "w") as f:
        f.write(text + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--log")
    r.add_argument("--stop-after", type=float)
    r.add_argument("--mark-after", type=float, default=1.0,
                   help="seconds after start at which the start phase ends")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    w = sub.add_parser("work")
    w.add_argument("--out", required=True)
    w.add_argument("--procs", type=int, required=True)
    g = w.add_mutually_exclusive_group(required=True)
    g.add_argument("--iters", type=int)
    g.add_argument("--seconds", type=float)
    s = sub.add_parser("perfstats")
    s.add_argument("--perf", required=True)
    s.add_argument("--data", required=True)
    st = sub.add_parser("streams")
    st.add_argument("--perf-data", required=True)
    st.add_argument("--pws-trace", required=True)
    st.add_argument("--repo", required=True)
    st.add_argument("--out", required=True)
    sl = sub.add_parser("switchload")
    sl.add_argument("--seconds", type=float, required=True)
    sl.add_argument("--rate", type=float, default=1000, help="hops per second, at most")
    rep = sub.add_parser("report")
    rep.add_argument("--dir", required=True)
    a = p.parse_args()
    {"run": cmd_run, "work": cmd_work, "perfstats": cmd_perfstats, "streams": cmd_streams,
     "switchload": cmd_switchload, "report": cmd_report}[a.what](a)


if __name__ == "__main__":
    main()
