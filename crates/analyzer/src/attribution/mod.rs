//! Models fitted and compared per energy counter, and the energy attributed under every model
//! and idle policy: tables `models`, `model_eval`, `attribution`, `activation_energy` and
//! `container_energy` (each function container's keep-alive), which the derived tables read
//! back (`derived`); and the per-cgroup sums the summary's accounting reads.
//!
//! A domain's per-activation energy is summed over its packages (an activation that ran on
//! both sockets of a two-socket server is one row with both parts), so every table counts an
//! activation once per domain.

pub mod activation_energy;
pub mod activations;
pub mod grain;
pub mod keep_alive;
pub mod live_containers;
pub mod per_activation;
pub mod uncertainty;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::Result;

use crate::analyze::{cgroup_name, Analysis, RunArgs};
use crate::derived::rows::Written;
use crate::models::attribute::{self, UNASSIGNED};
use crate::models::dataset::Dataset;
use crate::models::local_linear::LocalLinear;
use crate::models::model::{LinearOffline, Model, ShareModel};
use crate::models::per_function::{Groups, PerFunction};
use crate::replay::cpu::Usage;
use crate::replay::energy_gaps::Status;
use crate::tables::{Partition, Table};

/// `activation_energy`'s row groups, at most: small enough that a (domain, model) read alone
/// decodes little beyond its own rows, large enough to compress (at 64 Ki rows the table was a
/// third larger than at parquet's 1 Mi). Each (domain, model) also starts a new group.
const ACTIVATION_ENERGY_ROW_GROUP: usize = 256 * 1024;

/// `attribution`'s row groups are closed at this encoded size, its floats plain rather than
/// dictionary-encoded: its open row group (16 MiB, and the float dictionaries' hash tables)
/// held ~19 MiB of an hour's attribution peak beside the activations' joules. With float
/// dictionaries, which start afresh in each group, 4 MiB groups made the file 35 % larger;
/// plain, 10 % (an hour of a busy node: 87.7 → 96.5 MB, the phase's peak −11 MiB), and a
/// short trace's a quarter smaller, where the dictionaries cost more than they saved
/// (`bench/README.md`, session 26).
const ATTRIBUTION_ROW_GROUP_BYTES: usize = 4 << 20;

/// (domain, model, idle policy).
pub type Key = (String, String, &'static str);

/// One activation's energy in a domain, summed over the domain's packages.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DomainJoules {
    pub dynamic_j: f64,
    pub idle_j: f64,
    pub complete: bool,
    pub measured: bool,
    /// The square of the 95 % half-width of `dynamic_j` (the packages' parts are independent,
    /// so their squares add); None where it is unknown or the energy incomplete.
    pub half_width_sq: Option<f64>,
    /// The part of the half-width common to every activation (the model's held-out bias and
    /// its static power's uncertainty), J: it does not shrink in a mean over activations.
    pub systematic_j: f64,
}

/// The sums the summary reads besides the written rows.
#[derive(Debug, Default)]
pub struct Attribution {
    /// (domain, model, policy) → joules of cgroups that are not function containers (the
    /// root, daemons, system scopes, the kernel's unknown time).
    pub other: BTreeMap<Key, f64>,
    /// (domain, model, policy) → joules no rule placed.
    pub unassigned: BTreeMap<Key, f64>,
    /// Domain → known joules (measured and estimated intervals).
    pub total: BTreeMap<String, f64>,
    /// How the models' held-out errors were scored (`model_eval.protocol`).
    pub protocol: String,
    pub notes: Vec<String>,
}

