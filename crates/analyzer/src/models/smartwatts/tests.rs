//! The formula's behaviour tick by tick, on hand-made ticks.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::config::Scope;
use super::engine::PENDING_TICKS;
use super::formula::{FormulaId, Skip};
use super::*;

fn events(pairs: &[(&str, i64)]) -> Events {
    pairs.iter().map(|&(k, v)| (Arc::from(k), v)).collect()
}

fn core(cycles: i64, instr: i64) -> Events {
    events(&[("CYCLES", cycles), ("INSTRUCTIONS", instr)])
}

/// A tick of socket 0: `targets` as (name, per-CPU (cycles, instructions)), RAPL PKG/DRAM in J,
/// and optionally one CPU's APERF/MPERF.
fn tick(ts: i64, targets: &[(&str, &[(i64, i64)])], pkg: f64, msr: Option<(i64, i64)>) -> Tick {
    let global = GlobalSample {
        rapl_joules: BTreeMap::from([
            ("RAPL_ENERGY_PKG".to_string(), pkg),
            ("RAPL_ENERGY_DRAM".to_string(), pkg / 10.0),
        ]),
        msr: msr
            .map(|(a, m)| vec![events(&[("APERF", a), ("MPERF", m), ("TSC", m)])])
            .unwrap_or_default(),
    };
    let targets = targets
        .iter()
        .map(|(name, cpus)| TargetSample {
            target: Arc::from(*name),
            cpus: cpus.iter().map(|&(c, i)| core(c, i)).collect(),
        })
        .collect();
    Tick {
        timestamp_ms: ts,
        sensor: "s".into(),
        sockets: BTreeMap::from([(
            0,
            SocketTick {
                global: Some(global),
                targets,
            },
        )]),
    }
}

/// Power of the hidden machine: 10 W idle plus 20 W per 10⁹ cycles.
fn machine(k: i64) -> (i64, i64, f64) {
    let a = 300_000_000 + (k * 37 % 11) * 50_000_000;
    let b = 200_000_000 + (k * 53 % 7) * 60_000_000;
    let watts = 10.0 + 20.0 * (a + b) as f64 / 1e9;
    (a, b, watts)
}

fn config() -> SmartWattsConfig {
    SmartWattsConfig {
        learn_min_samples_required: 3,
        learn_history_window_size: 8,
        learn_error_window_size: 4,
        ..SmartWattsConfig::default()
    }
}

/// Feed `n` ticks of two targets (1.8× more instructions per cycle for the second) and
/// flush: every tick's outcomes, CPU scope only.
fn run(n: i64, cfg: SmartWattsConfig) -> Vec<Outcome> {
    let mut sw = SmartWatts::new(cfg).expect("valid config");
    let mut out = Vec::new();
    for k in 0..n {
        let (a, b, w) = machine(k);
        let t = tick(
            1000 * k,
            &[("web", &[(a, a)]), ("db", &[(b, 2 * b)])],
            w, // joules over the default 1 s period: watts
            Some((21, 21)),
        );
        out.extend(sw.push(t));
    }
    out.extend(sw.flush());
    out.retain(|o| o.scope == Scope::Cpu);
    out
}

fn power(o: &Outcome, target: &str) -> Option<f64> {
    o.estimates
        .iter()
        .find(|e| &*e.target == target)
        .map(|e| e.power_w)
}

#[test]
fn ticks_wait_for_five_later_ones_and_flush_releases_them() {
    let mut sw = SmartWatts::new(config()).expect("valid config");
    for k in 0..=PENDING_TICKS as i64 {
        let out = sw.push(tick(k, &[("web", &[(1, 1)])], 5.0, None));
        // Nothing until a sixth tick is pending; then the oldest, for both scopes.
        if k < PENDING_TICKS as i64 {
            assert!(out.is_empty(), "tick {k}");
        } else {
            let ts: Vec<(i64, Scope)> = out.iter().map(|o| (o.timestamp_ms, o.scope)).collect();
            assert_eq!(ts, [(0, Scope::Cpu), (0, Scope::Dram)]);
        }
    }
    let rest = sw.flush();
    assert_eq!(rest.len(), 2 * PENDING_TICKS);
    assert_eq!(rest[0].timestamp_ms, 1);
    assert!(sw.flush().is_empty());
}

