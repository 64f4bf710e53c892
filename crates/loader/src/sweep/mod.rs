//! `pws-load sweep SWEEP.yaml -o DIR`: every point of a sweep, repeated, each run recorded by
//! `pws-record` into its own trace with the settings as trace metadata, and `DIR/manifest.csv`
//! for `pws-analyze DIR`. Interrupted, it keeps every finished run; run again, it resumes.
//!
//! Runs go repetition by repetition (every point once, then every point again), so a drift of
//! the machine over the sweep spreads over the points instead of landing on the last ones.

pub mod spec;
pub mod state;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::signals::Signals;
use crate::workload::Workload;
use spec::{Point, Sweep};
use state::{Done, State};

/// What `pws-load sweep` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub sweep: PathBuf,
    pub output: PathBuf,
    /// pws-record [default: beside pws-load, else on PATH].
    pub pws_record: Option<PathBuf>,
    /// Every run's `--cgroup-root`.
    pub cgroup_root: Option<PathBuf>,
    /// Print the plan and run nothing.
    pub dry_run: bool,
    pub quiet: bool,
}

/// One run of the plan.
#[derive(Debug, Clone)]
struct Planned {
    run: String,
    point: Point,
    repetition: u32,
    seed: u64,
}

fn plan(s: &Sweep) -> Vec<Planned> {
    let points = s.points();
    let mut out = Vec::new();
    for r in 1..=s.repetitions {
        for p in &points {
            out.push(Planned {
                run: format!("p{:02}-r{r}", p.index),
                point: p.clone(),
                repetition: r,
                seed: s.seed + u64::from(r) - 1,
            });
        }
    }
    out
}

fn pws_record(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_owned();
    }
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("pws-record")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("pws-record"))
}

