//! One recording, start to finish: open the sources, write the trace info, copy the perf
//! rings until a stop condition, and finish the trace. Whatever ends the recording — the
//! command, `--duration`, a signal, an error — the trace is finished.

use std::io::{IsTerminal, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use pws_trace::records::{
    CgroupEvent, CgroupEvents, ClockSync, SourceInfo, SourceStats, SourceStatus, TraceInfo,
    CLOCK_MONOTONIC,
};
use pws_trace::{TraceWriter, WriterOptions};
use serde_json::json;

use crate::activations;
use crate::cli::Args;
use crate::clock;
use crate::cpu_stat::{self, CpuStatReads};
use crate::energy::{self, EnergyReads, GpuReads};
use crate::freezer_v1;
use crate::host::Host;
use crate::perf::{Perf, PerfOptions};
use crate::periodic::{self, Periodic, Schedule};
use crate::snapshot;
use crate::writer::{Live, Msg, Writer};

/// How often a clock pair, pending perf data and statistics are written and made durable.
/// Between ticks the main thread sleeps until a ring reaches its watermark, a periodic read it
/// hosts is due (/proc/stat every 100 ms while steal or IRQ time moves) or a signal comes
/// (stop, or the command exited): an idle recorder wakes about once a second.
const TICK: Duration = Duration::from_secs(1);
/// Ring bytes the main thread gathers between ticks before it hands them to the writer: each
/// message wakes the writer, and a wake-up costs more than the copy (crates/recorder/README.md),
/// so the drains of a tick go over as one message, or sooner past this many bytes (a busy
/// server's rings fill faster than a tick).
const SEND_BYTES: usize = 4 << 20;
/// How long a command gets to exit after SIGTERM is passed on to it, before SIGKILL.
const CHILD_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Outcome {
    /// The command's exit code, if one ran and exited with a code.
    pub command_code: Option<i32>,
}

pub fn record(args: &Args) -> Result<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    // Signals also write to a self-pipe the main thread polls with the rings, so a stop or the
    // command's exit is seen at once whichever thread the kernel delivers the signal to.
    let (wake_rx, wake_tx) = UnixStream::pair().context("cannot create the signal pipe")?;
    wake_rx
        .set_nonblocking(true)
        .context("cannot set up the signal pipe")?;
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal ends the process at once, as with perf: a recorder that cannot
        // finish (a stuck disk) can always be stopped. The first one finishes the trace.
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGCHLD,
    ] {
        let tx = wake_tx
            .try_clone()
            .context("cannot set up the signal pipe")?;
        signal_hook::low_level::pipe::register(sig, tx)
            .context("cannot install signal handlers")?;
    }

    let host = Host::describe();
    let online: Vec<u32> = host
        .cpus
        .iter()
        .filter(|c| c.online)
        .map(|c| c.cpu)
        .collect();
    let perf_opts = PerfOptions {
        freq: args.freq,
        events: args.events.clone(),
        mmap_pages: args.mmap_pages,
        cgroup_tracepoints: !args.no_cgroup_tracepoints,
    };
    let mut perf = Perf::open(&perf_opts, &online, host.page_size as usize)?;

    let start = clock::pair();
    let (snapshot_events, snapshot_detail) =
        snapshot::take(args.cgroup_root.as_deref(), start.monotonic_ns);
    let (freezer, freezer_events, freezer_source) = watch_v1_freezer(args, start.monotonic_ns);
    let energy = energy::detect(&args.energy, &host.cpus)?;
    let mut sources = perf.sources.clone();
    sources.push(SourceInfo {
        kind: "cgroups".into(),
        name: "snapshot".into(),
        status: SourceStatus::Used,
        detail: snapshot_detail,
    });
    sources.push(freezer_source);
    sources.extend(energy.sources);
    let (cpu_stat_reader, cpu_stat_source) = cpu_stat::open(
        std::path::Path::new(cpu_stat::PROC_STAT),
        (!args.no_cpu_stat).then_some((args.cpu_stat_interval, args.cpu_stat_quiet_interval)),
    );
    sources.push(cpu_stat_source);
    // One channel into the writer; every source thread owns a clone of the sender, so the
    // writer ends when the last of them is gone. Messages wait in it until the writer starts.
    let (tx, rx) = mpsc::channel::<Msg>();
    let start_epoch_ms = start.realtime_ns / 1_000_000;
    let (activation_sources, activation_infos) =
        activations::start(&args.activations, start_epoch_ms, &tx)?;
    sources.extend(activation_infos);

    let opts = WriterOptions {
        compression_level: (args.compression_level != 0).then_some(args.compression_level),
        sync_interval: args.sync_interval,
        ..WriterOptions::default()
    };
    let mut trace = TraceWriter::create(&args.output, opts)
        .with_context(|| format!("cannot create trace {}", args.output.display()))?;
    trace.write(&TraceInfo {
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
        perf_events: perf.events.clone(),
        sources: sources.clone(),
        metadata: args.metadata.clone(),
    })?;
    trace.write(&ClockSync { pairs: vec![start] })?;
    trace.write(&CgroupEvents {
        events: snapshot_events,
    })?;
    if !freezer_events.is_empty() {
        trace.write(&CgroupEvents {
            events: freezer_events,
        })?;
    }
    trace.sync()?;

    let live = Arc::new(Live::default());
    let wakeups: Arc<Vec<(u32, AtomicU64)>> =
        Arc::new(online.iter().map(|&c| (c, AtomicU64::new(0))).collect());
    // Energy first: due sources are read in this order, and /proc/stat's read is the slower.
    let mut periodic: Vec<Box<dyn Periodic<Msg>>> = Vec::new();
    let mut own_thread = false;
    match (energy.clocked, energy.reader) {
        (Some(clocked), _) => periodic.push(Box::new(EnergyReads::clocked(clocked))),
        (None, Some(reader)) => {
            own_thread = true;
            periodic.push(Box::new(EnergyReads::new(
                reader,
                args.energy.energy_interval,
            )))
        }
        (None, None) => {}
    }
    if let Some(r) = cpu_stat_reader {
        periodic.push(Box::new(CpuStatReads::new(
            r,
            args.cpu_stat_interval,
            args.cpu_stat_quiet_interval,
        )));
    }
    // Energy read on a user-space clock (every few milliseconds) gets a thread that does
    // nothing else, and /proc/stat rides on its wake-ups. Otherwise — energy the kernel clocks,
    // drained once a second, or none — the reads ride on the main thread's: a thread of their
    // own woke the writer with a message of its own too, two of the recorder's ~5.5 wake-ups a
    // second.
    let (sampler, mut inline) = match own_thread {
        true => (
            Some(
                periodic::spawn(periodic, tx.clone())
                    .context("cannot start the energy and /proc/stat sampling thread")?,
            ),
            Schedule::new(Vec::new()),
        ),
        false => (None, Schedule::new(periodic)),
    };
    // The GPUs on a thread of their own: an NVML read takes milliseconds.
    let gpu_sampler = match energy.gpu {
        Some(reader) => {
            let reads: Box<dyn Periodic<Msg>> = Box::new(GpuReads::new(
                reader,
                args.energy.gpu_interval,
                start.realtime_ns / 1000,
            ));
            Some(
                periodic::spawn_named("pws-gpu", vec![reads], tx.clone())
                    .context("cannot start the NVML (GPU) sampling thread")?,
            )
        }
        None => None,
    };
    let freezer_thread = match freezer {
        Some(w) => Some(
            freezer_v1::spawn(w, tx.clone())
                .context("cannot start the cgroup v1 freezer watcher")?,
        ),
        None => None,
    };
    // Tracepoint samples are the side band the analyzer reads first (the perf index, FORMAT.md).
    let side_band_ids = perf
        .events
        .iter()
        .filter(|e| !e.format.is_empty())
        .flat_map(|e| e.ids.iter().map(|i| i.id))
        .collect();
    let writer = Writer::new(
        trace,
        Arc::clone(&live),
        Arc::clone(&wakeups),
        side_band_ids,
    );
    let writer_thread = std::thread::Builder::new()
        .name("pws-writer".into())
        .spawn(move || writer.run(rx))
        .context("cannot start the writer thread")?;

    let status = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = ProgressBar::new_spinner();
        pb.set_style(
            ProgressStyle::with_template("{spinner} recording {elapsed_precise}  {msg}")
                .expect("valid template"),
        );
        pb
    });

    let mut command_code = None;
    // Drains not yet handed to the writer, and their bytes.
    let (mut round, mut round_bytes) = (Vec::new(), 0usize);
    let recording = (|| -> Result<()> {
        // The first energy and /proc/stat reads before the events start, so that the
        // readings bracket the perf data.
        inline.read_due();
        perf.enable()?;
        let mut child = match args.command.split_first() {
            // Its own process group, so that stopping it stops everything it started.
            Some((prog, rest)) => Some(
                Command::new(prog)
                    .args(rest)
                    .process_group(0)
                    .spawn()
                    .with_context(|| format!("cannot start command {prog:?}"))?,
            ),
            None => None,
        };
        let began = Instant::now();
        let deadline = args.duration.and_then(|d| began.checked_add(d));
        let mut next_tick = began + TICK;
        // The inline sources' grids start with the ticks', so that a read due each second
        // comes at the tick's wake-up and not a few milliseconds from it.
        inline.align(began);
        let mut term_sent: Option<Instant> = None;
        // The loop may end in an error (the writer failed: disk full); the command is cleaned
        // up below either way.
        let looped = (|| -> Result<()> {
            loop {
                let now = Instant::now();
                let wake_at = [deadline, inline.next_due()]
                    .into_iter()
                    .flatten()
                    .fold(next_tick, Instant::min);
                perf.wait(Some(wake_rx.as_raw_fd()), timeout_ms(wake_at, now));
                // Empty the signal pipe: the flags and try_wait below say what happened.
                while (&wake_rx).read(&mut [0u8; 64]).is_ok_and(|n| n > 0) {}
                inline.read_due();
                // One message a tick: drains, what the inline sources read, and the clock pair
                // (or sooner, `SEND_BYTES`).
                round_bytes += drain(&mut perf, &mut round, &wakeups);
                let ticked = Instant::now() >= next_tick;
                if ticked {
                    round.extend(inline.take());
                    round.push(Msg::Tick(clock::pair()));
                    next_tick = periodic::next_on_grid(began, TICK, Instant::now())
                        .unwrap_or_else(|| Instant::now() + TICK);
                }
                if (ticked || round_bytes >= SEND_BYTES) && !round.is_empty() {
                    tx.send(Msg::Batch(std::mem::take(&mut round)))
                        .map_err(|_| anyhow!("the writer thread stopped"))?;
                    round_bytes = 0;
                }
                if let Some(c) = child.as_mut() {
                    if let Some(st) = c.try_wait().context("cannot wait for the command")? {
                        command_code = st.code();
                        break;
                    }
                }
                let signalled = stop.load(Ordering::Relaxed);
                let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
                if signalled || timed_out {
                    match child.as_mut() {
                        None => break,
                        Some(c) => stop_child(c, &mut term_sent),
                    }
                }
                if let Some(pb) = &status {
                    pb.set_message(format!(
                        "{} written, {} samples, {} lost",
                        HumanBytes(live.bytes_written.load(Ordering::Relaxed)),
                        live.samples.load(Ordering::Relaxed),
                        live.lost_records.load(Ordering::Relaxed)
                    ));
                    pb.tick();
                }
            }
            Ok(())
        })();
        if let Some(c) = child.as_mut() {
            if command_code.is_none() {
                signal_group(c, libc::SIGKILL);
                let _ = c.wait();
            }
        }
        looped
    })();
    if let Some(pb) = &status {
        pb.finish_and_clear();
    }
    // Whatever happened, stop the events, copy what is left and finish the trace.
    perf.disable();
    drain(&mut perf, &mut round, &wakeups);
    // Energy and /proc/stat end with the perf data: a last read now, none past the events.
    round.extend(inline.read_last());
    let last = tx
        .send(Msg::Batch(round))
        .map_err(|_| anyhow!("the writer thread stopped"));
    send_stats(&tx, "energy and /proc/stat sampling", Ok(inline.stats()));
    if let Some(s) = sampler {
        send_stats(&tx, "energy and /proc/stat sampling", s.finish());
    }
    if let Some(s) = gpu_sampler {
        send_stats(&tx, "NVML (GPU) sampling", s.finish());
    }
    // Activation feeds then read what is left (a command's last lines, a last API round).
    for st in activation_sources.finish() {
        if st.errors > 0 {
            eprintln!(
                "pws-record: warning: {}: {} problems, last: {}",
                st.name, st.errors, st.last_error
            );
        } else if !st.last_error.is_empty() {
            // No errors, but something left out (activations that never ended): say so.
            eprintln!("pws-record: note: {}: {}", st.name, st.last_error);
        }
        let _ = tx.send(Msg::SourceStats(st));
    }
    if let Some(t) = freezer_thread {
        send_stats(&tx, "cgroup v1 freezer", t.finish().map(|st| [st]));
    }
    let end = clock::pair();
    let _ = tx.send(Msg::Tick(end));
    drop(tx);
    let writer = writer_thread
        .join()
        .map_err(|_| anyhow!("the writer thread panicked"))?
        .with_context(|| format!("writing trace {}", args.output.display()))?;
    let stats = writer.statistics(end.monotonic_ns);
    let blocks = writer.trace.blocks_written() as u64 + 1;
    writer
        .trace
        .finish(end.monotonic_ns)
        .with_context(|| format!("cannot finish trace {}", args.output.display()))?;
    recording?;
    last?;

    let size = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let seconds = (end.monotonic_ns - start.monotonic_ns) as f64 / 1e9;
    let samples = live.samples.load(Ordering::Relaxed);
    let lost = stats.lost_records();
    let throttled: u64 = stats.cpus.iter().map(|c| c.throttled).sum();
    eprintln!(
        "pws-record: wrote {} ({}, {blocks} blocks, {seconds:.1} s): {samples} samples on {} CPUs, {lost} records lost, {throttled} throttled",
        args.output.display(),
        HumanBytes(size),
        online.len(),
    );
    if lost > 0 {
        eprintln!("pws-record: warning: {lost} perf records were lost; try a larger --mmap-pages or a lower --freq");
    }
    if let Some(path) = &args.summary_json {
        let summary = json!({
            "output": args.output.display().to_string(),
            "bytes": size,
            "blocks": blocks,
            "seconds": seconds,
            "command_exit_code": command_code,
            "cpus": online.len(),
            "samples": samples,
            "lost_records": lost,
            "throttled": throttled,
            "per_cpu": stats.cpus.iter().map(|c| json!({"cpu": c.cpu, "bytes": c.bytes, "lost_records": c.lost_records, "throttled": c.throttled, "wakeups": c.wakeups})).collect::<Vec<_>>(),
            "sources": sources.iter().map(|s| json!({"kind": s.kind, "name": s.name, "status": s.status.to_string(), "detail": s.detail})).collect::<Vec<_>>(),
        });
        std::fs::write(path, format!("{summary:#}\n"))
            .with_context(|| format!("cannot write summary {}", path.display()))?;
    }
    Ok(Outcome { command_code })
}

