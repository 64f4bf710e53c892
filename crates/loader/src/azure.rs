//! Replaying the Azure Functions Trace 2019 (Shahrad et al., "Serverless in the Wild",
//! USENIX ATC 2020) in its original CSV format: per-function invocation counts for each minute
//! of a day, execution-time percentiles, and allocated-memory percentiles.
//!
//! Each trace function becomes an action running one function of the suite (assigned
//! round-robin from `profiles`, in row order). Within a minute, the minute's invocations
//! arrive at uniformly random instants (a Poisson process conditioned on the count); each
//! invocation's run time is drawn from the function's duration percentiles (geometric
//! interpolation between them), clamped to `[min_run, max_run]`, and turned into an input of its suite
//! function with a calibration measured on this machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::Rng;

use crate::arrivals::{InputSource, Stream, TimeSource};
use crate::functions::Function;
use crate::platform::Action;
use crate::workload::memory_needed_mb;

/// A comma-separated file without quoting (the trace's files are plain).
#[derive(Debug)]
struct Csv {
    path: PathBuf,
    header: Vec<String>,
    /// (1-based line number, fields)
    rows: Vec<(usize, Vec<String>)>,
}

impl Csv {
    fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
            .filter(|(_, l)| !l.trim().is_empty());
        let Some((_, head)) = lines.next() else {
            bail!("{}: empty file", path.display());
        };
        let split = |l: &str| {
            l.split(',')
                .map(|f| f.trim().to_owned())
                .collect::<Vec<_>>()
        };
        let header = split(head);
        let mut rows = Vec::new();
        for (n, l) in lines {
            if l.contains('"') {
                bail!(
                    "{}:{n}: quoted fields are not part of the trace format",
                    path.display()
                );
            }
            let f = split(l);
            if f.len() != header.len() {
                bail!(
                    "{}:{n}: {} fields, but the header has {}",
                    path.display(),
                    f.len(),
                    header.len()
                );
            }
            rows.push((n, f));
        }
        Ok(Self {
            path: path.to_owned(),
            header,
            rows,
        })
    }

    fn col(&self, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no column `{name}`", self.path.display()))
    }

    fn num<T: std::str::FromStr>(&self, line: usize, col: usize, value: &str) -> Result<T> {
        value.parse().map_err(|_| {
            anyhow::anyhow!(
                "{}:{line}: column `{}`: `{value}` is not a valid number",
                self.path.display(),
                self.header[col]
            )
        })
    }
}

/// Execution-time percentiles: (quantile in [0, 1], ms), increasing.
#[derive(Debug, Clone, PartialEq)]
pub struct Percentiles(Vec<(f64, f64)>);

impl Percentiles {
    /// The run time at quantile `u` in [0, 1]: interpolated geometrically between two
    /// percentiles (run times are heavy-tailed: between the 75th and 99th percentiles a linear
    /// ramp would make most draws long), linearly from 0.
    pub fn at(&self, u: f64) -> f64 {
        let p = &self.0;
        let u = u.clamp(p[0].0, p[p.len() - 1].0);
        let k = p.iter().position(|(q, _)| *q >= u).unwrap_or(p.len() - 1);
        if k == 0 {
            return p[0].1;
        }
        let ((q0, v0), (q1, v1)) = (p[k - 1], p[k]);
        let t = if q1 > q0 { (u - q0) / (q1 - q0) } else { 1.0 };
        if t >= 1.0 {
            return v1;
        }
        if v0 > 0.0 {
            v0 * (v1 / v0).powf(t)
        } else {
            v0 + (v1 - v0) * t
        }
    }
}