pub fn run(o: &Options) -> Result<()> {
    let sweep = Sweep::from_file(&o.sweep)?;
    let sweep_text = std::fs::read_to_string(&o.sweep)?;
    let workload = Workload::from_file(&sweep.workload)
        .with_context(|| format!("the sweep's workload ({})", o.sweep.display()))?;
    let workload_text = std::fs::read_to_string(&sweep.workload)?;
    let planned = plan(&sweep);
    let settings: Vec<String> = sweep.settings.iter().map(|s| s.name.clone()).collect();
    let wall = |p: &Planned| sweep.wall_time(&p.point, workload.duration);
    let total: Duration = planned.iter().map(wall).sum();
    if o.dry_run {
        println!(
            "{} points × {} repetitions = {} runs of {} ({} of workload in all, plus each run's drain):",
            sweep.points().len(),
            sweep.repetitions,
            planned.len(),
            workload.name,
            humantime::format_duration(Duration::from_secs(total.as_secs()))
        );
        for p in &planned {
            println!("  {}  {}  seed {}", p.run, p.point.config(), p.seed);
        }
        return Ok(());
    }
    std::fs::create_dir_all(&o.output)
        .with_context(|| format!("cannot create {}", o.output.display()))?;
    let mut state = State::open(&o.output, &sweep_text, &workload_text, &workload.name)?;
    let todo: Vec<&Planned> = planned.iter().filter(|p| !state.is_done(&p.run)).collect();
    if todo.is_empty() {
        if !o.quiet {
            eprintln!(
                "pws-load sweep: all {} runs are done in {} (manifest.csv)",
                planned.len(),
                o.output.display()
            );
        }
        state.save(&o.output, &settings)?;
        return Ok(());
    }
    let recorder = pws_record(o.pws_record.as_deref());
    let signals = Signals::install()?;
    let bar = crate::cli::progress_bar(
        o.quiet,
        todo.len() as u64,
        "{elapsed_precise} [{wide_bar}] {pos}/{len} runs, ~{eta} left  {msg}",
    );
    if !o.quiet {
        let left: Duration = todo.iter().map(|p| wall(p)).sum();
        eprintln!(
            "pws-load sweep: {} of {} runs to do ({} done), about {} of workload",
            todo.len(),
            planned.len(),
            planned.len() - todo.len(),
            humantime::format_duration(Duration::from_secs(left.as_secs()))
        );
    }
    let started = Instant::now();
    for (k, p) in todo.iter().enumerate() {
        let msg = format!("{} {}", p.run, p.point.config());
        match &bar {
            Some(b) => b.set_message(msg.clone()),
            None if !o.quiet => eprintln!("[{}/{}] {msg}", k + 1, todo.len()),
            None => {}
        }
        let outcome = one_run(&recorder, &sweep, &workload.name, p, o, &signals)?;
        if outcome == Outcome::Interrupted {
            if let Some(b) = &bar {
                b.abandon();
            }
            bail!(
                "interrupted: {} of {} runs are done in {} (the interrupted run {} was discarded); run the same command again to resume",
                state.done.len(),
                planned.len(),
                o.output.display(),
                p.run
            );
        }
        state.done.push(Done {
            run: p.run.clone(),
            trace: format!("{}/trace.pws", p.run),
            config: p.point.config(),
            values: p.point.values.clone(),
            repetition: p.repetition,
        });
        state.save(&o.output, &settings)?;
        if let Some(b) = &bar {
            b.inc(1);
        } else if !o.quiet && k + 1 < todo.len() {
            let per_run = started.elapsed() / (k as u32 + 1);
            eprintln!(
                "      done; about {} left",
                humantime::format_duration(Duration::from_secs(
                    (per_run * (todo.len() - k - 1) as u32).as_secs()
                ))
            );
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !o.quiet {
        eprintln!(
            "pws-load sweep: {} runs in {} (manifest.csv); analyse with: pws-analyze {} -o {}/results",
            state.done.len(),
            o.output.display(),
            o.output.display(),
            o.output.display()
        );
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Finished,
    Interrupted,
}

/// Records one run into `DIR/<run>/` (emptied first: a run interrupted earlier left files
/// there). Its output goes to `DIR/<run>/log.txt`, shown when it fails.
fn one_run(
    recorder: &Path,
    sweep: &Sweep,
    workload_name: &str,
    p: &Planned,
    o: &Options,
    signals: &Signals,
) -> Result<Outcome> {
    let rd = o.output.join(&p.run);
    if rd.exists() {
        std::fs::remove_dir_all(&rd).with_context(|| format!("cannot empty {}", rd.display()))?;
    }
    std::fs::create_dir_all(&rd).with_context(|| format!("cannot create {}", rd.display()))?;
    let log_path = rd.join("log.txt");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let f = |name: &str| rd.join(name).into_os_string();
    let mut cmd = Command::new(recorder);
    cmd.arg("-o").arg(f("trace.pws")).arg("--quiet");
    let mut meta = vec![
        ("run".to_owned(), p.run.clone()),
        ("workload".to_owned(), workload_name.to_owned()),
        ("config".to_owned(), p.point.config()),
        ("repetition".to_owned(), p.repetition.to_string()),
    ];
    meta.extend(p.point.values.iter().cloned());
    for (k, v) in meta {
        cmd.arg("--metadata").arg(format!("{k}={v}"));
    }
    cmd.arg("--activations")
        .arg(f("activations.jsonl"))
        .arg("--invoker-log")
        .arg(f("invoker.log"))
        .arg("--summary-json")
        .arg(f("record-summary.json"))
        .args(&sweep.record)
        .arg("--")
        .arg(std::env::current_exe().context("cannot find pws-load's own path")?)
        .arg("run")
        .arg(&sweep.workload)
        .args(sweep.flags(&p.point))
        .arg("--seed")
        .arg(p.seed.to_string())
        .arg("--activations-out")
        .arg(f("activations.jsonl"))
        .arg("--invoker-log-out")
        .arg(f("invoker.log"))
        .arg("--summary-json")
        .arg(f("load-summary.json"))
        .arg("--quiet");
    if let Some(root) = &o.cgroup_root {
        cmd.arg("--cgroup-root").arg(root);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", recorder.display()))?;
    let status = wait(&mut child, signals)?;
    if signals.stop() {
        // Not a finished run: nothing of it stays to be mistaken for one.
        std::fs::remove_dir_all(&rd).with_context(|| format!("cannot remove {}", rd.display()))?;
        return Ok(Outcome::Interrupted);
    }
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        bail!(
            "run {} ({}) failed ({status}); its log {}:\n{}",
            p.run,
            p.point.config(),
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(Outcome::Finished)
}

/// Waits for the recorder; on SIGINT or SIGTERM to the sweep, passes a SIGINT on once (a
/// Ctrl-C on a terminal reaches it anyway) so it stops its command and ends its trace.
fn wait(child: &mut Child, signals: &Signals) -> Result<std::process::ExitStatus> {
    let mut passed = false;
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if signals.stop() && !passed {
            passed = true;
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill(2) on our own child's pid, which is not reaped yet.
                unsafe { libc::kill(pid, libc::SIGINT) };
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_goes_repetition_by_repetition_with_a_seed_each() {
        let s = Sweep::from_yaml(
            "workload: w.yaml\nrepetitions: 2\nseed: 7\nvary:\n  keep_alive: [1s, 5s]\n",
        )
        .unwrap();
        let p = plan(&s);
        let runs: Vec<(&str, u64)> = p.iter().map(|x| (x.run.as_str(), x.seed)).collect();
        assert_eq!(
            runs,
            [("p00-r1", 7), ("p01-r1", 7), ("p00-r2", 8), ("p01-r2", 8)]
        );
    }
}
