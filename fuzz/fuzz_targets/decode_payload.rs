//! Payload decoders without the CRC in front: the first two bytes pick the block kind, the
//! rest is the payload. Reaches the structured decoders that random whole files rarely do.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use pws_trace::{BlockKind, Record};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let kind = BlockKind(u16::from(data[0] % 12));
    let _ = Record::decode(kind, Cow::Borrowed(&data[2..]));
});
