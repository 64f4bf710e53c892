//! The OpenWhisk injector against a loopback server standing in for OpenWhisk's REST API: the
//! path, query, body and basic-auth header of each invocation; 5xx retried, 4xx counted, an
//! unreachable API counted — never fatal; credentials never printed. No root needed.

mod support;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use pws_openwhisk::wskprops::Credentials;
use serde_json::Value;
use support::BIN;

const AUTH: &str = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP";

#[derive(Debug, Clone)]
struct Seen {
    url: String,
    auth: Option<String>,
    content_type: Option<String>,
    body: String,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Answers 500 to the first request, 404 for action `missing`, 202 otherwise.
    fn start() -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, log) = (Arc::clone(&server), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            while let Ok(mut req) = s.recv() {
                let header = |name: &'static str| {
                    req.headers()
                        .iter()
                        .find(|h| h.field.equiv(name))
                        .map(|h| h.value.as_str().to_owned())
                };
                let (auth, content_type) = (header("Authorization"), header("Content-Type"));
                let mut body = String::new();
                let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
                let url = req.url().to_owned();
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push(Seen {
                        url: url.clone(),
                        auth,
                        content_type,
                        body,
                    });
                    l.len()
                };
                let (code, text) = if n == 1 {
                    (500, r#"{"error":"try again"}"#.to_owned())
                } else if url.contains("/actions/missing") {
                    (
                        404,
                        r#"{"error":"The requested resource does not exist."}"#.to_owned(),
                    )
                } else {
                    (202, format!(r#"{{"activationId":"{:032x}"}}"#, n))
                };
                let _ = req.respond(tiny_http::Response::from_string(text).with_status_code(code));
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            seen,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const WORKLOAD: &str = "
name: inject
duration: 1s
namespace: team
seed: 4
functions:
  - name: hello
    function: float-loop
    arrival: {interval: {every: 200ms}}
    input: {fixed: 7}
    params: {x: 1}
  - name: missing
    function: sleep
    arrival: {interval: {every: 500ms}}
    input: {fixed: 3}
";

#[test]
fn invocations_reach_the_api_with_auth_and_errors_are_retried_or_counted() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (w, props, sum) = (
        dir.path().join("w.yaml"),
        dir.path().join("wskprops"),
        dir.path().join("s.json"),
    );
    std::fs::write(&w, WORKLOAD).unwrap();
    std::fs::write(&props, format!("AUTH={AUTH}\nAPIHOST={}\n", server.url)).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["openwhisk".as_ref(), w.as_os_str()])
        .args(["--openwhisk-auth".as_ref(), props.as_os_str()])
        .args(["--summary-json".as_ref(), sum.as_os_str()])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let key = AUTH.split_once(':').unwrap().1;
    let header = Credentials::from_auth(AUTH).unwrap().basic_auth_header();
    for text in [&*stdout, &*stderr, &std::fs::read_to_string(&sum).unwrap()] {
        assert!(
            !text.contains(key) && !text.contains(&header[6..]),
            "credentials leaked: {text}"
        );
    }

    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    // hello at 0, 200, …, 800 ms; missing at 0 and 500 ms.
    assert_eq!(s["planned"], 7);
    assert_eq!(s["sent"], 7);
    assert_eq!(s["accepted"], 5);
    assert_eq!(s["failed"], 2, "{s}");
    assert_eq!(s["retries"], 1, "the first 500 was retried once: {s}");
    assert_eq!(s["by_status"]["202"], 5);
    assert_eq!(s["by_status"]["404"], 2);
    assert_eq!(s["namespace"], "team");
    assert!(stderr.contains("HTTP 404"), "errors are reported: {stderr}");

    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 8, "7 invocations and one retry");
    for r in &seen {
        let (path, query) = r.url.split_once('?').expect("a query");
        assert!(
            path == "/api/v1/namespaces/team/actions/hello"
                || path == "/api/v1/namespaces/team/actions/missing",
            "{path}"
        );
        assert_eq!(query, "blocking=false");
        assert_eq!(r.auth.as_deref(), Some(header.as_str()));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        if path.ends_with("/hello") {
            assert_eq!(
                (body["input"].as_u64(), body["x"].as_u64()),
                (Some(7), Some(1))
            );
        } else {
            assert_eq!(body["input"], 3);
        }
    }
}

#[test]
fn an_unreachable_api_is_counted_not_fatal() {
    // A port that was just free: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let (w, props, sum) = (
        dir.path().join("w.yaml"),
        dir.path().join("wskprops"),
        dir.path().join("s.json"),
    );
    std::fs::write(&w, WORKLOAD.replace("duration: 1s", "duration: 300ms")).unwrap();
    std::fs::write(&props, format!("AUTH={AUTH}\n")).unwrap();
    // `run --openwhisk` is the same injector.
    let out = std::process::Command::new(BIN)
        .args(["run".as_ref(), w.as_os_str(), "--openwhisk".as_ref()])
        .args(["--openwhisk-auth".as_ref(), props.as_os_str()])
        .args([
            "--apihost",
            &format!("http://127.0.0.1:{port}"),
            "--retries",
            "1",
            "-q",
        ])
        .args(["--summary-json".as_ref(), sum.as_os_str()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&sum).unwrap()).unwrap();
    // hello at 0 and 200 ms, missing at 0: three invocations, each tried twice.
    assert_eq!(
        (s["sent"].as_u64(), s["accepted"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(s["by_status"]["transport"], 3);
    assert_eq!(s["retries"], 3);
    assert!(s["errors"][0].as_str().unwrap().contains("127.0.0.1"));
}
