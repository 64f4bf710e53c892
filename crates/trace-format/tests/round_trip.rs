mod common;

use common::*;
use proptest::prelude::*;
use pws_trace::{BlockKind, Record, Trace, TraceWriter, WriterOptions};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any sequence of blocks, compressed or not, reads back identical, in order, with a
    /// valid end block whose index matches a scan, and a perf index listing every perf-data
    /// block with its CPU.
    #[test]
    fn any_blocks_round_trip(items in prop::collection::vec(item(), 0..12), level in prop::option::of(1i32..6)) {
        let opts = WriterOptions { compression_level: level, min_compress_len: 64, ..WriterOptions::default() };
        let mut w = TraceWriter::new(Vec::new(), opts).unwrap();
        let offsets: Vec<u64> = items.iter().map(|i| write_item(&mut w, i)).collect();
        let bytes = w.finish(99).unwrap();
        let trace = Trace::from_vec(bytes).unwrap();

        let mut blocks = trace.blocks();
        let all: Vec<_> = blocks.by_ref().collect::<Result<_, _>>().unwrap();
        // The perf index the writer adds apart, the blocks written.
        let mut listed = Vec::new();
        for b in all.iter().filter(|b| b.kind() == BlockKind::PERF_INDEX) {
            if let Record::PerfIndex(ix) = b.decode().unwrap() {
                listed.extend(ix.entries.iter().map(|e| (e.offset, e.cpu, e.flags)));
            }
        }
        let perf: Vec<(u64, u32, u32)> = items
            .iter()
            .zip(&offsets)
            .filter_map(|(i, off)| match i {
                Item::Perf { cpu, .. } => Some((*off, *cpu, 0)),
                _ => None,
            })
            .collect();
        prop_assert_eq!(listed, perf);
        let read: Vec<_> = all.iter().filter(|b| b.kind() != BlockKind::PERF_INDEX).collect();
        prop_assert_eq!(read.len(), items.len() + 1);
        for ((item, block), off) in items.iter().zip(read.iter().copied()).zip(&offsets) {
            prop_assert_eq!(block.offset, *off);
            assert_same(item, &block.decode().unwrap());
        }
        let status = blocks.into_status();
        prop_assert_eq!(status.ignored_bytes(), 0);
        prop_assert!(status.end_offset.is_some());

        let end = trace.end_block().expect("finished trace has an end block");
        prop_assert_eq!(end.end_monotonic_ns, 99);
        let scanned: Vec<u64> = all[..all.len() - 1].iter().map(|b| b.offset).collect();
        let indexed: Vec<u64> = end.index.iter().map(|e| e.offset).collect();
        prop_assert_eq!(scanned, indexed);
        let total: u64 = end.kinds.iter().map(|k| k.blocks).sum();
        prop_assert_eq!(total as usize, all.len() - 1);
        for e in &end.index {
            let b = trace.block_at(e.offset).unwrap();
            prop_assert_eq!(b.kind(), e.kind);
        }
    }
}

