//! A sweep file: the workload, the platform settings to vary, the repetitions and a seed.
//!
//! ```yaml
//! workload: small.yaml          # relative to this file
//! repetitions: 2
//! seed: 1                       # repetition r of every point runs with seed + r − 1
//! duration: 10s                 # optional: every run's length [default: the workload's]
//! record: [--freq, "1000"]      # optional: more pws-record options
//! vary:                         # one setting: its values; several: every combination
//!   keep_alive: [1s, 5s, 30s]
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_yaml_ng::Value;

/// The settings a sweep can vary, each a `pws-load run` option.
pub const SETTINGS: [(&str, &str, Kind); 8] = [
    ("keep_alive", "--idle-timeout", Kind::Duration),
    ("pause_grace", "--pause-grace", Kind::Duration),
    ("prewarm", "--prewarm", Kind::Count),
    ("max_containers", "--max-containers", Kind::Count),
    ("max_queue", "--max-queue", Kind::Count),
    ("time_scale", "--time-scale", Kind::Positive),
    ("runtime", "--runtime", Kind::Runtime),
    ("duration", "--duration", Kind::Duration),
];

/// What a setting's values must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Duration,
    Count,
    Positive,
    Runtime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    workload: PathBuf,
    #[serde(default = "one")]
    repetitions: u32,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    record: Vec<String>,
    vary: serde_yaml_ng::Mapping,
    #[serde(default)]
    #[allow(dead_code)] // for people reading the file
    description: Option<String>,
}

fn one() -> u32 {
    1
}

/// One setting and its values, as the sweep file gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: String,
    pub flag: &'static str,
    pub values: Vec<String>,
}

/// A parsed sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub workload: PathBuf,
    pub repetitions: u32,
    pub seed: u64,
    pub duration: Option<String>,
    pub record: Vec<String>,
    pub settings: Vec<Setting>,
}

/// One point of the sweep: a value per setting, in the settings' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub index: usize,
    pub values: Vec<(String, String)>,
}

impl Point {
    /// `keep_alive=5s,prewarm=1`: the trace's `config`.
    pub fn config(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn check_value(name: &str, kind: Kind, v: &str) -> Result<(), String> {
    let ok = match kind {
        Kind::Duration => humantime::parse_duration(v).is_ok(),
        Kind::Count => v.parse::<usize>().is_ok(),
        Kind::Positive => v.parse::<f64>().is_ok_and(|x| x.is_finite() && x > 0.0),
        Kind::Runtime => matches!(v, "process" | "docker"),
    };
    if ok {
        return Ok(());
    }
    Err(match kind {
        Kind::Duration => format!("{name}: `{v}` is not a duration (write e.g. 30s, 500ms, 10m)"),
        Kind::Count => format!("{name}: `{v}` is not a whole number"),
        Kind::Positive => format!("{name}: `{v}` is not a positive number"),
        Kind::Runtime => format!("{name}: `{v}` is not a runtime (process or docker)"),
    })
}

impl Sweep {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the sweep file {}", path.display()))?;
        let mut s =
            Self::from_yaml(&text).with_context(|| format!("in sweep file {}", path.display()))?;
        if s.workload.is_relative() {
            s.workload = path.parent().unwrap_or(Path::new(".")).join(&s.workload);
        }
        Ok(s)
    }

    pub fn from_yaml(text: &str) -> Result<Self> {
        let raw: Raw = serde_yaml_ng::from_str(text)?;
        if raw.repetitions == 0 {
            bail!("repetitions: must be at least 1");
        }
        if let Some(d) = &raw.duration {
            check_value("duration", Kind::Duration, d).map_err(anyhow::Error::msg)?;
        }
        if raw.vary.is_empty() {
            bail!("vary: name at least one setting and its values");
        }
        let mut settings = Vec::new();
        for (k, v) in &raw.vary {
            let name = scalar(k).context("vary: a setting's name must be a string")?;
            let Some(&(_, flag, kind)) = SETTINGS.iter().find(|s| s.0 == name) else {
                bail!(
                    "vary: unknown setting `{name}`; a sweep can vary: {}",
                    SETTINGS.map(|s| s.0).join(", ")
                );
            };
            if name == "duration" && raw.duration.is_some() {
                bail!("vary: duration is varied and also fixed by `duration:`; keep one");
            }
            let values: Vec<String> =
                match v {
                    Value::Sequence(vs) => vs
                        .iter()
                        .map(|x| {
                            scalar(x).with_context(|| format!("vary.{name}: {x:?} is not a value"))
                        })
                        .collect::<Result<_>>()?,
                    other => vec![scalar(other)
                        .with_context(|| format!("vary.{name}: give a list of values"))?],
                };
            if values.is_empty() {
                bail!("vary.{name}: no values");
            }
            for v in &values {
                check_value(&format!("vary.{name}"), kind, v).map_err(anyhow::Error::msg)?;
            }
            let mut seen = std::collections::HashSet::new();
            if let Some(dup) = values.iter().find(|v| !seen.insert(v.as_str())) {
                bail!("vary.{name}: `{dup}` is given twice");
            }
            settings.push(Setting { name, flag, values });
        }
        Ok(Self {
            workload: raw.workload,
            repetitions: raw.repetitions,
            seed: raw.seed.unwrap_or(1),
            duration: raw.duration,
            record: raw.record,
            settings,
        })
    }

    /// Every combination of the settings' values (the first setting varies slowest).
    pub fn points(&self) -> Vec<Point> {
        let mut points: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for s in &self.settings {
            points = points
                .into_iter()
                .flat_map(|p| {
                    s.values.iter().map(move |v| {
                        let mut q = p.clone();
                        q.push((s.name.clone(), v.clone()));
                        q
                    })
                })
                .collect();
        }
        points
            .into_iter()
            .enumerate()
            .map(|(index, values)| Point { index, values })
            .collect()
    }

    /// The `pws-load run` options that set `point`.
    pub fn flags(&self, point: &Point) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in &point.values {
            let flag = self
                .settings
                .iter()
                .find(|s| &s.name == name)
                .map_or("", |s| s.flag);
            out.extend([flag.to_owned(), value.clone()]);
        }
        if let Some(d) = &self.duration {
            out.extend(["--duration".to_owned(), d.clone()]);
        }
        out
    }

