//! `pws-analyze compare` over synthetic runs labelled by a manifest, checked against DuckDB
//! (tests/e2e/check_compare.py), and its errors on bad input.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use pws_tests::{bin, check_comparison, run_with_timeout};

fn analyze<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    run_with_timeout(
        Command::new(bin("pws-analyze")).args(args),
        Duration::from_secs(300),
    )
}

fn ok(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Synthetic runs (config, keep-alive, seed) in `dir`, labelled by a manifest, analysed into
/// `dir/results`.
fn dataset(dir: &Path, runs: &[(&str, &str, u64)]) {
    let mut manifest = String::from("trace,run,config,repetition\n");
    for (k, (config, keep_alive, seed)) in runs.iter().enumerate() {
        let trace = format!("{config}-{k}.pws");
        let seed = seed.to_string();
        ok(
            analyze(&[
                "synth",
                "-o",
                dir.join(&trace).to_str().unwrap(),
                "--seconds",
                "20",
                "--functions",
                "4",
                "--rate",
                "8",
                "--keep-alive",
                keep_alive,
                "--seed",
                &seed,
            ]),
            "synth",
        );
        manifest.push_str(&format!("{trace},{config}-{k},{config},{k}\n"));
    }
    std::fs::write(dir.join("manifest.csv"), manifest).unwrap();
    ok(
        analyze(&[
            "-q".as_ref(),
            dir.as_os_str(),
            "-o".as_ref(),
            dir.join("results").as_os_str(),
        ]),
        "pws-analyze",
    );
}

/// Runs `compare --json` with `args` and checks it with DuckDB.
fn compare_and_check(dir: tempfile::TempDir, args: &[&str]) -> serde_json::Value {
    let results = dir.path().join("results");
    let mut all = vec!["compare", results.to_str().unwrap(), "--json"];
    all.extend(args);
    let out = ok(analyze(&all), "compare");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("compare --json");
    assert!(
        results.join("comparison/by=config.parquet").exists(),
        "the comparison table is written"
    );
    check_comparison(&results, &out.stdout, dir);
    json
}

#[test]
fn two_configurations_one_run_each_compare_over_activations() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), &[("a", "2s", 1), ("b", "15s", 2)]);
    let json = compare_and_check(dir, &["--by", "config", "--baseline", "a"]);
    assert_eq!(
        json["model"], "truth",
        "synth's ground truth is the default"
    );
    let rows = json["rows"].as_array().unwrap();
    assert!(rows.len() >= 6, "four functions in two groups: {rows:?}");
    assert!(rows.iter().all(|r| r["unit"] == "activation"));
    // A longer keep-alive keeps more containers warm: more keep-alive energy per hour, fewer
    // cold starts, for the busiest function at least.
    let get = |config: &str, k: &str| {
        rows.iter()
            .filter(|r| r["group"][0] == config)
            .max_by_key(|r| r["activations"].as_u64())
            .map(|r| r[k]["value"].as_f64().unwrap())
            .unwrap()
    };
    assert!(get("b", "keep_alive_j_per_hour") > get("a", "keep_alive_j_per_hour"));
    assert!(get("b", "cold_share") <= get("a", "cold_share"));
}

#[test]
fn any_column_of_activations_groups_even_a_key() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), &[("a", "2s", 1), ("b", "15s", 2)]);
    let results = dir.path().join("results");
    let out = ok(
        analyze(&[
            "compare",
            results.to_str().unwrap(),
            "--by",
            "run,config",
            "--json",
        ]),
        "compare --by run,config",
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["runs"] == 1
        && r["group"][0]
            .as_str()
            .unwrap()
            .starts_with(r["group"][1].as_str().unwrap())));
    assert!(results.join("comparison/by=run+config.parquet").exists());
}

#[test]
fn repeated_runs_compare_over_runs() {
    let dir = tempfile::tempdir().unwrap();
    dataset(
        dir.path(),
        &[
            ("a", "2s", 1),
            ("a", "2s", 2),
            ("b", "15s", 3),
            ("b", "15s", 4),
        ],
    );
    let json = compare_and_check(dir, &["--by", "config", "--baseline", "b"]);
    let rows = json["rows"].as_array().unwrap();
    assert!(rows.iter().all(|r| r["unit"] == "run" && r["runs"] == 2));
    assert!(rows
        .iter()
        .filter(|r| r["group"][0] == "a")
        .all(|r| r["energy_per_activation_change_pct"]["lo"].is_number()));
}

#[test]
fn bad_comparisons_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let fails = |args: &[&str], want: &str| {
        let mut all = vec!["compare", results.to_str().unwrap()];
        all.extend(args);
        let out = analyze(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(want),
            "{args:?}: {err}"
        );
    };
    fails(&["--by", "config"], "not a directory");
    std::fs::create_dir_all(&results).unwrap();
    fails(&["--by", "config"], "no activation_energy table");
    dataset(dir.path(), &[("a", "2s", 1)]);
    fails(&["--by", "colour"], "no column `colour`");
    fails(
        &["--by", "config", "--baseline", "z"],
        "no group has config = z",
    );
    fails(
        &["--by", "config", "--model", "oracle"],
        "no model `oracle` in the dataset",
    );
}
