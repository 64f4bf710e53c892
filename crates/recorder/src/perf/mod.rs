//! System-wide perf recording: one group and one ring per online CPU (see `events`), read
//! by copying raw bytes out of the rings (`ring`), never parsing them here.

pub mod events;
pub mod ring;
pub mod tracefs;

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};

use anyhow::{bail, Context, Result};
use pws_trace::records::{PerfEventId, PerfEventInfo, SourceInfo, SourceStatus};

use events::Counter;
use ring::Ring;

#[derive(Debug, Clone)]
pub struct PerfOptions {
    /// Samples per second per CPU.
    pub freq: u64,
    /// Counters read with every sample (names from `events::KNOWN_COUNTERS`).
    pub events: Vec<String>,
    /// Data pages per ring (a power of two).
    pub mmap_pages: usize,
    /// Sample the `cgroup:*` tracepoints.
    pub cgroup_tracepoints: bool,
}

/// Everything opened on one CPU.
#[derive(Debug)]
pub struct CpuPerf {
    pub cpu: u32,
    leader: File,
    /// Kept open: closing an fd would remove its event.
    _members: Vec<File>,
    tracepoints: Vec<File>,
    pub ring: Ring,
}

#[derive(Debug)]
pub struct Perf {
    pub cpus: Vec<CpuPerf>,
    /// Every event as opened, for the trace info.
    pub events: Vec<PerfEventInfo>,
    /// What was used, missing or refused, for the trace info.
    pub sources: Vec<SourceInfo>,
}

struct Planned {
    counter: Counter,
    attr: perf_event_open_sys::bindings::perf_event_attr,
    info: PerfEventInfo,
}

fn info(
    name: &str,
    pmu: &str,
    attr: &perf_event_open_sys::bindings::perf_event_attr,
    format: String,
) -> PerfEventInfo {
    PerfEventInfo {
        name: name.to_owned(),
        pmu: pmu.to_owned(),
        attr: events::attr_bytes(attr),
        ids: Vec::new(),
        format,
    }
}

