//! Tying activations to containers from the invoker's log, as [`ContainerEvent`]s.
//!
//! What each line gives ([`ContainerOp`]):
//! - `containerStart` with `Some(ContainerId(id))` (warm, prewarmed, warming,
//!   recreatedPrewarm): **Assign** the activation to `id` at once, with the start type of its
//!   `containerState` (warmed → warm, prewarmed / warming / recreatedPrewarm → prewarmed,
//!   recreated → recreated, cold / warmingCold → cold; others unknown; the state's own word is
//!   the event's detail);
//! - `containerStart` with `None` (cold, recreated, warmingCold): the container does not exist
//!   yet; its id appears later under the same transaction id, so the tid is remembered;
//! - `docker run` under such a tid: **Create**, detail the container's name. The line has no
//!   id: the event is held back until the tid's container is known, then given with the
//!   `docker run` line's time (a `docker run` never tied to an id — a stem cell being
//!   prewarmed under `#tid_sid_invokerWarmup`, or a failed start — yields nothing);
//! - `sending initialization to ContainerId(id)`: **Init**; under a remembered tid it is the
//!   link: the held Create, then **Assign**;
//! - `sending arguments to /ns/action at ContainerId(id)`: **Run**, which is the link too when
//!   there was no init (a `warmingCold` activation runs in a container another one created);
//! - `docker pause`, `runc pause`: **Pause**; `docker unpause`, `runc resume`: **Resume**;
//!   `docker rm`: **Remove**. The activation is filled in when the line's tid is one whose
//!   activation runs in that container (a resume before a run).
//!
//! An Assign is given once per activation and container: a line repeating the link (the init
//! of a prewarmed container, its run) adds none. An activation moved to another container (its
//! container failed and the job was rescheduled) gets a second Assign, to the new container.
//!
//! Each event carries the time of the line it stands for, an Assign the time of its
//! `containerStart`: events are not always returned in time order, and the recorder places each
//! by its own time (`ts_ns` is 0 here, `source` is the invoker log, `cgroup_path` empty).
//!
//! Memory is bounded: a tid is forgotten once its activation runs, or
//! [`PENDING_TTL_MS`] of log time after its last line, and at most [`MAX_PENDING`] tids are
//! remembered (the oldest go first); [`RECENT_ASSIGNS`] links are remembered to keep Assigns
//! single. A link that arrives after its tid was forgotten is lost: no longer than the
//! longest action time limit plus container creation, 10 minutes cover OpenWhisk's defaults
//! (5 minutes at most per action, 1 minute per `docker run`).
//!
//! Transaction ids are per request; the components of a sequence share their request's, and
//! run one after the other, so a new `containerStart` under a tid replaces the previous one.

use std::collections::{HashMap, HashSet, VecDeque};

use pws_trace::records::{ActivationSource, ContainerEvent, ContainerOp, StartType};

use super::parse::{LogEvent, LogKind};

/// Log time after which a tid's unfinished link is given up.
pub const PENDING_TTL_MS: u64 = 10 * 60 * 1000;
/// Tids remembered at most.
pub const MAX_PENDING: usize = 20_000;
/// (activation, container) links remembered to give each Assign once.
pub const RECENT_ASSIGNS: usize = 20_000;

/// One container event, with the time of its log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    pub ts_epoch_ms: u64,
    /// `ts_ns` 0: the recorder places it on its clock; `source` [`ActivationSource::InvokerLog`].
    pub event: ContainerEvent,
}

/// The start type an invoker `containerState` stands for.
pub fn start_type_of(state: &str) -> StartType {
    match state {
        "warmed" => StartType::Warm,
        "prewarmed" | "warming" | "recreatedPrewarm" => StartType::Prewarmed,
        "recreated" => StartType::Recreated,
        "cold" | "warmingCold" => StartType::Cold,
        _ => StartType::Unknown,
    }
}

/// The activation a tid's `containerStart` announced.
#[derive(Debug, Clone)]
struct Activation {
    ts_ms: u64,
    id: String,
    action: String,
    namespace: String,
    state: String,
}

/// What is known under one tid.
#[derive(Debug, Clone, Default)]
struct Pending {
    act: Option<Activation>,
    /// The tid's container, once a line named it.
    container: Option<String>,
    /// A `docker run` (time, name) waiting for its container's id.
    create: Option<(u64, String)>,
    last_ms: u64,
}

