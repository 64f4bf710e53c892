//! The process runtime: a cgroup v2 directory `<parent>/<id>` made by pws-load, with the
//! runtime (pws-load re-executed as `pws-load runtime`) moved in between fork and exec.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use pws_openwhisk::invoker_log::format::{self, Tool};

use super::{Isolation, Launch, Launched, Sandbox};
use crate::cgroup::{self, Cgroup};

/// The container image named in `docker run` lines: none is used, it only keeps the shape.
const IMAGE: &str = concat!("pws-load/runtime:", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone)]
pub struct Processes {
    /// The platform's parent cgroup, `<root>/pws-load-<pid>`.
    pub parent: PathBuf,
    /// The executable run as `<exe> runtime` (pws-load itself).
    pub runtime_exe: PathBuf,
    /// Whether `memory.max` can be written in the containers' cgroups.
    pub memory_limits: bool,
}

impl Isolation for Processes {
    fn launch(&self, spec: &Launch<'_>) -> Result<Launched> {
        let cg = Cgroup::create(self.parent.join(spec.id))?;
        let guard = RemoveOnError(Some(cg.clone()));
        if self.memory_limits {
            set_memory(&cg, spec.memory_mb)?;
        }
        let procs = CString::new(cg.path().join("cgroup.procs").as_os_str().as_bytes())
            .context("cgroup path contains a NUL byte")?;
        let mut cmd = Command::new(&self.runtime_exe);
        cmd.arg("runtime")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: the closure only makes async-signal-safe syscalls (see enter_in_child).
        unsafe {
            cmd.pre_exec(move || cgroup::enter_in_child(&procs));
        }
        let child = cmd.spawn().with_context(|| {
            format!(
                "cannot start the runtime {} runtime in cgroup {}",
                self.runtime_exe.display(),
                cg.path().display()
            )
        })?;
        let pid = child.id();
        Ok(Launched {
            id: spec.id.to_owned(),
            sandbox: Box::new(ProcessSandbox {
                cgroup: guard.disarm(),
                pid,
                memory_limits: self.memory_limits,
            }),
            child,
        })
    }

    fn kill(&self, id: &str, _name: &str) {
        let _ = Cgroup::open(self.parent.join(id)).kill_all();
    }

    fn run_line(&self, name: &str, memory_mb: u64) -> String {
        format::docker_run(name, memory_mb, IMAGE)
    }

    fn freezer(&self) -> (Tool, &'static str, &'static str) {
        // OpenWhisk's default (`useRunc`): pause and resume through runc.
        (Tool::Runc, "pause", "resume")
    }

    fn invoker(&self) -> u32 {
        0
    }

    fn same_pid_namespace(&self) -> bool {
        true
    }
}

#[derive(Debug)]
struct ProcessSandbox {
    cgroup: Cgroup,
    pid: u32,
    memory_limits: bool,
}

impl Sandbox for ProcessSandbox {
    fn cgroup_path(&self) -> &Path {
        self.cgroup.path()
    }

    fn pid(&self) -> u32 {
        self.pid
    }

    fn usage_usec(&self) -> Option<u64> {
        self.cgroup.usage_usec()
    }

    fn set_memory(&self, memory_mb: u64) -> Result<()> {
        if self.memory_limits {
            set_memory(&self.cgroup, memory_mb)?;
        }
        Ok(())
    }

    fn set_frozen(&mut self, frozen: bool) -> Result<()> {
        self.cgroup.set_frozen(frozen)
    }

    fn teardown(&mut self, child: &mut Child) -> Result<()> {
        let killed = self.cgroup.kill_all();
        // The runtime is our child: reap it (SIGKILL again in case the cgroup write failed).
        let _ = child.kill();
        let _ = child.wait();
        self.cgroup.wait_empty(cgroup::SETTLE_TIMEOUT);
        killed?;
        self.cgroup.remove()
    }
}

fn set_memory(cg: &Cgroup, memory_mb: u64) -> Result<()> {
    let bytes = (memory_mb * 1024 * 1024).to_string();
    cg.write("memory.max", &bytes)
        .with_context(|| format!("cannot write {}/memory.max", cg.path().display()))?;
    // OpenWhisk gives --memory-swap equal to --memory: no swap beyond the limit.
    if cg.path().join("memory.swap.max").exists() {
        let _ = cg.write("memory.swap.max", "0");
    }
    Ok(())
}

/// Removes a cgroup unless disarmed: a launch failing half-way leaves nothing behind.
struct RemoveOnError(Option<Cgroup>);

impl RemoveOnError {
    fn disarm(mut self) -> Cgroup {
        self.0.take().expect("disarmed once")
    }
}

impl Drop for RemoveOnError {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            let _ = cg.kill_all();
            cg.wait_empty(cgroup::SETTLE_TIMEOUT);
            let _ = cg.remove();
        }
    }
}
