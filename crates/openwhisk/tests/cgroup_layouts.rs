//! Container ids resolved to cgroups on each runtime's layout, built in a temporary directory
//! the way the kernel shows it (`cgroup.controllers` in a v2 hierarchy root, `cgroup.procs` in
//! every v1 one).

use std::fs;
use std::path::{Path, PathBuf};

use pws_openwhisk::cgroup::{Resolver, MAX_DEPTH, MISS_RETRY};

const ID: &str = "3a0c7e1bde5a6d1e8f2b8f4c1d9a0b7e6c5d4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
const UID: &str = "0d4a2f6e_7b1c_4e3a_9c8d_5f6e7a8b9c0d";

fn v2(root: &Path) -> PathBuf {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
    root.to_path_buf()
}

fn v1(root: &Path, ctrl: &str) -> PathBuf {
    let h = root.join(ctrl);
    fs::create_dir_all(&h).unwrap();
    fs::write(h.join("cgroup.procs"), "").unwrap();
    h
}

fn mk(p: PathBuf) -> PathBuf {
    fs::create_dir_all(&p).unwrap();
    p
}

#[test]
fn docker_cgroupfs_on_v1_prefers_perf_event_and_on_v2_the_root() {
    let t = tempfile::tempdir().unwrap();
    // v1: `/sys/fs/cgroup` holds a hierarchy per controller, plus the `cpu` symlink.
    let mut want = PathBuf::new();
    for ctrl in ["cpu,cpuacct", "memory", "perf_event", "pids"] {
        let d = mk(v1(t.path(), ctrl).join("docker").join(ID));
        if ctrl == "perf_event" {
            want = d;
        }
    }
    std::os::unix::fs::symlink(t.path().join("cpu,cpuacct"), t.path().join("cpu")).unwrap();
    let mut r = Resolver::new(vec![t.path().to_path_buf()]);
    assert_eq!(
        r.roots().len(),
        4,
        "the symlink is not a second hierarchy: {:?}",
        r.roots()
    );
    assert_eq!(r.resolve(ID), Some(want));

    let t = tempfile::tempdir().unwrap();
    let want = mk(v2(t.path()).join("docker").join(ID));
    assert_eq!(
        Resolver::new(vec![t.path().to_path_buf()]).resolve(ID),
        Some(want)
    );
}

#[test]
fn docker_with_systemd_on_v2_and_v1() {
    let t = tempfile::tempdir().unwrap();
    let want = mk(v2(t.path())
        .join("system.slice")
        .join(format!("docker-{ID}.scope")));
    mk(t.path().join("system.slice/containerd.service"));
    assert_eq!(
        Resolver::new(vec![t.path().to_path_buf()]).resolve(ID),
        Some(want)
    );

    let t = tempfile::tempdir().unwrap();
    let mem = mk(v1(t.path(), "memory")
        .join("system.slice")
        .join(format!("docker-{ID}.scope")));
    mk(v1(t.path(), "systemd")
        .join("system.slice")
        .join(format!("docker-{ID}.scope")));
    // Without perf_event, the first hierarchy in name order.
    assert_eq!(
        Resolver::new(vec![t.path().to_path_buf()]).resolve(ID),
        Some(mem)
    );
}

#[test]
fn hybrid_hosts_prefer_the_unified_hierarchy() {
    let t = tempfile::tempdir().unwrap();
    mk(v1(t.path(), "memory").join("docker").join(ID));
    mk(v1(t.path(), "perf_event").join("docker").join(ID));
    let unified = v2(&t.path().join("unified"));
    let want = mk(unified
        .join("system.slice")
        .join(format!("docker-{ID}.scope")));
    let mut r = Resolver::new(vec![t.path().to_path_buf()]);
    assert_eq!(r.roots()[0], unified.as_path());
    assert_eq!(r.resolve(ID), Some(want));
    // The same when the mounts are given one by one, v1 first.
    let mut r = Resolver::new(vec![
        t.path().join("memory"),
        t.path().join("perf_event"),
        unified.clone(),
    ]);
    assert_eq!(r.roots()[0], unified.as_path());
    assert!(r.resolve(ID).unwrap().starts_with(&unified));
}

#[test]
fn kubernetes_with_systemd_for_each_runtime() {
    let t = tempfile::tempdir().unwrap();
    let root = v2(t.path());
    let burstable = root.join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID}.slice"
    ));
    let ids: Vec<String> = (1..=4).map(|i| format!("{i}{}", &ID[1..])).collect();
    let containerd = mk(burstable.join(format!("cri-containerd-{}.scope", ids[0])));
    let docker = mk(burstable.join(format!("docker-{}.scope", ids[1])));
    // CRI-O's monitor sits next to the container, with the same id: not the container.
    mk(burstable.join(format!("crio-conmon-{}.scope", ids[2])));
    let crio = mk(burstable.join(format!("crio-{}.scope", ids[2])));
    // Guaranteed pods sit directly under kubepods.slice.
    let guaranteed = mk(root.join(format!(
        "kubepods.slice/kubepods-pod{UID}.slice/cri-containerd-{}.scope",
        ids[3]
    )));
    let mut r = Resolver::new(vec![root]);
    assert_eq!(r.resolve(&ids[0]), Some(containerd));
    assert_eq!(r.resolve(&ids[1]), Some(docker));
    assert_eq!(r.resolve(&ids[2]), Some(crio));
    assert_eq!(r.resolve(&ids[3]), Some(guaranteed));
}

