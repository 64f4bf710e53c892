//! cgroup v2 directories of the local platform: create, limit memory, freeze and thaw (waiting
//! for the kernel to say it is done), kill everything inside, remove — and the raw-syscall step
//! that moves a forked runtime into its cgroup before it execs.

use std::ffi::CStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// How long freezing, thawing or emptying a cgroup may take before it counts as an error. The
/// kernel usually finishes within a scheduler tick; a loaded 2-core VM can take longer.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `path` is on a cgroup v2 filesystem.
pub fn is_cgroup2(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == CGROUP2_SUPER_MAGIC
    }
}

/// The default root: `/sys/fs/cgroup/unified` where that is the v2 mount (hybrid hierarchy),
/// else `/sys/fs/cgroup`.
pub fn default_root() -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    if is_cgroup2(unified) {
        unified.to_path_buf()
    } else {
        PathBuf::from("/sys/fs/cgroup")
    }
}

/// Why the platform cannot create cgroups under `root`, if it cannot.
pub fn unusable_reason(root: &Path) -> Option<String> {
    if !root.is_dir() {
        return Some(format!("cgroup root {} does not exist", root.display()));
    }
    if !is_cgroup2(root) {
        return Some(format!(
            "{} is not a cgroup v2 hierarchy (pws-load needs cgroup v2; see --cgroup-root)",
            root.display()
        ));
    }
    // SAFETY: access(2) with a valid NUL-terminated path has no other precondition.
    let writable = std::ffi::CString::new(root.as_os_str().as_encoded_bytes())
        .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
        .unwrap_or(false);
    if !writable {
        return Some(format!(
            "cannot create cgroups in {}: not writable (run as root, or delegate a cgroup v2 subtree and pass it as --cgroup-root)",
            root.display()
        ));
    }
    None
}

