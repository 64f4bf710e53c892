//! Helpers for the end-to-end tests in `tests/`: the workspace's binaries, built on demand
//! with the same profile as the tests, and commands run with a timeout.

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
        let status = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "--profile",
                &profile,
                "-p",
                "pws-recorder",
                "-p",
                "pws-analyzer",
                "-p",
                "pws-loader",
                "--bins",
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

/// Runs a command to completion, killing it if it takes longer than `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
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

/// `pws-analyze info --json TRACE`, parsed.
pub fn info_json(trace: &Path) -> serde_json::Value {
    let out = run_with_timeout(
        Command::new(bin("pws-analyze"))
            .args(["info", "--json"])
            .arg(trace),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "info failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("info --json prints JSON")
}
