//! The two followed files: activation records as JSON lines (`--activations`) and the
//! OpenWhisk invoker's log (`--invoker-log`). Each line becomes trace records placed on the
//! trace clock; a malformed line is counted and reported with its number, and the rest kept.

use std::collections::HashSet;

use pws_openwhisk::cgroup::Resolver;
use pws_openwhisk::invoker_log::activations::Assembler;
use pws_openwhisk::invoker_log::link::Linker;
use pws_openwhisk::invoker_log::parse::parse_line;
use pws_trace::records::{ActivationRecord, ActivationSource, ContainerEvent};

use super::follow::Line;
use super::place::Placer;

/// What one batch of lines produced.
#[derive(Debug, Default)]
pub struct Batch {
    pub activations: Vec<ActivationRecord>,
    pub containers: Vec<ContainerEvent>,
}

/// Turns one line into records; `Err` is the reason a line was rejected.
pub trait LineSource: Send {
    fn line(&mut self, line: &str, placer: &Placer, out: &mut Batch) -> Result<(), String>;
    /// Lines accepted but not recorded again (duplicates), for the statistics.
    fn duplicates(&self) -> u64 {
        0
    }
    /// What the source leaves out when recording stops, said in a note (None: nothing).
    fn left_out(&self) -> Option<String> {
        None
    }
}

/// `--activations FILE`: `wsk activation get` output, a dump of the activations database, or
/// what `pws-load` writes, one JSON record per line.
#[derive(Debug, Default)]
pub struct JsonLines {
    seen: HashSet<String>,
    duplicates: u64,
}

impl LineSource for JsonLines {
    fn line(&mut self, line: &str, placer: &Placer, out: &mut Batch) -> Result<(), String> {
        let rec = pws_openwhisk::activation::from_line(line, ActivationSource::JsonLines)
            .map_err(|e| e.to_string())?;
        if let Some(mut a) = rec {
            // A rewritten or rotated file repeats records: one per activation id.
            if !self.seen.insert(a.activation_id.clone()) {
                self.duplicates += 1;
                return Ok(());
            }
            placer.activation(&mut a);
            out.activations.push(a);
        }
        Ok(())
    }

    fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

/// `--invoker-log FILE`: container operations and the activation → container link, with each
/// container's cgroup resolved on this host when it can be; and an activation record for each
/// activation the log shows ending, so that the log alone is enough.
#[derive(Debug)]
pub struct InvokerLog {
    linker: Linker,
    assembler: Assembler,
    resolver: Resolver,
}

impl InvokerLog {
    pub fn new(resolver: Resolver) -> Self {
        Self {
            linker: Linker::new(),
            assembler: Assembler::new(),
            resolver,
        }
    }
}

impl LineSource for InvokerLog {
    fn line(&mut self, line: &str, placer: &Placer, out: &mut Batch) -> Result<(), String> {
        if line.trim().is_empty() {
            return Ok(());
        }
        let Some(ev) = parse_line(line).map_err(|e| e.to_string())? else {
            return Ok(());
        };
        for linked in self.linker.feed(&ev) {
            let mut e = linked.event;
            placer.container_event(linked.ts_epoch_ms, &mut e);
            if e.cgroup_path.is_empty() && !e.container_id.is_empty() {
                if let Some(p) = self.resolver.resolve(&e.container_id) {
                    e.cgroup_path = p.display().to_string();
                }
            }
            out.containers.push(e);
        }
        if let Some(mut a) = self.assembler.feed(&ev) {
            placer.activation(&mut a);
            out.activations.push(a);
        }
        Ok(())
    }

    fn left_out(&self) -> Option<String> {
        let n = self.assembler.incomplete();
        (n > 0).then(|| {
            format!("{n} activations started in the log but never ended there (no result line before the recording stopped, or forgotten): no record written for them")
        })
    }
}

/// Runs `src` over `lines`, counting and describing rejected ones (`file:line: reason`).
pub fn feed(
    src: &mut dyn LineSource,
    file: &str,
    lines: &[Line],
    placer: &Placer,
    out: &mut Batch,
    errors: &mut u64,
    last_error: &mut String,
) {
    for l in lines {
        if let Err(why) = src.line(&l.text, placer, out) {
            *errors += 1;
            *last_error = format!("{file}:{}: {why}", l.no);
        }
    }
}
