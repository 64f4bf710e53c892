//! A loopback server answering like OpenWhisk's activations API, for tests:
//! `GET /api/v1/namespaces/{ns}/activations?docs=true&since=…&limit=…&skip=…`, newest first,
//! 401 without the expected basic auth, and a settable number of 500s first.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde_json::{json, Value};

#[derive(Default)]
pub struct State {
    /// Activation documents (REST form), any order.
    pub docs: Vec<Value>,
    /// Answer 500 to this many requests first.
    pub fail_next: u32,
    /// Every request's URL, and whether its Authorization header was the expected one.
    pub requests: Vec<(String, bool)>,
}

pub struct FakeOpenWhisk {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOpenWhisk {
    /// `auth` is the expected header value (`Basic …`).
    pub fn start(namespace: &str, auth: &str) -> Self {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("loopback server"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let state = Arc::new(Mutex::new(State::default()));
        let (s, st) = (Arc::clone(&server), Arc::clone(&state));
        let prefix = format!("/api/v1/namespaces/{namespace}/activations");
        let auth = auth.to_owned();
        let thread = std::thread::spawn(move || {
            while let Ok(req) = s.recv() {
                let ok_auth = req
                    .headers()
                    .iter()
                    .any(|h| h.field.equiv("Authorization") && h.value.as_str() == auth);
                let url = req.url().to_owned();
                let (code, body) = answer(&st, &prefix, &url, ok_auth);
                let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(code));
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            state,
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeOpenWhisk {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(st: &Mutex<State>, prefix: &str, url: &str, ok_auth: bool) -> (u16, String) {
    let mut st = st.lock().unwrap();
    st.requests.push((url.to_owned(), ok_auth));
    if !ok_auth {
        return (
            401,
            r#"{"error":"The supplied authentication is invalid"}"#.into(),
        );
    }
    if st.fail_next > 0 {
        st.fail_next -= 1;
        return (500, r#"{"error":"internal"}"#.into());
    }
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path != prefix {
        return (404, r#"{"error":"not found"}"#.into());
    }
    let q = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (since, limit, skip) = (
        q("since").unwrap_or(0),
        q("limit").unwrap_or(30),
        q("skip").unwrap_or(0),
    );
    let mut docs: Vec<&Value> = st
        .docs
        .iter()
        .filter(|d| d["start"].as_u64().is_none_or(|s| s >= since))
        .collect();
    docs.sort_by_key(|d| std::cmp::Reverse(d["start"].as_u64().unwrap_or(0)));
    let page: Vec<&Value> = docs
        .into_iter()
        .skip(skip as usize)
        .take(limit as usize)
        .collect();
    (200, serde_json::to_string(&page).unwrap())
}

/// A REST-form activation record starting at `start` ms, lasting `ms`.
pub fn doc(n: u64, start: u64, ms: u64) -> Value {
    json!({
        "activationId": format!("{n:032x}"),
        "namespace": "guest",
        "name": "hello",
        "subject": "guest",
        "version": "0.0.1",
        "publish": false,
        "start": start,
        "end": start + ms,
        "duration": ms,
        "response": {"status": "success", "success": true, "result": {}},
        "annotations": [
            {"key": "path", "value": "guest/hello"},
            {"key": "kind", "value": "nodejs:20"},
            {"key": "limits", "value": {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}},
            {"key": "waitTime", "value": 3}
        ],
        "logs": []
    })
}
