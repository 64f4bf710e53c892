//! PowerAPI hwpc-sensor reports through the main command, `pws-analyze INPUT -o DIR`: the
//! powerapi fixtures (datasets/powerapi-hwpc: CSV directory and both JSON forms) and a
//! synthetic sensor output with targets, written as JSON lines and as CSV, read back from the
//! Parquet tables.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow_array::{Float64Array, StringArray, TimestampNanosecondArray, UInt64Array};
use common::{col, read};

/// hwpc-sensor's RAPL unit.
const UNIT: f64 = 1.0 / 4_294_967_296.0;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pws-analyze")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/powerapi-hwpc")
}

fn analyse(input: &Path, out: &Path) -> Output {
    Command::new(bin())
        .arg(input)
        .arg("-o")
        .arg(out)
        // `attribution_adds_up` compares it with `power` interval by interval.
        .args(["--quiet", "--attribution", "per-interval"])
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "pws-analyze failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `power`: joules per (domain, package), and the host of every row.
fn power(out: &Path) -> (BTreeMap<(String, u64), f64>, Vec<String>) {
    let mut j = BTreeMap::new();
    let mut hosts = Vec::new();
    for b in read(&out.join("power")) {
        let (d, p, e, h) = (
            col::<StringArray>(&b, "domain"),
            col::<UInt64Array>(&b, "package"),
            col::<Float64Array>(&b, "energy_j"),
            col::<StringArray>(&b, "host"),
        );
        for r in 0..b.num_rows() {
            *j.entry((d.value(r).to_owned(), p.value(r))).or_default() += e.value(r);
            hosts.push(h.value(r).to_owned());
        }
    }
    (j, hosts)
}

/// `usage` summed per cgroup: CPU time and the named counter columns.
fn usage(out: &Path, counters: &[&str]) -> BTreeMap<String, (u64, Vec<f64>)> {
    let mut m: BTreeMap<String, (u64, Vec<f64>)> = BTreeMap::new();
    for b in read(&out.join("usage")) {
        let (cg, ns) = (
            col::<StringArray>(&b, "cgroup"),
            col::<UInt64Array>(&b, "cpu_ns"),
        );
        let cs: Vec<&Float64Array> = counters.iter().map(|c| col(&b, c)).collect();
        for r in 0..b.num_rows() {
            let e = m
                .entry(cg.value(r).to_owned())
                .or_insert_with(|| (0, vec![0.0; counters.len()]));
            e.0 += ns.value(r);
            for (s, c) in e.1.iter_mut().zip(&cs) {
                *s += c.value(r);
            }
        }
    }
    m
}

/// Every (model, idle policy) attributes each interval's energy, unassigned row included,
/// within 0.5 %; returns the (model, policy) pairs and the idle joules each cgroup got.
/// (model, idle policy) pairs, and (idle policy, cgroup) → idle joules.
type Attributed = (Vec<(String, String)>, HashMap<(String, String), f64>);

fn attribution_adds_up(out: &Path) -> Attributed {
    type Key = (i64, String, u64);
    let mut measured: HashMap<Key, f64> = HashMap::new();
    for b in read(&out.join("power")) {
        let (t, d, p, e) = (
            col::<TimestampNanosecondArray>(&b, "interval_start"),
            col::<StringArray>(&b, "domain"),
            col::<UInt64Array>(&b, "package"),
            col::<Float64Array>(&b, "energy_j"),
        );
        for r in 0..b.num_rows() {
            measured.insert((t.value(r), d.value(r).to_owned(), p.value(r)), e.value(r));
        }
    }
    let mut sums: HashMap<(String, String), HashMap<Key, f64>> = HashMap::new();
    let mut idle: HashMap<(String, String), f64> = HashMap::new();
    for b in read(&out.join("attribution")) {
        let (t, d, p, m, pol, cg, e, i) = (
            col::<TimestampNanosecondArray>(&b, "interval_start"),
            col::<StringArray>(&b, "domain"),
            col::<UInt64Array>(&b, "package"),
            col::<StringArray>(&b, "model"),
            col::<StringArray>(&b, "idle_policy"),
            col::<StringArray>(&b, "cgroup"),
            col::<Float64Array>(&b, "energy_j"),
            col::<Float64Array>(&b, "idle_j"),
        );
        for r in 0..b.num_rows() {
            let k = (m.value(r).to_owned(), pol.value(r).to_owned());
            *sums
                .entry(k)
                .or_default()
                .entry((t.value(r), d.value(r).to_owned(), p.value(r)))
                .or_default() += e.value(r);
            *idle
                .entry((pol.value(r).to_owned(), cg.value(r).to_owned()))
                .or_default() += i.value(r);
        }
    }
    assert!(!measured.is_empty());
    for (mp, per) in &sums {
        assert_eq!(per.len(), measured.len(), "{mp:?}: intervals attributed");
        for (k, e) in &measured {
            let got = per.get(k).copied().unwrap_or(0.0);
            assert!(
                (got - e).abs() <= 0.005 * e.abs() + 1e-9,
                "{mp:?} {k:?}: attributed {got} J of {e} J"
            );
        }
    }
    let mut pairs: Vec<_> = sums.into_keys().collect();
    pairs.sort();
    (pairs, idle)
}

/// RAPL deltas of a CSV file, in joules per (domain, socket).
fn csv_rapl(path: &Path) -> BTreeMap<(String, u64), f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut j = BTreeMap::new();
    for l in lines {
        let v: Vec<&str> = l.split(',').collect();
        for (i, h) in head.iter().enumerate() {
            let domain = match *h {
                "RAPL_ENERGY_PKG" => "package",
                "RAPL_ENERGY_DRAM" => "dram",
                _ => continue,
            };
            let socket: u64 = v[3].parse().unwrap();
            *j.entry((domain.to_owned(), socket)).or_default() +=
                v[i].parse::<f64>().unwrap() * UNIT;
        }
    }
    j
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-12)
}

