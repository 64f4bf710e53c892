//! The local platform's container pool, scheduling like OpenWhisk's `ContainerPool`: for an
//! activation of action A, an idle container of A (resumed first if paused) — *warmed*; else a
//! prewarmed stem cell, initialised with A — *prewarmed*; else a new container if under
//! `max_containers` — *cold* (after evicting the least recently used idle container of another
//! action if the pool is full); else the activation waits in a FIFO queue.
//!
//! One scheduler (the caller's thread) owns the pool and the timers: an idle container is frozen
//! after `pause_grace` and removed after `idle_timeout`. Each activation runs on its own thread,
//! which owns the container meanwhile, writes the invoker log lines and the record as they
//! happen, and hands the container back over a channel.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use pws_openwhisk::invoker_log::format::{self, Tool};
use serde_json::json;

use crate::cgroup::{self, Cgroup};
use crate::container::{Container, Fault, Spawner};
use crate::functions::Function;
use crate::outputs::{self, Finished, Outputs};
use crate::sandbox::docker::Docker;
use crate::sandbox::process::Processes;
use crate::sandbox::Isolation;
use crate::summary::{ContainerUsage, Outcome, StartType, Summary};

/// The platform's knobs (the workload file's `platform:` section).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the parent cgroup `pws-load-<pid>` is created.
    pub cgroup_root: PathBuf,
    /// Containers at once: busy, idle, paused and prewarmed together.
    pub max_containers: usize,
    /// Prewarmed stem cells kept ready.
    pub prewarm: usize,
    pub pause_grace: Duration,
    pub idle_timeout: Duration,
    /// Memory limit of a stem cell until it is initialised with an action.
    pub stem_memory_mb: u64,
    /// Activations waiting beyond this are turned away (OpenWhisk answers 429).
    pub max_queue: usize,
    /// Run as `<exe> runtime` in each container: pws-load itself.
    pub runtime_exe: PathBuf,
    /// Processes in cgroups of ours, or Docker containers.
    pub runtime: RuntimeKind,
}

/// What a function instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// A process in a cgroup v2 directory of pws-load's ([`crate::sandbox::process`]).
    #[default]
    Process,
    /// A Docker container ([`crate::sandbox::docker`]).
    Docker,
}

impl std::str::FromStr for RuntimeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "process" => Ok(Self::Process),
            "docker" => Ok(Self::Docker),
            _ => Err(format!("`{s}`: the runtime is `process` or `docker`")),
        }
    }
}

/// Memory each container slot stands for in OpenWhisk's `userMemory` (for `--cpu-shares`).
const SLOT_MEMORY_MB: u64 = 256;

/// An action deployed on the platform.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    pub namespace: String,
    pub function: Function,
    pub memory_mb: u64,
    pub code_size_kb: u64,
    pub timeout: Duration,
}

impl Action {
    /// The record's `kind` annotation.
    pub fn kind(&self) -> String {
        format!("pws-load:{}", self.function.name())
    }
}

/// The address printed after container ids: runtimes listen on no network; it only keeps
/// OpenWhisk's `ContainerAddress(ip,8080)` shape.
const ADDRESS: &str = "127.0.0.1";
/// OpenWhisk's transaction ids for work no activation asked for.
const TID_WARMUP: &str = "sid_invokerWarmup";
const TID_NANNY: &str = "sid_invokerNanny";
const COMPONENT_POOL: &str = "ContainerPool";
const COMPONENT_CONTAINER: &str = "DockerContainer";
const COMPONENT_INVOKER: &str = "InvokerReactive";

/// OpenWhisk's container name `wsk<invoker>_<n>_<namespace>_<action>`, keeping only letters,
/// digits and `_` of both, as its `ContainerProxy.containerName` does.
fn container_name(invoker: u32, n: u64, prefix: &str, suffix: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    format!("wsk{invoker}_{n}_{}_{}", clean(prefix), clean(suffix))
}