#[test]
fn pieces_of_a_tick_merge_and_a_later_piece_replaces_a_target() {
    let mut sw = SmartWatts::new(config()).expect("valid config");
    let only_global = tick(0, &[], 7.0, None);
    let mut piece = tick(0, &[("web", &[(1, 1)])], 0.0, None);
    piece.sockets.get_mut(&0).expect("socket").global = None;
    let mut again = tick(0, &[("web", &[(5, 5)])], 0.0, None);
    again.sockets.get_mut(&0).expect("socket").global = None;
    sw.push(only_global);
    sw.push(piece);
    sw.push(again);
    let out = sw.flush();
    let cpu = out.iter().find(|o| o.scope == Scope::Cpu).expect("cpu");
    assert_eq!(power(cpu, "rapl"), Some(7.0));
    // One target, not two: the second `web` piece replaced the first.
    assert_eq!(cpu.estimates.len(), 1);
}

#[test]
fn rapl_is_energy_over_the_configured_period() {
    let cfg = SmartWattsConfig {
        sensor_reports_frequency: 500,
        ..config()
    };
    let mut sw = SmartWatts::new(cfg).expect("valid config");
    sw.push(tick(0, &[("web", &[(1, 1)])], 3.0, None));
    let out = sw.flush();
    assert_eq!(power(&out[0], "rapl"), Some(6.0));
    assert_eq!(power(&out[1], "rapl"), Some(0.6));
    assert_eq!(
        out[0].estimates[0].formula,
        FormulaId::Rapl(Arc::from("RAPL_ENERGY_PKG"))
    );
}

#[test]
fn no_target_no_estimate_and_no_global_is_skipped() {
    let mut sw = SmartWatts::new(config()).expect("valid config");
    sw.push(tick(0, &[], 3.0, None));
    let mut no_global = tick(1, &[("web", &[(1, 1)])], 3.0, None);
    no_global.sockets.get_mut(&0).expect("socket").global = None;
    sw.push(no_global);
    let out = sw.flush();
    assert!(out[..2]
        .iter()
        .all(|o| o.estimates.is_empty() && o.skipped.is_none()));
    assert!(out[2..]
        .iter()
        .all(|o| o.estimates.is_empty() && o.skipped == Some(Skip::MissingGlobal)));
}

#[test]
fn learns_after_min_samples_then_splits_the_global_estimate() {
    let out = run(40, config());
    // Three samples are needed: the first three ticks have only the RAPL reference.
    for o in &out[..3] {
        assert!(power(o, "rapl").is_some() && power(o, "global").is_none());
    }
    let o = &out[3];
    let global = power(o, "global").expect("a model after 3 samples");
    let (web, db) = (power(o, "web").expect("web"), power(o, "db").expect("db"));
    let ratios: f64 = o.estimates[2..].iter().map(|e| e.ratio).sum();
    assert!((ratios - 1.0).abs() < 1e-12, "ratios add up to {ratios}");
    assert!((web + db - global).abs() < 1e-9 * global);
    assert_eq!(
        o.estimates[1].formula,
        FormulaId::Model {
            layer_mhz: 2100,
            model_id: 1
        }
    );
    // Late in the run the window is full: an intercept is fitted and the error is small.
    let last = out.last().expect("outcomes");
    let f = last.formula.as_ref().expect("formula report");
    assert_eq!(f.samples, 8);
    assert!(
        f.intercept > 0.0 && f.intercept < 400.0,
        "intercept {}",
        f.intercept
    );
    let rapl = power(last, "rapl").expect("rapl");
    assert!((power(last, "global").expect("global") - rapl).abs() < 0.05 * rapl);
}

#[test]
fn large_errors_trigger_a_refit_and_a_new_model_id() {
    let out = run(40, config());
    let ids: Vec<u32> = out
        .iter()
        .filter_map(|o| o.formula.as_ref().map(|f| f.model_id))
        .collect();
    // Before the window is full the intercept is forced to 0 and the 10 W idle power makes
    // errors above 2 W: the layer relearns; once it fits an intercept it settles.
    assert!(ids.windows(2).all(|w| w[0] <= w[1]));
    assert!(*ids.last().expect("ids") > 1, "model ids {ids:?}");
    let tail = &ids[ids.len() - 10..];
    assert!(
        tail.iter().all(|&i| i == tail[0]),
        "still relearning: {tail:?}"
    );
}

