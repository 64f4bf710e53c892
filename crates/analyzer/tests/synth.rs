//! The models against a known ground truth: `pws-analyze synth` writes a trace whose energy is
//! an exact function of CPU time and instructions, with functions that differ in power per
//! CPU-second; analysing it must let `linear-offline` recover every activation's dynamic
//! energy within 2 %, show `cpu-share` off, and keep every (model, policy)'s attribution equal
//! to the measured total.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::{col, read};

use arrow_array::{Array, Float64Array, StringArray};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pws-analyze")
}

#[test]
fn models_against_a_known_truth() {
    let d = tempfile::tempdir().unwrap();
    let (out, truth, text) = common::synth_analysed(d.path(), &["--seconds", "20"], &[]);
    assert!(
        text.contains("SIMULATED"),
        "synthetic energy is labelled: {text}"
    );

    // The truth, from the trace's metadata.
    let truth = truth["activation_dynamic_j"].as_object().unwrap();

    // Per activation, per model (idle policy does not change the dynamic part).
    let mut got: HashMap<(String, String), f64> = HashMap::new();
    let mut by_action: HashMap<(String, String), (f64, f64)> = HashMap::new();
    for b in read(&out.join("activation_energy")) {
        let (ids, models, pols, acts) = (
            col::<StringArray>(&b, "activation_id"),
            col::<StringArray>(&b, "model"),
            col::<StringArray>(&b, "idle_policy"),
            col::<StringArray>(&b, "action"),
        );
        let dj = col::<Float64Array>(&b, "dynamic_j");
        for r in 0..b.num_rows() {
            if pols.value(r) != "unassigned" {
                continue;
            }
            let id = ids.value(r).to_owned();
            got.insert((models.value(r).to_owned(), id.clone()), dj.value(r));
            let t = truth[&id].as_f64().unwrap();
            let e = by_action
                .entry((models.value(r).to_owned(), acts.value(r).to_owned()))
                .or_default();
            e.0 += dj.value(r);
            e.1 += t;
        }
    }
    assert!(truth.len() > 300, "{} activations", truth.len());
    let mut worst = 0f64;
    for (id, t) in truth {
        let t = t.as_f64().unwrap();
        let g = got[&("linear-offline".to_owned(), id.clone())];
        worst = worst.max((g - t).abs() / t);
        let tr = got[&("truth".to_owned(), id.clone())];
        assert!(
            (tr - t).abs() / t < 0.02,
            "the truth model itself: {tr} vs {t}"
        );
    }
    assert!(
        worst < 0.02,
        "linear-offline: worst activation error {:.2} %",
        worst * 100.0
    );
    // A CPU-time share gets the functions' different power per CPU-second wrong.
    let off = by_action
        .iter()
        .filter(|((m, _), _)| m == "cpu-share")
        .map(|(_, (g, t))| (g - t).abs() / t)
        .fold(0f64, f64::max);
    assert!(
        off > 0.05,
        "cpu-share should be visibly off, is within {:.2} %",
        off * 100.0
    );
    eprintln!(
        "linear-offline: worst activation {:.1e} % off the truth; cpu-share: a function's energy up to {:.1} % off",
        worst * 100.0,
        off * 100.0
    );

    // The synthetic trace's context-switches never count: linear-offline drops that constant
    // feature, says so, and records it in `models` (null value); every fold's fit succeeded.
    assert!(
        text.contains("linear-offline: context-switches dropped: constant"),
        "{text}"
    );
    let mut dropped = Vec::new();
    for b in read(&out.join("models")) {
        let (m, p, v) = (
            col::<StringArray>(&b, "model"),
            col::<StringArray>(&b, "param"),
            col::<Float64Array>(&b, "value"),
        );
        for r in 0..b.num_rows() {
            if m.value(r) == "linear-offline" && p.value(r).starts_with("dropped:") {
                dropped.push((p.value(r).to_owned(), v.is_null(r)));
            }
        }
    }
    assert_eq!(dropped, [("dropped:context-switches".to_owned(), true)]);
    let mut folds = 0;
    for b in read(&out.join("model_eval")) {
        let e = col::<StringArray>(&b, "fit_error");
        assert_eq!(e.null_count(), b.num_rows(), "no fit failed");
        let p = col::<StringArray>(&b, "protocol");
        assert!(
            p.iter().all(|v| v == Some("blocked-5-fold-gap-1s")),
            "one protocol for every model"
        );
        folds += b.num_rows();
    }
    assert!(folds >= 5 * 4, "{folds} fold rows");

    // Every (model, policy): attributed energy (with the unassigned rows) = the energy in power.
    let total: f64 = read(&out.join("power"))
        .iter()
        .map(|b| {
            col::<Float64Array>(b, "energy_j")
                .iter()
                .flatten()
                .sum::<f64>()
        })
        .sum();
    let mut sums: HashMap<(String, String), f64> = HashMap::new();
    for b in read(&out.join("attribution")) {
        let (m, p, e) = (
            col::<StringArray>(&b, "model"),
            col::<StringArray>(&b, "idle_policy"),
            col::<Float64Array>(&b, "energy_j"),
        );
        for r in 0..b.num_rows() {
            *sums
                .entry((m.value(r).to_owned(), p.value(r).to_owned()))
                .or_default() += e.value(r);
        }
    }
    assert_eq!(
        sums.len(),
        7 * 5,
        "7 models (smartwatts and truth included) × 5 policies: {:?}",
        sums.keys()
    );
    for ((m, p), s) in &sums {
        assert!(
            (s - total).abs() < 0.005 * total,
            "{m}/{p}: {s} J vs {total} J"
        );
    }
}