#[test]
fn csv_fixture_directory() {
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("grvingt");
    std::fs::create_dir(&input).unwrap();
    for (from, to) in [
        ("rapl2.csv", "rapl.csv"),
        ("core2.csv", "core.csv"),
        ("pcu2.csv", "pcu.csv"),
    ] {
        std::fs::copy(fixtures().join(from), input.join(to)).unwrap();
    }
    let out = d.path().join("out");
    let o = analyse(&input, &out);
    ok(&o);
    let (got, hosts) = power(&out);
    let want = csv_rapl(&fixtures().join("rapl2.csv"));
    assert_eq!(got.len(), 4, "{got:?}");
    for (k, w) in &want {
        assert!(close(got[k], *w, 1e-9), "{k:?}: {} J vs {w} J", got[k]);
    }
    assert!(hosts.iter().all(|h| h == "grvingt-12"), "{hosts:?}");
    // The 2018 sensor's machine-wide target is `system`: no cgroup target, so everything its
    // core counters saw is outside the targets; its events get pws-record's names.
    let u = usage(&out, &["instructions", "cycles", "cache-misses"]);
    assert_eq!(u.keys().collect::<Vec<_>>(), ["<outside targets>"]);
    let core = std::fs::read_to_string(fixtures().join("core2.csv")).unwrap();
    let instructions: f64 = core
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(7).unwrap().parse::<f64>().unwrap())
        .sum();
    assert!(close(u["<outside targets>"].1[0], instructions, 1e-9));
    attribution_adds_up(&out);
}

