//! Measurement quality against synthetic counters whose update period is known: the report
//! must measure the period from the readings, judge which activations the counter resolves,
//! and the default interval must follow the period (no 0 W / double-power intervals).

mod common;

use std::path::Path;
use std::process::Command;

use arrow_array::{Float64Array, StringArray};
use common::{col, read};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pws-analyze")
}

fn synth(trace: &Path, flags: &[&str]) {
    let st = Command::new(bin())
        .args(["synth", "--seconds", "20"])
        .args(flags)
        .arg("-o")
        .arg(trace)
        .status()
        .unwrap();
    assert!(st.success());
}

/// `pws-analyze quality --json` of one trace.
fn quality(trace: &Path, extra: &[&str]) -> serde_json::Value {
    let o = Command::new(bin())
        .args(["quality", "--json"])
        .args(extra)
        .arg(trace)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0].clone()
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// The update period is measured within 10 % of the counter's, and the share of activations
/// the counter resolves falls as the period grows. Prints the README's table.
#[test]
fn the_update_period_is_measured_and_decides_what_is_resolvable() {
    let d = tempfile::tempdir().unwrap();
    // (update period, read period, expected ms, moves at every reading, auto interval ms):
    // read every 10 ms, a 1 ms counter moves at every reading, which bounds its period.
    let cases = [
        ("1ms", "1ms", 1.0, true, 10.0),
        ("1ms", "10ms", 10.0, true, 10.0),
        ("10ms", "1ms", 10.0, false, 100.0),
        ("100ms", "10ms", 100.0, false, 1000.0),
    ];
    let mut resolvable = Vec::new();
    println!("update period | read every | measured (p99) | interval | function (median ms): resolvable / within 5 % / ± median");
    for (upd, rd, want, at_most, interval) in cases {
        let t = d.path().join(format!("u{upd}-r{rd}.pws"));
        synth(
            &t,
            &["--energy-update-period", upd, "--energy-read-period", rd],
        );
        let q = quality(&t, &[]);
        let c = &q["counters"][0];
        let got = f(&c["update_period_ms"]);
        assert!((got - want).abs() <= 0.1 * want, "{upd}: measured {got} ms");
        assert!(f(&c["update_period_p99_ms"]) >= got);
        assert_eq!(c["update_period_at_most"], at_most, "{upd}: {c}");
        assert_eq!(
            f(&q["trace"]["interval_ms"]),
            interval,
            "{upd} read every {rd}"
        );
        assert_eq!(
            (
                c["wraps"].as_u64(),
                c["resets"].as_u64(),
                c["gaps_missing"].as_u64()
            ),
            (Some(0), Some(0), Some(0))
        );
        let v = &q["verdict"];
        let share = f(&v["resolvable"]) / f(&v["timed"]);
        resolvable.push(share);
        let fs: Vec<String> = q["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{} ({:.0}): {:.0} % / {:.0} % / ±{:.0} %",
                    x["function"].as_str().unwrap(),
                    f(&x["median_ms"]),
                    100.0 * f(&x["resolvable_share"]),
                    100.0 * f(&x["within_share"]),
                    100.0 * f(&x["median_relative_uncertainty"])
                )
            })
            .collect();
        println!(
            "{upd} | {rd} | {got:.2} ms ({:.2}) | {} ms | {} | all: {:.1} % resolvable, {:.1} % within 5 %",
            f(&c["update_period_p99_ms"]),
            f(&q["trace"]["interval_ms"]),
            fs.join("; "),
            100.0 * share,
            100.0 * f(&v["within_share"])
        );
    }
    // Activations of 3–60 ms: nearly all span two 1 ms updates, almost none two 100 ms ones.
    assert!(resolvable[0] > 0.95, "{resolvable:?}");
    assert!(resolvable[0] > resolvable[2] && resolvable[2] > resolvable[3]);
    assert!(resolvable[3] < 0.1, "{resolvable:?}");
}

/// Measured intervals' power (W) of one analysis, from its `power` table.
fn interval_powers(out: &Path) -> Vec<f64> {
    let mut w = Vec::new();
    for b in read(&out.join("power")) {
        let (st, p) = (
            col::<StringArray>(&b, "status"),
            col::<Float64Array>(&b, "power_w"),
        );
        for r in 0..b.num_rows() {
            if st.value(r) == "measured" {
                w.push(p.value(r));
            }
        }
    }
    w
}

