//! An invoker log (`tests/data/invoker.log`: a stem cell prewarmed, a cold start, a warm start
//! after a pause, a prewarmed start, a cold start of a package action in a namespace with `@`
//! and `.` whose container then fails and is removed, the first container removed after idling,
//! unrelated lines and one line of garbage) read and linked end to end; and the lines the local
//! platform writes read back the same way.

use pws_openwhisk::invoker_log::format::{self, Tool};
use pws_openwhisk::invoker_log::link::{Linked, Linker};
use pws_openwhisk::invoker_log::parse::{parse_line, LogError, LogKind};
use pws_trace::records::{ActivationSource, ContainerOp, StartType};

const PRE: &str = "9f1c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d";
const C1: &str = "4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d";
const C4: &str = "b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6";
const A1: &str = "2f6c3a0e9b8d4c7a8e1f0b2d3c4a5e6f";
const A2: &str = "7c1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f";
const A3: &str = "a0b1c2d3e4f5465788a9b0c1d2e3f4a5";
const A4: &str = "d4c3b2a1f0e94d8c7b6a5f4e3d2c1b0a";

/// 2024-03-05T10:15:00.000Z.
const T0: u64 = 1_709_633_700_000;

fn read_log() -> (Vec<Linked>, Vec<(usize, LogError)>, Linker) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/invoker.log");
    let text = std::fs::read_to_string(path).unwrap();
    let mut linker = Linker::new();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        match parse_line(line) {
            Ok(Some(ev)) => out.extend(linker.feed(&ev)),
            Ok(None) => {}
            Err(e) => errors.push((i + 1, e)),
        }
    }
    (out, errors, linker)
}

#[test]
fn the_log_gives_every_link_and_container_operation() {
    let (got, errors, linker) = read_log();
    assert_eq!(
        errors,
        [(25, LogError::NotALogLine("no [timestamp] at the start"))],
        "only the garbage line is rejected"
    );
    type Row<'a> = (u64, ContainerOp, &'a str, &'a str, StartType, &'a str);
    use ContainerOp::*;
    use StartType::*;
    let want: Vec<Row> = vec![
        // Cold start: the `docker run` is held until init names the container.
        (T0 + 1_239, Create, C1, A1, Cold, "wsk0_2_guest_hello"),
        (T0 + 1_236, Assign, C1, A1, Cold, "cold"),
        (T0 + 1_880, Init, C1, A1, Cold, "/init"),
        (T0 + 1_953, Run, C1, A1, Cold, "/guest/hello"),
        (T0 + 2_013, Pause, C1, "", Unknown, "runc pause"),
        // Warm start: resumed under the activation's own tid.
        (T0 + 7_318, Assign, C1, A2, Warm, "warmed"),
        (T0 + 7_320, Resume, C1, A2, Warm, "runc resume"),
        (T0 + 7_346, Run, C1, A2, Warm, "/guest/hello"),
        (T0 + 7_412, Pause, C1, "", Unknown, "runc pause"),
        // Prewarmed: the stem cell's init adds no second Assign.
        (T0 + 9_127, Assign, PRE, A3, Prewarmed, "prewarmed"),
        (T0 + 9_131, Init, PRE, A3, Prewarmed, "/init"),
        (T0 + 9_192, Run, PRE, A3, Prewarmed, "/guest/greet"),
        // A package action in a namespace with `@` and `.`.
        (
            T0 + 11_414,
            Create,
            C4,
            A4,
            Cold,
            "wsk0_3_johnexamplecom_dev_hello",
        ),
        (T0 + 11_410, Assign, C4, A4, Cold, "cold"),
        (T0 + 12_048, Init, C4, A4, Cold, "/init"),
        (
            T0 + 12_311,
            Run,
            C4,
            A4,
            Cold,
            "/john@example.com_dev/utils/hello",
        ),
        (T0 + 12_352, Remove, C4, "", Unknown, "docker rm"),
        // Ten minutes idle: thawed, then removed.
        (T0 + 602_050, Resume, C1, "", Unknown, "runc resume"),
        (T0 + 602_071, Remove, C1, "", Unknown, "docker rm"),
    ];
    let rows: Vec<Row> = got
        .iter()
        .map(|l| {
            let e = &l.event;
            (
                l.ts_epoch_ms,
                e.op,
                e.container_id.as_str(),
                e.activation_id.as_str(),
                e.start_type,
                e.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(rows.len(), want.len(), "{rows:#?}");
    for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "event {i}");
    }
    for l in &got {
        let e = &l.event;
        assert_eq!(
            (e.ts_ns, e.source, e.cgroup_path.as_str()),
            (0, ActivationSource::InvokerLog, "")
        );
        if e.activation_id == A4 {
            assert_eq!(
                (e.namespace.as_str(), e.action.as_str()),
                ("john@example.com_dev", "hello")
            );
        } else if !e.activation_id.is_empty() {
            assert_eq!(e.namespace, "guest");
        }
    }
    // Each activation is assigned once.
    let assigns: Vec<&str> = got
        .iter()
        .filter(|l| l.event.op == Assign)
        .map(|l| l.event.activation_id.as_str())
        .collect();
    assert_eq!(assigns, [A1, A2, A3, A4]);
    // Every tid is done with (run, or the stem cell's `docker run` forgotten after 10 minutes).
    assert_eq!(linker.pending(), 0);
}