/// Fits, compares and attributes; writes `models`, `model_eval`, `attribution` (at the grain
/// of `--attribution`, or not at all), `activation_energy` and `container_energy`, and says
/// where the parts the derived tables read are (`activations` is the caller's).
/// `cells` are the replay's per-package cells, on disk: each counter's dataset reads its
/// packages'. `acts` are the activations (taken out of `an`'s lifecycles). `resolutions`: each
/// counter's (`an.energy`'s, in order; [`uncertainty::Resolution::of_counters`]).
pub fn tables(
    an: &Analysis,
    acts: &activations::Activations,
    cells: crate::replay::PackageCells,
    resolutions: &[uncertainty::Resolution],
    args: &RunArgs,
    p: &Partition,
) -> Result<(Vec<PathBuf>, Attribution, Written)> {
    let (run, host) = (an.run.as_str(), an.host.as_str());
    let ts = |ns: u64| {
        an.clock
            .to_realtime_ns(ns)
            .and_then(|v| i64::try_from(v).ok())
    };
    // The grid's intervals as spans are made where a dataset or the buckets are, not held
    // through the attribution (6 MB for an hour's 10 ms grid); the live containers read the
    // grid's own bounds.
    let live = live_containers::live_containers(an, acts.memory_mb());
    let mut t_models = Table::keyed("models")
        .str("domain")
        .u64("package")
        .str("model")
        .str("source")
        .str("param")
        .f64("value");
    let mut t_eval = Table::keyed("model_eval")
        .str("domain")
        .u64("package")
        .str("model")
        .str("source")
        .str("protocol")
        .u64("fold")
        .u64("intervals")
        .f64("mae_w")
        .f64("mape")
        .f64("rmse_w")
        .str("fit_error");
    let mut t_attr = Table::keyed("attribution")
        .row_group_bytes_of(ATTRIBUTION_ROW_GROUP_BYTES)
        .ts("interval_start")
        .ts("interval_end")
        .str("domain")
        .u64("package")
        .str("cgroup")
        .str("container_id")
        .str("model")
        .str("idle_policy")
        .str("source")
        .bool("estimated")
        .f64("power_w")
        .f64("energy_j")
        .f64("dynamic_j")
        .f64("idle_j");
    let buckets = grain::Buckets::new(args.attribution, &an.grid.spans());
    // A cgroup's name and container id, made once rather than for each of its rows.
    let mut names: rustc_hash::FxHashMap<u64, (String, String)> = Default::default();
    let mut out = Attribution::default();
    // (container, key) → keep-alive joules: summed over a domain's packages, then written.
    let mut keep_alive: BTreeMap<(usize, Key), f64> = BTreeMap::new();
    // FxHash: both are looked up for every attribution row (SipHash was 2 % of an hour).
    let container_of: rustc_hash::FxHashMap<u64, usize> = an
        .life
        .containers
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.cgroup.map(|g| (an.life.cgroups[g].id, i)))
        .collect();
    let is_function = |cg: u64| {
        container_of
            .get(&cg)
            .is_some_and(|&ci| an.is_function_container(ci))
    };
    let groups = Groups::of_analysis(an);
    let protocol = args.comparison.protocol(args.folds);
    let protocol_name = protocol.name();
    out.protocol = protocol_name.clone();
    // Each idle policy once, in the order given (a repeated one would count its joules twice).
    let mut policies = args.idle_policy.clone();
    let mut seen = std::collections::HashSet::new();
    policies.retain(|p| seen.insert(p.as_str()));
    // The packages (of the CPUs the trace replayed) a CPU counter covers: psys the whole
    // machine, the other domains one package. (A GPU's usage is its own: `gpu`.)
    let scope_of = |e: &crate::replay::energy::Energy, cells: &crate::replay::PackageCells| {
        let whole = matches!(e.domain, pws_trace::records::EnergyDomain::Psys);
        let scope: Vec<u32> = cells
            .keys()
            .copied()
            .filter(|&p| whole || p == e.package)
            .collect();
        scope
    };
    let mut t_act = Table::keyed("activation_energy")
        .row_groups_of(ACTIVATION_ENERGY_ROW_GROUP)
        .str("activation_id")
        .str("action")
        .str("namespace")
        .str("start_type")
        .str("domain")
        .str("model")
        .str("idle_policy")
        .str("source")
        .bool("complete")
        .bool("concurrent")
        .f64("energy_j")
        .f64("dynamic_j")
        .f64("idle_j")
        .f64("dynamic_lo_j")
        .f64("dynamic_hi_j")
        .f64("energy_lo_j")
        .f64("energy_hi_j")
        .f64("dynamic_half_width_j")
        .f64("systematic_j");
    let concurrent = |ai: usize| {
        an.joined
            .as_ref()
            .is_some_and(|j| j.usage.concurrent.contains(&ai))
    };
    // By domain, then model, then counter: a (domain, model)'s activation rows are complete
    // once its last counter is done, and are written then, so that only one (domain,
    // model)'s joules are held (all of them were 140 MB of an hour's peak).
    let mut domains: Vec<(String, Vec<usize>)> = Vec::new();
    for (ei, e) in an.energy.iter().enumerate() {
        let d = e.domain.to_string();
        match domains.iter_mut().find(|x| x.0 == d) {
            Some(x) => x.1.push(ei),
            None => domains.push((d, vec![ei])),
        }
    }
    let mut written_keys: std::collections::BTreeSet<Key> = Default::default();
    for (_, group) in &domains {
        let mut ctxs: Vec<CounterCtx<'_>> = Vec::new();
        for &ei in group {
            let e = &an.energy[ei];
            let source = if e.is_measured() {
                "measured"
            } else {
                "simulated"
            };
            let domain = e.domain.to_string();
            let (gpu, ds, act_cells, models, resolution);
            if is_gpu(e) {
                // Attributed on its own update windows (`gpu::Device::grid`), by SM time.
                let g = GpuBasis::new(an, acts, e, args.attribution);
                let sm_cells = an
                    .gpu
                    .devices
                    .get(&e.package)
                    .map(|d| d.usage.cells.clone())
                    .unwrap_or_default();
                let columns = vec![crate::gpu::utilization::SM_BUSY.to_owned()];
                ds = Dataset::from_unsorted(columns, &g.spans, &known(&g.energy), sm_cells)?;
                act_cells = activation_energy::gpu_cells(an, acts, e.package);
                models = gpu_models(an, e.package, &ds, args, &groups);
                resolution = resolutions[ei];
                *out.total.entry(domain.clone()).or_default() += g.energy.total_j();
                gpu = Some(g);
            } else {
                let scope = scope_of(e, &cells);
                let columns = an.rep.columns.clone();
                // One package (every counter but psys on a multi-socket server): its cells, read
                // from disk; several: summed.
                ds = match scope.as_slice() {
                    [one] => Dataset::new(columns, &an.grid.spans(), &known(e), cells[one].iter())?,
                    many => {
                        let mut sum: HashMap<(usize, u64), Usage> = HashMap::new();
                        for c in many.iter().flat_map(|p| cells[p].iter()) {
                            let (i, cg, u) = c?;
                            sum.entry((i, cg)).or_default().add(&u);
                        }
                        // By (interval, cgroup): a hash map's order would make each interval's
                        // total add its cgroups in an order that changes from run to run.
                        let mut sum: Vec<_> =
                            sum.into_iter().map(|((i, cg), u)| (i, cg, u)).collect();
                        sum.sort_unstable_by_key(|c| (c.0, c.1));
                        Dataset::from_unsorted(columns, &an.grid.spans(), &known(e), sum)?
                    }
                };
                act_cells = activation_energy::cells(an, acts, &scope);
                models = cpu_models(an, e, &ds, args, &groups, &mut out.notes);
                resolution = resolutions[ei];
                *out.total.entry(domain.clone()).or_default() += e.total_j();
                gpu = None;
            }
            ctxs.push(CounterCtx {
                e,
                gpu,
                ds,
                act_cells,
                models,
                resolution,
                source,
                domain,
            });
        }
        // Model names in the order of the first counter that has them (SmartWatts may be left
        // out on one package and not another).
        let mut model_names: Vec<String> = Vec::new();
        for c in &ctxs {
            for m in &c.models {
                let n = m.name();
                if !model_names.contains(&n) {
                    model_names.push(n);
                }
            }
        }
        for model_name in &model_names {
            let mut activations = per_activation::PerActivation::new(acts.len());
            for c in ctxs.iter_mut() {
                let CounterCtx {
                    e,
                    gpu,
                    ds,
                    act_cells,
                    models,
                    resolution,
                    source,
                    domain,
                } = c;
                let (e, resolution, source) = (*e, *resolution, *source);
                let Some(m) = models.iter_mut().find(|m| m.name() == *model_name) else {
                    continue;
                };
                let (live, buckets, e_on) = match gpu {
                    Some(g) => (&g.live, &g.buckets, &g.energy),
                    None => (&live, &buckets, e),
                };
                let errs = attribute::score(m.as_mut(), ds, &protocol);
                ds.check()?;
                let name = m.name();
                for fe in &errs {
                    t_eval
                        .push_key(run, host)
                        .push_str(domain)
                        .push_u64(Some(e.package.into()))
                        .push_str(&name)
                        .push_str(source)
                        .push_str(&protocol_name)
                        .push_u64(Some(fe.fold as u64))
                        .push_u64(Some(fe.n as u64))
                        .push_f64(Some(fe.mae_w))
                        .push_f64(Some(fe.mape))
                        .push_f64(Some(fe.rmse_w))
                        .push_opt_str(fe.fit_error.as_deref());
                }
                // The dynamic split, so the bound, is the same under every idle policy. Made
                // before the fit on the whole run (and so also where that fit fails, unread), so
                // the folds' held-out points are not beside that fit's design in their larger
                // form (an hour's attribution peak −3 MiB, `bench/README.md`, session 27).
                let mut unc = uncertainty::Uncertainty::new(errs, resolution);
                let fitted = attribute::fit_whole(m.as_mut(), ds);
                ds.check()?;
                for n in m.notes() {
                    out.notes
                        .push(format!("{domain} {}: {name}: {n}", e.package));
                }
                // No coefficients to attribute with: the model is left out, never given stale ones.
                if let Err(why) = fitted {
                    out.notes.push(format!(
                    "{domain} {}: {name}: not fitted on the whole trace ({why}): left out of the attribution",
                    e.package
                ));
                    continue;
                }
                for (k, v) in m.params().into_iter().chain(unc.params()) {
                    t_models
                        .push_key(run, host)
                        .push_str(domain)
                        .push_u64(Some(e.package.into()))
                        .push_str(&name)
                        .push_str(source)
                        .push_str(&k)
                        .push_f64(Some(v));
                }
                let mut bounds: Vec<Option<uncertainty::Bound>> =
                    uncertainty::exposures(an, ds, m.as_ref(), act_cells)
                        .map(|x| unc.dynamic(&x))
                        .collect();
                // Its held-out points (one per interval) are not read again: not held beside
                // the policies' splits.
                drop(unc);
                act_cells.check()?;
                ds.check()?;
                // The activations' dynamic joules, taken with the first policy's rows (every
                // policy's dynamic rows are the same).
                let mut dynamic: Vec<activation_energy::Dynamic> = Vec::new();
                for (pi, &policy) in policies.iter().enumerate() {
                    // The uncertainty and completeness do not depend on the policy: taken once.
                    let first_policy = pi == 0;
                    let key: Key = (domain.clone(), name.clone(), policy.as_str());
                    let att = attribute::attribute(ds, m.as_ref(), policy, live);
                    // Live containers never count as `other` (they are function containers), so
                    // the rows without their idle energy give both sums.
                    // Added to the key's sum so far, row by row as before, with no key cloned per row.
                    let mut unassigned = out.unassigned.get(&key).copied();
                    let mut other = out.other.get(&key).copied();
                    // One pass over the rows (made as they are read): the sums, each cgroup's
                    // total for its keep-alive, and the table's rows.
                    let mut totals = keep_alive::CgroupTotals::default();
                    let mut shares = att.shares().inspect(|sh| {
                        totals.add(sh);
                        let j = sh.dynamic_j + sh.idle_j;
                        let sum = if sh.cgroup == UNASSIGNED {
                            &mut unassigned
                        } else if !is_function(sh.cgroup) {
                            &mut other
                        } else {
                            return;
                        };
                        *sum.get_or_insert(0.0) += j;
                    });
                    if let Some(buckets) = buckets {
                        let estimated = |i: usize| e_on.status[i] == Status::Estimated;
                        let (shares, emit) = (&mut shares, |r: grain::Row| -> Result<()> {
                            let (a, b) = buckets.span(r.bucket);
                            let (name_cg, cid) = names.entry(r.cgroup).or_insert_with(|| {
                                if r.cgroup == UNASSIGNED {
                                    ("<unassigned>".to_owned(), String::new())
                                } else {
                                    (
                                        cgroup_name(an, r.cgroup),
                                        container_of
                                            .get(&r.cgroup)
                                            .map(|&c| an.life.containers[c].container_id.clone())
                                            .unwrap_or_default(),
                                    )
                                }
                            });
                            let j = r.dynamic_j + r.idle_j;
                            t_attr
                                .push_key(run, host)
                                .push_ts(ts(a))
                                .push_ts(ts(b))
                                .push_str(domain)
                                .push_u64(Some(e.package.into()))
                                .push_str(name_cg)
                                .push_str(cid)
                                .push_str(&name)
                                .push_str(policy.as_str())
                                .push_str(source)
                                .push_bool(Some(r.estimated))
                                .push_f64(Some(j / ((b - a) as f64 / 1e9)))
                                .push_f64(Some(j))
                                .push_f64(Some(r.dynamic_j))
                                .push_f64(Some(r.idle_j));
                            t_attr.flush_if_full(&args.output, p)
                        });
                        grain::rows(buckets, &att, shares, live, policy, estimated, emit)?;
                    }
                    // Whatever the table did not read (or all of it, without a table).
                    shares.for_each(drop);
                    // The rows were made and freed in small pieces beside the activations'
                    // joules: given back, the next policy's do not pile on them (an hour's
                    // attribution peak 130 → 121 MiB, `bench/README.md`, session 25).
                    crate::memory::release_free_heap();
                    for (map, sum) in [(&mut out.unassigned, unassigned), (&mut out.other, other)] {
                        if let Some(sum) = sum {
                            map.insert(key.clone(), sum);
                        }
                    }
                    if first_policy {
                        dynamic = activation_energy::dynamic(an, ds, m.as_ref(), &att, act_cells);
                    }
                    let idle = activation_energy::idle(an, ds, &att, live, act_cells);
                    act_cells.check()?;
                    ds.check()?;
                    let parts = dynamic
                        .iter()
                        .zip(&idle)
                        .enumerate()
                        .filter(|&(ai, _)| acts.container(ai).is_some())
                        .map(|(ai, (d, &idle_j))| {
                            let part = per_activation::Part {
                                dynamic_j: d.dynamic_j,
                                idle_j,
                                complete: d.complete,
                                measured: e.is_measured(),
                                // Read with the first policy only (`shared_too`).
                                bound: if first_policy { bounds[ai] } else { None },
                            };
                            (ai, part)
                        });
                    activations.add(&key, parts, first_policy)?;
                    if first_policy {
                        bounds = Vec::new();
                    }
                    let joules = dynamic.iter().zip(&idle).map(|(d, i)| d.dynamic_j + i);
                    for (ci, k) in
                        keep_alive::per_container(an, totals, &att.idle, live, policy, acts, joules)
                    {
                        *keep_alive.entry((ci, key.clone())).or_default() += k;
                    }
                }
            }
            // This (domain, model): activation by activation, then by idle policy; each
            // (domain, model) is a run of row groups the derived tables read alone
            // (`derived::rows`).
            let mut texts = acts.texts();
            written_keys.extend(activations.keys().cloned());
            activations.for_each_by_block(|ai, (domain, model, policy), j| {
                let a = texts.get(ai)?;
                let bounds = uncertainty::dynamic_bounds(&j);
                t_act
                    .push_key(run, host)
                    .push_str(a.activation_id)
                    .push_str(a.action)
                    .push_str(a.namespace)
                    .push_str(a.start_type)
                    .push_str(domain)
                    .push_str(model)
                    .push_str(policy)
                    .push_str(if j.measured { "measured" } else { "simulated" })
                    .push_bool(Some(j.complete))
                    .push_bool(Some(concurrent(ai)))
                    .push_f64(Some(j.dynamic_j + j.idle_j))
                    .push_f64(Some(j.dynamic_j))
                    .push_f64(Some(j.idle_j))
                    .push_f64(bounds.map(|b| b.0))
                    .push_f64(bounds.map(|b| b.1))
                    .push_f64(bounds.map(|b| b.0 + j.idle_j))
                    .push_f64(bounds.map(|b| b.1 + j.idle_j))
                    .push_f64(j.half_width_sq.map(f64::sqrt))
                    .push_f64(Some(j.systematic_j));
                t_act.flush_if_full(&args.output, p)
            })?;
            // Each (domain, model) its own row groups: a derived table reading one decodes no
            // neighbour's rows, and its rows leave memory before the next model is attributed
            // (an hour's attribution phase 150 → 141 MiB, the file 0.2 % larger).
            t_act.end_row_group(&args.output, p)?;
            // The model's joules, splits and fits were freed in small pieces; given back, the
            // next model's do not pile on them (an hour's attribution: its later models' peaks
            // 135 → 130 MiB).
            crate::memory::release_free_heap();
        }
    }
    written_keys.extend(keep_alive.keys().map(|(_, k)| k.clone()));
    let keys: Vec<Key> = written_keys.into_iter().collect();
    let mut t_keep = Table::keyed("container_energy")
        .str("container_id")
        .str("cgroup")
        .str("namespace")
        .str("action")
        .str("domain")
        .str("model")
        .str("idle_policy")
        .f64("keep_alive_j");
    for ((ci, (domain, model, policy)), j) in &keep_alive {
        let c = &an.life.containers[*ci];
        t_keep
            .push_key(run, host)
            .push_str(&c.container_id)
            .push_str(c.cgroup.map_or("", |g| an.life.cgroups[g].path.as_str()))
            .push_str(&c.namespace)
            .push_str(&c.action)
            .push_str(domain)
            .push_str(model)
            .push_str(policy)
            .push_f64(Some(*j));
    }
    let o = &args.output;
    let written = Written {
        model_eval: t_eval.write(o, p)?,
        activation_energy: t_act.write(o, p)?,
        container_energy: t_keep.write(o, p)?,
        keys,
        ..Written::default()
    };
    let mut files = vec![t_models.write(o, p)?, written.model_eval.clone()];
    if buckets.is_some() {
        files.push(t_attr.write(o, p)?);
    }
    files.push(written.activation_energy.clone());
    files.push(written.container_energy.clone());
    Ok((files, out, written))
}

