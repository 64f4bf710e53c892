//! `pws-load sweep` as a user runs it: every point recorded by pws-record into its own trace
//! with its settings as metadata; an interrupt keeps the finished runs and their manifest; the
//! same command resumes; then `pws-analyze DIR` and `pws-analyze compare` over the sweep,
//! checked against DuckDB (tests/e2e/check_compare.py).
//!
//! Needs root (system-wide perf, cgroups); elsewhere it says why and skips (fails under CI).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pws_tests::{bin, cannot_run, check_comparison, run_with_timeout, TestCgroup};

fn manifest_rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("manifest.csv"))
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_sweep_records_every_point_resumes_after_an_interrupt_and_compares() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        cannot_run("needs root (system-wide perf, cgroups)");
        return;
    }
    let cg = TestCgroup::create("pws-sweep");
    let tmp = tempfile::tempdir().unwrap();
    let workload = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/loader/workloads/small.yaml");
    let spec = tmp.path().join("sweep.yaml");
    std::fs::write(
        &spec,
        format!(
            "workload: {}\nduration: 2s\nrepetitions: 2\nseed: 3\nvary:\n  keep_alive: [300ms, 5s]\n",
            workload.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("sweep");
    let sweep = || {
        let mut c = Command::new(bin("pws-load"));
        c.arg("sweep")
            .arg(&spec)
            .arg("-o")
            .arg(&out)
            .arg("--cgroup-root")
            .arg(&cg.path)
            .arg("--pws-record")
            .arg(bin("pws-record"));
        c
    };

    // Interrupted once its first run is in the manifest.
    let mut child = sweep()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while manifest_rows(&out).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child, not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success() && err.contains("interrupted"), "{err}");
    let kept = manifest_rows(&out);
    assert!(!kept.is_empty() && kept.len() < 4, "{kept:?}");
    let first = out.join("p00-r1/trace.pws");
    let first_meta = std::fs::metadata(&first).expect("the first run's trace is kept");
    // Only finished runs have a folder: the interrupted one was discarded.
    let folders = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert_eq!(folders, kept.len(), "{err}");

    // Resumed: the rest only.
    let o = run_with_timeout(&mut sweep(), Duration::from_secs(300));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} of 4 runs to do", 4 - kept.len())),
        "{err}"
    );
    let rows = manifest_rows(&out);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        rows[..kept.len()],
        kept[..],
        "finished runs stay as they were"
    );
    let again = std::fs::metadata(&first).unwrap();
    assert_eq!(
        (again.len(), again.modified().unwrap()),
        (first_meta.len(), first_meta.modified().unwrap()),
        "a finished run is not recorded again"
    );
    let o = run_with_timeout(&mut sweep(), Duration::from_secs(60));
    assert!(String::from_utf8_lossy(&o.stderr).contains("all 4 runs are done"));

    // Analysed through its manifest, compared by the varied setting.
    let results = out.join("results");
    let o = run_with_timeout(
        Command::new(bin("pws-analyze"))
            .arg("-q")
            .arg(&out)
            .arg("-o")
            .arg(&results),
        Duration::from_secs(300),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_with_timeout(
        Command::new(bin("pws-analyze")).args([
            "compare".as_ref(),
            results.as_os_str(),
            "--by".as_ref(),
            "keep_alive".as_ref(),
            "--baseline".as_ref(),
            "300ms".as_ref(),
            "--json".as_ref(),
        ]),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = json["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["runs"] == 2 && r["unit"] == "run"),
        "{rows:?}"
    );
    let groups: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r["group"][0].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["300ms", "5s"].into());
    check_comparison(&results, &o.stdout, tmp);
    drop(cg);
}
