//! Finding tracepoints: tracefs's `events/<system>/<name>/{id,format}`, mounting tracefs
//! where nobody has (as on this project's VMs).

use std::fs;
use std::path::{Path, PathBuf};

/// The cgroup tracepoints pws-record samples. `cgroup_rstat_*` (lock contention, very
/// frequent on busy hosts) are left out on purpose.
pub const CGROUP_TRACEPOINTS: &[&str] = &[
    "cgroup_mkdir",
    "cgroup_rmdir",
    "cgroup_release",
    "cgroup_rename",
    "cgroup_freeze",
    "cgroup_unfreeze",
    "cgroup_notify_frozen",
    "cgroup_notify_populated",
    "cgroup_attach_task",
    "cgroup_transfer_tasks",
];

#[derive(Debug, Clone)]
pub struct Tracepoint {
    pub name: String,
    pub id: u64,
    pub format: String,
}

/// The tracefs `events` directory: an existing mount, else a fresh mount at
/// /sys/kernel/tracing (needs root). The string says how it was found.
pub fn events_dir() -> Result<(PathBuf, String), String> {
    for p in [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ] {
        if Path::new(p).join("cgroup").is_dir() {
            return Ok((
                PathBuf::from(p),
                format!(
                    "tracefs at {}",
                    Path::new(p).parent().unwrap_or(Path::new(p)).display()
                ),
            ));
        }
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: mount(2) with NUL-terminated strings and no data pointer.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "tracefs is not mounted and mounting it at /sys/kernel/tracing failed ({}); mount it with `mount -t tracefs nodev /sys/kernel/tracing`",
            std::io::Error::last_os_error()
        ));
    }
    let p = PathBuf::from("/sys/kernel/tracing/events");
    if p.join("cgroup").is_dir() {
        Ok((
            p,
            "tracefs mounted by pws-record at /sys/kernel/tracing".into(),
        ))
    } else {
        Err("tracefs has no cgroup events (kernel built without them?)".into())
    }
}

/// Reads id and format of `system:name` tracepoints under `events`.
pub fn find(events: &Path, system: &str, names: &[&str]) -> (Vec<Tracepoint>, Vec<String>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        let dir = events.join(system).join(name);
        let id = fs::read_to_string(dir.join("id"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        match id {
            Some(id) => found.push(Tracepoint {
                name: format!("{system}:{name}"),
                id,
                format: fs::read_to_string(dir.join("format")).unwrap_or_default(),
            }),
            None => missing.push(format!("{system}:{name}")),
        }
    }
    (found, missing)
}
