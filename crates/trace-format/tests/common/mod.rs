//! Strategies for random records, a helper that writes a small, varied trace, and what a test
//! that cannot run here does.
#![allow(dead_code)]

use proptest::prelude::*;
use pws_trace::records::*;
use pws_trace::{BlockKind, TraceWriter, WriterOptions};

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9/_.:-]{1,24}", any::<String>()]
}

pub fn trace_info() -> impl Strategy<Value = TraceInfo> {
    (
        (text(), text(), text(), text(), text()),
        prop::collection::vec(text(), 0..4),
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>()),
        prop::collection::vec(
            (
                any::<u32>(),
                any::<bool>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
                any::<u32>(),
            ),
            0..6,
        ),
        prop::collection::vec(
            (
                text(),
                text(),
                prop::collection::vec(any::<u8>(), 0..136),
                prop::collection::vec((any::<u32>(), any::<u64>()), 0..4),
                text(),
            ),
            0..4,
        ),
        prop::collection::vec((text(), text(), any::<u8>(), text()), 0..3),
        prop::collection::vec((text(), text()), 0..3),
    )
        .prop_map(
            |((h, kr, kv, arch, model), cmd, (clock, m, r, ps), cpus, evs, srcs, meta)| TraceInfo {
                hostname: h,
                kernel_release: kr,
                kernel_version: kv,
                arch,
                cpu_model: model,
                recorder: "pws-record".into(),
                recorder_version: "0.1.0".into(),
                command_line: cmd,
                clock,
                start_monotonic_ns: m,
                start_realtime_ns: r,
                page_size: ps,
                cpus: cpus
                    .into_iter()
                    .map(|(cpu, online, package, die, core, numa_node)| CpuInfo {
                        cpu,
                        online,
                        package,
                        die,
                        core,
                        numa_node,
                    })
                    .collect(),
                perf_events: evs
                    .into_iter()
                    .map(|(name, pmu, attr, ids, format)| PerfEventInfo {
                        name,
                        pmu,
                        attr,
                        ids: ids
                            .into_iter()
                            .map(|(cpu, id)| PerfEventId { cpu, id })
                            .collect(),
                        format,
                    })
                    .collect(),
                sources: srcs
                    .into_iter()
                    .map(|(kind, name, status, detail)| SourceInfo {
                        kind,
                        name,
                        status: SourceStatus::from_code(status),
                        detail,
                    })
                    .collect(),
                metadata: meta,
            },
        )
}

pub fn energy() -> impl Strategy<Value = EnergyBlock> {
    prop::collection::vec(
        (
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            text(),
            any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()),
            any::<u64>(),
            prop::collection::vec((any::<u64>(), any::<u64>()), 0..40),
        ),
        0..3,
    )
    .prop_map(|v| EnergyBlock {
        series: v
            .into_iter()
            .map(
                |(src, dom, index, name, unit_joules, wrap, s)| EnergySeries {
                    source: EnergySource::from_code(src),
                    domain: EnergyDomain::from_code(dom),
                    index,
                    name,
                    unit_joules,
                    wrap,
                    samples: s
                        .into_iter()
                        .map(|(ts_ns, raw)| EnergySample { ts_ns, raw })
                        .collect(),
                },
            )
            .collect(),
    })
}

pub fn cgroup_events() -> impl Strategy<Value = CgroupEvents> {
    prop::collection::vec(
        (
            any::<u64>(),
            any::<u8>(),
            any::<u64>(),
            any::<u32>(),
            text(),
            any::<u32>(),
            text(),
        ),
        0..8,
    )
    .prop_map(|v| CgroupEvents {
        events: v
            .into_iter()
            .map(
                |(ts_ns, op, cgroup_id, hierarchy, path, pid, detail)| CgroupEvent {
                    ts_ns,
                    op: CgroupOp::from_code(op),
                    cgroup_id,
                    hierarchy,
                    path,
                    pid,
                    detail,
                },
            )
            .collect(),
    })
}

fn opt() -> impl Strategy<Value = Option<u64>> {
    prop::option::of(0u64..u64::MAX)
}

