//! Writing invoker log lines as OpenWhisk's invoker does (`ContainerPool`, `DockerContainer`,
//! `DockerClientWithFileAccess`, `RuncClient`).

use std::time::{Duration, UNIX_EPOCH};

/// One whole line: `[<ISO 8601 ms>Z] [INFO] [#tid_<tid>] [<component>] <message>`.
pub fn line(ts_epoch_ms: u64, tid: &str, component: &str, message: &str) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ts_epoch_ms);
    format!(
        "[{}] [INFO] [#tid_{tid}] [{component}] {message}",
        humantime::format_rfc3339_millis(t)
    )
}

/// `containerStart`: which container (None on a cold start) takes activation `activation_id`.
/// `state` is OpenWhisk's containerState: `cold`, `warmed`, `warming`, `warmingCold`,
/// `prewarmed`, `recreated`, `recreatedPrewarm`. `action` is the action's name without its
/// package and `namespace` the invoking user's, as `ContainerPool` logs them; the marker is
/// `LoggingMarkers.INVOKER_CONTAINER_START(state)`.
pub fn container_start(
    state: &str,
    container: Option<&str>,
    active: u32,
    max: u32,
    action: &str,
    namespace: &str,
    activation_id: &str,
) -> String {
    let c = match container {
        Some(id) => format!("Some(ContainerId({id}))"),
        None => "None".to_owned(),
    };
    format!(
        "containerStart containerState: {state} container: {c} activations: {active} of max {max} action: {action} namespace: {namespace} activationId: {activation_id} [marker:invoker_containerStart.{state}_counter:0]"
    )
}

/// The `ContainerAddress` the invoker prints after a container id.
fn address(ip: &str) -> String {
    format!("ContainerAddress({ip},8080)")
}

/// `[DockerContainer]` before `/init`.
pub fn sending_initialization(container: &str, ip: &str) -> String {
    format!(
        "sending initialization to ContainerId({container}) {} [marker:invoker_activationInit_start:0]",
        address(ip)
    )
}

/// `[DockerContainer]` before `/run`.
pub fn sending_arguments(namespace: &str, action: &str, container: &str, ip: &str) -> String {
    format!(
        "sending arguments to /{namespace}/{action} at ContainerId({container}) {} [marker:invoker_activationRun_start:0]",
        address(ip)
    )
}

/// `[DockerContainer]` once `/init` answered (`ok`, or `not ok` when it failed), the call's
/// duration in the marker as the invoker logs it.
pub fn initialization_result(ok: bool, duration_ms: u64) -> String {
    format!(
        "initialization result: {} [marker:invoker_activationInit_finish:0:{duration_ms}]",
        if ok { "ok" } else { "not ok" }
    )
}

/// `[DockerContainer]` once `/run` answered, with the call's duration.
pub fn running_result(ok: bool, duration_ms: u64) -> String {
    format!(
        "running result: {} [marker:invoker_activationRun_finish:0:{duration_ms}]",
        if ok { "ok" } else { "not ok" }
    )
}

/// `[InvokerReactive]` once the activation's completion was sent back.
pub fn posted_completion(activation_id: &str) -> String {
    format!("posted completion of activation {activation_id}")
}

/// `[DockerClientWithFileAccess]` creating a container named `name`
/// (`wsk<invoker>_<n>_<namespace>_<action>`), with the invoker's default `docker run` timeout.
pub fn docker_run(name: &str, memory_mb: u64, image: &str) -> String {
    format!(
        "running /usr/bin/docker run -d --cpu-shares 2 --memory {memory_mb}m --memory-swap {memory_mb}m --network bridge --name {name} --cap-drop NET_RAW --cap-drop NET_ADMIN --ulimit nofile=1024:1024 --pids-limit 1024 {image} (timeout: 1 minute) [marker:invoker_docker.run_start:0]"
    )
}

/// `[DockerClientWithFileAccess]` creating a container with the `docker` binary `docker`
/// and exactly these arguments between `run` and the image (the invoker's own run line,
/// for a platform whose flags differ from [`docker_run`]'s).
pub fn docker_run_command(docker: &str, args: &[String], image: &str) -> String {
    format!(
        "running {docker} run {} {image} (timeout: 1 minute) [marker:invoker_docker.run_start:0]",
        args.join(" ")
    )
}

/// `[DockerClientWithFileAccess]` (`docker pause|unpause|rm`) or `[RuncClient]`
/// (`runc pause|resume`) on container `id`.
pub fn container_command(tool: Tool, op: &str, id: &str) -> String {
    let (bin, timeout, extra) = match (tool, op) {
        (Tool::Docker, "rm") => ("/usr/bin/docker", "1 minute", " -f"),
        (Tool::Docker, _) => ("/usr/bin/docker", "10 seconds", ""),
        (Tool::Runc, _) => ("/usr/bin/docker-runc", "10 seconds", ""),
    };
    let marker = match tool {
        Tool::Docker => "docker",
        Tool::Runc => "runc",
    };
    format!(
        "running {bin} {op}{extra} {id} (timeout: {timeout}) [marker:invoker_{marker}.{op}_start:0]"
    )
}

/// Which client the invoker used for a container command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Docker,
    Runc,
}

impl Tool {
    /// The component name the invoker logs the command under.
    pub fn component(self) -> &'static str {
        match self {
            Tool::Docker => "DockerClientWithFileAccess",
            Tool::Runc => "RuncClient",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_like_an_invoker_log() {
        let id = "a".repeat(64);
        let l = line(
            1_650_002_684_162,
            "sid_7",
            "ContainerPool",
            &container_start("cold", None, 1, 1, "hello", "guest", &"b".repeat(32)),
        );
        assert_eq!(
            l,
            format!("[2022-04-15T06:04:44.162Z] [INFO] [#tid_sid_7] [ContainerPool] containerStart containerState: cold container: None activations: 1 of max 1 action: hello namespace: guest activationId: {} [marker:invoker_containerStart.cold_counter:0]", "b".repeat(32))
        );
        assert!(container_start("warmed", Some(&id), 1, 1, "a", "n", "c")
            .contains(&format!("container: Some(ContainerId({id}))")));
        assert_eq!(
            container_command(Tool::Runc, "resume", &id),
            format!("running /usr/bin/docker-runc resume {id} (timeout: 10 seconds) [marker:invoker_runc.resume_start:0]")
        );
        assert_eq!(
            docker_run_command("/usr/bin/docker", &["-i".into(), "--name".into(), "wsk7_1_a_b".into()], "img:1"),
            "running /usr/bin/docker run -i --name wsk7_1_a_b img:1 (timeout: 1 minute) [marker:invoker_docker.run_start:0]"
        );
        assert!(container_command(Tool::Docker, "rm", &id)
            .starts_with("running /usr/bin/docker rm -f "));
        assert!(sending_arguments("guest", "hello", &id, "10.0.0.2")
            .starts_with(&format!("sending arguments to /guest/hello at ContainerId({id}) ContainerAddress(10.0.0.2,8080)")));
    }
}