#[derive(Debug, Default)]
pub struct Linker {
    pending: HashMap<String, Pending>,
    assigned: HashSet<(String, String)>,
    assigned_order: VecDeque<(String, String)>,
    newest_ms: u64,
    next_sweep_ms: u64,
}

impl Linker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Tids currently remembered (for tests and statistics).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The container events `ev` gives, now that it is known.
    pub fn feed(&mut self, ev: &LogEvent) -> Vec<Linked> {
        let now = ev.ts_epoch_ms;
        self.newest_ms = self.newest_ms.max(now);
        self.sweep();
        let mut out = Vec::new();
        match &ev.kind {
            LogKind::ContainerStart {
                state,
                container,
                action,
                namespace,
                activation_id,
            } => {
                let act = Activation {
                    ts_ms: now,
                    id: activation_id.clone(),
                    action: action.clone(),
                    namespace: namespace.clone(),
                    state: state.clone(),
                };
                let p = self.entry(&ev.tid, now);
                // A second containerStart under this tid (a sequence's next component, or a
                // rescheduled job) starts afresh, but keeps a `docker run` logged before it.
                // Without one, a container named before is this activation's (an init or run
                // logged ahead of its containerStart).
                if p.act.is_some() {
                    p.container = None;
                }
                p.act = Some(act);
                if let Some(c) = container {
                    p.container = Some(c.clone());
                    p.create = None;
                }
                // The container may already be known: given now, or named by an init or run
                // logged before this line.
                if p.container.is_some() {
                    self.link(&ev.tid, &mut out);
                }
            }
            LogKind::DockerRun { name, .. } => {
                let p = self.entry(&ev.tid, now);
                p.create = Some((now, name.clone().unwrap_or_default()));
                // The tid's container is the one being created, whose id comes later.
                p.container = None;
            }
            LogKind::SendingInit { container } => {
                self.name_container(&ev.tid, container, now, &mut out);
                out.push(self.event(now, ContainerOp::Init, container, &ev.tid, "/init".into()));
            }
            LogKind::SendingArgs {
                namespace_action_path,
                container,
            } => {
                self.name_container(&ev.tid, container, now, &mut out);
                let mut e = self.event(
                    now,
                    ContainerOp::Run,
                    container,
                    &ev.tid,
                    namespace_action_path.clone(),
                );
                if e.event.activation_id.is_empty() {
                    // No containerStart seen (yet): what the line itself says.
                    let p = namespace_action_path.trim_start_matches('/');
                    if let Some((ns, a)) = p.split_once('/') {
                        e.event.namespace = ns.to_owned();
                        e.event.action = a.to_owned();
                    }
                }
                out.push(e);
                // Linked and running: nothing more to learn under this tid.
                if self
                    .pending
                    .get(&ev.tid)
                    .is_some_and(|p| p.act.is_some() && p.container.as_deref() == Some(container))
                {
                    self.pending.remove(&ev.tid);
                }
            }
            LogKind::Pause { id, tool } => {
                let detail = format!("{} pause", tool_name(*tool));
                out.push(self.event(now, ContainerOp::Pause, id, &ev.tid, detail));
            }
            LogKind::Resume { id, tool } => {
                let verb = match tool {
                    super::format::Tool::Docker => "unpause",
                    super::format::Tool::Runc => "resume",
                };
                let detail = format!("{} {verb}", tool_name(*tool));
                out.push(self.event(now, ContainerOp::Resume, id, &ev.tid, detail));
            }
            LogKind::Remove { id } => {
                out.push(self.event(now, ContainerOp::Remove, id, &ev.tid, "docker rm".into()));
            }
            // Results and acks end activations (`activations`), not container operations.
            LogKind::InitResult(_) | LogKind::RunResult(_) | LogKind::Posted { .. } => {}
        }
        out
    }

    /// An init or run line named the tid's container: the held Create and the Assign.
    fn name_container(&mut self, tid: &str, container: &str, now: u64, out: &mut Vec<Linked>) {
        let p = self.entry(tid, now);
        let new = p.container.as_deref() != Some(container);
        if !new && p.create.is_none() {
            // Already linked (a prewarmed container's init, a warm run).
            return;
        }
        p.container = Some(container.to_owned());
        if let Some((ts, name)) = p.create.take() {
            let act = p.act.clone();
            out.push(Linked {
                ts_epoch_ms: ts,
                event: ContainerEvent {
                    ts_ns: 0,
                    op: ContainerOp::Create,
                    source: ActivationSource::InvokerLog,
                    container_id: container.to_owned(),
                    activation_id: act.as_ref().map(|a| a.id.clone()).unwrap_or_default(),
                    action: act.as_ref().map(|a| a.action.clone()).unwrap_or_default(),
                    namespace: act
                        .as_ref()
                        .map(|a| a.namespace.clone())
                        .unwrap_or_default(),
                    start_type: act
                        .as_ref()
                        .map(|a| start_type_of(&a.state))
                        .unwrap_or(StartType::Unknown),
                    cgroup_path: String::new(),
                    detail: name,
                },
            });
        }
        self.link(tid, out);
    }

    /// The Assign for the tid's activation and container, unless given already.
    fn link(&mut self, tid: &str, out: &mut Vec<Linked>) {
        let Some(p) = self.pending.get(tid) else {
            return;
        };
        let (Some(act), Some(container)) = (&p.act, &p.container) else {
            return;
        };
        let key = (act.id.clone(), container.clone());
        if self.assigned.contains(&key) {
            return;
        }
        out.push(Linked {
            ts_epoch_ms: act.ts_ms,
            event: ContainerEvent {
                ts_ns: 0,
                op: ContainerOp::Assign,
                source: ActivationSource::InvokerLog,
                container_id: container.clone(),
                activation_id: act.id.clone(),
                action: act.action.clone(),
                namespace: act.namespace.clone(),
                start_type: start_type_of(&act.state),
                cgroup_path: String::new(),
                detail: act.state.clone(),
            },
        });
        if self.assigned_order.len() >= RECENT_ASSIGNS {
            if let Some(old) = self.assigned_order.pop_front() {
                self.assigned.remove(&old);
            }
        }
        self.assigned.insert(key.clone());
        self.assigned_order.push_back(key);
    }

    /// An event on `container`, with the tid's activation when it runs there.
    fn event(
        &self,
        ts: u64,
        op: ContainerOp,
        container: &str,
        tid: &str,
        detail: String,
    ) -> Linked {
        let act = self
            .pending
            .get(tid)
            .filter(|p| p.container.as_deref() == Some(container))
            .and_then(|p| p.act.as_ref());
        Linked {
            ts_epoch_ms: ts,
            event: ContainerEvent {
                ts_ns: 0,
                op,
                source: ActivationSource::InvokerLog,
                container_id: container.to_owned(),
                activation_id: act.map(|a| a.id.clone()).unwrap_or_default(),
                action: act.map(|a| a.action.clone()).unwrap_or_default(),
                namespace: act.map(|a| a.namespace.clone()).unwrap_or_default(),
                start_type: act
                    .map(|a| start_type_of(&a.state))
                    .unwrap_or(StartType::Unknown),
                cgroup_path: String::new(),
                detail,
            },
        }
    }

    /// The tid's entry, made if new (evicting the oldest when full).
    fn entry(&mut self, tid: &str, now: u64) -> &mut Pending {
        if !self.pending.contains_key(tid) && self.pending.len() >= MAX_PENDING {
            if let Some(oldest) = self
                .pending
                .iter()
                .min_by_key(|(_, p)| p.last_ms)
                .map(|(k, _)| k.clone())
            {
                self.pending.remove(&oldest);
            }
        }
        let p = self.pending.entry(tid.to_owned()).or_default();
        p.last_ms = p.last_ms.max(now);
        p
    }

    /// Forgets tids idle for [`PENDING_TTL_MS`] of log time; runs once a minute of log time.
    fn sweep(&mut self) {
        if self.newest_ms < self.next_sweep_ms {
            return;
        }
        let horizon = self.newest_ms.saturating_sub(PENDING_TTL_MS);
        self.pending.retain(|_, p| p.last_ms >= horizon);
        self.next_sweep_ms = self.newest_ms + 60_000;
    }
}

