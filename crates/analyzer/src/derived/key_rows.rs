//! One (domain, model, idle policy)'s rows of `activation_energy`, as `functions` groups them:
//! read from the (domain, model)'s block a batch at a time (`energy_blocks`), with the
//! namespace, action and policy as codes into a list of the names seen ([`Names`]) and the
//! start as three flags (`join::cold_start`). About 50 B a row: polars' scan of the same rows
//! decoded every row of the block and row-encoded the text of the three keys it groups on, and
//! an hour of a busy node's 180 k rows a key were 41 MiB over what the phase held before
//! (`bench/README.md`, session 26).

use std::collections::HashMap;

use anyhow::{Context, Result};
use arrow_array::{Array, StringArray};
use polars::prelude::{
    BooleanChunkedBuilder, ChunkedBuilder, Column, DataFrame, Float64Type, IntoColumn,
    PrimitiveChunkedBuilder, StringChunked, UInt32Type,
};

use super::energy_blocks::EnergyBlocks;
use crate::attribution::Key;
use crate::join::cold_start::Start;

/// The float columns kept, as named in `activation_energy`.
pub const FLOATS: [&str; 4] = ["energy_j", "dynamic_half_width_j", "idle_j", "systematic_j"];

/// The text of the coded columns, each distinct name once.
#[derive(Debug, Default)]
pub struct Names {
    list: Vec<String>,
    index: HashMap<String, u32>,
}

impl Names {
    fn code(&mut self, s: &str) -> u32 {
        if let Some(&c) = self.index.get(s) {
            return c;
        }
        let c = u32::try_from(self.list.len()).expect("fewer than 2³² distinct names");
        self.list.push(s.to_owned());
        self.index.insert(s.to_owned(), c);
        c
    }

    /// Column `c` of `df` (codes) replaced by the names they stand for.
    pub fn decode(&self, df: &mut DataFrame, c: &str) -> Result<()> {
        let codes = df.column(c)?.u32()?.clone();
        let text: StringChunked = codes
            .iter()
            .map(|code| {
                code.and_then(|i| self.list.get(i as usize))
                    .map(String::as_str)
            })
            .collect();
        df.with_column(text.with_name(c.into()).into_column())?;
        Ok(())
    }
}

/// The parts a key's rows are cut into, by function (dealt in turn as first seen): polars'
/// group-by works on one part at a time, so its tables are a part's rather than the key's
/// (about an eighth where no function has most of the rows; an hour of a busy node:
/// `functions`' peak 87 → 77 MiB, `bench/README.md`, session 27).
pub const PARTS: usize = 8;

/// One part's columns, as they are filled.
struct Builders {
    ns: PrimitiveChunkedBuilder<UInt32Type>,
    action: PrimitiveChunkedBuilder<UInt32Type>,
    policy: PrimitiveChunkedBuilder<UInt32Type>,
    cold: BooleanChunkedBuilder,
    prewarmed: BooleanChunkedBuilder,
    warm: BooleanChunkedBuilder,
    floats: [PrimitiveChunkedBuilder<Float64Type>; 4],
    rows: usize,
}

impl Builders {
    fn new() -> Self {
        let code = |name: &str| PrimitiveChunkedBuilder::<UInt32Type>::new(name.into(), 0);
        let flag = |name: &str| BooleanChunkedBuilder::new(name.into(), 0);
        Self {
            ns: code("namespace"),
            action: code("action"),
            policy: code("idle_policy"),
            cold: flag("cold"),
            prewarmed: flag("prewarmed"),
            warm: flag("warm"),
            floats: FLOATS.map(|name| PrimitiveChunkedBuilder::<Float64Type>::new(name.into(), 0)),
            rows: 0,
        }
    }

    fn finish(self) -> Result<DataFrame> {
        let mut cols: Vec<Column> = vec![
            self.ns.finish().into_column(),
            self.action.finish().into_column(),
            self.policy.finish().into_column(),
            self.cold.finish().into_column(),
            self.prewarmed.finish().into_column(),
            self.warm.finish().into_column(),
        ];
        cols.extend(self.floats.map(|b| b.finish().into_column()));
        DataFrame::new(self.rows, cols).context("gathering a key's activation rows")
    }
}

