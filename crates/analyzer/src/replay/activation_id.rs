//! An activation's id as the analysis keeps it. OpenWhisk's ids are 32 lowercase hex digits:
//! held as their 16 bytes rather than as text. An hour of a busy node keeps ~180 k records and
//! as many invoker-log events from the load to the join, each with its id: as a boxed string a
//! 32-digit id took 64 B (the pointer, the length and its allocation), here 24.

use std::fmt;

/// An activation id: any text, compared, hashed and ordered as that text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ActivationId(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    /// Exactly 32 lowercase hex digits, as bytes: the only form written so, so two ids are
    /// equal exactly when their texts are.
    Hex([u8; 16]),
    Text(Box<str>),
}

/// Room for an id's text made from its bytes ([`ActivationId::as_str`]).
pub type IdBuf = [u8; 32];

const DIGITS: &[u8; 16] = b"0123456789abcdef";

impl ActivationId {
    /// The id's text: its own, or written into `buf`.
    pub fn as_str<'a>(&'a self, buf: &'a mut IdBuf) -> &'a str {
        match &self.0 {
            Repr::Text(s) => s,
            Repr::Hex(b) => {
                for (i, byte) in b.iter().enumerate() {
                    buf[2 * i] = DIGITS[usize::from(byte >> 4)];
                    buf[2 * i + 1] = DIGITS[usize::from(byte & 0xf)];
                }
                std::str::from_utf8(buf).expect("hex digits are ASCII")
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(&self.0, Repr::Text(s) if s.is_empty())
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl From<String> for ActivationId {
    fn from(s: String) -> Self {
        let b = s.as_bytes();
        if b.len() == 32 {
            let mut bytes = [0u8; 16];
            let all_hex = b.chunks_exact(2).zip(&mut bytes).all(|(pair, out)| {
                match (hex_value(pair[0]), hex_value(pair[1])) {
                    (Some(hi), Some(lo)) => {
                        *out = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
            if all_hex {
                return Self(Repr::Hex(bytes));
            }
        }
        Self(Repr::Text(s.into_boxed_str()))
    }
}

impl From<&str> for ActivationId {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

/// By text, as the boxed strings were.
impl Ord for ActivationId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (mut a, mut b) = ([0; 32], [0; 32]);
        self.as_str(&mut a).cmp(other.as_str(&mut b))
    }
}

impl PartialOrd for ActivationId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str(&mut [0; 32]))
    }
}

impl fmt::Debug for ActivationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(&mut [0; 32]), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_bytes_and_read_back_as_their_text() {
        assert_eq!(std::mem::size_of::<ActivationId>(), 24);
        let text = "0123456789abcdef00ff10a0b0c0d0e9";
        let id = ActivationId::from(text);
        assert!(matches!(id.0, Repr::Hex(_)));
        assert_eq!(id.as_str(&mut [0; 32]), text);
        assert_eq!(
            (id.to_string(), format!("{id:?}")),
            (text.into(), format!("{text:?}"))
        );
        assert!(!id.is_empty());
        // Upper case, another length, or a non-digit stay text, as given.
        for other in [
            "0123456789ABCDEF00FF10A0B0C0D0E9",
            "0123456789abcdef00ff10a0b0c0d0e",
            "0123456789abcdef00ff10a0b0c0d0eg",
            "a1",
            "",
        ] {
            let o = ActivationId::from(other);
            assert!(matches!(o.0, Repr::Text(_)), "{other}");
            assert_eq!(o.as_str(&mut [0; 32]), other);
            assert!(o != id);
        }
        assert!(ActivationId::from("").is_empty());
    }

    /// Equal, hashed and ordered as their texts are, whichever form each is held in.
    #[test]
    fn ids_compare_as_their_text() {
        let texts = [
            "00000000000000000000000000000000",
            "0123456789abcdef00ff10a0b0c0d0e9",
            "0123456789abcdef00ff10a0b0c0d0e9x",
            "0123456789abcdef00ff10a0b0c0d0f",
            "9",
            "A",
            "ffffffffffffffffffffffffffffffff",
            "g",
        ];
        let mut ids: Vec<ActivationId> = texts.iter().rev().map(|&t| t.into()).collect();
        ids.sort();
        let back: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let mut sorted = texts.map(String::from).to_vec();
        sorted.sort();
        assert_eq!(back, sorted);
        let set: std::collections::HashSet<ActivationId> =
            texts.iter().chain(&texts).map(|&t| t.into()).collect();
        assert_eq!(set.len(), texts.len());
    }
}