/// One cgroup v2 directory.
#[derive(Debug, Clone)]
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates the directory (its parent must exist).
    pub fn create(path: PathBuf) -> Result<Self> {
        fs::create_dir(&path)
            .with_context(|| format!("cannot create cgroup {}", path.display()))?;
        Ok(Self { path })
    }

    /// An existing directory.
    pub fn open(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn read(&self, file: &str) -> io::Result<String> {
        fs::read_to_string(self.path.join(file))
    }

    pub fn write(&self, file: &str, value: &str) -> io::Result<()> {
        fs::write(self.path.join(file), value)
    }

    /// The value of `key` in `cgroup.events` (`populated`, `frozen`).
    pub fn event(&self, key: &str) -> io::Result<Option<u64>> {
        Ok(self.read("cgroup.events")?.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok()).flatten()
        }))
    }

    /// The kernel's CPU time of everything in the cgroup so far (`cpu.stat` `usage_usec`).
    pub fn usage_usec(&self) -> Option<u64> {
        self.read("cpu.stat").ok()?.lines().find_map(|l| {
            l.strip_prefix("usage_usec ")
                .and_then(|v| v.trim().parse().ok())
        })
    }

    pub fn is_frozen(&self) -> bool {
        matches!(self.event("frozen"), Ok(Some(1)))
    }

    /// The processes inside.
    pub fn procs(&self) -> Vec<i32> {
        self.read("cgroup.procs")
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Writes `cgroup.freeze` and waits until `cgroup.events` says `frozen` has followed.
    pub fn set_frozen(&self, frozen: bool) -> Result<()> {
        let want = u64::from(frozen);
        self.write("cgroup.freeze", if frozen { "1" } else { "0" })
            .with_context(|| format!("cannot write {}/cgroup.freeze", self.path.display()))?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            if self.event("frozen")? == Some(want) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: cgroup.events did not reach frozen {want} within {:?}",
                    self.path.display(),
                    SETTLE_TIMEOUT
                );
            }
            thread::sleep(Duration::from_micros(500));
        }
    }

    /// Thaws, then kills every process inside: `cgroup.kill` where the kernel has it (5.14+),
    /// else SIGKILL to each pid until none is left. Does not wait for them to be gone.
    pub fn kill_all(&self) -> Result<()> {
        // A frozen task cannot act on SIGKILL until thawed on older kernels; thaw first always.
        if self.path.join("cgroup.freeze").exists() && self.is_frozen() {
            let _ = self.write("cgroup.freeze", "0");
        }
        if self.path.join("cgroup.kill").exists() {
            self.write("cgroup.kill", "1")
                .with_context(|| format!("cannot write {}/cgroup.kill", self.path.display()))?;
        } else {
            for pid in self.procs() {
                // SAFETY: kill(2) has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        Ok(())
    }

    /// Waits until no process is left (`populated 0`), killing stragglers without `cgroup.kill`.
    pub fn wait_empty(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.event("populated") {
                Ok(Some(0)) | Err(_) => return true,
                _ => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
            if !self.path.join("cgroup.kill").exists() {
                for pid in self.procs() {
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Removes the (empty) directory; a missing one is fine.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            match fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                // EBUSY while the last task is still exiting.
                Err(e) if Instant::now() < deadline && e.raw_os_error() == Some(libc::EBUSY) => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot remove cgroup {}", self.path.display()))
                }
            }
        }
    }
}

/// Kills everything under `path` and removes it, deepest directories first. A missing `path`
/// is fine. Used for the platform's parent cgroup and by the tests' guards.
pub fn remove_tree(path: &Path) -> Result<()> {
    if !path.is_dir() {
        return Ok(());
    }
    let entries =
        fs::read_dir(path).with_context(|| format!("cannot list cgroup {}", path.display()))?;
    let mut first_err = None;
    for e in entries.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Err(err) = remove_tree(&e.path()) {
                first_err.get_or_insert(err);
            }
        }
    }
    let cg = Cgroup::open(path.to_path_buf());
    if let Err(err) = cg.kill_all() {
        first_err.get_or_insert(err);
    }
    cg.wait_empty(SETTLE_TIMEOUT);
    if let Err(err) = cg.remove() {
        first_err.get_or_insert(err);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Enables `controller` for the children of `cg` (`+memory` in `cgroup.subtree_control`) if
/// it is not already; `Err` says why not.
pub fn enable_controller(cg: &Cgroup, controller: &str) -> Result<(), String> {
    let enabled = |file: &str| {
        cg.read(file)
            .map(|s| s.split_whitespace().any(|c| c == controller))
            .unwrap_or(false)
    };
    if enabled("cgroup.subtree_control") {
        return Ok(());
    }
    if !enabled("cgroup.controllers") {
        return Err(format!(
            "the {controller} controller is not available in {} (not in its cgroup.controllers: on a hybrid hierarchy it may be bound to cgroup v1)",
            cg.path().display()
        ));
    }
    cg.write("cgroup.subtree_control", &format!("+{controller}"))
        .map_err(|e| {
            format!(
                "cannot enable the {controller} controller in {}/cgroup.subtree_control: {e}",
                cg.path().display()
            )
        })
}

/// Runs in the forked child before exec: moves the calling process into the cgroup whose
/// `cgroup.procs` is `procs`, and into its own process group, so a terminal's Ctrl-C reaches
/// pws-load (which drains) and not its function instances. Only async-signal-safe calls.
pub fn enter_in_child(procs: &CStr) -> io::Result<()> {
    // SAFETY: open/write/close/setpgid on a valid NUL-terminated path and a 1-byte static
    // buffer; no allocation, no locks (we are between fork and exec).
    unsafe {
        if libc::setpgid(0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = io::Error::last_os_error();
        libc::close(fd);
        if n != 1 {
            return Err(err);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_cgroup_paths_are_recognised() {
        let d = tempfile::tempdir().unwrap();
        assert!(!is_cgroup2(d.path()));
        assert!(!is_cgroup2(Path::new("/nonexistent/x")));
        let why = unusable_reason(d.path()).unwrap();
        assert!(why.contains("not a cgroup v2"), "{why}");
        assert!(unusable_reason(Path::new("/nonexistent/x"))
            .unwrap()
            .contains("does not exist"));
    }

    #[test]
    fn events_are_read_by_key() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        let cg = Cgroup::open(d.path().to_path_buf());
        assert_eq!(cg.event("populated").unwrap(), Some(1));
        assert_eq!(cg.event("frozen").unwrap(), Some(0));
        assert_eq!(cg.event("nope").unwrap(), None);
        assert!(!cg.is_frozen());
        fs::write(d.path().join("cgroup.procs"), "12\n34\n").unwrap();
        assert_eq!(cg.procs(), vec![12, 34]);
    }
}
