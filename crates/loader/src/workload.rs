//! Workload files (YAML): the platform's settings, and the functions with their arrival process,
//! input sizes and active window. Syntax and type errors come with serde's line and column;
//! semantic ones name the field (`functions[2] (thumbnail): arrival.poisson.rate …`).

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::arrivals::{ArrivalSpec, InputDist, SpecTimes, Stream};
use crate::functions::Function;
use crate::platform::RuntimeKind;

/// A duration written as people write them: `30s`, `50ms`, `2m 30s` (humantime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 50ms or 2m")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                humantime::parse_duration(s.trim())
                    .map(HumanDuration)
                    .map_err(|e| {
                        E::custom(format!(
                            "invalid duration `{s}`: {e} (write e.g. 30s, 50ms, 2m)"
                        ))
                    })
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write `{n}s` or `{n}ms`, not `{n}`"
                )))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<HumanDuration, E> {
                self.visit_u64(n.unsigned_abs())
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<HumanDuration, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write e.g. `{n}s`, not `{n}`"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Function {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Function::from_name(&s).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown function `{s}`; the suite has: {}",
                Function::names()
            ))
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkload {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code)] // documentation for people reading the file
    description: Option<String>,
    duration: HumanDuration,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    platform: RawPlatform,
    functions: Vec<RawFunction>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    max_containers: Option<usize>,
    prewarm: Option<usize>,
    pause_grace: Option<HumanDuration>,
    idle_timeout: Option<HumanDuration>,
    stem_memory_mb: Option<u64>,
    max_queue: Option<usize>,
    drain_timeout: Option<HumanDuration>,
    runtime: Option<RuntimeKind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFunction {
    name: String,
    function: Function,
    #[serde(default)]
    memory_mb: Option<u64>,
    #[serde(default)]
    code_size_kb: Option<u64>,
    #[serde(default)]
    timeout: Option<HumanDuration>,
    #[serde(default)]
    start: Option<HumanDuration>,
    #[serde(default)]
    stop: Option<HumanDuration>,
    arrival: ArrivalSpec,
    input: InputDist,
    #[serde(default)]
    params: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The platform section, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformSpec {
    pub max_containers: usize,
    pub prewarm: usize,
    pub pause_grace: Duration,
    pub idle_timeout: Duration,
    pub stem_memory_mb: u64,
    pub max_queue: usize,
    pub drain_timeout: Duration,
    /// Processes in cgroups of ours (default) or Docker containers.
    pub runtime: RuntimeKind,
}

impl Default for PlatformSpec {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            // Two per CPU: enough to overlap inits, sleeps and runs without oversubscribing.
            max_containers: 2 * cpus,
            prewarm: 1,
            // OpenWhisk's defaults: pause after 50 ms, remove after 10 minutes unused.
            pause_grace: Duration::from_millis(50),
            idle_timeout: Duration::from_secs(600),
            stem_memory_mb: DEFAULT_MEMORY_MB,
            max_queue: 1000,
            drain_timeout: Duration::from_secs(10),
            runtime: RuntimeKind::Process,
        }
    }
}

/// OpenWhisk's default action memory limit.
pub const DEFAULT_MEMORY_MB: u64 = 256;
/// Code "loaded" by init unless a function says otherwise.
pub const DEFAULT_CODE_SIZE_KB: u64 = 8192;
/// OpenWhisk's default action time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One function of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// The action's name.
    pub name: String,
    pub function: Function,
    pub memory_mb: u64,
    pub code_size_kb: u64,
    pub timeout: Duration,
    pub start: Duration,
    /// None: arrivals until the run ends (the workload's duration, or `--duration`).
    pub stop: Option<Duration>,
    pub arrival: ArrivalSpec,
    pub input: InputDist,
    /// Extra parameters sent to a real OpenWhisk with the input.
    pub params: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    pub duration: Duration,
    pub namespace: Option<String>,
    pub seed: Option<u64>,
    pub platform: PlatformSpec,
    pub functions: Vec<FunctionSpec>,
}