/// Each interval's energy as the models take it: joules (None where missing), and whether it
/// is fully measured.
fn known(e: &crate::replay::energy::Energy) -> Vec<(Option<f64>, bool)> {
    (0..e.joules.len())
        .map(|i| (e.known(i), e.status[i] == Status::Measured))
        .collect()
}

pub(crate) fn is_gpu(e: &crate::replay::energy::Energy) -> bool {
    e.domain == pws_trace::records::EnergyDomain::Gpu
}

/// A CPU counter's models: the share models, linear-offline, per-function, local-linear,
/// SmartWatts where it estimated anything, and a synthetic trace's truth.
fn cpu_models(
    an: &Analysis,
    e: &crate::replay::energy::Energy,
    ds: &Dataset,
    args: &RunArgs,
    groups: &Groups,
    notes: &mut Vec<String>,
) -> Vec<Box<dyn Model>> {
    let domain = e.domain.to_string();
    let ratio = ShareModel::counter_ratio(ds, &args.ratio_counter);
    if let Some(why) = &ratio.fallback {
        notes.push(format!("{domain} {}: counter-ratio: {why}", e.package));
    }
    let mut models: Vec<Box<dyn Model>> = vec![
        Box::new(ShareModel::cpu_share()),
        Box::new(ratio),
        Box::new(LinearOffline::new(ds, args.ridge, args.features.as_deref())),
        Box::new(PerFunction::new(
            ds,
            groups.clone(),
            args.features.as_deref(),
            args.comparison.per_function_prior,
        )),
        Box::new(LocalLinear::new(
            ds,
            args.comparison.local_window,
            args.features.as_deref(),
        )),
    ];
    let mut sw = crate::models::smartwatts_model::SmartWattsModel::for_input(
        &args.smartwatts,
        an.sensor_ticks.as_ref(),
        e.domain,
    );
    if let Err(why) = sw.fit(ds, &[]) {
        notes.push(format!("{domain} {}: smartwatts: {why}", e.package));
    }
    if let Some(why) = &sw.note {
        notes.push(format!("{domain} {}: {why}", e.package));
    }
    // Without a single estimate it would only show up as a model attributing nothing.
    if sw.estimated() {
        models.push(Box::new(sw));
    }
    if let Some(t) = crate::models::truth::Truth::new(&an.truth, ds) {
        models.push(Box::new(t));
    }
    models
}