#[test]
fn json_fixtures_document_form() {
    for (name, sockets) in [("hwpc.json", 1), ("hwpc_rapl_2_socket.json", 2)] {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        let o = analyse(&fixtures().join(name), &out);
        ok(&o);
        // The sum of the reports' RAPL deltas (timestamps out of order in the second file).
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap();
        let mut want: BTreeMap<(String, u64), f64> = BTreeMap::new();
        let mut sensor = String::new();
        for r in doc["reports"].as_array().unwrap() {
            sensor = r["sensor"].as_str().unwrap().to_owned();
            for (socket, cpus) in r["groups"]["rapl"].as_object().unwrap() {
                let first = cpus.as_object().unwrap().values().next().unwrap();
                let j = first["RAPL_ENERGY_PKG"].as_f64().unwrap() * UNIT;
                *want
                    .entry(("package".to_owned(), socket.parse().unwrap()))
                    .or_default() += j;
            }
        }
        let (got, hosts) = power(&out);
        assert_eq!(got.len(), sockets, "{name}: {got:?}");
        for (k, w) in &want {
            assert!(close(got[k], *w, 1e-9), "{name} {k:?}: {} vs {w}", got[k]);
        }
        assert!(hosts.iter().all(|h| *h == sensor));
        attribution_adds_up(&out);
    }
    // hwpc.json's `all` target reads MPERF and TSC: every CPU's time is busy (outside the
    // targets, there are none) or idle, and adds up to the 8 CPUs × the reports' span.
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    ok(&analyse(&fixtures().join("hwpc.json"), &out));
    let u = usage(&out, &[]);
    let busy = u["<outside targets>"].0 as f64;
    let idle = u["<idle>"].0 as f64;
    let mut span = (i64::MAX, i64::MIN);
    for b in read(&out.join("usage")) {
        let (s, e) = (
            col::<TimestampNanosecondArray>(&b, "interval_start"),
            col::<TimestampNanosecondArray>(&b, "interval_end"),
        );
        for r in 0..b.num_rows() {
            span = (span.0.min(s.value(r)), span.1.max(e.value(r)));
        }
    }
    let total = 8.0 * (span.1 - span.0) as f64;
    assert!(
        close(busy + idle, total, 1e-6),
        "{busy} + {idle} vs {total}"
    );
    assert!(busy > 0.005 * total && busy < 0.2 * total, "busy {busy}");
}

/// A sensor with the `all` target (rapl, msr, core) and two container targets over `ticks`
/// one-second ticks on 4 CPUs of one socket; energy is 20 W + 4 nJ per instruction. `db` is
/// multiplexed half the time on CPU 3 (its counts there are half what ran).
struct Synthetic {
    rows: Vec<Row>,
    /// Per target: CPU ns and instructions that ran.
    truth: BTreeMap<&'static str, (u64, f64)>,
    rapl_j: f64,
}