/// One function of the trace.
#[derive(Debug, Clone)]
pub struct TraceFunction {
    pub owner: String,
    pub app: String,
    pub hash: String,
    pub trigger: String,
    /// Invocations in minutes 1, 2, …
    pub counts: Vec<u32>,
    pub durations: Percentiles,
    /// The 99th percentile of allocated memory, where the memory file has the function.
    pub memory_mb: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Trace {
    pub functions: Vec<TraceFunction>,
    pub minutes: u32,
}

/// The three files of a trace directory: vHive/invitro's names (`invocations.csv`,
/// `durations.csv`, `memory.csv`) or the original day files
/// (`invocations_per_function_md.anon.dNN.csv`, `function_durations_percentiles.anon.dNN.csv`,
/// `app_memory_percentiles.anon.dNN.csv`) when there is exactly one day of them.
#[derive(Debug, Clone)]
pub struct TraceFiles {
    pub invocations: PathBuf,
    pub durations: PathBuf,
    pub memory: Option<PathBuf>,
}

impl TraceFiles {
    pub fn find(dir: &Path) -> Result<Self> {
        let pick = |short: &str, prefix: &str| -> Result<Option<PathBuf>> {
            let p = dir.join(short);
            if p.is_file() {
                return Ok(Some(p));
            }
            let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list the trace directory {}", dir.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".csv"))
                })
                .collect();
            found.sort();
            match found.len() {
                0 => Ok(None),
                1 => Ok(found.pop()),
                _ => bail!(
                    "{}: several {prefix}* files (one per day); pass the one to use with --invocations/--durations/--memory",
                    dir.display()
                ),
            }
        };
        let invocations = pick("invocations.csv", "invocations_per_function_md")?
            .with_context(|| format!("{}: no invocations.csv", dir.display()))?;
        let durations = pick("durations.csv", "function_durations_percentiles")?
            .with_context(|| format!("{}: no durations.csv", dir.display()))?;
        let memory = pick("memory.csv", "app_memory_percentiles")?;
        Ok(Self {
            invocations,
            durations,
            memory,
        })
    }
}

impl Trace {
    pub fn load(files: &TraceFiles) -> Result<Self> {
        let inv = Csv::read(&files.invocations)?;
        let (o, a, f, t) = (
            inv.col("HashOwner")?,
            inv.col("HashApp")?,
            inv.col("HashFunction")?,
            inv.col("Trigger")?,
        );
        // Minute columns are named 1, 2, …, in order.
        let minute_cols: Vec<usize> = (1..)
            .map_while(|m: u32| inv.col(&m.to_string()).ok())
            .collect();
        if minute_cols.is_empty() {
            bail!("{}: no minute columns (1, 2, …)", inv.path.display());
        }

        let dur = Csv::read(&files.durations)?;
        let df = dur.col("HashFunction")?;
        let mut pct_cols: Vec<(f64, usize)> = dur
            .header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let p: f64 = h.strip_prefix("percentile_Average_")?.parse().ok()?;
                Some((p / 100.0, i))
            })
            .collect();
        pct_cols.sort_by(|x, y| x.0.total_cmp(&y.0));
        if pct_cols.len() < 2 {
            bail!(
                "{}: fewer than two percentile_Average_<p> columns",
                dur.path.display()
            );
        }
        let mut durations = HashMap::new();
        for (line, row) in &dur.rows {
            let mut pts = Vec::new();
            let mut last = 0.0f64;
            for (q, c) in &pct_cols {
                let v: f64 = dur.num(*line, *c, &row[*c])?;
                if !(v.is_finite() && v >= 0.0) {
                    bail!(
                        "{}:{line}: column `{}`: {v} is not a duration in ms",
                        dur.path.display(),
                        dur.header[*c]
                    );
                }
                // Percentiles of averages are monotone in the data; keep them so if rounded.
                last = last.max(v);
                pts.push((*q, last));
            }
            durations.insert(row[df].clone(), Percentiles(pts));
        }

        let mut memory: HashMap<String, f64> = HashMap::new();
        if let Some(path) = &files.memory {
            let mem = Csv::read(path)?;
            let mc = mem.col("AverageAllocatedMb_pct99")?;
            // invitro's file has one row per function; the original one per app.
            let key_fn = mem.col("HashFunction").ok();
            let (mo, ma) = (mem.col("HashOwner")?, mem.col("HashApp")?);
            for (line, row) in &mem.rows {
                let v: f64 = mem.num(*line, mc, &row[mc])?;
                let key = match key_fn {
                    Some(k) => row[k].clone(),
                    None => format!("{}/{}", row[mo], row[ma]),
                };
                memory.insert(key, v);
            }
        }

        let mut functions = Vec::new();
        for (line, row) in &inv.rows {
            let counts = minute_cols
                .iter()
                .map(|c| inv.num::<u32>(*line, *c, &row[*c]))
                .collect::<Result<Vec<_>>>()?;
            let hash = row[f].clone();
            let Some(d) = durations.get(&hash) else {
                bail!(
                    "{}:{line}: function {hash} has no row in {}",
                    inv.path.display(),
                    dur.path.display()
                );
            };
            let mem = memory
                .get(&hash)
                .or_else(|| memory.get(&format!("{}/{}", row[o], row[a])))
                .copied();
            functions.push(TraceFunction {
                owner: row[o].clone(),
                app: row[a].clone(),
                hash,
                trigger: row[t].clone(),
                counts,
                durations: d.clone(),
                memory_mb: mem,
            });
        }
        if functions.is_empty() {
            bail!("{}: no functions", inv.path.display());
        }
        Ok(Self {
            functions,
            minutes: minute_cols.len() as u32,
        })
    }
}

