//! What the reader does with torn, flipped and random bytes: never a panic, every complete
//! block of a torn trace returned, corruption named by offset and kind.
mod common;

use common::small_trace;
use proptest::prelude::*;
use pws_trace::{Error, ReadOptions, Trace, WriterOptions, FILE_HEADER_LEN};

fn read_all(bytes: Vec<u8>, opts: ReadOptions) -> Result<(usize, pws_trace::ScanStatus), Error> {
    let t = Trace::from_vec(bytes)?;
    let mut it = t.blocks_with(opts);
    let mut n = 0;
    for b in it.by_ref() {
        let b = b?;
        let _ = b.decode(); // must not panic, whatever the payload
        n += 1;
    }
    Ok((n, it.into_status()))
}

/// Block boundaries of an intact trace.
fn boundaries(bytes: &[u8]) -> Vec<(u64, u64)> {
    let t = Trace::from_vec(bytes.to_vec()).unwrap();
    t.blocks()
        .map(|b| b.unwrap())
        .map(|b| (b.offset, b.offset + b.total_len()))
        .collect()
}

#[test]
fn torn_tail_at_every_offset_returns_every_complete_block() {
    for opts in [WriterOptions::default(), WriterOptions::uncompressed()] {
        let full = small_trace(opts, true);
        let bounds = boundaries(&full);
        for cut in 0..full.len() {
            let torn = full[..cut].to_vec();
            if cut < FILE_HEADER_LEN {
                assert!(
                    matches!(Trace::from_vec(torn), Err(Error::NotATrace(_))),
                    "cut {cut}"
                );
                continue;
            }
            let (n, status) = read_all(torn, ReadOptions::default())
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            let complete = bounds.iter().filter(|(_, end)| *end <= cut as u64).count();
            assert_eq!(n, complete, "cut at {cut}");
            let last_end = bounds
                .iter()
                .map(|b| b.1)
                .filter(|&e| e <= cut as u64)
                .max()
                .unwrap_or(FILE_HEADER_LEN as u64);
            let ignored = cut as u64 - last_end;
            assert_eq!(status.ignored_bytes(), ignored, "cut at {cut}");
            if ignored > 0 {
                assert_eq!(status.torn_tail, Some((last_end, ignored)), "cut at {cut}");
            }
            // An unfinished trace still indexes by scanning.
            let t = Trace::from_vec(full[..cut].to_vec()).unwrap();
            let idx = t.index().unwrap();
            assert_eq!(idx.entries.len() + usize::from(idx.end.is_some()), complete);
        }
    }
}

#[test]
fn zero_filled_tail_is_a_torn_tail() {
    let mut bytes = small_trace(WriterOptions::default(), false);
    let good = bytes.len() as u64;
    bytes.extend_from_slice(&[0u8; 4096]);
    let (n, status) = read_all(bytes, ReadOptions::default()).unwrap();
    assert_eq!(n, 7);
    assert_eq!(status.torn_tail, Some((good, 4096)));
}

#[test]
fn every_single_bit_flip_is_detected_or_harmless() {
    let full = small_trace(WriterOptions::default(), true);
    let bounds = boundaries(&full);
    let clean = read_all(full.clone(), ReadOptions::default()).unwrap().0;
    for byte in FILE_HEADER_LEN..full.len() {
        for bit in 0..8 {
            let mut b = full.clone();
            b[byte] ^= 1 << bit;
            let in_padding = bounds.iter().any(|&(start, end)| {
                let t = Trace::from_vec(full.clone()).unwrap();
                let blk = t.block_at(start).unwrap();
                let payload_end = start + 24 + blk.header.stored_len as u64;
                (byte as u64) >= payload_end && (byte as u64) < end
            });
            match read_all(b.clone(), ReadOptions::default()) {
                Err(e) => {
                    let off = e.offset().expect("a block error names its offset");
                    assert!(bounds.iter().any(|&(s, _)| s == off), "flip at {byte}: {e}");
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("offset {off}")), "{msg}");
                }
                Ok((n, status)) => {
                    // Undetected only where no CRC covers the byte: the zero padding.
                    assert!(
                        in_padding,
                        "flip at byte {byte} bit {bit} went unnoticed ({n} blocks, {status:?})"
                    );
                    assert_eq!(n, clean);
                }
            }
            // With skipping, reading goes on past the bad block.
            let (n, status) = read_all(
                b,
                ReadOptions {
                    skip_bad_blocks: true,
                },
            )
            .unwrap();
            if !in_padding {
                assert!(
                    n < clean && !status.skipped.is_empty() || status.torn_tail.is_some(),
                    "flip at {byte}: n={n} {status:?}"
                );
                assert!(
                    n + 1 >= clean - 1
                        || status.skipped.iter().any(|s| s.reason.contains("header")),
                    "flip at {byte} lost more than its block: {n} of {clean}"
                );
            }
        }
    }
}

