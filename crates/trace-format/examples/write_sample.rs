//! Writes a small trace with one block of every kind, for other readers to check against.
//!
//! `cargo run -p pws-trace --example write_sample -- OUT.pws [--zstd] [--unfinished]`

use pws_trace::records::*;
use pws_trace::{BlockKind, TraceWriter, WriterOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args
        .first()
        .ok_or("usage: write_sample OUT.pws [--zstd] [--unfinished]")?;
    let zstd = args.iter().any(|a| a == "--zstd");
    let unfinished = args.iter().any(|a| a == "--unfinished");
    let opts = WriterOptions {
        compression_level: zstd.then_some(3),
        min_compress_len: 32,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::create(out, opts)?;
    for block in sample_blocks() {
        match block {
            Sample::Typed(f) => f(&mut w)?,
            Sample::Raw(kind, bytes) => {
                w.write_block(kind, &[&bytes])?;
            }
        }
    }
    if unfinished {
        w.flush()?;
        std::mem::forget(w); // as if killed
    } else {
        w.finish(2_000_000_500)?;
    }
    Ok(())
}

type WriteFn = Box<dyn Fn(&mut TraceWriter<std::fs::File>) -> pws_trace::Result<()>>;

enum Sample {
    Typed(WriteFn),
    Raw(BlockKind, Vec<u8>),
}

fn typed<P: Payload + 'static>(p: P) -> Sample {
    Sample::Typed(Box::new(move |w| w.write(&p).map(drop)))
}

fn sample_blocks() -> Vec<Sample> {
    let perf: Vec<u8> = (0..64u64).flat_map(|i| (i * 3 % 7).to_le_bytes()).collect();
    vec![
        typed(TraceInfo {
            hostname: "node-1".into(),
            kernel_release: "6.18.0".into(),
            kernel_version: "#1 SMP".into(),
            arch: "x86_64".into(),
            cpu_model: "Example CPU @ 2.0GHz".into(),
            recorder: "pws-record".into(),
            recorder_version: "0.1.0".into(),
            command_line: vec![
                "pws-record".into(),
                "-o".into(),
                "run.pws".into(),
                "--".into(),
                "sleep 1".into(),
            ],
            clock: CLOCK_MONOTONIC,
            start_monotonic_ns: 1_000_000_000,
            start_realtime_ns: 1_764_000_000_000_000_000,
            page_size: 4096,
            cpus: vec![
                CpuInfo {
                    cpu: 0,
                    online: true,
                    package: 0,
                    die: 0,
                    core: 0,
                    numa_node: 0,
                },
                CpuInfo {
                    cpu: 1,
                    online: true,
                    package: 0,
                    die: 0,
                    core: 1,
                    numa_node: u32::MAX,
                },
            ],
            perf_events: vec![PerfEventInfo {
                name: "cpu-clock".into(),
                pmu: "software".into(),
                attr: (0..136u8).collect(),
                ids: vec![
                    PerfEventId { cpu: 0, id: 41 },
                    PerfEventId { cpu: 1, id: 300 },
                ],
                format: String::new(),
            }],
            sources: vec![SourceInfo {
                kind: "energy".into(),
                name: "simulated".into(),
                status: SourceStatus::Used,
                detail: "SPECpower curve, ünïcode".into(),
            }],
            metadata: vec![
                ("run".into(), "r1".into()),
                ("workload".into(), "demo".into()),
            ],
        }),
        Sample::Typed(Box::new(move |w| {
            w.write_perf_data(1, 0, 8192, &[&perf[..100], &perf[100..]])
                .map(drop)
        })),
        typed(EnergyBlock {
            series: vec![EnergySeries {
                source: EnergySource::Powercap,
                domain: EnergyDomain::Package,
                index: 0,
                name: "intel-rapl:0".into(),
                unit_joules: 1e-6,
                wrap: 262_143_328_851,
                samples: vec![
                    EnergySample {
                        ts_ns: 1_000_000_000,
                        raw: 262_143_000_000,
                    },
                    EnergySample {
                        ts_ns: 1_010_000_000,
                        raw: 262_143_328_000,
                    },
                    EnergySample {
                        ts_ns: 1_020_000_000,
                        raw: 1_000,
                    },
                ],
            }],
        }),
        typed(CgroupEvents {
            events: vec![CgroupEvent {
                ts_ns: 1_005_000_000,
                op: CgroupOp::Freeze,
                cgroup_id: 12345,
                hierarchy: 0,
                path: "/pws/fn-1".into(),
                pid: 0,
                detail: String::new(),
            }],
        }),
        typed(Activations {
            records: vec![ActivationRecord {
                activation_id: "0123456789abcdef0123456789abcdef".into(),
                namespace: "guest".into(),
                action: "hello".into(),
                version: "0.0.1".into(),
                source: ActivationSource::JsonLines,
                kind: "nodejs:20".into(),
                start_type: StartType::Cold,
                start_epoch_ms: 1_764_000_000_100,
                end_epoch_ms: 1_764_000_000_350,
                start_ns: 1_100_000_000,
                end_ns: 1_350_000_000,
                wait_ms: Some(12),
                init_ms: Some(200),
                duration_ms: Some(250),
                status_code: Some(0),
                memory_limit_mb: Some(256),
                timeout_ms: None,
                container_id: "c1".into(),
                path: "guest/hello".into(),
                caused_by: String::new(),
                raw: "{\"activationId\":\"0123456789abcdef0123456789abcdef\"}".into(),
            }],
        }),
        typed(ContainerEvents {
            events: vec![ContainerEvent {
                ts_ns: 1_090_000_000,
                op: ContainerOp::Assign,
                source: ActivationSource::InvokerLog,
                container_id: "c1".into(),
                activation_id: "0123456789abcdef0123456789abcdef".into(),
                action: "hello".into(),
                namespace: "guest".into(),
                start_type: StartType::Cold,
                cgroup_path: "/system.slice/docker-c1.scope".into(),
                detail: "containerStart".into(),
            }],
        }),
        typed(Statistics {
            ts_ns: 1_900_000_000,
            cpus: vec![CpuStats {
                cpu: 0,
                bytes: 4096,
                lost_events: 1,
                lost_records: 17,
                throttled: 2,
                unthrottled: 2,
                wakeups: 9,
            }],
            sources: vec![SourceStats {
                name: "energy:powercap".into(),
                reads: 100,
                errors: 1,
                last_error: "EIO".into(),
            }],
        }),
        typed(ClockSync {
            pairs: vec![ClockPair {
                monotonic_ns: 1_000_000_000,
                realtime_ns: 1_764_000_000_000_000_000,
                uncertainty_ns: 150,
            }],
        }),
        Sample::Raw(
            BlockKind(0x8001),
            b"a private block kind readers must skip".to_vec(),
        ),
    ]
}
