//! What machine this is: names, kernel, CPU model and the topology of every logical CPU,
//! read from uname, /proc and sysfs. Works the same on a 2-CPU VM and a 4-socket server.

use std::fs;
use std::path::Path;

use pws_trace::records::CpuInfo;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub hostname: String,
    pub kernel_release: String,
    pub kernel_version: String,
    pub arch: String,
    pub cpu_model: String,
    pub page_size: u32,
    pub cpus: Vec<CpuInfo>,
}

const UNKNOWN: u32 = u32::MAX;

impl Host {
    pub fn describe() -> Self {
        let (hostname, kernel_release, kernel_version, arch) = uname();
        // SAFETY: sysconf has no memory-safety preconditions.
        let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u32;
        Self {
            hostname,
            kernel_release,
            kernel_version,
            arch,
            cpu_model: cpu_model(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default()),
            page_size,
            cpus: cpus(
                Path::new("/sys/devices/system/cpu"),
                Path::new("/sys/devices/system/node"),
            ),
        }
    }
}

fn uname() -> (String, String, String, String) {
    // SAFETY: utsname is plain old data; uname fills it and NUL-terminates every field.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Default::default();
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (s(&u.nodename), s(&u.release), s(&u.version), s(&u.machine))
}

/// The CPU model as /proc/cpuinfo names it: "model name" on x86, else "Hardware",
/// "cpu model" or "Processor" (other architectures).
pub fn cpu_model(cpuinfo: &str) -> String {
    for key in ["model name", "Hardware", "cpu model", "Processor", "uarch"] {
        for line in cpuinfo.lines() {
            if let Some((k, v)) = line.split_once(':') {
                if k.trim() == key && !v.trim().is_empty() {
                    return v.trim().to_owned();
                }
            }
        }
    }
    "unknown".into()
}

/// Parses a kernel CPU list ("0-3,8,10-11").
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.trim().parse::<u32>().ok()),
        }
    }
    out
}

fn read_u32(p: &Path) -> u32 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(UNKNOWN)
}

/// Every possible CPU with its package, die, core and NUMA node, from a sysfs tree
/// (a parameter so tests can use a fixture tree).
pub fn cpus(cpu_root: &Path, node_root: &Path) -> Vec<CpuInfo> {
    let list = |name: &str| {
        fs::read_to_string(cpu_root.join(name))
            .map(|s| parse_cpu_list(&s))
            .unwrap_or_default()
    };
    let possible = list("possible");
    let online = list("online");
    let mut numa = std::collections::HashMap::new();
    if let Ok(entries) = fs::read_dir(node_root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(node) = name
                .strip_prefix("node")
                .and_then(|n| n.parse::<u32>().ok())
            {
                for cpu in fs::read_to_string(e.path().join("cpulist"))
                    .map(|s| parse_cpu_list(&s))
                    .unwrap_or_default()
                {
                    numa.insert(cpu, node);
                }
            }
        }
    }
    possible
        .into_iter()
        .map(|cpu| {
            let topo = cpu_root.join(format!("cpu{cpu}/topology"));
            CpuInfo {
                cpu,
                online: online.contains(&cpu),
                package: read_u32(&topo.join("physical_package_id")),
                die: read_u32(&topo.join("die_id")),
                core: read_u32(&topo.join("core_id")),
                numa_node: numa.get(&cpu).copied().unwrap_or(UNKNOWN),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("0\n"), vec![0]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn cpu_model_per_architecture() {
        assert_eq!(
            cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7702 64-Core Processor\n"),
            "AMD EPYC 7702 64-Core Processor"
        );
        assert_eq!(
            cpu_model("processor : 0\nBogoMIPS : 50.00\nHardware : BCM2835\n"),
            "BCM2835"
        );
        assert_eq!(cpu_model(""), "unknown");
    }

    /// A two-socket fixture with an offline CPU and NUMA nodes, as on a real server.
    #[test]
    fn topology_from_a_sysfs_tree() {
        let d = tempfile::tempdir().unwrap();
        let cpu_root = d.path().join("cpu");
        let node_root = d.path().join("node");
        fs::create_dir_all(&cpu_root).unwrap();
        fs::write(cpu_root.join("possible"), "0-3\n").unwrap();
        fs::write(cpu_root.join("online"), "0-2\n").unwrap();
        for cpu in 0..3u32 {
            let t = cpu_root.join(format!("cpu{cpu}/topology"));
            fs::create_dir_all(&t).unwrap();
            fs::write(t.join("physical_package_id"), format!("{}\n", cpu / 2)).unwrap();
            fs::write(t.join("die_id"), "0\n").unwrap();
            fs::write(t.join("core_id"), format!("{}\n", cpu % 2)).unwrap();
        }
        for (node, list) in [(0, "0-1"), (1, "2-3")] {
            let n = node_root.join(format!("node{node}"));
            fs::create_dir_all(&n).unwrap();
            fs::write(n.join("cpulist"), list).unwrap();
        }
        let cpus = cpus(&cpu_root, &node_root);
        assert_eq!(cpus.len(), 4);
        assert_eq!(
            cpus[2],
            CpuInfo {
                cpu: 2,
                online: true,
                package: 1,
                die: 0,
                core: 0,
                numa_node: 1
            }
        );
        assert!(!cpus[3].online);
        assert_eq!(
            cpus[3].package, UNKNOWN,
            "offline CPUs have no topology directory"
        );
    }

    #[test]
    fn this_host_is_described() {
        let h = Host::describe();
        assert!(!h.hostname.is_empty() && !h.kernel_release.is_empty());
        assert!(h.page_size >= 4096);
        assert!(h.cpus.iter().any(|c| c.online));
    }
}
