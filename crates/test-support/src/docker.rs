//! A Docker daemon for tests that drive real containers.
//!
//! A test takes [`daemon`] for as long as it uses Docker. It answers with the daemon that runs
//! already, or starts one with flags that work in a VM without a registry or a bridge
//! (`--iptables=false --bridge=none --storage-driver=vfs`) and stops it when dropped. The
//! tests holding it are serialised by an exclusive lock on a file, across test processes too
//! (cargo runs one test binary at a time, nextest does not), so that no test stops a daemon
//! another is using.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cannot_run;

/// Runs `docker ARGS`; its trimmed stdout when it succeeded.
pub fn docker(args: &[&str]) -> Option<String> {
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Docker for one test: the lock, and the `dockerd` this test started (None where one ran
/// already), stopped on drop.
#[derive(Debug)]
pub struct Daemon {
    started: Option<Child>,
    _lock: File,
}

impl Daemon {
    /// Whether this test started the daemon (and so stops it).
    pub fn started_here(&self) -> bool {
        self.started.is_some()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(c) = &mut self.started {
            // SIGTERM: dockerd stops its containers and removes its pid file and socket.
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while !matches!(c.try_wait(), Ok(Some(_))) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // The lock goes with the file.
    }
}

/// The running daemon, or one started here; None (after [`cannot_run`]) without Docker.
/// Blocks while another test holds Docker.
pub fn daemon() -> Option<Daemon> {
    let path = std::env::temp_dir().join("pws-tests-docker.lock");
    let lock = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // SAFETY: flock on a descriptor this function owns.
    let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock {}", path.display());
    if docker(&["info", "--format", "{{.ServerVersion}}"]).is_some() {
        return Some(Daemon {
            started: None,
            _lock: lock,
        });
    }
    let started = Command::new("dockerd")
        .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(child) = started else {
        cannot_run(
            "no Docker (install it: PWS_INSTALL_DOCKER=1 scripts/install.sh, \
             or apt-get install docker.io)",
        );
        return None;
    };
    let d = Daemon {
        started: Some(child),
        _lock: lock,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while docker(&["info"]).is_none() {
        assert!(
            Instant::now() < deadline,
            "dockerd did not answer within 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Some(d)
}
