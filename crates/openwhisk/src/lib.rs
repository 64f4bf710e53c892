//! Apache OpenWhisk's own formats, read and written exactly as OpenWhisk does:
//!
//! - [`doc`]: an activation record as JSON, in its stored form (the activations database,
//!   `wsk activation get`) and its REST form; [`activation`] normalises those and the
//!   user-event `Activation` body into the trace's [`ActivationRecord`];
//! - [`invoker_log`]: the invoker's log lines — written by the local platform, parsed by the
//!   recorder, linked into container events;
//! - [`cgroup`]: a container id (Docker, containerd, Kubernetes) to its cgroup directory;
//! - [`wskprops`]: `~/.wskprops` credentials, never printed.
//!
//! No threads, no network: the recorder and the load generator do the I/O.
//!
//! [`ActivationRecord`]: pws_trace::records::ActivationRecord

pub mod activation;
pub mod cgroup;
pub mod doc;
pub mod invoker_log;
pub mod wskprops;
