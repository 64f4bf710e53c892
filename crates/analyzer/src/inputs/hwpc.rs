//! PowerAPI hwpc-sensor reports: its CSV output (a directory with one file per events group,
//! `rapl.csv`, `msr.csv`, `core.csv`…) and its JSON reports (one object per line as its socket
//! output sends them, or a `{"reports": […]}` document), read into [`Report`]s and cut into
//! SmartWatts tick pieces the way powerapi dispatches them.
//!
//! A CSV row is `timestamp(ms),sensor,target,socket,cpu,<events…>,time_enabled,time_running`,
//! values are deltas since the previous tick (the sensor resets its counters at every read),
//! RAPL in 2^-32 J; the group is the file name without `.csv`, as powerapi names it.
//! `time_enabled` and `time_running` are not reset (PERF_EVENT_IOC_RESET zeroes only the
//! count): they are the kernel's totals since the events were enabled, kept apart from the
//! events as [`Times`]. Unlike powerapi's CSV puller, rows need not be sorted.
//! A malformed row or a missing column is an error naming file and line; a timestamp that
//! some group files lack (an incomplete tick, like the `*_miss_first` fixtures) is skipped
//! with a warning naming the file and line where that tick starts.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::models::smartwatts::{
    Events, GlobalSample, SocketTick, TargetSample, Tick, GLOBAL_TARGET,
};

/// Counter values of one CPU in one group, in the order the input gave them.
pub type Cpus = Vec<(u32, Events)>;

/// One events group of a report: per socket, per CPU, in input order (powerapi keeps dict
/// order, and its dispatch and RAPL lookup depend on it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub name: Arc<str>,
    pub sockets: Vec<(u32, Cpus)>,
    /// Per CPU, the group's `time_enabled` and `time_running`, where the input has them.
    pub times: Vec<(u32, Times)>,
}

/// The read format's `time_enabled` and `time_running` of one CPU's group (ns, totals since
/// the events were enabled). For a cgroup target the kernel advances both only while the
/// cgroup runs on that CPU; for the machine-wide target, all the time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Times {
    pub enabled: Option<u64>,
    pub running: Option<u64>,
}

impl Group {
    /// The times of one CPU (none when the input did not give them).
    pub fn times_of(&self, cpu: u32) -> Times {
        self.times
            .iter()
            .find(|(c, _)| *c == cpu)
            .map(|(_, t)| *t)
            .unwrap_or_default()
    }
}

/// One hwpc-sensor report: what one target did during one tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub timestamp_ms: i64,
    pub sensor: Arc<str>,
    pub target: Arc<str>,
    pub groups: Vec<Group>,
    pub origin: Origin,
}

/// Where a report came from, for messages: `file:line` (CSV: its first row) or
/// `file: report N (line L)` (JSON: the line where its document starts).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u64,
    pub report: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.report {
            None => write!(f, "{}:{}", self.file, self.line),
            Some(n) => write!(f, "{}: report {n} (line {})", self.file, self.line),
        }
    }
}

/// Reports in the order a powerapi puller would emit them, and what was skipped on the way.
#[derive(Debug, Default)]
pub struct Reports {
    pub reports: Vec<Report>,
    pub warnings: Vec<String>,
}

/// Read a directory of CSV files or a JSON file.
pub fn read(path: &Path) -> Result<Reports> {
    if path.is_dir() {
        read_csv_dir(path)
    } else {
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        read_json(&bytes, &path.display().to_string())
    }
}

const FIXED: [&str; 5] = ["timestamp", "sensor", "target", "socket", "cpu"];

/// Rows of one group file, kept until every file is read.
struct Row {
    timestamp_ms: i64,
    sensor: Arc<str>,
    target: Arc<str>,
    socket: u32,
    cpu: u32,
    events: Events,
    times: Times,
    line: u64,
}