#[test]
fn compression_is_used_when_it_pays_and_skipped_when_not() {
    let opts = WriterOptions {
        min_compress_len: 64,
        ..WriterOptions::default()
    };
    let mut w = TraceWriter::new(Vec::new(), opts).unwrap();
    let zeros = vec![0u8; 64 * 1024];
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    w.write_perf_data(1, 0, 0, &[&zeros]).unwrap();
    w.write_perf_data(1, 0, 65536, &[&noise[..100]]).unwrap();
    let trace = Trace::from_vec(w.finish(0).unwrap()).unwrap();
    let b: Vec<_> = trace.blocks().collect::<Result<_, _>>().unwrap();
    assert!(b[0].is_compressed() && b[0].stored().len() < 1024);
    assert!(
        !b[1].is_compressed(),
        "100 random bytes should be stored raw"
    );
    match b[0].decode().unwrap() {
        Record::PerfData(p) => assert_eq!(p.data.len(), zeros.len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_kinds_are_returned_for_skipping_and_do_not_stop_reading() {
    let mut w = TraceWriter::new(Vec::new(), WriterOptions::default()).unwrap();
    w.write_block(BlockKind(4242), &[b"from the future"])
        .unwrap();
    w.write(&pws_trace::records::ClockSync::default()).unwrap();
    let trace = Trace::from_vec(w.finish(0).unwrap()).unwrap();
    let kinds: Vec<_> = trace
        .blocks()
        .map(|b| b.unwrap().decode().unwrap())
        .map(|r| match r {
            Record::Unknown(k) => format!("unknown {}", k.0),
            Record::ClockSync(_) => "clock".into(),
            Record::End(_) => "end".into(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, ["unknown 4242", "clock", "end"]);
}

#[test]
fn traces_are_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pws");
    let w = TraceWriter::create(&path, WriterOptions::default()).unwrap();
    w.finish(0).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let t = Trace::open(&path).unwrap();
    assert!(t.end_block().is_some());
}

#[test]
fn a_killed_writer_leaves_flushed_blocks_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.pws");
    let mut w = TraceWriter::create(&path, WriterOptions::default()).unwrap();
    w.write(&pws_trace::records::ClockSync::default()).unwrap();
    w.flush().unwrap();
    // Simulate SIGKILL: the process vanishes without running destructors.
    std::mem::forget(w);
    let t = Trace::open(&path).unwrap();
    assert!(t.end_block().is_none());
    let idx = t.index().unwrap();
    assert_eq!(idx.entries.len(), 1);
    assert_eq!(idx.entries[0].kind, BlockKind::CLOCK_SYNC);
}

#[test]
fn payload_prefix_reads_the_start_of_compressed_and_raw_blocks() {
    for level in [None, Some(3)] {
        let opts = WriterOptions {
            compression_level: level,
            min_compress_len: 16,
            ..WriterOptions::default()
        };
        let mut w = TraceWriter::new(Vec::new(), opts).unwrap();
        w.write_perf_data(7, 0, 42, &[&[0u8; 4096]]).unwrap();
        let trace = Trace::from_vec(w.finish(0).unwrap()).unwrap();
        let b = trace.blocks().next().unwrap().unwrap();
        assert_eq!(b.is_compressed(), level.is_some());
        let head = b
            .payload_prefix(pws_trace::records::PERF_DATA_HEADER_LEN)
            .unwrap();
        let p = pws_trace::records::PerfData::decode(&head).unwrap();
        assert_eq!((p.cpu, p.ring_offset), (7, 42));
        assert_eq!(b.payload_prefix(1 << 20).unwrap().len(), 4096 + 16);
    }
}

#[test]
fn energy_deltas_unwrap_like_format_md_says() {
    use pws_trace::records::EnergySeries;
    // The sample in examples/write_sample.rs: powercap range 262143328851.
    assert_eq!(
        EnergySeries::raw_delta(262_143_328_851, 262_143_328_000, 1_000),
        1_851
    );
    assert_eq!(EnergySeries::raw_delta(1 << 32, u32::MAX as u64 - 9, 5), 15);
    assert_eq!(EnergySeries::raw_delta(1 << 32, 100, 250), 150);
    assert_eq!(EnergySeries::raw_delta(0, 100, 250), 150);
}

#[test]
fn fields_appended_by_a_later_minor_are_skipped() {
    use pws_trace::records::{CgroupEvent, CgroupEvents, CgroupOp};
    use pws_trace::Payload;
    let ev = CgroupEvents {
        events: vec![CgroupEvent {
            ts_ns: 1,
            op: CgroupOp::Mkdir,
            cgroup_id: 2,
            hierarchy: 0,
            path: "/a".into(),
            pid: 0,
            detail: String::new(),
        }],
    };
    let mut p = Vec::new();
    ev.encode(&mut p);
    // p = [count=1][record length][fields…]; a 1.1 writer appended three bytes to the record.
    assert!(p[1] < 0x7d, "single-byte length in this example");
    p[1] += 3;
    p.extend_from_slice(&[0xaa, 0xbb, 0xcc]);
    // …and one more top-level item after the list, also unknown to 1.0.
    p.extend_from_slice(&[0x05, 0x06]);
    let mut w = TraceWriter::new(Vec::new(), WriterOptions::uncompressed()).unwrap();
    w.write_block(BlockKind::CGROUP_EVENTS, &[&p]).unwrap();
    let trace = Trace::from_vec(w.finish(0).unwrap()).unwrap();
    match trace.blocks().next().unwrap().unwrap().decode().unwrap() {
        Record::CgroupEvents(got) => assert_eq!(got, ev),
        other => panic!("{other:?}"),
    }
}

#[test]
fn informational_block_flags_are_ignored_and_payload_flags_refused() {
    use pws_trace::BlockHeader;
    let mut w = TraceWriter::new(Vec::new(), WriterOptions::uncompressed()).unwrap();
    w.write(&pws_trace::records::ClockSync::default()).unwrap();
    let bytes = w.finish(0).unwrap();
    for (flag, readable) in [(0x0100u16, true), (0x0002u16, false)] {
        let mut b = bytes.clone();
        let at = pws_trace::FILE_HEADER_LEN;
        let mut h = BlockHeader::decode(&b[at..]).unwrap();
        h.flags |= flag;
        b[at..at + 24].copy_from_slice(&h.encode());
        let t = Trace::from_vec(b).unwrap();
        let blk = t
            .blocks()
            .next()
            .unwrap()
            .expect("flags do not make a block unreadable");
        assert_eq!(blk.decode().is_ok(), readable, "flag {flag:#x}");
    }
}