/// One CPU of one group in one report.
struct Row {
    ts: i64,
    target: &'static str,
    group: &'static str,
    cpu: u32,
    events: Vec<(&'static str, u64)>,
    enabled: u64,
    running: u64,
}

impl Row {
    /// A row of the machine-wide target, never multiplexed.
    fn all(
        ts: i64,
        group: &'static str,
        cpu: u32,
        events: Vec<(&'static str, u64)>,
        enabled: u64,
    ) -> Self {
        Row {
            ts,
            target: "all",
            group,
            cpu,
            events,
            enabled,
            running: enabled,
        }
    }
}

fn synthetic(ticks: usize) -> Synthetic {
    synthetic_every(ticks, 1000)
}

/// The same with reports `period_ms` apart: CPU time, cycles and idle energy scale with it.
fn synthetic_every(ticks: usize, period_ms: u64) -> Synthetic {
    let scale = period_ms as f64 / 1000.0;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let t0 = 1_700_000_000_000i64;
    let mut rows = Vec::new();
    let mut truth: BTreeMap<&'static str, (u64, f64)> = BTreeMap::new();
    let mut enabled: HashMap<(&str, u32), (u64, u64)> = HashMap::new();
    let mut rapl_j = 0.0;
    for k in 0..ticks {
        let ts = t0 + period_ms as i64 * k as i64;
        let mut all_instr = 0u64;
        let mut per_cpu_instr = [0u64; 4];
        for cpu in 0..4u32 {
            let mut used = 0u64;
            for (target, per_ns) in [("web", 2.0), ("db", 1.0)] {
                // `db` appears at the third tick.
                if target == "db" && k < 2 {
                    continue;
                }
                let ns = (rand() * 0.4e9 * scale) as u64;
                used += ns;
                let instr = (ns as f64 * per_ns) as u64;
                let t = truth.entry(target).or_default();
                t.0 += ns;
                t.1 += instr as f64;
                per_cpu_instr[cpu as usize] += instr;
                let e = enabled.entry((target, cpu)).or_default();
                let multiplexed = target == "db" && cpu == 3;
                let run = if multiplexed { ns / 2 } else { ns };
                e.0 += ns;
                e.1 += run;
                let counted = if multiplexed {
                    instr * run / ns.max(1)
                } else {
                    instr
                };
                rows.push(Row {
                    ts,
                    target,
                    group: "core",
                    cpu,
                    events: vec![("INSTRUCTIONS_RETIRED", counted), ("LLC_MISSES", ns / 1000)],
                    enabled: e.0,
                    running: e.1,
                });
            }
            // Some activity outside the targets.
            let other = (rand() * 0.1e9 * scale) as u64;
            let busy = used + other;
            per_cpu_instr[cpu as usize] += other / 2;
            all_instr += per_cpu_instr[cpu as usize];
            let tsc = (2e9 * scale) as u64;
            let en = period_ms * 1_000_000 * (k as u64 + 1);
            rows.push(Row::all(
                ts,
                "msr",
                cpu,
                vec![("APERF", busy * 2), ("MPERF", busy * 2), ("TSC", tsc)],
                en,
            ));
            rows.push(Row::all(
                ts,
                "core",
                cpu,
                vec![
                    ("INSTRUCTIONS_RETIRED", per_cpu_instr[cpu as usize]),
                    ("LLC_MISSES", busy / 1000),
                ],
                en,
            ));
        }
        let j = 20.0 * scale + 4e-9 * all_instr as f64;
        let raw = (j / UNIT).round() as u64;
        rapl_j += raw as f64 * UNIT;
        let en = period_ms * 1_000_000 * (k as u64 + 1);
        rows.push(Row::all(ts, "rapl", 0, vec![("RAPL_ENERGY_PKG", raw)], en));
    }
    Synthetic {
        rows,
        truth,
        rapl_j,
    }
}

impl Synthetic {
    /// One report per line, as hwpc-sensor's socket output sends them.
    fn json_lines(&self) -> String {
        let mut reports: BTreeMap<(i64, &str), serde_json::Value> = BTreeMap::new();
        for row in &self.rows {
            let r = reports.entry((row.ts, row.target)).or_insert_with(|| {
                serde_json::json!({"timestamp": row.ts, "sensor": "node-7", "target": row.target, "groups": {}})
            });
            let mut ev = serde_json::Map::new();
            for (n, v) in &row.events {
                ev.insert((*n).to_owned(), (*v).into());
            }
            ev.insert("time_enabled".into(), row.enabled.into());
            ev.insert("time_running".into(), row.running.into());
            r["groups"][row.group]["0"][row.cpu.to_string()] = serde_json::Value::Object(ev);
        }
        let mut s = String::new();
        for r in reports.values() {
            writeln!(s, "{r}").unwrap();
        }
        s
    }

