//! The OpenWhisk injector (FaaSLoad-style): the same workload file, but each arrival becomes a
//! non-blocking invocation of a real OpenWhisk,
//! `POST {apihost}/api/v1/namespaces/{ns}/actions/{name}?blocking=false`, with the input as
//! `{"input": n, …params}`. Credentials come from `--openwhisk-auth FILE` or `~/.wskprops`
//! and go out as basic auth; they are never printed or logged. Errors from the server are
//! retried (429, 5xx, transport) or counted (other 4xx), never fatal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pws_openwhisk::wskprops::Credentials;
use serde::Serialize;
use serde_json::{json, Value};

use crate::arrivals::Schedule;
use crate::signals::Signals;

/// Where invocations go, with the credentials (whose `Debug` hides the key).
#[derive(Debug)]
pub struct Target {
    pub base: String,
    pub namespace: String,
    credentials: Credentials,
    pub insecure: bool,
    pub auth_file: PathBuf,
}

impl Target {
    /// Reads the credentials file (`auth_file`, else `~/.wskprops`); `apihost` overrides its
    /// `APIHOST`, `namespace` its `NAMESPACE` (default `_`, the user's own).
    pub fn resolve(
        auth_file: Option<&Path>,
        apihost: Option<&str>,
        namespace: Option<&str>,
        insecure: bool,
    ) -> Result<Self> {
        let (auth_file, props, credentials) = pws_openwhisk::wskprops::load(auth_file)
            .context("OpenWhisk credentials (--openwhisk-auth FILE or ~/.wskprops)")?;
        let host = match apihost {
            Some(h) => h.to_owned(),
            None => props.apihost.clone().with_context(|| {
                format!("no --apihost, and no APIHOST= in {}", auth_file.display())
            })?,
        };
        let base = pws_openwhisk::wskprops::api_base(&host).context("the OpenWhisk API host")?;
        let namespace = namespace
            .map(str::to_owned)
            .or(props.namespace.clone())
            .unwrap_or_else(|| "_".into());
        Ok(Self {
            base,
            namespace,
            credentials,
            insecure,
            auth_file,
        })
    }

    pub fn invoke_url(&self, action: &str) -> String {
        format!(
            "{}/api/v1/namespaces/{}/actions/{action}?blocking=false",
            self.base, self.namespace
        )
    }
}