/// A GPU's models: `sm-share` (its SM-busy time is all its usage says), and a synthetic
/// trace's truth.
fn gpu_models(
    an: &Analysis,
    device: u32,
    ds: &Dataset,
    args: &RunArgs,
    groups: &Groups,
) -> Vec<Box<dyn Model>> {
    let mut models: Vec<Box<dyn Model>> = vec![
        Box::new(ShareModel::sm_share()),
        Box::new(PerFunction::new(
            ds,
            groups.clone(),
            None,
            args.comparison.per_function_prior,
        )),
    ];
    if let Some(t) = crate::models::gpu_truth::GpuTruth::new(&an.truth, device) {
        models.push(Box::new(t));
    }
    models
}

/// What a GPU's counter is attributed on: its update windows (`gpu::Device::grid`), its
/// energy over them, the containers that used it, and the attribution table's buckets of them.
struct GpuBasis {
    spans: Vec<(u64, u64)>,
    energy: crate::replay::energy::Energy,
    live: crate::models::attribute::Live<'static>,
    buckets: Option<grain::Buckets>,
}

impl GpuBasis {
    fn new(
        an: &Analysis,
        acts: &activations::Activations,
        e: &crate::replay::energy::Energy,
        grain: grain::Grain,
    ) -> Self {
        let grid = an.gpu.devices.get(&e.package).map_or(&an.grid, |d| &d.grid);
        let spans = grid.spans();
        let energy = e
            .series(&an.l.energy)
            .map_or_else(|| e.clone(), |s| crate::replay::energy::one(s, grid));
        Self {
            live: live_containers::gpu_containers(an, acts.memory_mb(), &spans, e.package),
            buckets: grain::Buckets::new(grain, &spans),
            spans,
            energy,
        }
    }
}

/// One energy counter as its models need it, made once per counter.
struct CounterCtx<'a> {
    e: &'a crate::replay::energy::Energy,
    /// A GPU's update windows and what goes with them; None for a CPU counter (the grid's).
    gpu: Option<GpuBasis>,
    ds: Dataset,
    act_cells: activation_energy::ActivationCells<'a>,
    models: Vec<Box<dyn Model>>,
    resolution: uncertainty::Resolution,
    source: &'static str,
    domain: String,
}
