//! `pws-load runtime`: the action runtime process of one function instance. The platform
//! re-executes its own binary with this hidden subcommand inside the container's cgroup; it
//! answers the [`crate::protocol`] on stdin/stdout until end of input.

use std::io::{self, BufRead, Write};
use std::time::Instant;

use anyhow::{Context, Result};

use crate::functions::{self, Function, Instance};
use crate::protocol::{Reply, Request};

/// This process's CPU time in ms (all threads).
pub fn process_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// The runtime's main: serves stdin/stdout.
pub fn main() -> Result<()> {
    let stdin = io::stdin();
    let stdout = io::stdout();
    serve(stdin.lock(), stdout.lock())
}

/// Answers requests read from `input` on `output` until end of input.
pub fn serve(input: impl BufRead, mut output: impl Write) -> Result<()> {
    let mut send = |r: Reply| -> Result<()> {
        output
            .write_all(r.to_line().as_bytes())
            .and_then(|()| output.flush())
            .context("runtime: cannot write to the platform")
    };
    send(Reply::Ready {
        pid: std::process::id(),
    })?;
    let mut instance: Option<Instance> = None;
    for line in input.lines() {
        let line = line.context("runtime: cannot read from the platform")?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Request>(&line) {
            Err(e) => Reply::Error {
                message: format!("malformed request: {e}"),
            },
            Ok(Request::Init {
                function,
                code_size_kb,
            }) => match Function::from_name(&function) {
                None => Reply::Error {
                    message: format!("unknown function `{function}`"),
                },
                Some(f) => {
                    let (t0, c0) = (Instant::now(), process_cpu_ms());
                    let inst = functions::init(f, code_size_kb);
                    let reply = Reply::Initialized {
                        ms: t0.elapsed().as_secs_f64() * 1e3,
                        cpu_ms: process_cpu_ms() - c0,
                        resident_bytes: inst.resident_bytes() as u64,
                    };
                    instance = Some(inst);
                    reply
                }
            },
            Ok(Request::Run { input }) => match instance.as_mut() {
                None => Reply::Error {
                    message: "run before init".into(),
                },
                Some(inst) => {
                    let (t0, c0) = (Instant::now(), process_cpu_ms());
                    let result = inst.run(input);
                    Reply::Result {
                        result,
                        ms: t0.elapsed().as_secs_f64() * 1e3,
                        cpu_ms: process_cpu_ms() - c0,
                    }
                }
            },
        };
        send(reply)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replies(input: &str) -> Vec<Reply> {
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn ready_init_run_and_errors() {
        let r = replies(concat!(
            "{\"run\":{\"input\":1}}\n",
            "{\"init\":{\"function\":\"nope\",\"code_size_kb\":1}}\n",
            "not json\n",
            "\n",
            "{\"init\":{\"function\":\"int-loop\",\"code_size_kb\":4}}\n",
            "{\"run\":{\"input\":1000}}\n",
        ));
        assert_eq!(r.len(), 6);
        assert_eq!(
            r[0],
            Reply::Ready {
                pid: std::process::id()
            }
        );
        assert!(matches!(&r[1], Reply::Error { message } if message == "run before init"));
        assert!(
            matches!(&r[2], Reply::Error { message } if message.contains("unknown function `nope`"))
        );
        assert!(
            matches!(&r[3], Reply::Error { message } if message.starts_with("malformed request"))
        );
        assert!(
            matches!(&r[4], Reply::Initialized { resident_bytes, .. } if *resident_bytes == 4096)
        );
        assert!(matches!(&r[5], Reply::Result { .. }));
        let Some(Reply::Result { result, cpu_ms, .. }) = replies(concat!(
            "{\"init\":{\"function\":\"int-loop\",\"code_size_kb\":4}}\n",
            "{\"run\":{\"input\":2000000}}\n",
        ))
        .pop() else {
            panic!("no result")
        };
        assert_eq!(result["function"], "int-loop");
        assert!(cpu_ms > 0.0);
    }
}