/// The v1 freezer watcher, when a v1 freezer hierarchy is mounted (and `--cgroup-root` does not
/// restrict recording to one v2 tree): v1 freeze and thaw have no tracepoint.
fn watch_v1_freezer(
    args: &Args,
    ts_ns: u64,
) -> (Option<freezer_v1::Watcher>, Vec<CgroupEvent>, SourceInfo) {
    let info = |status, detail| SourceInfo {
        kind: "cgroups".into(),
        name: "v1-freezer-inotify".into(),
        status,
        detail,
    };
    if args.cgroup_root.is_some() {
        let why = "--cgroup-root restricts recording to one cgroup v2 tree".into();
        return (None, Vec::new(), info(SourceStatus::Disabled, why));
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let self_cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let hs = snapshot::hierarchies(&mountinfo, &self_cg);
    let Some(h) = freezer_v1::find(&hs) else {
        let why = "no cgroup v1 freezer hierarchy mounted (v2 freezing comes from the cgroup:cgroup_freeze/unfreeze tracepoints)".into();
        return (None, Vec::new(), info(SourceStatus::Unavailable, why));
    };
    match freezer_v1::Watcher::new(h, ts_ns) {
        Ok((w, events)) => {
            let detail = format!(
                "{} cgroups watched under {} (hierarchy {}): freeze/thaw times are when a write to freezer.state was noticed, not the kernel's own instant",
                w.watched(),
                h.mount.display(),
                h.id
            );
            (Some(w), events, info(SourceStatus::Used, detail))
        }
        Err(e) => {
            let why = format!(
                "cannot watch {} with inotify: {e} (raise fs.inotify.max_user_watches for many cgroups); v1 freeze/thaw are not recorded",
                h.mount.display()
            );
            eprintln!("pws-record: warning: {why}");
            (None, Vec::new(), info(SourceStatus::Failed, why))
        }
    }
}

/// Milliseconds from `now` until `at`, rounded up so a wake never comes early; at least 1.
fn timeout_ms(at: Instant, now: Instant) -> i32 {
    let left = at.saturating_duration_since(now);
    i32::try_from(left.as_micros().div_ceil(1000))
        .unwrap_or(i32::MAX)
        .max(1)
}

/// Passes a source thread's statistics to the writer, or says that it panicked.
fn send_stats(
    tx: &mpsc::Sender<Msg>,
    what: &str,
    ended: std::thread::Result<impl IntoIterator<Item = SourceStats>>,
) {
    match ended {
        Ok(stats) => {
            for st in stats {
                let _ = tx.send(Msg::SourceStats(st));
            }
        }
        Err(_) => {
            eprintln!("pws-record: warning: the {what} thread panicked; its last reads are lost")
        }
    }
}

/// Copies every ring's new bytes into `round`, a message per CPU; returns how many.
fn drain(perf: &mut Perf, round: &mut Vec<Msg>, wakeups: &[(u32, AtomicU64)]) -> usize {
    let mut n = 0;
    for (c, (_, w)) in perf.cpus.iter_mut().zip(wakeups) {
        if c.ring.pending() == 0 {
            continue;
        }
        w.fetch_add(1, Ordering::Relaxed);
        let mut bytes = Vec::with_capacity(c.ring.pending() as usize);
        let (ring_offset, _) = c.ring.drain_into(&mut bytes);
        n += bytes.len();
        round.push(Msg::Perf {
            cpu: c.cpu,
            ring_offset,
            bytes,
        });
    }
    n
}

/// Sends `sig` to the command's whole process group.
fn signal_group(c: &Child, sig: libc::c_int) {
    if let Ok(pid) = i32::try_from(c.id()) {
        // SAFETY: kill(2) on our own child's process group; no memory is involved.
        unsafe { libc::kill(-pid, sig) };
    }
}

/// Passes SIGTERM on to the command's process group once, then SIGKILL after a grace period.
fn stop_child(c: &mut Child, term_sent: &mut Option<Instant>) {
    match term_sent {
        None => {
            signal_group(c, libc::SIGTERM);
            *term_sent = Some(Instant::now());
        }
        Some(t) if t.elapsed() > CHILD_GRACE => signal_group(c, libc::SIGKILL),
        Some(_) => {}
    }
}
