//! GPU energy per cgroup and activation, against a known truth: `pws-analyze synth --gpus`
//! runs two GPU functions of different watts per SM-second on one GPU (whose counter moves
//! every 100 ms, read 37 ms after each move) beside a CPU-only one. The analysis must give the
//! `truth` model each function's GPU energy within 5 %, keep every (model, idle policy)'s
//! attribution equal to the counter's energy, give no GPU energy to the function that never
//! used the GPU, bound each activation's energy by an interval that covers the truth and is
//! wide where the counter cannot resolve it, and report the counter's cadence.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{rows, synth_analysed};

#[test]
fn gpu_energy_against_a_known_truth() {
    let d = tempfile::tempdir().unwrap();
    let (out, truth, printed) = synth_analysed(
        d.path(),
        &["--seconds", "30", "--gpus", "1"],
        &["--summary-json", d.path().join("s.json").to_str().unwrap()],
    );
    assert!(printed.contains("gpu"), "{printed}");
    let g = &truth["gpu"];
    let gpu_functions: Vec<String> = g["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["device"].is_null())
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(gpu_functions.len(), 2, "{g}");
    let GpuResults {
        per,
        mut truth_rel_hw,
        mut truth_rel_err,
        sums,
    } = gpu_results(&out, &truth);
    for ((model, action), (got, want, n, covered)) in &per {
        let err = got / want - 1.0;
        println!("{model:9} {action:14} {got:9.2} J against {want:9.2} J ({:+.1} %), {covered}/{n} intervals cover it", 100.0 * err);
        if model == "truth" {
            assert!(
                err.abs() < 0.05,
                "{model} {action}: {got} J, truth {want} J"
            );
        }
        // Each function's own watts per SM-second, learnt from its hundreds of repetitions.
        if model == "per-function" {
            assert!(err.abs() < 0.1, "{model} {action}: {got} J, truth {want} J");
        }
        // Nominal 95 %: the counter's cadence and the split are in the half-width.
        assert!(
            *covered as f64 >= 0.9 * *n as f64,
            "{model} {action}: {covered} of {n} covered"
        );
    }
    // sm-share gives every SM-second the same power: the function of higher watts per
    // SM-second gets less than its truth, the other more, and together about what the truth
    // has (its fitted idle power is a few watts off the true one on a lagging counter).
    let (sum_sm, sum_truth): (f64, f64) = per
        .iter()
        .filter(|((m, _), _)| m == "sm-share")
        .fold((0.0, 0.0), |a, (_, v)| (a.0 + v.0, a.1 + v.1));
    assert!(
        (sum_sm / sum_truth - 1.0).abs() < 0.1,
        "{sum_sm} against {sum_truth}"
    );
    let w: HashMap<String, f64> = g["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["w_at_full_sm"].as_f64()?)))
        .collect();
    let (hot, cool) = if w[&gpu_functions[0]] > w[&gpu_functions[1]] {
        (&gpu_functions[0], &gpu_functions[1])
    } else {
        (&gpu_functions[1], &gpu_functions[0])
    };
    let rel = |a: &String| {
        let v = per[&("sm-share".to_owned(), a.clone())];
        v.0 / v.1
    };
    assert!(
        rel(hot) < 1.0 && rel(cool) > 1.0,
        "hot {} cool {}",
        rel(hot),
        rel(cool)
    );

    // Activations of 10–30 ms on a 100 ms counter: estimates, and their intervals say so.
    truth_rel_hw.sort_by(f64::total_cmp);
    truth_rel_err.sort_by(f64::total_cmp);
    let median = truth_rel_hw[truth_rel_hw.len() / 2];
    let err_at = |q: f64| truth_rel_err[((truth_rel_err.len() - 1) as f64 * q).round() as usize];
    println!(
        "truth per activation: error {:.0} % at the median, {:.0} % at p90; median half-width {median:.2}x the energy",
        100.0 * err_at(0.5),
        100.0 * err_at(0.9)
    );
    assert!(
        median > 0.5,
        "median half-width {median} of the truth's energy"
    );

    // Every joule of the counter is somewhere, under every model and idle policy.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("s.json")).unwrap()).unwrap();
    let total = summary[0]["accounting"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["domain"] == "gpu")
        .unwrap()["total_j"]
        .as_f64()
        .unwrap();
    assert_eq!(sums.len(), 3 * 5, "{sums:?}");
    for (k, j) in &sums {
        assert!((j / total - 1.0).abs() < 1e-9, "{k:?}: {j} J of {total}");
    }
    // The device's counter holds the truth's energy from its first to its last reading.
    let device_j = g["device_energy_j"][0].as_f64().unwrap();
    assert!(
        (total / device_j - 1.0).abs() < 0.02,
        "{total} against {device_j}"
    );

    // The GPU's idle power goes to the containers that used it, never to the CPU-only one.
    for r in rows(&out.join("container_energy")) {
        if r.str("domain") == "gpu" && !gpu_functions.contains(&r.str("action").to_owned()) {
            assert_eq!(r.num("keep_alive_j"), Some(0.0), "{}", r.str("action"));
        }
    }

    // By lifetime, a GPU container's idle energy goes to its activations by their share of its
    // life (its presence on the GPU's own update windows), the rest is its keep-alive: each
    // GPU function's activations take the part of its containers' idle energy that their time
    // is of the containers' lives (the containers live through the run, at a steady idle
    // share). Until session 16 they took none: their presence was read on the tables' grid.
    let end = rows(&out.join("power"))
        .iter()
        .filter_map(|r| r.t.get("interval_end").copied())
        .max()
        .unwrap();
    let (mut life, mut busy) = (HashMap::<String, f64>::new(), HashMap::<String, f64>::new());
    for c in rows(&out.join("containers")) {
        let until = c.t.get("destroyed").copied().unwrap_or(end);
        *life.entry(c.str("action").to_owned()).or_default() +=
            (until - c.t["created"]) as f64 / 1e9;
    }
    for a in rows(&out.join("activations")) {
        *busy.entry(a.str("action").to_owned()).or_default() +=
            (a.t["end"] - a.t["start"]) as f64 / 1e9;
    }
    let of_truth = |r: &common::Row| {
        r.str("domain") == "gpu"
            && r.str("model") == "truth"
            && r.str("idle_policy") == "by-lifetime"
    };
    let mut idle: HashMap<String, (f64, f64)> = HashMap::new();
    for r in rows(&out.join("activation_energy"))
        .iter()
        .filter(|r| of_truth(r))
    {
        idle.entry(r.str("action").to_owned()).or_default().0 += r.num("idle_j").unwrap_or(0.0);
    }
    for r in rows(&out.join("container_energy"))
        .iter()
        .filter(|r| of_truth(r))
    {
        idle.entry(r.str("action").to_owned()).or_default().1 += r.num("keep_alive_j").unwrap();
    }
    for f in &gpu_functions {
        let (acts, keep) = idle[f];
        let (got, want) = (acts / (acts + keep), busy[f] / life[f]);
        println!(
            "{f}: activations take {got:.3} of the GPU idle energy, run {want:.3} of the life"
        );
        assert!((got / want - 1.0).abs() < 0.05, "{f}: {got} against {want}");
    }

    // The quality report gives the counter's cadence and judges the GPU's activations by it.
    let q = rows(&out.join("quality"));
    let metric = |scope: &str, metric: &str| {
        q.iter()
            .find(|r| {
                r.str("scope") == scope
                    && r.str("metric") == metric
                    && (scope != "counter" || r.str("subject").contains("gpu"))
            })
            .unwrap_or_else(|| panic!("no {scope} {metric}"))
    };
    let period = metric("counter", "update_period_ms").num("value").unwrap();
    assert!((period - 100.0).abs() < 1.0, "update period {period} ms");
    let line = metric("gpu_verdict", "line").str("text").to_owned();
    assert!(line.contains("gpu"), "{line}");
    let judged = metric("gpu_verdict", "activations").num("value").unwrap();
    let used = per.values().map(|v| v.2).sum::<usize>() as f64 / 3.0;
    assert!(judged > 0.9 * used && judged <= used, "{judged} of {used}");
}

/// A GPU analysis against its truth.
struct GpuResults {
    /// (model, action) → joules under `unassigned` (the dynamic part), the truth's, the
    /// activations, and how many of their intervals cover the truth.
    per: BTreeMap<(String, String), (f64, f64, usize, usize)>,
    /// `truth`'s half-width over the true energy, per activation that used the GPU.
    truth_rel_hw: Vec<f64>,
    /// `truth`'s |error| over the true energy, per activation that used the GPU.
    truth_rel_err: Vec<f64>,
    /// (model, idle policy) → the GPU energy its attribution rows hold.
    sums: BTreeMap<(String, String), f64>,
}

/// Reads `activation_energy` and `attribution`'s GPU rows; asserts that a function that never
/// used a GPU (no truth for its activations) gets not one joule of its dynamic energy.
fn gpu_results(out: &std::path::Path, truth: &serde_json::Value) -> GpuResults {
    let g = &truth["gpu"];
    let true_j = g["activation_dynamic_j"].as_object().unwrap();
    let gpu_functions: Vec<&str> = g["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !f["device"].is_null())
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let mut per: BTreeMap<(String, String), (f64, f64, usize, usize)> = BTreeMap::new();
    let (mut truth_rel_hw, mut truth_rel_err) = (Vec::new(), Vec::new());
    let mut gpu_rows = 0;
    for r in rows(&out.join("activation_energy")) {
        if r.str("domain") != "gpu" {
            continue;
        }
        gpu_rows += 1;
        if r.str("idle_policy") != "unassigned" {
            continue;
        }
        let action = r.str("action");
        let dj = r.num("dynamic_j").unwrap();
        let Some(t) = true_j.get(r.str("activation_id")).and_then(|v| v.as_f64()) else {
            assert!(!gpu_functions.contains(&action), "{action}");
            assert_eq!(dj, 0.0, "{action} never used a GPU");
            continue;
        };
        let e = per
            .entry((r.str("model").to_owned(), action.to_owned()))
            .or_default();
        e.0 += dj;
        e.1 += t;
        e.2 += 1;
        let (lo, hi) = (
            r.num("dynamic_lo_j").unwrap(),
            r.num("dynamic_hi_j").unwrap(),
        );
        e.3 += usize::from(lo <= t && t <= hi);
        if r.str("model") == "truth" && t > 0.0 {
            truth_rel_hw.push(r.num("dynamic_half_width_j").unwrap() / t);
            truth_rel_err.push((dj - t).abs() / t);
        }
    }
    assert!(gpu_rows > 0, "no gpu rows in activation_energy");
    let mut sums: BTreeMap<(String, String), f64> = BTreeMap::new();
    for r in rows(&out.join("attribution")) {
        if r.str("domain") == "gpu" {
            *sums
                .entry((r.str("model").to_owned(), r.str("idle_policy").to_owned()))
                .or_default() += r.num("energy_j").unwrap();
        }
    }
    GpuResults {
        per,
        truth_rel_hw,
        truth_rel_err,
        sums,
    }
}

/// Two GPUs, eight functions whose containers come and go (keep-alive 20 s), and a second
/// scenario where two activations share a container: `truth` within 5 % per function,
/// `per-function` within 10 % and 15 %, and the `truth` intervals cover ≥ 90 %.
#[test]
fn gpu_energy_with_keep_alive_two_gpus_and_concurrency() {
    for (flags, per_function_tol) in [
        (
            &[
                "--seconds",
                "60",
                "--gpus",
                "2",
                "--functions",
                "8",
                "--rate",
                "20",
                "--keep-alive",
                "20s",
            ][..],
            0.10,
        ),
        (
            &["--seconds", "30", "--gpus", "1", "--concurrency", "2"][..],
            0.15,
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let (out, truth, _) = synth_analysed(d.path(), flags, &[]);
        let GpuResults { per, sums, .. } = gpu_results(&out, &truth);
        // Every (model, idle policy) places the same joules.
        let first = *sums.values().next().expect("gpu attribution rows");
        for (k, j) in &sums {
            assert!(
                (j / first - 1.0).abs() < 1e-9,
                "{k:?}: {j} J against {first}"
            );
        }
        assert!(per.len() >= 4, "{flags:?}: {per:?}");
        for ((model, action), (got, want, n, covered)) in &per {
            let err = got / want - 1.0;
            println!(
                "{flags:?} {model:12} {action:16} {:+.1} %, {covered}/{n} covered",
                100.0 * err
            );
            match model.as_str() {
                "truth" => {
                    assert!(err.abs() < 0.05, "{flags:?} {model} {action}: {err}");
                    assert!(*covered as f64 >= 0.9 * *n as f64, "{flags:?} {action}");
                }
                "per-function" => {
                    assert!(
                        err.abs() < per_function_tol,
                        "{flags:?} {model} {action}: {err}"
                    )
                }
                _ => {}
            }
        }
    }
}
