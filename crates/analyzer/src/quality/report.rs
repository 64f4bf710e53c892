//! The quality report as text, for a person deciding whether the run measured what they want.

use std::fmt::Write;

use super::Quality;

fn opt(v: Option<f64>, digits: usize, unit: &str) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}{unit}"))
}

fn pct(v: Option<f64>) -> String {
    opt(v.map(|x| x * 100.0), 1, " %")
}

impl Quality {
    pub fn text(&self, trace: &str) -> String {
        let mut s = String::new();
        let t = &self.trace;
        let _ = writeln!(s, "== {trace}: run {}, host {}", self.run, self.host);
        let _ = writeln!(s, "verdict     {}", self.verdict.line);
        if let Some(v) = &self.gpu_verdict {
            let _ = writeln!(s, "gpu         {}", v.line);
        }
        let _ = writeln!(
            s,
            "interval    {:.0} ms{} over {:.1} s",
            t.interval_ms,
            if t.interval_auto {
                " (auto)"
            } else {
                " (given)"
            },
            t.seconds
        );
        let _ = writeln!(s, "energy counters");
        if self.counters.is_empty() && self.counter_errors.is_empty() {
            let _ = writeln!(s, "  none in the trace");
        }
        for c in &self.counters {
            let q = &c.counter;
            let _ = writeln!(
                s,
                "  {} ({} {} {}): {} readings every {:.1} ms; moves every {}{} (p99 {}), at {:.0} % of readings",
                q.name,
                q.source,
                q.domain,
                q.package,
                q.readings,
                q.read_period_ms,
                if q.update_period_at_most { "≤ " } else { "" },
                opt(q.update_period_ms, 2, " ms"),
                opt(q.update_period_p99_ms, 2, " ms"),
                100.0 * q.moved_share
            );
            let _ = writeln!(
                s,
                "    unit {:e} J, smallest increment {}; {} wraps, {} resets, {} gaps estimated, {} missing; max plausible power {}",
                q.unit_j,
                opt(q.smallest_increment_j, 6, " J"),
                q.wraps,
                q.resets,
                q.gaps_estimated,
                q.gaps_missing,
                opt(q.max_plausible_w, 1, " W")
            );
            let _ = writeln!(
                s,
                "    intervals: {} measured, {} at 0 W, {} above the plausible maximum, highest {}{}",
                c.intervals_measured,
                c.intervals_zero_w,
                c.intervals_above_plausible,
                opt(c.max_interval_w, 1, " W"),
                if c.interval_too_short { " — the interval is too short for this counter" } else { "" }
            );
        }
        for e in &self.counter_errors {
            let _ = writeln!(s, "  {e}");
        }
        let _ = writeln!(s, "CPUs");
        for c in &self.cpus {
            let _ = writeln!(
                s,
                "  cpu {}: {} samples, {} effective, {} lost records, {} throttled, {} samples per median activation",
                c.cpu,
                c.samples,
                opt(c.sampling_hz, 0, " Hz"),
                c.lost_records,
                c.throttled,
                opt(c.samples_per_activation, 1, "")
            );
        }
        let _ = writeln!(s, "trace");
        let _ = writeln!(
            s,
            "  recorder CPU {}",
            t.recorder_cpu_share
                .map_or(t.recorder_cpu.clone(), |x| format!("{:.2} %", 100.0 * x))
        );
        let _ = writeln!(
            s,
            "  clock sync: {} pairs, uncertainty ≤ {}, wall clock moved {}",
            t.clock_pairs,
            opt(t.clock_uncertainty_max_us, 1, " µs"),
            opt(t.wall_clock_moved_ms, 3, " ms")
        );
        let _ = writeln!(
            s,
            "  live cgroups: max {}, mean {:.1}; median activation {}",
            t.live_cgroups_max,
            t.live_cgroups_mean,
            opt(t.activation_median_ms, 1, " ms")
        );
        let _ = writeln!(
            s,
            "functions   activations  median    < update  resolvable  within {:.0} %  ±uncertainty(median)",
            self.verdict.within_pct
        );
        for f in &self.functions {
            let _ = writeln!(
                s,
                "  {:<20} {:>6}  {:>10}  {:>8}  {:>10}  {:>10}  {:>10}",
                f.function,
                f.activations,
                opt(f.median_ms, 1, " ms"),
                pct(f.shorter_than_update_share),
                pct(f.resolvable_share),
                pct(f.within_share),
                pct(f.median_relative_uncertainty)
            );
        }
        s
    }
}
