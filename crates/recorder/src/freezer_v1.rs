//! Freeze and thaw on the cgroup v1 freezer hierarchy.
//!
//! On cgroup v2 the kernel reports freezing through the `cgroup:cgroup_freeze` and
//! `cgroup:cgroup_unfreeze` tracepoints, which the perf rings record. The v1 freezer (what
//! `docker pause` and `runc pause` use on hosts still on v1 or hybrid cgroups) has no
//! tracepoint, so this source watches it instead: every write to a `freezer.state` file
//! raises an inotify IN_MODIFY event (the VFS reports writes on any filesystem, cgroupfs
//! included), and the watcher then reads the file to learn the new state. New cgroups are
//! watched as their IN_CREATE arrives, and read at once, so one frozen right after its mkdir is
//! still seen.
//!
//! What this cannot give, and the trace says so: the time is when the recorder noticed the
//! write (its thread wakes within microseconds of it, not at the kernel's own instant); a
//! freeze and a thaw both written before the watcher reads the file show as one unchanged
//! state (counted as `unchanged` in the source's statistics); and a cgroup frozen only because
//! an ancestor was (no write to its own file) is not reported — container engines freeze each
//! container's own cgroup.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use pws_trace::records::{CgroupEvent, CgroupEvents, CgroupOp, SourceStats};

use crate::clock::monotonic_ns;
use crate::snapshot::Hierarchy;

const STATE_FILE: &str = "freezer.state";

/// The v1 hierarchy with the freezer controller, if one is mounted.
pub fn find(hierarchies: &[Hierarchy]) -> Option<&Hierarchy> {
    hierarchies
        .iter()
        .find(|h| h.id != 0 && h.controllers.split(',').any(|c| c == "freezer"))
}

/// What a `freezer.state` read says: FREEZING and FROZEN both mean a freeze was asked for.
fn is_frozen(state: &str) -> Option<bool> {
    match state.trim() {
        "FROZEN" | "FREEZING" => Some(true),
        "THAWED" => Some(false),
        _ => None,
    }
}

/// Watches one v1 freezer hierarchy.
pub struct Watcher {
    inotify: Inotify,
    mount: PathBuf,
    hierarchy: u32,
    /// Watched directory → (path relative to the mount, cgroup id, last state seen).
    dirs: BTreeMap<WatchDescriptor, Dir>,
    stats: SourceStats,
    unchanged: u64,
}

#[derive(Debug, Clone)]
struct Dir {
    rel: String,
    id: u64,
    frozen: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("mount", &self.mount)
            .field("cgroups", &self.dirs.len())
            .finish()
    }
}

impl Watcher {
    /// Watches every cgroup of the hierarchy. Cgroups already frozen are reported as frozen at
    /// `ts_ns` (with a detail saying so), so a container paused before recording began is not
    /// taken for a running one.
    pub fn new(h: &Hierarchy, ts_ns: u64) -> io::Result<(Self, Vec<CgroupEvent>)> {
        let mut w = Self {
            inotify: Inotify::init()?,
            mount: h.mount.clone(),
            hierarchy: h.id,
            dirs: BTreeMap::new(),
            stats: SourceStats {
                name: "cgroups:v1-freezer".into(),
                ..SourceStats::default()
            },
            unchanged: 0,
        };
        let mut events = Vec::new();
        let root = w.mount.clone();
        w.watch_tree(&root, ts_ns, "frozen when recording started", &mut events)?;
        Ok((w, events))
    }

    /// Number of cgroups watched now.
    pub fn watched(&self) -> usize {
        self.dirs.len()
    }

