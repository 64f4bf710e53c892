//! perf.data inputs: the converter on a real `perf record` file (datasets/perf-data), the
//! analyzer's replay of the converted trace against the kernel's own CPU time, and input
//! detection. pws-analyzer is a binary crate, so the modules under test are compiled in here
//! from their sources.

#[path = "../src/inputs/detect.rs"]
mod detect;
#[path = "../src/inputs/perf_data.rs"]
mod perf_data;
// Only the replay entry points are used here.
#[allow(dead_code)]
#[path = "../src/progress.rs"]
mod progress;
#[allow(dead_code)]
#[path = "../src/replay/mod.rs"]
mod replay;
#[allow(dead_code)]
#[path = "../src/spill.rs"]
mod spill;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use detect::{detect, InputKind};
use pws_trace::perf::{PerfAttrs, PerfRecord};
use pws_trace::records::{CLOCK_MONOTONIC, PERF_DATA_SYNTHESIZED};
use pws_trace::{BlockKind, Record, Trace};

fn datasets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets")
}

fn fixture() -> PathBuf {
    datasets().join("perf-data/busy.perf.data")
}

/// A figure of the fixture's PROVENANCE.md, `- key: value` (the first number after the key).
fn provenance(key: &str) -> u64 {
    let text = std::fs::read_to_string(datasets().join("perf-data/PROVENANCE.md")).unwrap();
    let prefix = format!("- {key}:");
    let line = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("PROVENANCE.md has no `{prefix}` line"));
    let digits: String = line
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().unwrap()
}

/// What the converted trace's perf data holds, decoded with the trace format's own decoder.
#[derive(Debug, Default)]
struct Seen {
    samples_per_cpu: BTreeMap<u32, u64>,
    samples_per_event: BTreeMap<String, u64>,
    switch_records: u64,
    cgroups: Vec<(u64, String)>,
    records: u64,
    synthesized: u64,
}

fn decode_all(trace: &Trace) -> (pws_trace::records::TraceInfo, Seen) {
    let mut info = None;
    let mut seen = Seen::default();
    let mut blocks = Vec::new();
    for b in trace.blocks() {
        let b = b.unwrap();
        match b.decode().unwrap() {
            Record::TraceInfo(i) => info = Some(*i),
            Record::PerfData(p) => blocks.push(p.into_owned()),
            _ => {}
        }
    }
    let info = info.expect("a trace-info block");
    let attrs = PerfAttrs::new(&info.perf_events).unwrap();
    for p in &blocks {
        for r in attrs.records(&p.data) {
            let r = r.unwrap_or_else(|e| panic!("CPU {}: {e}", p.cpu));
            seen.records += 1;
            if p.flags & PERF_DATA_SYNTHESIZED != 0 {
                seen.synthesized += 1;
            }
            match r {
                PerfRecord::Sample(s) => {
                    assert_eq!(s.id.cpu, p.cpu, "a sample in another CPU's stream");
                    *seen.samples_per_cpu.entry(p.cpu).or_default() += 1;
                    let name = attrs.events[s.id.event].name.clone();
                    *seen.samples_per_event.entry(name).or_default() += 1;
                }
                PerfRecord::Switch { .. } => seen.switch_records += 1,
                PerfRecord::Cgroup {
                    cgroup_id, path, ..
                } => seen.cgroups.push((cgroup_id, path.to_owned())),
                PerfRecord::UnknownEvent { kind, ident } => {
                    panic!("record type {kind} with unknown identifier {ident}")
                }
                _ => {}
            }
        }
    }
    (info, seen)
}

