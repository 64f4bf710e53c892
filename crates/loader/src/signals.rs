//! SIGINT and SIGTERM: the first asks the run to stop (drain, then clean up); a second one
//! asks it to hurry (kill what still runs, then clean up). Neither kills pws-load outright,
//! so its cgroups are always removed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use signal_hook::SigId;

#[derive(Debug)]
pub struct Signals {
    stop: Arc<AtomicBool>,
    hurry: Arc<AtomicBool>,
    ids: Vec<SigId>,
}

impl Signals {
    pub fn install() -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let hurry = Arc::new(AtomicBool::new(false));
        let mut ids = Vec::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let (s, h) = (Arc::clone(&stop), Arc::clone(&hurry));
            // SAFETY: the action only loads and stores atomics, which is async-signal-safe.
            let id = unsafe {
                signal_hook::low_level::register(sig, move || {
                    if s.swap(true, Ordering::SeqCst) {
                        h.store(true, Ordering::SeqCst);
                    }
                })
            }
            .context("cannot install the SIGINT/SIGTERM handlers")?;
            ids.push(id);
        }
        Ok(Self { stop, hurry, ids })
    }

    pub fn stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn hurry(&self) -> bool {
        self.hurry.load(Ordering::SeqCst)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}
