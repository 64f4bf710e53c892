//! What a follower (`pws-record --activations … --invoker-log …`) reads, live: activation
//! records as JSON lines in OpenWhisk's stored form, and the container operations as invoker
//! log lines, both written with the shared `pws_openwhisk` crate. Each line goes out in one
//! `write` on an unbuffered file, so a follower never sees half a line from us.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use pws_openwhisk::doc::{ActivationDoc, Response};
use pws_openwhisk::invoker_log::format;
use rand::Rng;
use serde_json::{json, Value};

/// Wall-clock milliseconds since the epoch, as OpenWhisk stamps records and log lines.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `n` random lowercase hex digits (activation ids: 32, container ids: 64).
pub fn random_hex(n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| HEX[rng.random_range(0..16)] as char)
        .collect()
}

#[derive(Debug)]
struct Sink {
    path: PathBuf,
    file: Mutex<File>,
}

impl Sink {
    fn create(path: &Path) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    fn write_line(&self, mut line: String) -> Result<()> {
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(line.as_bytes())
            .with_context(|| format!("cannot write to {}", self.path.display()))
    }
}

/// The two outputs, each optional; shared by the scheduler and the activation threads.
#[derive(Debug, Default)]
pub struct Outputs {
    activations: Option<Sink>,
    invoker_log: Option<Sink>,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Outputs {
    /// Creates (truncates) the files that are named.
    pub fn create(activations: Option<&Path>, invoker_log: Option<&Path>) -> Result<Self> {
        Ok(Self {
            activations: activations.map(Sink::create).transpose()?,
            invoker_log: invoker_log.map(Sink::create).transpose()?,
            ..Self::default()
        })
    }

    fn failed(&self, e: anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(|| format!("{e:#}"));
    }

    /// Write errors so far, and the first one.
    pub fn errors(&self) -> (u64, Option<String>) {
        let first = self
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        (self.errors.load(Ordering::Relaxed), first)
    }

    /// One invoker log line, stamped now.
    pub fn log(&self, tid: &str, component: &str, message: &str) {
        if let Some(s) = &self.invoker_log {
            if let Err(e) = s.write_line(format::line(now_ms(), tid, component, message)) {
                self.failed(e);
            }
        }
    }

    /// One activation record.
    pub fn record(&self, doc: &ActivationDoc) {
        if let Some(s) = &self.activations {
            let line = serde_json::to_string(doc).expect("activation records always serialize");
            if let Err(e) = s.write_line(line) {
                self.failed(e);
            }
        }
    }
}

/// OpenWhisk's outcome codes.
pub const SUCCESS: u64 = 0;
pub const DEVELOPER_ERROR: u64 = 2;
pub const WHISK_ERROR: u64 = 3;

/// What the platform knows about one finished activation, to make its record.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub activation_id: &'a str,
    pub namespace: &'a str,
    pub action: &'a str,
    pub kind: &'a str,
    pub memory_mb: u64,
    pub timeout_ms: u64,
    pub arrived_ms: u64,
    /// Start of `/init` (cold and prewarmed starts) and its length.
    pub init: Option<(u64, u64)>,
    /// Start and end of `/run`; without a run (it never started), both are the end.
    pub run_start_ms: u64,
    pub end_ms: u64,
    pub status_code: u64,
    pub result: Value,
    pub timed_out: bool,
    /// The container that ran it (its id is also its cgroup directory's name).
    pub container_id: &'a str,
    /// The kernel's CPU time of the container's cgroup from the start of init (or run) to the
    /// end, in µs: the accounting the recorder's per-activation CPU time is checked against.
    pub cgroup_usage_usec: Option<u64>,
}

