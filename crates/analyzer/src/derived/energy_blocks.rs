//! `activation_energy`'s (domain, model) blocks read back in batches, several side by side.
//!
//! The attribution writes the table by (domain, model), each block its own row groups
//! (`attribution::tables`); a block is found here by its row groups' statistics, so a reader of
//! one decodes no other block's pages, and holds one batch of each block it reads rather than
//! the block (an hour of a busy node: 900 k rows a block). Where a row group's statistics do
//! not name exactly one (domain, model), the blocks are not told apart: [`EnergyBlocks::open`]
//! gives None and the caller reads the table another way, or [`EnergyBlocks::open_any`]'s
//! blocks are every row group, and the caller keeps a block's rows by their domain and model.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::{Array, Float64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

/// Rows a block's reader decodes at a time: a few hundred kB of an id column.
const BATCH_ROWS: usize = 8 * 1024;

/// The row groups of each (domain, model) of one `activation_energy` part.
pub struct EnergyBlocks {
    path: PathBuf,
    metadata: std::sync::Arc<ParquetMetaData>,
    /// None where a row group's statistics do not name one (domain, model) alone.
    groups: Option<HashMap<(String, String), Vec<usize>>>,
}

impl EnergyBlocks {
    /// The part's blocks; None where a row group's statistics do not say it holds one
    /// (domain, model) alone (no statistics, inexact ones, or two keys in one group).
    pub fn open(path: &Path) -> Result<Option<Self>> {
        let b = Self::open_any(path)?;
        Ok(b.groups.is_some().then_some(b))
    }

    /// The part, whether or not its blocks can be told apart: where they cannot, a block's
    /// reader reads every row group, and its caller keeps the rows of its (domain, model).
    pub fn open_any(path: &Path) -> Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("reading the footer of {}", path.display()))?;
        let metadata = b.metadata().clone();
        let schema = metadata.file_metadata().schema_descr();
        let (Some(di), Some(mi)) = (leaf(schema, "domain"), leaf(schema, "model")) else {
            bail!("{} has no domain or model column", path.display());
        };
        let mut groups: Option<HashMap<(String, String), Vec<usize>>> = Some(HashMap::new());
        for (g, rg) in metadata.row_groups().iter().enumerate() {
            if rg.num_rows() == 0 {
                continue;
            }
            let (Some(d), Some(m)) = (
                only_value(rg.column(di).statistics()),
                only_value(rg.column(mi).statistics()),
            ) else {
                groups = None;
                break;
            };
            if let Some(groups) = groups.as_mut() {
                groups.entry((d, m)).or_default().push(g);
            }
        }
        Ok(Self {
            path: path.to_owned(),
            metadata,
            groups,
        })
    }

    /// Whether each (domain, model) is known to be its own row groups: a block's rows are then
    /// its own alone, else every row of the part.
    pub fn blocks_apart(&self) -> bool {
        self.groups.is_some()
    }

    /// A reader of the block of (`domain`, `model`), in its rows' order, of `columns` only
    /// (taken by their index in `columns`; a block with no rows gives none). Where the blocks
    /// are not apart ([`EnergyBlocks::blocks_apart`]), every row of the part.
    pub fn block(&self, domain: &str, model: &str, columns: &[&str]) -> Result<Block> {
        let groups = match &self.groups {
            Some(g) => g
                .get(&(domain.to_owned(), model.to_owned()))
                .cloned()
                .unwrap_or_default(),
            None => (0..self.metadata.num_row_groups()).collect(),
        };
        let file = File::open(&self.path)
            .with_context(|| format!("cannot open {}", self.path.display()))?;
        let options = Default::default();
        let meta = parquet::arrow::arrow_reader::ArrowReaderMetadata::try_new(
            self.metadata.clone(),
            options,
        )
        .with_context(|| format!("reading the schema of {}", self.path.display()))?;
        let b = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta);
        let schema = b.parquet_schema();
        let mut leaves = Vec::with_capacity(columns.len());
        for c in columns {
            let i = leaf(schema, c)
                .with_context(|| format!("{} has no column {c}", self.path.display()))?;
            leaves.push(i);
        }
        let mask = ProjectionMask::leaves(schema, leaves);
        let reader = b
            .with_row_groups(groups)
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .with_context(|| format!("reading {}", self.path.display()))?;
        Ok(Block {
            what: format!("{} ({domain}, {model})", self.path.display()),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            reader,
            batch: None,
            pos: 0,
        })
    }
}

/// The leaf column named `name` (the table's columns are flat).
fn leaf(schema: &parquet::schema::types::SchemaDescriptor, name: &str) -> Option<usize> {
    (0..schema.num_columns()).find(|&i| schema.column(i).name() == name)
}