/// Two inputs of the same run and host (two synthetic traces are both run "synth" on host
/// "synth") land in one partition side by side, neither overwriting the other, with a warning.
#[test]
fn two_traces_of_one_run_and_host_keep_all_their_rows() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, out) = (
        d.path().join("a.pws"),
        d.path().join("b.pws"),
        d.path().join("out"),
    );
    for (p, seed) in [(&a, "1"), (&b, "2")] {
        let st = Command::new(bin())
            .args(["synth", "--seconds", "3", "--seed", seed, "-o"])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let o = Command::new(bin())
        .args(["-q"])
        .arg(&a)
        .arg(&b)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("share one partition"),
        "warned"
    );
    let rows: usize = read(&out.join("activations"))
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let mut expected = 0;
    for p in [&a, &b] {
        let info = Command::new(bin())
            .args(["info", "--json"])
            .arg(p)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        let t: serde_json::Value =
            serde_json::from_str(v["trace_info"]["metadata"]["pws.truth"].as_str().unwrap())
                .unwrap();
        expected += t["activation_dynamic_j"].as_object().unwrap().len();
    }
    assert_eq!(rows, expected, "every activation of both traces");
}

/// `model_eval` rows of a model: (fold, intervals, mae_w).
fn model_eval(out: &std::path::Path, model: &str) -> Vec<(u64, u64, Option<f64>)> {
    let mut rows = Vec::new();
    for b in read(&out.join("model_eval")) {
        let (m, f, n, e) = (
            col::<StringArray>(&b, "model"),
            col::<arrow_array::UInt64Array>(&b, "fold"),
            col::<arrow_array::UInt64Array>(&b, "intervals"),
            col::<Float64Array>(&b, "mae_w"),
        );
        for r in 0..b.num_rows() {
            if m.value(r) == model {
                rows.push((f.value(r), n.value(r), e.is_valid(r).then(|| e.value(r))));
            }
        }
    }
    rows.sort_by_key(|r| r.0);
    rows
}

/// SmartWatts is scored at its own 1 s ticks, not on the 10 ms intervals inside them:
/// `intervals` counts ticks (a 30 s trace has 30, the first 10 spent learning), and its error
/// is that of its tick estimates against each tick's mean power.
#[test]
fn smartwatts_is_scored_at_its_ticks() {
    let d = tempfile::tempdir().unwrap();
    let (out, _, _) =
        common::synth_analysed(d.path(), &["--seconds", "30"], &["--interval", "300ms"]);
    let sw = model_eval(&out, "smartwatts");
    let ticks: u64 = sw.iter().map(|r| r.1).sum();
    assert!((15..=30).contains(&ticks), "{sw:?}");
    let linear = model_eval(&out, "linear-offline");
    assert_eq!(
        linear.iter().map(|r| r.1).sum::<u64>(),
        100,
        "300 ms intervals"
    );
}

