//! A container id to its cgroup directory on this host.
//!
//! Where container runtimes put a container `<id>`, under a hierarchy root `<root>`:
//! - Docker, cgroupfs driver: `<root>/docker/<id>` (on cgroup v1, one such `<root>` per
//!   controller: `/sys/fs/cgroup/<ctrl>/docker/<id>`);
//! - Docker, systemd driver: `<root>/system.slice/docker-<id>.scope`;
//! - Kubernetes, systemd driver:
//!   `<root>/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/<rt>-<id>.scope`
//!   with `<rt>` `cri-containerd`, `docker` or `crio` (guaranteed pods sit directly in
//!   `kubepods.slice`);
//! - Kubernetes, cgroupfs driver: `<root>/kubepods/<qos>/pod<uid>/<id>`,
//!   `<root>/kubepods/pod<uid>/<id>`;
//! - the local platform `pws-load`: `<root>/pws-load-<pid>/<id>`.
//!
//! The two Docker layouts are tried directly; everything else is found by a breadth-first
//! search, at most [`MAX_DEPTH`] levels and [`MAX_VISITED`] directories deep, for a directory
//! named exactly `<id>` or ending in `-<id>.scope` (not `crio-conmon-<id>.scope`, CRI-O's
//! monitor process). Hierarchy roots holding `cgroup.controllers` (v2, unified) are searched
//! first, so the unified path wins on hybrid hosts; among v1 hierarchies `perf_event` (the one
//! perf counts cgroups in) comes first.
//!
//! An id of 12 to 63 hex digits is taken as a prefix (`docker ps` shows 12) and resolves only
//! when exactly one container id starts with it. Answers are cached, also after the container
//! is gone (its events still name its cgroup); a miss is retried after [`MISS_RETRY`].

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Directory levels searched below a hierarchy root.
pub const MAX_DEPTH: usize = 6;
/// Directories read at most per search.
pub const MAX_VISITED: usize = 100_000;
/// How long an id not found is not looked for again.
pub const MISS_RETRY: Duration = Duration::from_secs(1);
/// Answers cached at most; the cache starts over beyond.
const CACHE_CAP: usize = 65_536;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Hierarchy {
    root: PathBuf,
    unified: bool,
}

#[derive(Debug, Clone)]
pub struct Resolver {
    hierarchies: Vec<Hierarchy>,
    cache: HashMap<String, PathBuf>,
    misses: HashMap<String, Instant>,
}

impl Resolver {
    /// Searches under `roots`: cgroup hierarchy roots (holding `cgroup.controllers` or
    /// `cgroup.procs`), or directories holding them (`/sys/fs/cgroup` on a v1 host, with a
    /// hierarchy per controller). A root that is neither is searched as it is.
    pub fn new(roots: Vec<PathBuf>) -> Self {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for root in roots {
            let found = if is_hierarchy(&root) {
                vec![hierarchy(root)]
            } else {
                let mut subs: Vec<Hierarchy> = sorted_subdirs(&root)
                    .into_iter()
                    .filter(|d| is_hierarchy(d))
                    .map(hierarchy)
                    .collect();
                if subs.is_empty() {
                    subs.push(hierarchy(root));
                }
                subs
            };
            for h in found {
                if !hierarchies.iter().any(|k| k.root == h.root) {
                    hierarchies.push(h);
                }
            }
        }
        // Stable: v2 first, then perf_event, then the others in the order given.
        hierarchies.sort_by_key(|h| (!h.unified, !is_perf_event(&h.root)));
        Self {
            hierarchies,
            cache: HashMap::new(),
            misses: HashMap::new(),
        }
    }

    /// The cgroup hierarchies mounted here, from `/proc/self/mountinfo`; none (every id
    /// unresolved) when it cannot be read.
    pub fn from_host() -> Self {
        let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Self::new(cgroup_mounts(&text))
    }

    /// The hierarchy roots searched, in order.
    pub fn roots(&self) -> Vec<&Path> {
        self.hierarchies.iter().map(|h| h.root.as_path()).collect()
    }

    /// The absolute cgroup directory of container `container_id` (a full id, a unique prefix of
    /// at least 12 hex digits, or any other name a runtime gives its cgroup directory).
    pub fn resolve(&mut self, container_id: &str) -> Option<PathBuf> {
        let id = container_id.trim();
        // Ids become path components: nothing that could leave the hierarchy.
        if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\0']) || id.len() > 255 {
            return None;
        }
        if let Some(p) = self.cache.get(id) {
            return Some(p.clone());
        }
        if self
            .misses
            .get(id)
            .is_some_and(|t| t.elapsed() < MISS_RETRY)
        {
            return None;
        }
        let found = self.search(id);
        match &found {
            Some(p) => {
                if self.cache.len() >= CACHE_CAP {
                    self.cache.clear();
                }
                self.cache.insert(id.to_owned(), p.clone());
                self.misses.remove(id);
            }
            None => {
                if self.misses.len() >= CACHE_CAP {
                    self.misses.clear();
                }
                self.misses.insert(id.to_owned(), Instant::now());
            }
        }
        found
    }

    fn search(&self, id: &str) -> Option<PathBuf> {
        let prefix = (12..64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit());
        for h in &self.hierarchies {
            if prefix {
                match search_prefix(&h.root, id) {
                    Prefix::One(p) => return Some(p),
                    Prefix::Ambiguous => return None,
                    Prefix::None => {}
                }
            } else {
                for direct in [
                    h.root.join("docker").join(id),
                    h.root
                        .join("system.slice")
                        .join(format!("docker-{id}.scope")),
                ] {
                    if direct.is_dir() {
                        return Some(direct);
                    }
                }
                if let Some(p) = bfs(&h.root, 1, |name| id_in_name(name) == Some(id)).pop() {
                    return Some(p);
                }
            }
        }
        None
    }
}

