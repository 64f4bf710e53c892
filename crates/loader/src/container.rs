//! One function instance: a cgroup v2 directory `<parent>/<id>` and the runtime process inside
//! it, spoken to over pipes with read deadlines. Dropping a container tears it down (thaw,
//! kill, reap, rmdir), so an error anywhere never leaves a process or a cgroup behind.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::cgroup::{self, Cgroup};
use crate::functions::Function;
use crate::protocol::{Reply, Request};

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
    /// The platform's parent cgroup, `<root>/pws-load-<pid>`.
    pub parent: PathBuf,
    /// The executable run as `<exe> runtime` (pws-load itself).
    pub runtime_exe: PathBuf,
    /// Whether `memory.max` can be written in the containers' cgroups.
    pub memory_limits: bool,
}

/// A running function instance.
#[derive(Debug)]
pub struct Container {
    /// 64 hex digits, like a Docker container id; also the cgroup directory's name.
    pub id: String,
    cgroup: Cgroup,
    child: Child,
    stdin: ChildStdin,
    reader: LineReader,
    /// The function it was initialised with (None: a prewarmed stem cell).
    function: Option<Function>,
    paused: bool,
    torn_down: bool,
}

impl Spawner {
    /// Creates `<parent>/<id>`, sets its memory limit, and starts the runtime inside it
    /// (moved in before exec, so none of its work is accounted elsewhere); waits until it is ready.
    pub fn start(&self, id: &str, memory_mb: u64) -> Result<Container> {
        let cg = Cgroup::create(self.parent.join(id))?;
        let guard = RemoveOnError(Some(cg.clone()));
        if self.memory_limits {
            set_memory(&cg, memory_mb)?;
        }
        let procs = CString::new(cg.path().join("cgroup.procs").as_os_str().as_bytes())
            .context("cgroup path contains a NUL byte")?;
        let mut cmd = Command::new(&self.runtime_exe);
        cmd.arg("runtime")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: the closure only makes async-signal-safe syscalls (see enter_in_child).
        unsafe {
            cmd.pre_exec(move || cgroup::enter_in_child(&procs));
        }
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "cannot start the runtime {} runtime in cgroup {}",
                self.runtime_exe.display(),
                cg.path().display()
            )
        })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!("runtime started without pipes"));
        };
        let mut c = Container {
            id: id.to_owned(),
            cgroup: guard.disarm(),
            child,
            stdin,
            reader: LineReader {
                pipe: stdout,
                buf: Vec::new(),
            },
            function: None,
            paused: false,
            torn_down: false,
        };
        match c.reader.read_line(READY_TIMEOUT) {
            Ok(line) => match serde_json::from_str::<Reply>(&line) {
                Ok(Reply::Ready { pid }) if pid == c.child.id() => Ok(c),
                _ => Err(anyhow!(
                    "runtime in {} did not say ready: {}",
                    c.cgroup.path().display(),
                    line.trim()
                )),
            },
            Err(f) => Err(anyhow!(
                "runtime in {} did not start: {f}",
                c.cgroup.path().display()
            )),
        }
    }
}

fn set_memory(cg: &Cgroup, memory_mb: u64) -> Result<()> {
    let bytes = (memory_mb * 1024 * 1024).to_string();
    cg.write("memory.max", &bytes)
        .with_context(|| format!("cannot write {}/memory.max", cg.path().display()))?;
    // OpenWhisk gives --memory-swap equal to --memory: no swap beyond the limit.
    if cg.path().join("memory.swap.max").exists() {
        let _ = cg.write("memory.swap.max", "0");
    }
    Ok(())
}

/// Removes a cgroup unless disarmed: `Spawner::start` failing half-way leaves nothing behind.
struct RemoveOnError(Option<Cgroup>);

impl RemoveOnError {
    fn disarm(mut self) -> Cgroup {
        self.0.take().expect("disarmed once")
    }
}

impl Drop for RemoveOnError {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            let _ = cg.kill_all();
            cg.wait_empty(cgroup::SETTLE_TIMEOUT);
            let _ = cg.remove();
        }
    }
}

impl Container {
    pub fn cgroup_path(&self) -> &Path {
        self.cgroup.path()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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
            set_memory(&self.cgroup, mb).map_err(|e| Fault::Protocol(format!("{e:#}")))?;
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
        self.cgroup.usage_usec()
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

    /// Freezes the cgroup and waits for `cgroup.events` to say frozen 1.
    pub fn pause(&mut self) -> Result<()> {
        self.cgroup.set_frozen(true)?;
        self.paused = true;
        Ok(())
    }

    /// Thaws the cgroup and waits for frozen 0.
    pub fn resume(&mut self) -> Result<()> {
        self.cgroup.set_frozen(false)?;
        self.paused = false;
        Ok(())
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
        let killed = self.cgroup.kill_all();
        // The runtime is our child: reap it (SIGKILL again in case the cgroup write failed).
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.cgroup.wait_empty(cgroup::SETTLE_TIMEOUT);
        killed?;
        self.cgroup.remove()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}
