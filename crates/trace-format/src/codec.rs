//! Primitive encodings shared by every structured payload (FORMAT.md, "Primitives").
//!
//! All integers are little-endian. `varint` is unsigned LEB128 (at most 10 bytes),
//! `svarint` is zigzag + LEB128. Strings and byte strings are a varint length then the bytes.
//! Lists are a varint count then the items; records are a varint length then their fields,
//! so that a reader can skip fields appended by a later minor version.

use std::fmt;

/// A structured payload did not decode; the block reader adds the offset and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

pub(crate) type DecodeResult<T> = Result<T, DecodeError>;

fn underrun(what: &str, need: usize, have: usize) -> DecodeError {
    DecodeError(format!("{what}: needs {need} bytes, {have} left"))
}

/// Appends primitives to a byte vector.
pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put_f64(&mut self, v: f64);
    fn put_varint(&mut self, v: u64);
    fn put_svarint(&mut self, v: i64);
    fn put_bytes(&mut self, v: &[u8]);
    fn put_str(&mut self, v: &str);
    /// A length-prefixed record whose fields `f` writes.
    fn put_record(&mut self, f: impl FnOnce(&mut Vec<u8>));
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v);
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_f64(&mut self, v: f64) {
        self.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn put_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8);
    }
    fn put_svarint(&mut self, v: i64) {
        self.put_varint(((v << 1) ^ (v >> 63)) as u64);
    }
    fn put_bytes(&mut self, v: &[u8]) {
        self.put_varint(v.len() as u64);
        self.extend_from_slice(v);
    }
    fn put_str(&mut self, v: &str) {
        self.put_bytes(v.as_bytes());
    }
    fn put_record(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut body = Vec::new();
        f(&mut body);
        self.put_bytes(&body);
    }
}

/// Reads primitives from a byte slice; every read checks bounds and never panics.
#[derive(Debug, Clone)]
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    fn take(&mut self, n: usize, what: &str) -> DecodeResult<&'a [u8]> {
        if n > self.buf.len() {
            return Err(underrun(what, n, self.buf.len()));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> DecodeResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    pub fn u8(&mut self, what: &str) -> DecodeResult<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub fn u32(&mut self, what: &str) -> DecodeResult<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub fn u64(&mut self, what: &str) -> DecodeResult<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub fn f64(&mut self, what: &str) -> DecodeResult<f64> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    pub fn varint(&mut self, what: &str) -> DecodeResult<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(what)?;
            let bits = u64::from(b & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if i == 9 && bits > 1 {
                return Err(DecodeError(format!("{what}: varint overflows 64 bits")));
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError(format!("{what}: varint longer than 10 bytes")))
    }

    pub fn varint_u32(&mut self, what: &str) -> DecodeResult<u32> {
        let v = self.varint(what)?;
        u32::try_from(v).map_err(|_| DecodeError(format!("{what}: {v} does not fit 32 bits")))
    }

    pub fn svarint(&mut self, what: &str) -> DecodeResult<i64> {
        let z = self.varint(what)?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    pub fn bytes(&mut self, what: &str) -> DecodeResult<&'a [u8]> {
        let n = self.varint(what)?;
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.take(n, what)
    }

    pub fn str(&mut self, what: &str) -> DecodeResult<&'a str> {
        let b = self.bytes(what)?;
        std::str::from_utf8(b).map_err(|e| DecodeError(format!("{what}: invalid UTF-8 ({e})")))
    }

    pub fn string(&mut self, what: &str) -> DecodeResult<String> {
        self.str(what).map(str::to_owned)
    }

    /// A list count, checked against what the remaining bytes can hold (each item takes at
    /// least `min_item` bytes), so a corrupt count can never make us allocate beyond the input.
    pub fn count(&mut self, what: &str, min_item: usize) -> DecodeResult<usize> {
        let n = self.varint(what)?;
        let max = self.buf.len() / min_item.max(1);
        if n > max as u64 {
            return Err(DecodeError(format!(
                "{what}: count {n} cannot fit in the {} bytes left",
                self.buf.len()
            )));
        }
        Ok(n as usize)
    }

    /// A length-prefixed record: a decoder over its body. Fields a later minor version
    /// appended stay unread in the body and are skipped with it.
    pub fn record(&mut self, what: &str) -> DecodeResult<Dec<'a>> {
        Ok(Dec::new(self.bytes(what)?))
    }

    /// Decodes a list of length-prefixed records.
    pub fn records<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Dec<'a>) -> DecodeResult<T>,
    ) -> DecodeResult<Vec<T>> {
        let n = self.count(what, 1)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let mut r = self.record(what)?;
            out.push(f(&mut r)?);
        }
        Ok(out)
    }
}

/// Encodes a list of length-prefixed records.
pub(crate) fn put_records<T>(out: &mut Vec<u8>, items: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
    out.put_varint(items.len() as u64);
    for item in items {
        out.put_record(|b| f(b, item));
    }
}

/// An optional unsigned value: 0 for none, else value + 1 (FORMAT.md, "opt-varint").
pub(crate) fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    out.put_varint(v.map_or(0, |v| v.saturating_add(1)));
}

pub(crate) fn get_opt(d: &mut Dec<'_>, what: &str) -> DecodeResult<Option<u64>> {
    Ok(d.varint(what)?.checked_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), s in any::<i64>()) {
            let mut b = Vec::new();
            b.put_varint(u);
            b.put_svarint(s);
            let mut d = Dec::new(&b);
            prop_assert_eq!(d.varint("u").unwrap(), u);
            prop_assert_eq!(d.svarint("s").unwrap(), s);
            prop_assert!(d.rest().is_empty());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut d = Dec::new(&bytes);
            let _ = d.varint("v");
            let _ = d.str("s");
            let _ = d.count("c", 1);
            let _ = d.records("r", |r| r.u64("x"));
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Dec::new(&b).varint("v").is_err());
        let mut b = vec![0xffu8; 9];
        b.push(0x02); // bit 64 set
        assert!(Dec::new(&b).varint("v").is_err());
    }

    #[test]
    fn counts_are_bounded_by_the_input() {
        let mut b = Vec::new();
        b.put_varint(1 << 40);
        let err = Dec::new(&b).count("items", 1).unwrap_err();
        assert!(err.0.contains("cannot fit"), "{err}");
    }
}
