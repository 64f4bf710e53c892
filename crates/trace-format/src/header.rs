//! The file header and the block header: fixed-size, little-endian, each with its own CRC32C.

use crate::{BlockKind, Error, Result};

/// First 8 bytes of every trace. Like PNG's: the high byte catches 7-bit transfers, CR LF and
/// LF catch line-ending conversion, 0x1A stops `type` on DOS.
pub const FILE_MAGIC: [u8; 8] = [0x89, b'P', b'W', b'S', b'\r', b'\n', 0x1a, b'\n'];
pub const FORMAT_MAJOR: u16 = 1;
pub const FORMAT_MINOR: u16 = 3;
pub const FILE_HEADER_LEN: usize = 24;

/// First 4 bytes of every block header; lets a reader find the next block after corruption.
pub const BLOCK_SYNC: [u8; 4] = *b"PWBK";
pub const BLOCK_HEADER_LEN: usize = 24;
/// Blocks start at multiples of 8 so that perf records in raw blocks stay 8-aligned.
pub const BLOCK_ALIGN: usize = 8;
/// Upper bound on a block's stored and on its decompressed payload: bounds what a reader
/// allocates for one block whatever the bytes say.
pub const MAX_PAYLOAD_LEN: usize = 64 << 20;
/// No zstd frame expands more than this: a 4-byte RLE block (3-byte header, 1 byte) yields at
/// most 128 KiB. A compressed block claiming more is impossible, so a small file can never make
/// a reader allocate much more than its own size.
pub const MAX_ZSTD_EXPANSION: u64 = 32 * 1024;

/// Header flag bits 0..16 are compatible (a reader may ignore them); bits 16..32 are
/// incompatible (a reader that does not know one must refuse the file).
pub const INCOMPATIBLE_FLAGS_MASK: u32 = 0xffff_0000;
/// Incompatible header flags this reader understands (none in 1.0).
pub const KNOWN_INCOMPATIBLE_FLAGS: u32 = 0;

/// Block flag: the payload is one zstd frame; `raw_len` is its decompressed size.
pub const BLOCK_FLAG_ZSTD: u16 = 1;
/// Block flag bits 0..8 change how the payload must be read: a reader that does not know one
/// must not interpret the payload. Bits 8..16 are informational and ignored when unknown.
pub const BLOCK_PAYLOAD_FLAGS_MASK: u16 = 0x00ff;
pub const KNOWN_BLOCK_FLAGS: u16 = BLOCK_FLAG_ZSTD;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub major: u16,
    pub minor: u16,
    pub flags: u32,
    /// Bytes from the start of the file to the first block (24 in 1.0; later minors may grow it).
    pub header_len: u32,
}

impl FileHeader {
    pub fn current() -> Self {
        Self {
            major: FORMAT_MAJOR,
            minor: FORMAT_MINOR,
            flags: 0,
            header_len: FILE_HEADER_LEN as u32,
        }
    }

