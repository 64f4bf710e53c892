//! `pws-analyze quality TRACE…`: the measurement-quality report of each trace (`quality`
//! module), as text or `--json`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::progress::Progress;
use crate::quality::interval::IntervalArg;

#[derive(Debug, clap::Args)]
pub struct QualityArgs {
    /// Traces to judge (.pws, perf.data or hwpc-sensor reports).
    #[arg(required = true, value_name = "TRACE")]
    pub traces: Vec<PathBuf>,
    /// The interval the intervals' checks use, as for the tables: `auto` or a duration.
    #[arg(long, default_value = "auto", value_name = "auto|DURATION")]
    pub interval: IntervalArg,
    /// Skip corrupt blocks and report them, instead of stopping at the first one.
    #[arg(long)]
    pub skip_bad_blocks: bool,
    /// Print JSON (an array, one object per trace) instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &QualityArgs) -> Result<ExitCode> {
    let mut all = Vec::new();
    for path in &args.traces {
        let an = crate::analyze::replay_trace(
            path,
            args.interval,
            args.skip_bad_blocks,
            None,
            crate::join::JoinMode::Auto,
            &Progress::hidden().input(path),
        )
        .with_context(|| format!("replaying {}", crate::display(path)))?;
        let q = crate::quality::assess(&an);
        if args.json {
            let mut v = serde_json::to_value(&q).context("the report as JSON")?;
            v["path"] = serde_json::json!(crate::display(path));
            all.push(v);
        } else {
            print!("{}", q.text(&crate::display(path)));
        }
    }
    if args.json {
        println!("{:#}", serde_json::Value::Array(all));
    }
    Ok(ExitCode::SUCCESS)
}
