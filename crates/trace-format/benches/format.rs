//! Raw-block write and read throughput, uncompressed and at the default zstd level.
//! Targets (issue 2): ≥ 1 GB/s uncompressed write, ≥ 2 GB/s read, on a 2-core VM.
//!
//! `cargo bench -p pws-trace --bench format` prints MB/s for each case (criterion's
//! "thrpt"). The payload imitates perf ring contents: 40-byte sample records with slowly
//! varying fields, so the zstd figures are representative of real traces.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pws_trace::{Record, Trace, TraceWriter, WriterOptions};

const BLOCK: usize = 1 << 20;
const BLOCKS: usize = 64;

/// 1 MiB of synthetic PERF_RECORD_SAMPLE-like records.
fn perf_like_block(seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    let mut t = 1_000_000_000u64 + seed * 1_000_000;
    let mut x = seed | 1;
    while out.len() + 40 <= BLOCK {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        t += 1_000_000 + (x & 0xfff);
        out.extend_from_slice(&[9, 0, 2, 0, 40, 0, 0, 0]); // header: SAMPLE, misc, size
        out.extend_from_slice(&(1000 + (x & 3)).to_le_bytes()); // pid/tid
        out.extend_from_slice(&t.to_le_bytes()); // time
        out.extend_from_slice(&(x & 1).to_le_bytes()); // cpu
        out.extend_from_slice(&(0x1234 + (x >> 60)).to_le_bytes()); // cgroup
    }
    out.resize(BLOCK, 0);
    out
}

/// Writes the blocks into `out` (cleared first, so its memory is reused across iterations as a
/// recorder's output buffer would be, and page faults are not what we measure).
fn write_trace(out: &mut Vec<u8>, blocks: &[Vec<u8>], level: Option<i32>) {
    out.clear();
    let opts = WriterOptions {
        compression_level: level,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::new(out, opts).unwrap();
    for (i, b) in blocks.iter().enumerate() {
        w.write_perf_data(0, 0, (i * BLOCK) as u64, &[b]).unwrap();
    }
    w.finish(0).unwrap();
}

fn bench(c: &mut Criterion) {
    let blocks: Vec<Vec<u8>> = (0..BLOCKS as u64).map(perf_like_block).collect();
    let bytes = (BLOCK * BLOCKS) as u64;
    let cases = [
        ("uncompressed", None),
        ("zstd-3", Some(zstd::DEFAULT_COMPRESSION_LEVEL)),
    ];

    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Bytes(bytes)).sample_size(10);
    for (name, level) in cases {
        g.bench_with_input(BenchmarkId::new("raw-blocks", name), &level, |b, &level| {
            let mut out = Vec::with_capacity(BLOCK * (BLOCKS + 1));
            b.iter(|| write_trace(&mut out, &blocks, level))
        });
    }
    // To a real file, with the writer's durability policy (fdatasync at least every second
    // and at finish): this one measures the disk as much as the format.
    let dir = tempfile::tempdir().unwrap();
    g.bench_function(BenchmarkId::new("raw-blocks-file", "uncompressed"), |b| {
        b.iter(|| {
            let mut w =
                TraceWriter::create(dir.path().join("t.pws"), WriterOptions::uncompressed())
                    .unwrap();
            for (i, blk) in blocks.iter().enumerate() {
                w.write_perf_data(0, 0, (i * BLOCK) as u64, &[blk]).unwrap();
            }
            w.finish(0).unwrap()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(bytes)).sample_size(10);
    for (name, level) in cases {
        let mut out = Vec::new();
        write_trace(&mut out, &blocks, level);
        let trace = Trace::from_vec(out).unwrap();
        eprintln!(
            "{name}: {} MiB of raw blocks stored in {:.1} MiB",
            bytes >> 20,
            trace.data().len() as f64 / (1 << 20) as f64
        );
        g.bench_function(BenchmarkId::new("raw-blocks", name), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for blk in trace.blocks() {
                    if let Record::PerfData(p) = blk.unwrap().decode().unwrap() {
                        n += p.data.len();
                    }
                }
                assert_eq!(n, bytes as usize);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
