//! Following a growing text file, as `tail -F` does: complete lines as they are appended, the
//! file waited for if it does not exist yet, reopened if it is truncated or replaced (log
//! rotation), and read to its end — a last unterminated line included — when recording stops.
//! An inotify watch on the file's directory wakes the reader, so a line written is read within
//! a millisecond or so, and an idle file costs nothing between the stop checks.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use inotify::{Inotify, WatchMask};

/// Longest wait for the file to change before the caller looks at its stop flag again.
const WAIT_MS: i32 = 250;
/// Longest line kept; a longer one is cut there and reported (a runaway line must not grow
/// the recorder's memory without bound).
pub const MAX_LINE: usize = 4 << 20;

#[derive(Debug)]
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    /// Inode and offset of what was read, to tell truncation or replacement.
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
    /// Number of the next complete line (1-based), for error messages.
    line_no: u64,
    inotify: Option<Inotify>,
    /// Times the file was found truncated or replaced and read again from its start.
    pub reopened: u64,
    /// Lines longer than MAX_LINE, cut.
    pub overlong: u64,
}

/// One complete line and its number in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub no: u64,
    pub text: String,
}

impl Follower {
    /// Starts following `path` from its beginning (an existing file's lines are all read).
    pub fn new(path: &Path) -> Self {
        let inotify = Inotify::init().ok().and_then(|i| {
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
                _ => PathBuf::from("."),
            };
            let mask = WatchMask::MODIFY
                | WatchMask::CREATE
                | WatchMask::MOVED_TO
                | WatchMask::CLOSE_WRITE;
            i.watches().add(&dir, mask).ok().map(|_| i)
        });
        Self {
            path: path.to_owned(),
            file: None,
            ino: 0,
            offset: 0,
            partial: Vec::new(),
            line_no: 1,
            inotify,
            reopened: 0,
            overlong: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until something in the file's directory changes, or a short timeout.
    pub fn wait(&mut self) {
        match &mut self.inotify {
            Some(i) => {
                let mut pfd = libc::pollfd {
                    fd: i.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&mut pfd, 1, WAIT_MS) };
                let mut buf = [0u8; 4096];
                while i.read_events(&mut buf).is_ok_and(|e| e.count() > 0) {}
            }
            // No inotify (limits reached): poll the file instead.
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }

    /// Every complete line appended since the last call; with `at_end`, a last unterminated
    /// line too. A file that does not exist yet gives no lines (and no error).
    pub fn read_lines(&mut self, at_end: bool) -> io::Result<Vec<Line>> {
        self.check_replaced()?;
        let mut out = Vec::new();
        if let Some(f) = self.file.as_mut() {
            let mut buf = Vec::new();
            f.seek(SeekFrom::Start(self.offset))?;
            let n = f.read_to_end(&mut buf)?;
            self.offset += n as u64;
            self.split(&buf, &mut out);
        }
        if at_end && !self.partial.is_empty() {
            let text = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            out.push(Line {
                no: self.line_no,
                text,
            });
            self.line_no += 1;
        }
        Ok(out)
    }

    fn split(&mut self, buf: &[u8], out: &mut Vec<Line>) {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let piece = &rest[..i];
            let room = MAX_LINE.saturating_sub(self.partial.len());
            self.partial
                .extend_from_slice(&piece[..piece.len().min(room)]);
            if piece.len() > room {
                self.overlong += 1;
            }
            let mut bytes = std::mem::take(&mut self.partial);
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            out.push(Line {
                no: self.line_no,
                text: String::from_utf8_lossy(&bytes).into_owned(),
            });
            self.line_no += 1;
            rest = &rest[i + 1..];
        }
        let room = MAX_LINE.saturating_sub(self.partial.len());
        if rest.len() > room {
            self.overlong += 1;
        }
        self.partial
            .extend_from_slice(&rest[..rest.len().min(room)]);
    }

    /// Opens the file when it appears; reopens it from the start if it was replaced (another
    /// inode at the path) or truncated (shorter than what was read).
    fn check_replaced(&mut self) -> io::Result<()> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let replaced = self.file.is_some() && (meta.ino() != self.ino || meta.len() < self.offset);
        if self.file.is_none() || replaced {
            if replaced {
                self.reopened += 1;
                self.partial.clear();
            }
            self.file = Some(File::open(&self.path)?);
            self.ino = meta.ino();
            self.offset = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn texts(l: &[Line]) -> Vec<(u64, &str)> {
        l.iter().map(|l| (l.no, l.text.as_str())).collect()
    }

    #[test]
    fn lines_are_read_as_they_are_completed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.jsonl");
        let mut f = Follower::new(&p);
        assert!(f.read_lines(false).unwrap().is_empty(), "not there yet");
        let mut w = std::fs::File::create(&p).unwrap();
        w.write_all(b"one\ntw").unwrap();
        assert_eq!(texts(&f.read_lines(false).unwrap()), [(1, "one")]);
        w.write_all(b"o\r\nthree").unwrap();
        assert_eq!(texts(&f.read_lines(false).unwrap()), [(2, "two")]);
        assert_eq!(texts(&f.read_lines(true).unwrap()), [(3, "three")]);
    }

    #[test]
    fn a_truncated_or_replaced_file_is_read_again_from_its_start() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("invoker.log");
        std::fs::write(&p, "a\nb\n").unwrap();
        let mut f = Follower::new(&p);
        assert_eq!(f.read_lines(false).unwrap().len(), 2);
        std::fs::write(&p, "c\n").unwrap(); // truncated and rewritten
        assert_eq!(texts(&f.read_lines(false).unwrap()), [(3, "c")]);
        std::fs::rename(&p, d.path().join("invoker.log.1")).unwrap();
        std::fs::write(&p, "d\n").unwrap(); // rotated: a new inode
        assert_eq!(texts(&f.read_lines(false).unwrap()), [(4, "d")]);
        assert_eq!(f.reopened, 2);
    }

    #[test]
    fn an_overlong_line_is_cut_and_counted() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        let mut big = vec![b'x'; MAX_LINE + 10];
        big.extend_from_slice(b"\nok\n");
        std::fs::write(&p, &big).unwrap();
        let mut f = Follower::new(&p);
        let l = f.read_lines(false).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].text.len(), MAX_LINE);
        assert_eq!(l[1].text, "ok");
        assert_eq!(f.overlong, 1);
    }
}
