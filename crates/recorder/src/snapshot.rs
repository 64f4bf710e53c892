//! What existed when recording started, as `perf record` synthesizes it: every cgroup (id ↔
//! path, on cgroup v2 and on each v1 hierarchy) and every task's cgroups. Without it, tasks
//! and containers created before the recorder would have no names in the trace.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use pws_trace::records::{CgroupEvent, CgroupOp};

/// A mounted cgroup hierarchy: where, and its id (0 for the v2 unified hierarchy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub id: u32,
    pub mount: PathBuf,
    /// Controllers (v1), e.g. "cpu,cpuacct" or "name=systemd"; empty for v2.
    pub controllers: String,
}

/// Mounted hierarchies from /proc/self/mountinfo, v1 ids matched through /proc/self/cgroup.
pub fn hierarchies(mountinfo: &str, self_cgroup: &str) -> Vec<Hierarchy> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    for line in self_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        if let (Some(id), Some(ctrl)) = (f.next(), f.next()) {
            if let Ok(id) = id.parse::<u32>() {
                let mut c: Vec<&str> = ctrl.split(',').filter(|s| !s.is_empty()).collect();
                c.sort_unstable();
                ids.insert(c.join(","), id);
            }
        }
    }
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        // fields: id parent major:minor root mountpoint options [optional…] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split(' ').nth(4).unwrap_or("");
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let superopts = r.nth(1).unwrap_or("");
        let mount = PathBuf::from(mount.replace("\\040", " "));
        match fstype {
            "cgroup2" => out.push(Hierarchy {
                id: 0,
                mount,
                controllers: String::new(),
            }),
            "cgroup" => {
                let mut c: Vec<&str> = superopts
                    .split(',')
                    .filter(|o| {
                        !matches!(
                            *o,
                            "rw" | "ro"
                                | "nosuid"
                                | "nodev"
                                | "noexec"
                                | "relatime"
                                | "clone_children"
                                | "xattr"
                                | "noprefix"
                        ) && !o.starts_with("release_agent")
                    })
                    .collect();
                c.sort_unstable();
                let key = c.join(",");
                if let Some(&id) = ids.get(&key) {
                    out.push(Hierarchy {
                        id,
                        mount,
                        controllers: key,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Every cgroup directory below `h.mount`, as "exists" events at `ts_ns`.
pub fn cgroups(h: &Hierarchy, ts_ns: u64, out: &mut Vec<CgroupEvent>) {
    let mut stack = vec![h.mount.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        let rel = dir
            .strip_prefix(&h.mount)
            .map(|p| format!("/{}", p.display()))
            .unwrap_or_default();
        out.push(CgroupEvent {
            ts_ns,
            op: CgroupOp::Exists,
            // On cgroup v2 the kernel's cgroup id (PERF_SAMPLE_CGROUP) is the inode number.
            cgroup_id: meta.ino(),
            hierarchy: h.id,
            path: if rel == "/" {
                "/".into()
            } else {
                rel.trim_end_matches('/').to_owned()
            },
            pid: 0,
            detail: "snapshot".into(),
        });
        // A v2 cgroup frozen already (a container paused before recording began) has no
        // freeze tracepoint to come: say it is frozen now. v1 freezers: `freezer_v1` does.
        if h.id == 0 {
            if let Some(why) = frozen_v2(&dir) {
                let mut e = out[out.len() - 1].clone();
                e.op = CgroupOp::Freeze;
                e.detail = format!("snapshot: {why} when recording started");
                out.push(e);
            }
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
}

/// Whether a v2 cgroup is frozen: asked for (`cgroup.freeze` 1) or in effect, through an
/// ancestor (`frozen 1` in `cgroup.events`); the file that says so.
fn frozen_v2(dir: &Path) -> Option<&'static str> {
    let own = fs::read_to_string(dir.join("cgroup.freeze")).unwrap_or_default();
    if own.trim() == "1" {
        return Some("cgroup.freeze=1");
    }
    let events = fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
    events
        .lines()
        .any(|l| l.trim() == "frozen 1")
        .then_some("cgroup.events frozen 1")
}

/// Every task's cgroup on every hierarchy, as "attach" events at `ts_ns`; `ids` maps
/// (hierarchy, path) to cgroup id.
pub fn tasks(
    proc_root: &Path,
    ts_ns: u64,
    ids: &HashMap<(u32, String), u64>,
    out: &mut Vec<CgroupEvent>,
) {
    let Ok(procs) = fs::read_dir(proc_root) else {
        return;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(threads) = fs::read_dir(p.path().join("task")) else {
            continue;
        };
        for t in threads.flatten() {
            let Ok(tid) = t.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // Tasks exit while we look: whatever cannot be read is simply gone.
            let Ok(cg) = fs::read_to_string(t.path().join("cgroup")) else {
                continue;
            };
            let comm = fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            for line in cg.lines() {
                let mut f = line.splitn(3, ':');
                let (Some(h), Some(_), Some(path)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let Ok(h) = h.parse::<u32>() else { continue };
                out.push(CgroupEvent {
                    ts_ns,
                    op: CgroupOp::Attach,
                    cgroup_id: ids.get(&(h, path.to_owned())).copied().unwrap_or(0),
                    hierarchy: h,
                    path: path.to_owned(),
                    pid: tid,
                    detail: format!("snapshot comm={}", comm.trim_end()),
                });
            }
        }
    }
}

/// The whole snapshot: cgroups of every mounted hierarchy (or only the v2 one at
/// `cgroup_root`, if given), then every task's membership.
pub fn take(cgroup_root: Option<&Path>, ts_ns: u64) -> (Vec<CgroupEvent>, String) {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let self_cg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut hs = hierarchies(&mountinfo, &self_cg);
    if let Some(root) = cgroup_root {
        hs = vec![Hierarchy {
            id: 0,
            mount: root.to_owned(),
            controllers: String::new(),
        }];
    }
    let mut events = Vec::new();
    for h in &hs {
        cgroups(h, ts_ns, &mut events);
    }
    let n_cgroups = events.iter().filter(|e| e.op == CgroupOp::Exists).count();
    let n_frozen = events.len() - n_cgroups;
    let n_before_tasks = events.len();
    let ids: HashMap<(u32, String), u64> = events
        .iter()
        .map(|e| ((e.hierarchy, e.path.clone()), e.cgroup_id))
        .collect();
    tasks(Path::new("/proc"), ts_ns, &ids, &mut events);
    let where_: Vec<String> = hs
        .iter()
        .map(|h| format!("{} (hierarchy {})", h.mount.display(), h.id))
        .collect();
    let detail = format!(
        "{n_cgroups} cgroups ({n_frozen} frozen) and {} task memberships at start; {}",
        events.len() - n_before_tasks,
        where_.join(", ")
    );
    (events, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
24 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
25 24 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
26 24 0:24 / /sys/fs/cgroup/systemd rw,nosuid - cgroup cgroup rw,xattr,name=systemd
27 24 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
28 24 0:26 / /sys/fs/cgroup/freezer rw,nosuid - cgroup cgroup rw,freezer
";
    const SELF_CGROUP: &str =
        "4:freezer:/\n3:cpu,cpuacct:/\n1:name=systemd:/init.scope\n0::/init.scope\n";

    #[test]
    fn hybrid_hierarchies_get_their_ids() {
        let hs = hierarchies(MOUNTINFO, SELF_CGROUP);
        let got: Vec<(u32, &str)> = hs
            .iter()
            .map(|h| (h.id, h.mount.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "/sys/fs/cgroup/unified"),
                (1, "/sys/fs/cgroup/systemd"),
                (3, "/sys/fs/cgroup/cpu,cpuacct"),
                (4, "/sys/fs/cgroup/freezer")
            ]
        );
    }

    #[test]
    fn a_cgroup_tree_is_walked_with_inode_ids() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("a/b")).unwrap();
        let h = Hierarchy {
            id: 0,
            mount: d.path().to_owned(),
            controllers: String::new(),
        };
        let mut ev = Vec::new();
        cgroups(&h, 5, &mut ev);
        let mut paths: Vec<&str> = ev.iter().map(|e| e.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(paths, ["/", "/a", "/a/b"]);
        assert!(ev.iter().all(|e| e.op == CgroupOp::Exists));
        let b = ev.iter().find(|e| e.path == "/a/b").unwrap();
        assert_eq!(
            b.cgroup_id,
            fs::metadata(d.path().join("a/b")).unwrap().ino()
        );
    }

    #[test]
    fn v2_cgroups_frozen_at_start_are_said_to_be() {
        // What the kernel shows: a frozen cgroup's own file, and its child frozen through it.
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("paused/child")).unwrap();
        fs::create_dir_all(d.path().join("running")).unwrap();
        fs::write(d.path().join("paused/cgroup.freeze"), "1\n").unwrap();
        fs::write(d.path().join("paused/child/cgroup.freeze"), "0\n").unwrap();
        fs::write(
            d.path().join("paused/child/cgroup.events"),
            "populated 1\nfrozen 1\n",
        )
        .unwrap();
        fs::write(d.path().join("running/cgroup.freeze"), "0\n").unwrap();
        fs::write(
            d.path().join("running/cgroup.events"),
            "populated 1\nfrozen 0\n",
        )
        .unwrap();
        let h = Hierarchy {
            id: 0,
            mount: d.path().to_owned(),
            controllers: String::new(),
        };
        let mut ev = Vec::new();
        cgroups(&h, 5, &mut ev);
        let mut frozen: Vec<(&str, &str)> = ev
            .iter()
            .filter(|e| e.op == CgroupOp::Freeze)
            .map(|e| (e.path.as_str(), e.detail.as_str()))
            .collect();
        frozen.sort_unstable();
        assert_eq!(
            frozen,
            [
                (
                    "/paused",
                    "snapshot: cgroup.freeze=1 when recording started"
                ),
                (
                    "/paused/child",
                    "snapshot: cgroup.events frozen 1 when recording started"
                )
            ]
        );
        assert!(ev
            .iter()
            .filter(|e| e.op == CgroupOp::Freeze)
            .all(|e| e.ts_ns == 5));
    }

    #[test]
    fn this_process_is_in_the_task_snapshot() {
        let (events, detail) = take(None, 1);
        let me = std::process::id();
        assert!(
            events
                .iter()
                .any(|e| e.op == CgroupOp::Attach && e.pid == me),
            "{detail}"
        );
        assert!(
            events
                .iter()
                .any(|e| e.op == CgroupOp::Exists && e.path == "/"),
            "{detail}"
        );
    }
}