/// One action of the workload on the OpenWhisk side.
#[derive(Debug, Clone)]
pub struct Invocable {
    pub name: String,
    pub params: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Injection {
    pub actions: Vec<Invocable>,
    pub wall_duration: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of a request answered 429 or 5xx, or that failed in transport.
    pub retries: u32,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InjectSummary {
    pub mode: String,
    pub workload: String,
    pub apihost: String,
    pub namespace: String,
    pub seed: u64,
    pub time_scale: f64,
    pub wall_seconds: f64,
    pub planned: u64,
    pub sent: u64,
    /// Answered 2xx (202 with an activation id).
    pub accepted: u64,
    pub failed: u64,
    pub retries: u64,
    /// Final answers by HTTP status (`transport` when none came).
    pub by_status: BTreeMap<String, u64>,
    pub by_action: BTreeMap<String, u64>,
    pub latency_ms_mean: f64,
    pub latency_ms_max: f64,
    /// How late requests left compared with their planned time.
    pub lateness_ms_mean: f64,
    pub lateness_ms_max: f64,
    pub interrupted: bool,
    pub errors: Vec<String>,
}

impl InjectSummary {
    pub fn render(&self) -> String {
        let mut s = format!(
            "pws-load: {} → {} (namespace {}): {} invocations sent in {:.1} s, {} accepted, {} failed, {} retries{}\n",
            self.workload,
            self.apihost,
            self.namespace,
            self.sent,
            self.wall_seconds,
            self.accepted,
            self.failed,
            self.retries,
            if self.interrupted { ", interrupted" } else { "" }
        );
        s += &format!(
            "  request latency mean {:.1} ms, max {:.1} ms; sent late by {:.1} ms on average, {:.1} ms at most\n",
            self.latency_ms_mean, self.latency_ms_max, self.lateness_ms_mean, self.lateness_ms_max
        );
        for (status, n) in &self.by_status {
            s += &format!("  HTTP {status}: {n}\n");
        }
        for e in &self.errors {
            s += &format!("  error: {e}\n");
        }
        s
    }
}

/// What one request came to.
struct Sent {
    action: String,
    status: Option<u16>,
    retries: u32,
    latency: Duration,
    lateness: Duration,
    error: Option<String>,
}

fn agent(insecure: bool, timeout: Duration) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(insecure)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into()
}

/// POSTs one invocation, retrying what is worth retrying.
fn invoke(
    agent: &ureq::Agent,
    target: &Target,
    auth: &str,
    action: &Invocable,
    input: u64,
    retries: u32,
) -> (Option<u16>, u32, Option<String>) {
    let url = target.invoke_url(&action.name);
    let mut body = action.params.clone();
    body.insert("input".into(), json!(input));
    let body = Value::Object(body).to_string();
    let mut attempt = 0;
    loop {
        let r = agent
            .post(&url)
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body.as_str());
        let (status, error) = match r {
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                if (200..300).contains(&status) {
                    (Some(status), None)
                } else {
                    let text = resp.body_mut().read_to_string().unwrap_or_default();
                    let text: String = text.chars().take(200).collect();
                    (
                        Some(status),
                        Some(format!(
                            "{}: HTTP {status} {}",
                            strip_query(&url),
                            text.trim()
                        )),
                    )
                }
            }
            // ureq's errors name the URL at most, never the headers.
            Err(e) => (None, Some(format!("{}: {e}", strip_query(&url)))),
        };
        let retry = match status {
            None => true,
            Some(s) => s == 429 || s >= 500,
        };
        if error.is_none() || !retry || attempt >= retries {
            return (status, attempt, error);
        }
        attempt += 1;
        std::thread::sleep(Duration::from_millis(100) * (1 << attempt.min(6)));
    }
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Sends the schedule's arrivals at their times until `wall_duration` or a signal.
pub fn inject(
    target: Target,
    inj: &Injection,
    mut schedule: Schedule,
    signals: &Signals,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<InjectSummary> {
    if inj.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let target = Arc::new(target);
    let agent = agent(target.insecure, inj.request_timeout);
    let auth = Arc::new(target.credentials.basic_auth_header());
    // Bounded: if OpenWhisk is slower than the schedule, the scheduler waits (and counts it late).
    let (tx, rx) = sync_channel::<(Instant, usize, u64)>(inj.concurrency * 4);
    let rx: Arc<Mutex<Receiver<(Instant, usize, u64)>>> = Arc::new(Mutex::new(rx));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Sent>();
    let actions = Arc::new(inj.actions.clone());
    let mut workers = Vec::new();
    for w in 0..inj.concurrency {
        let (rx, done_tx) = (Arc::clone(&rx), done_tx.clone());
        let (agent, target, auth, actions) = (
            agent.clone(),
            Arc::clone(&target),
            Arc::clone(&auth),
            Arc::clone(&actions),
        );
        let retries = inj.retries;
        let h = std::thread::Builder::new()
            .name(format!("pws-inject-{w}"))
            .spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((due, a, input)) = job else { return };
                let t0 = Instant::now();
                let (status, retried, error) =
                    invoke(&agent, &target, &auth, &actions[a], input, retries);
                let _ = done_tx.send(Sent {
                    action: actions[a].name.clone(),
                    status,
                    retries: retried,
                    latency: t0.elapsed(),
                    lateness: t0.saturating_duration_since(due),
                    error,
                });
            })
            .context("cannot start an injector thread")?;
        workers.push(h);
    }
    drop(done_tx);

    let mut sum = InjectSummary {
        mode: "openwhisk".into(),
        apihost: target.base.clone(),
        namespace: target.namespace.clone(),
        ..InjectSummary::default()
    };
    let mut lat = (0.0f64, 0u64);
    let mut late = 0.0f64;
    let mut take = |s: Sent, sum: &mut InjectSummary| {
        sum.sent += 1;
        sum.retries += u64::from(s.retries);
        *sum.by_action.entry(s.action).or_default() += 1;
        let key = s.status.map_or("transport".to_owned(), |c| c.to_string());
        *sum.by_status.entry(key).or_default() += 1;
        match s.error {
            None => sum.accepted += 1,
            Some(e) => {
                sum.failed += 1;
                if sum.errors.len() < 20 {
                    sum.errors.push(e);
                }
            }
        }
        let ms = s.latency.as_secs_f64() * 1e3;
        lat = (lat.0 + ms, lat.1 + 1);
        sum.latency_ms_max = sum.latency_ms_max.max(ms);
        sum.latency_ms_mean = lat.0 / lat.1 as f64;
        let l = s.lateness.as_secs_f64() * 1e3;
        late += l;
        sum.lateness_ms_max = sum.lateness_ms_max.max(l);
        sum.lateness_ms_mean = late / lat.1 as f64;
    };

    let t0 = Instant::now();
    let end = t0 + inj.wall_duration;
    while !signals.stop() {
        let Some(at) = schedule.peek() else { break };
        let due = t0 + at;
        if due >= end {
            break;
        }
        let now = Instant::now();
        if due > now {
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
        } else if let Some(p) = schedule.pop() {
            sum.planned += 1;
            if tx.send((due, p.action, p.input)).is_err() {
                break;
            }
        }
        while let Ok(s) = done_rx.try_recv() {
            take(s, &mut sum);
        }
        if let Some(pb) = progress {
            pb.set_position(t0.elapsed().as_millis() as u64);
            pb.set_message(format!(
                "{} sent, {} accepted, {} failed",
                sum.sent, sum.accepted, sum.failed
            ));
        }
    }
    sum.interrupted = signals.stop();
    drop(tx);
    // In-flight requests finish (each bounded by the request timeout), unless hurried.
    let deadline =
        Instant::now() + inj.request_timeout * (inj.retries + 1) + Duration::from_secs(1);
    while sum.sent < sum.planned && Instant::now() < deadline && !signals.hurry() {
        if let Ok(s) = done_rx.recv_timeout(Duration::from_millis(50)) {
            take(s, &mut sum);
        }
    }
    if sum.sent == sum.planned {
        for h in workers {
            let _ = h.join();
        }
    }
    sum.wall_seconds = t0.elapsed().as_secs_f64();
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_the_file_and_flags_without_showing_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("wskprops");
        std::fs::write(
            &f,
            "AUTH=uuid-1:s3cr3t\nAPIHOST=ow.example:8443\nNAMESPACE=team\n",
        )
        .unwrap();
        let t = Target::resolve(Some(&f), None, None, false).unwrap();
        assert_eq!(t.base, "https://ow.example:8443");
        assert_eq!(t.namespace, "team");
        assert_eq!(
            t.invoke_url("hello"),
            "https://ow.example:8443/api/v1/namespaces/team/actions/hello?blocking=false"
        );
        assert!(!format!("{t:?}").contains("s3cr3t"));
        let t = Target::resolve(Some(&f), Some("http://127.0.0.1:9/"), Some("ns"), true).unwrap();
        assert_eq!(
            (t.base.as_str(), t.namespace.as_str()),
            ("http://127.0.0.1:9", "ns")
        );
        std::fs::write(&f, "APIHOST=x\n").unwrap();
        let e = Target::resolve(Some(&f), None, None, false).unwrap_err();
        assert!(format!("{e:#}").contains("no AUTH= line"), "{e:#}");
        std::fs::write(&f, "AUTH=a:b\n").unwrap();
        let e = Target::resolve(Some(&f), None, None, false).unwrap_err();
        assert!(format!("{e:#}").contains("no APIHOST="), "{e:#}");
        std::fs::write(&f, "AUTH=a:b\n").unwrap();
        let t = Target::resolve(Some(&f), Some("ftp://x"), None, false);
        assert!(t.is_err());
    }
}
