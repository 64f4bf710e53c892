//! Activation records from the invoker's log alone, for testbeds that never poll the REST API.
//!
//! Under one transaction id the invoker logs, for each activation it runs:
//! `containerStart … activationId: <id>` (id, action, namespace, start type), on a cold or
//! prewarmed start `sending initialization` and `initialization result`, then
//! `sending arguments` and `running result`, and later `posted completion of activation <id>`.
//! [`Assembler::feed`] gathers them and gives an [`ActivationRecord`] (source `invoker-log`)
//! once the activation has ended: at its `running result`, at an `initialization result` that
//! is not `ok` (no run follows a failed init), or at its `posted …` ack when the result line
//! was not seen.
//!
//! Times follow OpenWhisk's own record (`ContainerProxy`): the run is the `/run` call
//! (starting at `sending arguments`, lasting the duration in the result line's marker, else
//! until that line), the init likewise; `start` is the run's start moved back by the init's
//! duration and `end` the run's end, so `duration` = init + run; `waitTime` is the first
//! number of the first `sending …` line's marker (ms since the controller took the request),
//! which is how OpenWhisk measures it. An init whose result line is missing lasts until
//! `sending arguments` (an upper bound). The status code is not in the log (`ok` is only
//! HTTP 200): it is left unknown; the result's words are in `raw`, with every log time
//! (`containerStart`, `initStart`, `initEnd`, `runStart`, `runEnd`, `posted`, epoch ms).
//!
//! An activation is given once (a reread log repeats nothing). Activations that never end in
//! the log — the recording stopped first, the log started after their `containerStart`, or
//! the tid was forgotten — are left out and counted ([`Assembler::incomplete`]): their spans
//! cannot be told honestly. Memory is bounded as in [`super::link`].

use std::collections::{HashMap, HashSet, VecDeque};

use pws_trace::records::{ActivationRecord, ActivationSource};

use super::link::{start_type_of, MAX_PENDING, PENDING_TTL_MS, RECENT_ASSIGNS};
use super::parse::{LogEvent, LogKind, Outcome};

/// One activation being gathered under its tid.
#[derive(Debug, Clone, Default)]
struct Building {
    start_line_ms: u64,
    id: String,
    action: String,
    namespace: String,
    state: String,
    container: String,
    path: String,
    wait_ms: Option<u64>,
    init_start: Option<u64>,
    init: Option<(u64, Outcome)>,
    run_start: Option<u64>,
    run: Option<(u64, Outcome)>,
    last_ms: u64,
}

#[derive(Debug, Default)]
pub struct Assembler {
    by_tid: HashMap<String, Building>,
    /// Activation ids given, to give each once (bounded: the most recent ones).
    given: HashSet<String>,
    given_order: VecDeque<String>,
    incomplete: u64,
    newest_ms: u64,
    next_sweep_ms: u64,
}

