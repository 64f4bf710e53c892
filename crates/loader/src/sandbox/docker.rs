//! The Docker runtime: each instance is a Docker container, made as OpenWhisk's
//! `DockerContainer.create` makes one (`--cpu-shares` from the memory limit, `--memory` and
//! `--memory-swap` equal, `--pids-limit`, `--name wsk<invoker>_<n>_<ns>_<action>`, …), frozen with
//! `docker pause`, thawed with `docker unpause` and removed with `docker rm -f`.
//!
//! The runtime protocol goes through the container's stdin/stdout: `docker run -i` (attached,
//! not `-d`) is the child process the platform talks to, and `--cidfile` gives Docker's own id.
//! No image is pulled: `pws-load/runtime:<version>-<hash>` is built at first use, `FROM scratch`,
//! holding this very binary and the shared libraries `ldd` lists for it (none when static), so
//! it runs `pws-load runtime` inside. The hash is the binary's, so a rebuilt pws-load gets a
//! new image.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pws_openwhisk::invoker_log::format::{self, Tool};

use super::{Isolation, Launch, Launched, Sandbox};
use crate::cgroup::Cgroup;

/// How to get Docker, for errors.
pub const HOW_TO_GET_DOCKER: &str = "install Docker (`apt-get install docker.io`, or `PWS_INSTALL_DOCKER=1 scripts/install.sh`) and start its daemon (`systemctl start docker`, or in a VM without systemd: `dockerd --iptables=false --bridge=none --storage-driver=vfs &`)";

/// OpenWhisk's `ContainerPoolConfig.cpuShare`: a container's share of 1024 CPU shares is its
/// share of the pool's user memory, at least 2 (the kernel's minimum).
pub fn cpu_shares(memory_mb: u64, user_memory_mb: u64) -> u64 {
    (1024 * memory_mb / user_memory_mb.max(1)).max(2)
}

#[derive(Debug, Clone)]
pub struct Docker {
    /// The docker CLI (as found on PATH).
    pub docker: PathBuf,
    pub image: String,
    /// The cgroup v2 root whose `docker/<id>` (cgroupfs driver) or
    /// `system.slice/docker-<id>.scope` (systemd driver) holds each container.
    pub cgroup_root: PathBuf,
    pub systemd_driver: bool,
    /// The pool's memory (`userMemory` in OpenWhisk), for `--cpu-shares`.
    pub user_memory_mb: u64,
    /// `wsk<invoker>_…`: this process's pid, so that two platforms never clash on names.
    pub invoker: u32,
    /// Where `--cidfile`s are written.
    pub scratch: PathBuf,
}

