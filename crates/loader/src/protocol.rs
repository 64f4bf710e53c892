//! The runtime protocol: JSON lines between the platform and a function instance's runtime
//! process (`pws-load runtime`), on the runtime's stdin and stdout — the local stand-in for an
//! OpenWhisk action proxy's `/init` and `/run`.
//!
//! ```text
//! runtime → {"ready":{"pid":4242}}                                   once, at start
//! platform → {"init":{"function":"float-loop","code_size_kb":8192}}
//! runtime → {"initialized":{"ms":41.2,"cpu_ms":40.9,"resident_bytes":8388608}}
//! platform → {"run":{"input":300000}}
//! runtime → {"result":{"result":{…},"ms":25.0,"cpu_ms":24.8}}
//! runtime → {"error":{"message":"…"}}                                 instead of a reply
//! ```
//! End of input (the platform closed the pipe or died) ends the runtime.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    Init { function: String, code_size_kb: u64 },
    Run { input: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ready {
        pid: u32,
    },
    Initialized {
        ms: f64,
        cpu_ms: f64,
        resident_bytes: u64,
    },
    Result {
        result: Value,
        /// Wall time of the run inside the runtime.
        ms: f64,
        /// The runtime's own CPU time during the run (CLOCK_PROCESS_CPUTIME_ID).
        cpu_ms: f64,
    },
    Error {
        message: String,
    },
}

impl Request {
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("requests always serialize");
        s.push('\n');
        s
    }
}

impl Reply {
    pub fn to_line(&self) -> String {
        // Results are JSON values already; nothing here can fail to serialize.
        let mut s = serde_json::to_string(self).expect("replies always serialize");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_single_lines_in_the_documented_shape() {
        let r = Request::Init {
            function: "float-loop".into(),
            code_size_kb: 8192,
        };
        assert_eq!(
            r.to_line(),
            "{\"init\":{\"function\":\"float-loop\",\"code_size_kb\":8192}}\n"
        );
        assert_eq!(
            Request::Run { input: 3 }.to_line(),
            "{\"run\":{\"input\":3}}\n"
        );
        let rep = Reply::Result {
            result: json!({"a": "x\ny"}),
            ms: 1.5,
            cpu_ms: 1.25,
        };
        let line = rep.to_line();
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(serde_json::from_str::<Reply>(&line).unwrap(), rep);
        assert!(serde_json::from_str::<Request>("{\"launch\":{}}").is_err());
    }
}
