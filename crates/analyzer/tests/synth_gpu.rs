//! `pws-analyze synth --gpus N`: synthetic GPUs whose energy has a known ground truth. The
//! trace must decode; each device's counter must add up to the truth (up to the energy after
//! its last update), move only every update period although it is read more often, and the
//! activations' true dynamic energy plus idle must make each device's total; every GPU pid must
//! be one the perf samples carry with its container's cgroup; without `--gpus` nothing changes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use pws_trace::perf::{PerfAttrs, PerfRecord};
use pws_trace::records::{
    CgroupOp, EnergyDomain, EnergySource, GpuDeviceReads, GpuRead, TraceInfo,
};
use pws_trace::{Record, Trace};

const T0: u64 = 1_000_000_000_000;
const T0_REALTIME: u64 = 1_767_225_600_000_000_000;
const MS: u64 = 1_000_000;

fn synth(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
        .arg("synth")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "synth {flags:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// What a trace holds that these tests look at.
#[derive(Default)]
struct Decoded {
    info: Option<TraceInfo>,
    truth: serde_json::Value,
    /// GPU counters per device: (ts, raw).
    counters: BTreeMap<u32, Vec<(u64, u64)>>,
    /// Every energy series' (source, domain, index, name).
    series: BTreeSet<(String, String, u32, String)>,
    /// gpu reads per device, with the device's description from the first block.
    reads: BTreeMap<u32, Vec<GpuRead>>,
    devices: BTreeMap<u32, GpuDeviceReads>,
    gpu_blocks: usize,
    /// Per pid: every cgroup its perf samples carry and its first sample's time.
    pids: BTreeMap<u32, (BTreeSet<u64>, u64)>,
    /// Container cgroups removed (rmdir), with the instant.
    removed: BTreeMap<u64, u64>,
    /// Each activation record's function.
    action_of: BTreeMap<String, String>,
}

fn decode(path: &Path) -> Decoded {
    let t = Trace::open(path).unwrap();
    let mut d = Decoded::default();
    let mut attrs = None;
    for b in t.blocks() {
        match b.unwrap().decode().unwrap() {
            Record::TraceInfo(i) => {
                attrs = Some(PerfAttrs::new(&i.perf_events).unwrap());
                let text = &i.metadata.iter().find(|(k, _)| k == "pws.truth").unwrap().1;
                d.truth = serde_json::from_str(text).unwrap();
                d.info = Some(*i);
            }
            Record::PerfData(p) => {
                let attrs = attrs.as_ref().expect("trace-info first");
                for r in attrs.records(&p.data) {
                    let PerfRecord::Sample(s) = r.unwrap() else {
                        panic!("only samples")
                    };
                    let (pid, time) = (s.id.pid, s.id.time);
                    let cg = s.cgroup.expect("cgroup ids in the samples");
                    let e = d.pids.entry(pid).or_insert((BTreeSet::new(), time));
                    e.0.insert(cg);
                    e.1 = e.1.min(time);
                }
            }
            Record::Energy(e) => {
                for s in e.series {
                    d.series.insert((
                        s.source.to_string(),
                        format!("{:?}", s.domain),
                        s.index,
                        s.name.clone(),
                    ));
                    if s.domain == EnergyDomain::Gpu {
                        assert_eq!(s.source, EnergySource::Simulated, "never looks measured");
                        assert_eq!(s.name, format!("synthetic-gpu:{}", s.index));
                        assert_eq!((s.unit_joules, s.wrap), (1e-3, 0));
                        d.counters
                            .entry(s.index)
                            .or_default()
                            .extend(s.samples.iter().map(|x| (x.ts_ns, x.raw)));
                    }
                }
            }
            Record::Gpu(g) => {
                d.gpu_blocks += 1;
                for dev in g.devices {
                    d.reads
                        .entry(dev.device)
                        .or_default()
                        .extend(dev.reads.iter().cloned());
                    d.devices.entry(dev.device).or_insert(GpuDeviceReads {
                        reads: Vec::new(),
                        ..dev
                    });
                }
            }
            Record::Activations(a) => {
                for r in a.records {
                    d.action_of.insert(r.activation_id, r.action);
                }
            }
            Record::CgroupEvents(c) => {
                for e in c.events {
                    if e.op == CgroupOp::Rmdir {
                        d.removed.insert(e.cgroup_id, e.ts_ns);
                    }
                }
            }
            _ => {}
        }
    }
    assert!(d.info.is_some(), "a trace-info block");
    d
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("a number: {v}"))
}

