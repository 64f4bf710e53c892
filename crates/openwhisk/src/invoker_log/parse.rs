//! Reading one invoker log line into what it says about activations and containers.
//!
//! The invoker logs through logback with the pattern
//! `[%d{yyyy-MM-dd'T'HH:mm:ss.SSS'Z'}] [%p] %msg`, and its own messages as
//! `[#tid_<transaction id>] [<class>] <message>`, where a message may end with a metrics marker
//! `[marker:<token>:<ms since the transaction began>[:<ms since the start marker>]]`. The `Z` is
//! a literal in that pattern: the time is the invoker JVM's local time, UTC in OpenWhisk's
//! images; it is read as UTC.
//!
//! The messages used, from OpenWhisk's classic invoker (`ContainerPool`, `ContainerProxy`,
//! `Container`, `DockerClient`, `RuncClient`):
//! - `containerStart containerState: <state> container: <None|Some(ContainerId(<id>))>
//!   activations: <n> of max <m> action: <name> namespace: <ns> activationId: <32 hex>`, where
//!   `action` is the action's own name (no package) and `namespace` the invoking user's;
//! - `sending initialization to ContainerId(<id>) ContainerAddress(<ip>,<port>)`;
//! - `sending arguments to /<ns>/[<pkg>/]<action> at ContainerId(<id>) ContainerAddress(…)`;
//! - `running <docker> [--host tcp://…] run -d … --name <name> … <image> (timeout: …)`,
//!   `running <docker> pause|unpause <id> (…)`, `running <docker> rm -f <id> (…)` and
//!   `running /usr/bin/docker-runc pause|resume <id> (…)`.
//!
//! Names (actions, packages, namespaces) may hold `@`, `.`, `_`, `-` and even spaces, but never
//! `:` (OpenWhisk's `EntityName`), so fields are cut at the `key: ` keywords around them, not at
//! spaces.

use std::time::UNIX_EPOCH;

use super::format::Tool;
use crate::activation::is_activation_id;

/// One invoker log line that says something about activations or containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// The line's time, ms since the epoch.
    pub ts_epoch_ms: u64,
    /// The transaction id, without `#tid_`: one per request (all of a sequence's
    /// components share it), or `sid_…` for the invoker's own work.
    pub tid: String,
    /// The logging class, e.g. `ContainerPool`, `DockerContainer`.
    pub component: String,
    pub kind: LogKind,
    /// The first number of the line's metrics marker: ms since the transaction began (when
    /// the controller took the request), absent without markers.
    pub since_tid_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogKind {
    /// `ContainerPool` gave activation `activation_id` a container: `container` is `None`
    /// when it is still to be created (states `cold`, `recreated`, `warmingCold`).
    ContainerStart {
        /// `cold`, `warmed`, `warming`, `warmingCold`, `prewarmed`, `recreated`,
        /// `recreatedPrewarm`.
        state: String,
        container: Option<String>,
        /// The action's name, without its package.
        action: String,
        /// The invoking user's namespace.
        namespace: String,
        activation_id: String,
    },
    /// `/init` is about to be sent to `container`.
    SendingInit { container: String },
    /// `/run` is about to be sent to `container`; `namespace_action_path` is
    /// `/<ns>/[<pkg>/]<action>`.
    SendingArgs {
        namespace_action_path: String,
        container: String,
    },
    /// `docker run`: a container is being created (its id is not in the line).
    DockerRun {
        /// `--name`: `wsk<invoker>_<n>_<namespace>_<action>` (only letters, digits and `_`
        /// kept), or `…_prewarm_<kind>` for a stem cell.
        name: Option<String>,
        image: String,
    },
    /// `docker pause` or `runc pause`.
    Pause { id: String, tool: Tool },
    /// `docker unpause` or `runc resume`.
    Resume { id: String, tool: Tool },
    /// `docker rm -f`.
    Remove { id: String },
    /// `initialization result: <ok|not ok|a connection error>`: `/init` answered (or failed).
    InitResult(Outcome),
    /// `running result: …`: `/run` answered (or failed).
    RunResult(Outcome),
    /// `posted <completion|result|combined> of activation <id>`: the invoker sent the
    /// activation's active ack to the controller.
    Posted {
        /// `completion`, `result` or `combined`.
        what: String,
        activation_id: String,
    },
}