/// The memory a function instance needs: its code, its tables and the runtime itself.
pub fn memory_needed_mb(function: Function, code_size_kb: u64) -> u64 {
    let tables = match function {
        Function::MemStream => 96,
        Function::Matmul => 48,
        _ => 1,
    };
    code_size_kb.div_ceil(1024) + tables + 16
}

/// OpenWhisk's entity names: a word character first, then word characters, `@`, `.`, `-`.
pub fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok_first = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-'));
    if ok_first && ok_rest && s.len() <= 256 {
        Ok(())
    } else {
        Err(format!(
            "{what} `{s}` is not an OpenWhisk name (letters, digits, _ @ . -, starting with a letter, digit or _)"
        ))
    }
}

impl Workload {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read workload file {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("in workload file {}", path.display()))
    }

    pub fn from_yaml(text: &str) -> Result<Self> {
        let raw: RawWorkload = serde_yaml_ng::from_str(text)?;
        let duration = raw.duration.0;
        if duration.is_zero() {
            bail!("duration: must be more than 0");
        }
        if let Some(ns) = &raw.namespace {
            check_name("namespace", ns).map_err(anyhow::Error::msg)?;
        }
        let d = PlatformSpec::default();
        let p = raw.platform;
        let platform = PlatformSpec {
            max_containers: p.max_containers.unwrap_or(d.max_containers),
            prewarm: p.prewarm.unwrap_or(d.prewarm),
            pause_grace: p.pause_grace.map_or(d.pause_grace, |x| x.0),
            idle_timeout: p.idle_timeout.map_or(d.idle_timeout, |x| x.0),
            stem_memory_mb: p.stem_memory_mb.unwrap_or(d.stem_memory_mb),
            max_queue: p.max_queue.unwrap_or(d.max_queue),
            drain_timeout: p.drain_timeout.map_or(d.drain_timeout, |x| x.0),
            runtime: p.runtime.unwrap_or(d.runtime),
        };
        platform
            .check()
            .map_err(|e| anyhow::anyhow!("platform.{e}"))?;
        if raw.functions.is_empty() {
            bail!("functions: the workload has no functions");
        }
        let mut names = HashSet::new();
        let mut functions = Vec::new();
        for (i, f) in raw.functions.into_iter().enumerate() {
            let at = format!("functions[{i}] ({})", f.name);
            let spec = check_function(f, duration).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
            if !names.insert(spec.name.clone()) {
                bail!("{at}: the name is used by an earlier function");
            }
            functions.push(spec);
        }
        Ok(Self {
            name: raw.name.unwrap_or_else(|| "workload".into()),
            duration,
            namespace: raw.namespace,
            seed: raw.seed,
            platform,
            functions,
        })
    }
}

impl Workload {
    /// The arrival streams, one per function in file order (stream i is action i), cut at
    /// `duration` of workload time.
    pub fn streams(&self, seed: u64, duration: Duration) -> Vec<Stream> {
        self.functions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Stream::new(
                    i,
                    Box::new(SpecTimes::new(f.arrival.clone(), f.start)),
                    Box::new(f.input.clone()),
                    f.stop.map_or(duration, |s| s.min(duration)),
                    seed,
                    i as u64,
                )
            })
            .collect()
    }
}

impl PlatformSpec {
    /// Why the settings cannot work, naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.max_containers == 0 {
            return Err("max_containers: must be at least 1".into());
        }
        if self.prewarm > self.max_containers {
            return Err(format!(
                "prewarm: {} stem cells do not fit in max_containers {}",
                self.prewarm, self.max_containers
            ));
        }
        if self.idle_timeout < self.pause_grace {
            return Err("idle_timeout: must not be shorter than pause_grace".into());
        }
        if self.stem_memory_mb < 32 {
            return Err("stem_memory_mb: must be at least 32".into());
        }
        Ok(())
    }
}