/// Parses `A..B` (minutes A through B of the trace, inclusive, 1-based like its columns),
/// `A..=B` (the same) or `A`.
pub fn parse_minutes(s: &str) -> Result<(u32, u32), String> {
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("`{s}`: `{x}` is not a minute number"))
    };
    let (a, b) = match s.split_once("..") {
        Some((a, b)) => (num(a)?, num(b.trim_start_matches('='))?),
        None => (num(s)?, num(s)?),
    };
    if a == 0 || b < a {
        return Err(format!(
            "`{s}`: write A..B with 1 ≤ A ≤ B (minutes are numbered from 1, both ends included)"
        ));
    }
    Ok((a, b))
}

/// How to replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// Minutes A through B of the trace (1-based, inclusive).
    pub minutes: (u32, u32),
    /// Only the first N functions (in file order).
    pub functions: Option<usize>,
    /// Keep each invocation with this probability (thinning to fit a small machine).
    pub invocation_scale: f64,
    pub profiles: Vec<Function>,
    pub min_run: Duration,
    pub max_run: Duration,
    pub namespace: String,
    pub code_size_kb: u64,
    pub timeout: Duration,
}

/// What a replay runs.
#[derive(Debug)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub streams: Vec<Stream>,
    /// Workload time the window covers.
    pub duration: Duration,
    /// Invocations in the window before thinning.
    pub invocations: u64,
}

/// A minute's invocations at uniform random instants within it.
struct MinuteTimes {
    counts: Vec<u32>,
    keep: f64,
    minute: usize,
    buf: Vec<Duration>,
}

impl TimeSource for MinuteTimes {
    fn next(&mut self, rng: &mut StdRng) -> Option<Duration> {
        loop {
            if let Some(t) = self.buf.pop() {
                return Some(t);
            }
            let n = *self.counts.get(self.minute)?;
            let base = Duration::from_secs(60 * self.minute as u64);
            self.minute += 1;
            for _ in 0..n {
                if self.keep >= 1.0 || rng.random::<f64>() < self.keep {
                    self.buf
                        .push(base + Duration::from_secs_f64(rng.random::<f64>() * 60.0));
                }
            }
            // Popped from the end: earliest last.
            self.buf.sort_unstable_by(|a, b| b.cmp(a));
        }
    }
}

/// Inputs sized so that a run takes a duration drawn from the percentiles.
struct DurationInputs {
    percentiles: Percentiles,
    function: Function,
    ms_per_unit: f64,
    min_ms: f64,
    max_ms: f64,
}

impl InputSource for DurationInputs {
    fn next(&mut self, rng: &mut StdRng) -> u64 {
        let ms = self
            .percentiles
            .at(rng.random::<f64>())
            .clamp(self.min_ms, self.max_ms);
        match self.function {
            Function::Sleep => ms.round() as u64,
            f => f.input_for_work(ms / self.ms_per_unit),
        }
    }
}

