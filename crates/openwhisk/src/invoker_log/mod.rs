//! The OpenWhisk invoker's log lines:
//! `[2022-04-15T06:04:44.162Z] [INFO] [#tid_<id>] [<Component>] <message> [marker:…]`.
//!
//! [`format`](mod@format) writes the lines the local platform (`pws-load`) emits, in the invoker's own
//! words, so that `pws-record` reads a local experiment through the same [`parse`] as a real
//! invoker's log. What the lines say, and which carry the activation → container link:
//! - `[ContainerPool] containerStart containerState: <cold|warmed|prewarmed|recreated|…>
//!   container: <None|Some(ContainerId(<id>))> activations: … action: <a> namespace: <ns>
//!   activationId: <32 hex>`; on a cold start (container `None`) the container id appears
//!   later under the same `#tid` in
//! - `[DockerContainer] sending initialization to ContainerId(<id>) …` and
//!   `sending arguments to /<ns>/<action> at ContainerId(<id>) …`;
//! - `running /usr/bin/docker run … --name wsk<…>_<n>_<ns>_<action> …`,
//!   `docker pause|unpause <id>`, `runc pause|resume <id>`, `docker rm <id>`.

pub mod activations;
pub mod format;
pub mod link;
pub mod parse;
