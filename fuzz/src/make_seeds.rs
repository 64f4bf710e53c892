//! Writes valid traces and payloads of every kind into the two corpus folders.
use pws_trace::records::*;
use pws_trace::{Payload, TraceWriter, WriterOptions};

fn payloads() -> Vec<(u16, Vec<u8>)> {
    fn enc<P: Payload>(p: &P) -> (u16, Vec<u8>) {
        let mut v = Vec::new();
        p.encode(&mut v);
        (P::KIND.0, v)
    }
    vec![
        enc(&TraceInfo {
            hostname: "node".into(),
            command_line: vec!["pws-record".into(), "-o".into(), "x.pws".into()],
            cpus: vec![CpuInfo { cpu: 0, online: true, ..CpuInfo::default() }],
            perf_events: vec![PerfEventInfo {
                name: "cpu-clock".into(),
                pmu: "software".into(),
                attr: vec![1; 136],
                ids: vec![PerfEventId { cpu: 0, id: 7 }],
                format: "name: cgroup_mkdir".into(),
            }],
            sources: vec![SourceInfo {
                kind: "energy".into(),
                name: "simulated".into(),
                status: SourceStatus::Used,
                detail: String::new(),
            }],
            metadata: vec![("run".into(), "1".into())],
            ..TraceInfo::default()
        }),
        enc(&EnergyBlock {
            series: vec![EnergySeries {
                source: EnergySource::Powercap,
                domain: EnergyDomain::Package,
                index: 0,
                name: "intel-rapl:0".into(),
                unit_joules: 1e-6,
                wrap: 262_143_328_850,
                samples: (0..20).map(|i| EnergySample { ts_ns: i * 10_000_000, raw: i * 12345 }).collect(),
            }],
        }),
        enc(&CgroupEvents {
            events: vec![CgroupEvent {
                ts_ns: 5,
                op: CgroupOp::Mkdir,
                cgroup_id: 42,
                hierarchy: 0,
                path: "/a".into(),
                pid: 0,
                detail: String::new(),
            }],
        }),
        enc(&Statistics {
            ts_ns: 1,
            cpus: vec![CpuStats { cpu: 0, lost_records: 3, ..CpuStats::default() }],
            sources: vec![],
        }),
        enc(&ClockSync { pairs: vec![ClockPair { monotonic_ns: 1, realtime_ns: 2, uncertainty_ns: 3 }] }),
        enc(&EndBlock { end_monotonic_ns: 9, kinds: vec![], index: vec![], self_offset: 24 }),
    ]
}

fn main() {
    std::fs::create_dir_all("corpus/read_trace").unwrap();
    std::fs::create_dir_all("corpus/decode_payload").unwrap();
    for (i, (kind, p)) in payloads().iter().enumerate() {
        let mut seed = vec![*kind as u8, 0];
        seed.extend_from_slice(p);
        std::fs::write(format!("corpus/decode_payload/seed-{i}"), seed).unwrap();
    }
    for (i, level) in [None, Some(3)].into_iter().enumerate() {
        let opts = WriterOptions { compression_level: level, min_compress_len: 16, ..WriterOptions::default() };
        let mut w = TraceWriter::new(Vec::new(), opts).unwrap();
        for (kind, p) in payloads() {
            if kind != 9 {
                w.write_block(pws_trace::BlockKind(kind), &[&p]).unwrap();
            }
        }
        w.write_perf_data(1, 0, 0, &[&[9, 0, 0, 0, 16, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]]).unwrap();
        std::fs::write(format!("corpus/read_trace/seed-{i}"), w.finish(100).unwrap()).unwrap();
    }
    println!("seeds written under corpus/");
}