/// A counter that ticks every ~10 ms without a fixed beat, read every 10 ms (the recorder's
/// simulated source): cut into 10 ms intervals, its power table alternates between 0 W and
/// about twice the power; the default interval holds ten ticks and stays within what the
/// machine can draw.
#[test]
fn the_default_interval_follows_a_ticking_counter() {
    let d = tempfile::tempdir().unwrap();
    let flags = [
        "--energy-update-period",
        "10ms",
        "--energy-update-jitter",
        "4ms",
    ];
    let (out, truth, text) = common::synth_analysed(d.path(), &flags, &[]);
    // The machine draws idle power plus, per CPU, at most the busiest activation's dynamic
    // power (the daemon draws less).
    let idle = f(&truth["idle_w"]);
    let cpus = f(&truth["scenario"]["cpus"]);
    let mut act_w = 0f64;
    for b in read(&out.join("activations")) {
        let (ids, run) = (
            col::<StringArray>(&b, "activation_id"),
            col::<arrow_array::UInt64Array>(&b, "run_ms"),
        );
        for r in 0..b.num_rows() {
            let j = f(&truth["activation_dynamic_j"][ids.value(r)]);
            act_w = act_w.max(j / (run.value(r) as f64 / 1e3));
        }
    }
    let (lo, hi) = (idle, idle + cpus * act_w);
    let check = |w: &[f64]| -> (f64, f64, usize) {
        let min = w.iter().copied().fold(f64::INFINITY, f64::min);
        let max = w.iter().copied().fold(0f64, f64::max);
        let outside = w
            .iter()
            .filter(|&&x| x < 0.85 * lo || x > 1.15 * hi)
            .count();
        (min, max, outside)
    };
    let auto = check(&interval_powers(&out));
    let short_out = d.path().join("out-10ms");
    let o = Command::new(bin())
        .arg(d.path().join("t.pws"))
        .args(["--interval", "10ms", "-q", "-o"])
        .arg(&short_out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let short = check(&interval_powers(&short_out));
    println!(
        "machine draws {lo:.1}–{hi:.1} W; interval power auto: {:.1}–{:.1} W ({} outside ±15 %), 10 ms: {:.1}–{:.1} W ({} outside)",
        auto.0, auto.1, auto.2, short.0, short.1, short.2
    );
    assert!(
        short.0 == 0.0 && short.1 > 1.5 * hi && short.2 > 100,
        "10 ms intervals show the quantisation: {short:?}"
    );
    assert_eq!(auto.2, 0, "default interval: {auto:?} against {lo}–{hi} W");
    assert!(text.contains("interval 100 ms (--interval auto)"), "{text}");

    // The quality table is written with the others and holds the verdict.
    let mut verdict = None;
    for b in read(&out.join("quality")) {
        let (scope, metric, value) = (
            col::<StringArray>(&b, "scope"),
            col::<StringArray>(&b, "metric"),
            col::<Float64Array>(&b, "value"),
        );
        for r in 0..b.num_rows() {
            if scope.value(r) == "counter" && metric.value(r) == "update_period_ms" {
                assert!((value.value(r) - 10.0).abs() < 1.0, "{}", value.value(r));
            }
            if scope.value(r) == "verdict" && metric.value(r) == "within_share" {
                verdict = Some(value.value(r));
            }
        }
    }
    assert!(verdict.is_some(), "a verdict row in the quality table");
}

/// The summary says when a given interval is too short for the counter.
#[test]
fn a_too_short_interval_is_named_in_the_summary() {
    let d = tempfile::tempdir().unwrap();
    let (_, _, text) = common::synth_analysed(
        d.path(),
        &["--seconds", "20", "--energy-update-period", "100ms"],
        &["--interval", "50ms"],
    );
    assert!(
        text.contains("is too short for this counter, which moves every 100.0 ms")
            && text.contains("it would pick 1000 ms"),
        "{text}"
    );
}

/// Bad input is an error that names the trace, never a panic.
#[test]
fn a_corrupt_trace_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("bad.pws");
    std::fs::write(&t, b"PWSTRACE but not really a trace at all").unwrap();
    let o = Command::new(bin()).arg("quality").arg(&t).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("bad.pws") && !err.contains("panicked"),
        "{err}"
    );
}
