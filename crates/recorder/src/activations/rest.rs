//! Polling the OpenWhisk REST API for activation records.
//!
//! `GET {apihost}/api/v1/namespaces/{ns}/activations?docs=true&since=…&limit=200&skip=…`
//! lists the namespace's activations newest first. Each round pages with `skip` until a page is
//! short; activations that arrive meanwhile push older ones to later pages, so a round may see
//! a record twice but never misses one, and records are kept once per activationId. `since`
//! trails the newest start seen by `--openwhisk-lookback`, because a record only appears when
//! its activation ends. Errors back off (1 s doubling to 30 s), are counted and reported, and
//! never stop the recording; a last round runs at stop.
//!
//! The key travels only in the Authorization header: it is not in the URL, the trace, the
//! statistics or any message.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pws_openwhisk::wskprops::Credentials;
use pws_trace::records::{ActivationRecord, ActivationSource, Activations, SourceStats};

use super::place::Placer;
use super::{ActivationArgs, Sink};

/// OpenWhisk's largest page.
const PAGE: usize = 200;
/// Pages per round at most; a backlog bigger than this is caught up over several rounds.
const MAX_PAGES: usize = 100;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The poller's settings; the credentials' `Debug` hides the key.
#[derive(Debug)]
pub struct Config {
    /// `https://host[:port]`, no trailing slash.
    pub base: String,
    pub namespace: String,
    credentials: Credentials,
    pub insecure: bool,
    pub interval: Duration,
    pub lookback_ms: u64,
    pub start_epoch_ms: u64,
    /// Where the credentials came from, for the trace info.
    auth_file: PathBuf,
}

impl Config {
    pub fn from_args(args: &ActivationArgs, url: &str, start_epoch_ms: u64) -> Result<Self> {
        let (auth_file, props, credentials) =
            pws_openwhisk::wskprops::load(args.openwhisk_auth.as_deref())
                .context("--openwhisk needs credentials (--openwhisk-auth FILE or ~/.wskprops)")?;
        let host = if url.is_empty() {
            props.apihost.clone().with_context(|| {
                format!(
                    "--openwhisk without a URL needs APIHOST= in {}",
                    auth_file.display()
                )
            })?
        } else {
            url.to_owned()
        };
        let base = pws_openwhisk::wskprops::api_base(&host).context("--openwhisk")?;
        let namespace = args
            .openwhisk_namespace
            .clone()
            .or(props.namespace.clone())
            .unwrap_or_else(|| "_".into());
        Ok(Self {
            base,
            namespace,
            credentials,
            insecure: args.insecure,
            interval: args.openwhisk_interval,
            lookback_ms: args.openwhisk_lookback.as_millis() as u64,
            start_epoch_ms,
            auth_file,
        })
    }

    pub fn describe(&self) -> String {
        format!(
            "{}/api/v1/namespaces/{}/activations polled every {}, looking back {} s; credentials from {}{}",
            self.base,
            self.namespace,
            humantime::format_duration(self.interval),
            self.lookback_ms / 1000,
            self.auth_file.display(),
            if self.insecure {
                "; TLS certificates not verified (--insecure)"
            } else {
                ""
            }
        )
    }
}

/// The polling state: what was seen, and from when to ask.
pub struct Poller {
    agent: ureq::Agent,
    cfg: Config,
    /// activationId → start (epoch ms), pruned as `since` moves on.
    seen: HashMap<String, u64>,
    newest_start_ms: u64,
    pub stats: SourceStats,
}

