//! `pws-analyze smartwatts INPUT -o OUT.csv`: PowerAPI SmartWatts 2.4.1 over hwpc-sensor
//! reports, with smartwatts' own option names and defaults.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::display;
use crate::inputs::hwpc;
use crate::models::smartwatts::config::DEFAULT_REPORTS_FREQUENCY_MS;
use crate::models::smartwatts::formula::FormulaId;
use crate::models::smartwatts::{Outcome, SmartWatts, SmartWattsConfig, SmartWattsOptions};

/// Warnings printed one by one; past that only counted.
const SHOWN_WARNINGS: usize = 10;

#[derive(Debug, clap::Args)]
pub struct SmartwattsArgs {
    /// hwpc-sensor reports: a directory of its CSV files (rapl.csv, msr.csv, core.csv…) or a
    /// JSON file (one report per line, or a {"reports": […]} document).
    #[arg(value_name = "INPUT")]
    input: PathBuf,
    /// CSV of estimates: timestamp (ms),sensor,target,socket,domain,power_w,formula,ratio.
    #[arg(short, long, value_name = "OUT.csv")]
    output: PathBuf,
    /// Also write the model used at each tick (smartwatts' FormulaReport) to this CSV.
    #[arg(long, value_name = "FILE")]
    formula_output: Option<PathBuf>,
    /// Also estimate the last 5 ticks, which smartwatts 2.4.1 keeps waiting for late reports.
    #[arg(long)]
    flush: bool,
    #[command(flatten)]
    options: SmartWattsOptions,
}

impl SmartwattsArgs {
    fn config(&self) -> SmartWattsConfig {
        self.options.config(DEFAULT_REPORTS_FREQUENCY_MS)
    }
}