    /// Adds `dir` and everything below it. A directory that vanished meanwhile is skipped.
    fn watch_tree(
        &mut self,
        dir: &Path,
        ts_ns: u64,
        why: &str,
        out: &mut Vec<CgroupEvent>,
    ) -> io::Result<()> {
        let mask = WatchMask::CREATE | WatchMask::MODIFY | WatchMask::ONLYDIR;
        let wd = match self.inotify.watches().add(dir, mask) {
            Ok(wd) => wd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if self.dirs.contains_key(&wd) {
            return Ok(()); // found by a parent's scan and by its own IN_CREATE
        }
        let Ok(meta) = fs::metadata(dir) else {
            return Ok(());
        };
        let rel = match dir.strip_prefix(&self.mount) {
            Ok(p) if p.as_os_str().is_empty() => "/".to_owned(),
            Ok(p) => format!("/{}", p.display()),
            Err(_) => dir.display().to_string(),
        };
        let state = fs::read_to_string(dir.join(STATE_FILE)).unwrap_or_default();
        let frozen = is_frozen(&state).unwrap_or(false);
        let d = Dir {
            rel,
            id: meta.ino(),
            frozen,
        };
        if frozen {
            out.push(self.event(&d, ts_ns, CgroupOp::Freeze, &state, why));
        }
        self.dirs.insert(wd, d);
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    self.watch_tree(&e.path(), ts_ns, why, out)?;
                }
            }
        }
        Ok(())
    }

    fn event(&self, d: &Dir, ts_ns: u64, op: CgroupOp, state: &str, why: &str) -> CgroupEvent {
        CgroupEvent {
            ts_ns,
            op,
            cgroup_id: d.id,
            hierarchy: self.hierarchy,
            path: d.rel.clone(),
            pid: 0,
            detail: format!("v1 freezer.state={} ({why})", state.trim()),
        }
    }

    /// Handles every event queued now (non-blocking); returns the freezes and thaws seen.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Vec<CgroupEvent>> {
        let mut out = Vec::new();
        loop {
            let events = match self.inotify.read_events(buf) {
                Ok(ev) => ev,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) => return Err(e),
            };
            let ts_ns = monotonic_ns();
            // Collected first: handling needs `&mut self` while `events` borrows the buffer.
            let batch: Vec<(WatchDescriptor, EventMask, Option<String>)> = events
                .map(|e| {
                    let name = e.name.map(|n| n.to_string_lossy().into_owned());
                    (e.wd, e.mask, name)
                })
                .collect();
            if batch.is_empty() {
                return Ok(out);
            }
            for (wd, mask, name) in batch {
                self.handle(wd, mask, name.as_deref(), ts_ns, &mut out);
            }
        }
    }

    fn handle(
        &mut self,
        wd: WatchDescriptor,
        mask: EventMask,
        name: Option<&str>,
        ts_ns: u64,
        out: &mut Vec<CgroupEvent>,
    ) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            // The kernel dropped events: say so, and resynchronise every state by reading it.
            self.stats.errors += 1;
            self.stats.last_error = "inotify queue overflowed; states re-read".into();
            let wds: Vec<WatchDescriptor> = self.dirs.keys().cloned().collect();
            for wd in wds {
                self.reread(wd, ts_ns, "re-read after an inotify overflow", out);
            }
            return;
        }
        if mask.contains(EventMask::IGNORED) {
            self.dirs.remove(&wd); // the cgroup was removed
            return;
        }
        let Some(parent) = self.dirs.get(&wd) else {
            return;
        };
        if mask.contains(EventMask::CREATE) && mask.contains(EventMask::ISDIR) {
            if let Some(n) = name {
                let dir = self.mount.join(parent.rel.trim_start_matches('/')).join(n);
                if let Err(e) = self.watch_tree(&dir, ts_ns, "frozen when first seen", out) {
                    self.stats.errors += 1;
                    self.stats.last_error = format!("cannot watch {}: {e}", dir.display());
                }
            }
        } else if mask.contains(EventMask::MODIFY) && name == Some(STATE_FILE) {
            self.stats.reads += 1;
            self.reread(wd, ts_ns, "write to freezer.state noticed", out);
        }
    }

    /// Reads one cgroup's state and reports a change.
    fn reread(&mut self, wd: WatchDescriptor, ts_ns: u64, why: &str, out: &mut Vec<CgroupEvent>) {
        let Some(d) = self.dirs.get(&wd).cloned() else {
            return;
        };
        let path = self
            .mount
            .join(d.rel.trim_start_matches('/'))
            .join(STATE_FILE);
        let Ok(state) = fs::read_to_string(&path) else {
            return; // removed meanwhile: its rmdir comes from the tracepoint
        };
        match is_frozen(&state) {
            Some(f) if f != d.frozen => {
                let op = if f { CgroupOp::Freeze } else { CgroupOp::Thaw };
                out.push(self.event(&d, ts_ns, op, &state, why));
                if let Some(x) = self.dirs.get_mut(&wd) {
                    x.frozen = f;
                }
            }
            Some(_) => self.unchanged += 1,
            None => {
                self.stats.errors += 1;
                self.stats.last_error =
                    format!("unexpected state {:?} in {}", state.trim(), path.display());
            }
        }
    }

    /// Statistics for the trace: `reads` counts writes noticed, `errors` overflows and
    /// unreadable states; unchanged re-reads are in `last_error` only when nothing failed.
    fn stats(&self) -> SourceStats {
        let mut s = self.stats.clone();
        if s.last_error.is_empty() && self.unchanged > 0 {
            s.last_error = format!(
                "{} writes left the state unchanged (repeated writes, or a freeze and thaw both before the read)",
                self.unchanged
            );
        }
        s
    }
}

/// The watcher's thread, stopped through a socket it polls with inotify's: it sleeps until an
/// event or the stop, never waking to look at a flag.
pub struct Running {
    stop: UnixStream,
    thread: JoinHandle<SourceStats>,
}