pub fn read_csv_dir(dir: &Path) -> Result<Reports> {
    use rayon::prelude::*;

    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("listing {}", dir.display()))?;
    files.retain(|p| p.is_file() && p.extension().is_some_and(|e| e == "csv"));
    files.sort();
    if files.is_empty() {
        bail!(
            "{}: no .csv file (expected hwpc-sensor CSV output: rapl.csv, core.csv…)",
            dir.display()
        );
    }
    // Group files are independent until they are merged.
    let groups = files
        .par_iter()
        .map(|f| {
            let name = f.file_stem().map(|s| s.to_string_lossy().into_owned());
            Ok((name.unwrap_or_default(), read_csv_file(f)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(assemble_csv(&files, groups))
}

fn read_csv_file(path: &Path) -> Result<Vec<Row>> {
    let shown = path.display();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(path)
        .with_context(|| format!("opening {shown}"))?;
    let header = rdr
        .headers()
        .with_context(|| format!("{shown}:1: reading the header"))?
        .clone();
    let mut fixed = [0usize; 5];
    for (slot, name) in fixed.iter_mut().zip(FIXED) {
        *slot = header.iter().position(|h| h == name).ok_or_else(|| {
            anyhow!(
                "{shown}:1: missing column `{name}` (hwpc-sensor CSV has {},<events…>)",
                FIXED.join(",")
            )
        })?;
    }
    // Every other column is an event, except the multiplexing times smartwatts ignores
    // (kept apart: the main command reads CPU time from them).
    let events: Vec<(usize, Arc<str>)> = header
        .iter()
        .enumerate()
        .filter(|(i, h)| !fixed.contains(i) && !h.starts_with("time_"))
        .map(|(i, h)| (i, Arc::from(h)))
        .collect();
    let time_enabled = header.iter().position(|h| h == "time_enabled");
    let time_running = header.iter().position(|h| h == "time_running");
    let mut rows = Vec::new();
    let mut rec = csv::ByteRecord::new();
    // Rows of a target come together: reuse the previous row's names instead of allocating.
    let (mut sensor, mut target): (Arc<str>, Arc<str>) = (Arc::from(""), Arc::from(""));
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                bail!("{shown}:{line}: malformed row: {e}");
            }
        }
        let line = rec.position().map_or(0, |p| p.line());
        let field = |i: usize| rec.get(i).unwrap_or(b"");
        let int = |i: usize| -> Result<i64> {
            let v = field(i);
            if v.is_empty() {
                bail!(
                    "{shown}:{line}: column `{}` is empty (incomplete row)",
                    &header[i]
                );
            }
            parse_int(v).ok_or_else(|| {
                anyhow!(
                    "{shown}:{line}: column `{}`: `{}` is not an integer",
                    &header[i],
                    String::from_utf8_lossy(v)
                )
            })
        };
        let small = |i: usize| -> Result<u32> {
            u32::try_from(int(i)?)
                .map_err(|_| anyhow!("{shown}:{line}: column `{}` out of range", &header[i]))
        };
        let time = |i: Option<usize>| -> Result<Option<u64>> {
            let Some(i) = i else { return Ok(None) };
            u64::try_from(int(i)?)
                .map(Some)
                .map_err(|_| anyhow!("{shown}:{line}: column `{}` is negative", &header[i]))
        };
        let name = |i: usize, last: &mut Arc<str>| -> Result<Arc<str>> {
            let v = std::str::from_utf8(field(i))
                .map_err(|_| anyhow!("{shown}:{line}: column `{}` is not UTF-8", &header[i]))?;
            if v.is_empty() {
                bail!(
                    "{shown}:{line}: column `{}` is empty (incomplete row)",
                    &header[i]
                );
            }
            if &**last != v {
                *last = Arc::from(v);
            }
            Ok(last.clone())
        };
        let mut ev = Events::with_capacity(events.len());
        for (i, event) in &events {
            ev.insert(event.clone(), int(*i)?);
        }
        rows.push(Row {
            timestamp_ms: int(fixed[0])?,
            sensor: name(fixed[1], &mut sensor)?,
            target: name(fixed[2], &mut target)?,
            socket: small(fixed[3])?,
            cpu: small(fixed[4])?,
            events: ev,
            times: Times {
                enabled: time(time_enabled)?,
                running: time(time_running)?,
            },
            line,
        });
    }
    Ok(rows)
}

