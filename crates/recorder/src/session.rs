//! One recording: describe the host, write the trace info, keep clocks paired until a stop
//! condition, then finish the trace. Whatever ends the recording, the trace is finished.

use std::io::IsTerminal;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use pws_trace::records::{
    ClockSync, SourceInfo, SourceStatus, Statistics, TraceInfo, CLOCK_MONOTONIC,
};
use pws_trace::{TraceWriter, WriterOptions};
use serde_json::json;

use crate::cli::Args;
use crate::clock;
use crate::host::Host;

/// How often a clock-sync pair is written (and the trace made durable).
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// How long a command gets to exit after SIGTERM is passed on to it, before SIGKILL.
const CHILD_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Outcome {
    /// The command's exit code, if one ran and exited with a code.
    pub command_code: Option<i32>,
}

/// Sources recorded by later versions, listed so every trace says what it does not contain.
fn pending_sources() -> Vec<SourceInfo> {
    [
        (
            "perf",
            "perf_event_open rings",
            "sampling, context switches, task and cgroup records",
        ),
        (
            "energy",
            "auto",
            "perf power PMU, powercap, MSR or simulated counters",
        ),
        (
            "cgroups",
            "lifecycle",
            "cgroup mkdir/rmdir/freeze/thaw/attach",
        ),
    ]
    .into_iter()
    .map(|(kind, name, what)| SourceInfo {
        kind: kind.into(),
        name: name.into(),
        status: SourceStatus::Disabled,
        detail: format!(
            "not recorded by pws-record {}: {what} come in a later version",
            env!("CARGO_PKG_VERSION")
        ),
    })
    .collect()
}

pub fn record(args: &Args) -> Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }

    let host = Host::describe();
    let start = clock::pair();
    let opts = WriterOptions {
        compression_level: (args.compression_level > 0).then_some(args.compression_level),
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(&args.output, opts)
        .with_context(|| format!("cannot create trace {}", args.output.display()))?;
    w.write(&TraceInfo {
        hostname: host.hostname.clone(),
        kernel_release: host.kernel_release.clone(),
        kernel_version: host.kernel_version.clone(),
        arch: host.arch.clone(),
        cpu_model: host.cpu_model.clone(),
        recorder: "pws-record".into(),
        recorder_version: env!("CARGO_PKG_VERSION").into(),
        command_line: std::env::args().collect(),
        clock: CLOCK_MONOTONIC,
        start_monotonic_ns: start.monotonic_ns,
        start_realtime_ns: start.realtime_ns,
        page_size: host.page_size,
        cpus: host.cpus.clone(),
        perf_events: Vec::new(),
        sources: pending_sources(),
        metadata: args.metadata.clone(),
    })?;
    w.write(&ClockSync { pairs: vec![start] })?;
    w.flush()?;

    let mut child = match args.command.split_first() {
        Some((prog, rest)) => Some(
            Command::new(prog)
                .args(rest)
                .spawn()
                .with_context(|| format!("cannot start command {prog:?}"))?,
        ),
        None => None,
    };

    let status = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} recording {elapsed_precise}  {msg}")
                .expect("valid template"),
        );
        pb
    });

    let began = Instant::now();
    let mut last_sync = Instant::now();
    let mut command_code = None;
    let mut term_sent: Option<Instant> = None;
    let result = (|| -> Result<()> {
        loop {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(c) = child.as_mut() {
                if let Some(st) = c.try_wait().context("cannot wait for the command")? {
                    command_code = st.code();
                    break;
                }
            }
            let signalled = stop.load(Ordering::Relaxed);
            let timed_out = args.duration.is_some_and(|d| began.elapsed() >= d);
            if signalled || timed_out {
                match child.as_mut() {
                    None => break,
                    Some(c) => stop_child(c, &mut term_sent),
                }
            }
            if last_sync.elapsed() >= SYNC_INTERVAL {
                w.write(&ClockSync {
                    pairs: vec![clock::pair()],
                })?;
                w.flush()?;
                last_sync = Instant::now();
            }
            if let Some(pb) = &status {
                pb.set_message(format!("{} written", HumanBytes(w.bytes_written())));
                pb.tick();
            }
        }
        Ok(())
    })();
    if let Some(pb) = &status {
        pb.finish_and_clear();
    }
    // Whatever happened above, finish what can be finished: the trace must stay valid.
    if let Some(c) = child.as_mut() {
        if command_code.is_none() && c.try_wait().ok().flatten().is_none() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    let end = clock::pair();
    let finish = (|| -> Result<u64> {
        w.write(&ClockSync { pairs: vec![end] })?;
        w.write(&Statistics {
            ts_ns: end.monotonic_ns,
            cpus: Vec::new(),
            sources: Vec::new(),
        })?;
        let blocks = w.blocks_written() as u64 + 1;
        w.finish(end.monotonic_ns)?;
        Ok(blocks)
    })();
    result?;
    let blocks =
        finish.with_context(|| format!("cannot finish trace {}", args.output.display()))?;

    let size = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let seconds = (end.monotonic_ns - start.monotonic_ns) as f64 / 1e9;
    eprintln!(
        "pws-record: wrote {} ({}, {blocks} blocks, {seconds:.1} s); perf rings, energy and cgroup lifecycles are not recorded by this version",
        args.output.display(),
        HumanBytes(size)
    );
    if let Some(path) = &args.summary_json {
        let summary = json!({
            "output": args.output.display().to_string(),
            "bytes": size,
            "blocks": blocks,
            "seconds": seconds,
            "command_exit_code": command_code,
            "samples": 0,
            "lost_records": 0,
            "sources": pending_sources().iter().map(|s| json!({"kind": s.kind, "name": s.name, "status": s.status.to_string(), "detail": s.detail})).collect::<Vec<_>>(),
        });
        std::fs::write(path, format!("{summary:#}\n"))
            .with_context(|| format!("cannot write summary {}", path.display()))?;
    }
    Ok(Outcome { command_code })
}

/// Passes SIGTERM on to the command once, then SIGKILL after a grace period.
fn stop_child(c: &mut Child, term_sent: &mut Option<Instant>) {
    match term_sent {
        None => {
            if let Ok(pid) = i32::try_from(c.id()) {
                // SAFETY: kill(2) on our own child's pid; no memory is involved.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
            *term_sent = Some(Instant::now());
        }
        Some(t) if t.elapsed() > CHILD_GRACE => {
            let _ = c.kill();
        }
        Some(_) => {}
    }
}