/// An accepted activation not yet placed.
#[derive(Debug, Clone)]
struct Pending {
    activation_id: String,
    /// Numbers the activation's `#tid_<n>` and its job.
    job: u64,
    tid: String,
    action: Arc<Action>,
    input: u64,
    arrived_ms: u64,
}

enum Start {
    Cold { id: String, number: u64 },
    Prewarmed(Container),
    Warm(Container),
}

struct Idle {
    container: Container,
    action: Arc<Action>,
    last_used: Instant,
}

struct Busy {
    /// The container's id, and its name while it is being created (else empty).
    id: String,
    name: String,
}

enum Done {
    Activation {
        job: u64,
        action: Arc<Action>,
        container: Option<Container>,
        report: Report,
    },
    Stem(Result<Container>),
}

struct Report {
    outcome: Outcome,
    created: bool,
    resumed: bool,
    removed_after_error: bool,
    error: Option<String>,
}

/// What activation threads share.
struct Shared {
    out: Arc<Outputs>,
    spawner: Spawner,
    shutting_down: AtomicBool,
}

/// The state of one container, for tests and progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Stem,
    Idle,
    Paused,
}

#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub action: Option<String>,
    pub cgroup: PathBuf,
    pub pid: u32,
    pub state: State,
}

/// The parent cgroup; dropping it kills and removes whatever is left below it.
#[derive(Debug)]
struct Parent {
    cg: Cgroup,
}

impl Drop for Parent {
    fn drop(&mut self) {
        let _ = cgroup::remove_tree(self.cg.path());
    }
}

pub struct Platform {
    cfg: Config,
    shared: Arc<Shared>,
    tx: Sender<Done>,
    rx: Receiver<Done>,
    idle: Vec<Idle>,
    stems: Vec<Container>,
    starting_stems: usize,
    /// No new stem cell before this (after one failed to start).
    stem_retry_at: Instant,
    busy: HashMap<u64, Busy>,
    queue: VecDeque<Pending>,
    next_container: u64,
    next_job: u64,
    summary: Summary,
    /// Last: dropped after every container it holds.
    parent: Parent,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("parent", &self.parent.cg.path())
            .field("idle", &self.idle.len())
            .field("stems", &self.stems.len())
            .field("busy", &self.busy.len())
            .field("queued", &self.queue.len())
            .finish()
    }
}

impl Platform {
    /// Creates `<root>/pws-load-<pid>`, enables the memory controller below it where it can,
    /// and starts the prewarmed stem cells.
    pub fn new(cfg: Config, out: Arc<Outputs>) -> Result<Self> {
        if cfg.max_containers == 0 {
            bail!("max_containers must be at least 1");
        }
        if let Some(why) = cgroup::unusable_reason(&cfg.cgroup_root) {
            bail!("{why}");
        }
        let path = cfg
            .cgroup_root
            .join(format!("pws-load-{}", std::process::id()));
        if path.exists() {
            bail!(
                "cgroup {} already exists: another platform of this process uses it, or a killed one left it (remove it with rmdir once empty)",
                path.display()
            );
        }
        let parent = Parent {
            cg: Cgroup::create(path)?,
        };
        let mut summary = Summary {
            cgroup_parent: parent.cg.path().display().to_string(),
            ..Summary::default()
        };
        let (isolation, memory_limits): (Arc<dyn Isolation>, bool) = match cfg.runtime {
            RuntimeKind::Process => {
                let memory_limits = match cgroup::enable_controller(&parent.cg, "memory") {
                    Ok(()) => true,
                    Err(why) => {
                        summary.note(format!("memory limits not applied: {why}"));
                        false
                    }
                };
                let p = Processes {
                    parent: parent.cg.path().to_path_buf(),
                    runtime_exe: cfg.runtime_exe.clone(),
                    memory_limits,
                };
                (Arc::new(p), memory_limits)
            }
            RuntimeKind::Docker => {
                let user_memory = SLOT_MEMORY_MB * cfg.max_containers as u64;
                // Docker makes its cgroups at the hierarchy's root, not under ours.
                let v2_root = cgroup::default_root();
                let d = Docker::connect(&cfg.runtime_exe, &v2_root, user_memory)?;
                summary.note(format!("docker runtime, image {}", d.image));
                (Arc::new(d), true)
            }
        };
        summary.memory_limits = memory_limits;
        let shared = Arc::new(Shared {
            out,
            spawner: Spawner {
                isolation,
                memory_limits,
            },
            shutting_down: AtomicBool::new(false),
        });
        let (tx, rx) = channel();
        let mut p = Self {
            cfg,
            shared,
            tx,
            rx,
            idle: Vec::new(),
            stems: Vec::new(),
            starting_stems: 0,
            stem_retry_at: Instant::now(),
            busy: HashMap::new(),
            queue: VecDeque::new(),
            next_container: 0,
            next_job: 0,
            summary,
            parent,
        };
        p.backfill_stems();
        Ok(p)
    }

