use crate::codec::{put_records, Dec, DecodeError, DecodeResult, Put};
use crate::records::Payload;
use crate::BlockKind;

/// The last 8 bytes of a finished trace.
pub const END_TRAILER_MAGIC: [u8; 8] = *b"PWSEND\0\0";
/// The end block's payload ends with the block's own offset (u64) and the magic, and is
/// padded so that these 16 bytes are the last 16 bytes of the file.
pub const END_TRAILER_LEN: usize = 16;

/// Written by `finish()`: totals per kind and the offset of every block, so a reader can
/// go straight to any block (or hand them to parallel workers) without scanning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EndBlock {
    pub end_monotonic_ns: u64,
    pub kinds: Vec<KindTotal>,
    /// Every block before the end block, in file order.
    pub index: Vec<IndexEntry>,
    /// Byte offset of the end block itself (from the trailer).
    pub self_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindTotal {
    pub kind: u16,
    pub blocks: u64,
    pub stored_bytes: u64,
    pub raw_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub offset: u64,
    pub kind: BlockKind,
}

impl Payload for EndBlock {
    const KIND: BlockKind = BlockKind::END;

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_varint(self.end_monotonic_ns);
        put_records(out, &self.kinds, |b, k| {
            b.put_varint(k.kind.into());
            b.put_varint(k.blocks);
            b.put_varint(k.stored_bytes);
            b.put_varint(k.raw_bytes);
        });
        out.put_varint(self.index.len() as u64);
        let mut prev = 0u64;
        for e in &self.index {
            out.put_varint(e.offset.wrapping_sub(prev));
            out.put_varint(e.kind.0.into());
            prev = e.offset;
        }
        // Zero padding so that payload length is a multiple of 8 and the trailer ends the file.
        while (out.len() - start + END_TRAILER_LEN) % 8 != 0 {
            out.push(0);
        }
        out.put_u64(self.self_offset);
        out.extend_from_slice(&END_TRAILER_MAGIC);
    }
}

impl EndBlock {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let Some(body_len) = payload.len().checked_sub(END_TRAILER_LEN) else {
            return Err(DecodeError("end block shorter than its trailer".into()));
        };
        let (body, trailer) = payload.split_at(body_len);
        if trailer[8..] != END_TRAILER_MAGIC {
            return Err(DecodeError("end block trailer magic missing".into()));
        }
        let self_offset = Dec::new(trailer).u64("end offset")?;
        let mut d = Dec::new(body);
        let end_monotonic_ns = d.varint("end time")?;
        let kinds = d.records("kind totals", |r| {
            let kind = r.varint("kind")?;
            Ok(KindTotal {
                kind: u16::try_from(kind)
                    .map_err(|_| DecodeError(format!("kind {kind} out of range")))?,
                blocks: r.varint("blocks")?,
                stored_bytes: r.varint("stored bytes")?,
                raw_bytes: r.varint("raw bytes")?,
            })
        })?;
        let n = d.count("index entries", 2)?;
        let mut index = Vec::with_capacity(n);
        let mut offset = 0u64;
        for _ in 0..n {
            let delta = d.varint("index offset")?;
            offset = offset
                .checked_add(delta)
                .ok_or_else(|| DecodeError("index offsets overflow".into()))?;
            let kind = d.varint("index kind")?;
            let kind = u16::try_from(kind)
                .map_err(|_| DecodeError(format!("index kind {kind} out of range")))?;
            index.push(IndexEntry {
                offset,
                kind: BlockKind(kind),
            });
        }
        // What lies between the index and the trailer is zero padding in 1.0; a later minor may
        // put fields there, so it is not checked.
        Ok(Self {
            end_monotonic_ns,
            kinds,
            index,
            self_offset,
        })
    }
}
