//! The derived tables (`functions`, `activation_comparison`) and the summary's sums, checked
//! against an independent computation from the rows the analysis wrote (`activations`,
//! `activation_energy`, `container_energy`, `attribution`), on a trace with two packages,
//! concurrent activations, keep-alive expiry and energy gaps; and the analysis repeated on one
//! trace gives the same bytes.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use common::{rows, Row};

fn close(a: Option<f64>, b: Option<f64>, what: &str) {
    match (a, b) {
        (None, None) => {}
        (Some(a), Some(b)) => assert!(
            (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-6),
            "{what}: {a} against {b}"
        ),
        _ => panic!("{what}: {a:?} against {b:?}"),
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Nearest rank, as TABLES.md states it: index round((n − 1)·p) of the sorted values.
fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    let i = ((sorted.len() as f64 - 1.0) * p).round();
    (!sorted.is_empty()).then(|| sorted[i as usize])
}

fn kind(start_type: &str) -> &str {
    match start_type {
        "cold" | "recreated" => "cold",
        s => s,
    }
}

type Key = (String, String, String, String, String);

fn key(r: &Row) -> Key {
    let s = |c: &str| r.str(c).to_owned();
    (
        s("namespace"),
        s("action"),
        s("domain"),
        s("model"),
        s("idle_policy"),
    )
}

/// Functions that come and go (containers kept warm 2 s, then removed), on two packages.
const KEEP_ALIVE: &[&str] = &[
    "--seconds",
    "30",
    "--cpus",
    "4",
    "--packages",
    "2",
    "--functions",
    "6",
    "--rate",
    "25",
    "--keep-alive",
    "2s",
    "--energy-gaps",
    "1",
];

/// Two activations at once in one container, on two packages, known from records only.
const CONCURRENT: &[&str] = &[
    "--seconds",
    "30",
    "--cpus",
    "4",
    "--packages",
    "2",
    "--concurrency",
    "2",
    "--activation-source",
    "records",
    "--energy-gaps",
    "3",
];

fn analysed(dir: &Path, flags: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let trace = common::synth(dir, flags);
    let out = dir.join("out");
    let summary = dir.join("summary.json");
    common::analysed(
        &trace,
        &out,
        &[
            "--attribution",
            "per-interval",
            "--idle-policy",
            "unassigned,even,by-lifetime",
            "--summary-json",
            summary.to_str().unwrap(),
        ],
    );
    (out, summary)
}

#[test]
fn derived_tables_agree_with_the_written_rows() {
    for flags in [KEEP_ALIVE, CONCURRENT] {
        let d = tempfile::tempdir().unwrap();
        let (out, summary) = analysed(d.path(), flags);
        check(&out, &summary);
        if flags == CONCURRENT {
            // Activations over the counter resets' missing energy: no interval, and none for
            // their function's mean.
            let fns = rows(&out.join("functions"));
            assert!(fns.iter().any(|f| f.num("energy_mean_lo_j").is_none()));
        } else {
            let keep = rows(&out.join("container_energy"));
            let containers: BTreeSet<&str> = keep.iter().map(|r| r.str("container_id")).collect();
            assert!(
                containers.len() > 6,
                "containers removed and made again: {containers:?}"
            );
        }
    }
}

fn check(out: &Path, summary: &Path) {
    let acts = rows(&out.join("activations"));
    let energy = rows(&out.join("activation_energy"));
    let keep = rows(&out.join("container_energy"));
    assert!(!energy.is_empty() && !keep.is_empty());

    // functions
    let mut counts: HashMap<(String, String), [f64; 4]> = HashMap::new();
    for a in &acts {
        let c = counts
            .entry((a.str("namespace").into(), a.str("action").into()))
            .or_default();
        c[0] += 1.0;
        match kind(a.str("start_type")) {
            "cold" => c[1] += 1.0,
            "prewarmed" => c[2] += 1.0,
            "warm" => c[3] += 1.0,
            _ => {}
        }
    }
    let mut by_key: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
    for r in &energy {
        by_key.entry(key(r)).or_default().push(r);
    }
    let mut keep_alive: BTreeMap<Key, f64> = BTreeMap::new();
    for r in &keep {
        *keep_alive.entry(key(r)).or_default() += r.num("keep_alive_j").unwrap();
    }
    let fns = rows(&out.join("functions"));
    let want: BTreeSet<&Key> = by_key.keys().chain(keep_alive.keys()).collect();
    let got: BTreeSet<Key> = fns.iter().map(key).collect();
    assert_eq!(got.iter().collect::<BTreeSet<_>>(), want);
    for f in &fns {
        let k = key(f);
        let what = |c: &str| format!("functions {k:?} {c}");
        let c = counts[&(k.0.clone(), k.1.clone())];
        for (col, v) in [
            "activations",
            "cold_starts",
            "prewarmed_starts",
            "warm_starts",
        ]
        .iter()
        .zip(c)
        {
            close(f.num(col), Some(v), &what(col));
        }
        let rs = by_key.get(&k).cloned().unwrap_or_default();
        close(
            f.num("activations_with_energy"),
            Some(rs.len() as f64),
            &what("activations_with_energy"),
        );
        let mut js: Vec<f64> = rs.iter().map(|r| r.num("energy_j").unwrap()).collect();
        close(f.num("energy_mean_j"), mean(&js), &what("energy_mean_j"));
        js.sort_by(f64::total_cmp);
        close(f.num("energy_p50_j"), nearest_rank(&js, 0.5), &what("p50"));
        close(f.num("energy_p99_j"), nearest_rank(&js, 0.99), &what("p99"));
        for (col, s) in [
            ("cold_energy_mean_j", "cold"),
            ("prewarmed_energy_mean_j", "prewarmed"),
            ("warm_energy_mean_j", "warm"),
        ] {
            let v: Vec<f64> = rs
                .iter()
                .filter(|r| kind(r.str("start_type")) == s)
                .map(|r| r.num("energy_j").unwrap())
                .collect();
            close(f.num(col), mean(&v), &what(col));
        }
        close(
            f.num("keep_alive_j"),
            keep_alive.get(&k).copied(),
            &what("keep_alive_j"),
        );
        // The mean's interval: half-widths in squares, systematic parts in full, never below
        // the mean idle share; none if any activation has none.
        let n = rs.len() as f64;
        let hw: Option<Vec<f64>> = rs.iter().map(|r| r.num("dynamic_half_width_j")).collect();
        let bounds = hw.filter(|_| n > 0.0).map(|hw| {
            let m = js.iter().sum::<f64>() / n;
            let h = hw.iter().map(|h| h * h).sum::<f64>().sqrt() / n
                + rs.iter()
                    .map(|r| r.num("systematic_j").unwrap())
                    .sum::<f64>()
                    / n;
            let idle = rs.iter().map(|r| r.num("idle_j").unwrap()).sum::<f64>() / n;
            ((m - h).max(idle), m + h)
        });
        close(f.num("energy_mean_lo_j"), bounds.map(|b| b.0), &what("lo"));
        close(f.num("energy_mean_hi_j"), bounds.map(|b| b.1), &what("hi"));
    }
    assert!(fns.iter().any(|f| f.num("energy_mean_lo_j").is_some()));

    // activation_comparison: activation_energy pivoted on the model.
    let mut side: HashMap<(String, String, String), BTreeMap<String, f64>> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for r in &energy {
        let id = r.str("activation_id").to_owned();
        if order.last() != Some(&id) {
            order.push(id.clone());
        }
        side.entry((id, r.str("domain").into(), r.str("idle_policy").into()))
            .or_default()
            .insert(r.str("model").into(), r.num("energy_j").unwrap());
    }
    let cmp = rows(&out.join("activation_comparison"));
    assert_eq!(cmp.len(), side.len());
    let place: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    // By domain and idle policy, then in the activations' order.
    let mut last: Option<(String, String, usize)> = None;
    for r in &cmp {
        let at = (
            r.str("domain").to_owned(),
            r.str("idle_policy").to_owned(),
            place[r.str("activation_id")],
        );
        assert!(
            last.as_ref().is_none_or(|l| at > *l),
            "{at:?} after {last:?}"
        );
        last = Some(at);
        let models = &side[&(
            r.str("activation_id").to_owned(),
            r.str("domain").to_owned(),
            r.str("idle_policy").to_owned(),
        )];
        for (m, j) in models {
            close(r.num(&format!("{m}_j")), Some(*j), m);
        }
        let (lo, hi) = models
            .values()
            .fold((f64::MAX, f64::MIN), |(l, h), &j| (l.min(j), h.max(j)));
        let m = models.values().sum::<f64>() / models.len() as f64;
        close(r.num("spread_j"), Some(hi - lo), "spread_j");
        close(
            r.num("spread_pct"),
            (m > 0.0).then(|| 100.0 * (hi - lo) / m),
            "spread_pct",
        );
    }

    // container_energy: a container's attributed energy is its activations' plus its
    // keep-alive.
    let container_of: HashMap<&str, &str> = acts
        .iter()
        .map(|a| (a.str("activation_id"), a.str("container_id")))
        .collect();
    type Of = (String, String, String, String);
    let mut took: HashMap<Of, f64> = HashMap::new();
    for r in &energy {
        let c = container_of[r.str("activation_id")].to_owned();
        let k = (
            c,
            r.str("domain").into(),
            r.str("model").into(),
            r.str("idle_policy").into(),
        );
        *took.entry(k).or_default() += r.num("energy_j").unwrap();
    }
    let mut given: HashMap<Of, f64> = HashMap::new();
    for r in rows(&out.join("attribution")) {
        let c = r.str("container_id");
        if c.is_empty() {
            continue;
        }
        let k = (
            c.into(),
            r.str("domain").into(),
            r.str("model").into(),
            r.str("idle_policy").into(),
        );
        *given.entry(k).or_default() += r.num("energy_j").unwrap_or(0.0);
    }
    for r in &keep {
        let k = (
            r.str("container_id").into(),
            r.str("domain").into(),
            r.str("model").into(),
            r.str("idle_policy").into(),
        );
        let sum = took.get(&k).copied().unwrap_or(0.0) + r.num("keep_alive_j").unwrap();
        let g = given.get(&k).copied().unwrap_or(0.0);
        assert!(
            (sum - g).abs() < 1e-9 * g.abs().max(1.0),
            "{k:?}: activations + keep-alive {sum} J, attributed {g} J"
        );
    }

    // The summary's accounting under its model and policy.
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(summary).unwrap()).unwrap();
    let acc = s[0]["accounting"].as_array().unwrap();
    assert!(!acc.is_empty());
    for a in acc {
        let (domain, model, policy) = (
            a["domain"].as_str().unwrap(),
            a["model"].as_str().unwrap(),
            a["idle_policy"].as_str().unwrap(),
        );
        let of = |rs: &[Row], c: &str| -> f64 {
            rs.iter()
                .filter(|r| {
                    r.str("domain") == domain
                        && r.str("model") == model
                        && r.str("idle_policy") == policy
                })
                .map(|r| r.num(c).unwrap())
                .sum()
        };
        close(
            a["functions_j"].as_f64(),
            Some(of(&energy, "energy_j")),
            "functions_j",
        );
        close(
            a["keep_alive_j"].as_f64(),
            Some(of(&keep, "keep_alive_j")),
            "keep_alive_j",
        );
    }
}

/// Every file under `dir`, by its path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    common::files_under(dir)
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(p).unwrap())
        })
        .collect()
}

#[test]
fn an_analysis_repeated_gives_the_same_bytes() {
    let d = tempfile::tempdir().unwrap();
    let (out, summary) = analysed(d.path(), KEEP_ALIVE);
    let trace = d.path().join("t.pws");
    let again = d.path().join("again");
    let summary2 = d.path().join("again.json");
    common::analysed(
        &trace,
        &again,
        &[
            "--attribution",
            "per-interval",
            "--idle-policy",
            "unassigned,even,by-lifetime",
            "--summary-json",
            summary2.to_str().unwrap(),
        ],
    );
    let (a, b) = (files(&out), files(&again));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between two analyses");
    }
    // The summaries differ only in the output paths they name.
    let text = |p: &Path| {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
        v[0]["files"] = serde_json::Value::Null;
        v
    };
    assert_eq!(text(&summary), text(&summary2));
}