    pub fn parent_dir(&self) -> &Path {
        self.parent.cg.path()
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    pub fn busy(&self) -> usize {
        self.busy.len()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn starting(&self) -> usize {
        self.starting_stems
    }

    /// The containers not running an activation right now.
    pub fn containers(&self) -> Vec<ContainerInfo> {
        let idle = self.idle.iter().map(|i| ContainerInfo {
            id: i.container.id.clone(),
            action: Some(i.action.name.clone()),
            cgroup: i.container.cgroup_path().to_path_buf(),
            pid: i.container.pid(),
            state: if i.container.is_paused() {
                State::Paused
            } else {
                State::Idle
            },
        });
        let stems = self.stems.iter().map(|c| ContainerInfo {
            id: c.id.clone(),
            action: None,
            cgroup: c.cgroup_path().to_path_buf(),
            pid: c.pid(),
            state: State::Stem,
        });
        idle.chain(stems).collect()
    }

    fn total(&self) -> usize {
        self.idle.len() + self.stems.len() + self.starting_stems + self.busy.len()
    }

    /// An activation of `action` arrives; it is placed by the next [`Platform::run_until`], so
    /// that arrivals due together are placed together. Returns its activation id, or None when
    /// the queue is full (no record then, like OpenWhisk's 429).
    pub fn submit(&mut self, action: Arc<Action>, input: u64) -> Option<String> {
        self.summary.arrivals += 1;
        if self.queue.len() >= self.cfg.max_queue {
            self.summary.rejected += 1;
            return None;
        }
        self.summary.accepted += 1;
        let activation_id = outputs::random_hex(32);
        self.next_job += 1;
        self.queue.push_back(Pending {
            activation_id: activation_id.clone(),
            job: self.next_job,
            tid: self.next_job.to_string(),
            action,
            input,
            arrived_ms: outputs::now_ms(),
        });
        Some(activation_id)
    }

    /// Runs the pool (completions, pauses, evictions, queued work) until `deadline`.
    pub fn run_until(&mut self, deadline: Instant) {
        loop {
            let now = Instant::now();
            self.timers(now);
            self.dispatch();
            if now >= deadline {
                return;
            }
            let wake = self.next_timer().map_or(deadline, |t| t.min(deadline));
            match self.rx.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(done) => self.handle(done),
                Err(RecvTimeoutError::Timeout) => {}
                // We hold a sender ourselves, so the channel cannot close.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Runs until nothing is running, queued or starting, or `timeout` passes; true if quiet.
    pub fn run_until_quiet(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_quiet() && Instant::now() < deadline {
            self.run_until((Instant::now() + Duration::from_millis(20)).min(deadline));
        }
        self.is_quiet()
    }

    fn is_quiet(&self) -> bool {
        self.busy.is_empty() && self.queue.is_empty() && self.starting_stems == 0
    }

    /// Places queued activations, head first (OpenWhisk's buffer is FIFO), then tops up the
    /// stem cells.
    fn dispatch(&mut self) {
        while let Some(head) = self.queue.front() {
            let action = Arc::clone(&head.action);
            let Some(start) = self.place(&action) else {
                break;
            };
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            self.launch(p, start);
        }
        self.backfill_stems();
    }

    fn place(&mut self, action: &Arc<Action>) -> Option<Start> {
        // An idle container of this action: a running one first, then the most recently used.
        let warm = self
            .idle
            .iter()
            .enumerate()
            .filter(|(_, i)| i.action.name == action.name && i.action.namespace == action.namespace)
            .max_by_key(|(_, i)| (!i.container.is_paused(), i.last_used))
            .map(|(k, _)| k);
        if let Some(k) = warm {
            return Some(Start::Warm(self.idle.swap_remove(k).container));
        }
        if let Some(c) = self.stems.pop() {
            return Some(Start::Prewarmed(c));
        }
        if self.total() >= self.cfg.max_containers {
            // Full: make room by removing the least recently used idle container.
            let lru = self
                .idle
                .iter()
                .enumerate()
                .min_by_key(|(_, i)| i.last_used)
                .map(|(k, _)| k)?;
            let victim = self.idle.swap_remove(lru);
            self.summary.containers.evicted_for_space += 1;
            self.remove(victim.container, TID_NANNY);
        }
        if self.total() >= self.cfg.max_containers {
            return None;
        }
        self.next_container += 1;
        Some(Start::Cold {
            id: outputs::random_hex(64),
            number: self.next_container,
        })
    }

    fn launch(&mut self, p: Pending, start: Start) {
        let (kind, container) = match &start {
            Start::Cold { .. } => (StartType::Cold, None),
            Start::Prewarmed(c) => (StartType::Prewarmed, Some(c.id.clone())),
            Start::Warm(c) => (StartType::Warm, Some(c.id.clone())),
        };
        let busy = match &start {
            Start::Cold { id, number } => Busy {
                id: id.clone(),
                name: self.name(*number, &p.action),
            },
            Start::Prewarmed(c) | Start::Warm(c) => Busy {
                id: c.id.clone(),
                name: String::new(),
            },
        };
        let job = p.job;
        self.busy.insert(job, busy);
        self.shared.out.log(
            &p.tid,
            COMPONENT_POOL,
            &format::container_start(
                kind.container_state(),
                container.as_deref(),
                // The container's activations and the action's concurrency limit, as
                // ContainerPool logs them: one at a time here.
                1,
                1,
                &p.action.name,
                &p.action.namespace,
                &p.activation_id,
            ),
        );
        let (shared, tx, fallback) = (Arc::clone(&self.shared), self.tx.clone(), p.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("pws-act-{job}"))
            .spawn(move || {
                let action = Arc::clone(&p.action);
                let (container, report) = execute(&shared, p, start);
                let _ = tx.send(Done::Activation {
                    job,
                    action,
                    container,
                    report,
                });
            });
        if let Err(e) = spawned {
            // The closure (and any container in it) is gone; the activation still gets its record.
            self.busy.remove(&job);
            let o = abandon(
                &self.shared.out,
                &fallback,
                &format!("cannot start an activation thread: {e}"),
            );
            self.summary.add(&o);
            self.summary
                .error(format!("cannot start an activation thread: {e}"));
        }
    }

    fn backfill_stems(&mut self) {
        if self.shared.shutting_down.load(Ordering::Relaxed) || Instant::now() < self.stem_retry_at
        {
            return;
        }
        while self.stems.len() + self.starting_stems < self.cfg.prewarm
            && self.total() < self.cfg.max_containers
        {
            self.next_container += 1;
            let (n, id) = (self.next_container, outputs::random_hex(64));
            let (shared, tx) = (Arc::clone(&self.shared), self.tx.clone());
            let memory = self.cfg.stem_memory_mb;
            let name = container_name(
                self.shared.spawner.isolation.invoker(),
                n,
                "prewarm",
                "pws-load",
            );
            let spawned = std::thread::Builder::new()
                .name(format!("pws-stem-{n}"))
                .spawn(move || {
                    shared.out.log(
                        TID_WARMUP,
                        Tool::Docker.component(),
                        &shared.spawner.isolation.run_line(&name, memory),
                    );
                    let _ = tx.send(Done::Stem(shared.spawner.start(&id, &name, memory)));
                });
            match spawned {
                Ok(_) => self.starting_stems += 1,
                Err(e) => {
                    self.summary
                        .error(format!("cannot start a prewarm thread: {e}"));
                    self.stem_retry_at = Instant::now() + Duration::from_secs(1);
                    return;
                }
            }
        }
    }

    fn handle(&mut self, done: Done) {
        let ending = self.shared.shutting_down.load(Ordering::Relaxed);
        match done {
            Done::Activation {
                job,
                action,
                container,
                report,
            } => {
                self.busy.remove(&job);
                self.summary.add(&report.outcome);
                let c = &mut self.summary.containers;
                c.created_cold += u64::from(report.created);
                c.resumed += u64::from(report.resumed);
                c.removed_after_error += u64::from(report.removed_after_error);
                if let Some(e) = report.error {
                    self.summary.error(e);
                }
                if let Some(container) = container {
                    if ending {
                        self.summary.containers.removed_at_end += 1;
                        self.remove(container, TID_NANNY);
                    } else {
                        self.idle.push(Idle {
                            container,
                            action,
                            last_used: Instant::now(),
                        });
                    }
                }
            }
            Done::Stem(Ok(c)) => {
                self.starting_stems -= 1;
                self.summary.containers.created_prewarm += 1;
                if ending {
                    self.summary.containers.removed_at_end += 1;
                    self.remove(c, TID_NANNY);
                } else {
                    self.stems.push(c);
                }
            }
            Done::Stem(Err(e)) => {
                self.starting_stems -= 1;
                self.summary.containers.failed_to_start += 1;
                self.summary.error(format!("prewarm container: {e:#}"));
                self.stem_retry_at = Instant::now() + Duration::from_secs(1);
            }
        }
    }

    /// Pauses idle containers after `pause_grace`, removes them after `idle_timeout`.
    fn timers(&mut self, now: Instant) {
        let mut k = 0;
        while k < self.idle.len() {
            let idle_for = now.saturating_duration_since(self.idle[k].last_used);
            if idle_for >= self.cfg.idle_timeout {
                let i = self.idle.swap_remove(k);
                self.summary.containers.evicted_idle += 1;
                self.remove(i.container, TID_NANNY);
                continue;
            }
            if idle_for >= self.cfg.pause_grace && !self.idle[k].container.is_paused() {
                let (tool, pause, _) = self.shared.spawner.isolation.freezer();
                let c = &mut self.idle[k].container;
                self.shared.out.log(
                    TID_NANNY,
                    tool.component(),
                    &format::container_command(tool, pause, &c.id),
                );
                match c.pause() {
                    Ok(()) => self.summary.containers.paused += 1,
                    Err(e) => {
                        // A container that cannot be frozen cannot be trusted: remove it.
                        self.summary.error(format!("pause: {e:#}"));
                        let i = self.idle.swap_remove(k);
                        self.summary.containers.removed_after_error += 1;
                        self.remove(i.container, TID_NANNY);
                        continue;
                    }
                }
            }
            k += 1;
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.idle
            .iter()
            .map(|i| {
                let evict = i.last_used + self.cfg.idle_timeout;
                if i.container.is_paused() {
                    evict
                } else {
                    evict.min(i.last_used + self.cfg.pause_grace)
                }
            })
            .min()
            .or(
                (self.stem_retry_at > Instant::now() && self.stems.len() < self.cfg.prewarm)
                    .then_some(self.stem_retry_at),
            )
    }

    /// Removes a container: resumed first if paused (as OpenWhisk does before `docker rm`).
    fn remove(&mut self, mut c: Container, tid: &str) {
        let out = &self.shared.out;
        if c.is_paused() {
            let (tool, _, resume) = self.shared.spawner.isolation.freezer();
            out.log(
                tid,
                tool.component(),
                &format::container_command(tool, resume, &c.id),
            );
            match c.resume() {
                Ok(()) => self.summary.containers.resumed += 1,
                Err(e) => self.summary.error(format!("resume before removal: {e:#}")),
            }
        }
        // Thawed and idle, it uses no more CPU before it is killed.
        let paused = c.paused_time();
        self.summary.container_usage.push(ContainerUsage {
            id: c.id.clone(),
            usage_usec: c.usage_usec(),
            paused_ns: paused.estimate_ns,
            paused_min_ns: paused.min_ns,
            paused_max_ns: paused.max_ns,
        });
        out.log(
            tid,
            Tool::Docker.component(),
            &format::container_command(Tool::Docker, "rm", &c.id),
        );
        if let Err(e) = c.destroy() {
            self.summary.error(format!("remove container: {e:#}"));
        }
    }

    /// Ends the run: serves what is running (and, with `serve_queue`, what is queued) until
    /// `drain` passes or `hurry()` says stop, then kills what still runs, records what never
    /// started, removes every container and the parent cgroup.
    pub fn shutdown(
        mut self,
        drain: Duration,
        serve_queue: bool,
        hurry: &dyn Fn() -> bool,
    ) -> Summary {
        let deadline = Instant::now() + drain;
        if !serve_queue {
            self.abandon_queue();
        }
        while !(self.busy.is_empty() && self.queue.is_empty())
            && Instant::now() < deadline
            && !hurry()
        {
            self.run_until((Instant::now() + Duration::from_millis(20)).min(deadline));
        }
        self.shared.shutting_down.store(true, Ordering::Relaxed);
        self.abandon_queue();
        if !self.busy.is_empty() {
            self.summary.note(format!(
                "{} activations were still running at the end of the drain and were killed",
                self.busy.len()
            ));
        }
        self.kill_busy();
        // Activation threads and starting stem cells hand their containers back promptly once
        // killed; each is removed as it arrives.
        let wait_until = Instant::now() + Duration::from_secs(10);
        while !(self.busy.is_empty() && self.starting_stems == 0) && Instant::now() < wait_until {
            if let Ok(done) = self.rx.recv_timeout(Duration::from_millis(50)) {
                self.handle(done);
            }
            self.kill_busy();
        }
        for i in std::mem::take(&mut self.idle) {
            self.summary.containers.removed_at_end += 1;
            self.remove(i.container, TID_NANNY);
        }
        for c in std::mem::take(&mut self.stems) {
            self.summary.containers.removed_at_end += 1;
            self.remove(c, TID_NANNY);
        }
        if let Err(e) = cgroup::remove_tree(self.parent.cg.path()) {
            self.summary.error(format!("{e:#}"));
        }
        let (n, first) = self.shared.out.errors();
        if n > 0 {
            self.summary.errors += n;
            if let Some(f) = first {
                self.summary.error_samples.push(f);
            }
        }
        std::mem::take(&mut self.summary)
    }

    fn kill_busy(&self) {
        for b in self.busy.values() {
            self.shared.spawner.isolation.kill(&b.id, &b.name);
        }
    }

    /// The container name of the `number`th container, for `action`.
    fn name(&self, number: u64, action: &Action) -> String {
        let invoker = self.shared.spawner.isolation.invoker();
        container_name(invoker, number, &action.namespace, &action.name)
    }

    fn abandon_queue(&mut self) {
        for p in std::mem::take(&mut self.queue) {
            let o = abandon(
                &self.shared.out,
                &p,
                "pws-load stopped before this activation could start",
            );
            self.summary.add(&o);
        }
    }
}

/// Records an activation that never started, as a whisk internal error.
fn abandon(out: &Outputs, p: &Pending, why: &str) -> Outcome {
    let now = outputs::now_ms();
    let a = &p.action;
    out.record(&outputs::activation_doc(&Finished {
        activation_id: &p.activation_id,
        namespace: &a.namespace,
        action: &a.name,
        kind: &a.kind(),
        memory_mb: a.memory_mb,
        timeout_ms: a.timeout.as_millis() as u64,
        arrived_ms: p.arrived_ms,
        init: None,
        run_start_ms: now,
        end_ms: now,
        status_code: outputs::WHISK_ERROR,
        result: json!({ "error": why }),
        timed_out: false,
        container_id: "",
        cgroup_usage_usec: None,
    }));
    Outcome {
        action: a.name.clone(),
        function: a.function.name().to_owned(),
        start: None,
        status_code: outputs::WHISK_ERROR,
        timed_out: false,
        wait_ms: now.saturating_sub(p.arrived_ms),
        init_ms: None,
        duration_ms: 0,
        cpu_ms: 0.0,
    }
}

/// One activation, on its own thread: get the container ready (create, resume), init if new to
/// this action, run, write the record. Returns the container if it can serve again.
fn execute(sh: &Shared, p: Pending, start: Start) -> (Option<Container>, Report) {
    let a = Arc::clone(&p.action);
    let out = &sh.out;
    let tid = p.tid.as_str();
    let timeout = a.timeout;
    let mut report = Report {
        outcome: Outcome {
            action: a.name.clone(),
            function: a.function.name().to_owned(),
            start: None,
            status_code: outputs::SUCCESS,
            timed_out: false,
            wait_ms: 0,
            init_ms: None,
            duration_ms: 0,
            cpu_ms: 0.0,
        },
        created: false,
        resumed: false,
        removed_after_error: false,
        error: None,
    };
    let (kind, ready) = match start {
        Start::Cold { id, number } => {
            let isolation = &sh.spawner.isolation;
            let name = container_name(isolation.invoker(), number, &a.namespace, &a.name);
            out.log(
                tid,
                Tool::Docker.component(),
                &isolation.run_line(&name, a.memory_mb),
            );
            let made = if sh.shutting_down.load(Ordering::Relaxed) {
                Err("pws-load is shutting down".to_owned())
            } else {
                sh.spawner
                    .start(&id, &name, a.memory_mb)
                    .map_err(|e| format!("{e:#}"))
            };
            report.created = made.is_ok();
            (StartType::Cold, made)
        }
        Start::Prewarmed(c) => (StartType::Prewarmed, Ok(c)),
        Start::Warm(mut c) => {
            let mut r = Ok(());
            if c.is_paused() {
                let (tool, _, resume) = sh.spawner.isolation.freezer();
                out.log(
                    tid,
                    tool.component(),
                    &format::container_command(tool, resume, &c.id),
                );
                r = c.resume().map_err(|e| format!("resume: {e:#}"));
                report.resumed = r.is_ok();
            }
            (StartType::Warm, r.map(|()| c))
        }
    };
    report.outcome.start = Some(kind);
    let mut c = match ready {
        Ok(c) => c,
        Err(e) => {
            // No container to run on: a whisk internal error, recorded like one.
            let o = abandon(out, &p, &e);
            report.outcome = Outcome {
                start: Some(kind),
                ..o
            };
            report.error = Some(format!("{}: {e}", a.name));
            return (None, report);
        }
    };

    let mut init = None;
    let mut fault = None;
    let usage_before = c.usage_usec();
    if c.function() != Some(a.function) {
        out.log(
            tid,
            COMPONENT_CONTAINER,
            &format::sending_initialization(&c.id, ADDRESS),
        );
        let (start_ms, t0) = (outputs::now_ms(), Instant::now());
        let memory =
            (kind == StartType::Prewarmed && sh.spawner.memory_limits).then_some(a.memory_mb);
        let r = c.init(a.function, a.code_size_kb, memory, timeout);
        let init_ms = t0.elapsed().as_millis() as u64;
        init = Some((start_ms, init_ms));
        out.log(
            tid,
            COMPONENT_CONTAINER,
            &format::initialization_result(r.is_ok(), init_ms),
        );
        if let Err(f) = r {
            fault = Some(f);
        }
    }
    let mut result = json!({});
    let (mut run_start_ms, mut cpu_ms) = (outputs::now_ms(), 0.0);
    if fault.is_none() {
        out.log(
            tid,
            COMPONENT_CONTAINER,
            &format::sending_arguments(&a.namespace, &a.name, &c.id, ADDRESS),
        );
        run_start_ms = outputs::now_ms();
        let t0 = Instant::now();
        let r = c.run(p.input, timeout);
        out.log(
            tid,
            COMPONENT_CONTAINER,
            &format::running_result(r.is_ok(), t0.elapsed().as_millis() as u64),
        );
        match r {
            Ok((r, cpu)) => {
                result = r;
                cpu_ms = cpu;
            }
            Err(f) => fault = Some(f),
        }
    }
    let end_ms = outputs::now_ms();
    let cgroup_usage_usec = usage_before
        .zip(c.usage_usec())
        .map(|(a, b)| b.saturating_sub(a));
    let ending = sh.shutting_down.load(Ordering::Relaxed);
    let status = match &fault {
        None => outputs::SUCCESS,
        Some(_) if ending => outputs::WHISK_ERROR,
        Some(Fault::Timeout(_) | Fault::Died(_) | Fault::Runtime(_)) => outputs::DEVELOPER_ERROR,
        Some(Fault::Io(_) | Fault::Protocol(_)) => outputs::WHISK_ERROR,
    };
    let timed_out = matches!(fault, Some(Fault::Timeout(_)));
    if let Some(f) = &fault {
        let msg = if ending {
            "pws-load shut down during this activation".to_owned()
        } else {
            f.to_string()
        };
        result = json!({ "error": msg });
    }
    let doc = outputs::activation_doc(&Finished {
        activation_id: &p.activation_id,
        namespace: &a.namespace,
        action: &a.name,
        kind: &a.kind(),
        memory_mb: a.memory_mb,
        timeout_ms: timeout.as_millis() as u64,
        arrived_ms: p.arrived_ms,
        init,
        run_start_ms,
        end_ms,
        status_code: status,
        result,
        timed_out,
        container_id: &c.id,
        cgroup_usage_usec,
    });
    out.record(&doc);
    out.log(
        tid,
        COMPONENT_INVOKER,
        &format::posted_completion(&p.activation_id),
    );
    let o = &mut report.outcome;
    o.status_code = status;
    o.timed_out = timed_out;
    o.init_ms = init.map(|(_, ms)| ms);
    o.wait_ms = doc
        .annotation("waitTime")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    o.duration_ms = doc.duration.unwrap_or(0);
    o.cpu_ms = cpu_ms;
    match fault {
        None => (Some(c), report),
        Some(f) => {
            // OpenWhisk destroys a container whose activation failed this way.
            if !ending {
                report.error = Some(format!("{} ({}): {f}", a.name, p.activation_id));
            }
            report.removed_after_error = true;
            out.log(
                tid,
                Tool::Docker.component(),
                &format::container_command(Tool::Docker, "rm", &c.id),
            );
            if let Err(e) = c.destroy() {
                report.error = Some(format!("remove container after error: {e:#}"));
            }
            (None, report)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_openwhisk() {
        assert_eq!(container_name(0, 3, "guest", "hello"), "wsk0_3_guest_hello");
        assert_eq!(
            container_name(0, 1, "my-ns", "a/b@c.d_e"),
            "wsk0_1_myns_abcd_e"
        );
        assert_eq!(
            container_name(0, 2, "prewarm", "pws-load"),
            "wsk0_2_prewarm_pwsload"
        );
    }
}