#[test]
fn kubernetes_with_cgroupfs_for_each_qos_class() {
    let t = tempfile::tempdir().unwrap();
    let root = v1(t.path(), "perf_event");
    let ids: Vec<String> = (1..=3).map(|i| format!("{i}{}", &ID[1..])).collect();
    let burstable = mk(root
        .join(format!("kubepods/burstable/pod{UID}"))
        .join(&ids[0]));
    let guaranteed = mk(root.join(format!("kubepods/pod{UID}")).join(&ids[1]));
    let besteffort = mk(root
        .join(format!("kubepods/besteffort/pod{UID}"))
        .join(&ids[2]));
    let mut r = Resolver::new(vec![t.path().to_path_buf()]);
    assert_eq!(r.resolve(&ids[0]), Some(burstable));
    assert_eq!(r.resolve(&ids[1]), Some(guaranteed));
    assert_eq!(r.resolve(&ids[2]), Some(besteffort));
}

#[test]
fn the_local_platform_layout_by_id_or_by_name() {
    let t = tempfile::tempdir().unwrap();
    let root = v2(t.path());
    let by_id = mk(root.join("pws-load-4242").join(ID));
    let by_name = mk(root.join("pws-load-4242").join("pws-load-4242-c7"));
    mk(root.join("pws-load-4242/unrelated"));
    let mut r = Resolver::new(vec![root]);
    assert_eq!(r.resolve(ID), Some(by_id));
    assert_eq!(r.resolve("pws-load-4242-c7"), Some(by_name));
}

#[test]
fn unique_prefixes_of_twelve_hex_digits_resolve() {
    let t = tempfile::tempdir().unwrap();
    let root = v2(t.path());
    let one = mk(root.join("system.slice").join(format!("docker-{ID}.scope")));
    // Two containers sharing their first 12 digits, not 13.
    let a = format!("abcdef012345a{}", &ID[13..]);
    let b = format!("abcdef012345b{}", &ID[13..]);
    mk(root.join("docker").join(&a));
    mk(root.join("docker").join(&b));
    let mut r = Resolver::new(vec![root.clone()]);
    assert_eq!(r.resolve(&ID[..12]), Some(one.clone()));
    assert_eq!(
        r.resolve(&ID[..12].to_uppercase()),
        Some(one),
        "hex in either case"
    );
    assert_eq!(r.resolve(&ID[..11]), None, "too short to be a prefix");
    assert_eq!(r.resolve("abcdef012345"), None, "ambiguous");
    assert_eq!(r.resolve(&a[..13]), Some(root.join("docker").join(&a)));
}

#[test]
fn answers_are_cached_and_misses_retried_later() {
    let t = tempfile::tempdir().unwrap();
    let root = v2(t.path());
    let dir = mk(root.join("docker").join(ID));
    let mut r = Resolver::new(vec![root.clone()]);
    assert_eq!(r.resolve(ID), Some(dir.clone()));
    // The container is gone: its events still name the cgroup it had.
    fs::remove_dir(&dir).unwrap();
    assert_eq!(r.resolve(ID), Some(dir.clone()));

    let other = format!("f{}", &ID[1..]);
    assert_eq!(r.resolve(&other), None);
    let created = mk(root.join("docker").join(&other));
    assert_eq!(
        r.resolve(&other),
        None,
        "a miss is not looked for again at once"
    );
    std::thread::sleep(MISS_RETRY + std::time::Duration::from_millis(50));
    assert_eq!(r.resolve(&other), Some(created));
}

#[test]
fn the_search_is_bounded_in_depth_and_stays_inside_the_roots() {
    let t = tempfile::tempdir().unwrap();
    let root = v2(&t.path().join("cg"));
    let mut deep = root.clone();
    for i in 0..MAX_DEPTH {
        deep = deep.join(format!("level{i}"));
    }
    mk(deep.join(ID));
    let at_limit = format!("e{}", &ID[1..]);
    let mut shallow = root.clone();
    for i in 0..MAX_DEPTH - 1 {
        shallow = shallow.join(format!("level{i}"));
    }
    let found = mk(shallow.join(&at_limit));
    let mut r = Resolver::new(vec![root.clone()]);
    assert_eq!(
        r.resolve(&at_limit),
        Some(found),
        "{MAX_DEPTH} levels below the root"
    );
    assert_eq!(r.resolve(ID), None, "one level deeper");

    // Names that would leave the hierarchy are not ids.
    mk(t.path().join("outside"));
    for bad in ["", ".", "..", "../outside", "docker/x", "a\0b"] {
        assert_eq!(r.resolve(bad), None, "{bad:?}");
    }
    // Symlinks are not followed.
    mk(t.path().join("elsewhere").join("pws-load-9-c1"));
    std::os::unix::fs::symlink(t.path().join("elsewhere"), root.join("link")).unwrap();
    assert_eq!(Resolver::new(vec![root]).resolve("pws-load-9-c1"), None);
}