pub fn activations() -> impl Strategy<Value = Activations> {
    prop::collection::vec(
        (
            (
                text(),
                text(),
                text(),
                text(),
                any::<u8>(),
                text(),
                any::<u8>(),
            ),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
            (opt(), opt(), opt(), opt(), opt(), opt()),
            (text(), text(), text(), text()),
        ),
        0..4,
    )
    .prop_map(|v| Activations {
        records: v
            .into_iter()
            .map(
                |(
                    (id, ns, action, version, src, kind, st),
                    (se, ee, s, e),
                    (w, i, d, sc, mem, to),
                    (cid, path, cb, raw),
                )| {
                    ActivationRecord {
                        activation_id: id,
                        namespace: ns,
                        action,
                        version,
                        source: ActivationSource::from_code(src),
                        kind,
                        start_type: StartType::from_code(st),
                        start_epoch_ms: se,
                        end_epoch_ms: ee,
                        start_ns: s,
                        end_ns: e,
                        wait_ms: w,
                        init_ms: i,
                        duration_ms: d,
                        status_code: sc,
                        memory_limit_mb: mem,
                        timeout_ms: to,
                        container_id: cid,
                        path,
                        caused_by: cb,
                        raw,
                    }
                },
            )
            .collect(),
    })
}

pub fn container_events() -> impl Strategy<Value = ContainerEvents> {
    prop::collection::vec(
        (
            any::<u64>(),
            any::<u8>(),
            any::<u8>(),
            text(),
            text(),
            text(),
            text(),
            any::<u8>(),
            text(),
            text(),
        ),
        0..5,
    )
    .prop_map(|v| ContainerEvents {
        events: v
            .into_iter()
            .map(
                |(ts_ns, op, src, cid, aid, action, namespace, st, cg, detail)| ContainerEvent {
                    ts_ns,
                    op: ContainerOp::from_code(op),
                    source: ActivationSource::from_code(src),
                    container_id: cid,
                    activation_id: aid,
                    action,
                    namespace,
                    start_type: StartType::from_code(st),
                    cgroup_path: cg,
                    detail,
                },
            )
            .collect(),
    })
}

pub fn statistics() -> impl Strategy<Value = Statistics> {
    (
        any::<u64>(),
        prop::collection::vec(any::<(u32, u64, u64, u64, u64, u64, u64)>(), 0..4),
        prop::collection::vec((text(), any::<u64>(), any::<u64>(), text()), 0..3),
    )
        .prop_map(|(ts_ns, cpus, sources)| Statistics {
            ts_ns,
            cpus: cpus
                .into_iter()
                .map(
                    |(cpu, bytes, lost_events, lost_records, throttled, unthrottled, wakeups)| {
                        CpuStats {
                            cpu,
                            bytes,
                            lost_events,
                            lost_records,
                            throttled,
                            unthrottled,
                            wakeups,
                        }
                    },
                )
                .collect(),
            sources: sources
                .into_iter()
                .map(|(name, reads, errors, last_error)| SourceStats {
                    name,
                    reads,
                    errors,
                    last_error,
                })
                .collect(),
        })
}

pub fn clock_sync() -> impl Strategy<Value = ClockSync> {
    prop::collection::vec(any::<(u64, u64, u32)>(), 0..5).prop_map(|v| ClockSync {
        pairs: v
            .into_iter()
            .map(|(monotonic_ns, realtime_ns, uncertainty_ns)| ClockPair {
                monotonic_ns,
                realtime_ns,
                uncertainty_ns,
            })
            .collect(),
    })
}