/// Every check that holds for any `--gpus` trace of `seconds` seconds.
fn check_gpu_trace(d: &Decoded, n: u32, seconds: u64) {
    let g = &d.truth["gpu"];
    assert!(g.is_object(), "a gpu object in the truth");
    let update_ms = g["update_period_ms"].as_u64().unwrap();
    let jitter_ms = g["update_jitter_ms"].as_u64().unwrap();
    let read_ms = g["read_period_ms"].as_u64().unwrap();
    let sampling_ms = g["sampling_period_ms"].as_u64().unwrap();
    let devices = g["devices"].as_array().unwrap();
    assert_eq!(devices.len(), n as usize);
    let info = d.info.as_ref().unwrap();
    let src = info
        .sources
        .iter()
        .find(|s| s.name == "synthetic-gpu")
        .expect("a synthetic-gpu source");
    assert_eq!(src.kind, "energy");
    assert!(src.detail.contains("not a measurement"), "{}", src.detail);

    let functions = g["functions"].as_array().unwrap();
    let w_of_cgroup: BTreeMap<u64, f64> = g["cgroup_w_at_full_sm"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), f(v)))
        .collect();
    assert!(!w_of_cgroup.is_empty());
    // Functions of even index use device index/2 % n; odd ones none; their constants differ.
    let mut per_sm_second = BTreeSet::new();
    for (k, fun) in functions.iter().enumerate() {
        if k % 2 == 1 {
            assert!(fun["device"].is_null(), "{fun}");
            continue;
        }
        assert_eq!(
            fun["device"].as_u64().unwrap(),
            (k as u64 / 2) % u64::from(n)
        );
        let w = f(&fun["w_at_full_sm"]);
        let duty = f(&fun["sm_duty"]);
        assert!(
            (120.0..=350.0).contains(&w) && (0.25..=0.95).contains(&duty),
            "{fun}"
        );
        per_sm_second.insert(w.to_bits());
    }
    assert_eq!(
        per_sm_second.len(),
        functions.len().div_ceil(2),
        "each GPU function its own power per SM-second"
    );
    let act_j = g["activation_dynamic_j"].as_object().unwrap();
    assert!(act_j.len() > 20, "{} GPU activations", act_j.len());

    let ms_total = seconds * 1000;
    let span_s = seconds as f64;
    for (di, dev) in devices.iter().enumerate() {
        let di = di as u32;
        assert_eq!(dev["index"].as_u64(), Some(u64::from(di)));
        let idle = f(&dev["idle_w"]);
        let total = f(&g["device_energy_j"][di as usize]);
        let meta = &d.devices[&di];
        assert_eq!(meta.uuid, dev["uuid"].as_str().unwrap());
        assert_eq!((meta.name.as_str(), meta.mig), ("synthetic GPU", false));

        // The activations' dynamic energy plus idle make the device's total.
        let on_device: Vec<(usize, &serde_json::Value)> = functions
            .iter()
            .enumerate()
            .filter(|(_, x)| x["device"].as_u64() == Some(u64::from(di)))
            .collect();
        assert!(!on_device.is_empty(), "device {di} has GPU functions");
        let w_max = on_device
            .iter()
            .map(|(_, x)| f(&x["w_at_full_sm"]))
            .fold(0.0, f64::max);
        // The activations of this device's functions: their records name the function.
        let dynamic: f64 = d
            .truth_activations_on(&on_device)
            .iter()
            .map(|id| f(&act_j[id.as_str()]))
            .sum();
        let sum = dynamic + idle * span_s;
        assert!(
            (sum - total).abs() <= 0.01 * total,
            "device {di}: activations {dynamic} J + idle {} J vs {total} J",
            idle * span_s
        );
        assert!(dynamic > 0.01 * total, "device {di}: some GPU work");

        // The counter: reads every read period, never falling, its increase the truth up to
        // the energy after its last update.
        let c = &d.counters[&di];
        assert!(c.windows(2).all(|w| w[1].0 == w[0].0 + read_ms * MS));
        assert!(
            c.windows(2).all(|w| w[1].1 >= w[0].1),
            "device {di}: monotonic"
        );
        assert_eq!(c.len() as u64, (ms_total - 37 % read_ms).div_ceil(read_ms));
        let increase = (c.last().unwrap().1 - c[0].1) as f64 * 1e-3;
        let after_last = total - increase;
        let slack_s = (read_ms + update_ms + jitter_ms) as f64 * 1e-3;
        assert!(
            after_last >= -1e-3 && after_last <= (idle + w_max) * slack_s,
            "device {di}: counter {increase} J vs truth {total} J"
        );
        assert_eq!(
            c[0].1,
            g["counter_base_mj"][di as usize].as_u64().unwrap(),
            "the first read sees the first update (at the start)"
        );

        // The reads: the counter's instants, power between idle and idle + the largest
        // function's, utilisation samples once each, in order, per sampling period.
        let reads = &d.reads[&di];
        assert_eq!(reads.len(), c.len());
        let mut last_ts_us = 0;
        let mut sm_j = 0.0;
        let mut per_period: BTreeMap<u64, u32> = BTreeMap::new();
        for (r, &(ts, _)) in reads.iter().zip(c) {
            assert_eq!(r.ts_ns, ts);
            let p = r.power_mw.expect("instantaneous power") as f64 * 1e-3;
            assert!(p >= idle - 1e-3 && p <= idle + w_max + 1e-3, "{p} W");
            let read_us = (T0_REALTIME + (ts - T0)) / 1000;
            for s in &r.utilization {
                assert!(s.timestamp_us <= read_us, "a sample after its read");
                assert!(s.timestamp_us >= last_ts_us, "samples in order, once");
                last_ts_us = s.timestamp_us;
                let end_ms = (s.timestamp_us * 1000 - T0_REALTIME) / MS;
                assert_eq!(end_ms % sampling_ms, 0, "at the end of a sampling period");
                assert!((1..=100).contains(&s.sm), "{s:?}");
                assert!(s.mem <= s.sm && (s.enc, s.dec) == (0, 0), "{s:?}");
                *per_period.entry(s.timestamp_us).or_default() += u32::from(s.sm);
                let cg = single_cgroup(d, s.pid);
                let w = w_of_cgroup[&cg];
                sm_j += f64::from(s.sm) / 100.0 * sampling_ms as f64 * 1e-3 * w;
            }
        }
        // One kernel at a time: the shares of a period add up to at most 100 % (± rounding).
        assert!(per_period.values().all(|&x| x <= 101), "{per_period:?}");
        // SM shares weighted by each cgroup's true power per SM-second give the dynamic energy
        // back (up to rounding and the samples after the last read).
        assert!(
            (sm_j - dynamic).abs()
                <= 0.03 * dynamic + w_max * (sampling_ms + read_ms) as f64 * 1e-3,
            "device {di}: from the samples {sm_j} J vs {dynamic} J"
        );
    }
    // Every GPU pid is one the perf samples carry, with one GPU container's cgroup, no later
    // than its first GPU work; a process holds memory only while its container exists.
    let mut seen = BTreeSet::new();
    for (di, reads) in &d.reads {
        for r in reads {
            for s in &r.utilization {
                let cg = single_cgroup(d, s.pid);
                assert!(
                    w_of_cgroup.contains_key(&cg),
                    "pid {} in cgroup {cg}",
                    s.pid
                );
                let first = d.pids[&s.pid].1;
                let at = (s.timestamp_us * 1000 - T0_REALTIME) + T0;
                assert!(first <= at, "pid {} sampled before it ran", s.pid);
                seen.insert(s.pid);
            }
            for p in &r.processes {
                let cg = single_cgroup(d, p.pid);
                assert!(
                    w_of_cgroup.contains_key(&cg),
                    "pid {} in cgroup {cg}",
                    p.pid
                );
                assert!(p
                    .used_memory
                    .is_some_and(|m| (1 << 30..4 << 30).contains(&m)));
                assert!(
                    d.removed.get(&cg).is_none_or(|&rm| rm > r.ts_ns),
                    "device {di}: pid {} listed after its container went",
                    p.pid
                );
                // Listed from its container's first activation: it runs then.
                assert!(
                    d.pids[&p.pid].1 <= r.ts_ns + MS,
                    "pid {} listed early",
                    p.pid
                );
            }
        }
    }
    assert!(!seen.is_empty());
}

