//! The perf index (FORMAT.md, kind 12): the analyzer's first pass skips the perf-data blocks it
//! says hold no side band, and every table comes out the same as from the same trace without
//! the index; an index that is wrong about a block is an error naming the block, never a
//! lifecycle built without its events.

mod common;

use std::path::Path;
use std::process::Command;

use pws_trace::records::{PerfIndex, PerfIndexEntry, PERF_INDEX_NO_SIDE_BAND};
use pws_trace::{BlockKind, Record, Trace, TraceWriter, WriterOptions};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pws-analyze")
}

/// What the copy does with the perf index.
#[derive(Clone, Copy)]
enum Index {
    /// Left out: a 1.2 trace.
    None,
    /// Every perf-data block said to hold no side band, on CPU `shift` more than its own.
    NoSideBand { shift: u32 },
}

/// `from` copied to `to` block by block, its perf index replaced as `index` says.
fn copy(from: &Path, to: &Path, index: Index) {
    let t = Trace::open(from).unwrap();
    let mut w = TraceWriter::create(to, WriterOptions::default()).unwrap();
    let (mut end, mut entries) = (0, Vec::new());
    for b in t.blocks() {
        let b = b.unwrap();
        match b.kind() {
            BlockKind::PERF_INDEX => {}
            BlockKind::END => {
                if let Record::End(e) = b.decode().unwrap() {
                    end = e.end_monotonic_ns;
                }
            }
            k => {
                let offset = w.write_block(k, &[&b.payload().unwrap()]).unwrap();
                if let (BlockKind::PERF_DATA, Index::NoSideBand { shift }) = (k, index) {
                    let Record::PerfData(pd) = b.decode().unwrap() else {
                        panic!("a perf-data block")
                    };
                    entries.push(PerfIndexEntry {
                        offset,
                        cpu: pd.cpu + shift,
                        flags: PERF_INDEX_NO_SIDE_BAND,
                    });
                }
            }
        }
    }
    if !entries.is_empty() {
        w.write(&PerfIndex { entries }).unwrap();
    }
    w.finish(end).unwrap();
}

/// Every table of `out` as its batches, by table name.
fn tables(out: &Path) -> Vec<(String, Vec<arrow_array::RecordBatch>)> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let batches = common::read(&out.join(&n));
            (n, batches)
        })
        .collect()
}

fn perf_index_blocks(trace: &Path) -> (usize, usize, usize) {
    let t = Trace::open(trace).unwrap();
    let (mut perf, mut listed, mut no_side_band) = (0, 0, 0);
    for b in t.blocks() {
        let b = b.unwrap();
        match b.decode().unwrap() {
            Record::PerfData(_) => perf += 1,
            Record::PerfIndex(ix) => {
                listed += ix.entries.len();
                no_side_band += ix.entries.iter().filter(|e| e.no_side_band()).count();
            }
            _ => {}
        }
    }
    (perf, listed, no_side_band)
}

#[test]
fn an_index_changes_what_is_read_not_what_is_found() {
    let d = tempfile::tempdir().unwrap();
    let trace = common::synth(d.path(), &["--seconds", "6", "--keep-alive", "2s"]);
    let (perf, listed, no_side_band) = perf_index_blocks(&trace);
    assert!(perf > 10, "{perf} perf-data blocks");
    assert_eq!(
        (listed, no_side_band),
        (perf, perf),
        "synth indexes every block, none with side band"
    );
    let without = d.path().join("without.pws");
    copy(&trace, &without, Index::None);
    assert_eq!(perf_index_blocks(&without), (perf, 0, 0));
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    common::analysed(&trace, &a, &["--run", "r"]);
    common::analysed(&without, &b, &["--run", "r"]);
    let (ta, tb) = (tables(&a), tables(&b));
    assert!(ta.len() >= 10, "{} tables", ta.len());
    for ((na, ba), (nb, bb)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert_eq!(
            ba, bb,
            "table {na}: the same rows with and without the index"
        );
    }
}

/// A recorded trace with lifecycle tracepoints in its perf data: an index that says its blocks
/// hold no side band, or puts them on another CPU, fails the analysis with an error naming a
/// block.
#[test]
fn a_wrong_index_is_an_error_naming_the_block() {
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../datasets/local-default/local-default.pws");
    let d = tempfile::tempdir().unwrap();
    let run = |index: Index, name: &str| {
        let t = d.path().join(format!("{name}.pws"));
        copy(&recorded, &t, index);
        let o = Command::new(bin())
            .arg("-q")
            .arg(&t)
            .arg("-o")
            .arg(d.path().join(name))
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (ok, err) = run(Index::None, "plain");
    assert!(ok, "{err}");
    let (ok, err) = run(Index::NoSideBand { shift: 0 }, "side-band");
    assert!(!ok);
    assert!(
        err.contains("the perf index says the perf-data block at byte")
            && err.contains("holds no tracepoint sample or cgroup record, but it does"),
        "{err}"
    );
    let (ok, err) = run(Index::NoSideBand { shift: 1 }, "cpu");
    assert!(!ok);
    assert!(
        err.contains("the perf index puts the perf-data block at byte"),
        "{err}"
    );
}