#[test]
fn tdp_bounds_the_intercept() {
    // A 5 W TDP refuses every model that needs the 10 W idle power as intercept.
    let cfg = SmartWattsConfig {
        cpu_tdp: 5,
        ..config()
    };
    let out = run(40, cfg);
    let last = out.last().expect("outcomes");
    let f = last.formula.as_ref().expect("formula report");
    assert!(f.intercept < 5.0);
}

#[test]
fn layers_come_from_aperf_mperf_or_the_base_frequency() {
    let mut sw = SmartWatts::new(config()).expect("valid config");
    let freqs = [(30, 21), (21, 21), (0, 0)];
    for (k, &(a, m)) in freqs.iter().enumerate() {
        sw.push(tick(k as i64, &[("web", &[(1, 1)])], 3.0, Some((a, m))));
    }
    sw.push(tick(3, &[("web", &[(1, 1)])], 3.0, None));
    let out: Vec<Outcome> = sw
        .flush()
        .into_iter()
        .filter(|o| o.scope == Scope::Cpu)
        .collect();
    assert!(out.iter().all(|o| power(o, "rapl") == Some(3.0)));
    assert_eq!(out[2].skipped, Some(Skip::InvalidPkgFrequency));
    for i in [0, 1, 3] {
        assert_eq!(out[i].skipped, None);
    }
    let layers = |sw: &SmartWatts| -> Vec<(u32, usize)> {
        sw.formulas()
            .filter(|(_, _, f)| f.scope == Scope::Cpu)
            .flat_map(|(_, _, f)| f.layers())
            .filter(|l| l.samples() > 0)
            .map(|l| (l.frequency_mhz, l.samples()))
            .collect()
    };
    // 2100·30/21 = 3000 MHz; 2100 twice (from MSR, then without it); MPERF 0 stores nothing.
    assert_eq!(layers(&sw), [(2100, 2), (3000, 1)]);
}

#[test]
fn missing_rapl_event_and_mismatched_events_skip_the_tick() {
    let mut sw = SmartWatts::new(config()).expect("valid config");
    let mut t = tick(0, &[("web", &[(1, 1)])], 3.0, None);
    let g = t.sockets.get_mut(&0).and_then(|s| s.global.as_mut());
    g.expect("global").rapl_joules.remove("RAPL_ENERGY_DRAM");
    sw.push(t);
    let mut t = tick(1, &[("web", &[(1, 1)]), ("db", &[(1, 1)])], 3.0, None);
    let s = t.sockets.get_mut(&0).expect("socket");
    s.targets[1].cpus[0] = events(&[("CYCLES", 1)]);
    sw.push(t);
    let out = sw.flush();
    assert_eq!(out[0].skipped, None);
    assert_eq!(
        out[1].skipped,
        Some(Skip::MissingRaplEvent("RAPL_ENERGY_DRAM".into()))
    );
    assert_eq!(
        out[2].skipped,
        Some(Skip::EventsMismatch {
            target: "db".into()
        })
    );
}

#[test]
fn disabled_scopes_and_bad_configs() {
    let cfg = SmartWattsConfig {
        disable_dram_formula: true,
        ..config()
    };
    let mut sw = SmartWatts::new(cfg).expect("valid config");
    sw.push(tick(0, &[("web", &[(1, 1)])], 3.0, None));
    assert!(sw.flush().iter().all(|o| o.scope == Scope::Cpu));
    for bad in [
        SmartWattsConfig {
            disable_cpu_formula: true,
            disable_dram_formula: true,
            ..config()
        },
        SmartWattsConfig {
            cpu_base_clock: 0,
            ..config()
        },
        SmartWattsConfig {
            sensor_reports_frequency: 0,
            ..config()
        },
        SmartWattsConfig {
            learn_error_window_size: 0,
            ..config()
        },
        SmartWattsConfig {
            cpu_error_threshold: -1.0,
            ..config()
        },
    ] {
        assert!(SmartWatts::new(bad).is_err());
    }
}