    pub fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut b = [0u8; FILE_HEADER_LEN];
        b[0..8].copy_from_slice(&FILE_MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..20].copy_from_slice(&self.header_len.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and validates the header at the start of `data`.
    pub fn decode(data: &[u8]) -> Result<Self> {
        if data.len() < FILE_HEADER_LEN {
            if data.is_empty() || FILE_MAGIC.starts_with(&data[..data.len().min(8)]) {
                return Err(Error::NotATrace(format!(
                    "file is {} bytes, shorter than the {FILE_HEADER_LEN}-byte header",
                    data.len()
                )));
            }
            return Err(Error::NotATrace("wrong magic bytes".into()));
        }
        if data[0..8] != FILE_MAGIC {
            return Err(Error::NotATrace("wrong magic bytes".into()));
        }
        let stored = u32_at(data, 20);
        let computed = crc32c::crc32c(&data[0..20]);
        if stored != computed {
            return Err(Error::NotATrace(format!(
                "file header CRC32C mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
        let h = Self {
            major: u16::from_le_bytes([data[8], data[9]]),
            minor: u16::from_le_bytes([data[10], data[11]]),
            flags: u32_at(data, 12),
            header_len: u32_at(data, 16),
        };
        if h.major != FORMAT_MAJOR {
            return Err(Error::UnsupportedVersion {
                major: h.major,
                minor: h.minor,
            });
        }
        let unknown = h.flags & INCOMPATIBLE_FLAGS_MASK & !KNOWN_INCOMPATIBLE_FLAGS;
        if unknown != 0 {
            return Err(Error::IncompatibleFlags(unknown));
        }
        let len = h.header_len as usize;
        if len < FILE_HEADER_LEN || len % BLOCK_ALIGN != 0 || len > data.len() {
            return Err(Error::NotATrace(format!(
                "header length {len} is not a multiple of 8 between {FILE_HEADER_LEN} and the file size"
            )));
        }
        Ok(h)
    }
}

/// The fixed 24-byte header in front of every block's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub kind: BlockKind,
    pub flags: u16,
    /// Length of the payload as stored (compressed, if compressed).
    pub stored_len: u32,
    /// Length of the payload once decompressed (equal to `stored_len` when not compressed).
    pub raw_len: u32,
    /// CRC32C of the stored payload bytes.
    pub payload_crc: u32,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut b = [0u8; BLOCK_HEADER_LEN];
        b[0..4].copy_from_slice(&BLOCK_SYNC);
        b[4..6].copy_from_slice(&self.kind.0.to_le_bytes());
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..20]);
        b[20..24].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses a block header; `None` if the sync bytes or the header CRC do not match.
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < BLOCK_HEADER_LEN || b[0..4] != BLOCK_SYNC {
            return None;
        }
        if crc32c::crc32c(&b[0..20]) != u32_at(b, 20) {
            return None;
        }
        Some(Self {
            kind: BlockKind(u16::from_le_bytes([b[4], b[5]])),
            flags: u16::from_le_bytes([b[6], b[7]]),
            stored_len: u32_at(b, 8),
            raw_len: u32_at(b, 12),
            payload_crc: u32_at(b, 16),
        })
    }

    /// Bytes the whole block takes in the file: header, payload and zero padding to 8.
    pub fn total_len(&self) -> u64 {
        BLOCK_HEADER_LEN as u64 + padded(self.stored_len as u64)
    }

    /// Checks the lengths against the format's rules; `Err` holds the reason.
    pub fn check_lengths(&self) -> std::result::Result<(), String> {
        let (s, r) = (self.stored_len as usize, self.raw_len as usize);
        if s > MAX_PAYLOAD_LEN {
            return Err(format!(
                "stored length {s} exceeds the limit {MAX_PAYLOAD_LEN}"
            ));
        }
        if r > MAX_PAYLOAD_LEN {
            return Err(format!(
                "decompressed length {r} exceeds the limit {MAX_PAYLOAD_LEN}"
            ));
        }
        if self.flags & BLOCK_FLAG_ZSTD == 0 && s != r {
            return Err(format!(
                "uncompressed block with stored length {s} and raw length {r}"
            ));
        }
        if self.flags & BLOCK_FLAG_ZSTD != 0 && r as u64 > s as u64 * MAX_ZSTD_EXPANSION {
            return Err(format!(
                "{s} compressed bytes cannot expand to {r} (zstd expands at most {MAX_ZSTD_EXPANSION}×)"
            ));
        }
        Ok(())
    }
}

pub(crate) fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK_ALIGN as u64) * BLOCK_ALIGN as u64
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = FileHeader::current();
        assert_eq!(FileHeader::decode(&h.encode()).unwrap(), h);
        let b = BlockHeader {
            kind: BlockKind::ENERGY,
            flags: BLOCK_FLAG_ZSTD,
            stored_len: 17,
            raw_len: 99,
            payload_crc: 0xdead_beef,
        };
        assert_eq!(BlockHeader::decode(&b.encode()), Some(b));
        assert_eq!(b.total_len(), 24 + 24);
    }

    #[test]
    fn unknown_incompatible_flag_is_refused_and_compatible_one_ignored() {
        let mut h = FileHeader::current();
        h.flags = 1;
        assert!(FileHeader::decode(&h.encode()).is_ok());
        h.flags = 1 << 20;
        assert!(matches!(
            FileHeader::decode(&h.encode()),
            Err(Error::IncompatibleFlags(_))
        ));
    }

    #[test]
    fn future_major_is_refused() {
        let mut h = FileHeader::current();
        h.major = 2;
        assert!(matches!(
            FileHeader::decode(&h.encode()),
            Err(Error::UnsupportedVersion { major: 2, .. })
        ));
    }
}