pub fn run(args: &SmartwattsArgs) -> Result<ExitCode> {
    let mut engine = SmartWatts::new(args.config()).map_err(anyhow::Error::msg)?;
    let input = hwpc::read(&args.input)
        .with_context(|| format!("reading hwpc reports from {}", display(&args.input)))?;
    let mut warnings = input.warnings;
    let n_reports = input.reports.len();

    let mut out = Output::create(args)?;
    // Where each tick's first report came from, to name it in messages.
    let mut origins: HashMap<(Arc<str>, i64), hwpc::Origin> = HashMap::new();
    let mut last: Option<(Arc<str>, i64)> = None;
    for report in input.reports {
        let key = (report.sensor.clone(), report.timestamp_ms);
        if last.as_ref() != Some(&key) {
            origins
                .entry(key.clone())
                .or_insert_with(|| report.origin.clone());
            last = Some(key);
        }
        let tick = hwpc::to_tick(report, &mut warnings);
        out.write(engine.push(tick), &origins, &mut warnings)?;
    }
    if args.flush {
        out.write(engine.flush(), &origins, &mut warnings)?;
    }
    out.finish()?;

    for w in warnings.iter().take(SHOWN_WARNINGS) {
        eprintln!("pws-analyze smartwatts: warning: {w}");
    }
    if warnings.len() > SHOWN_WARNINGS {
        eprintln!(
            "pws-analyze smartwatts: … and {} more warnings",
            warnings.len() - SHOWN_WARNINGS
        );
    }
    let models: u32 = engine
        .formulas()
        .flat_map(|(_, _, f)| f.layers())
        .filter_map(|l| l.model.as_ref().map(|m| m.id))
        .sum();
    eprintln!(
        "pws-analyze smartwatts: {n_reports} reports, {} tick estimates ({} skipped), {} rows, \
         {models} models accepted → {}",
        out.ticks,
        out.skipped.values().sum::<usize>(),
        out.rows,
        display(&args.output)
    );
    for (why, n) in &out.skipped {
        eprintln!("pws-analyze smartwatts:   {n} × {why}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The estimates CSV, the optional formula CSV, and counts for the summary.
struct Output {
    estimates: BufWriter<File>,
    formulas: Option<BufWriter<File>>,
    ticks: usize,
    rows: usize,
    skipped: BTreeMap<String, usize>,
    /// One row, formatted here first: the estimates are most of the run's output.
    line: String,
    scratch: Vec<u8>,
}

const ESTIMATES_HEADER: &str = "timestamp,sensor,target,socket,domain,power_w,formula,ratio\n";
const FORMULAS_HEADER: &str = "timestamp,sensor,socket,domain,layer_mhz,pkg_frequency_mhz,\
    samples,model_id,error_w,intercept,coef\n";

impl Output {
    fn create(args: &SmartwattsArgs) -> Result<Self> {
        let open = |p: &PathBuf, header: &str| -> Result<BufWriter<File>> {
            let f = File::create(p).with_context(|| format!("creating {}", display(p)))?;
            let mut w = BufWriter::new(f);
            w.write_all(header.as_bytes())
                .with_context(|| format!("writing {}", display(p)))?;
            Ok(w)
        };
        Ok(Output {
            estimates: open(&args.output, ESTIMATES_HEADER)?,
            formulas: match &args.formula_output {
                Some(p) => Some(open(p, FORMULAS_HEADER)?),
                None => None,
            },
            ticks: 0,
            rows: 0,
            skipped: BTreeMap::new(),
            line: String::new(),
            scratch: Vec::new(),
        })
    }

    fn write(
        &mut self,
        outcomes: Vec<Outcome>,
        origins: &HashMap<(Arc<str>, i64), hwpc::Origin>,
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        for o in outcomes {
            self.ticks += 1;
            for e in &o.estimates {
                let l = &mut self.line;
                l.clear();
                write!(l, "{},", o.timestamp_ms)?;
                csv_field(l, &o.sensor);
                csv_field(l, &e.target);
                write!(l, "{},{},", o.socket, o.scope)?;
                number(l, &mut self.scratch, e.power_w);
                l.push(',');
                match &e.formula {
                    FormulaId::Rapl(event) => csv_field(l, event),
                    id => write!(l, "{id},")?,
                }
                number(l, &mut self.scratch, e.ratio);
                l.push('\n');
                self.estimates.write_all(l.as_bytes())?;
                self.rows += 1;
            }
            if let (Some(w), Some(f)) = (&mut self.formulas, &o.formula) {
                let l = &mut self.line;
                l.clear();
                write!(l, "{},", o.timestamp_ms)?;
                csv_field(l, &o.sensor);
                write!(
                    l,
                    "{},{},{},{},{},{},{},{},",
                    o.socket,
                    o.scope,
                    f.layer_mhz,
                    f.pkg_frequency_mhz,
                    f.samples,
                    f.model_id,
                    f.error_w,
                    f.intercept
                )?;
                for (i, c) in f.coef.iter().enumerate() {
                    write!(l, "{}{c}", if i == 0 { "" } else { " " })?;
                }
                l.push('\n');
                w.write_all(l.as_bytes())?;
            }
            if let Some(why) = &o.skipped {
                let at = origins
                    .get(&(o.sensor.clone(), o.timestamp_ms))
                    .map_or_else(|| "?".to_string(), |o| o.to_string());
                warnings.push(format!(
                    "{at}: tick {} socket {} {}: skipped: {why}",
                    o.timestamp_ms, o.socket, o.scope
                ));
                *self.skipped.entry(why.to_string()).or_insert(0) += 1;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.estimates.flush().context("writing the estimates")?;
        if let Some(w) = &mut self.formulas {
            w.flush().context("writing the formula reports")?;
        }
        Ok(())
    }
}

/// Shortest decimal that reads back as the same f64. serde_json formats with ryu, several
/// times faster than `Display`, which matters at one row per estimate; it has no NaN or
/// infinity, which `Display` then writes.
fn number(line: &mut String, scratch: &mut Vec<u8>, v: f64) {
    scratch.clear();
    if !v.is_finite() || serde_json::to_writer(&mut *scratch, &v).is_err() {
        line.push_str(&v.to_string());
        return;
    }
    // ryu writes ASCII only.
    line.push_str(std::str::from_utf8(scratch).unwrap_or("NaN"));
}

/// A CSV field and its comma, quoted only when it has to be (RFC 4180).
fn csv_field(line: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        line.push('"');
        line.push_str(&v.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(v);
    }
    line.push(',');
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: SmartwattsArgs,
    }

    /// hwpc CSV for `ticks` ticks of one socket: RAPL PKG = 2^32 · (10 + tick) (so 10 + tick
    /// watts), MSR at the base frequency, and two targets.
    fn write_input(dir: &std::path::Path, ticks: i64) {
        let mut rapl = String::from("timestamp,sensor,target,socket,cpu,RAPL_ENERGY_PKG,RAPL_ENERGY_DRAM,time_enabled,time_running\n");
        let mut msr = String::from(
            "timestamp,sensor,target,socket,cpu,APERF,MPERF,TSC,time_enabled,time_running\n",
        );
        let mut core = String::from(
            "timestamp,sensor,target,socket,cpu,CYCLES,INSTRUCTIONS,time_enabled,time_running\n",
        );
        for k in 0..ticks {
            let ts = 1000 * k;
            let (a, b) = (1_000_000 * (k % 7 + 1), 2_000_000 * (k % 5 + 1));
            let pkg = (10 + k) << 32;
            rapl += &format!("{ts},s,all,0,0,{pkg},{},1,1\n", 1i64 << 32);
            msr += &format!("{ts},s,all,0,0,100,100,100,1,1\n");
            core += &format!("{ts},s,all,0,0,{},{},1,1\n", a + b, a + b);
            core += &format!("{ts},s,web,0,0,{a},{b},1,1\n");
            core += &format!("{ts},s,\"db,1\",0,0,{b},{a},1,1\n");
        }
        for (name, text) in [("rapl.csv", rapl), ("msr.csv", msr), ("core.csv", core)] {
            std::fs::write(dir.join(name), text).expect("write input");
        }
    }

    fn rows(path: &std::path::Path) -> Vec<csv::StringRecord> {
        let mut r = csv::Reader::from_path(path).expect("output");
        assert_eq!(
            r.headers().expect("header").iter().collect::<Vec<_>>(),
            [
                "timestamp",
                "sensor",
                "target",
                "socket",
                "domain",
                "power_w",
                "formula",
                "ratio"
            ]
        );
        r.records().map(|r| r.expect("row")).collect()
    }

    #[test]
    fn estimates_csv_from_a_csv_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_input(dir.path(), 30);
        // Not in the input directory: every .csv there is read as a group.
        let outdir = tempfile::tempdir().expect("tempdir");
        let out = outdir.path().join("out.csv");
        let formulas = outdir.path().join("formulas.csv");
        let cli = Cli::parse_from([
            "x".as_ref(),
            dir.path().as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--formula-output".as_ref(),
            formulas.as_os_str(),
            "--disable-dram-formula".as_ref(),
        ]);
        run(&cli.args).expect("run");
        let estimates = rows(&out);
        // 30 ticks, the last 5 never estimated; each has a `rapl` row.
        let rapl: Vec<&csv::StringRecord> = estimates.iter().filter(|r| &r[2] == "rapl").collect();
        assert_eq!(rapl.len(), 25);
        assert_eq!(
            (&rapl[3][0], &rapl[3][5], &rapl[3][6]),
            ("3000", "13.0", "RAPL_ENERGY_PKG")
        );
        // From the 11th tick on (10 samples first), `global` and both targets, quoted as needed.
        let db: Vec<&csv::StringRecord> = estimates.iter().filter(|r| &r[2] == "db,1").collect();
        assert_eq!(db.len(), 15);
        assert_eq!(&db[0][6], "2100MHz#1");
        assert!(estimates.iter().all(|r| &r[4] == "cpu"));
        let f = std::fs::read_to_string(&formulas).expect("formulas");
        assert_eq!(f.lines().count(), 1 + 15);

        // --flush estimates the last five ticks too.
        let cli = Cli::parse_from([
            "x".as_ref(),
            dir.path().as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--flush".as_ref(),
        ]);
        run(&cli.args).expect("run");
        let flushed = rows(&out);
        assert_eq!(flushed.iter().filter(|r| &r[2] == "rapl").count(), 2 * 30);
    }

    #[test]
    fn bad_input_and_options_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outdir = tempfile::tempdir().expect("tempdir");
        let out = outdir.path().join("out.csv");
        let missing = dir.path().join("nothing.json");
        let cli = Cli::parse_from([
            "x".as_ref(),
            missing.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let e = run(&cli.args).expect_err("missing input");
        assert!(format!("{e:#}").contains("nothing.json"), "{e:#}");
        write_input(dir.path(), 3);
        let cli = Cli::parse_from([
            "x".as_ref(),
            dir.path().as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--cpu-base-clock".as_ref(),
            "0".as_ref(),
        ]);
        assert!(format!("{:#}", run(&cli.args).expect_err("bad option")).contains("base-clock"));
    }
}