/// What an `/init` or `/run` call gave, as the invoker logs it when the call ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The response in the invoker's brief words: `ok`, `not ok`, `ok, truncated …`, or a
    /// connection error (`Timeout(…)`, `ConnectionError(…)`, `NoResponseReceived()`).
    pub brief: String,
    /// The call's own duration in ms: the last number of the line's
    /// `[marker:…_finish:<since the transaction began>:<duration>]`, absent without metrics
    /// markers. The line is logged after the call ends, so this is the more exact span.
    pub duration_ms: Option<u64>,
}

impl Outcome {
    /// The container answered with HTTP 200 and a whole response.
    pub fn ok(&self) -> bool {
        self.brief == "ok"
    }
}

/// Why a line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// Not `[time] [LEVEL] …` at all.
    #[error("not an invoker log line: {0}")]
    NotALogLine(&'static str),
    #[error("bad timestamp {ts:?}: {why}")]
    BadTimestamp { ts: String, why: String },
    /// A message we use, but not in the shape OpenWhisk writes it.
    #[error("malformed `{what}` message: {why}")]
    Malformed { what: &'static str, why: String },
}

/// Parses one line. `Ok(None)`: a well-formed log line that says nothing used here (other
/// messages, library lines without a transaction id, continuation lines of a multi-line message,
/// which start with whitespace). `Err`: not an invoker log line, or a message used here in a
/// shape OpenWhisk does not write.
pub fn parse_line(line: &str) -> Result<Option<LogEvent>, LogError> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.starts_with([' ', '\t']) {
        return Ok(None);
    }
    let (ts, rest) = bracket(line).ok_or(LogError::NotALogLine("no [timestamp] at the start"))?;
    let ts_epoch_ms = epoch_ms(ts)?;
    let (level, rest) = bracket(rest).ok_or(LogError::NotALogLine("no [LEVEL] after the time"))?;
    if !matches!(level, "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR") {
        return Err(LogError::NotALogLine("unknown log level"));
    }
    // Lines from libraries (Akka, Kafka, …) have no transaction id: nothing for us.
    let Some((tid, rest)) = bracket(rest).and_then(|(t, r)| Some((t.strip_prefix("#tid_")?, r)))
    else {
        return Ok(None);
    };
    let Some((component, msg)) = bracket(rest) else {
        return Ok(None);
    };
    let kind = match message(strip_marker(msg), msg)? {
        Some(k) => k,
        None => return Ok(None),
    };
    Ok(Some(LogEvent {
        ts_epoch_ms,
        tid: tid.to_owned(),
        component: component.to_owned(),
        kind,
        since_tid_ms: marker_numbers(msg).map(|(t, _)| t),
    }))
}

/// `[inner] rest` → (`inner`, `rest` without one leading space).
fn bracket(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('[')?;
    let end = s.find(']')?;
    let rest = &s[end + 1..];
    Some((&s[..end], rest.strip_prefix(' ').unwrap_or(rest)))
}

fn epoch_ms(ts: &str) -> Result<u64, LogError> {
    let bad = |why: String| LogError::BadTimestamp {
        ts: ts.to_owned(),
        why,
    };
    let t = humantime::parse_rfc3339(ts).map_err(|e| bad(e.to_string()))?;
    let d = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| bad("before 1970".into()))?;
    u64::try_from(d.as_millis()).map_err(|_| bad("out of range".into()))
}

/// The numbers of a message's trailing metrics marker
/// `[marker:<token>:<ms since the transaction began>[:<ms since the start marker>]]`.
pub fn marker_numbers(msg: &str) -> Option<(u64, Option<u64>)> {
    let msg = msg.trim_end();
    let i = msg.rfind("[marker:")?;
    let inner = msg[i + "[marker:".len()..].strip_suffix(']')?;
    let mut nums = inner.split(':').skip(1).map(|n| n.parse::<u64>());
    let since_tid = nums.next()?.ok()?;
    let since_start = match nums.next() {
        Some(n) => Some(n.ok()?),
        None => None,
    };
    Some((since_tid, since_start))
}

/// The message without its trailing metrics marker.
fn strip_marker(msg: &str) -> &str {
    let msg = msg.trim();
    match msg.rfind("[marker:") {
        Some(i) if msg.ends_with(']') => msg[..i].trim_end(),
        _ => msg,
    }
}

