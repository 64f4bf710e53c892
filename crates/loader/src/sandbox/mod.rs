//! Where a function instance runs: the runtime-specific half of a [`crate::container::Container`].
//! The protocol (JSON lines on the runtime's stdin/stdout) is the same for every runtime; how the
//! runtime process is started, frozen, limited and removed is not:
//! - [`process`]: a cgroup v2 directory made by pws-load, the runtime a child process moved in;
//! - [`docker`]: a Docker container started with OpenWhisk's `docker run` flags, attached
//!   with `docker start -ai`, frozen with `docker pause`.

pub mod docker;
pub mod process;

use std::path::Path;
use std::process::Child;

use anyhow::Result;
use pws_openwhisk::invoker_log::format::Tool;

/// What a new instance is: its id (used where the runtime does not choose one), its
/// OpenWhisk container name and memory limit.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub memory_mb: u64,
}

/// A started instance: the child process whose stdin/stdout speak the runtime protocol.
#[derive(Debug)]
pub struct Launched {
    /// 64 hex digits: ours for [`process`], Docker's own for [`docker`].
    pub id: String,
    pub sandbox: Box<dyn Sandbox>,
    pub child: Child,
}

/// Makes instances. One per platform, shared by its threads.
pub trait Isolation: Send + Sync + std::fmt::Debug {
    /// Starts an instance (does not wait for the runtime to say ready).
    fn launch(&self, spec: &Launch<'_>) -> Result<Launched>;
    /// Kills the instance `name` (empty once started: then `id`), at shutdown,
    /// without waiting; its activation thread then sees the runtime die.
    fn kill(&self, id: &str, name: &str);
    /// The `docker run` invoker log line for a new instance.
    fn run_line(&self, name: &str, memory_mb: u64) -> String;
    /// The client and subcommands that freeze and thaw, as the invoker log names them.
    fn freezer(&self) -> (Tool, &'static str, &'static str);
    /// The invoker number in container names (`wsk<invoker>_<n>_…`).
    fn invoker(&self) -> u32;
    /// Whether the runtime's `ready` pid is the child's (not inside a pid namespace).
    fn same_pid_namespace(&self) -> bool;
}

/// The runtime-specific operations on one instance.
pub trait Sandbox: Send + std::fmt::Debug {
    /// Its cgroup v2 directory (the unified hierarchy's on a hybrid host).
    fn cgroup_path(&self) -> &Path;
    /// The runtime's pid on the host.
    fn pid(&self) -> u32;
    /// The kernel's CPU time of the instance so far, in µs.
    fn usage_usec(&self) -> Option<u64>;
    fn set_memory(&self, memory_mb: u64) -> Result<()>;
    /// Freezes or thaws, returning once the kernel says it is done.
    fn set_frozen(&mut self, frozen: bool) -> Result<()>;
    /// Kills and removes the instance and reaps `child`.
    fn teardown(&mut self, child: &mut Child) -> Result<()>;
}
