//! Feeds arbitrary bytes to every reader entry point: header validation, block walk with and
//! without skipping, end-block lookup, index building, random access and payload decoding.
//! Any panic, out-of-bounds access or runaway allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pws_trace::{ReadOptions, Trace};

fuzz_target!(|data: &[u8]| {
    let Ok(trace) = Trace::from_vec(data.to_vec()) else {
        return;
    };
    for skip_bad_blocks in [false, true] {
        let mut blocks = trace.blocks_with(ReadOptions { skip_bad_blocks });
        for block in blocks.by_ref() {
            let Ok(block) = block else { break };
            let _ = block.decode();
            let _ = trace.block_at(block.offset);
        }
        let status = blocks.into_status();
        assert!(status.ignored_bytes() <= data.len() as u64);
    }
    let _ = trace.end_block();
    if let Ok(index) = trace.index() {
        for e in index.entries.iter().take(64) {
            let _ = trace.block_at(e.offset).and_then(|b| b.decode());
        }
    }
});