    /// The CSV output: one file per group.
    fn csv_dir(&self, dir: &Path) {
        let mut files: BTreeMap<&str, String> = BTreeMap::new();
        for row in &self.rows {
            let Row {
                ts, target, cpu, ..
            } = row;
            let (en, run) = (row.enabled, row.running);
            let f = files.entry(row.group).or_insert_with(|| {
                let names: Vec<&str> = row.events.iter().map(|(n, _)| *n).collect();
                format!(
                    "timestamp,sensor,target,socket,cpu,{},time_enabled,time_running\n",
                    names.join(",")
                )
            });
            let values: Vec<String> = row.events.iter().map(|(_, v)| v.to_string()).collect();
            writeln!(
                f,
                "{ts},node-7,{target},0,{cpu},{},{en},{run}",
                values.join(",")
            )
            .unwrap();
        }
        std::fs::create_dir_all(dir).unwrap();
        for (g, text) in files {
            std::fs::write(dir.join(format!("{g}.csv")), text).unwrap();
        }
    }
}

#[test]
fn targets_become_cgroups_in_usage_and_attribution() {
    let s = synthetic(40);
    let d = tempfile::tempdir().unwrap();
    let json = d.path().join("node-7.json");
    std::fs::write(&json, s.json_lines()).unwrap();
    let csv = d.path().join("node-7-csv");
    s.csv_dir(&csv);
    let mut usages = Vec::new();
    for input in [&json, &csv] {
        let out = d.path().join(format!(
            "out-{}",
            input.file_name().unwrap().to_string_lossy()
        ));
        let o = analyse(input, &out);
        ok(&o);
        let (got, hosts) = power(&out);
        assert!(hosts.iter().all(|h| h == "node-7"));
        assert!(
            close(got[&("package".to_owned(), 0)], s.rapl_j, 1e-9),
            "{got:?} vs {}",
            s.rapl_j
        );
        // One cgroup per target, with its CPU time (time_enabled's increase) and counters
        // (multiplexing undone); what `all` saw beyond them is outside the targets.
        let u = usage(&out, &["instructions", "cache-misses"]);
        assert_eq!(
            u.keys().collect::<Vec<_>>(),
            ["<idle>", "<outside targets>", "db", "web"],
            "{input:?}"
        );
        for (target, (ns, instr)) in &s.truth {
            let (got_ns, got_c) = &u[*target];
            assert_eq!(got_ns, ns, "{target}: CPU time");
            assert!(
                close(got_c[0], *instr, 2e-3),
                "{target}: {} instructions vs {instr}",
                got_c[0]
            );
        }
        // 4 CPUs × 40 ticks of 1 s, every nanosecond somewhere.
        let all_ns: u64 = u.values().map(|x| x.0).sum();
        assert!(
            all_ns.abs_diff(160_000_000_000) < 1000,
            "{all_ns} ns of CPU time"
        );
        let (pairs, idle) = attribution_adds_up(&out);
        let models: Vec<&str> = {
            let mut m: Vec<&str> = pairs.iter().map(|(m, _)| m.as_str()).collect();
            m.dedup();
            m
        };
        assert_eq!(
            models,
            [
                "counter-ratio",
                "cpu-share",
                "linear-offline",
                "local-linear",
                "per-function",
                "smartwatts"
            ]
        );
        assert_eq!(pairs.len(), 6 * 5, "{pairs:?}");
        // Targets are live containers: by-lifetime gives them static power.
        for t in ["web", "db"] {
            let j = idle[&("by-lifetime".to_owned(), t.to_owned())];
            assert!(j > 0.0, "{t}: {j}");
        }
        let mut containers = Vec::new();
        for b in read(&out.join("containers")) {
            let c = col::<StringArray>(&b, "container_id");
            containers.extend((0..b.num_rows()).map(|r| c.value(r).to_owned()));
        }
        containers.sort();
        assert_eq!(containers, ["db", "web"]);
        // The counters reach the models under pws-record's names: counter-ratio splits by
        // instructions and finds the energy's 20 W + 4 nJ per instruction.
        let mut params = HashMap::new();
        for b in read(&out.join("models")) {
            let (m, p, v) = (
                col::<StringArray>(&b, "model"),
                col::<StringArray>(&b, "param"),
                col::<Float64Array>(&b, "value"),
            );
            for r in 0..b.num_rows() {
                params.insert((m.value(r).to_owned(), p.value(r).to_owned()), v.value(r));
            }
        }
        let p = |m: &str, k: &str| params[&(m.to_owned(), k.to_owned())];
        assert!(close(p("counter-ratio", "idle_w"), 20.0, 1e-3));
        assert!(close(
            p("counter-ratio", "w_per_instructions_per_s"),
            4e-9,
            1e-3
        ));
        usages.push(u);
    }
    // Both forms of the same reports give the same usage.
    assert_eq!(
        usages[0].keys().collect::<Vec<_>>(),
        usages[1].keys().collect::<Vec<_>>()
    );
    for (k, a) in &usages[0] {
        let b = &usages[1][k];
        assert_eq!(a.0, b.0, "{k}");
        assert!(
            a.1.iter().zip(&b.1).all(|(x, y)| close(*x, *y, 1e-9)),
            "{k}"
        );
    }
}

#[test]
fn a_malformed_report_names_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    let s = synthetic(3);
    // JSON lines: the fourth report carries a counter that is not a number.
    let mut lines: Vec<String> = s.json_lines().lines().map(str::to_owned).collect();
    lines[3] = lines[3].replacen("\"LLC_MISSES\":", "\"LLC_MISSES\":\"many\",\"x\":", 1);
    let json = d.path().join("bad.json");
    std::fs::write(&json, lines.join("\n")).unwrap();
    let o = analyse(&json, &d.path().join("o1"));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("bad.json: report 4 (line 4)") && e.contains("LLC_MISSES"),
        "{e}"
    );
    // CSV: a value that is not an integer on the third line of core.csv.
    let csv = d.path().join("bad-csv");
    s.csv_dir(&csv);
    let core = csv.join("core.csv");
    let mut text: Vec<String> = std::fs::read_to_string(&core)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    text[2] = text[2].replacen(",0,", ",0,12x", 1);
    std::fs::write(&core, text.join("\n") + "\n").unwrap();
    let o = analyse(&csv, &d.path().join("o2"));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("core.csv:3") && e.contains("12x"), "{e}");
    // Reports of two machines in one input are refused, naming both.
    let two = d.path().join("two.json");
    let text = s.json_lines();
    let first = text.lines().next().unwrap().replace("node-7", "node-8");
    std::fs::write(&two, format!("{text}{first}\n")).unwrap();
    let o = analyse(&two, &d.path().join("o3"));
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("node-7") && e.contains("node-8"), "{e}");
}