fn tool_name(t: super::format::Tool) -> &'static str {
    match t {
        super::format::Tool::Docker => "docker",
        super::format::Tool::Runc => "runc",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoker_log::format::Tool;

    const C1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const A1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const A2: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn ev(ts: u64, tid: &str, kind: LogKind) -> LogEvent {
        LogEvent {
            ts_epoch_ms: ts,
            tid: tid.into(),
            component: "X".into(),
            kind,
            since_tid_ms: None,
        }
    }

    fn start(state: &str, container: Option<&str>, aid: &str) -> LogKind {
        LogKind::ContainerStart {
            state: state.into(),
            container: container.map(Into::into),
            action: "hello".into(),
            namespace: "guest".into(),
            activation_id: aid.into(),
        }
    }

    fn init(c: &str) -> LogKind {
        LogKind::SendingInit {
            container: c.into(),
        }
    }

    fn args(c: &str) -> LogKind {
        LogKind::SendingArgs {
            namespace_action_path: "/guest/hello".into(),
            container: c.into(),
        }
    }

    fn ops(v: &[Linked]) -> Vec<ContainerOp> {
        v.iter().map(|l| l.event.op).collect()
    }

    #[test]
    fn a_cold_start_links_at_init_with_the_held_create() {
        let mut l = Linker::new();
        assert!(l.feed(&ev(100, "t1", start("cold", None, A1))).is_empty());
        let run = LogKind::DockerRun {
            name: Some("wsk0_1_guest_hello".into()),
            image: "img".into(),
        };
        assert!(
            l.feed(&ev(101, "t1", run)).is_empty(),
            "held until the id is known"
        );
        let got = l.feed(&ev(900, "t1", init(C1)));
        assert_eq!(
            ops(&got),
            [ContainerOp::Create, ContainerOp::Assign, ContainerOp::Init]
        );
        let (create, assign, init) = (&got[0], &got[1], &got[2]);
        assert_eq!(
            (create.ts_epoch_ms, create.event.detail.as_str()),
            (101, "wsk0_1_guest_hello")
        );
        assert_eq!(create.event.container_id, C1);
        assert_eq!(assign.ts_epoch_ms, 100, "at the containerStart");
        assert_eq!(
            (
                assign.event.activation_id.as_str(),
                assign.event.container_id.as_str(),
                assign.event.start_type
            ),
            (A1, C1, StartType::Cold)
        );
        assert_eq!(init.event.activation_id, A1);
        assert!(got
            .iter()
            .all(|g| g.event.ts_ns == 0 && g.event.source == ActivationSource::InvokerLog));
        let run = l.feed(&ev(950, "t1", args(C1)));
        assert_eq!(ops(&run), [ContainerOp::Run]);
        assert_eq!(
            (
                run[0].event.activation_id.as_str(),
                run[0].event.detail.as_str()
            ),
            (A1, "/guest/hello")
        );
        assert_eq!(l.pending(), 0, "forgotten once running");
    }

    #[test]
    fn warm_and_prewarmed_starts_assign_once() {
        let mut l = Linker::new();
        let got = l.feed(&ev(1, "t2", start("prewarmed", Some(C1), A1)));
        assert_eq!(ops(&got), [ContainerOp::Assign]);
        assert_eq!(got[0].event.start_type, StartType::Prewarmed);
        assert_eq!(
            ops(&l.feed(&ev(2, "t2", init(C1)))),
            [ContainerOp::Init],
            "no second Assign"
        );
        assert_eq!(ops(&l.feed(&ev(3, "t2", args(C1)))), [ContainerOp::Run]);

        let got = l.feed(&ev(10, "t3", start("warmed", Some(C1), A2)));
        assert_eq!(
            (ops(&got), got[0].event.start_type),
            (vec![ContainerOp::Assign], StartType::Warm)
        );
        let r = l.feed(&ev(
            11,
            "t3",
            LogKind::Resume {
                id: C1.into(),
                tool: Tool::Runc,
            },
        ));
        assert_eq!(
            (
                r[0].event.op,
                r[0].event.activation_id.as_str(),
                r[0].event.detail.as_str()
            ),
            (ContainerOp::Resume, A2, "runc resume")
        );
        assert_eq!(ops(&l.feed(&ev(12, "t3", args(C1)))), [ContainerOp::Run]);
        // The same containerStart again (a replayed line) gives nothing new.
        assert!(l
            .feed(&ev(10, "t3", start("warmed", Some(C1), A2)))
            .is_empty());
    }

    #[test]
    fn warming_cold_links_at_run_and_recreated_keeps_its_type() {
        let mut l = Linker::new();
        l.feed(&ev(1, "t4", start("warmingCold", None, A1)));
        let got = l.feed(&ev(5, "t4", args(C2)));
        assert_eq!(ops(&got), [ContainerOp::Assign, ContainerOp::Run]);
        assert_eq!(
            (got[0].event.start_type, got[0].event.detail.as_str()),
            (StartType::Cold, "warmingCold")
        );

        l.feed(&ev(20, "t5", start("recreated", None, A2)));
        let got = l.feed(&ev(30, "t5", init(C1)));
        assert_eq!(
            ops(&got),
            [ContainerOp::Assign, ContainerOp::Init],
            "no docker run seen: no Create"
        );
        assert_eq!(got[0].event.start_type, StartType::Recreated);
    }

    #[test]
    fn a_run_logged_before_its_container_start_is_linked_when_it_comes() {
        let mut l = Linker::new();
        let got = l.feed(&ev(5, "t6", args(C1)));
        assert_eq!(ops(&got), [ContainerOp::Run]);
        assert_eq!(
            (
                got[0].event.activation_id.as_str(),
                got[0].event.namespace.as_str(),
                got[0].event.action.as_str()
            ),
            ("", "guest", "hello")
        );
        let got = l.feed(&ev(4, "t6", start("cold", None, A1)));
        assert_eq!(ops(&got), [ContainerOp::Assign]);
        assert_eq!(got[0].event.container_id, C1);
    }

    #[test]
    fn a_rescheduled_activation_is_assigned_to_its_new_container() {
        let mut l = Linker::new();
        l.feed(&ev(1, "t7", start("warmed", Some(C1), A1)));
        let rm = l.feed(&ev(
            2,
            "sid_invokerNanny",
            LogKind::Remove { id: C1.into() },
        ));
        assert_eq!(
            (rm[0].event.op, rm[0].event.activation_id.as_str()),
            (ContainerOp::Remove, "")
        );
        l.feed(&ev(3, "t7", start("cold", None, A1)));
        let got = l.feed(&ev(4, "t7", init(C2)));
        assert_eq!(ops(&got), [ContainerOp::Assign, ContainerOp::Init]);
        assert_eq!(got[0].event.container_id, C2);
    }

    #[test]
    fn sequence_components_under_one_tid_each_get_their_link() {
        let mut l = Linker::new();
        l.feed(&ev(1, "seq", start("cold", None, A1)));
        l.feed(&ev(2, "seq", init(C1)));
        l.feed(&ev(3, "seq", args(C1)));
        l.feed(&ev(4, "seq", start("cold", None, A2)));
        let got = l.feed(&ev(5, "seq", init(C2)));
        assert_eq!(ops(&got), [ContainerOp::Assign, ContainerOp::Init]);
        assert_eq!(
            (
                got[0].event.activation_id.as_str(),
                got[0].event.container_id.as_str()
            ),
            (A2, C2)
        );
    }

    #[test]
    fn pending_tids_are_bounded_in_time_and_number() {
        let mut l = Linker::new();
        l.feed(&ev(0, "old", start("cold", None, A1)));
        l.feed(&ev(PENDING_TTL_MS / 2, "mid", start("cold", None, A2)));
        assert_eq!(l.pending(), 2);
        // Log time moves past the horizon of the first one only.
        l.feed(&ev(
            PENDING_TTL_MS + 61_000,
            "sid_x",
            LogKind::Remove { id: C2.into() },
        ));
        assert_eq!(l.pending(), 1);
        let got = l.feed(&ev(PENDING_TTL_MS + 62_000, "old", init(C1)));
        assert_eq!(ops(&got), [ContainerOp::Init], "forgotten: no link");
        assert_eq!(got[0].event.activation_id, "");

        let mut l = Linker::new();
        for i in 0..MAX_PENDING + 10 {
            let aid = format!("{i:032x}");
            l.feed(&ev(i as u64, &format!("t{i}"), start("cold", None, &aid)));
        }
        assert_eq!(l.pending(), MAX_PENDING);
        assert!(
            l.feed(&ev(0, "t0", init(C1)))
                .iter()
                .all(|e| e.event.op != ContainerOp::Assign),
            "the oldest went first"
        );
        let got = l.feed(&ev(1, &format!("t{}", MAX_PENDING + 9), init(C1)));
        assert_eq!(ops(&got), [ContainerOp::Assign, ContainerOp::Init]);
    }
}
