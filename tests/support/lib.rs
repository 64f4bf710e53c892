//! Helpers for the end-to-end tests in `tests/`: the workspace's binaries, built on demand
//! with the same profile as the tests, commands run with a timeout, a cgroup v2 directory
//! removed with everything in it however the test ends, the Python environment with DuckDB, and
//! what a test that cannot run here does.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;
use std::time::{Duration, Instant};

/// `target/<profile>/`, from where this test executable lives (`target/<profile>/deps/`), so
/// a CARGO_TARGET_DIR shared with other clones is honoured.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_owned()
}

/// Path to a workspace binary, built first (once per test process) so it is never stale:
/// `cargo test -p pws-tests` alone would not build other packages' binaries.
pub fn bin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let dir = profile_dir();
    BUILD.call_once(|| {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => "dev".to_owned(),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // `--workspace --tests`: the features `cargo test --workspace` resolved (dev-
        // dependencies included), so this finds its binaries built; `-p … --bins` alone
        // resolved others and rebuilt the analyzer (polars with it) on every test run.
        let mut build = Command::new(cargo);
        // Without what `cargo test` set for this test process: build scripts that watch one of
        // these (ring's watches CARGO_MANIFEST_DIR) would run again and rebuild all above them.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .iter()
            .any(|p| k.starts_with(p))
            {
                build.env_remove(k.as_ref());
            }
        }
        let status = build
            .args([
                "build",
                "--quiet",
                "--profile",
                &profile,
                "--workspace",
                "--bins",
                "--tests",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
    });
    let p = dir.join(name);
    assert!(p.exists(), "{} was not built", p.display());
    p
}

