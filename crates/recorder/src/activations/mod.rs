//! Activation sources: which function activation ran when, and in which container.
//!
//! Three feeds, each on its own thread, all placed on the trace clock and written as
//! `activations` and `container-events` blocks with the raw record kept:
//! - `--activations FILE`: activation records as JSON lines, followed (`files`, `follow`);
//! - `--invoker-log FILE`: the OpenWhisk invoker's log, followed; gives the exact
//!   activation → container link and the container operations, with each container's cgroup
//!   resolved on this host, and an activation record (source `invoker-log`) for every
//!   activation it shows ending (`files`);
//! - `--openwhisk [URL]`: the OpenWhisk REST API, polled (`rest`).
//!
//! A source that fails keeps being retried and reported; it never stops the recording.

mod files;
mod follow;
mod place;
mod rest;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use pws_openwhisk::cgroup::Resolver;
use pws_trace::records::{Activations, ContainerEvents, SourceInfo, SourceStats, SourceStatus};

use files::{feed, Batch, InvokerLog, JsonLines, LineSource};
use follow::Follower;
use place::Placer;

/// Activation flags of pws-record, flattened into its `Args`.
#[derive(Debug, Clone, clap::Args)]
pub struct ActivationArgs {
    /// Activation records as JSON lines (OpenWhisk's stored or REST form, or user-event
    /// bodies), followed while recording and read to the end at stop. Repeatable.
    #[arg(long = "activations", value_name = "FILE")]
    pub activations: Vec<PathBuf>,

    /// An OpenWhisk invoker log, followed: container starts, pauses, removals and the
    /// activation → container link. Repeatable.
    #[arg(long = "invoker-log", value_name = "FILE")]
    pub invoker_logs: Vec<PathBuf>,

    /// Poll the OpenWhisk REST API for activations. Without a value, APIHOST from the
    /// credentials file (--openwhisk-auth, else ~/.wskprops).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub openwhisk: Option<String>,

    /// File with AUTH= (and APIHOST=, NAMESPACE=) in .wskprops form; default ~/.wskprops.
    /// The key is sent as basic auth only, never written to the trace or printed.
    #[arg(long, value_name = "FILE")]
    pub openwhisk_auth: Option<PathBuf>,

    /// Namespace whose activations are polled (default: NAMESPACE from the credentials
    /// file, else "_", the key's own namespace).
    #[arg(long, value_name = "NS")]
    pub openwhisk_namespace: Option<String>,

    /// How often the REST API is polled.
    #[arg(long, default_value = "1s", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub openwhisk_interval: Duration,

    /// How far back each poll looks before the newest activation start seen: activations
    /// are listed by start but appear when they end, so this should cover the longest action
    /// timeout (OpenWhisk's default maximum is 5 minutes).
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration, value_name = "DURATION")]
    pub openwhisk_lookback: Duration,

    /// Accept any TLS certificate from the API host, like `wsk -i`.
    #[arg(long)]
    pub insecure: bool,
}

/// The running activation sources.
#[derive(Debug)]
pub struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<SourceStats>>,
}

impl Running {
    /// Asks every source to read what is left and stop; returns their statistics.
    pub fn finish(self) -> Vec<SourceStats> {
        self.stop.store(true, Ordering::Release);
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .collect()
    }
}

/// What the writer receives from the activation sources.
pub trait Sink: From<Activations> + From<ContainerEvents> + Send + 'static {}
impl<T: From<Activations> + From<ContainerEvents> + Send + 'static> Sink for T {}

/// Starts every source asked for. Configuration errors (unreadable credentials, a bad URL)
/// stop the recording before it starts; anything later is retried and reported.
pub fn start<T: Sink>(
    args: &ActivationArgs,
    start_epoch_ms: u64,
    tx: &Sender<T>,
) -> Result<(Running, Vec<SourceInfo>)> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let mut infos = Vec::new();
    for path in &args.activations {
        let src = Box::new(JsonLines::default());
        threads.push(spawn_file(path, "jsonl", src, &stop, tx)?);
        infos.push(info(
            "jsonl",
            format!(
                "{}: activation records as JSON lines, followed",
                path.display()
            ),
        ));
    }
    if !args.invoker_logs.is_empty() {
        let resolver = Resolver::from_host();
        for path in &args.invoker_logs {
            let src = Box::new(InvokerLog::new(resolver.clone()));
            threads.push(spawn_file(path, "invoker-log", src, &stop, tx)?);
            infos.push(info(
                "invoker-log",
                format!(
                    "{}: OpenWhisk invoker log, followed; container ids resolved to cgroups on this host",
                    path.display()
                ),
            ));
        }
    }
    if let Some(url) = &args.openwhisk {
        let cfg = rest::Config::from_args(args, url, start_epoch_ms)?;
        infos.push(info("rest-api", cfg.describe()));
        threads.push(rest::spawn(cfg, Arc::clone(&stop), tx.clone())?);
    }
    Ok((Running { stop, threads }, infos))
}

fn info(name: &str, detail: String) -> SourceInfo {
    SourceInfo {
        kind: "activations".into(),
        name: name.into(),
        status: SourceStatus::Used,
        detail,
    }
}

fn spawn_file<T: Sink>(
    path: &std::path::Path,
    name: &str,
    mut src: Box<dyn LineSource>,
    stop: &Arc<AtomicBool>,
    tx: &Sender<T>,
) -> Result<JoinHandle<SourceStats>> {
    let mut follower = Follower::new(path);
    let stop = Arc::clone(stop);
    let tx = tx.clone();
    let label = format!("activations:{name}:{}", path.display());
    std::thread::Builder::new()
        .name(format!("pws-{name}"))
        .spawn(move || {
            let file = follower.path().display().to_string();
            let mut stats = SourceStats {
                name: label,
                ..SourceStats::default()
            };
            loop {
                let stopping = stop.load(Ordering::Acquire);
                match follower.read_lines(stopping) {
                    Ok(lines) if !lines.is_empty() => {
                        stats.reads += lines.len() as u64;
                        let mut batch = Batch::default();
                        let placer = Placer::now();
                        feed(
                            &mut *src,
                            &file,
                            &lines,
                            &placer,
                            &mut batch,
                            &mut stats.errors,
                            &mut stats.last_error,
                        );
                        if !send(&tx, batch) {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        stats.errors += 1;
                        stats.last_error = format!("{file}: {e}");
                    }
                }
                if stopping {
                    break;
                }
                follower.wait();
            }
            let mut notes = Vec::new();
            if follower.overlong > 0 || follower.reopened > 0 || src.duplicates() > 0 {
                notes.push(format!(
                    "{} lines cut at {} bytes, file reopened {} times, {} duplicate records skipped",
                    follower.overlong,
                    follow::MAX_LINE,
                    follower.reopened,
                    src.duplicates()
                ));
            }
            notes.extend(src.left_out());
            for note in notes {
                if stats.last_error.is_empty() {
                    stats.last_error = note;
                } else {
                    stats.last_error = format!("{}; {note}", stats.last_error);
                }
            }
            stats
        })
        .with_context(|| format!("cannot start the {name} reader"))
}

/// False when the writer is gone.
fn send<T: Sink>(tx: &Sender<T>, batch: Batch) -> bool {
    if !batch.activations.is_empty() {
        let b = Activations {
            records: batch.activations,
        };
        if tx.send(b.into()).is_err() {
            return false;
        }
    }
    if !batch.containers.is_empty() {
        let b = ContainerEvents {
            events: batch.containers,
        };
        if tx.send(b.into()).is_err() {
            return false;
        }
    }
    true
}