fn check_function(f: RawFunction, duration: Duration) -> Result<FunctionSpec, String> {
    check_name("name", &f.name)?;
    let function = f.function;
    let memory_mb = f.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
    let code_size_kb = f.code_size_kb.unwrap_or(DEFAULT_CODE_SIZE_KB);
    if code_size_kb > 1 << 20 {
        return Err(format!(
            "code_size_kb: {code_size_kb} is more than 1 GiB of code"
        ));
    }
    let need = memory_needed_mb(function, code_size_kb);
    if memory_mb < need {
        return Err(format!(
            "memory_mb: {memory_mb} is below what {} needs with code_size_kb {code_size_kb} (about {need} MB)",
            function.name()
        ));
    }
    let timeout = f.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
    if timeout < Duration::from_millis(1) {
        return Err("timeout: must be at least 1ms".into());
    }
    let start = f.start.map_or(Duration::ZERO, |t| t.0);
    let stop = f.stop.map(|t| t.0);
    if start >= stop.map_or(duration, |t| t.min(duration)) {
        return Err(format!(
            "start ({}) must be before stop ({}, at most the workload's duration)",
            humantime::format_duration(start),
            humantime::format_duration(stop.map_or(duration, |t| t.min(duration)))
        ));
    }
    match &f.arrival {
        ArrivalSpec::Poisson { rate } if !(rate.is_finite() && *rate > 0.0) => {
            return Err(format!(
                "arrival.poisson.rate: must be a positive number per second, not {rate}"
            ));
        }
        ArrivalSpec::Poisson { rate } if *rate > 10_000.0 => {
            return Err(format!(
                "arrival.poisson.rate: {rate}/s is beyond what one machine can serve"
            ));
        }
        ArrivalSpec::Interval { every } if every.0 < Duration::from_micros(100) => {
            return Err("arrival.interval.every: must be at least 100us".into());
        }
        ArrivalSpec::Burst {
            every,
            count,
            spacing,
        } => {
            if *count == 0 {
                return Err("arrival.burst.count: must be at least 1".into());
            }
            let span = spacing.map_or(Duration::ZERO, |s| s.0) * (*count - 1);
            if every.0 < Duration::from_millis(1) || span >= every.0 {
                return Err("arrival.burst: a burst must end before the next begins (count × spacing < every)".into());
            }
        }
        _ => {}
    }
    f.input.check().map_err(|e| format!("input.{e}"))?;
    if let Some(max) = f.input.max_value() {
        if max > function.max_input() {
            return Err(format!(
                "input: {max} is more than {} accepts ({} {})",
                function.name(),
                function.max_input(),
                function.input_unit()
            ));
        }
    }
    Ok(FunctionSpec {
        name: f.name,
        function,
        memory_mb,
        code_size_kb,
        timeout,
        start,
        stop,
        arrival: f.arrival,
        input: f.input,
        params: f.params.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: t
duration: 10s
seed: 9
platform:
  max_containers: 3
  pause_grace: 20ms
  idle_timeout: 2s
functions:
  - name: fl
    function: float-loop
    memory_mb: 128
    arrival: {poisson: {rate: 2.5}}
    input: {uniform: {min: 1000, max: 2000}}
  - name: sl
    function: sleep
    start: 1s
    stop: 4s
    arrival: {interval: {every: 500ms}}
    input: {fixed: 20}
  - name: b
    function: bursty
    arrival: {burst: {every: 3s, count: 4, spacing: 10ms}}
    input: {lognormal: {median: 5000, sigma: 0.3, max: 9000}}
    params: {mode: x}
"#;

    #[test]
    fn a_good_file_parses_with_defaults() {
        let w = Workload::from_yaml(GOOD).unwrap();
        assert_eq!(
            (w.name.as_str(), w.duration, w.seed),
            ("t", Duration::from_secs(10), Some(9))
        );
        assert_eq!(w.platform.max_containers, 3);
        assert_eq!(w.platform.prewarm, 1);
        assert_eq!(w.platform.pause_grace, Duration::from_millis(20));
        assert_eq!(w.functions.len(), 3);
        let sl = &w.functions[1];
        assert_eq!(
            (sl.start, sl.stop),
            (Duration::from_secs(1), Some(Duration::from_secs(4)))
        );
        assert_eq!(sl.memory_mb, DEFAULT_MEMORY_MB);
        assert_eq!(w.functions[0].stop, None, "until the run ends");
        assert_eq!(w.functions[2].params["mode"], "x");
        assert_eq!(w.functions[2].function, Function::Bursty);
        assert_eq!(w.platform.runtime, RuntimeKind::Process);
    }

    #[test]
    fn the_runtime_is_chosen_in_the_platform_section() {
        let with = |r: &str| {
            GOOD.replace(
                "max_containers: 3",
                &format!("max_containers: 3\n  runtime: {r}"),
            )
        };
        let w = Workload::from_yaml(&with("docker")).unwrap();
        assert_eq!(w.platform.runtime, RuntimeKind::Docker);
        let w = Workload::from_yaml(&with("process")).unwrap();
        assert_eq!(w.platform.runtime, RuntimeKind::Process);
        let e = err(&with("podman"));
        assert!(
            e.contains("platform.runtime") || e.contains("unknown variant `podman`"),
            "{e}"
        );
    }

    fn err(yaml: &str) -> String {
        format!("{:#}", Workload::from_yaml(yaml).unwrap_err())
    }

    #[test]
    fn bad_files_say_what_and_where() {
        let e = err(&GOOD.replace("float-loop", "float_operation"));
        assert!(
            e.contains("functions[0]: unknown function `float_operation`") && e.contains("line 10"),
            "{e}"
        );
        let e = err(&GOOD.replace("500ms", "500 parsecs"));
        assert!(e.contains("invalid duration `500 parsecs`"), "{e}");
        let e = err(&GOOD.replace("duration: 10s", "duration: 10"));
        assert!(e.contains("needs a unit"), "{e}");
        let e = err(&GOOD.replace("poisson", "poison"));
        assert!(
            e.contains("unknown field `poison`, expected one of `poisson`"),
            "{e}"
        );
        let e = err(&GOOD.replace("{fixed: 20}", "{fixed: 20, choice: [1]}"));
        assert!(e.contains("exactly one input distribution"), "{e}");
        let e = err(&GOOD.replace("rate: 2.5", "rate: -1"));
        assert!(e.contains("functions[0] (fl): arrival.poisson.rate"), "{e}");
        let e = err(&GOOD.replace("name: sl", "name: fl"));
        assert!(e.contains("functions[1] (fl): the name is used"), "{e}");
        let e = err(&GOOD.replace("min: 1000, max: 2000", "min: 3000, max: 2000"));
        assert!(
            e.contains("input.uniform: min 3000 is above max 2000"),
            "{e}"
        );
        let e = err(&GOOD.replace("stop: 4s", "stop: 1s"));
        assert!(e.contains("start (1s) must be before stop"), "{e}");
        let e = err(&GOOD.replace("max_containers: 3", "max_containers: 0"));
        assert!(e.contains("platform.max_containers"), "{e}");
        let e = err(&GOOD.replace("seed: 9", "sed: 9"));
        assert!(e.contains("unknown field `sed`"), "{e}");
        let e = err("functions: [\n  - {name: a\n");
        assert!(e.contains("line"), "{e}");
        let e = err(&GOOD.replace(
            "float-loop\n    memory_mb: 128",
            "mem-stream\n    memory_mb: 64",
        ));
        assert!(
            e.contains("memory_mb: 64 is below what mem-stream needs"),
            "{e}"
        );
        let e = err(&GOOD.replace("name: b", "name: \"b/c\""));
        assert!(e.contains("not an OpenWhisk name"), "{e}");
        let e = err(&GOOD.replace("max: 9000", "max: 200000000000"));
        assert!(e.contains("more than bursty accepts"), "{e}");
    }

    #[test]
    fn bundled_workloads_and_sweeps_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let (mut n, mut sweeps) = (0, 0);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".yaml") {
                continue;
            }
            if name.starts_with("sweep-") {
                let s = crate::sweep::spec::Sweep::from_file(&p).unwrap();
                Workload::from_file(&s.workload).unwrap();
                assert!(!s.points().is_empty());
                sweeps += 1;
            } else {
                Workload::from_file(&p).unwrap();
                n += 1;
            }
        }
        assert!(n >= 2, "default.yaml and a small one");
        assert!(sweeps >= 1, "the sweep example");
    }
}