impl Poller {
    pub fn new(cfg: Config) -> Self {
        let tls = ureq::tls::TlsConfig::builder()
            .disable_verification(cfg.insecure)
            .build();
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(20)))
            .tls_config(tls)
            .build()
            .into();
        Self {
            agent,
            seen: HashMap::new(),
            newest_start_ms: 0,
            stats: SourceStats {
                name: format!("activations:rest-api:{}", cfg.base),
                ..SourceStats::default()
            },
            cfg,
        }
    }

    fn since_ms(&self) -> u64 {
        let from = self.cfg.start_epoch_ms.max(self.newest_start_ms);
        from.saturating_sub(self.cfg.lookback_ms)
    }

    /// One round: pages until caught up. Returns the new records, placed on the trace clock.
    pub fn round(&mut self) -> Result<Vec<ActivationRecord>, String> {
        let since = self.since_ms();
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let url = format!(
                "{}/api/v1/namespaces/{}/activations?docs=true&since={since}&limit={PAGE}&skip={}",
                self.cfg.base,
                self.cfg.namespace,
                page * PAGE
            );
            self.stats.reads += 1;
            let docs = self.get(&url)?;
            let n = docs.len();
            let placer = Placer::now();
            for v in docs {
                match pws_openwhisk::activation::from_json(&v, ActivationSource::RestApi) {
                    Ok(mut a) => {
                        if self.seen.contains_key(&a.activation_id) {
                            continue;
                        }
                        self.seen.insert(a.activation_id.clone(), a.start_epoch_ms);
                        self.newest_start_ms = self.newest_start_ms.max(a.start_epoch_ms);
                        placer.activation(&mut a);
                        out.push(a);
                    }
                    Err(e) => {
                        let id = v
                            .get("activationId")
                            .and_then(|x| x.as_str())
                            .unwrap_or("?");
                        self.stats.errors += 1;
                        self.stats.last_error =
                            format!("activation {id} from {}: {e}", self.cfg.base);
                    }
                }
            }
            if n < PAGE {
                break;
            }
        }
        // Ids older than any future `since` cannot come back.
        let floor = self.since_ms();
        self.seen.retain(|_, start| *start >= floor);
        Ok(out)
    }

    fn get(&self, url: &str) -> Result<Vec<serde_json::Value>, String> {
        let mut resp = self
            .agent
            .get(url)
            .header("Authorization", self.cfg.credentials.basic_auth_header())
            .header("Accept", "application/json")
            .call()
            .map_err(|e| match e {
                ureq::Error::StatusCode(401) | ureq::Error::StatusCode(403) => format!(
                    "{}: HTTP {} — the credentials in {} were refused",
                    strip_query(url),
                    status(&e),
                    self.cfg.auth_file.display()
                ),
                e => format!("{}: {e}", strip_query(url)),
            })?;
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{}: reading the answer: {e}", strip_query(url)))?;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Array(a)) => Ok(a),
            Ok(_) => Err(format!(
                "{}: the answer is not a JSON array of activations",
                strip_query(url)
            )),
            Err(e) => Err(format!("{}: the answer is not JSON: {e}", strip_query(url))),
        }
    }
}

