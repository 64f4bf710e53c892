//! Spill files: state written once and read back by later passes in order, kept on disk rather
//! than in memory (an hour of a busy node makes tens of MB of some of it).
//!
//! A spill file lives in the output directory, not in the system's temporary directory, which
//! is memory on many systems (tmpfs). Its name is removed as soon as it is open, so it is gone
//! when closed, or when the process ends however it ends.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};

static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Spill files go to `dir` from now on (the analysis's output directory); until this is
/// called, to the system's temporary directory.
pub fn set_dir(dir: &Path) {
    *DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_owned());
}

fn dir() -> PathBuf {
    DIR.lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(std::env::temp_dir)
}

/// A new, empty spill file open for reading and writing, its name already removed.
pub fn create() -> Result<File> {
    create_in(&dir())
}

fn create_in(dir: &Path) -> Result<File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {} for a spill file", dir.display()))?;
    let path = dir.join(format!(
        ".pws-spill-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create the spill file {}", path.display()))?;
    std::fs::remove_file(&path)
        .with_context(|| format!("cannot unlink the spill file {}", path.display()))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_spill_file_has_no_name_and_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = super::create_in(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "unlinked at once"
        );
        f.write_all(b"spilled").unwrap();
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "spilled");
    }
}
