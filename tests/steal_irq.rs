//! Steal and IRQ time against the kernel: a busy loop in a fresh cgroup, recorded while a
//! thread floods UDP on loopback (softirq load, bounded in packets and time), analysed twice —
//! from the trace as recorded, and from a copy without its cpu-stat blocks (as a 1.0 trace
//! would be) — and the busy cgroup's CPU time in the `usage` table compared with its
//! `cpu.stat`. The ratios are printed; with the subtraction the trace must be at least as close.
//! Needs root (system-wide perf, cgroup creation) and cgroup v2; fails under CI without them.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pws_tests::{bin, cannot_run, cgroup2_mount, run_with_timeout, TestCgroup};
use pws_trace::{BlockKind, Record, Trace, TraceWriter, WriterOptions};

/// At most this many datagrams, for at most as long as the busy loop runs.
const FLOOD_PACKETS: u64 = 5_000_000;

#[test]
fn busy_cgroup_cpu_time_is_closer_to_the_kernel_without_steal_and_irq() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return cannot_run("needs root (system-wide perf and cgroup creation)");
    }
    if cgroup2_mount().is_none() {
        return cannot_run("no cgroup v2 hierarchy mounted");
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("steal.pws");
    let busy = TestCgroup::create("pws-steal-busy");
    let script = format!(
        "echo $$ > {}/cgroup.procs && timeout 1.5 sh -c 'while :; do :; done'; exit 0",
        busy.path.display()
    );
    // The recorder runs the busy loop; the flood runs beside it from this process.
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || flood_loopback(&stop))
    };
    let out = run_with_timeout(
        Command::new(bin("pws-record"))
            .arg("-o")
            .arg(&trace)
            .args(["--quiet", "--", "sh", "-c", &script])
            .stdout(Stdio::null()),
        Duration::from_secs(60),
    );
    stop.store(true, Ordering::Release);
    let sent = flood.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kernel_ns = busy.usage_usec() * 1000;
    assert!(kernel_ns > 500_000_000, "the busy loop ran {kernel_ns} ns");

    // The recorder wrote cpu-stat blocks and they decode.
    let t = Trace::open(&trace).unwrap();
    let mut readings: BTreeMap<u32, usize> = BTreeMap::new();
    for b in t.blocks() {
        if let Record::CpuStat(c) = b.unwrap().decode().unwrap() {
            assert!(c.field("steal").is_some() && c.field("softirq").is_some());
            for s in &c.cpus {
                *readings.entry(s.cpu).or_default() += s.samples.len();
            }
        }
    }
    // At start, at stop, and at least every second between (`--cpu-stat-quiet-interval`;
    // every 100 ms while steal or IRQ time moves), on every CPU.
    assert!(
        !readings.is_empty() && readings.values().all(|&n| n >= 3),
        "cpu-stat readings per CPU: {readings:?}"
    );
    let without = dir.path().join("no-cpu-stat.pws");
    strip_cpu_stat(&trace, &without);

    let with_ns = busy_cpu_ns(&trace, &dir.path().join("with"), &busy.hierarchy_path);
    let without_ns = busy_cpu_ns(&without, &dir.path().join("without"), &busy.hierarchy_path);
    let (r_with, r_without) = (
        with_ns as f64 / kernel_ns as f64,
        without_ns as f64 / kernel_ns as f64,
    );
    let info = Command::new(bin("pws-analyze"))
        .arg("info")
        .arg(&trace)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    let line = info
        .lines()
        .find(|l| l.starts_with("cpu-stat"))
        .unwrap_or("");
    eprintln!(
        "busy cgroup vs cpu.stat ({kernel_ns} ns): with steal/IRQ taken out {r_with:.4}, without {r_without:.4}; {sent} datagrams; {line}"
    );
    assert!(
        with_ns <= without_ns,
        "the subtraction only takes time away"
    );
    assert!(
        (r_with - 1.0).abs() <= (r_without - 1.0).abs() + 0.005,
        "with {r_with:.4}, without {r_without:.4}"
    );
    assert!((r_with - 1.0).abs() < 0.05, "with {r_with:.4}");
    // Where the kernel counts IRQ time in the tasks' time (its cpu.stat does), it stays there.
    if line.contains("IRQ time included") {
        let s = summary_json(&trace, &dir.path().join("json"));
        assert_eq!(s["steal_irq"]["irq_s"], 0.0, "{s}");
        assert_eq!(s["steal_irq"]["softirq_s"], 0.0, "{s}");
    }
}

/// The `--summary-json` of one trace.
fn summary_json(trace: &Path, out: &Path) -> serde_json::Value {
    let json = out.join("summary.json");
    let o = run_with_timeout(
        Command::new(bin("pws-analyze"))
            .arg(trace)
            .arg("-o")
            .arg(out)
            .arg("-q")
            .arg("--summary-json")
            .arg(&json),
        Duration::from_secs(300),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    v[0].clone()
}

/// Datagrams to a bound, unread socket on 127.0.0.1 (each one softirq work on loopback), until
/// `stop` or the bounds. Returns how many were sent.
fn flood_loopback(stop: &AtomicBool) -> u64 {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = rx.local_addr().unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = [0u8; 1024];
    let t0 = Instant::now();
    let mut n = 0;
    while !stop.load(Ordering::Acquire)
        && n < FLOOD_PACKETS
        && t0.elapsed() < Duration::from_secs(20)
    {
        // A full receive buffer drops datagrams, which is fine: the softirq work is done.
        let _ = tx.send_to(&payload, to);
        n += 1;
    }
    n
}

/// A copy of the trace without its cpu-stat blocks: what the analysis gives without them.
fn strip_cpu_stat(from: &Path, to: &Path) {
    let t = Trace::open(from).unwrap();
    let mut w = TraceWriter::create(to, WriterOptions::default()).unwrap();
    let mut end = 0;
    for b in t.blocks() {
        let b = b.unwrap();
        match b.kind() {
            BlockKind::CPU_STAT => {}
            BlockKind::END => {
                if let Record::End(e) = b.decode().unwrap() {
                    end = e.end_monotonic_ns;
                }
            }
            k => {
                w.write_block(k, &[&b.payload().unwrap()]).unwrap();
            }
        }
    }
    w.finish(end).unwrap();
}

/// The busy cgroup's CPU time in the `usage` table of `trace` analysed into `out`.
fn busy_cpu_ns(trace: &Path, out: &Path, cgroup: &str) -> u64 {
    use arrow_array::{Array, StringArray, UInt64Array};
    let o = run_with_timeout(
        Command::new(bin("pws-analyze"))
            .arg(trace)
            .arg("-o")
            .arg(out)
            .arg("-q"),
        Duration::from_secs(300),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut total = 0;
    let mut stack = vec![out.join("usage")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let f = std::fs::File::open(&p).unwrap();
            let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            for b in r {
                let b = b.unwrap();
                let cg = b.column_by_name("cgroup").unwrap();
                let cg = cg.as_any().downcast_ref::<StringArray>().unwrap();
                let ns = b.column_by_name("cpu_ns").unwrap();
                let ns = ns.as_any().downcast_ref::<UInt64Array>().unwrap();
                for i in 0..b.num_rows() {
                    if cg.value(i) == cgroup && !ns.is_null(i) {
                        total += ns.value(i);
                    }
                }
            }
        }
    }
    total
}