/// Runs a command to completion, stopping it if it takes longer than `limit`: SIGTERM first
/// (pws-record then stops its command and finishes the trace), then SIGKILL to it and to every
/// process under it — pws-record runs its command in a process group of its own, so killing
/// one group would leave `pws-load` running after a failed test.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let pid = child.id() as libc::pid_t;
            // SAFETY: kill(2) on our own child's id; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let grace = Instant::now() + Duration::from_secs(10);
            while child.try_wait().expect("wait").is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(50));
            }
            if child.try_wait().expect("wait").is_none() {
                for p in descendants(pid) {
                    // SAFETY: as above, on a process this child started.
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
                // SAFETY: as above; the negated id is the group the child leads.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
            }
            let out = child.wait_with_output().expect("wait");
            panic!(
                "{cmd:?} did not finish within {limit:?}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// Every process under `pid` (children of each of its threads, recursively), from /proc.
fn descendants(pid: libc::pid_t) -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) else {
            continue;
        };
        for t in tasks.flatten() {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// `pws-analyze info --json TRACE`, parsed.
pub fn info_json(trace: &Path) -> serde_json::Value {
    let out = pws_analyze(
        &["info".as_ref(), "--json".as_ref(), trace.as_os_str()],
        Duration::from_secs(60),
    );
    serde_json::from_slice(&out.stdout).expect("info --json prints JSON")
}

/// Runs `pws-analyze ARGS` within `limit` and fails, with the arguments and its stderr, if it
/// fails.
fn pws_analyze(args: &[&std::ffi::OsStr], limit: Duration) -> Output {
    let out = run_with_timeout(Command::new(bin("pws-analyze")).args(args), limit);
    assert!(
        out.status.success(),
        "pws-analyze {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The cgroup v2 mount: `/sys/fs/cgroup/unified` on a hybrid hierarchy, else `/sys/fs/cgroup`
/// (where pws-load puts its containers by default).
pub fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
}

/// A cgroup v2 directory of the test's own (`<mount>/<name>-<pid>`), given to pws-load as
/// `--cgroup-root`. Dropping it kills whatever is still inside (`cgroup.kill` reaches frozen
/// tasks too) and removes every directory under it, deepest first — also when the test fails.
#[derive(Debug)]
pub struct TestCgroup {
    pub path: PathBuf,
    /// Its path on the cgroup v2 hierarchy (`/<name>-<pid>`), as the analyzer's tables name
    /// cgroups.
    pub hierarchy_path: String,
}

impl TestCgroup {
    pub fn create(name: &str) -> Self {
        let mount = cgroup2_mount().expect("a cgroup v2 mount");
        let leaf = format!("{name}-{}", std::process::id());
        let path = mount.join(&leaf);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        Self {
            path,
            hierarchy_path: format!("/{leaf}"),
        }
    }

    /// The kernel's CPU time of everything that ran inside, removed sub-cgroups included
    /// (their usage stays in their parent's `cpu.stat`).
    pub fn usage_usec(&self) -> u64 {
        let stat = std::fs::read_to_string(self.path.join("cpu.stat")).expect("cpu.stat");
        stat.lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .expect("usage_usec in cpu.stat")
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        if !self.path.exists() {
            return;
        }
        let _ = std::fs::write(self.path.join("cgroup.kill"), "1");
        // Deepest first; a directory whose tasks are still exiting is retried for a while.
        let mut dirs = Vec::new();
        let mut stack = vec![self.path.clone()];
        while let Some(d) = stack.pop() {
            if let Ok(entries) = std::fs::read_dir(&d) {
                stack.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(d).is_err() && d.exists() && Instant::now() < deadline {
                let _ = std::fs::write(d.join("cgroup.kill"), "1");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if self.path.exists() {
            eprintln!("warning: could not remove {}", self.path.display());
        }
    }
}

/// The Python of the environment `scripts/python-env.sh` creates ($PWS_PYTHON_ENV, else
/// `<repo>/.venv-notebooks`), checked to import DuckDB. Panics saying how to create it: the
/// end-to-end checks must run, not skip, when the environment is missing.
pub fn python_with_duckdb() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var_os("PWS_PYTHON_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-notebooks"));
    let python = venv.join("bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "{} cannot import duckdb: run scripts/python-env.sh (or set PWS_PYTHON_ENV to a venv made by it)",
        python.display()
    );
    python
}

/// Inputs of int-loop and float-loop for about `ms` of CPU each here, from `pws-load functions
/// --calibrate` (which prints the input for 100 ms).
pub fn calibrated_inputs(ms: u64) -> (u64, u64) {
    let out = run_with_timeout(
        Command::new(bin("pws-load")).args(["functions", "--calibrate"]),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let input = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no calibrated input for {name} in:\n{text}"))
            * ms
            / 100
    };
    (input("int-loop"), input("float-loop"))
}

/// Runs `pws-analyze -q ARGS TRACE -o OUT` and fails, with its stderr, if it fails.
pub fn analyze(trace: &Path, out: &Path, args: &[&str]) {
    let mut all: Vec<&std::ffi::OsStr> = vec!["-q".as_ref()];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    all.extend([trace.as_os_str(), "-o".as_ref(), out.as_os_str()]);
    pws_analyze(&all, Duration::from_secs(180));
}

/// Runs a check script of `tests/e2e/` with the DuckDB Python and `args`, prints what it
/// printed, and fails naming the script when it fails, keeping `dir` (its inputs) for a look.
pub fn run_check_script(
    python: &Path,
    script: &str,
    args: &[&std::ffi::OsStr],
    dir: tempfile::TempDir,
) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(script);
    let out = run_with_timeout(
        Command::new(python).arg(&script).args(args),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{} failed (inputs kept in {}):\n{stdout}{}",
        script.display(),
        dir.keep().display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks `pws-analyze compare --json` output (`json`) over the dataset `results` against
/// DuckDB (`e2e/check_compare.py`); `dir` is kept for a look when it fails.
pub fn check_comparison(results: &Path, json: &[u8], dir: tempfile::TempDir) {
    let file = dir.path().join("compare.json");
    std::fs::write(&file, json).expect("writing compare.json");
    run_check_script(
        &python_with_duckdb(),
        "check_compare.py",
        &[
            "--results".as_ref(),
            results.as_os_str(),
            "--json".as_ref(),
            file.as_os_str(),
        ],
        dir,
    );
}

/// What a test that cannot run here does (skip outside CI, fail under CI).
pub use pws_test_support::{cannot_run, online_cpus, steal_ns};