enum Prefix {
    None,
    One(PathBuf),
    Ambiguous,
}

/// The one container whose id starts with `prefix`, in one hierarchy.
fn search_prefix(root: &Path, prefix: &str) -> Prefix {
    let hits = bfs(root, usize::MAX, |name| {
        id_in_name(name).is_some_and(|i| {
            i.len() >= prefix.len()
                && i.bytes().all(|b| b.is_ascii_hexdigit())
                && i[..prefix.len()].eq_ignore_ascii_case(prefix)
        })
    });
    let mut ids: Vec<&str> = hits
        .iter()
        .filter_map(|p| id_in_name(p.file_name()?.to_str()?))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.len() {
        0 => Prefix::None,
        1 => Prefix::One(hits[0].clone()),
        _ => Prefix::Ambiguous,
    }
}

/// The container id a cgroup directory's name carries: `<rt>-<id>.scope` or the name itself.
fn id_in_name(name: &str) -> Option<&str> {
    match name.strip_suffix(".scope") {
        // CRI-O's monitor sits next to the container as `crio-conmon-<id>.scope`.
        Some(stem) if stem.contains("-conmon-") => None,
        Some(stem) => stem.rsplit_once('-').map(|(_, id)| id),
        None => Some(name),
    }
}

/// Up to `limit` directories below `root` (not following symlinks) whose names match,
/// shallowest first, names in order within a level; a match is not searched below.
fn bfs(root: &Path, limit: usize, matches: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut queue = VecDeque::from([(root.to_path_buf(), 0usize)]);
    let mut visited = 0;
    while let Some((dir, depth)) = queue.pop_front() {
        visited += 1;
        if visited > MAX_VISITED {
            break;
        }
        for sub in sorted_subdirs(&dir) {
            let Some(name) = sub.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if matches(name) {
                out.push(sub);
                if out.len() >= limit {
                    return out;
                }
            } else if depth + 1 < MAX_DEPTH {
                queue.push_back((sub, depth + 1));
            }
        }
    }
    out
}

/// Subdirectories of `dir`, sorted by name; symlinks (v1's `cpu -> cpu,cpuacct`) left out.
fn sorted_subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

fn is_hierarchy(dir: &Path) -> bool {
    dir.join("cgroup.controllers").exists() || dir.join("cgroup.procs").exists()
}

fn hierarchy(root: PathBuf) -> Hierarchy {
    Hierarchy {
        unified: root.join("cgroup.controllers").exists(),
        root,
    }
}

fn is_perf_event(root: &Path) -> bool {
    root.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.split(',').any(|c| c == "perf_event"))
}

/// Mount points of `cgroup2` and `cgroup` file systems in a `/proc/<pid>/mountinfo` text,
/// v2 first.
pub fn cgroup_mounts(mountinfo: &str) -> Vec<PathBuf> {
    let mut v2 = Vec::new();
    let mut v1 = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // `id parent major:minor root mount-point options [optional…] - fstype source super`
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount), Some(fstype)) = (fields.get(4), fields.get(sep + 1)) else {
            continue;
        };
        let path = PathBuf::from(unescape_octal(mount));
        match *fstype {
            "cgroup2" if !v2.contains(&path) => v2.push(path),
            "cgroup" if !v1.contains(&path) => v1.push(path),
            _ => {}
        }
    }
    v2.extend(v1);
    v2
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_gives_cgroup_mounts_v2_first() {
        let text = "\
24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/perf_event rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,perf_event
90 30 0:40 / /mnt/my\\040cgroups rw,relatime - cgroup2 none rw
";
        let got = cgroup_mounts(text);
        let want: Vec<PathBuf> = [
            "/sys/fs/cgroup/unified",
            "/mnt/my cgroups",
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/cpu,cpuacct",
            "/sys/fs/cgroup/perf_event",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn names_carry_ids() {
        assert_eq!(id_in_name("docker-abc.scope"), Some("abc"));
        assert_eq!(id_in_name("cri-containerd-abc.scope"), Some("abc"));
        assert_eq!(id_in_name("crio-conmon-abc.scope"), None);
        assert_eq!(id_in_name("abc"), Some("abc"));
        assert_eq!(id_in_name("init.scope"), None);
    }

    #[test]
    fn the_host_resolver_only_searches_cgroup_mounts() {
        let r = Resolver::from_host();
        for root in r.roots() {
            assert!(root.is_absolute(), "{}", root.display());
        }
    }
}