pub fn cpu_stat() -> impl Strategy<Value = CpuStatBlock> {
    (
        (any::<u64>(), any::<u8>(), any::<u8>()),
        prop::collection::vec(text(), 0..4),
        prop::collection::vec(
            (
                any::<u32>(),
                prop::collection::vec((any::<u64>(), any::<[u64; 4]>()), 0..12),
            ),
            0..3,
        ),
    )
        .prop_map(|((ticks_per_s, irq, steal), fields, cpus)| {
            let n = fields.len();
            CpuStatBlock {
                ticks_per_s,
                irq_time: TimeAccounting::from_code(irq),
                steal_time: TimeAccounting::from_code(steal),
                fields,
                cpus: cpus
                    .into_iter()
                    .map(|(cpu, s)| CpuStatSeries {
                        cpu,
                        samples: s
                            .into_iter()
                            .map(|(ts_ns, v)| CpuStatSample {
                                ts_ns,
                                values: v[..n].to_vec(),
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
}

pub fn gpu() -> impl Strategy<Value = GpuBlock> {
    let sample =
        (any::<u32>(), any::<u64>(), any::<[u8; 4]>()).prop_map(|(pid, timestamp_us, p)| {
            GpuProcessSample {
                pid,
                timestamp_us,
                sm: p[0],
                mem: p[1],
                enc: p[2],
                dec: p[3],
            }
        });
    let process = (any::<u32>(), any::<Option<u64>>())
        .prop_map(|(pid, used_memory)| GpuProcess { pid, used_memory });
    let read = (
        any::<u64>(),
        any::<Option<u64>>(),
        prop::collection::vec(sample, 0..4),
        prop::collection::vec(process, 0..3),
    )
        .prop_map(|(ts_ns, power_mw, utilization, processes)| GpuRead {
            ts_ns,
            power_mw,
            utilization,
            processes,
        });
    prop::collection::vec(
        (
            any::<u32>(),
            text(),
            text(),
            any::<bool>(),
            prop::collection::vec(read, 0..4),
        )
            .prop_map(|(device, uuid, name, mig, reads)| GpuDeviceReads {
                device,
                uuid,
                name,
                mig,
                reads,
            }),
        0..3,
    )
    .prop_map(|devices| GpuBlock { devices })
}

/// A block to write: a typed payload, raw perf bytes, or an unknown kind.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // test data, built a few at a time
pub enum Item {
    Info(TraceInfo),
    Perf {
        cpu: u32,
        ring_offset: u64,
        data: Vec<u8>,
        split: usize,
    },
    Energy(EnergyBlock),
    Cgroups(CgroupEvents),
    Activations(Activations),
    Containers(ContainerEvents),
    Stats(Statistics),
    Clock(ClockSync),
    CpuStat(CpuStatBlock),
    Gpu(GpuBlock),
    Unknown(u16, Vec<u8>),
}

pub fn perf_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        // Compressible, like real perf records.
        (0usize..300, any::<u64>()).prop_map(|(n, x)| (0..n as u64)
            .flat_map(|i| (x ^ (i & 7)).to_le_bytes())
            .collect()),
    ]
}

pub fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        trace_info().prop_map(Item::Info),
        (any::<u32>(), any::<u64>(), perf_bytes(), any::<usize>()).prop_map(
            |(cpu, ring_offset, data, split)| {
                let split = if data.is_empty() {
                    0
                } else {
                    split % data.len()
                };
                Item::Perf {
                    cpu,
                    ring_offset,
                    data,
                    split,
                }
            }
        ),
        energy().prop_map(Item::Energy),
        cgroup_events().prop_map(Item::Cgroups),
        activations().prop_map(Item::Activations),
        container_events().prop_map(Item::Containers),
        statistics().prop_map(Item::Stats),
        clock_sync().prop_map(Item::Clock),
        cpu_stat().prop_map(Item::CpuStat),
        gpu().prop_map(Item::Gpu),
        (12u16..u16::MAX, prop::collection::vec(any::<u8>(), 0..100))
            .prop_map(|(k, v)| Item::Unknown(k, v)),
    ]
}

pub fn write_item<S: pws_trace::Sink>(w: &mut TraceWriter<S>, item: &Item) -> u64 {
    match item {
        Item::Info(x) => w.write(x),
        Item::Perf {
            cpu,
            ring_offset,
            data,
            split,
        } => {
            let (a, b) = data.split_at(*split);
            w.write_perf_data(*cpu, 0, *ring_offset, &[a, b])
        }
        Item::Energy(x) => w.write(x),
        Item::Cgroups(x) => w.write(x),
        Item::Activations(x) => w.write(x),
        Item::Containers(x) => w.write(x),
        Item::Stats(x) => w.write(x),
        Item::Clock(x) => w.write(x),
        Item::CpuStat(x) => w.write(x),
        Item::Gpu(x) => w.write(x),
        Item::Unknown(k, v) => w.write_block(BlockKind(*k), &[v]),
    }
    .expect("writing to memory cannot fail")
}

/// Checks that a decoded record is the item that was written.
pub fn assert_same(item: &Item, rec: &pws_trace::Record<'_>) {
    use pws_trace::Record as R;
    match (item, rec) {
        (Item::Info(a), R::TraceInfo(b)) => assert_eq!(a, &**b),
        (
            Item::Perf {
                cpu,
                ring_offset,
                data,
                ..
            },
            R::PerfData(p),
        ) => {
            assert_eq!(
                (*cpu, *ring_offset, &data[..]),
                (p.cpu, p.ring_offset, &p.data[..])
            )
        }
        (Item::Energy(a), R::Energy(b)) => assert_eq!(a, b),
        (Item::Cgroups(a), R::CgroupEvents(b)) => assert_eq!(a, b),
        (Item::Activations(a), R::Activations(b)) => assert_eq!(a, b),
        (Item::Containers(a), R::ContainerEvents(b)) => assert_eq!(a, b),
        (Item::Stats(a), R::Statistics(b)) => assert_eq!(a, b),
        (Item::Clock(a), R::ClockSync(b)) => assert_eq!(a, b),
        (Item::CpuStat(a), R::CpuStat(b)) => assert_eq!(a, b),
        (Item::Gpu(a), R::Gpu(b)) => assert_eq!(a, b),
        (Item::Unknown(k, _), R::Unknown(kind)) => assert_eq!(*k, kind.0),
        (a, b) => panic!("wrote {a:?}, read {b:?}"),
    }
}

/// A small trace with one block of every kind (compressible perf data included), finished.
pub fn small_trace(opts: WriterOptions, finish: bool) -> Vec<u8> {
    let mut w = TraceWriter::new(Vec::new(), opts).unwrap();
    let info = TraceInfo {
        hostname: "node-1".into(),
        recorder: "pws-record".into(),
        clock: CLOCK_MONOTONIC,
        cpus: vec![CpuInfo {
            cpu: 0,
            online: true,
            ..CpuInfo::default()
        }],
        ..TraceInfo::default()
    };
    w.write(&info).unwrap();
    let perf: Vec<u8> = (0..128u64).flat_map(|i| (i % 5).to_le_bytes()).collect();
    w.write_perf_data(0, 0, 0, &[&perf]).unwrap();
    w.write(&EnergyBlock {
        series: vec![EnergySeries {
            source: EnergySource::Simulated,
            domain: EnergyDomain::Package,
            index: 0,
            name: "sim-pkg".into(),
            unit_joules: 1e-6,
            wrap: 1 << 32,
            samples: vec![
                EnergySample {
                    ts_ns: 10,
                    raw: u32::MAX as u64,
                },
                EnergySample { ts_ns: 20, raw: 5 },
            ],
        }],
    })
    .unwrap();
    w.write(&ClockSync {
        pairs: vec![ClockPair {
            monotonic_ns: 10,
            realtime_ns: 1_700_000_000_000_000_000,
            uncertainty_ns: 3,
        }],
    })
    .unwrap();
    w.write(&Statistics {
        ts_ns: 30,
        ..Statistics::default()
    })
    .unwrap();
    w.write(&CpuStatBlock {
        ticks_per_s: 100,
        irq_time: TimeAccounting::Apart,
        steal_time: TimeAccounting::Included,
        fields: ["irq", "softirq", "steal"].map(String::from).to_vec(),
        cpus: vec![CpuStatSeries {
            cpu: 0,
            samples: vec![
                CpuStatSample {
                    ts_ns: 10,
                    values: vec![5, 9, 120],
                },
                CpuStatSample {
                    ts_ns: 100_000_010,
                    values: vec![6, 9, 131],
                },
            ],
        }],
    })
    .unwrap();
    w.write(&GpuBlock {
        devices: vec![GpuDeviceReads {
            device: 0,
            uuid: "GPU-00000000-1111-2222-3333-444444444444".into(),
            name: "NVIDIA H200".into(),
            mig: false,
            reads: vec![GpuRead {
                ts_ns: 20,
                power_mw: Some(120_500),
                utilization: vec![GpuProcessSample {
                    pid: 4242,
                    timestamp_us: 1_700_000_000_000_010,
                    sm: 80,
                    mem: 20,
                    enc: 0,
                    dec: 0,
                }],
                processes: vec![GpuProcess {
                    pid: 4242,
                    used_memory: Some(512 << 20),
                }],
            }],
        }],
    })
    .unwrap();
    let written = w.bytes_written() as usize;
    let mut bytes = w.finish(40).unwrap();
    if !finish {
        // Exactly what a writer killed before `finish` leaves: the blocks, no end block.
        bytes.truncate(written);
    }
    bytes
}

/// What a test that cannot run here does (skip outside CI, fail under CI).
#[allow(unused_imports)] // not every test file needs it
pub use pws_test_support::cannot_run;