/// Runs `docker <args>` and returns its stdout, or an error with its stderr.
fn docker_out(docker: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(docker)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} ({HOW_TO_GET_DOCKER})", docker.display()))?;
    if !out.status.success() {
        bail!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// FNV-1a, 64 bits: names the image after the binary's bytes (no cryptographic need).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The absolute paths of the shared libraries (and the loader) `ldd` lists for `exe`;
/// empty for a static binary.
fn shared_libraries(exe: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .context("cannot run ldd to find the runtime's libraries (install libc-bin)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        // "not a dynamic executable" / "statically linked": nothing to copy.
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            // `libc.so.6 => /lib/…/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`.
            let l = l.split(" (0x").next()?.trim();
            let path = l.rsplit("=> ").next()?.trim();
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Docker {
    /// Checks that Docker answers, finds its cgroup layout and builds the runtime image from
    /// `runtime_exe` unless it exists already.
    pub fn connect(runtime_exe: &Path, cgroup_root: &Path, user_memory_mb: u64) -> Result<Self> {
        let docker = which("docker").ok_or_else(|| {
            anyhow!("--runtime docker: no `docker` command on PATH; {HOW_TO_GET_DOCKER}")
        })?;
        let driver = docker_out(&docker, &["info", "--format", "{{.CgroupDriver}}"])
            .map_err(|e| {
                anyhow!("--runtime docker: the Docker daemon does not answer ({e:#}); {HOW_TO_GET_DOCKER}")
            })?;
        let bytes = fs::read(runtime_exe)
            .with_context(|| format!("cannot read the runtime {}", runtime_exe.display()))?;
        let image = format!(
            "pws-load/runtime:{}-{:016x}",
            env!("CARGO_PKG_VERSION"),
            fnv1a(&bytes)
        );
        let d = Docker {
            docker,
            image,
            cgroup_root: cgroup_root.to_path_buf(),
            systemd_driver: driver == "systemd",
            user_memory_mb,
            invoker: std::process::id(),
            scratch: std::env::temp_dir(),
        };
        if docker_out(
            &d.docker,
            &["image", "inspect", "--format", "{{.Id}}", &d.image],
        )
        .is_err()
        {
            d.build_image(runtime_exe, &bytes)?;
        }
        Ok(d)
    }

    fn build_image(&self, exe: &Path, bytes: &[u8]) -> Result<()> {
        let dir =
            TempDir(std::env::temp_dir().join(format!("pws-load-image-{}", std::process::id())));
        let rootfs = dir.0.join("rootfs");
        fs::create_dir_all(&rootfs).context("cannot make the image's build directory")?;
        let bin = rootfs.join("pws-load");
        fs::write(&bin, bytes).context("cannot copy the runtime into the image")?;
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
        // ldd runs the loader on the path: `/proc/self/exe` must be resolved in this process.
        let exe = fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
        for lib in shared_libraries(&exe)? {
            let to = rootfs.join(lib.strip_prefix("/").unwrap_or(&lib));
            if let Some(parent) = to.parent() {
                fs::create_dir_all(parent)?;
            }
            // fs::copy follows symlinks: the image gets the library itself at the linked name.
            fs::copy(&lib, &to).with_context(|| format!("cannot copy {}", lib.display()))?;
        }
        fs::write(
            dir.0.join("Dockerfile"),
            "FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/pws-load\", \"runtime\"]\n",
        )?;
        let ctx = dir.0.to_string_lossy().into_owned();
        docker_out(&self.docker, &["build", "-q", "-t", &self.image, &ctx])
            .context("cannot build the runtime image")?;
        Ok(())
    }

    /// OpenWhisk's `docker run` arguments for a container (before the image).
    pub fn run_args(&self, name: &str, memory_mb: u64) -> Vec<String> {
        let m = format!("{memory_mb}m");
        [
            "-i",
            "--cpu-shares",
            &cpu_shares(memory_mb, self.user_memory_mb).to_string(),
            "--memory",
            &m,
            "--memory-swap",
            &m,
            // No network: runtimes speak over stdin/stdout (and dockerd may run with --bridge=none).
            "--network",
            "none",
            "--name",
            name,
            "--cap-drop",
            "NET_RAW",
            "--cap-drop",
            "NET_ADMIN",
            "--ulimit",
            "nofile=1024:1024",
            "--pids-limit",
            "1024",
            "--label",
            &format!("pws-load.invoker={}", self.invoker),
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    fn cgroup_of(&self, id: &str) -> PathBuf {
        if self.systemd_driver {
            self.cgroup_root
                .join("system.slice")
                .join(format!("docker-{id}.scope"))
        } else {
            self.cgroup_root.join("docker").join(id)
        }
    }
}

fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// Waits for `--cidfile` to hold Docker's id (written when the container is created).
fn read_cidfile(path: &Path, child: &mut Child, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(s) = fs::read_to_string(path) {
            let id = s.trim();
            if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(id.to_owned());
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            bail!(
                "docker run exited ({status}) before creating the container: {}",
                err.trim()
            );
        }
        if Instant::now() >= deadline {
            bail!("docker run did not create the container within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Isolation for Docker {
    fn launch(&self, spec: &Launch<'_>) -> Result<Launched> {
        let cidfile = self
            .scratch
            .join(format!("pws-load-{}-{}.cid", self.invoker, spec.name));
        let _ = fs::remove_file(&cidfile);
        let mut cmd = Command::new(&self.docker);
        cmd.arg("run")
            .args(self.run_args(spec.name, spec.memory_mb))
            .arg("--cidfile")
            .arg(&cidfile)
            .arg(&self.image)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A terminal's Ctrl-C goes to pws-load (which drains), not to the attached clients.
            .process_group(0);
        let mut child = cmd.spawn().with_context(|| {
            format!("cannot run {} ({HOW_TO_GET_DOCKER})", self.docker.display())
        })?;
        let id = read_cidfile(&cidfile, &mut child, Duration::from_secs(60));
        let _ = fs::remove_file(&cidfile);
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                // Created but not reported: remove it by its name.
                let _ = docker_out(&self.docker, &["rm", "-f", spec.name]);
                return Err(e);
            }
        };
        // The runtime's own errors go where ours go; nothing else reads the client's stderr.
        if let Some(mut err) = child.stderr.take() {
            let _ = std::thread::Builder::new()
                .name("pws-docker-err".into())
                .spawn(move || {
                    let _ = io::copy(&mut err, &mut io::stderr());
                });
        }
        Ok(Launched {
            sandbox: Box::new(DockerSandbox {
                docker: self.docker.clone(),
                cgroup: Cgroup::open(self.cgroup_of(&id)),
                id: id.clone(),
                frozen: false,
            }),
            id,
            child,
        })
    }

    fn kill(&self, id: &str, name: &str) {
        // A cold start's id is not known to the platform yet; its name is unique while it lives.
        let target = if name.is_empty() { id } else { name };
        let _ = docker_out(&self.docker, &["kill", target]);
    }

    fn run_line(&self, name: &str, memory_mb: u64) -> String {
        format::docker_run_command(
            &self.docker.to_string_lossy(),
            &self.run_args(name, memory_mb),
            &self.image,
        )
    }

    fn freezer(&self) -> (Tool, &'static str, &'static str) {
        (Tool::Docker, "pause", "unpause")
    }

    fn invoker(&self) -> u32 {
        self.invoker
    }

    fn same_pid_namespace(&self) -> bool {
        false
    }
}

#[derive(Debug)]
struct DockerSandbox {
    docker: PathBuf,
    id: String,
    cgroup: Cgroup,
    frozen: bool,
}

impl DockerSandbox {
    fn docker(&self, args: &[&str]) -> Result<String> {
        docker_out(&self.docker, args)
    }
}

impl Sandbox for DockerSandbox {
    fn cgroup_path(&self) -> &Path {
        self.cgroup.path()
    }

    fn pid(&self) -> u32 {
        self.cgroup
            .procs()
            .first()
            .map_or(0, |p| u32::try_from(*p).unwrap_or(0))
    }

    fn usage_usec(&self) -> Option<u64> {
        self.cgroup.usage_usec().or_else(|| {
            // A v1-only host: cpuacct counts ns.
            let p = Path::new("/sys/fs/cgroup/cpuacct/docker")
                .join(&self.id)
                .join("cpuacct.usage");
            fs::read_to_string(p)
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
                .map(|ns| ns / 1000)
        })
    }

    fn set_memory(&self, memory_mb: u64) -> Result<()> {
        let m = format!("{memory_mb}m");
        self.docker(&["update", "--memory", &m, "--memory-swap", &m, &self.id])
            .map(|_| ())
    }

    fn set_frozen(&mut self, frozen: bool) -> Result<()> {
        self.docker(&[if frozen { "pause" } else { "unpause" }, &self.id])?;
        self.frozen = frozen;
        Ok(())
    }

    fn teardown(&mut self, child: &mut Child) -> Result<()> {
        if self.frozen {
            // Thawed first, as OpenWhisk does before removing.
            let _ = self.docker(&["unpause", &self.id]);
            self.frozen = false;
        }
        let removed = self.docker(&["rm", "-f", &self.id]);
        // The attached client ends with the container; reap it.
        let _ = child.kill();
        let _ = child.wait();
        removed.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_shares_follow_openwhisk() {
        assert_eq!(cpu_shares(256, 1024), 256);
        assert_eq!(cpu_shares(128, 4096), 32);
        assert_eq!(cpu_shares(1, 1_000_000), 2);
    }

    #[test]
    fn ldd_lists_absolute_paths() {
        let libs = shared_libraries(&std::env::current_exe().unwrap()).unwrap();
        assert!(!libs.is_empty(), "a test binary links libc dynamically");
        assert!(
            libs.iter().all(|l| l.is_absolute() && l.exists()),
            "{libs:?}"
        );
    }

    #[test]
    fn missing_docker_says_how_to_get_it() {
        let e = docker_out(Path::new("/nonexistent/docker"), &["info"]).unwrap_err();
        assert!(
            format!("{e:#}").contains("apt-get install docker.io"),
            "{e:#}"
        );
    }
}
