//! `pws-load`: a local function platform that behaves like an Apache OpenWhisk invoker —
//! function instances are real processes in their own cgroup v2, prewarmed, cold-started,
//! reused warm, frozen after a pause grace, resumed and evicted — driven by workload files or
//! the Azure Functions 2019 trace, writing OpenWhisk's activation records and invoker log lines
//! so that `pws-record` reads a local run like a real node. It also injects the same workloads
//! into a real OpenWhisk.
//!
//! Modules, one concern each: [`cgroup`] (cgroupfs), [`container`] (one instance: runtime process
//! and its [`sandbox`], a cgroup of ours or a Docker container), [`protocol`] and [`runtime`] (the instance's side), [`functions`] (the
//! suite), [`platform`] (the pool and its scheduling), [`workload`] and [`arrivals`] (what
//! arrives when), [`azure`] (trace replay), [`outputs`] (records and log lines), [`summary`],
//! [`local`] (a run), [`openwhisk`] (the injector), [`signals`], [`cli`].

pub mod arrivals;
pub mod azure;
pub mod cgroup;
pub mod cli;
pub mod container;
pub mod functions;
pub mod local;
pub mod openwhisk;
pub mod outputs;
pub mod platform;
pub mod protocol;
pub mod runtime;
pub mod sandbox;
pub mod signals;
pub mod summary;
pub mod sweep;
pub mod workload;