/// The one cgroup the perf samples give `pid` (fails if none or several).
fn single_cgroup(d: &Decoded, pid: u32) -> u64 {
    let (cgs, _) = d
        .pids
        .get(&pid)
        .unwrap_or_else(|| panic!("pid {pid} in no perf sample"));
    assert_eq!(cgs.len(), 1, "pid {pid}: cgroups {cgs:?}");
    *cgs.first().unwrap()
}

impl Decoded {
    /// The truth's GPU activations whose function is one of `on` (the records name it).
    fn truth_activations_on(&self, on: &[(usize, &serde_json::Value)]) -> Vec<String> {
        let names: BTreeSet<&str> = on
            .iter()
            .map(|(_, x)| x["name"].as_str().unwrap())
            .collect();
        self.truth["gpu"]["activation_dynamic_j"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|id| {
                let action = self.action_of.get(id.as_str()).expect("a record");
                names.contains(action.as_str())
            })
            .cloned()
            .collect()
    }
}

/// The reads at which the counter had moved since the previous read, and the median gap
/// between them (ms).
fn change_gaps_ms(c: &[(u64, u64)]) -> Vec<u64> {
    let at: Vec<u64> = c
        .windows(2)
        .filter(|w| w[1].1 != w[0].1)
        .map(|w| w[1].0)
        .collect();
    let mut gaps: Vec<u64> = at.windows(2).map(|w| (w[1] - w[0]) / MS).collect();
    gaps.sort_unstable();
    gaps
}

