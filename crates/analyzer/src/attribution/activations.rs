//! The activations as the attribution reads them. Every model and idle policy asks for each
//! activation's window and container; only the `activation_energy` rows ask for its id, action,
//! namespace and start type, once per (domain, model), in activation order. So the window and
//! container stay in memory (16 B an activation) and the text goes to a spill file, read back
//! in order; the records themselves (~190 B an activation with their id, held from the load)
//! are not held through the attribution.

use std::collections::HashMap;

use anyhow::{Context, Result};

use crate::replay::lifecycle::Lifecycles;
use crate::spill::{Chunked, Indexed, IndexedWriter};

/// No container.
const NONE: u32 = u32::MAX;

#[derive(Debug)]
pub struct Activations {
    /// Per activation, its window's start and end (ns), as recorded.
    window: Vec<(u64, u64)>,
    /// Per activation, its container (index into `Lifecycles::containers`), or [`NONE`].
    container: Vec<u32>,
    /// Container → the memory limit of its last activation that has one, MB.
    memory_mb: HashMap<usize, f64>,
    /// Per activation, its id, action, namespace and start type.
    text: Indexed,
}

/// One activation's text, for a table row.
#[derive(Debug, PartialEq)]
pub struct Text<'a> {
    pub activation_id: &'a str,
    pub action: &'a str,
    pub namespace: &'a str,
    pub start_type: &'a str,
}

impl Activations {
    /// Takes the activations out of the lifecycles (left with none): what is read of them
    /// after this is here.
    pub fn take(life: &mut Lifecycles) -> Result<Self> {
        let all = std::mem::take(&mut life.activations);
        let mut text = IndexedWriter::new("the activations' text")?;
        let (mut window, mut container) = (Vec::with_capacity(all.len()), Vec::new());
        container.reserve_exact(all.len());
        let mut memory_mb = HashMap::new();
        for a in all {
            let r = &a.record;
            window.push((r.start_ns, r.end_ns));
            let c = match a.container() {
                Some(c) => u32::try_from(c)
                    .ok()
                    .filter(|&c| c != NONE)
                    .context("more than 4 G containers")?,
                None => NONE,
            };
            container.push(c);
            if let (Some(c), Some(m)) = (a.container(), r.memory_limit_mb()) {
                memory_mb.insert(c, m as f64);
            }
            let start_type = a.start_type.to_string();
            let mut id = [0; 32];
            let id = r.activation_id.as_str(&mut id);
            text.push(|b| {
                for s in [id, &r.action, &r.namespace, &start_type] {
                    b.extend_from_slice(&crate::spill::count(s.len()).to_le_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
            })?;
        }
        Ok(Self {
            window,
            container,
            memory_mb,
            text: text.finish()?,
        })
    }

    pub fn len(&self) -> usize {
        self.window.len()
    }

    /// Activation `ai`'s window, ns.
    pub fn window(&self, ai: usize) -> (u64, u64) {
        self.window[ai]
    }

    /// Activation `ai`'s container, if it was joined to one.
    pub fn container(&self, ai: usize) -> Option<usize> {
        let c = self.container[ai];
        (c != NONE).then_some(c as usize)
    }

    /// Each container's memory limit, from its activations (the last that gives one).
    pub fn memory_mb(&self) -> &HashMap<usize, f64> {
        &self.memory_mb
    }

    /// Reads the activations' text, fastest in activation order.
    pub fn texts(&self) -> Texts<'_> {
        Texts {
            of: self,
            chunk: Chunked::default(),
        }
    }
}

/// A reader of [`Activations`]' text.
pub struct Texts<'a> {
    of: &'a Activations,
    chunk: Chunked,
}

impl Texts<'_> {
    /// Activation `ai`'s text; an error where the spill file cannot be read back whole.
    pub fn get(&mut self, ai: usize) -> Result<Text<'_>> {
        let what = "reading the activations' text back from its spill file";
        let mut b = self.of.text.bytes(&mut self.chunk, ai).context(what)?;
        let mut next = || -> Option<&str> {
            let n = u32::from_le_bytes(crate::spill::take::<4>(&mut b)?) as usize;
            let (s, rest) = b.split_at_checked(n)?;
            b = rest;
            std::str::from_utf8(s).ok()
        };
        let (Some(activation_id), Some(action), Some(namespace), Some(start_type)) =
            (next(), next(), next(), next())
        else {
            anyhow::bail!("{what}: activation {ai}'s record is cut short");
        };
        Ok(Text {
            activation_id,
            action,
            namespace,
            start_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::compact_records::CompactRecord;
    use crate::replay::lifecycle::{Activation, JoinMethod};
    use pws_trace::records::{ActivationRecord, ActivationSource, StartType};

    fn activation(id: &str, container: Option<usize>, memory: Option<u64>) -> Activation {
        let r = ActivationRecord {
            activation_id: id.into(),
            namespace: "guest".into(),
            action: format!("f-{id}"),
            version: String::new(),
            source: ActivationSource::RestApi,
            kind: String::new(),
            start_type: StartType::Warm,
            start_epoch_ms: 0,
            end_epoch_ms: 0,
            start_ns: 10,
            end_ns: 25,
            wait_ms: None,
            init_ms: None,
            duration_ms: None,
            status_code: None,
            memory_limit_mb: memory,
            timeout_ms: None,
            container_id: String::new(),
            path: String::new(),
            caused_by: String::new(),
            raw: String::new(),
        };
        Activation::new(
            CompactRecord::from(r),
            container,
            JoinMethod::Record,
            StartType::Cold,
        )
    }

    #[test]
    fn windows_containers_and_text_are_what_the_records_said() {
        let mut life = Lifecycles {
            activations: vec![
                activation("a1", Some(3), Some(256)),
                activation("", None, None),
                activation("a3", Some(3), Some(512)),
            ],
            ..Lifecycles::default()
        };
        let acts = Activations::take(&mut life).unwrap();
        assert!(life.activations.is_empty(), "taken, not copied");
        assert_eq!(acts.len(), 3);
        assert_eq!(acts.window(2), (10, 25));
        assert_eq!((acts.container(0), acts.container(1)), (Some(3), None));
        assert_eq!(acts.memory_mb()[&3], 512.0, "the last activation's limit");
        let mut t = acts.texts();
        // Out of order, and again: read by number.
        assert_eq!(
            t.get(2).unwrap(),
            Text {
                activation_id: "a3",
                action: "f-a3",
                namespace: "guest",
                start_type: "cold"
            }
        );
        assert_eq!(t.get(1).unwrap().activation_id, "");
        assert_eq!(t.get(0).unwrap().action, "f-a1");
    }

    #[test]
    fn a_spill_file_cut_short_is_an_error_not_a_wrong_row() {
        let mut life = Lifecycles {
            activations: vec![activation("a1", Some(0), None)],
            ..Lifecycles::default()
        };
        let acts = Activations::take(&mut life).unwrap();
        acts.text.file().set_len(5).unwrap();
        let e = acts.texts().get(0).unwrap_err();
        assert!(format!("{e:#}").contains("activations' text"), "{e:#}");
    }
}