/// Merge the groups' rows into one report per (timestamp, sensor, target): ticks in time
/// order, the `all` target first in each, then targets as they first appear.
fn assemble_csv(files: &[PathBuf], groups: Vec<(String, Vec<Row>)>) -> Reports {
    struct TickRows {
        /// Group file and line of the tick's first row.
        origin: (usize, u64),
        present: Vec<bool>,
        /// A tick has a handful of targets: a scan beats hashing their names for every row.
        reports: Vec<Report>,
    }
    let n_groups = groups.len();
    let names: Vec<Arc<str>> = files
        .iter()
        .map(|f| Arc::from(f.display().to_string()))
        .collect();
    // Ticks in order of first appearance, found by timestamp; rows come sorted in practice,
    // so the previous row's tick is tried before the map.
    let mut ticks: Vec<(i64, TickRows)> = Vec::new();
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut last: Option<(i64, usize)> = None;
    for (gi, (gname, rows)) in groups.into_iter().enumerate() {
        let gname: Arc<str> = Arc::from(gname);
        for row in rows {
            let ti = match last {
                Some((ts, i)) if ts == row.timestamp_ms => i,
                _ => *index.entry(row.timestamp_ms).or_insert_with(|| {
                    ticks.push((
                        row.timestamp_ms,
                        TickRows {
                            origin: (gi, row.line),
                            present: vec![false; n_groups],
                            reports: Vec::new(),
                        },
                    ));
                    ticks.len() - 1
                }),
            };
            last = Some((row.timestamp_ms, ti));
            let t = &mut ticks[ti].1;
            t.present[gi] = true;
            let same = |a: &Arc<str>, b: &Arc<str>| Arc::ptr_eq(a, b) || a == b;
            let found = t
                .reports
                .iter()
                .rposition(|r| same(&r.target, &row.target) && same(&r.sensor, &row.sensor));
            let i = found.unwrap_or_else(|| {
                t.reports.push(Report {
                    timestamp_ms: row.timestamp_ms,
                    sensor: row.sensor.clone(),
                    target: row.target.clone(),
                    groups: Vec::new(),
                    origin: Origin {
                        file: names[gi].clone(),
                        line: row.line,
                        report: None,
                    },
                });
                t.reports.len() - 1
            });
            add_cpu(
                &mut t.reports[i],
                &gname,
                (row.socket, row.cpu),
                row.events,
                row.times,
            );
        }
    }
    ticks.sort_by_key(|(ts, _)| *ts);
    let mut out = Reports::default();
    for (ts, mut t) in ticks {
        if let Some(missing) = (0..n_groups).find(|&g| !t.present[g]) {
            out.warnings.push(format!(
                "{}:{}: tick {ts} skipped: no row in {} at this timestamp (incomplete tick)",
                files[t.origin.0].display(),
                t.origin.1,
                files[missing].display()
            ));
            continue;
        }
        // `all` first, as hwpc-sensor writes it and powerapi's puller then emits it.
        t.reports.sort_by_key(|r| &*r.target != GLOBAL_TARGET);
        out.reports.extend(t.reports);
    }
    out
}