/// The one value a row group's column holds, by its exact statistics.
fn only_value(s: Option<&Statistics>) -> Option<String> {
    let Some(Statistics::ByteArray(v)) = s else {
        return None;
    };
    let (lo, hi) = (v.min_opt()?, v.max_opt()?);
    if !(v.min_is_exact() && v.max_is_exact()) || lo != hi || v.null_count_opt() != Some(0) {
        return None;
    }
    std::str::from_utf8(lo.data()).ok().map(str::to_owned)
}

/// One block's rows, a batch at a time: the rows not yet taken of the batch at hand.
pub struct Block {
    what: String,
    columns: Vec<String>,
    reader: ParquetRecordBatchReader,
    batch: Option<RecordBatch>,
    pos: usize,
}

impl Block {
    /// How many rows the batch at hand has left, reading the next batch when none: 0 at the
    /// block's end.
    pub fn ready(&mut self) -> Result<usize> {
        loop {
            if let Some(b) = &self.batch {
                if self.pos < b.num_rows() {
                    return Ok(b.num_rows() - self.pos);
                }
            }
            match self.reader.next() {
                None => {
                    self.batch = None;
                    return Ok(0);
                }
                Some(b) => {
                    self.batch = Some(b.with_context(|| format!("reading {}", self.what))?);
                    self.pos = 0;
                }
            }
        }
    }

    /// Where the rows not yet taken start in the batch at hand.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Takes `n` rows of the batch at hand (at most [`Block::ready`]).
    pub fn take(&mut self, n: usize) {
        self.pos += n;
    }

    /// Text column `i` (of the columns asked for) of the batch at hand.
    pub fn strs(&self, i: usize) -> Result<&StringArray> {
        self.column(i)?
            .as_string_opt::<i32>()
            .with_context(|| format!("{}: column {} is not text", self.what, self.columns[i]))
    }

    /// Float column `i` (of the columns asked for) of the batch at hand.
    pub fn f64s(&self, i: usize) -> Result<&Float64Array> {
        self.column(i)?
            .as_primitive_opt::<arrow_array::types::Float64Type>()
            .with_context(|| format!("{}: column {} is not a float", self.what, self.columns[i]))
    }

    /// By name: a projection gives the file's column order, whatever order they were asked in.
    fn column(&self, i: usize) -> Result<&dyn Array> {
        let b = self
            .batch
            .as_ref()
            .with_context(|| format!("{}: no rows at hand", self.what))?;
        let name = &self.columns[i];
        let at = b
            .schema_ref()
            .index_of(name)
            .with_context(|| format!("{}: no column {name} read", self.what))?;
        Ok(b.column(at).as_ref())
    }
}

/// Rows every block has ready at once, reading each on as needed: the length of the next run
/// of rows to take from all of them; Some(0) when all are done, None where one block ended
/// before another (they are not of one length).
pub fn ready_together(blocks: &mut [Block]) -> Result<Option<usize>> {
    let mut n = usize::MAX;
    for b in blocks.iter_mut() {
        n = n.min(b.ready()?);
    }
    Ok(match n {
        usize::MAX => Some(0),
        0 if blocks.iter().any(|b| b.batch.is_some()) => None,
        n => Some(n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::Table;

    /// Columns asked for in another order than the file's are found by name: a projection
    /// gives them in the file's order.
    #[test]
    fn columns_are_read_by_name_in_the_order_asked() {
        let dir = tempfile::tempdir().unwrap();
        let p = crate::tables::tests::part0();
        let mut t = Table::keyed("activation_energy")
            .str("activation_id")
            .str("domain")
            .str("model")
            .f64("energy_j");
        for i in 0..3 {
            t.push_key("r", "h")
                .push_str(&format!("x{i}"))
                .push_str("d")
                .push_str("m")
                .push_f64(Some(f64::from(i)));
        }
        let path = t.write(dir.path(), &p).unwrap();
        let blocks = EnergyBlocks::open(&path).unwrap().unwrap();
        let mut b = blocks
            .block("d", "m", &["energy_j", "activation_id"])
            .unwrap();
        assert_eq!(b.ready().unwrap(), 3);
        assert_eq!(b.f64s(0).unwrap().values(), &[0.0, 1.0, 2.0]);
        assert_eq!(b.strs(1).unwrap().value(2), "x2");
        assert!(b.strs(0).is_err(), "energy_j is not text");
        b.take(3);
        assert_eq!(b.ready().unwrap(), 0);
    }
}