/// The rows of `key`: `namespace`, `action` and `idle_policy` as codes into `names` (null
/// where the text is), `cold` (with `recreated`), `prewarmed` and `warm`, and [`FLOATS`]. In
/// up to [`PARTS`] parts, every row of a function (namespace and action) in the same part, in
/// the order they were written, as a scan filtered on the key gives them; at least one part,
/// empty where the key has no rows.
pub fn of_key(blocks: &EnergyBlocks, key: &Key, names: &mut Names) -> Result<Vec<DataFrame>> {
    let (domain, model, policy) = key;
    let apart = blocks.blocks_apart();
    // The domain and model are read only where the block may hold other keys' rows too.
    let mut columns = vec!["namespace", "action", "idle_policy", "start_type"];
    columns.extend(FLOATS);
    if !apart {
        columns.extend(["domain", "model"]);
    }
    let mut block = blocks.block(domain, model, &columns)?;
    let mut parts: Vec<Builders> = (0..PARTS).map(|_| Builders::new()).collect();
    // Each function's part: the functions in the order first seen, dealt in turn.
    let mut part_of: HashMap<(Option<u32>, Option<u32>), usize> = HashMap::new();
    let policy_code = names.code(policy);
    loop {
        let n = block.ready()?;
        if n == 0 {
            break;
        }
        let at = block.pos();
        let (t_ns, t_action, t_policy, t_start) = (
            block.strs(0)?,
            block.strs(1)?,
            block.strs(2)?,
            block.strs(3)?,
        );
        let fs = [
            block.f64s(4)?,
            block.f64s(5)?,
            block.f64s(6)?,
            block.f64s(7)?,
        ];
        let others = match apart {
            true => None,
            false => Some((block.strs(8)?, block.strs(9)?)),
        };
        // A null never equals the key: polars' filter drops it too.
        let is = |a: &StringArray, r: usize, v: &str| text(a, r) == Some(v);
        for r in at..at + n {
            if !is(t_policy, r, policy)
                || others.is_some_and(|(d, m)| !is(d, r, domain) || !is(m, r, model))
            {
                continue;
            }
            let ns = text(t_ns, r).map(|s| names.code(s));
            let action = text(t_action, r).map(|s| names.code(s));
            let next = part_of.len() % PARTS;
            let b = &mut parts[*part_of.entry((ns, action)).or_insert(next)];
            b.ns.append_option(ns);
            b.action.append_option(action);
            b.policy.append_value(policy_code);
            let start = text(t_start, r).map_or(Start::Unknown, Start::of_label);
            b.cold.append_value(start == Start::Cold);
            b.prewarmed.append_value(start == Start::Prewarmed);
            b.warm.append_value(start == Start::Warm);
            for (f_b, f) in b.floats.iter_mut().zip(&fs) {
                f_b.append_option(f.is_valid(r).then(|| f.value(r)));
            }
            b.rows += 1;
        }
        block.take(n);
    }
    let used = part_of.len().clamp(1, PARTS);
    parts.into_iter().take(used).map(Builders::finish).collect()
}