#[test]
fn every_kernel_record_is_kept_and_decodes() {
    let (trace, notes) = perf_data::to_trace(&fixture()).unwrap();
    let (info, seen) = decode_all(&trace);
    println!("notes: {notes:#?}\nseen: {seen:#?}");

    assert_eq!(info.recorder, perf_data::RECORDER);
    assert_eq!(
        info.clock, CLOCK_MONOTONIC,
        "recorded with -k CLOCK_MONOTONIC"
    );
    assert!(!info.hostname.is_empty() && !info.kernel_release.is_empty());
    assert!(info
        .metadata
        .iter()
        .any(|(k, v)| k == "source" && v == "perf.data"));
    assert!(info
        .metadata
        .iter()
        .any(|(k, v)| k == "perf_command_line" && v.contains("--all-cgroups")));
    let names: Vec<&str> = info.perf_events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["cpu-clock", "context-switches", "dummy"]);
    assert!(info.perf_events.iter().all(|e| e.pmu == "software"));

    // The same records `perf report -D` counts (PROVENANCE.md), all of them decodable.
    assert_eq!(seen.records, provenance("kernel records"));
    assert_eq!(
        seen.samples_per_cpu.values().sum::<u64>(),
        provenance("samples")
    );
    assert_eq!(seen.switch_records, provenance("switch records"));
    assert!(seen.synthesized > 0, "perf's state at start is kept");
    let online: Vec<u32> = info
        .cpus
        .iter()
        .filter(|c| c.online)
        .map(|c| c.cpu)
        .collect();
    assert_eq!(online.len(), 2);
    for cpu in &online {
        assert!(
            seen.samples_per_cpu.get(cpu).copied().unwrap_or(0) > 50,
            "samples on CPU {cpu}: {:?}",
            seen.samples_per_cpu
        );
    }
    assert!(
        seen.samples_per_event
            .get("context-switches")
            .copied()
            .unwrap_or(0)
            > 10,
        "switch-out samples: {:?}",
        seen.samples_per_event
    );
    let busy = provenance("cgroup id");
    assert!(
        seen.cgroups
            .iter()
            .any(|(id, p)| *id == busy && p == "/pws-busy-fixture"),
        "{:?}",
        seen.cgroups
    );

    // The clock reference became a clock-sync pair; no energy, and the notes say why.
    let pairs: usize = trace
        .blocks()
        .filter_map(|b| match b.unwrap().decode().unwrap() {
            Record::ClockSync(c) => Some(c.pairs.len()),
            _ => None,
        })
        .sum();
    assert_eq!(pairs, 1);
    assert!(info.start_realtime_ns > 1_700_000_000_000_000_000);
    assert!(!trace
        .blocks()
        .any(|b| b.unwrap().kind() == BlockKind::ENERGY));
    assert!(notes.iter().any(|n| n.contains("no energy")), "{notes:?}");
    assert!(
        notes.iter().any(|n| n.contains("CLOCK_MONOTONIC")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("perf's own records dropped")),
        "{notes:?}"
    );
}