#[test]
fn lines_written_by_format_read_back() {
    let id = C1;
    let aid = A1;
    let lines = [
        (
            format::container_start("cold", None, 1, 1, "hello", "guest", aid),
            "ContainerPool",
        ),
        (
            format::docker_run(
                "wsk0_7_guest_hello",
                256,
                "openwhisk/action-nodejs-v20:nightly",
            ),
            Tool::Docker.component(),
        ),
        (
            format::sending_initialization(id, "172.17.0.9"),
            "DockerContainer",
        ),
        (
            format::sending_arguments("guest", "pkg/hello", id, "172.17.0.9"),
            "DockerContainer",
        ),
        (
            format::container_command(Tool::Runc, "pause", id),
            Tool::Runc.component(),
        ),
        (
            format::container_command(Tool::Runc, "resume", id),
            Tool::Runc.component(),
        ),
        (
            format::container_command(Tool::Docker, "pause", id),
            Tool::Docker.component(),
        ),
        (
            format::container_command(Tool::Docker, "unpause", id),
            Tool::Docker.component(),
        ),
        (
            format::container_command(Tool::Docker, "rm", id),
            Tool::Docker.component(),
        ),
        (
            format::container_start("warmed", Some(id), 1, 4, "hello", "guest", aid),
            "ContainerPool",
        ),
    ];
    let kinds: Vec<LogKind> = lines
        .iter()
        .enumerate()
        .map(|(i, (msg, component))| {
            let l = format::line(T0 + i as u64, "pws_1", component, msg);
            let ev = parse_line(&l)
                .unwrap_or_else(|e| panic!("{l}: {e}"))
                .unwrap_or_else(|| panic!("{l}: ignored"));
            assert_eq!(
                (ev.ts_epoch_ms, ev.tid.as_str(), ev.component.as_str()),
                (T0 + i as u64, "pws_1", *component)
            );
            ev.kind
        })
        .collect();
    let start = |state: &str, container: Option<&str>| LogKind::ContainerStart {
        state: state.into(),
        container: container.map(Into::into),
        action: "hello".into(),
        namespace: "guest".into(),
        activation_id: aid.into(),
    };
    assert_eq!(
        kinds,
        [
            start("cold", None),
            LogKind::DockerRun {
                name: Some("wsk0_7_guest_hello".into()),
                image: "openwhisk/action-nodejs-v20:nightly".into()
            },
            LogKind::SendingInit {
                container: id.into()
            },
            LogKind::SendingArgs {
                namespace_action_path: "/guest/pkg/hello".into(),
                container: id.into()
            },
            LogKind::Pause {
                id: id.into(),
                tool: Tool::Runc
            },
            LogKind::Resume {
                id: id.into(),
                tool: Tool::Runc
            },
            LogKind::Pause {
                id: id.into(),
                tool: Tool::Docker
            },
            LogKind::Resume {
                id: id.into(),
                tool: Tool::Docker
            },
            LogKind::Remove { id: id.into() },
            start("warmed", Some(id)),
        ]
    );
}

/// Every activation the fixture runs becomes one record, with OpenWhisk's spans: `start` is
/// the run's start moved back by the init's duration, `end` the run's end.
#[test]
fn the_log_alone_gives_every_activation_record() {
    use pws_openwhisk::invoker_log::activations::Assembler;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/invoker.log");
    let text = std::fs::read_to_string(path).unwrap();
    let mut asm = Assembler::new();
    let recs: Vec<_> = text
        .lines()
        .filter_map(|l| parse_line(l).ok().flatten())
        .filter_map(|e| asm.feed(&e))
        .collect();
    type Row<'a> = (
        &'a str,
        StartType,
        u64,
        u64,
        Option<u64>,
        Option<u64>,
        &'a str,
    );
    let got: Vec<Row> = recs
        .iter()
        .map(|r| {
            assert_eq!(r.source, ActivationSource::InvokerLog);
            assert_eq!(r.duration_ms, Some(r.end_epoch_ms - r.start_epoch_ms));
            (
                r.activation_id.as_str(),
                r.start_type,
                r.start_epoch_ms - T0,
                r.end_epoch_ms - T0,
                r.init_ms,
                r.wait_ms,
                r.container_id.as_str(),
            )
        })
        .collect();
    use StartType::*;
    let want: Vec<Row> = vec![
        // init 71 ms (its marker), run 9 ms from `sending arguments` at 1 953.
        (A1, Cold, 1_953 - 71, 1_962, Some(71), Some(676), C1),
        (A2, Warm, 7_346, 7_352, None, Some(39), C1),
        (A3, Prewarmed, 9_192 - 59, 9_205, Some(59), Some(13), PRE),
        // No `initialization result` line: the init lasts until `sending arguments`.
        (
            A4,
            Cold,
            12_048,
            12_340,
            Some(12_311 - 12_048),
            Some(651),
            C4,
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(
        (recs[0].action.as_str(), recs[0].namespace.as_str()),
        ("hello", "guest")
    );
    assert_eq!(
        (recs[3].namespace.as_str(), recs[3].path.as_str()),
        ("john@example.com_dev", "john@example.com_dev/utils/hello")
    );
    let raw: serde_json::Value = serde_json::from_str(&recs[3].raw).unwrap();
    assert_eq!(
        raw["runResult"],
        "ConnectionError(java.io.IOException: Connection reset by peer)"
    );
    assert_eq!(raw["initEnd"], serde_json::Value::Null);
    assert_eq!(asm.incomplete(), 0);
}