/// Row `r`'s text; None where it is null.
fn text(a: &StringArray, r: usize) -> Option<&str> {
    a.is_valid(r).then(|| a.value(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::Table;

    /// (domain, model, policy, namespace, action, start, energy) rows of `activation_energy`.
    type Row<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        &'a str,
        &'a str,
        Option<f64>,
    );

    fn part(dir: &std::path::Path, rows: &[Row<'_>], group_per_key: bool) -> EnergyBlocks {
        let mut t = Table::keyed("activation_energy")
            .str("domain")
            .str("model")
            .str("idle_policy")
            .str("namespace")
            .str("action")
            .str("start_type");
        for f in FLOATS {
            t = t.f64(f);
        }
        let p = crate::tables::tests::part0();
        let mut last: Option<(&str, &str)> = None;
        for &(d, m, pol, ns, a, st, e) in rows {
            if group_per_key && last.is_some_and(|l| l != (d, m)) {
                t.end_row_group(dir, &p).unwrap();
            }
            last = Some((d, m));
            t.push_key("r", "h")
                .push_str(d)
                .push_str(m)
                .push_str(pol)
                .push_opt_str(ns)
                .push_str(a)
                .push_str(st)
                .push_f64(e)
                .push_f64(e.map(|e| e / 10.0))
                .push_f64(Some(1.0))
                .push_f64(None);
        }
        EnergyBlocks::open_any(&t.write(dir, &p).unwrap()).unwrap()
    }

    /// What `functions` groups on, row by row: the key's rows only, in their order, with the
    /// text back from its codes, the starts as flags, and nulls kept null.
    #[test]
    fn a_keys_rows_with_codes_and_flags_whether_blocks_are_apart_or_not() {
        let rows: [Row<'_>; 6] = [
            ("package", "a", "even", Some("ns"), "f", "cold", Some(1.0)),
            (
                "package",
                "a",
                "unassigned",
                Some("ns"),
                "f",
                "cold",
                Some(9.0),
            ),
            ("package", "a", "even", None, "g", "warm", None),
            (
                "package",
                "a",
                "even",
                Some("ns"),
                "f",
                "recreated",
                Some(3.0),
            ),
            (
                "package",
                "b",
                "even",
                Some("ns"),
                "f",
                "prewarmed",
                Some(7.0),
            ),
            (
                "package",
                "a",
                "even",
                Some("ns"),
                "g",
                "unknown",
                Some(4.0),
            ),
        ];
        let key: Key = ("package".into(), "a".into(), "even");
        for apart in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            // Apart: (a), (b), (a) in groups of their own; else one group of both models.
            let blocks = part(dir.path(), &rows, apart);
            assert_eq!(blocks.blocks_apart(), apart);
            let mut names = Names::default();
            let parts = of_key(&blocks, &key, &mut names).unwrap();
            // Functions (ns, f), (null, g), (ns, g): a part each, in the order first seen.
            assert_eq!(
                parts.iter().map(DataFrame::height).collect::<Vec<_>>(),
                [2, 1, 1]
            );
            let mut df = parts[0].clone();
            for p in &parts[1..] {
                df.vstack_mut(p).unwrap();
            }
            for c in ["namespace", "action", "idle_policy"] {
                names.decode(&mut df, c).unwrap();
            }
            let text = |c: &str| -> Vec<Option<String>> {
                let s = df.column(c).unwrap().str().unwrap().clone();
                s.iter().map(|v| v.map(str::to_owned)).collect()
            };
            let some = |v: &[&str]| v.iter().map(|s| Some((*s).to_owned())).collect::<Vec<_>>();
            assert_eq!(
                text("action"),
                some(&["f", "f", "g", "g"]),
                "apart: {apart}"
            );
            assert_eq!(
                text("namespace"),
                [
                    Some("ns".to_owned()),
                    Some("ns".to_owned()),
                    None,
                    Some("ns".to_owned())
                ]
            );
            assert_eq!(text("idle_policy"), some(&["even"; 4]));
            let flags = |c: &str| -> Vec<Option<bool>> {
                df.column(c).unwrap().bool().unwrap().iter().collect()
            };
            assert_eq!(
                flags("cold"),
                [Some(true), Some(true), Some(false), Some(false)]
            );
            assert_eq!(
                flags("warm"),
                [Some(false), Some(false), Some(true), Some(false)]
            );
            assert_eq!(flags("prewarmed"), [Some(false); 4]);
            let floats = |c: &str| -> Vec<Option<f64>> {
                df.column(c).unwrap().f64().unwrap().iter().collect()
            };
            assert_eq!(floats("energy_j"), [Some(1.0), Some(3.0), None, Some(4.0)]);
            assert_eq!(floats("dynamic_half_width_j")[3], Some(0.4));
            assert_eq!(floats("systematic_j"), [None; 4]);
        }
    }

    #[test]
    fn labels_name_the_start_kinds() {
        assert_eq!(Start::of_label("cold"), Start::Cold);
        assert_eq!(Start::of_label("recreated"), Start::Cold);
        assert_eq!(Start::of_label("prewarmed"), Start::Prewarmed);
        assert_eq!(Start::of_label("warm"), Start::Warm);
        assert_eq!(Start::of_label("unknown"), Start::Unknown);
        assert_eq!(Start::of_label("Cold"), Start::Unknown);
        // And back: each kind's labels are those `of_label` takes to it.
        assert_eq!(Start::Cold.labels(), ["cold", "recreated"]);
        assert_eq!(Start::Prewarmed.labels(), ["prewarmed"]);
        assert_eq!(Start::Warm.labels(), ["warm"]);
        assert!(Start::Unknown.labels().is_empty());
    }
}