/// A trace too short for SmartWatts to learn anything: it is left out of the comparison
/// (no `model_eval` rows, no column or share of the spread in `activation_comparison`) and
/// the summary says why.
#[test]
fn smartwatts_that_learnt_nothing_is_left_out() {
    let d = tempfile::tempdir().unwrap();
    let (out, _, text) = common::synth_analysed(d.path(), &["--seconds", "8"], &[]);
    assert!(model_eval(&out, "smartwatts").is_empty());
    assert!(!model_eval(&out, "linear-offline").is_empty());
    assert!(
        text.contains("smartwatts estimated nothing") && text.contains("left out"),
        "{text}"
    );
    let b = read(&out.join("activation_comparison"));
    assert!(!b.is_empty());
    assert!(b[0].column_by_name("smartwatts_j").is_none());
    assert!(b[0].column_by_name("linear-offline_j").is_some());
    let models: std::collections::HashSet<String> = read(&out.join("activation_energy"))
        .iter()
        .flat_map(|b| {
            let m = col::<StringArray>(b, "model");
            (0..b.num_rows())
                .map(|r| m.value(r).to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!models.contains("smartwatts"), "{models:?}");
}

/// `--attribution`: `per-second` rows are the `per-interval` rows summed over whole intervals
/// of about a second (per cgroup, domain, model and idle policy), and `none` writes no
/// attribution table while every other table stays the same.
#[test]
fn attribution_grains_sum_alike_and_change_no_other_table() {
    use common::{rows, Row};
    use std::collections::BTreeMap;
    let d = tempfile::tempdir().unwrap();
    let trace = d.path().join("t.pws");
    let st = Command::new(bin())
        .args(["synth", "--seconds", "8", "--cpus", "2", "-o"])
        .arg(&trace)
        .status()
        .unwrap();
    assert!(st.success());
    let analyse = |grain: &str| {
        let out = d.path().join(grain);
        let o = Command::new(bin())
            .arg(&trace)
            .args(["-q", "--attribution", grain, "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        out
    };
    let (fine, coarse, none) = (
        analyse("per-interval"),
        analyse("per-second"),
        analyse("none"),
    );
    type Key = (String, String, String, u64, String);
    let key = |r: &Row| -> Key {
        (
            r.str("model").into(),
            r.str("idle_policy").into(),
            r.str("domain").into(),
            r.num("package").unwrap() as u64,
            r.str("cgroup").into(),
        )
    };
    let fine_rows = rows(&fine.join("attribution"));
    let coarse_rows = rows(&coarse.join("attribution"));
    assert!(
        coarse_rows.len() * 5 < fine_rows.len(),
        "{} rows per second vs {} per interval",
        coarse_rows.len(),
        fine_rows.len()
    );
    // Each per-second row: the per-interval rows of its key that start in its span.
    let mut by_key: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in &fine_rows {
        by_key.entry(key(r)).or_default().push(r);
    }
    let mut covered = 0;
    for c in &coarse_rows {
        let (a, b) = (c.t["interval_start"], c.t["interval_end"]);
        assert!(b - a <= 1_500_000_000, "a bucket of {} ns", b - a);
        let parts: Vec<&&Row> = by_key[&key(c)]
            .iter()
            .filter(|r| r.t["interval_start"] >= a && r.t["interval_start"] < b)
            .collect();
        assert!(!parts.is_empty(), "{c:?}");
        assert!(parts.iter().all(|r| r.t["interval_end"] <= b));
        covered += parts.len();
        for col in ["energy_j", "dynamic_j", "idle_j"] {
            let want: f64 = parts.iter().map(|r| r.num(col).unwrap()).sum();
            let got = c.num(col).unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{col} of {:?} in [{a}, {b}): {got} vs {want}",
                key(c)
            );
        }
        let secs = (b - a) as f64 / 1e9;
        assert!((c.num("power_w").unwrap() * secs - c.num("energy_j").unwrap()).abs() < 1e-9);
        // `estimated` is the bucket's: any of its intervals, whoever had rows there.
        assert!(c.flag("estimated") || !parts.iter().any(|r| r.flag("estimated")));
    }
    // Nothing left out: the per-interval rows no per-second row holds are 0 J (a container
    // given a share of an interval whose idle energy was 0).
    let mut coarse_spans: BTreeMap<Key, Vec<(i64, i64)>> = BTreeMap::new();
    for c in &coarse_rows {
        coarse_spans
            .entry(key(c))
            .or_default()
            .push((c.t["interval_start"], c.t["interval_end"]));
    }
    coarse_spans.values_mut().for_each(|v| v.sort_unstable());
    let left: Vec<&Row> = fine_rows
        .iter()
        .filter(|r| {
            let t = r.t["interval_start"];
            let spans = coarse_spans.get(&key(r)).map_or(&[][..], Vec::as_slice);
            let k = spans.partition_point(|s| s.1 <= t);
            spans.get(k).is_none_or(|s| s.0 > t)
        })
        .collect();
    assert!(
        left.iter().all(|r| r.num("energy_j") == Some(0.0)),
        "{left:?}"
    );
    assert_eq!(
        covered + left.len(),
        fine_rows.len(),
        "every per-interval row summed once"
    );

    assert!(!none.join("attribution").exists());
    // Every other table, row for row.
    let sorted = |dir: &std::path::Path| {
        let mut v: Vec<String> = rows(dir)
            .iter()
            .map(|r| {
                format!(
                    "{:?}",
                    (
                        r.s.iter().collect::<BTreeMap<_, _>>(),
                        r.f.iter()
                            .map(|(k, x)| (k, x.to_bits()))
                            .collect::<BTreeMap<_, _>>(),
                        r.b.iter().collect::<BTreeMap<_, _>>(),
                        r.t.iter().collect::<BTreeMap<_, _>>(),
                    )
                )
            })
            .collect();
        v.sort();
        v
    };
    for table in [
        "activation_energy",
        "functions",
        "activation_comparison",
        "models",
        "power",
    ] {
        let want = sorted(&fine.join(table));
        assert!(!want.is_empty(), "{table}");
        assert_eq!(sorted(&none.join(table)), want, "{table} under none");
        assert_eq!(
            sorted(&coarse.join(table)),
            want,
            "{table} under per-second"
        );
    }
}

/// An activation's energy under one idle policy, and its interval, do not depend on which
/// other policies ran beside it (the policy-independent part is kept once), and a policy named
/// twice counts once.
#[test]
fn an_idle_policy_gives_the_same_rows_whatever_runs_beside_it() {
    use common::{analysed, rows, synth};
    let d = tempfile::tempdir().unwrap();
    let trace = synth(
        d.path(),
        &["--seconds", "8", "--cpus", "2", "--packages", "2"],
    );
    let analyse = |name: &str, policies: &str| {
        let out = d.path().join(name);
        analysed(
            &trace,
            &out,
            &["-q", "--attribution", "none", "--idle-policy", policies],
        );
        let mut r: Vec<Vec<String>> = rows(&out.join("activation_energy"))
            .iter()
            .filter(|r| r.str("idle_policy") == "by-lifetime")
            .map(|r| {
                [
                    "activation_id",
                    "domain",
                    "model",
                    "complete",
                    "energy_j",
                    "dynamic_j",
                    "idle_j",
                    "dynamic_lo_j",
                    "dynamic_hi_j",
                    "energy_lo_j",
                    "energy_hi_j",
                ]
                .iter()
                .map(|c| format!("{:?} {:?} {:?}", r.s.get(*c), r.f.get(*c), r.b.get(*c)))
                .collect()
            })
            .collect();
        r.sort();
        r
    };
    let alone = analyse("alone", "by-lifetime");
    assert!(alone.len() > 100, "{} rows", alone.len());
    assert!(
        alone.iter().any(|r| r[7].contains("Some")),
        "some intervals to compare"
    );
    assert_eq!(analyse("second", "even,by-lifetime"), alone);
    assert_eq!(
        analyse("twice", "by-lifetime,proportional,by-lifetime"),
        alone
    );
}