fn median(v: &[u64]) -> u64 {
    assert!(!v.is_empty());
    v[v.len() / 2]
}

#[test]
fn two_gpus_add_up_to_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let t = synth(dir.path(), "g.pws", &["--gpus", "2", "--seconds", "10"]);
    let d = decode(&t);
    assert_eq!(d.gpu_blocks, 10, "a gpu block a second");
    check_gpu_trace(&d, 2, 10);
    let g = &d.truth["gpu"];
    assert_eq!(
        (
            g["update_period_ms"].as_u64(),
            g["update_jitter_ms"].as_u64(),
            g["read_period_ms"].as_u64(),
            g["sampling_period_ms"].as_u64()
        ),
        (Some(100), Some(2), Some(100), Some(167)),
        "the defaults"
    );
    for (di, c) in &d.counters {
        let gaps = change_gaps_ms(c);
        assert!(gaps.len() > 80, "device {di}: {gaps:?}");
        assert!(median(&gaps).abs_diff(100) <= 1, "device {di}: {gaps:?}");
    }
}

/// Read every millisecond, the counter still moves only about every 100 ms, each update within
/// the jitter of its beat.
#[test]
fn the_counter_moves_at_its_update_period_however_often_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = synth(
        dir.path(),
        "g.pws",
        &["--gpus", "1", "--seconds", "6", "--gpu-interval", "1ms"],
    );
    let d = decode(&t);
    check_gpu_trace(&d, 1, 6);
    let c = &d.counters[&0];
    assert_eq!(c.len(), 6000, "read every ms");
    let gaps = change_gaps_ms(c);
    assert!((55..=60).contains(&gaps.len()), "{gaps:?}");
    assert!(median(&gaps).abs_diff(100) <= 1, "{gaps:?}");
    assert!(gaps.iter().all(|&g| (96..=104).contains(&g)), "{gaps:?}");
    assert!(gaps.iter().any(|&g| g != 100), "jittered: {gaps:?}");

    let t = synth(
        dir.path(),
        "h.pws",
        &[
            "--gpus",
            "1",
            "--seconds",
            "4",
            "--gpu-interval",
            "1ms",
            "--gpu-update-period",
            "50ms",
            "--gpu-update-jitter",
            "0ms",
        ],
    );
    let d = decode(&t);
    check_gpu_trace(&d, 1, 4);
    let gaps = change_gaps_ms(&d.counters[&0]);
    assert!(gaps.iter().all(|&g| g == 50), "{gaps:?}");
}

/// Containers that come and go (their GPU processes with them), and concurrent activations in
/// one container (threads of its process): the GPU pid is always the container's own.
#[test]
fn gpu_pids_follow_the_containers() {
    let dir = tempfile::tempdir().unwrap();
    let t = synth(
        dir.path(),
        "ka.pws",
        &[
            "--gpus",
            "2",
            "--seconds",
            "10",
            "--functions",
            "6",
            "--rate",
            "40",
            "--keep-alive",
            "1s",
        ],
    );
    let d = decode(&t);
    check_gpu_trace(&d, 2, 10);
    // Some GPU process goes away with its container.
    let listed = |r: &GpuRead| -> BTreeSet<u32> { r.processes.iter().map(|p| p.pid).collect() };
    let gone = d.reads.values().any(|reads| {
        reads
            .windows(2)
            .any(|w| !listed(&w[0]).is_subset(&listed(&w[1])))
    });
    assert!(gone, "a GPU process left with its container");
    let pids: BTreeSet<u32> = d.reads[&0]
        .iter()
        .flat_map(|r| r.processes.iter().map(|p| p.pid))
        .collect();
    assert!(pids.len() > 2, "several containers on device 0: {pids:?}");

    let t = synth(
        dir.path(),
        "cc.pws",
        &["--gpus", "1", "--seconds", "10", "--concurrency", "3"],
    );
    let d = decode(&t);
    check_gpu_trace(&d, 1, 10);
}

