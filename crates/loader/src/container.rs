//! One function instance: a [`Sandbox`] (a cgroup of ours, or a Docker container) and the
//! runtime process inside it, spoken to over pipes with read deadlines. Dropping a container
//! tears it down (thaw, kill, reap, remove), so an error anywhere never leaves a process, a
//! cgroup or a Docker container behind.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use crate::functions::Function;
use crate::protocol::{Reply, Request};
use crate::sandbox::{Isolation, Launch, Launched, Sandbox};

/// How long a new runtime process may take to say it is ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to the runtime failed. `Timeout` and `Died` are the action's fault in
/// OpenWhisk's terms (developer error); `Io` and `Protocol` are the platform's.
#[derive(Debug)]
pub enum Fault {
    Timeout(Duration),
    Died(String),
    Protocol(String),
    Io(io::Error),
    /// The runtime answered with an error of its own.
    Runtime(String),
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Timeout(d) => write!(
                f,
                "The action exceeded its time limits of {} milliseconds.",
                d.as_millis()
            ),
            Fault::Died(why) => write!(
                f,
                "The action did not produce a valid response and exited unexpectedly ({why})."
            ),
            Fault::Protocol(why) => write!(f, "runtime protocol error: {why}"),
            Fault::Io(e) => write!(f, "cannot talk to the runtime: {e}"),
            Fault::Runtime(m) => write!(f, "{m}"),
        }
    }
}

/// Lines from a pipe, with a deadline per line (poll(2) on the raw fd).
#[derive(Debug)]
struct LineReader {
    pipe: ChildStdout,
    buf: Vec<u8>,
}

impl LineReader {
    fn read_line(&mut self, timeout: Duration) -> Result<String, Fault> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return String::from_utf8(line)
                    .map_err(|_| Fault::Protocol("reply is not UTF-8".into()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Fault::Timeout(timeout));
            }
            let mut pfd = libc::pollfd {
                fd: self.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(Fault::Io(e));
            }
            if n == 0 {
                continue;
            }
            let mut chunk = [0u8; 64 * 1024];
            match self.pipe.read(&mut chunk) {
                Ok(0) => return Err(Fault::Died("end of output".into())),
                Ok(k) => self.buf.extend_from_slice(&chunk[..k]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Fault::Io(e)),
            }
        }
    }
}

/// Where and how containers are made.
#[derive(Debug, Clone)]
pub struct Spawner {
    pub isolation: Arc<dyn Isolation>,
    /// Whether memory limits can be set on the instances.
    pub memory_limits: bool,
}

/// A running function instance.
#[derive(Debug)]
pub struct Container {
    /// 64 hex digits: a Docker id, or one made like it (the process runtime's cgroup name).
    pub id: String,
    sandbox: Box<dyn Sandbox>,
    child: Child,
    stdin: ChildStdin,
    reader: LineReader,
    /// The function it was initialised with (None: a prewarmed stem cell).
    function: Option<Function>,
    paused: bool,
    /// Start and end of the pause command of the open pause: the kernel froze the instance at
    /// some moment between the two.
    paused_at: Option<(Instant, Instant)>,
    /// Paused time of ended pauses, as the commands bound it.
    paused_time: PausedTime,
    torn_down: bool,
}

/// Time a container spent paused, as far as its platform can know it: each freeze took effect
/// at some moment during its pause command, each thaw during its resume command (`docker
/// pause` is a client, a daemon, containerd and runc: tens of ms, most of it before the write
/// to the freezer), so each pause lasted between the end of the one and the start of the
/// other, and the start of the one and the end of the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PausedTime {
    /// Midpoint to midpoint of the commands: the best single estimate.
    pub estimate_ns: u64,
    /// Sum over pauses of (resume started − pause returned).
    pub min_ns: u64,
    /// Sum over pauses of (resume returned − pause started).
    pub max_ns: u64,
}

impl PausedTime {
    /// Adds one pause, from the (start, end) instants of its pause and its resume command.
    fn add(&mut self, (p0, p1): (Instant, Instant), (r0, r1): (Instant, Instant)) {
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let (froze, thawed) = (p0 + (p1 - p0) / 2, r0 + (r1 - r0) / 2);
        self.estimate_ns += ns(thawed.saturating_duration_since(froze));
        self.min_ns += ns(r0.saturating_duration_since(p1));
        self.max_ns += ns(r1.saturating_duration_since(p0));
    }
}

