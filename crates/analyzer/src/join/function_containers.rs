//! Which cgroups are function containers. Only they get idle (keep-alive) energy and only they
//! are candidates of the time-overlap join; every other cgroup created, frozen or removed during
//! a trace (a systemd scope, a daemon restarted, a cron job) is busy but runs no function.
//!
//! The evidence, strongest first: the invoker log (or pws-load's) named the container; an
//! activation was linked to it; or the container runtime's naming of its cgroup —
//! Docker (`…/docker/<64 hex>`, `docker-<64 hex>.scope`), Kubernetes (`kubepods…/pod<uid>/<id>`,
//! `cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope` below `kubepods`), Podman
//! (`libpod-<id>.scope`) and the local platform (`/pws-load-<pid>/<64 hex>`).

use super::super::replay::lifecycle::Lifecycles;

/// Why a container row is (or is not) a function container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    InvokerLog,
    Activation,
    Runtime(&'static str),
    None,
}

impl Evidence {
    pub fn is_function(self) -> bool {
        !matches!(self, Evidence::None)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::InvokerLog => "invoker-log",
            Evidence::Activation => "activation",
            Evidence::Runtime(r) => r,
            Evidence::None => "none",
        }
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container runtime whose naming the cgroup path follows, if any.
pub fn runtime_of_path(path: &str) -> Option<&'static str> {
    let mut parts = path.trim_end_matches('/').rsplit('/');
    let last = parts.next()?;
    let parent = parts.next().unwrap_or("");
    let in_kubepods = path.contains("/kubepods");
    if let Some(scope) = last.strip_suffix(".scope") {
        let (prefix, id) = scope.rsplit_once('-')?;
        if !is_container_id(id) {
            return None;
        }
        return match prefix {
            "cri-containerd" | "crio" => Some("runtime:kubernetes"),
            "docker" if in_kubepods => Some("runtime:kubernetes"),
            "docker" => Some("runtime:docker"),
            "libpod" => Some("runtime:podman"),
            _ => None,
        };
    }
    if !is_container_id(last) {
        return None;
    }
    if parent == "docker" {
        Some("runtime:docker")
    } else if in_kubepods && parent.starts_with("pod") {
        Some("runtime:kubernetes")
    } else if parent.starts_with("pws-load-") {
        Some("runtime:pws-load")
    } else {
        None
    }
}

/// The container id in a cgroup path that follows a runtime's naming (`<64 hex>` or
/// `<prefix>-<64 hex>.scope`): what an invoker log would call the container.
pub fn container_id_of_path(path: &str) -> Option<&str> {
    runtime_of_path(path)?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    Some(
        last.strip_suffix(".scope")
            .and_then(|s| s.rsplit_once('-'))
            .map_or(last, |(_, id)| id),
    )
}

/// The evidence for each container row of `life`.
pub fn classify(life: &Lifecycles) -> Vec<Evidence> {
    life.containers
        .iter()
        .map(|c| {
            let path = c
                .cgroup
                .map(|g| life.cgroups[g].path.as_str())
                .unwrap_or("");
            if c.from_log {
                Evidence::InvokerLog
            } else if c.activations > 0 {
                Evidence::Activation
            } else if let Some(r) = runtime_of_path(path) {
                Evidence::Runtime(r)
            } else {
                Evidence::None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_are_recognised_by_their_cgroup_names() {
        let id = "0123456789abcdef".repeat(4);
        for (path, want) in [
            (format!("/docker/{id}"), Some("runtime:docker")),
            (format!("/system.slice/docker-{id}.scope"), Some("runtime:docker")),
            (
                format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{id}.scope"),
                Some("runtime:kubernetes"),
            ),
            (format!("/kubepods/besteffort/pod12-34/{id}"), Some("runtime:kubernetes")),
            (format!("/machine.slice/libpod-{id}.scope"), Some("runtime:podman")),
            (format!("/pws-load-4242/{id}"), Some("runtime:pws-load")),
            ("/system.slice/cron.service".to_owned(), None),
            ("/system.slice/run-r1234.scope".to_owned(), None),
            (format!("/user.slice/{id}"), None),
            ("/docker/abc".to_owned(), None),
            (format!("/system.slice/crio-conmon-{id}.scope"), None),
        ] {
            assert_eq!(runtime_of_path(&path), want, "{path}");
            let got = container_id_of_path(&path);
            assert_eq!(got, want.map(|_| id.as_str()), "{path}");
        }
    }
}