/// Without `--gpus` (or with 0) the trace is what it was before the option: no gpu block, no
/// GPU counter, no gpu truth, every block but the trace-info (whose command line differs) the
/// same bytes. With it, the CPUs' side is unchanged.
#[test]
fn without_gpus_the_trace_is_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let plain = synth(dir.path(), "a.pws", &["--seconds", "3"]);
    let zero = synth(dir.path(), "b.pws", &["--seconds", "3", "--gpus", "0"]);
    let two = synth(dir.path(), "c.pws", &["--seconds", "3", "--gpus", "2"]);
    let blocks = |p: &Path| -> Vec<(u16, Vec<u8>)> {
        let t = Trace::open(p).unwrap();
        let v = t
            .blocks()
            .map(|b| {
                let b = b.unwrap();
                (b.kind().0, b.stored().to_vec())
            })
            .collect();
        v
    };
    let info = |p: &Path| -> TraceInfo {
        let t = Trace::open(p).unwrap();
        let b = t.blocks().next().unwrap().unwrap();
        let Record::TraceInfo(mut i) = b.decode().unwrap() else {
            panic!("trace-info first")
        };
        i.command_line.clear();
        *i
    };
    let (a, b) = (blocks(&plain), blocks(&zero));
    assert_eq!(a.len(), b.len());
    let info_kind = a[0].0;
    let end_kind = a.last().unwrap().0;
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.0, y.0, "block {k}");
        // The info block holds the command line; the end block and the perf index hold
        // offsets, which follow it.
        if ![info_kind, end_kind, pws_trace::BlockKind::PERF_INDEX.0].contains(&x.0) {
            assert!(x.1 == y.1, "block {k} (kind {}) differs", x.0);
        }
    }
    assert_eq!(info(&plain), info(&zero));
    for p in [&plain, &zero] {
        let d = decode(p);
        assert_eq!(d.gpu_blocks, 0);
        assert!(d.counters.is_empty());
        assert!(d.series.iter().all(|s| s.1 == "Package"), "{:?}", d.series);
        assert!(d.truth.get("gpu").is_none());
        let info = d.info.unwrap();
        assert!(info.sources.iter().all(|s| s.name != "synthetic-gpu"));
    }

    // With GPUs: the perf data and the package counters are those of the same seed without.
    let with = decode(&two);
    assert!(with.gpu_blocks > 0);
    let c = blocks(&two);
    let perf = |v: &[(u16, Vec<u8>)]| -> Vec<Vec<u8>> {
        v.iter()
            .filter(|x| x.0 == pws_trace::BlockKind::PERF_DATA.0)
            .map(|x| x.1.clone())
            .collect()
    };
    assert_eq!(perf(&a), perf(&c), "the CPUs' perf data are unchanged");
    let mut truth = decode(&plain).truth;
    let mut with_truth = with.truth.clone();
    with_truth.as_object_mut().unwrap().remove("gpu");
    truth.as_object_mut().unwrap().remove("gpu");
    assert_eq!(truth, with_truth, "the CPU truth is unchanged");
}

#[test]
fn bad_gpu_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (flags, says) in [
        (&["--gpus", "65"][..], "--gpus"),
        (
            &["--gpus", "1", "--gpu-update-jitter", "50ms"],
            "--gpu-update-jitter",
        ),
        (
            &["--gpus", "1", "--gpu-update-period", "0ms"],
            "--gpu-update-period",
        ),
        (&["--gpus", "1", "--gpu-interval", "0ms"], "--gpu-interval"),
        (&["--gpus", "1", "--gpu-interval", "2s"], "--gpu-interval"),
        (
            &["--gpus", "1", "--gpu-interval", "1500us"],
            "--gpu-interval",
        ),
        (
            &["--gpus", "1", "--gpu-sampling-period", "0ms"],
            "--gpu-sampling-period",
        ),
    ] {
        let out = dir.path().join("x.pws");
        let o = Command::new(env!("CARGO_BIN_EXE_pws-analyze"))
            .arg("synth")
            .args(flags)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{flags:?} accepted");
        assert!(err.contains(says), "{flags:?}: {err}");
        assert!(!out.exists(), "{flags:?}: nothing written");
    }
}