impl Spawner {
    /// Starts an instance named `name` (its id is `id` unless the runtime chooses one) and
    /// waits until its runtime says it is ready.
    pub fn start(&self, id: &str, name: &str, memory_mb: u64) -> Result<Container> {
        let Launched {
            id,
            sandbox,
            mut child,
        } = self.isolation.launch(&Launch {
            id,
            name,
            memory_mb,
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let mut sandbox = sandbox;
            let _ = sandbox.teardown(&mut child);
            return Err(anyhow!("runtime started without pipes"));
        };
        // From here on, dropping `c` tears the instance down.
        let mut c = Container {
            id,
            sandbox,
            child,
            stdin,
            reader: LineReader {
                pipe: stdout,
                buf: Vec::new(),
            },
            function: None,
            paused: false,
            paused_at: None,
            paused_time: PausedTime::default(),
            torn_down: false,
        };
        let same_ns = self.isolation.same_pid_namespace();
        match c.reader.read_line(READY_TIMEOUT) {
            Ok(line) => match serde_json::from_str::<Reply>(&line) {
                Ok(Reply::Ready { pid }) if !same_ns || pid == c.child.id() => Ok(c),
                _ => Err(anyhow!(
                    "runtime in {} did not say ready: {}",
                    c.sandbox.cgroup_path().display(),
                    line.trim()
                )),
            },
            Err(f) => Err(anyhow!(
                "runtime in {} did not start: {f}",
                c.sandbox.cgroup_path().display()
            )),
        }
    }
}

impl Container {
    pub fn cgroup_path(&self) -> &Path {
        self.sandbox.cgroup_path()
    }

    /// The runtime's pid on the host.
    pub fn pid(&self) -> u32 {
        self.sandbox.pid()
    }

    pub fn function(&self) -> Option<Function> {
        self.function
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn request(&mut self, req: &Request, timeout: Duration) -> Result<Reply, Fault> {
        self.stdin
            .write_all(req.to_line().as_bytes())
            .and_then(|()| self.stdin.flush())
            .map_err(|e| {
                if e.kind() == io::ErrorKind::BrokenPipe {
                    Fault::Died("its input is closed".into())
                } else {
                    Fault::Io(e)
                }
            })?;
        let line = self.reader.read_line(timeout)?;
        match serde_json::from_str::<Reply>(&line) {
            Ok(Reply::Error { message }) => Err(Fault::Runtime(message)),
            Ok(r) => Ok(r),
            Err(e) => Err(Fault::Protocol(format!("{e}: {}", line.trim()))),
        }
    }

    /// `/init`: loads the function (and sets the cgroup's memory limit to the action's).
    /// Returns the runtime's own init time in ms.
    pub fn init(
        &mut self,
        function: Function,
        code_size_kb: u64,
        memory_mb: Option<u64>,
        timeout: Duration,
    ) -> Result<f64, Fault> {
        if let Some(mb) = memory_mb {
            self.sandbox
                .set_memory(mb)
                .map_err(|e| Fault::Protocol(format!("{e:#}")))?;
        }
        let req = Request::Init {
            function: function.name().to_owned(),
            code_size_kb,
        };
        match self.request(&req, timeout)? {
            Reply::Initialized { ms, .. } => {
                self.function = Some(function);
                Ok(ms)
            }
            other => Err(Fault::Protocol(format!(
                "unexpected reply to init: {other:?}"
            ))),
        }
    }

    /// `/run`: the result and the runtime's CPU time in ms.
    /// The kernel's CPU time of this instance so far, in µs (`cpu.stat`).
    pub fn usage_usec(&self) -> Option<u64> {
        self.sandbox.usage_usec()
    }

    pub fn run(
        &mut self,
        input: u64,
        timeout: Duration,
    ) -> Result<(serde_json::Value, f64), Fault> {
        match self.request(&Request::Run { input }, timeout)? {
            Reply::Result { result, cpu_ms, .. } => Ok((result, cpu_ms)),
            other => Err(Fault::Protocol(format!(
                "unexpected reply to run: {other:?}"
            ))),
        }
    }

    /// Freezes the instance and waits until the kernel says it is frozen.
    pub fn pause(&mut self) -> Result<()> {
        let t = Instant::now();
        self.sandbox.set_frozen(true)?;
        self.paused = true;
        self.paused_at = Some((t, Instant::now()));
        Ok(())
    }

    /// Thaws the instance and waits until it runs again.
    pub fn resume(&mut self) -> Result<()> {
        let t = Instant::now();
        self.sandbox.set_frozen(false)?;
        self.paused = false;
        if let Some(froze) = self.paused_at.take() {
            self.paused_time.add(froze, (t, Instant::now()));
        }
        Ok(())
    }

    /// Time spent paused (ended pauses only), as the pause and resume commands bound it.
    pub fn paused_time(&self) -> PausedTime {
        self.paused_time
    }

    /// Thaw, kill, reap, remove the cgroup.
    pub fn destroy(mut self) -> Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        self.sandbox.teardown(&mut self.child)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn paused_time_is_bounded_by_the_commands() {
        let t = Instant::now();
        let ms = |n: u64| t + Duration::from_millis(n);
        let mut p = PausedTime::default();
        // Pause command 0–40 ms, resume 1000–1020 ms; then a second pause 2000–2010, 2500–2530.
        p.add((ms(0), ms(40)), (ms(1000), ms(1020)));
        p.add((ms(2000), ms(2010)), (ms(2500), ms(2530)));
        assert_eq!(p.min_ns, (960 + 490) * 1_000_000);
        assert_eq!(p.max_ns, (1020 + 530) * 1_000_000);
        assert_eq!(p.estimate_ns, (990 + 510) * 1_000_000);
    }
}