impl Running {
    /// Reads what is left and returns the source's statistics; Err if the thread panicked.
    pub fn finish(mut self) -> std::thread::Result<SourceStats> {
        // A failed write means the thread is gone already (its end was dropped): join says how.
        let _ = self.stop.write_all(&[1]);
        self.thread.join()
    }
}

/// Runs the watcher on its own thread until `finish`; each batch of events goes to `tx` as one
/// CgroupEvents block.
pub fn spawn<T: From<CgroupEvents> + Send + 'static>(
    mut w: Watcher,
    tx: Sender<T>,
) -> io::Result<Running> {
    let (stop, stop_rx) = UnixStream::pair()?;
    let thread = std::thread::Builder::new()
        .name("pws-freezer-v1".into())
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let mut pfd = [
                    libc::pollfd {
                        fd: w.inotify.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: stop_rx.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: two valid pollfds for the duration of the call. An error (EINTR)
                // only means another turn.
                unsafe { libc::poll(pfd.as_mut_ptr(), 2, -1) };
                // A byte or the other end gone: stop, after reading what is there.
                let stopping = pfd[1].revents != 0;
                match w.read(&mut buf) {
                    Ok(events) if !events.is_empty() => {
                        if tx.send(CgroupEvents { events }.into()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        w.stats.errors += 1;
                        w.stats.last_error = format!("inotify read failed: {e}");
                        break;
                    }
                }
                if stopping {
                    break;
                }
            }
            w.stats()
        })?;
    Ok(Running { stop, thread })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_read_as_the_kernel_writes_them() {
        assert_eq!(is_frozen("FROZEN\n"), Some(true));
        assert_eq!(is_frozen("FREEZING\n"), Some(true));
        assert_eq!(is_frozen("THAWED\n"), Some(false));
        assert_eq!(is_frozen(""), None);
    }

    #[test]
    fn only_a_v1_freezer_hierarchy_is_found() {
        let h = |id, c: &str| Hierarchy {
            id,
            mount: PathBuf::from(format!("/sys/fs/cgroup/{c}")),
            controllers: c.into(),
        };
        let hs = [h(0, ""), h(3, "cpu,cpuacct"), h(6, "freezer")];
        assert_eq!(find(&hs).map(|h| h.id), Some(6));
        assert!(find(&hs[..2]).is_none());
    }

    /// A plain directory tree stands in for the hierarchy: inotify reports writes to
    /// `freezer.state` there exactly as on cgroupfs, so the whole watcher runs unprivileged.
    #[test]
    fn writes_creations_and_a_cgroup_frozen_before_start_are_reported() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::write(root.join(STATE_FILE), "THAWED\n").unwrap();
        fs::create_dir(root.join("paused")).unwrap();
        fs::write(root.join("paused").join(STATE_FILE), "FROZEN\n").unwrap();
        let h = Hierarchy {
            id: 6,
            mount: root.to_owned(),
            controllers: "freezer".into(),
        };
        let (mut w, at_start) = Watcher::new(&h, 5).unwrap();
        assert_eq!(at_start.len(), 1);
        assert_eq!(
            (at_start[0].op, at_start[0].path.as_str(), at_start[0].ts_ns),
            (CgroupOp::Freeze, "/paused", 5)
        );

        let mut buf = vec![0u8; 4096];
        let c = root.join("docker").join("abc");
        fs::create_dir_all(&c).unwrap();
        // The watcher learns of `docker` (and finds `abc` under it) only when it reads.
        assert!(w.read(&mut buf).unwrap().is_empty());
        fs::write(c.join(STATE_FILE), "THAWED\n").unwrap();
        assert!(w.read(&mut buf).unwrap().is_empty(), "no change, no event");
        fs::write(c.join(STATE_FILE), "FROZEN\n").unwrap();
        let ev = w.read(&mut buf).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].op, ev[0].path.as_str()),
            (CgroupOp::Freeze, "/docker/abc")
        );
        assert_eq!(ev[0].hierarchy, 6);
        assert_eq!(ev[0].cgroup_id, fs::metadata(&c).unwrap().ino());
        fs::write(c.join(STATE_FILE), "THAWED\n").unwrap();
        fs::write(root.join("paused").join(STATE_FILE), "THAWED\n").unwrap();
        let ev = w.read(&mut buf).unwrap();
        let got: Vec<(CgroupOp, &str)> = ev.iter().map(|e| (e.op, e.path.as_str())).collect();
        assert_eq!(
            got,
            [(CgroupOp::Thaw, "/docker/abc"), (CgroupOp::Thaw, "/paused")]
        );
        assert_eq!(w.watched(), 4);
        fs::remove_dir_all(root.join("docker")).unwrap();
        w.read(&mut buf).unwrap();
        assert_eq!(w.watched(), 2, "removed directories are forgotten");
    }
}