/// smartwatts' mean absolute error in the summary of `pws-analyze INPUT -o OUT [extra]`, and
/// its parameters in `models`.
fn main_smartwatts(
    input: &Path,
    out: &Path,
    extra: &[&str],
) -> (Option<f64>, HashMap<String, f64>, String) {
    let summary = out.with_extension("summary.json");
    let o = Command::new(bin())
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--summary-json")
        .arg(&summary)
        .args(extra)
        .output()
        .unwrap();
    ok(&o);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let mae = v[0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "smartwatts")
        .map(|m| m["mae_w"].as_f64().unwrap());
    let mut params = HashMap::new();
    for b in read(&out.join("models")) {
        let (m, p, x) = (
            col::<StringArray>(&b, "model"),
            col::<StringArray>(&b, "param"),
            col::<Float64Array>(&b, "value"),
        );
        for r in 0..b.num_rows() {
            if m.value(r) == "smartwatts" {
                params.insert(p.value(r).to_owned(), x.value(r));
            }
        }
    }
    (mae, params, String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Reports 3 s apart: the main command runs SmartWatts at the reports' own period (not 1 s,
/// which made it count 3 s of energy as 1 s), so its error is the subcommand's at
/// `--sensor-reports-frequency 3000`.
#[test]
fn smartwatts_runs_at_the_reports_own_period() {
    let s = synthetic_every(150, 3000);
    let d = tempfile::tempdir().unwrap();
    let csv = d.path().join("node-7");
    s.csv_dir(&csv);

    // The subcommand: |global − rapl| over the ticks it estimated.
    let est = d.path().join("est.csv");
    let o = Command::new(bin())
        .args([
            "smartwatts",
            "--sensor-reports-frequency",
            "3000",
            "--flush",
            "-o",
        ])
        .arg(&est)
        .arg(&csv)
        .output()
        .unwrap();
    ok(&o);
    let mut by_ts: BTreeMap<String, (Option<f64>, Option<f64>)> = BTreeMap::new();
    for l in std::fs::read_to_string(&est).unwrap().lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        let e = by_ts.entry(f[0].to_owned()).or_default();
        match f[2] {
            "rapl" => e.0 = Some(f[5].parse().unwrap()),
            "global" => e.1 = Some(f[5].parse().unwrap()),
            _ => {}
        }
    }
    let errs: Vec<f64> = by_ts
        .values()
        .filter_map(|(r, g)| Some((r.as_ref()? - g.as_ref()?).abs()))
        .collect();
    assert!(errs.len() > 100, "{} ticks estimated", errs.len());
    let sub = errs.iter().sum::<f64>() / errs.len() as f64;

    let (main, params, _) = main_smartwatts(&csv, &d.path().join("out"), &[]);
    let main = main.expect("smartwatts in the summary");
    assert_eq!(params["sensor_reports_frequency_ms"], 3000.0);
    // Its ticks are the reports': as many estimated as the subcommand's.
    assert_eq!(params["ticks_estimated"], errs.len() as f64);
    eprintln!("smartwatts MAE: main command {main:.3} W, subcommand {sub:.3} W");
    // Not equal: the main command's targets include `<outside targets>` (what `all` counted
    // beyond the targets), which the subcommand leaves out, and CPU time is one more feature.
    assert!(
        (main - sub).abs() <= 0.3 * sub,
        "main command {main} W vs subcommand {sub} W"
    );

    // Given explicitly, the period is the user's: 1 s counts 3 s of energy as 1 s.
    let (wrong, params, _) = main_smartwatts(
        &csv,
        &d.path().join("out-1s"),
        &["--sensor-reports-frequency", "1000"],
    );
    assert_eq!(params["sensor_reports_frequency_ms"], 1000.0);
    assert!(wrong.unwrap() > 10.0 * main.max(1.0), "{wrong:?} vs {main}");
}

/// Every SmartWatts option of `pws-analyze smartwatts` is taken by the main command under the
/// same name, and reaches the model.
#[test]
fn smartwatts_options_on_the_main_command() {
    let s = synthetic(80);
    let d = tempfile::tempdir().unwrap();
    let json = d.path().join("node-7.json");
    std::fs::write(&json, s.json_lines()).unwrap();
    let (mae, params, _) = main_smartwatts(
        &json,
        &d.path().join("out"),
        &[
            "--cpu-tdp",
            "150",
            "--cpu-base-clock",
            "100",
            "--cpu-base-freq",
            "2000",
            "--cpu-error-threshold",
            "1.0",
            "--dram-error-threshold",
            "0.3",
            "--cpu-rapl-ref-event",
            "RAPL_ENERGY_PKG",
            "--dram-rapl-ref-event",
            "RAPL_ENERGY_DRAM",
            "--disable-dram-formula",
            "--sensor-reports-frequency",
            "1000",
            "--learn-min-samples-required",
            "5",
            "--learn-history-window-size",
            "30",
            "--learn-error-window-size",
            "20",
            "--learn-error-window-method",
            "mean",
        ],
    );
    assert!(mae.is_some());
    assert_eq!(params["cpu_tdp"], 150.0);
    // 5 samples before the first model instead of 10: 75 of 80 ticks estimated (5 after the
    // first 5 … the last 5 flushed), where the defaults estimate 70.
    let (_, defaults, _) = main_smartwatts(&json, &d.path().join("out-default"), &[]);
    assert_eq!(
        params["ticks_estimated"] - defaults["ticks_estimated"],
        5.0,
        "{params:?} vs {defaults:?}"
    );
    // The package's formula off: SmartWatts has nothing to say on it, and says so.
    let (mae, params, text) =
        main_smartwatts(&json, &d.path().join("out-off"), &["--disable-cpu-formula"]);
    assert!(mae.is_none() && params.is_empty(), "{params:?}");
    assert!(text.contains("--disable-cpu-formula"), "{text}");
    // A bad value is refused by name.
    let o = Command::new(bin())
        .arg(&json)
        .arg("-o")
        .arg(d.path().join("bad"))
        .args(["--learn-error-window-method", "mode"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("learn-error-window-method"));
}