/// `msg` without its marker; `whole` with it, for the durations the marker carries.
fn message(msg: &str, whole: &str) -> Result<Option<LogKind>, LogError> {
    let outcome = |brief: &str| Outcome {
        brief: brief.trim().to_owned(),
        duration_ms: marker_numbers(whole).and_then(|(_, d)| d),
    };
    if let Some(rest) = msg.strip_prefix("initialization result: ") {
        return Ok(Some(LogKind::InitResult(outcome(rest))));
    }
    if let Some(rest) = msg.strip_prefix("running result: ") {
        return Ok(Some(LogKind::RunResult(outcome(rest))));
    }
    if let Some(rest) = msg.strip_prefix("posted ") {
        // `posted <what> of activation <id>`; other `posted …` messages are not ours.
        let Some((what, id)) = rest.split_once(" of activation ") else {
            return Ok(None);
        };
        let id = id.split_whitespace().next().unwrap_or_default();
        if !is_activation_id(id) {
            return Err(LogError::Malformed {
                what: "posted … of activation",
                why: format!("activation id {id:?} is not 32 hex digits"),
            });
        }
        return Ok(Some(LogKind::Posted {
            what: what.to_owned(),
            activation_id: id.to_owned(),
        }));
    }
    if let Some(rest) = msg.strip_prefix("containerStart ") {
        return container_start(rest).map(Some);
    }
    if let Some(rest) = msg.strip_prefix("sending initialization to ") {
        let (container, _) = container_id(rest).ok_or_else(|| LogError::Malformed {
            what: "sending initialization",
            why: "no ContainerId(…)".into(),
        })?;
        return Ok(Some(LogKind::SendingInit { container }));
    }
    if let Some(rest) = msg.strip_prefix("sending arguments to ") {
        let bad = |why: &str| LogError::Malformed {
            what: "sending arguments",
            why: why.into(),
        };
        // The path may hold spaces: the last ` at ContainerId(` ends it.
        let i = rest
            .rfind(" at ContainerId(")
            .ok_or_else(|| bad("no ` at ContainerId(…)`"))?;
        let (container, _) =
            container_id(&rest[i + 4..]).ok_or_else(|| bad("no ContainerId(…)"))?;
        return Ok(Some(LogKind::SendingArgs {
            namespace_action_path: rest[..i].to_owned(),
            container,
        }));
    }
    if let Some(rest) = msg.strip_prefix("running ") {
        return command(rest);
    }
    Ok(None)
}

/// `ContainerId(<id>)…` → (`id`, what follows).
fn container_id(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start().strip_prefix("ContainerId(")?;
    let end = s.find(')')?;
    let id = &s[..end];
    (!id.is_empty()).then(|| (id.to_owned(), &s[end + 1..]))
}

fn container_start(rest: &str) -> Result<LogKind, LogError> {
    let bad = |why: String| LogError::Malformed {
        what: "containerStart",
        why,
    };
    let after = |s: &'_ str, key: &str| -> Result<usize, LogError> {
        s.find(key)
            .map(|i| i + key.len())
            .ok_or_else(|| bad(format!("no `{}`", key.trim())))
    };
    let s = &rest[after(rest, "containerState: ")?..];
    let state = s.split(' ').next().unwrap_or_default().to_owned();
    // `container:` and `activations:` appeared in OpenWhisk 1.0; older invokers lack them.
    let container = match s.find(" container: ") {
        Some(i) => {
            let c = &s[i + " container: ".len()..];
            if c.starts_with("None") {
                None
            } else if let Some(inner) = c.strip_prefix("Some(") {
                // `Some(no-container-id)` comes from test stubs only.
                container_id(inner).map(|(id, _)| id)
            } else {
                return Err(bad("container is neither None nor Some(…)".into()));
            }
        }
        None => None,
    };
    // From the end: the id, then the namespace, then the action, so that names with spaces
    // stay whole.
    let ai = rest
        .rfind(" activationId: ")
        .ok_or_else(|| bad("no `activationId:`".into()))?;
    let activation_id = rest[ai + " activationId: ".len()..]
        .split(' ')
        .next()
        .unwrap_or_default();
    if !is_activation_id(activation_id) {
        return Err(bad(format!(
            "activationId {activation_id:?} is not 32 hex digits"
        )));
    }
    let head = &rest[..ai];
    let ni = head
        .rfind(" namespace: ")
        .ok_or_else(|| bad("no `namespace:`".into()))?;
    let namespace = &head[ni + " namespace: ".len()..];
    let head = &head[..ni];
    let action = match head.find(" action: ") {
        Some(i) => &head[i + " action: ".len()..],
        None => return Err(bad("no `action:`".into())),
    };
    if state.is_empty() || action.is_empty() || namespace.is_empty() {
        return Err(bad("an empty containerState, action or namespace".into()));
    }
    Ok(LogKind::ContainerStart {
        state,
        container,
        action: action.to_owned(),
        namespace: namespace.to_owned(),
        activation_id: activation_id.to_owned(),
    })
}