impl Assembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Activations dropped unfinished so far (replaced, forgotten), plus those still pending.
    pub fn incomplete(&self) -> u64 {
        self.incomplete + self.by_tid.len() as u64
    }

    /// The activation `ev` ends, if any; `ts_ns` fields are 0 for the caller to place.
    pub fn feed(&mut self, ev: &LogEvent) -> Option<ActivationRecord> {
        let now = ev.ts_epoch_ms;
        self.newest_ms = self.newest_ms.max(now);
        self.sweep();
        match &ev.kind {
            LogKind::ContainerStart {
                state,
                container,
                action,
                namespace,
                activation_id,
            } => {
                if self.given.contains(activation_id) {
                    return None;
                }
                if let Some(b) = self.by_tid.get(&ev.tid) {
                    if b.id == *activation_id {
                        return None; // the same line again
                    }
                    // A sequence's next component or a rescheduled job: the previous one
                    // under this tid never ended here.
                    self.incomplete += 1;
                }
                self.make_room();
                self.by_tid.insert(
                    ev.tid.clone(),
                    Building {
                        start_line_ms: now,
                        id: activation_id.clone(),
                        action: action.clone(),
                        namespace: namespace.clone(),
                        state: state.clone(),
                        container: container.clone().unwrap_or_default(),
                        last_ms: now,
                        ..Building::default()
                    },
                );
                None
            }
            LogKind::SendingInit { container } => {
                let b = self.by_tid.get_mut(&ev.tid)?;
                b.last_ms = now;
                b.container.clone_from(container);
                b.init_start.get_or_insert(now);
                b.wait_ms = b.wait_ms.or(ev.since_tid_ms);
                None
            }
            LogKind::InitResult(o) => {
                let b = self.by_tid.get_mut(&ev.tid)?;
                b.last_ms = now;
                b.init_start?;
                b.init = Some((now, o.clone()));
                if o.ok() {
                    return None;
                }
                // A failed init ends the activation: no run follows.
                self.give(&ev.tid, None)
            }
            LogKind::SendingArgs {
                namespace_action_path,
                container,
            } => {
                let b = self.by_tid.get_mut(&ev.tid)?;
                b.last_ms = now;
                b.container.clone_from(container);
                b.path = namespace_action_path.trim_start_matches('/').to_owned();
                b.run_start.get_or_insert(now);
                b.wait_ms = b.wait_ms.or(ev.since_tid_ms);
                None
            }
            LogKind::RunResult(o) => {
                let b = self.by_tid.get_mut(&ev.tid)?;
                b.run_start?;
                b.run = Some((now, o.clone()));
                self.give(&ev.tid, None)
            }
            LogKind::Posted { activation_id, .. } => {
                // Acks of activations already given, or that never ran here, add nothing.
                let tid = self
                    .by_tid
                    .iter()
                    .find(|(_, b)| b.id == *activation_id && b.run_start.is_some())
                    .map(|(t, _)| t.clone())?;
                self.give(&tid, Some(now))
            }
            _ => None,
        }
    }

    /// The record of the activation under `tid`, which has ended (at `posted_ms` when its
    /// result line was not seen).
    fn give(&mut self, tid: &str, posted_ms: Option<u64>) -> Option<ActivationRecord> {
        let b = self.by_tid.remove(tid)?;
        let init_start = b.init_start;
        let init_end_line = b.init.as_ref().map(|(t, _)| *t);
        let init_ms = init_start.map(|s| match &b.init {
            Some((t, o)) => o.duration_ms.unwrap_or_else(|| t.saturating_sub(s)),
            // No result line: it ended before the run started.
            None => b.run_start.unwrap_or(s).saturating_sub(s),
        });
        let (start, end) = match b.run_start {
            Some(rs) => {
                let run_ms = match (&b.run, posted_ms) {
                    (Some((t, o)), _) => o.duration_ms.unwrap_or_else(|| t.saturating_sub(rs)),
                    (None, Some(p)) => p.saturating_sub(rs),
                    (None, None) => 0,
                };
                (rs.saturating_sub(init_ms.unwrap_or(0)), rs + run_ms)
            }
            // A failed init: the activation is the init.
            None => {
                let s = init_start?;
                (s, s + init_ms.unwrap_or(0))
            }
        };
        let raw = serde_json::json!({
            "activationId": b.id,
            "containerStart": b.start_line_ms,
            "containerState": b.state,
            "container": b.container,
            "initStart": init_start,
            "initEnd": init_end_line,
            "initResult": b.init.as_ref().map(|(_, o)| o.brief.clone()),
            "runStart": b.run_start,
            "runEnd": b.run.as_ref().map(|(t, _)| *t),
            "runResult": b.run.as_ref().map(|(_, o)| o.brief.clone()),
            "posted": posted_ms,
            "tid": tid,
        });
        if self.given_order.len() >= RECENT_ASSIGNS {
            if let Some(old) = self.given_order.pop_front() {
                self.given.remove(&old);
            }
        }
        self.given.insert(b.id.clone());
        self.given_order.push_back(b.id.clone());
        Some(ActivationRecord {
            activation_id: b.id,
            namespace: b.namespace,
            action: b.action,
            version: String::new(),
            source: ActivationSource::InvokerLog,
            kind: String::new(),
            start_type: start_type_of(&b.state),
            start_epoch_ms: start,
            end_epoch_ms: end,
            start_ns: 0,
            end_ns: 0,
            wait_ms: b.wait_ms,
            init_ms,
            duration_ms: Some(end - start),
            status_code: None,
            memory_limit_mb: None,
            timeout_ms: None,
            container_id: b.container,
            path: b.path,
            caused_by: String::new(),
            raw: raw.to_string(),
        })
    }

    /// Drops the oldest tid when full.
    fn make_room(&mut self) {
        if self.by_tid.len() < MAX_PENDING {
            return;
        }
        if let Some(oldest) = self
            .by_tid
            .iter()
            .min_by_key(|(_, b)| b.last_ms)
            .map(|(k, _)| k.clone())
        {
            self.by_tid.remove(&oldest);
            self.incomplete += 1;
        }
    }

    /// Forgets activations idle for [`PENDING_TTL_MS`] of log time; once a minute of log time.
    fn sweep(&mut self) {
        if self.newest_ms < self.next_sweep_ms {
            return;
        }
        let horizon = self.newest_ms.saturating_sub(PENDING_TTL_MS);
        let before = self.by_tid.len();
        self.by_tid.retain(|_, b| b.last_ms >= horizon);
        self.incomplete += (before - self.by_tid.len()) as u64;
        self.next_sweep_ms = self.newest_ms + 60_000;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::invoker_log::parse::parse_line;
    use pws_trace::records::StartType;

    const C: &str = "4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d";
    const A1: &str = "2f6c3a0e9b8d4c7a8e1f0b2d3c4a5e6f";
    const A2: &str = "7c1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f";

    fn feed(a: &mut Assembler, lines: &[String]) -> Vec<ActivationRecord> {
        lines
            .iter()
            .filter_map(|l| parse_line(l).unwrap())
            .filter_map(|e| a.feed(&e))
            .collect()
    }

    fn start(t: &str, tid: &str, state: &str, c: Option<&str>, aid: &str) -> String {
        let c = c.map_or("None".to_owned(), |c| format!("Some(ContainerId({c}))"));
        format!("[2024-03-05T10:15:{t}Z] [INFO] [#tid_{tid}] [ContainerPool] containerStart containerState: {state} container: {c} activations: 1 of max 1 action: hello namespace: guest activationId: {aid} [marker:invoker_containerStart.{state}_counter:3]")
    }

    fn line(t: &str, tid: &str, msg: &str) -> String {
        format!("[2024-03-05T10:15:{t}Z] [INFO] [#tid_{tid}] [DockerContainer] {msg}")
    }

    #[test]
    fn a_failed_init_ends_the_activation_and_unfinished_ones_are_counted() {
        let mut a = Assembler::new();
        let got = feed(
            &mut a,
            &[
                start("01.000", "t1", "cold", None, A1),
                line("01.100", "t1", &format!("sending initialization to ContainerId({C}) ContainerAddress(172.17.0.6,8080) [marker:invoker_activationInit_start:120]")),
                line("01.400", "t1", "initialization result: not ok [marker:invoker_activationInit_finish:420:299]"),
                start("02.000", "t2", "warmed", Some(C), A2),
            ],
        );
        assert_eq!(got.len(), 1);
        let r = &got[0];
        assert_eq!(
            (r.start_type, r.wait_ms, r.init_ms, r.duration_ms),
            (StartType::Cold, Some(120), Some(299), Some(299))
        );
        assert_eq!(r.end_epoch_ms - r.start_epoch_ms, 299);
        assert!(r.raw.contains("\"initResult\":\"not ok\""), "{}", r.raw);
        assert_eq!(a.incomplete(), 1, "A2 never ran");
        // A replayed containerStart of a given activation starts nothing.
        assert!(feed(&mut a, &[start("01.000", "t1", "cold", None, A1)]).is_empty());
        assert_eq!(a.incomplete(), 1);
    }

    #[test]
    fn an_ack_ends_an_activation_whose_result_line_is_missing() {
        let mut a = Assembler::new();
        let got = feed(
            &mut a,
            &[
                start("01.000", "t1", "warmed", Some(C), A1),
                line("01.010", "t1", &format!("sending arguments to /guest/pkg/hello at ContainerId({C}) ContainerAddress(172.17.0.6,8080)")),
                format!("[2024-03-05T10:15:01.050Z] [INFO] [#tid_t1] [MessagingActiveAck] posted completion of activation {A1}"),
                format!("[2024-03-05T10:15:01.060Z] [INFO] [#tid_t1] [MessagingActiveAck] posted result of activation {A1}"),
            ],
        );
        assert_eq!(got.len(), 1, "{got:?}");
        let r = &got[0];
        assert_eq!(
            (r.duration_ms, r.init_ms, r.wait_ms, r.path.as_str()),
            (Some(40), None, None, "guest/pkg/hello")
        );
        assert_eq!(r.container_id, C);
        assert_eq!(a.incomplete(), 0);
    }
}
