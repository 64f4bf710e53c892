//! A realistic invoker node from `pws-analyze synth`: many functions of Zipf popularity, a total
//! activation rate, and containers kept warm (paused between runs) then removed, as OpenWhisk
//! does. The analysis must find every container the schedule made, with its life and paused
//! time, one cold start per container, and the activations at the rate asked for.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::rows;

const SECONDS: f64 = 20.0;
const RATE: f64 = 30.0;

#[test]
fn a_node_with_many_functions_and_kept_alive_containers() {
    let d = tempfile::tempdir().unwrap();
    let (out, truth, _) = common::synth_analysed(
        d.path(),
        &[
            "--seconds",
            "20",
            "--cpus",
            "4",
            "--functions",
            "20",
            "--rate",
            "30",
            "--keep-alive",
            "5s",
        ],
        &["--idle-policy", "unassigned"],
    );
    let want = truth["containers"].as_object().unwrap();
    let ns = |v: &serde_json::Value| v.as_u64().map(|x| x as i64);

    // Every function seen, at about the rate asked for (Poisson: 4 standard deviations; a few
    // are cut at the trace's end or find no free CPU).
    let acts = rows(&out.join("activations"));
    let functions: BTreeSet<&str> = acts.iter().map(|r| r.str("action")).collect();
    assert_eq!(functions.len(), 20, "{functions:?}");
    let expected = RATE * SECONDS;
    let n = acts.len() as f64;
    assert!(
        (n - expected).abs() < 4.0 * expected.sqrt(),
        "{n} activations in {SECONDS} s at {RATE}/s"
    );
    // Zipf, exponent 1: the most popular of 20 takes 1/H(20) of the activations.
    let h20: f64 = (1..=20).map(|k| 1.0 / f64::from(k)).sum();
    let top = acts
        .iter()
        .filter(|r| r.str("action") == "integer-loop")
        .count() as f64;
    let p = 1.0 / h20;
    assert!(
        (top - n * p).abs() < 4.0 * (n * p * (1.0 - p)).sqrt(),
        "{top} of {n} for the most popular function, {:.0} expected",
        n * p
    );

    // Every container the schedule made, with its life, paused time and activations.
    let got: BTreeMap<String, common::Row> = rows(&out.join("containers"))
        .into_iter()
        .filter(|r| r.flag("function_container"))
        .map(|r| (r.str("container_id").to_owned(), r))
        .collect();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(
        want.len() > 20,
        "more containers than functions: {}",
        want.len()
    );
    let mut removed = 0;
    for (id, w) in want {
        let g = &got[id];
        assert_eq!(
            g.t.get("created").copied(),
            ns(&w["created_ns"]).map(epoch),
            "{id}"
        );
        assert_eq!(
            g.t.get("destroyed").copied(),
            ns(&w["removed_ns"]).map(epoch),
            "{id}"
        );
        removed += usize::from(w["removed_ns"].is_u64());
        assert_eq!(g.num("paused_ns"), w["paused_ns"].as_f64(), "{id}");
        assert!(
            w["paused_ns"].as_u64().unwrap() > 0,
            "{id}: paused after its run"
        );
        assert_eq!(g.str("paused_source"), "cgroup-v2", "{id}");
        assert_eq!(g.num("activations"), w["activations"].as_f64(), "{id}");
        assert_eq!(g.str("action"), w["function"].as_str().unwrap(), "{id}");
    }
    assert!(removed > 0, "some containers outlive their keep-alive");

    // As many alive at once as the schedule had.
    let peak = |spans: Vec<(i64, Option<i64>)>| {
        let mut ev: Vec<(i64, i32)> = spans
            .iter()
            .flat_map(|&(a, b)| [(a, 1)].into_iter().chain(b.map(|b| (b, -1))))
            .collect();
        ev.sort_unstable(); // removals (−1) before creations at one instant
        ev.iter()
            .scan(0, |n, e| {
                *n += e.1;
                Some(*n)
            })
            .max()
            .unwrap_or(0)
    };
    let want_peak = peak(
        want.values()
            .map(|w| (ns(&w["created_ns"]).unwrap(), ns(&w["removed_ns"])))
            .collect(),
    );
    let got_peak = peak(
        got.values()
            .map(|g| (g.t["created"], g.t.get("destroyed").copied()))
            .collect(),
    );
    assert_eq!(got_peak, want_peak);
    assert!(want_peak >= 20, "{want_peak} alive at once");

    // A cold start is a container made.
    let cold = acts.iter().filter(|r| r.flag("cold")).count();
    assert_eq!(cold, want.len());
}

/// The trace clock to the epoch timestamps the tables hold (synth's clocks are in lock step).
fn epoch(mono_ns: i64) -> i64 {
    const T0: i64 = 1_000_000_000_000;
    const T0_REALTIME: i64 = 1_767_225_600_000_000_000;
    mono_ns - T0 + T0_REALTIME
}