/// `running <binary> <args…> (timeout: …)` from the docker and runc clients.
fn command(rest: &str) -> Result<Option<LogKind>, LogError> {
    let rest = match rest.rfind(" (timeout: ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    let mut words = rest.split_whitespace();
    let Some(bin) = words.next() else {
        return Ok(None);
    };
    let base = bin.rsplit('/').next().unwrap_or(bin);
    let tool = if base == "docker" {
        Tool::Docker
    } else if base.contains("runc") {
        Tool::Runc
    } else {
        return Ok(None);
    };
    // Global options before the subcommand: `docker --host tcp://… run …`.
    let mut words = words.peekable();
    while let Some(w) = words.next_if(|w| w.starts_with('-')) {
        if matches!(
            w,
            "--host" | "-H" | "--config" | "--context" | "-c" | "--log-level" | "-l"
        ) {
            words.next();
        }
    }
    let Some(sub) = words.next() else {
        return Ok(None);
    };
    let args: Vec<&str> = words.collect();
    let what = match (tool, sub) {
        (Tool::Docker, "run") => "docker run",
        (Tool::Docker, "pause") => "docker pause",
        (Tool::Docker, "unpause") => "docker unpause",
        (Tool::Docker, "rm") => "docker rm",
        (Tool::Runc, "pause") => "runc pause",
        (Tool::Runc, "resume") => "runc resume",
        _ => return Ok(None),
    };
    if sub == "run" {
        let name = args.iter().enumerate().find_map(|(i, a)| {
            if *a == "--name" {
                args.get(i + 1).map(|n| (*n).to_owned())
            } else {
                a.strip_prefix("--name=").map(str::to_owned)
            }
        });
        // OpenWhisk puts the image last and runs the image's own command.
        let image =
            args.last()
                .filter(|a| !a.starts_with('-'))
                .ok_or_else(|| LogError::Malformed {
                    what,
                    why: "no image".into(),
                })?;
        return Ok(Some(LogKind::DockerRun {
            name,
            image: (*image).to_owned(),
        }));
    }
    let id = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .ok_or_else(|| LogError::Malformed {
            what,
            why: "no container id".into(),
        })?
        .to_string();
    Ok(Some(match sub {
        "pause" => LogKind::Pause { id, tool },
        "rm" => LogKind::Remove { id },
        _ => LogKind::Resume { id, tool },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3a0c7e1bde5a6d1e8f2b8f4c1d9a0b7e6c5d4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
    const AID: &str = "0d3e6a0a6a7c4b1c9a9c5b7f2e1d0c3b";

    fn kind(line: &str) -> LogKind {
        parse_line(line).unwrap().unwrap().kind
    }

    #[test]
    fn reads_the_line_frame() {
        let l = format!("[2022-04-15T06:04:44.162Z] [INFO] [#tid_sid_invokerNanny] [RuncClient] running /usr/bin/docker-runc pause {ID} (timeout: 10 seconds) [marker:invoker_runc.pause_start:1203]");
        let e = parse_line(&l).unwrap().unwrap();
        assert_eq!(e.ts_epoch_ms, 1_650_002_684_162);
        assert_eq!(e.tid, "sid_invokerNanny");
        assert_eq!(e.component, "RuncClient");
        assert_eq!(
            e.kind,
            LogKind::Pause {
                id: ID.into(),
                tool: Tool::Runc
            }
        );
    }

    #[test]
    fn container_start_with_and_without_a_container() {
        let cold = kind(&format!("[2022-04-15T06:04:44.162Z] [INFO] [#tid_ab12] [ContainerPool] containerStart containerState: cold container: None activations: 1 of max 1 action: hello namespace: guest activationId: {AID} [marker:invoker_containerStart.cold_counter:3]"));
        assert_eq!(
            cold,
            LogKind::ContainerStart {
                state: "cold".into(),
                container: None,
                action: "hello".into(),
                namespace: "guest".into(),
                activation_id: AID.into()
            }
        );
        // Names with `@`, `.`, `-` and even spaces stay whole.
        let warm = kind(&format!("[2022-04-15T06:04:44.162Z] [INFO] [#tid_ab12] [ContainerPool] containerStart containerState: warmed container: Some(ContainerId({ID})) activations: 2 of max 4 action: my action namespace: john@example.com_dev-1 activationId: {AID}"));
        assert_eq!(
            warm,
            LogKind::ContainerStart {
                state: "warmed".into(),
                container: Some(ID.into()),
                action: "my action".into(),
                namespace: "john@example.com_dev-1".into(),
                activation_id: AID.into()
            }
        );
        // Before OpenWhisk 1.0 the line had no container and no count.
        let old = kind(&format!("[2019-01-01T00:00:00.000Z] [INFO] [#tid_1] [ContainerPool] containerStart containerState: prewarmed action: a namespace: ns activationId: {AID}"));
        assert!(
            matches!(old, LogKind::ContainerStart { ref state, container: None, .. } if state == "prewarmed")
        );
    }

    #[test]
    fn init_and_run_carry_the_container() {
        assert_eq!(
            kind(&format!("[2022-04-15T06:04:44.500Z] [INFO] [#tid_ab12] [DockerContainer] sending initialization to ContainerId({ID}) ContainerAddress(172.17.0.5,8080) [marker:invoker_activationInit_start:341]")),
            LogKind::SendingInit { container: ID.into() }
        );
        assert_eq!(
            kind(&format!("[2022-04-15T06:04:44.600Z] [INFO] [#tid_ab12] [DockerContainer] sending arguments to /john@example.com_dev/my pkg/hello at ContainerId({ID}) ContainerAddress(172.17.0.5,8080) [marker:invoker_activationRun_start:441]")),
            LogKind::SendingArgs {
                namespace_action_path: "/john@example.com_dev/my pkg/hello".into(),
                container: ID.into()
            }
        );
        // Metrics logging off: no marker at all.
        assert_eq!(
            kind("[2022-04-15T06:04:44.500Z] [INFO] [#tid_ab12] [KubernetesContainer] sending initialization to ContainerId(wskowdev-invoker-00-1-guest-hello) ContainerAddress(10.244.0.12,8080)"),
            LogKind::SendingInit { container: "wskowdev-invoker-00-1-guest-hello".into() }
        );
    }

    #[test]
    fn docker_and_runc_commands() {
        let run = kind("[2022-04-15T06:04:44.170Z] [INFO] [#tid_ab12] [DockerClientWithFileAccess] running /usr/bin/docker --host tcp://10.0.0.3:2376 run -d --cpu-shares 2 --memory 256m --memory-swap 256m --network bridge -e __OW_API_HOST=https://10.0.0.2 --name wsk0_12_johnexamplecom_dev_hello --cap-drop NET_RAW --cap-drop NET_ADMIN --ulimit nofile=1024:1024 --pids-limit 1024 openwhisk/action-nodejs-v20:nightly (timeout: 1 minute) [marker:invoker_docker.run_start:8]");
        assert_eq!(
            run,
            LogKind::DockerRun {
                name: Some("wsk0_12_johnexamplecom_dev_hello".into()),
                image: "openwhisk/action-nodejs-v20:nightly".into()
            }
        );
        let t = "[2022-04-15T06:04:44.170Z] [INFO] [#tid_sid_invokerNanny] [DockerClientWithFileAccess] running /usr/bin/docker";
        assert_eq!(
            kind(&format!(
                "{t} rm -f {ID} (timeout: 1 minute) [marker:invoker_docker.rm_start:0]"
            )),
            LogKind::Remove { id: ID.into() }
        );
        assert_eq!(
            kind(&format!("{t} pause {ID} (timeout: 10 seconds)")),
            LogKind::Pause {
                id: ID.into(),
                tool: Tool::Docker
            }
        );
        assert_eq!(
            kind(&format!("{t} unpause {ID} (timeout: 10 seconds)")),
            LogKind::Resume {
                id: ID.into(),
                tool: Tool::Docker
            }
        );
        let r = "[2022-04-15T06:04:44.170Z] [INFO] [#tid_ab12] [RuncClient] running /usr/bin/docker-runc";
        assert_eq!(
            kind(&format!(
                "{r} resume {ID} (timeout: 10 seconds) [marker:invoker_runc.resume_start:2]"
            )),
            LogKind::Resume {
                id: ID.into(),
                tool: Tool::Runc
            }
        );
        // Other commands say nothing we use.
        for other in [
            format!("{t} pull openwhisk/action-nodejs-v20:nightly (timeout: 10 minutes)"),
            format!("{t} inspect --format {{{{.NetworkSettings.Networks.bridge.IPAddress}}}} {ID} (timeout: 1 minute)"),
            format!("{t} ps --quiet --no-trunc --all --filter name=wsk0_ (timeout: 1 minute)"),
        ] {
            assert_eq!(parse_line(&other), Ok(None), "{other}");
        }
    }

    #[test]
    fn results_and_completions_carry_their_durations() {
        assert_eq!(
            kind("[2024-03-05T10:15:01.951Z] [INFO] [#tid_ab12] [DockerContainer] initialization result: ok [marker:invoker_activationInit_finish:747:71]"),
            LogKind::InitResult(Outcome { brief: "ok".into(), duration_ms: Some(71) })
        );
        let r = kind("[2024-03-05T10:15:12.340Z] [WARN] [#tid_ab12] [DockerContainer] running result: ConnectionError(java.io.IOException: Connection reset by peer) [marker:invoker_activationRun_finish:943:29]");
        let LogKind::RunResult(o) = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            (o.brief.as_str(), o.duration_ms, o.ok()),
            (
                "ConnectionError(java.io.IOException: Connection reset by peer)",
                Some(29),
                false
            )
        );
        // Metrics markers off: no duration.
        assert_eq!(
            kind("[2024-03-05T10:15:01.951Z] [INFO] [#tid_ab12] [DockerContainer] running result: not ok"),
            LogKind::RunResult(Outcome { brief: "not ok".into(), duration_ms: None })
        );
        assert_eq!(
            kind(&format!("[2023-02-24T14:40:42.103Z] [INFO] [#tid_7re] [MessagingActiveAck] posted completion of activation {AID}")),
            LogKind::Posted { what: "completion".into(), activation_id: AID.into() }
        );
        assert!(matches!(
            parse_line("[2023-02-24T14:40:42.103Z] [INFO] [#tid_7re] [InvokerReactive] posted result of activation 12"),
            Err(LogError::Malformed { .. })
        ));
        assert_eq!(
            marker_numbers("x [marker:invoker_activation_start:4]"),
            Some((4, None))
        );
        assert_eq!(marker_numbers("x [marker:a_finish:7:x]"), None);
    }

    #[test]
    fn lines_we_do_not_use_and_lines_that_are_not_invoker_lines() {
        for ok_none in [
            "[2022-04-15T06:04:44.162Z] [INFO] [#tid_sid_invokerHealth] [InvokerReactive] healthcheck: ping",
            "[2022-04-15T06:04:44.162Z] [INFO] Slf4jLogger started",
            "[2022-04-15T06:04:44.162Z] [WARN] [#tid_ab12] [DockerClientWithFileAccess]  [marker:invoker_docker.run_finish:1520:1512]",
            "\tat org.apache.openwhisk.core.containerpool.ContainerProxy.run(ContainerProxy.scala:1)",
        ] {
            assert_eq!(parse_line(ok_none), Ok(None), "{ok_none}");
        }
        assert_eq!(
            parse_line("garbage"),
            Err(LogError::NotALogLine("no [timestamp] at the start"))
        );
        assert!(matches!(
            parse_line("[yesterday] [INFO] [#tid_1] [X] y"),
            Err(LogError::BadTimestamp { .. })
        ));
        assert!(matches!(
            parse_line("[2022-04-15T06:04:44.162Z] [LOUD] x"),
            Err(LogError::NotALogLine(_))
        ));
        // The JVM's local time with an offset is not what OpenWhisk writes.
        assert!(matches!(
            parse_line("[2022-04-15T06:04:44.162+02:00] [INFO] [#tid_1] [X] y"),
            Err(LogError::BadTimestamp { .. })
        ));
        let e = parse_line("[2022-04-15T06:04:44.162Z] [INFO] [#tid_1] [ContainerPool] containerStart containerState: cold container: None action: a namespace: n activationId: nothex").unwrap_err();
        assert!(
            matches!(
                e,
                LogError::Malformed {
                    what: "containerStart",
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("nothex"), "{e}");
    }
}
