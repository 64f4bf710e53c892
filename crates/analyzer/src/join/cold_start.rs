//! Cold starts: how the container that ran an activation was obtained, in the three kinds the
//! tables keep apart. A **cold** start (`cold`, and `recreated` after a failed container) pays
//! for a container made and initialised for it; a **prewarmed** one an init in a stem cell made
//! before it arrived; a **warm** one neither. The start type comes from the invoker log where
//! it has one (it knows prewarmed from cold), else from the activation record.

use pws_trace::records::StartType;

/// The start types with a label of their own.
const KNOWN: [StartType; 4] = [
    StartType::Cold,
    StartType::Recreated,
    StartType::Prewarmed,
    StartType::Warm,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Cold,
    Prewarmed,
    Warm,
    Unknown,
}

impl Start {
    pub fn of(s: StartType) -> Self {
        match s {
            StartType::Cold | StartType::Recreated => Start::Cold,
            StartType::Prewarmed => Start::Prewarmed,
            StartType::Warm => Start::Warm,
            StartType::Unknown | StartType::Other(_) => Start::Unknown,
        }
    }

    /// The kind of a start written as its label (`start_type` in the tables).
    pub fn of_label(label: &str) -> Self {
        KNOWN
            .into_iter()
            .find(|t| t.label() == label)
            .map_or(Start::Unknown, Self::of)
    }

    /// The labels (`start_type` in the tables) of the start types of this kind, by
    /// [`Start::of`]: where a table is read by its text (`derived::functions`' counts).
    pub fn labels(self) -> Vec<std::borrow::Cow<'static, str>> {
        KNOWN
            .into_iter()
            .filter(|&t| Self::of(t) == self)
            .map(|t| t.label())
            .collect()
    }
}