/// The accounting walks the CPUs in rounds of trace time and sums their cells per package
/// after each: short rounds (the fixture's CPUs wait for each other hundreds of times) and one
/// round give the same cells, segments (summed per package) and statistics, bit for bit.
#[test]
fn rounds_of_any_length_give_the_same_replay() {
    let (trace, _) = perf_data::to_trace(&fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.pws");
    std::fs::write(&path, trace.data()).unwrap();
    let quiet = progress::Progress::hidden();
    let replay_in = |round_ns: u64| {
        let l = replay::load(&path, false).unwrap();
        let (_, blocks) = replay::scan_side_band(&l, &quiet.input(&path)).unwrap();
        let grid =
            replay::grid::Grid::fixed(l.info.start_monotonic_ns, l.end_ns + 1, 10_000_000).unwrap();
        // Every CPU's time in windows of 3 ms: segments cut at grid and window bounds.
        let mut windows: HashMap<u64, replay::cpu::Segments> = HashMap::new();
        let busy = provenance("cgroup id");
        let (start, end) = (l.info.start_monotonic_ns, l.end_ns);
        for t in (start..end).step_by(3_000_000) {
            let w = windows.entry(busy).or_default();
            w.spans.push((t, (t + 3_000_000).min(end)));
        }
        let rep = replay::replay_perf_in_rounds(
            &l,
            &grid,
            &windows,
            blocks,
            &quiet.input(&path),
            round_ns,
        )
        .unwrap();
        let per_cpu: Vec<_> = rep
            .per_cpu
            .iter()
            .map(|c| {
                (
                    c.cpu,
                    c.stats.records,
                    c.stats.group_samples,
                    c.cells.len(),
                    c.activations.len(),
                )
            })
            .collect();
        // The package cells as read back from their spill files.
        let cells: BTreeMap<u32, Vec<_>> = rep
            .per_package
            .iter()
            .map(|(p, c)| (*p, c.iter().collect::<anyhow::Result<Vec<_>>>().unwrap()))
            .collect();
        // The segments summed per package, every value's bits.
        let segments: Vec<_> = rep
            .segments
            .iter()
            .map(|(s, p, u)| {
                let bits: Vec<u64> = u.counters.iter().map(|c| c.to_bits()).collect();
                (s, p, u.cpu_ns, bits)
            })
            .collect();
        (cells, per_cpu, segments)
    };
    let (whole, whole_cpus, whole_segments) = replay_in(u64::MAX);
    let cells: usize = whole.values().map(Vec::len).sum();
    assert!(cells > 100, "the fixture gives cells ({cells})");
    assert!(
        whole_cpus.iter().all(|c| c.3 == 0 && c.4 == 0),
        "the CPUs' cells and segments are handed over"
    );
    assert!(whole_segments.len() > 100, "segments are charged");
    for round_ns in [1_000_000, 7_000_000, 250_000_000] {
        let (rounds, cpus, segments) = replay_in(round_ns);
        assert_eq!(
            rounds, whole,
            "rounds of {round_ns} ns: the same package cells"
        );
        assert_eq!(cpus, whole_cpus, "rounds of {round_ns} ns: the same walks");
        assert_eq!(
            segments, whole_segments,
            "rounds of {round_ns} ns: the same segments"
        );
    }
}

#[test]
fn replay_gives_the_busy_cgroup_its_kernel_cpu_time() {
    let (trace, _) = perf_data::to_trace(&fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.pws");
    std::fs::write(&path, trace.data()).unwrap();

    let l = replay::load(&path, false).unwrap();
    let quiet = progress::Progress::hidden();
    let (side, blocks) = replay::scan_side_band(&l, &quiet.input(&path)).unwrap();
    let busy = provenance("cgroup id");
    assert!(side
        .iter()
        .flat_map(|c| &c.cgroup_paths)
        .any(|(id, p)| *id == busy && p == "/pws-busy-fixture"));
    let grid =
        replay::grid::Grid::fixed(l.info.start_monotonic_ns, l.end_ns + 1, 100_000_000).unwrap();
    let rep = replay::replay_perf(&l, &grid, &HashMap::new(), blocks, &quiet.input(&path)).unwrap();
    let mut per_cgroup: BTreeMap<u64, u64> = BTreeMap::new();
    for c in &rep.per_cpu {
        assert_eq!(c.stats.decode_errors, 0, "{}", c.stats.first_error);
        assert_eq!(c.stats.unknown_ids, 0);
        assert!(c.stats.group_samples > 0, "CPU {} charged nothing", c.cpu);
    }
    for c in rep.per_package.values().flat_map(|c| c.iter()) {
        let (_, cg, u) = c.unwrap();
        *per_cgroup.entry(cg).or_default() += u.cpu_ns;
    }
    let replayed = per_cgroup.get(&busy).copied().unwrap_or(0);
    let kernel = provenance("usage_usec") * 1000;
    let err = (replayed as f64 - kernel as f64) / kernel as f64;
    println!(
        "busy cgroup: replay {replayed} ns, cpu.stat usage_usec {kernel} ns ({:+.2} %)",
        err * 100.0
    );
    assert!(
        err.abs() < 0.05,
        "replay {replayed} ns vs kernel {kernel} ns"
    );
}

/// perf's pipe form (`perf record -o -`) of the fixture: its attrs as HEADER_ATTR records, then
/// the data section as it is.
fn pipe_form(file: &[u8], info: &pws_trace::records::TraceInfo) -> Vec<u8> {
    let u64_at = |o: usize| u64::from_le_bytes(file[o..o + 8].try_into().unwrap());
    let (data_at, data_len) = (u64_at(40) as usize, u64_at(48) as usize);
    let mut out = b"PERFILE2".to_vec();
    out.extend_from_slice(&16u64.to_le_bytes());
    for e in &info.perf_events {
        let size = 8 + e.attr.len() + 8 * e.ids.len();
        out.extend_from_slice(&64u32.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(size as u16).to_le_bytes());
        out.extend_from_slice(&e.attr);
        for id in &e.ids {
            out.extend_from_slice(&id.id.to_le_bytes());
        }
    }
    out.extend_from_slice(&file[data_at..data_at + data_len]);
    out
}

#[test]
fn the_pipe_form_converts_to_the_same_records() {
    let bytes = std::fs::read(fixture()).unwrap();
    let (trace, _) = perf_data::to_trace(&fixture()).unwrap();
    let (info, seen) = decode_all(&trace);
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("pipe.data");
    std::fs::write(&pipe, pipe_form(&bytes, &info)).unwrap();
    assert_eq!(detect(&pipe).unwrap(), InputKind::PerfData);
    let (trace, notes) = perf_data::to_trace(&pipe).unwrap();
    let (_, piped) = decode_all(&trace);
    assert_eq!(piped.records, seen.records);
    assert_eq!(piped.samples_per_cpu, seen.samples_per_cpu);
    assert!(
        notes.iter().any(|n| n.contains("no clock reference")),
        "{notes:?}"
    );
}

#[test]
fn truncated_and_corrupt_files_are_errors_not_panics() {
    let bytes = std::fs::read(fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.perf.data");
    let check = |what: &str, b: &[u8]| {
        std::fs::write(&path, b).unwrap();
        match perf_data::to_trace(&path) {
            Ok((_, notes)) => notes,
            Err(e) => {
                let msg = format!("{e:#}");
                println!("{what}: {msg}");
                assert!(msg.contains("bad.perf.data"), "{what}: {msg}");
                assert!(!msg.contains("parser failed"), "{what}: a panic: {msg}");
                vec![msg]
            }
        }
    };
    let n = bytes.len();
    for cut in [0, 7, 16, 100, 104, 600, n / 2, n - 200, n - 1] {
        let out = check(&format!("cut at {cut}"), &bytes[..cut]);
        assert!(
            out.len() == 1 && out[0].contains("bad.perf.data"),
            "cut at {cut} was accepted: {out:?}"
        );
    }
    // Header fields and the data section, damaged one at a time.
    let mut b = bytes.clone();
    b[16..24].copy_from_slice(&0u64.to_le_bytes());
    assert!(check("attr_size 0", &b)[0].contains("attribute entries"));
    let mut b = bytes.clone();
    b[48..56].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(check("data size", &b)[0].contains("data section"));
    // What a perf killed while recording leaves: no data size, records after the header.
    let mut b = bytes.clone();
    b[48..56].copy_from_slice(&0u64.to_le_bytes());
    assert!(check("unfinished", &b)[0].contains("perf was stopped before it finished"));
    let data_at = u64::from_le_bytes(bytes[40..48].try_into().unwrap()) as usize;
    let mut b = bytes.clone();
    b[data_at + 6..data_at + 8].copy_from_slice(&3u16.to_le_bytes());
    check("a record of 3 bytes", &b);
    // Scattered damage, in the records and in the whole file: decoded, dropped with a note or
    // refused, never a crash.
    let data_end = data_at + u64::from_le_bytes(bytes[48..56].try_into().unwrap()) as usize;
    for (from, to) in [(data_at, data_end), (104, n)] {
        for step in [97usize, 1009, 4099] {
            let mut b = bytes.clone();
            for i in (from..to).step_by(step) {
                b[i] ^= 0xa5;
            }
            let out = check(&format!("every {step}th byte of {from}..{to} flipped"), &b);
            println!("  → {:?}", out.iter().find(|n| n.contains("dropped")));
        }
    }
}

#[test]
fn inputs_are_recognised_by_their_content() {
    let d = datasets();
    assert_eq!(
        detect(&d.join("local-default/local-default.pws")).unwrap(),
        InputKind::Pws
    );
    assert_eq!(detect(&fixture()).unwrap(), InputKind::PerfData);
    assert_eq!(
        detect(&d.join("powerapi-hwpc")).unwrap(),
        InputKind::HwpcCsvDir
    );
    assert_eq!(
        detect(&d.join("powerapi-hwpc/hwpc.json")).unwrap(),
        InputKind::HwpcJson
    );
    assert_eq!(
        detect(&d.join("powerapi-hwpc/hwpc_rapl_2_socket.json")).unwrap(),
        InputKind::HwpcJson
    );

    // A file of random bytes (seeded), and a directory of something else.
    let dir = tempfile::tempdir().unwrap();
    let random = dir.path().join("random.bin");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    std::fs::write(&random, &bytes).unwrap();
    let e = format!("{:#}", detect(&random).unwrap_err());
    assert!(
        e.contains("random.bin") && e.contains("not an input"),
        "{e}"
    );
    let e = format!("{:#}", detect(&d.join("specpower")).unwrap_err());
    assert!(e.contains("specpower"), "{e}");
}