#[test]
fn bad_crc_error_names_offset_and_kind() {
    let full = small_trace(WriterOptions::uncompressed(), true);
    let bounds = boundaries(&full);
    let (energy_off, _) = bounds[2];
    let mut b = full.clone();
    b[energy_off as usize + 24 + 3] ^= 0x10;
    let err = read_all(b, ReadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("energy block at byte offset {energy_off}")),
        "{msg}"
    );
    assert!(msg.contains("CRC32C mismatch"), "{msg}");
}

#[test]
fn impossible_length_is_an_error_naming_offset_and_kind() {
    use pws_trace::{BlockHeader, BlockKind, BLOCK_HEADER_LEN};
    let full = small_trace(WriterOptions::uncompressed(), true);
    let (off, _) = boundaries(&full)[1];
    let off = off as usize;
    let mut h = BlockHeader::decode(&full[off..off + BLOCK_HEADER_LEN]).unwrap();
    h.stored_len = u32::MAX;
    h.raw_len = u32::MAX;
    let mut b = full.clone();
    b[off..off + BLOCK_HEADER_LEN].copy_from_slice(&h.encode());
    let err = read_all(b, ReadOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ImpossibleLength {
                kind: BlockKind::PERF_DATA,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("perf-data block at byte offset {off}")),
        "{err}"
    );
}

#[test]
fn skipping_resynchronises_after_a_corrupt_header() {
    let full = small_trace(WriterOptions::uncompressed(), true);
    let bounds = boundaries(&full);
    let mut b = full.clone();
    b[bounds[1].0 as usize] = b'X'; // break the sync bytes of the perf block
    let (n, status) = read_all(
        b,
        ReadOptions {
            skip_bad_blocks: true,
        },
    )
    .unwrap();
    assert_eq!(n, bounds.len() - 1);
    assert_eq!(status.skipped.len(), 1);
    assert_eq!(status.skipped[0].offset, bounds[1].0);
    assert_eq!(status.skipped[0].bytes, bounds[1].1 - bounds[1].0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = read_all(bytes.clone(), ReadOptions::default());
        let _ = read_all(bytes.clone(), ReadOptions { skip_bad_blocks: true });
        if let Ok(t) = Trace::from_vec(bytes) {
            let _ = t.index();
            let _ = t.end_block();
        }
    }

    #[test]
    fn garbage_after_a_valid_header_never_panics(tail in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut bytes = pws_trace::FileHeader::current().encode().to_vec();
        bytes.extend_from_slice(&tail);
        let _ = read_all(bytes.clone(), ReadOptions { skip_bad_blocks: true });
        let t = Trace::from_vec(bytes).unwrap();
        let _ = t.index_with(ReadOptions { skip_bad_blocks: true });
    }

    #[test]
    fn random_multi_byte_damage_never_panics(seed in any::<u64>(), hits in 1usize..16) {
        let mut b = small_trace(WriterOptions::default(), true);
        let mut x = seed | 1;
        for _ in 0..hits {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let i = (x as usize) % b.len();
            b[i] = (x >> 32) as u8;
        }
        let _ = read_all(b.clone(), ReadOptions::default());
        let _ = read_all(b.clone(), ReadOptions { skip_bad_blocks: true });
        if let Ok(t) = Trace::from_vec(b) { let _ = t.index(); }
    }
}

#[test]
fn a_tiny_block_cannot_claim_a_huge_decompressed_size() {
    use pws_trace::{BlockHeader, BlockKind, BLOCK_FLAG_ZSTD};
    let payload = [0u8; 8];
    let h = BlockHeader {
        kind: BlockKind::PERF_DATA,
        flags: BLOCK_FLAG_ZSTD,
        stored_len: 8,
        raw_len: 64 << 20,
        payload_crc: crc32c::crc32c(&payload),
    };
    let mut b = pws_trace::FileHeader::current().encode().to_vec();
    b.extend_from_slice(&h.encode());
    b.extend_from_slice(&payload);
    let err = read_all(b, ReadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::ImpossibleLength { .. }), "{err}");
    assert!(err.to_string().contains("cannot expand"), "{err}");
}
