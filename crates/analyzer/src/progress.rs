//! Progress of a call over its inputs, measured in bytes of the input files, so one long trace
//! moves the bar as its blocks are walked rather than only when it is done.
//!
//! A trace's perf blocks are walked twice (the side-band pass, then the accounting pass), so an
//! input counts for twice its size; what its walk did not count (the tables, inputs without
//! perf blocks, kept inflated blocks) is added when the input is done.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

/// Passes over each trace's perf data.
const PASSES: u64 = 2;

/// The bar of a whole call (hidden when quiet or stderr is no terminal).
pub struct Progress {
    bar: Option<ProgressBar>,
    inputs: u64,
    done: AtomicU64,
}

impl Progress {
    pub fn new(paths: &[&Path], visible: bool) -> Self {
        let bar = visible.then(|| {
            let total: u64 = paths.iter().map(|p| size_of(p) * PASSES).sum();
            let pb = ProgressBar::new(total);
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {percent:>3}% {elapsed_precise} (eta {eta}) {msg}",
                )
                .expect("valid template"),
            );
            pb
        });
        let p = Self {
            bar,
            inputs: paths.len() as u64,
            done: AtomicU64::new(0),
        };
        p.show_count();
        p
    }

    /// A tracker that shows nothing (single-trace commands such as `timeline`).
    pub fn hidden() -> Self {
        Self {
            bar: None,
            inputs: 0,
            done: AtomicU64::new(0),
        }
    }

    /// The tracker of one input; dropping it (done or failed) completes its share.
    pub fn input(&self, path: &Path) -> InputProgress<'_> {
        InputProgress {
            all: self,
            share: if self.bar.is_some() {
                size_of(path) * PASSES
            } else {
                0
            },
            walked: AtomicU64::new(0),
        }
    }

    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }

    fn show_count(&self) {
        if let Some(pb) = &self.bar {
            let done = self.done.load(Ordering::Relaxed);
            pb.set_message(format!("{done}/{} inputs", self.inputs));
        }
    }
}

/// One input's part of the bar.
pub struct InputProgress<'a> {
    all: &'a Progress,
    share: u64,
    walked: AtomicU64,
}

impl InputProgress<'_> {
    /// `bytes` of the input file were walked (called from the replay's rayon tasks).
    pub fn walked(&self, bytes: u64) {
        if let Some(pb) = &self.all.bar {
            let before = self.walked.fetch_add(bytes, Ordering::Relaxed);
            // Never past the input's share: the bar stays a fair fraction of the whole call.
            pb.inc(bytes.min(self.share.saturating_sub(before)));
        }
    }
}

impl Drop for InputProgress<'_> {
    fn drop(&mut self) {
        if let Some(pb) = &self.all.bar {
            pb.inc(self.share.saturating_sub(*self.walked.get_mut()));
            self.all.done.fetch_add(1, Ordering::Relaxed);
            self.all.show_count();
        }
    }
}

/// An input's bytes: a file's size, or the sum of a directory's files (hwpc CSV reports).
fn size_of(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_fills_exactly_its_share_whatever_was_walked() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::write(&a, vec![0u8; 1000]).unwrap();
        std::fs::write(&b, vec![0u8; 3000]).unwrap();
        let p = Progress::new(&[&a, &b], true);
        let bar = p.bar.clone().unwrap();
        assert_eq!(bar.length(), Some(8000));
        {
            let t = p.input(&a);
            t.walked(1500);
            assert_eq!(bar.position(), 1500);
            t.walked(5000); // more than its share (say, a perf.data converted): capped
            assert_eq!(bar.position(), 2000);
        }
        assert_eq!(bar.position(), 2000);
        {
            let t = p.input(&b);
            t.walked(100);
        } // failed early: the rest of its share is added when it is dropped
        assert_eq!(bar.position(), 8000);
        assert_eq!(p.done.load(Ordering::Relaxed), 2);
    }
}