fn status(e: &ureq::Error) -> u16 {
    match e {
        ureq::Error::StatusCode(s) => *s,
        _ => 0,
    }
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

pub fn spawn<T: Sink>(
    cfg: Config,
    stop: Arc<AtomicBool>,
    tx: Sender<T>,
) -> Result<JoinHandle<SourceStats>> {
    std::thread::Builder::new()
        .name("pws-openwhisk".into())
        .spawn(move || run(Poller::new(cfg), &stop, &tx))
        .context("cannot start the OpenWhisk poller")
}

fn run<T: Sink>(mut p: Poller, stop: &AtomicBool, tx: &Sender<T>) -> SourceStats {
    let mut backoff = BACKOFF_MIN;
    let mut wait = Duration::ZERO;
    loop {
        let stopping = sleep_or_stop(wait, stop);
        match p.round() {
            Ok(records) => {
                backoff = BACKOFF_MIN;
                wait = p.cfg.interval;
                if !records.is_empty() && tx.send(Activations { records }.into()).is_err() {
                    break;
                }
            }
            Err(e) => {
                p.stats.errors += 1;
                p.stats.last_error = e;
                wait = backoff;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        if stopping {
            break;
        }
    }
    p.stats
}

/// Sleeps `d` unless `stop` comes first; true when stopping (the caller runs its last round).
fn sleep_or_stop(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Acquire) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The loopback OpenWhisk the integration tests use too.
#[cfg(test)]
#[path = "../../tests/support/fake_openwhisk.rs"]
mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    use super::fake;

    fn now_ms() -> u64 {
        crate::clock::pair().realtime_ns / 1_000_000
    }

    const AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

    fn config(base: &str, auth: &str, start_epoch_ms: u64) -> Config {
        Config {
            base: base.into(),
            namespace: "guest".into(),
            credentials: Credentials::from_auth(auth).unwrap(),
            insecure: false,
            interval: Duration::from_millis(10),
            lookback_ms: 60_000,
            start_epoch_ms,
            auth_file: PathBuf::from("/nonexistent/.wskprops"),
        }
    }

    #[test]
    fn pages_until_caught_up_and_keeps_each_activation_once() {
        let creds = Credentials::from_auth(AUTH).unwrap();
        let ow = fake::FakeOpenWhisk::start("guest", &creds.basic_auth_header());
        // Recent enough to be placed on this boot's clock.
        let t0 = now_ms() - 60_000;
        ow.state.lock().unwrap().docs = (0..450).map(|n| fake::doc(n, t0 + n * 10, 5)).collect();
        let mut p = Poller::new(config(&ow.url, AUTH, t0));

        let first = p.round().unwrap();
        assert_eq!(first.len(), 450, "three pages: 200, 200, 50");
        let ids: std::collections::HashSet<&str> =
            first.iter().map(|a| a.activation_id.as_str()).collect();
        assert_eq!(ids.len(), 450);
        assert!(first.iter().all(|a| a.source == ActivationSource::RestApi));
        assert!(first
            .iter()
            .all(|a| a.start_ns > 0 && a.end_ns == a.start_ns + 5_000_000));

        // New ones arrive; old ones are listed again (the lookback) but kept once.
        ow.state
            .lock()
            .unwrap()
            .docs
            .extend((450..453).map(|n| fake::doc(n, t0 + n * 10, 5)));
        let second = p.round().unwrap();
        let mut got: Vec<&str> = second.iter().map(|a| a.activation_id.as_str()).collect();
        got.sort();
        assert_eq!(
            got,
            [
                format!("{:032x}", 450),
                format!("{:032x}", 451),
                format!("{:032x}", 452)
            ]
        );

        let reqs = ow.state.lock().unwrap().requests.clone();
        assert!(
            reqs.iter().all(|(_, ok)| *ok),
            "every request carried the key"
        );
        let q = &reqs[0].0;
        assert!(
            q.starts_with("/api/v1/namespaces/guest/activations?docs=true&since="),
            "{q}"
        );
        assert!(q.contains(&format!("since={}", t0 - 60_000)) && q.contains("limit=200&skip=0"));
        assert!(reqs[2].0.ends_with("skip=400"));
        // The second round looks back from the newest start seen, not from the recording start.
        assert!(reqs[3]
            .0
            .contains(&format!("since={}", t0 + 449 * 10 - 60_000)));
    }

    #[test]
    fn errors_are_reported_without_the_key_and_polling_recovers() {
        let creds = Credentials::from_auth(AUTH).unwrap();
        let ow = fake::FakeOpenWhisk::start("guest", &creds.basic_auth_header());
        let t0 = now_ms() - 60_000;
        {
            let mut st = ow.state.lock().unwrap();
            st.docs = vec![
                fake::doc(1, t0, 5),
                serde_json::json!({"activationId": "bad"}),
            ];
            st.fail_next = 1;
        }
        let mut p = Poller::new(config(&ow.url, AUTH, t0));
        let e = p.round().unwrap_err();
        assert!(e.contains("500") && !e.contains("123zO3x"), "{e}");
        let got = p.round().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(p.stats.errors, 1, "the malformed record is counted");
        assert!(
            p.stats.last_error.contains("activation bad"),
            "{}",
            p.stats.last_error
        );

        let mut wrong = Poller::new(config(&ow.url, "someone:else", t0));
        let e = wrong.round().unwrap_err();
        assert!(e.contains("401") && e.contains("refused"), "{e}");

        // Nobody listening: an error, not a panic.
        let mut gone = Poller::new(config("http://127.0.0.1:9", AUTH, t0));
        assert!(gone.round().is_err());
    }
}