/// A decimal integer, as `int()` reads hwpc-sensor's values.
fn parse_int(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

fn add_cpu(
    report: &mut Report,
    group: &Arc<str>,
    (socket, cpu): (u32, u32),
    events: Events,
    times: Times,
) {
    let g = match report.groups.iter().position(|g| g.name == *group) {
        Some(i) => &mut report.groups[i],
        None => {
            report.groups.push(Group {
                name: group.clone(),
                sockets: Vec::new(),
                times: Vec::new(),
            });
            report.groups.last_mut().expect("just pushed")
        }
    };
    if times != Times::default() {
        match g.times.iter_mut().find(|(c, _)| *c == cpu) {
            Some((_, t)) => {
                t.enabled = times.enabled.or(t.enabled);
                t.running = times.running.or(t.running);
            }
            None => g.times.push((cpu, times)),
        }
    }
    let s = match g.sockets.iter().position(|(s, _)| *s == socket) {
        Some(i) => &mut g.sockets[i].1,
        None => {
            g.sockets.push((socket, Vec::new()));
            &mut g.sockets.last_mut().expect("just pushed").1
        }
    };
    match s.iter_mut().find(|(c, _)| *c == cpu) {
        Some((_, e)) => e.extend(events),
        None => s.push((cpu, events)),
    }
}

/// JSON kept in document order (serde_json's own map sorts keys).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Json, E> {
                Ok(Json::Int(v.into()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Json, E> {
                Ok(Json::Int(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Json, E> {
                Ok(Json::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Json, E> {
                Ok(Json::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> std::result::Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Json::Arr(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> std::result::Result<Json, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Json::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(kv) => kv.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parse hwpc JSON: a stream of values, each a report, an array of reports, or a
/// `{"reports": […]}` document.
pub fn read_json(bytes: &[u8], name: &str) -> Result<Reports> {
    let mut out = Reports::default();
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Json>();
    let mut start = 0usize;
    let mut index = 0usize;
    let file: Arc<str> = Arc::from(name);
    loop {
        // The line where the next value starts (skip the whitespace before it).
        let skip = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
        let line = 1 + bytes[..start + skip]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        let Some(value) = stream.next() else { break };
        let value = value.map_err(|e| anyhow!("{name}:{}: invalid JSON: {e}", e.line()))?;
        start = stream.byte_offset();
        let list: Vec<&Json> = match (&value, value.get("reports")) {
            (_, Some(Json::Arr(v))) => v.iter().collect(),
            (Json::Arr(v), _) => v.iter().collect(),
            _ => vec![&value],
        };
        for r in list {
            index += 1;
            let origin = Origin {
                file: file.clone(),
                line: line as u64,
                report: Some(index),
            };
            out.reports.push(json_report(r, origin)?);
        }
    }
    if out.reports.is_empty() {
        bail!("{name}: no hwpc report in this file");
    }
    Ok(out)
}

fn json_report(v: &Json, origin: Origin) -> Result<Report> {
    let field = |k: &str| {
        v.get(k)
            .ok_or_else(|| anyhow!("{origin}: missing field `{k}`"))
    };
    let string = |k: &str| match field(k)? {
        Json::Str(s) => Ok(s.clone()),
        _ => bail!("{origin}: field `{k}` is not a string"),
    };
    let timestamp_ms = match field("timestamp")? {
        Json::Int(i) => i64::try_from(*i).ok(),
        Json::Str(s) => parse_timestamp(s),
        _ => None,
    }
    .ok_or_else(|| anyhow!("{origin}: `timestamp` is neither milliseconds nor an ISO 8601 date"))?;
    let Json::Obj(groups) = field("groups")? else {
        bail!("{origin}: `groups` is not an object");
    };
    let mut report = Report {
        timestamp_ms,
        sensor: Arc::from(string("sensor")?),
        target: Arc::from(string("target")?),
        groups: Vec::new(),
        origin: origin.clone(),
    };
    for (gname, sockets) in groups {
        let group_name: Arc<str> = Arc::from(gname.as_str());
        let Json::Obj(sockets) = sockets else {
            bail!("{origin}: group `{gname}` is not an object of sockets");
        };
        for (sname, cpus) in sockets {
            let socket = sname.parse::<u32>().map_err(|_| {
                anyhow!("{origin}: group `{gname}`: socket `{sname}` is not a number")
            })?;
            let Json::Obj(cpus) = cpus else {
                bail!("{origin}: group `{gname}` socket {sname} is not an object of CPUs");
            };
            for (cname, events) in cpus {
                let at = format!("{origin}: group `{gname}` socket {sname} cpu {cname}");
                let cpu = cname
                    .parse::<u32>()
                    .map_err(|_| anyhow!("{at}: cpu is not a number"))?;
                let Json::Obj(events) = events else {
                    bail!("{at}: not an object of events");
                };
                let mut ev = Events::new();
                let mut times = Times::default();
                for (e, val) in events {
                    let n = match val {
                        Json::Int(i) => i64::try_from(*i).ok(),
                        Json::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(*f as i64),
                        _ => None,
                    };
                    let slot = match e.as_str() {
                        "time_enabled" => &mut times.enabled,
                        "time_running" => &mut times.running,
                        _ if e.starts_with("time_") => continue,
                        _ => {
                            let n =
                                n.ok_or_else(|| anyhow!("{at}: event `{e}` is not an integer"))?;
                            ev.insert(Arc::from(e.as_str()), n);
                            continue;
                        }
                    };
                    let t = n.and_then(|n| u64::try_from(n).ok());
                    *slot = Some(
                        t.ok_or_else(|| anyhow!("{at}: `{e}` is not a non-negative integer"))?,
                    );
                }
                add_cpu(&mut report, &group_name, (socket, cpu), ev, times);
            }
        }
    }
    Ok(report)
}

/// powerapi's timestamps: milliseconds, or `%Y-%m-%dT%H:%M:%S.%f` (taken as UTC here;
/// powerapi takes it as local time, which only shifts every tick alike).
fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// Cut a report into the pieces powerapi's dispatcher sends to each socket's formula, for
/// `SmartWatts::push`. A report goes to the sockets of its group with the most CPUs on its
/// first socket (hwpc's "non-shared" group); the `all` target brings RAPL (first CPU of the
/// socket, converted from 2^-32 J to J) and MSR, the others their `core` counters.
pub fn to_tick(report: Report, warnings: &mut Vec<String>) -> Tick {
    let Report {
        timestamp_ms,
        sensor,
        target,
        mut groups,
        origin,
    } = report;
    let mut tick = Tick {
        timestamp_ms,
        sensor,
        sockets: BTreeMap::new(),
    };
    let first_socket_cpus = |g: &Group| g.sockets.first().map_or(0, |(_, c)| c.len());
    let mut biggest: Option<&Group> = None;
    for g in &groups {
        if biggest.is_none_or(|b| first_socket_cpus(g) > first_socket_cpus(b)) {
            biggest = Some(g);
        }
    }
    let Some(biggest) = biggest else {
        warnings.push(format!(
            "{origin}: report without any events group: ignored"
        ));
        return tick;
    };
    let sockets: Vec<u32> = biggest.sockets.iter().map(|(s, _)| *s).collect();
    let mut take = |name: &str, socket: u32| -> Option<Cpus> {
        let g = groups.iter_mut().find(|g| &*g.name == name)?;
        let s = g.sockets.iter_mut().find(|(s, _)| *s == socket)?;
        Some(std::mem::take(&mut s.1))
    };
    for socket in sockets {
        let piece = if &*target == GLOBAL_TARGET {
            let rapl_joules = take("rapl", socket)
                .and_then(|cpus| cpus.into_iter().next())
                .map(|(_, ev)| {
                    ev.iter()
                        .map(|(e, v)| (e.to_string(), v as f64 / 4_294_967_296.0))
                        .collect()
                })
                .unwrap_or_default();
            let msr = take("msr", socket)
                .map(|cpus| cpus.into_iter().map(|(_, ev)| ev).collect())
                .unwrap_or_default();
            SocketTick {
                global: Some(GlobalSample { rapl_joules, msr }),
                targets: Vec::new(),
            }
        } else {
            let Some(cpus) = take("core", socket) else {
                warnings.push(format!(
                    "{origin}: target {target} has no core counters for socket {socket}: ignored there"
                ));
                continue;
            };
            SocketTick {
                global: None,
                targets: vec![TargetSample {
                    target: target.clone(),
                    cpus: cpus.into_iter().map(|(_, ev)| ev).collect(),
                }],
            }
        };
        tick.sockets.insert(socket, piece);
    }
    tick
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/powerapi-hwpc")
    }

    /// A directory holding copies of some fixtures, or of given contents.
    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            fs::write(d.path().join(name), text).expect("write");
        }
        d
    }

    fn fixture(name: &str) -> String {
        fs::read_to_string(fixtures().join(name)).expect("fixture")
    }

    #[test]
    fn csv_fixtures_become_one_report_per_tick_and_target() {
        let d = dir_with(&[
            ("rapl.csv", &fixture("rapl2.csv")),
            ("core.csv", &fixture("core2.csv")),
            ("pcu.csv", &fixture("pcu2.csv")),
        ]);
        let r = read(d.path()).expect("read");
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
        // Two ticks, one target (`system`) each.
        assert_eq!(r.reports.len(), 2);
        let first = &r.reports[0];
        assert_eq!(
            (first.timestamp_ms, &*first.sensor, &*first.target),
            (1539260664189, "grvingt-12", "system")
        );
        let names: Vec<&str> = first.groups.iter().map(|g| &*g.name).collect();
        assert_eq!(names, ["core", "pcu", "rapl"]);
        let rapl = &first.groups[2];
        assert_eq!(rapl.sockets[0].0, 0);
        assert_eq!(rapl.sockets[0].1[0].0, 58);
        let ev = &rapl.sockets[0].1[0].1;
        assert_eq!(ev.get("RAPL_ENERGY_PKG"), Some(722468864));
        assert_eq!(ev.get("time_enabled"), None);
        // core: 2 CPUs on each of the 2 sockets, in file order.
        let core = &first.groups[0];
        let cpus: Vec<(u32, Vec<u32>)> = core
            .sockets
            .iter()
            .map(|(s, c)| (*s, c.iter().map(|(cpu, _)| *cpu).collect()))
            .collect();
        assert_eq!(cpus, [(0, vec![56, 12]), (1, vec![49, 13])]);
    }

    #[test]
    fn times_are_kept_apart_from_the_events() {
        let d = dir_with(&[("core.csv", &fixture("core2.csv"))]);
        let r = read(d.path()).expect("read");
        let core = &r.reports[1].groups[0];
        assert_eq!(
            core.times_of(56),
            Times {
                enabled: Some(933527522),
                running: Some(933527522)
            }
        );
        assert_eq!(core.times_of(99), Times::default());
        let ev = &core.sockets[0].1[0].1;
        assert_eq!(ev.get("time_enabled"), None);
        // JSON: integers, or floats with no fraction (powerapi's own fixture writes 1.0e+09).
        let r = read(&fixtures().join("hwpc_rapl_2_socket.json")).expect("read");
        assert_eq!(
            r.reports[0].groups[0].times_of(11).enabled,
            Some(1000120188)
        );
        let bad = "{\"timestamp\": 1, \"sensor\": \"s\", \"target\": \"t\", \"groups\": \
            {\"core\": {\"0\": {\"0\": {\"C\": 1, \"time_enabled\": -5}}}}}";
        let e = format!(
            "{:#}",
            read_json(bad.as_bytes(), "t.json").expect_err("bad")
        );
        assert!(
            e.contains("t.json: report 1 (line 1)") && e.contains("time_enabled"),
            "{e}"
        );
        let head = "timestamp,sensor,target,socket,cpu,C,time_enabled,time_running\n";
        let d = dir_with(&[("core.csv", &format!("{head}1,s,t,0,0,5,-1,1\n"))]);
        let e = format!("{:#}", read(d.path()).expect_err("bad"));
        assert!(
            e.contains("core.csv:2") && e.contains("time_enabled"),
            "{e}"
        );
    }

    #[test]
    fn an_incomplete_tick_is_skipped_with_file_and_line() {
        let d = dir_with(&[
            ("core.csv", &fixture("core2.csv")),
            ("rapl.csv", &fixture("rapl1_miss_first.csv")),
        ]);
        let r = read(d.path()).expect("read");
        assert_eq!(r.reports.len(), 1);
        assert_eq!(r.reports[0].timestamp_ms, 1539260665189);
        assert_eq!(r.warnings.len(), 1);
        let w = &r.warnings[0];
        assert!(
            w.contains("core.csv:2:") && w.contains("1539260664189") && w.contains("rapl.csv"),
            "{w}"
        );
    }

    #[test]
    fn bad_csv_is_an_error_naming_file_and_line() {
        let head = "timestamp,sensor,target,socket,cpu,RAPL_ENERGY_PKG,time_enabled,time_running\n";
        let cases = [
            (
                format!("{head}1,s,all,0,0,12,1,1\n2,s,all,0,0,x7,1,1\n"),
                "rapl.csv:3",
                "x7",
            ),
            (
                format!("{head}1,s,all,0,0,12,1,1\n2,s,all,0,0,,1,1\n"),
                "rapl.csv:3",
                "empty",
            ),
            (
                format!("{head}1,s,all,0,0,12,1\n"),
                "rapl.csv:2",
                "malformed",
            ),
            (
                format!("{head}1,s,all,-1,0,12,1,1\n"),
                "rapl.csv:2",
                "socket",
            ),
            (
                "timestamp,sensor,socket,cpu,RAPL_ENERGY_PKG\n1,s,0,0,1\n".to_string(),
                "rapl.csv:1",
                "`target`",
            ),
        ];
        for (text, at, what) in cases {
            let d = dir_with(&[("rapl.csv", &text)]);
            let e = format!("{:#}", read(d.path()).expect_err("bad input"));
            assert!(e.contains(at) && e.contains(what), "{e}");
        }
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(read(empty.path()).is_err());
    }

    #[test]
    fn json_fixture_document_and_lines() {
        let r = read(&fixtures().join("hwpc.json")).expect("read");
        assert_eq!(r.reports.len(), 10);
        let first = &r.reports[0];
        assert_eq!(&*first.target, "all");
        assert_eq!(
            first.origin.to_string().rsplit('/').next(),
            Some("hwpc.json: report 1 (line 1)")
        );
        // 2020-09-08T15:46:44.856, taken as UTC.
        assert_eq!(first.timestamp_ms, 1_599_580_004_856);
        let msr = &first.groups[0];
        assert_eq!((&*msr.name, msr.sockets[0].1.len()), ("msr", 8));
        // Document order is kept: CPU 3 comes first in the file.
        assert_eq!(msr.sockets[0].1[0].0, 3);

        let lines = "{\"timestamp\": 1000, \"sensor\": \"s\", \"target\": \"all\", \"groups\": \
            {\"rapl\": {\"0\": {\"0\": {\"RAPL_ENERGY_PKG\": 4294967296}}}}}\n\
            {\"timestamp\": 1000, \"sensor\": \"s\", \"target\": \"t\", \"groups\": \
            {\"core\": {\"0\": {\"0\": {\"CYCLES\": 5}, \"1\": {\"CYCLES\": 6}}}}}\n";
        let r = read_json(lines.as_bytes(), "x.json").expect("read");
        assert_eq!(r.reports.len(), 2);
        assert_eq!(r.reports[1].origin.to_string(), "x.json: report 2 (line 2)");
        let bad = read_json(b"{\"timestamp\": 1}\n{oops", "x.json").expect_err("bad");
        assert!(format!("{bad:#}").contains("x.json: report 1 (line 1): missing field"));
        let bad = read_json(b"\n\n{oops", "x.json").expect_err("bad");
        assert!(
            format!("{bad:#}").contains("x.json:3: invalid JSON"),
            "{bad:#}"
        );
    }

    #[test]
    fn reports_become_socket_pieces_like_powerapi_dispatches_them() {
        let r = read(&fixtures().join("hwpc_rapl_2_socket.json")).expect("read");
        let mut warnings = Vec::new();
        let tick = to_tick(r.reports[0].clone(), &mut warnings);
        assert!(warnings.is_empty());
        assert_eq!(tick.sockets.keys().copied().collect::<Vec<_>>(), [0, 1]);
        let g = tick.sockets[&0].global.as_ref().expect("global");
        let raw = r.reports[0].groups[0].sockets[0].1[0]
            .1
            .get("RAPL_ENERGY_PKG");
        let raw = raw.expect("the fixture has RAPL_ENERGY_PKG");
        assert_eq!(
            g.rapl_joules["RAPL_ENERGY_PKG"],
            raw as f64 / 4_294_967_296.0
        );
        assert!(g.msr.is_empty());

        // A target spread over two sockets is cut in two; without core counters it is dropped.
        let t = "{\"timestamp\": 1, \"sensor\": \"s\", \"target\": \"web\", \"groups\": \
            {\"core\": {\"0\": {\"0\": {\"C\": 1}}, \"1\": {\"4\": {\"C\": 2}}}}}\n\
            {\"timestamp\": 1, \"sensor\": \"s\", \"target\": \"db\", \"groups\": \
            {\"pcu\": {\"0\": {\"0\": {\"C\": 1}}}}}";
        let r = read_json(t.as_bytes(), "t.json").expect("read");
        let tick = to_tick(r.reports[0].clone(), &mut warnings);
        let per_socket: Vec<(u32, i64)> = tick
            .sockets
            .iter()
            .map(|(s, p)| (*s, p.targets[0].cpus[0].get("C").unwrap_or(-1)))
            .collect();
        assert_eq!(per_socket, [(0, 1), (1, 2)]);
        let tick = to_tick(r.reports[1].clone(), &mut warnings);
        assert!(tick.sockets.is_empty());
        assert!(
            warnings[0].contains("target db has no core counters"),
            "{warnings:?}"
        );
    }

    #[test]
    fn integers_as_python_reads_them() {
        assert_eq!(parse_int(b"42"), Some(42));
        assert_eq!(parse_int(b"-7"), Some(-7));
        assert_eq!(parse_int(b"+7"), Some(7));
        assert_eq!(parse_int(b""), None);
        assert_eq!(parse_int(b"1.5"), None);
        assert_eq!(parse_int(b"99999999999999999999"), None);
        assert_eq!(parse_timestamp("1599579404856"), Some(1_599_579_404_856));
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