    /// The workload time of one run: the varied or fixed duration, else `workload`'s; at the
    /// wall clock, over the time scale.
    pub fn wall_time(&self, point: &Point, workload: Duration) -> Duration {
        let get = |k: &str| {
            point
                .values
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let d = get("duration")
            .or(self.duration.as_deref())
            .and_then(|d| humantime::parse_duration(d).ok())
            .unwrap_or(workload);
        let scale = get("time_scale")
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(1.0);
        Duration::from_secs_f64(d.as_secs_f64() / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_setting_is_a_list_and_several_a_grid() {
        let s = Sweep::from_yaml(
            "workload: w.yaml\nrepetitions: 2\nvary:\n  keep_alive: [1s, 5s]\n  prewarm: [0, 1, 2]\n",
        )
        .unwrap();
        let p = s.points();
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].config(), "keep_alive=1s,prewarm=0");
        assert_eq!(p[5].config(), "keep_alive=5s,prewarm=2");
        assert_eq!(s.flags(&p[1]), ["--idle-timeout", "1s", "--prewarm", "1"]);
        let one = Sweep::from_yaml("workload: w.yaml\nvary:\n  time_scale: [1, 2.5]\n").unwrap();
        assert_eq!(one.points().len(), 2);
        assert_eq!(one.repetitions, 1);
        assert_eq!(
            one.wall_time(&one.points()[1], Duration::from_secs(10)),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn bad_sweeps_name_the_problem() {
        let err = |y: &str| format!("{:#}", Sweep::from_yaml(y).unwrap_err());
        assert!(
            err("workload: w.yaml\nvary:\n  colour: [red]\n").contains("unknown setting `colour`")
        );
        assert!(err("workload: w.yaml\nvary:\n  keep_alive: [5]\n").contains("not a duration"));
        assert!(err("workload: w.yaml\nvary:\n  prewarm: [1, 1]\n").contains("given twice"));
        assert!(err("workload: w.yaml\nvary:\n  prewarm: []\n").contains("no values"));
        assert!(
            err("workload: w.yaml\nrepetitions: 0\nvary:\n  prewarm: [1]\n").contains("at least 1")
        );
        assert!(err("workload: w.yaml\nvary: {}\n").contains("at least one setting"));
        assert!(err("vary:\n  prewarm: [1]\n").contains("workload"));
        assert!(err("workload: w.yaml\nvary:\n  runtime: [vm]\n").contains("not a runtime"));
    }
}