/// The actions and arrival streams of a replay; `ms_per_unit` gives each suite function's
/// calibration (ms per unit of work on this machine).
pub fn plan(
    trace: &Trace,
    r: &Replay,
    seed: u64,
    ms_per_unit: &mut dyn FnMut(Function) -> f64,
) -> Result<Plan> {
    let (a, b) = r.minutes;
    if b > trace.minutes {
        bail!(
            "--minutes {a}..{b}: the trace has {} minutes",
            trace.minutes
        );
    }
    if r.profiles.is_empty() {
        bail!("--profiles: no suite function to map trace functions to");
    }
    if !(r.invocation_scale > 0.0 && r.invocation_scale <= 1.0) {
        bail!("--invocation-scale must be in (0, 1]");
    }
    if r.min_run > r.max_run {
        bail!("--min-run is above --max-run");
    }
    let n = r
        .functions
        .unwrap_or(trace.functions.len())
        .min(trace.functions.len());
    if n == 0 {
        bail!("--functions 0: nothing to replay");
    }
    let mut actions = Vec::new();
    let mut streams = Vec::new();
    let mut invocations = 0u64;
    let mut seen = HashMap::new();
    for (i, tf) in trace.functions.iter().take(n).enumerate() {
        let function = r.profiles[i % r.profiles.len()];
        let short: String = tf.hash.chars().take(8).collect();
        let mut name = format!("az-{short}");
        let dup = seen.entry(name.clone()).or_insert(0u32);
        *dup += 1;
        if *dup > 1 {
            name = format!("{name}-{dup}");
        }
        let round64 = |mb: f64| ((mb.max(1.0) / 64.0).ceil() as u64) * 64;
        let memory_mb = round64(tf.memory_mb.unwrap_or(256.0))
            .max(128)
            .max(round64(memory_needed_mb(function, r.code_size_kb) as f64));
        let counts = tf.counts[(a - 1) as usize..b as usize].to_vec();
        invocations += counts.iter().map(|c| u64::from(*c)).sum::<u64>();
        let times = MinuteTimes {
            counts,
            keep: r.invocation_scale,
            minute: 0,
            buf: Vec::new(),
        };
        let inputs = DurationInputs {
            percentiles: tf.durations.clone(),
            function,
            ms_per_unit: ms_per_unit(function),
            min_ms: r.min_run.as_secs_f64() * 1e3,
            max_ms: r.max_run.as_secs_f64() * 1e3,
        };
        let stop = Duration::from_secs(60 * u64::from(b - a + 1));
        streams.push(Stream::new(
            i,
            Box::new(times),
            Box::new(inputs),
            stop,
            seed,
            i as u64,
        ));
        actions.push(Action {
            name,
            namespace: r.namespace.clone(),
            function,
            memory_mb,
            code_size_kb: r.code_size_kb,
            timeout: r.timeout,
        });
    }
    Ok(Plan {
        actions,
        streams,
        duration: Duration::from_secs(60 * u64::from(b - a + 1)),
        invocations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrivals::Schedule;

    fn bundled() -> TraceFiles {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/azure-functions-2019");
        TraceFiles::find(&dir).unwrap()
    }

    fn replay(minutes: (u32, u32), functions: usize, scale: f64) -> Replay {
        Replay {
            minutes,
            functions: Some(functions),
            invocation_scale: scale,
            profiles: vec![Function::Sleep, Function::IntLoop],
            min_run: Duration::from_millis(1),
            max_run: Duration::from_millis(500),
            namespace: "guest".into(),
            code_size_kb: 1024,
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_bundled_rows_load_and_join() {
        let t = Trace::load(&bundled()).unwrap();
        assert_eq!(t.functions.len(), 10);
        assert_eq!(t.minutes, 1440);
        let f0 = &t.functions[0];
        assert_eq!(f0.trigger, "http");
        assert_eq!(&f0.counts[..3], &[197, 196, 196]);
        assert_eq!(f0.memory_mb, Some(245.0));
        // percentile_Average_0,1,25,50,75,99,100 = 1,247,269,282,304,481,130686
        assert_eq!(f0.durations.at(0.0), 1.0);
        assert_eq!(f0.durations.at(0.5), 282.0);
        let mid = f0.durations.at(0.625);
        assert!((mid - (282.0f64 * 304.0).sqrt()).abs() < 1e-9, "{mid}");
        // Between the 99th (481) and 100th (130686) percentiles: geometric, not linear.
        assert!((f0.durations.at(0.995) - (481.0f64 * 130686.0).sqrt()).abs() < 1e-6);
        assert_eq!(f0.durations.at(1.0), 130686.0);
    }

    #[test]
    fn a_replay_keeps_every_invocation_of_the_window_in_order() {
        let t = Trace::load(&bundled()).unwrap();
        let mut calls = 0;
        let p = plan(&t, &replay((2, 3), 2, 1.0), 5, &mut |_| {
            calls += 1;
            0.001
        })
        .unwrap();
        assert_eq!(calls, 2);
        // Minutes 2 and 3 of the first two functions: 196 + 196 + 759 + 760.
        assert_eq!(p.invocations, 1911);
        assert_eq!(p.duration, Duration::from_secs(120));
        assert_eq!(p.actions[0].function, Function::Sleep);
        assert_eq!(p.actions[1].function, Function::IntLoop);
        assert_eq!(p.actions[0].name, "az-47658c9c");
        assert!(p
            .actions
            .iter()
            .all(|a| a.memory_mb >= 128 && a.memory_mb % 64 == 0));
        let arrivals: Vec<_> = Schedule::new(p.streams, 60.0).collect();
        assert_eq!(arrivals.len(), 1911);
        assert!(arrivals.windows(2).all(|w| w[0].at <= w[1].at));
        // Sixty times faster: two trace minutes in two seconds.
        assert!(arrivals.last().unwrap().at < Duration::from_secs(2));
        let first_minute = arrivals
            .iter()
            .filter(|a| a.at < Duration::from_secs(1))
            .count();
        assert_eq!(first_minute, 196 + 759);
        // Sleep inputs are run times in ms, within [min_run, max_run].
        assert!(arrivals
            .iter()
            .filter(|a| a.action == 0)
            .all(|a| (1..=500).contains(&a.input)));
    }

    #[test]
    fn thinning_keeps_about_the_asked_fraction() {
        let t = Trace::load(&bundled()).unwrap();
        let p = plan(&t, &replay((1, 1), 10, 0.1), 1, &mut |_| 0.001).unwrap();
        let n = Schedule::new(p.streams, 1.0).count() as f64;
        let expected = p.invocations as f64 * 0.1;
        assert!(
            (n - expected).abs() < 5.0 * expected.sqrt(),
            "{n} vs {expected}"
        );
    }

    #[test]
    fn minutes_and_bad_rows_give_clear_errors() {
        assert_eq!(parse_minutes("3..5"), Ok((3, 5)));
        assert_eq!(parse_minutes("3..=5"), Ok((3, 5)));
        assert_eq!(parse_minutes("7"), Ok((7, 7)));
        assert!(parse_minutes("0..2").is_err());
        assert!(parse_minutes("5..3").is_err());
        assert!(parse_minutes("a..3")
            .unwrap_err()
            .contains("`a` is not a minute"));

        let t = Trace::load(&bundled()).unwrap();
        let e = plan(&t, &replay((1, 2000), 1, 1.0), 1, &mut |_| 1.0).unwrap_err();
        assert!(e.to_string().contains("the trace has 1440 minutes"));

        let dir = tempfile::tempdir().unwrap();
        let files = TraceFiles {
            invocations: dir.path().join("invocations.csv"),
            durations: dir.path().join("durations.csv"),
            memory: None,
        };
        std::fs::write(
            &files.durations,
            "HashOwner,HashApp,HashFunction,percentile_Average_0,percentile_Average_100\no,a,f,1,9\n",
        )
        .unwrap();
        let inv = |rows: &str| {
            std::fs::write(
                &files.invocations,
                format!("HashOwner,HashApp,HashFunction,Trigger,1,2\n{rows}"),
            )
            .unwrap();
            format!("{:#}", Trace::load(&files).unwrap_err())
        };
        let e = inv("o,a,f,http,3,x\n");
        assert!(
            e.contains("invocations.csv:2: column `2`: `x` is not a valid number"),
            "{e}"
        );
        let e = inv("o,a,f,http,3\n");
        assert!(
            e.contains("invocations.csv:2: 5 fields, but the header has 6"),
            "{e}"
        );
        let e = inv("o,a,g,http,3,4\n");
        assert!(e.contains("function g has no row in"), "{e}");
        let e = inv("o,a,f,\"http\",3,4\n");
        assert!(e.contains("quoted fields"), "{e}");
        std::fs::write(
            &files.invocations,
            "HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,3,4\n",
        )
        .unwrap();
        let t = Trace::load(&files).unwrap();
        assert_eq!(t.functions[0].counts, vec![3, 4]);
        assert_eq!(t.functions[0].memory_mb, None);
        assert!(TraceFiles::find(&dir.path().join("nope")).is_err());
    }
}
