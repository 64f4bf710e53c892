//! Routing ticks to formulas. smartwatts runs one formula actor per (scope, sensor, socket);
//! each keeps the ticks it received in arrival order and estimates the oldest only once more
//! than five are pending, so that late reports of a tick can still join it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use super::config::{Scope, SmartWattsConfig};
use super::formula::{Features, Formula, Outcome};
use super::tick::{SocketTick, Tick};

/// Ticks smartwatts 2.4.1 holds back per socket before estimating the oldest.
pub const PENDING_TICKS: usize = 5;

/// The SmartWatts estimator over any number of sensors and sockets.
#[derive(Debug)]
pub struct SmartWatts {
    config: SmartWattsConfig,
    /// By sensor, then socket (looked up by `&str`: no allocation per tick).
    sockets: BTreeMap<Arc<str>, BTreeMap<u32, SocketState>>,
}

#[derive(Debug)]
struct SocketState {
    /// Ticks received and not yet estimated, in arrival order of their first piece.
    pending: VecDeque<(i64, SocketTick)>,
    formulas: Vec<Formula>,
}

impl SmartWatts {
    pub fn new(config: SmartWattsConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(SmartWatts {
            config,
            sockets: BTreeMap::new(),
        })
    }

    /// Take a tick, or a piece of one, and return what the formulas estimated from the ticks
    /// it pushed out of the pending window.
    pub fn push(&mut self, tick: Tick) -> Vec<Outcome> {
        let mut out = Vec::new();
        let name = match self.sockets.get_key_value(&*tick.sensor) {
            Some((k, _)) => k.clone(),
            None => {
                self.sockets.insert(tick.sensor.clone(), BTreeMap::new());
                tick.sensor.clone()
            }
        };
        let Some(sensor) = self.sockets.get_mut(&*name) else {
            return out;
        };
        for (socket, piece) in tick.sockets {
            let config = &self.config;
            let state = sensor.entry(socket).or_insert_with(|| SocketState {
                pending: VecDeque::new(),
                formulas: Scope::ALL
                    .into_iter()
                    .filter(|&s| config.enabled(s))
                    .map(|s| Formula::new(s, config))
                    .collect(),
            });
            match state
                .pending
                .iter_mut()
                .find(|(ts, _)| *ts == tick.timestamp_ms)
            {
                Some((_, t)) => t.merge(piece),
                None => state.pending.push_back((tick.timestamp_ms, piece)),
            }
            if state.pending.len() > PENDING_TICKS {
                if let Some((ts, t)) = state.pending.pop_front() {
                    process(config, state, &name, socket, ts, &t, &mut out);
                }
            }
        }
        out
    }

    /// Estimate the ticks still pending. smartwatts 2.4.1 never does: the last five ticks
    /// of its input stay without estimates.
    pub fn flush(&mut self) -> Vec<Outcome> {
        let mut out = Vec::new();
        for (sensor, sockets) in &mut self.sockets {
            for (socket, state) in sockets {
                while let Some((ts, t)) = state.pending.pop_front() {
                    process(&self.config, state, sensor, *socket, ts, &t, &mut out);
                }
            }
        }
        out
    }

    /// Formulas created so far, by (sensor, socket).
    pub fn formulas(&self) -> impl Iterator<Item = (&str, u32, &Formula)> {
        self.sockets.iter().flat_map(|(sensor, sockets)| {
            sockets.iter().flat_map(move |(socket, st)| {
                st.formulas.iter().map(move |f| (&**sensor, *socket, f))
            })
        })
    }
}

fn process(
    config: &SmartWattsConfig,
    state: &mut SocketState,
    sensor: &Arc<str>,
    socket: u32,
    ts: i64,
    tick: &SocketTick,
    out: &mut Vec<Outcome>,
) {
    let features = Features::of(&tick.targets);
    for formula in &mut state.formulas {
        let mut o = Outcome {
            timestamp_ms: ts,
            sensor: sensor.clone(),
            socket,
            scope: formula.scope,
            estimates: Vec::new(),
            formula: None,
            skipped: None,
        };
        formula.process(config, tick, &features, &mut o);
        out.push(o);
    }
}
