//! Text that many records and events repeat (an action's name, a container id, a cgroup path),
//! held once and shared.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A shared string behind one pointer. `Arc<str>` is two (pointer and length): an hour of a
/// busy node keeps ~180 k activation records with seven shared strings each from the load to
/// the end of the analysis, where the second word was 10 MB. Reading it follows one more
/// pointer, which the analysis does per record, not per sample.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Arc<String>);

#[cfg(test)]
impl Text {
    /// Whether `a` and `b` are the same shared string, not only equal ones.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

/// So that a set of them is searched by `&str` (`String` hashes as its `str` does).
impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Self(Arc::new(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Self(Arc::new(s.to_owned()))
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pointer_found_by_str_and_shared_by_clones() {
        assert_eq!(std::mem::size_of::<Text>(), std::mem::size_of::<usize>());
        let a = Text::from("guest/hello");
        let mut set = std::collections::HashSet::new();
        set.insert(a.clone());
        let found = set.get("guest/hello").unwrap();
        assert!(Text::ptr_eq(found, &a));
        assert!(!Text::ptr_eq(&a, &Text::from("guest/hello")));
        assert_eq!(a, Text::from(String::from("guest/hello")));
        assert_eq!(
            (&*a, a.len(), a.to_string()),
            ("guest/hello", 11, "guest/hello".into())
        );
        assert_eq!(format!("{a:?}"), "\"guest/hello\"");
    }
}