/// The record in OpenWhisk's stored form. On a cold (or prewarmed) start `start` is moved
/// back by `initTime` from the start of the run, as OpenWhisk does, so `duration` = init + run;
/// `waitTime` runs from arrival to the start of init (or of the run).
pub fn activation_doc(f: &Finished<'_>) -> ActivationDoc {
    let start = match f.init {
        Some((_, init_ms)) => f.run_start_ms.saturating_sub(init_ms),
        None => f.run_start_ms,
    };
    let first_step = f.init.map(|(s, _)| s).unwrap_or(f.run_start_ms);
    let mut d = ActivationDoc {
        activation_id: f.activation_id.to_owned(),
        namespace: f.namespace.to_owned(),
        name: f.action.to_owned(),
        subject: f.namespace.to_owned(),
        version: "0.0.1".into(),
        publish: false,
        start,
        end: f.end_ms,
        duration: Some(f.end_ms.saturating_sub(start)),
        response: Response {
            status_code: Some(f.status_code),
            result: f.result.clone(),
            ..Response::default()
        },
        annotations: Vec::new(),
        logs: Vec::new(),
        cause: None,
    };
    d.set_annotation("path", json!(format!("{}/{}", f.namespace, f.action)));
    d.set_annotation("waitTime", json!(first_step.saturating_sub(f.arrived_ms)));
    d.set_annotation("kind", json!(f.kind));
    d.set_annotation("timeout", json!(f.timed_out));
    d.set_annotation(
        "limits",
        json!({"concurrency": 1, "logs": 10, "memory": f.memory_mb, "timeout": f.timeout_ms}),
    );
    if let Some((_, init_ms)) = f.init {
        d.set_annotation("initTime", json!(init_ms));
    }
    // Not OpenWhisk's: what a local platform knows and OpenWhisk's records lack.
    if !f.container_id.is_empty() {
        d.set_annotation("containerId", json!(f.container_id));
    }
    if let Some(us) = f.cgroup_usage_usec {
        d.set_annotation("cgroupUsageUsec", json!(us));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(init: Option<(u64, u64)>) -> Finished<'static> {
        Finished {
            activation_id: "0123456789abcdef0123456789abcdef",
            namespace: "guest",
            action: "fl",
            kind: "pws-load:float-loop",
            memory_mb: 128,
            timeout_ms: 60_000,
            arrived_ms: 1_000,
            init,
            run_start_ms: 1_100,
            end_ms: 1_130,
            status_code: SUCCESS,
            result: json!({"ok": true}),
            timed_out: false,
            container_id: "ab",
            cgroup_usage_usec: Some(1234),
        }
    }

    #[test]
    fn cold_start_convention_and_annotations() {
        let d = activation_doc(&finished(Some((1_040, 55))));
        assert_eq!((d.start, d.end, d.duration), (1_045, 1_130, Some(85)));
        assert_eq!(d.annotation("initTime"), Some(&json!(55)));
        assert_eq!(d.annotation("waitTime"), Some(&json!(40)));
        assert_eq!(d.annotation("path"), Some(&json!("guest/fl")));
        assert_eq!(d.annotation("kind"), Some(&json!("pws-load:float-loop")));
        assert_eq!(d.annotation("limits").unwrap()["memory"], json!(128));
        assert_eq!(d.status_code(), Some(0));
        let text = serde_json::to_string(&d).unwrap();
        assert!(text.contains("\"statusCode\":0") && text.contains("\"activationId\""));
    }

    #[test]
    fn warm_start_has_no_init_time() {
        let d = activation_doc(&finished(None));
        assert_eq!((d.start, d.duration), (1_100, Some(30)));
        assert_eq!(d.annotation("initTime"), None);
        assert_eq!(d.annotation("waitTime"), Some(&json!(100)));
    }

    #[test]
    fn ids_are_hex_of_the_asked_length_and_lines_are_whole() {
        let id = random_hex(32);
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(random_hex(64), random_hex(64));
        let dir = tempfile::tempdir().unwrap();
        let (a, l) = (dir.path().join("a.jsonl"), dir.path().join("i.log"));
        let out = Outputs::create(Some(&a), Some(&l)).unwrap();
        out.record(&activation_doc(&finished(None)));
        out.log("7", "ContainerPool", "hello");
        let text = std::fs::read_to_string(&a).unwrap();
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let log = std::fs::read_to_string(&l).unwrap();
        assert!(log.contains("[#tid_7] [ContainerPool] hello\n"), "{log}");
        assert_eq!(out.errors().0, 0);
    }
}