fn source(name: &str, status: SourceStatus, detail: impl Into<String>) -> SourceInfo {
    SourceInfo {
        kind: "perf".into(),
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

impl Perf {
    /// Opens every event on every CPU in `cpus`. Fails, naming the event, the errno and what to
    /// change, when the kernel refuses the sampling leader; counters the host lacks are left
    /// out and listed as unavailable.
    pub fn open(opts: &PerfOptions, cpus: &[u32], page_size: usize) -> Result<Self> {
        let Some(&first) = cpus.first() else {
            bail!("no online CPU to record")
        };
        if !opts.mmap_pages.is_power_of_two() {
            bail!(
                "--mmap-pages must be a power of two, got {}",
                opts.mmap_pages
            );
        }
        let ring_bytes = opts.mmap_pages * page_size;
        // The kernel wakes the reader each time half a ring more was written, as perf record
        // has it, whether or not the tick drained the ring meanwhile: at 1 kHz a quarter woke
        // the main thread once a second beyond its tick. Half a ring (0.4 s at 10 kHz on the
        // development VM) is left for the main thread to get to the CPU after a wake-up.
        let wakeup = (ring_bytes / 2).clamp(page_size, u32::MAX as usize) as u32;
        let mut sources = Vec::new();

        // The sampling leader: hardware cycles where there is a PMU, else cpu-clock.
        let mut leader = None;
        for c in [events::CYCLES, events::CPU_CLOCK] {
            let mut attr = events::leader_attr(c, opts.freq, wakeup);
            match events::open(&mut attr, first, None) {
                Ok(_) => {
                    leader = Some(Planned {
                        counter: c,
                        attr,
                        info: info(c.name, c.pmu(), &attr, String::new()),
                    });
                    sources.push(source(
                        &format!("sampler:{}", c.name),
                        SourceStatus::Used,
                        format!(
                            "{} Hz per CPU on {} CPUs; switch, task, comm and cgroup records",
                            opts.freq,
                            cpus.len()
                        ),
                    ));
                    break;
                }
                Err(e) if events::is_unsupported(&e) => sources.push(source(
                    &format!("sampler:{}", c.name),
                    SourceStatus::Unavailable,
                    format!("perf_event_open: {e}"),
                )),
                Err(e) => bail!(
                    "perf_event_open refused the {} sampling event on CPU {first}: {e}; {}",
                    c.name,
                    events::refused_hint(&e)
                ),
            }
        }
        let Some(leader) = leader else {
            bail!("neither hardware cycles nor the software cpu-clock event can be opened on this host")
        };

        // Counters read with each sample: keep those the host has.
        let probe_leader = events::open(&mut leader.attr.clone(), first, None)
            .context("reopening the sampling leader")?;
        let mut counters: Vec<Planned> = Vec::new();
        let mut wanted: Vec<Counter> = Vec::new();
        for name in &opts.events {
            let c = events::counter_by_name(name).with_context(|| {
                format!(
                    "unknown event {name:?} in --events (known: {})",
                    known_names()
                )
            })?;
            if c != leader.counter && !wanted.contains(&c) {
                wanted.push(c);
            }
        }
        let probe = |c: Counter, sources: &mut Vec<SourceInfo>| {
            let mut attr = events::counter_attr(c);
            match events::open(&mut attr, first, Some(&probe_leader)) {
                Ok(_) => {
                    sources.push(source(
                        &format!("counter:{}", c.name),
                        SourceStatus::Used,
                        "read with every sample",
                    ));
                    Some(Planned {
                        counter: c,
                        attr,
                        info: info(c.name, c.pmu(), &attr, String::new()),
                    })
                }
                Err(e) => {
                    sources.push(source(
                        &format!("counter:{}", c.name),
                        SourceStatus::Unavailable,
                        format!("perf_event_open: {e}"),
                    ));
                    None
                }
            }
        };
        for c in wanted {
            counters.extend(probe(c, &mut sources));
        }
        if !counters
            .iter()
            .any(|p| p.counter.type_ != perf_event_open_sys::bindings::PERF_TYPE_SOFTWARE)
        {
            // No hardware counter: task-clock still gives exact on-CPU time per slice.
            if !counters.iter().any(|p| p.counter == events::TASK_CLOCK) {
                counters.extend(probe(events::TASK_CLOCK, &mut sources));
            }
        }
        drop(probe_leader);
        let sampler_attr = events::switch_sampler_attr();
        let mut switch = Planned {
            counter: events::CONTEXT_SWITCHES,
            attr: sampler_attr,
            info: info("context-switches", "software", &sampler_attr, String::new()),
        };
        sources.push(source(
            "sampler:context-switches",
            SourceStatus::Used,
            "a sample at every switch-out, reading the group",
        ));

        let mut tps: Vec<(tracefs::Tracepoint, Planned)> = Vec::new();
        if opts.cgroup_tracepoints {
            match tracefs::events_dir() {
                Ok((dir, how)) => {
                    let (found, missing) =
                        tracefs::find(&dir, "cgroup", tracefs::CGROUP_TRACEPOINTS);
                    sources.push(source(
                        "tracepoints:cgroup",
                        if found.is_empty() {
                            SourceStatus::Unavailable
                        } else {
                            SourceStatus::Used
                        },
                        format!(
                            "{how}; {} opened{}",
                            found.len(),
                            if missing.is_empty() {
                                String::new()
                            } else {
                                format!(", not in this kernel: {}", missing.join(", "))
                            }
                        ),
                    ));
                    for tp in found {
                        let attr = events::tracepoint_attr(tp.id);
                        let p = Planned {
                            counter: events::CPU_CLOCK,
                            attr,
                            info: info(&tp.name, "tracepoint", &attr, tp.format.clone()),
                        };
                        tps.push((tp, p));
                    }
                }
                Err(why) => {
                    sources.push(source("tracepoints:cgroup", SourceStatus::Unavailable, why))
                }
            }
        } else {
            sources.push(source(
                "tracepoints:cgroup",
                SourceStatus::Disabled,
                "--no-cgroup-tracepoints",
            ));
        }

        let mut leader = leader;
        let mut opened = Vec::with_capacity(cpus.len());
        for &cpu in cpus {
            let what = |name: &str| format!("opening {name} on CPU {cpu}");
            let lead = events::open(&mut leader.attr, cpu, None)
                .with_context(|| what(leader.counter.name))?;
            leader.info.ids.push(PerfEventId {
                cpu,
                id: events::event_id(&lead)?,
            });
            let mut members = Vec::new();
            for c in counters.iter_mut().chain(std::iter::once(&mut switch)) {
                let f = events::open(&mut c.attr, cpu, Some(&lead))
                    .with_context(|| what(c.counter.name))?;
                c.info.ids.push(PerfEventId {
                    cpu,
                    id: events::event_id(&f)?,
                });
                members.push(f);
            }
            let ring = Ring::map(&lead, page_size, opts.mmap_pages).with_context(|| {
                format!(
                    "mapping the {} KiB ring of CPU {cpu} (perf_event_mlock_kb, ulimit -l)",
                    ring_bytes >> 10
                )
            })?;
            // Group members do not share the leader's ring by themselves: without this the
            // switch sampler's samples would be dropped for want of a buffer.
            for f in &members {
                events::set_output(f, &lead).with_context(|| {
                    format!("redirecting group members on CPU {cpu} to its ring")
                })?;
            }
            let mut tracepoints = Vec::new();
            for (tp, p) in tps.iter_mut() {
                let f = events::open(&mut p.attr, cpu, None).with_context(|| what(&tp.name))?;
                events::set_output(&f, &lead)
                    .with_context(|| format!("redirecting {} on CPU {cpu} to its ring", tp.name))?;
                p.info.ids.push(PerfEventId {
                    cpu,
                    id: events::event_id(&f)?,
                });
                tracepoints.push(f);
            }
            opened.push(CpuPerf {
                cpu,
                leader: lead,
                _members: members,
                tracepoints,
                ring,
            });
        }
        let mut infos = vec![leader.info];
        infos.extend(counters.into_iter().map(|p| p.info));
        infos.push(switch.info);
        infos.extend(tps.into_iter().map(|(_, p)| p.info));
        Ok(Self {
            cpus: opened,
            events: infos,
            sources,
        })
    }

    /// Starts every event; until now nothing was counted or sampled.
    pub fn enable(&self) -> Result<()> {
        for c in &self.cpus {
            for t in &c.tracepoints {
                events::enable(t)
                    .with_context(|| format!("enabling tracepoints on CPU {}", c.cpu))?;
            }
            events::enable(&c.leader)
                .with_context(|| format!("enabling the group on CPU {}", c.cpu))?;
        }
        Ok(())
    }

    /// Stops every event, so a last drain gets everything.
    pub fn disable(&self) {
        for c in &self.cpus {
            let _ = events::disable(&c.leader);
            for t in &c.tracepoints {
                let _ = events::disable(t);
            }
        }
    }

    /// Waits until a ring reaches its watermark, `extra` becomes readable (the signal pipe)
    /// or `timeout_ms` passes.
    pub fn wait(&self, extra: Option<RawFd>, timeout_ms: i32) {
        let mut fds: Vec<libc::pollfd> = self
            .cpus
            .iter()
            .map(|c| c.leader.as_raw_fd())
            .chain(extra)
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of pollfd of the given length for the call's duration.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    }
}

fn known_names() -> String {
    events::KNOWN_COUNTERS
        .iter()
        .map(|c| c.name)
        .collect::<Vec<_>>()
        .join(", ")
}
