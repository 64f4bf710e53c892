//! Output tables: typed columns built row by row, written as Parquet (zstd) in a hive-style
//! layout, `<out>/<table>/run=<run>/host=<host>/<part>.parquet`, so that many traces form one
//! dataset DuckDB, pandas and polars read in one query.
//!
//! Every table carries `run` and `host` as real columns too (not only in the path), so a file
//! read alone still says where it came from. Times are UTC timestamps with nanosecond precision.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::builder::{
    BooleanBuilder, Float64Builder, StringBuilder, TimestampNanosecondBuilder, UInt64Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

/// Version of the table schemas (documented in `crates/analyzer/TABLES.md`), stored in every
/// file's metadata.
pub const SCHEMA_VERSION: &str = "3";

enum Col {
    U64(UInt64Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    Bool(BooleanBuilder),
    Ts(TimestampNanosecondBuilder),
}

/// Rows a table holds before [`Table::flush_if_full`] hands them to the Parquet writer. The
/// file does not depend on it (the writer cuts pages by size and row groups by rows) while no
/// row group reaches [`ROW_GROUP_BYTES`] (or its table's own, [`Table::row_group_bytes_of`]:
/// past it, a group closes at the next flush), only what is held: the builders, and the batch made of them. At 64 Ki rows the tables open
/// during the attribution held ~25 MiB of an hour's peak (`bench/README.md`, session 17).
const FLUSH_ROWS: usize = 8 * 1024;

/// The most a table's open row group holds, encoded and compressed, before it is closed short
/// of its rows (checked as each batch is written), unless the table sets its own
/// ([`Table::row_group_bytes_of`]: `attribution` and `activation_comparison` close theirs at
/// 4 MiB). `activation_comparison` held its 904 k rows of an hour's trace in one 62 MB row
/// group until the file was finished (`bench/README.md`, session 22); the narrower tables'
/// million-row groups stay under it, so their files are the same.
const ROW_GROUP_BYTES: usize = 16 << 20;

/// A table under construction. Columns are declared first; each row then gives every column
/// once, in order, through the typed `push_*` calls. Tables that grow with the trace (one row
/// per interval and cgroup) call [`Table::flush_if_full`] as they go, so their rows are in the
/// Parquet writer, encoded and compressed, rather than in memory as builders.
pub struct Table {
    pub name: &'static str,
    fields: Vec<Field>,
    cols: Vec<Col>,
    next: usize,
    rows: usize,
    /// The open file, once rows were flushed: written as `<part>.parquet.partial` and renamed
    /// when complete, so a run that fails half-way leaves no torn file that a
    /// `read_parquet('…/*.parquet')` over the dataset would trip on.
    sink: Option<(ArrowWriter<std::fs::File>, PathBuf)>,
    /// Rows per Parquet row group.
    row_group_rows: usize,
    /// Encoded bytes at which an open row group is closed early ([`ROW_GROUP_BYTES`]).
    row_group_bytes: usize,
    /// Dictionary-encode the float columns (`Table::float_dictionaries`).
    float_dictionaries: bool,
}

impl Drop for Table {
    fn drop(&mut self) {
        // Dropped without `write` (an error elsewhere): the partial file goes too.
        if let Some((w, partial)) = self.sink.take() {
            drop(w);
            let _ = std::fs::remove_file(partial);
        }
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("rows", &self.rows)
            .finish()
    }
}

impl Table {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            fields: Vec::new(),
            cols: Vec::new(),
            next: 0,
            rows: 0,
            sink: None,
            row_group_rows: parquet::file::properties::DEFAULT_MAX_ROW_GROUP_SIZE,
            row_group_bytes: ROW_GROUP_BYTES,
            float_dictionaries: false,
        }
    }

    /// Float columns dictionary-encoded, as text and integer columns always are: for tables
    /// whose floats repeat (a cgroup's idle share, zeros). Elsewhere a float column's values are
    /// nearly all distinct, and its dictionary only held ~1 MB of values and their hash table
    /// per column in memory until the writer gave up on it (an hour's `activation_energy` was
    /// 23 % smaller without; `attribution` 7 % larger, but its memory is worth more:
    /// `attribution::ATTRIBUTION_ROW_GROUP_BYTES`).
    pub fn float_dictionaries(mut self) -> Self {
        self.float_dictionaries = true;
        self
    }

    /// Row groups of at most `rows` rows (parquet's default: 1 Mi): smaller ones let a reader
    /// that filters on a column the rows are written in order of skip more of the file.
    pub fn row_groups_of(mut self, rows: usize) -> Self {
        self.row_group_rows = rows;
        self
    }

    /// Row groups closed once they hold `bytes` encoded rather than [`ROW_GROUP_BYTES`].
    pub fn row_group_bytes_of(mut self, bytes: usize) -> Self {
        self.row_group_bytes = bytes;
        self
    }

    /// A table whose every row starts with the `run` and `host` it comes from.
    pub fn keyed(name: &'static str) -> Self {
        Self::new(name).str("run").str("host")
    }

    /// The `run` and `host` of a row of a [`Table::keyed`] table.
    pub fn push_key(&mut self, run: &str, host: &str) -> &mut Self {
        self.push_str(run).push_str(host)
    }

    fn declare(mut self, name: &str, ty: DataType, col: Col) -> Self {
        self.fields.push(Field::new(name, ty, true));
        self.cols.push(col);
        self
    }
    pub fn u64(self, name: &str) -> Self {
        self.declare(name, DataType::UInt64, Col::U64(UInt64Builder::new()))
    }
    pub fn f64(self, name: &str) -> Self {
        self.declare(name, DataType::Float64, Col::F64(Float64Builder::new()))
    }
    pub fn str(self, name: &str) -> Self {
        self.declare(name, DataType::Utf8, Col::Str(StringBuilder::new()))
    }
    pub fn bool(self, name: &str) -> Self {
        self.declare(name, DataType::Boolean, Col::Bool(BooleanBuilder::new()))
    }
    pub fn ts(self, name: &str) -> Self {
        self.declare(
            name,
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Col::Ts(TimestampNanosecondBuilder::new().with_timezone("UTC")),
        )
    }

    fn col(&mut self) -> &mut Col {
        let i = self.next;
        self.next += 1;
        if self.next == self.cols.len() {
            self.next = 0;
            self.rows += 1;
        }
        &mut self.cols[i]
    }

    pub fn push_u64(&mut self, v: Option<u64>) -> &mut Self {
        match self.col() {
            Col::U64(b) => b.append_option(v),
            _ => panic!("column type mismatch (u64)"),
        }
        self
    }
    pub fn push_f64(&mut self, v: Option<f64>) -> &mut Self {
        match self.col() {
            Col::F64(b) => b.append_option(v.filter(|x| x.is_finite())),
            _ => panic!("column type mismatch (f64)"),
        }
        self
    }
    pub fn push_str(&mut self, v: &str) -> &mut Self {
        match self.col() {
            Col::Str(b) => b.append_value(v),
            _ => panic!("column type mismatch (str)"),
        }
        self
    }
    /// A string that may be absent (null).
    pub fn push_opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match self.col() {
            Col::Str(b) => b.append_option(v),
            _ => panic!("column type mismatch (str)"),
        }
        self
    }
    pub fn push_bool(&mut self, v: Option<bool>) -> &mut Self {
        match self.col() {
            Col::Bool(b) => b.append_option(v),
            _ => panic!("column type mismatch (bool)"),
        }
        self
    }
    /// A UTC instant in ns since the epoch.
    pub fn push_ts(&mut self, v: Option<i64>) -> &mut Self {
        match self.col() {
            Col::Ts(b) => b.append_option(v),
            _ => panic!("column type mismatch (timestamp)"),
        }
        self
    }

    /// The rows so far as a batch, with the partition's labels as constant columns at the end;
    /// the builders are left empty.
    fn take_batch(&mut self, p: &Partition) -> Result<RecordBatch> {
        assert_eq!(
            self.next, 0,
            "table {}: a row was left incomplete",
            self.name
        );
        let rows = std::mem::take(&mut self.rows);
        let mut arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Col::U64(b) => Arc::new(b.finish()),
                    Col::F64(b) => Arc::new(b.finish()),
                    Col::Str(b) => Arc::new(b.finish()),
                    Col::Bool(b) => Arc::new(b.finish()),
                    Col::Ts(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let mut fields = self.fields.clone();
        for (name, v) in &p.labels {
            fields.push(Field::new(name, DataType::Utf8, true));
            let mut b =
                StringBuilder::with_capacity(rows, rows * v.as_ref().map_or(0, |v| v.len()));
            for _ in 0..rows {
                b.append_option(v.as_deref());
            }
            arrays.push(Arc::new(b.finish()));
        }
        let schema = Arc::new(Schema::new(fields));
        RecordBatch::try_new(schema, arrays).context("building a record batch")
    }

    /// Writes `batch` to the table's file under `out` in the partition of (`run`, `host`) as
    /// `<part>.parquet`, creating the file first.
    fn write_batch(&mut self, out: &Path, p: &Partition, batch: &RecordBatch) -> Result<()> {
        if self.sink.is_none() {
            let dir = out
                .join(self.name)
                .join(format!("run={}", partition_value(&p.run)))
                .join(format!("host={}", partition_value(&p.host)));
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = dir.join(format!("{}.parquet.partial", p.part));
            // The file's key-value metadata, in a fixed order (not an Arrow schema's hash
            // map): the same rows give the same bytes.
            let kv = vec![
                parquet::file::metadata::KeyValue::new("pws.table".into(), self.name.to_owned()),
                parquet::file::metadata::KeyValue::new(
                    "pws.schema_version".into(),
                    SCHEMA_VERSION.to_owned(),
                ),
            ];
            let mut props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(
                    ZstdLevel::try_new(3).expect("valid level"),
                ))
                .set_key_value_metadata(Some(kv))
                .set_max_row_group_size(self.row_group_rows);
            if !self.float_dictionaries {
                for f in batch.schema().fields() {
                    if f.data_type() == &DataType::Float64 {
                        let col = parquet::schema::types::ColumnPath::from(f.name().as_str());
                        props = props.set_column_dictionary_enabled(col, false);
                    }
                }
            }
            let props = props.build();
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let w = ArrowWriter::try_new(file, batch.schema(), Some(props))
                .with_context(|| format!("writing {}", path.display()))?;
            self.sink = Some((w, path));
        }
        let (w, path) = self.sink.as_mut().expect("opened above");
        w.write(batch)
            .with_context(|| format!("writing {}", path.display()))?;
        // A row group is held encoded until it closes: closed early once it holds
        // ROW_GROUP_BYTES, so a wide table's is not a million rows in memory.
        if w.memory_size() >= self.row_group_bytes {
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes the rows so far to the table's file when there are many of them; [`Table::write`]
    /// must still be called with the same `out` and `p` to write the rest and finish the file.
    pub fn flush_if_full(&mut self, out: &Path, p: &Partition) -> Result<()> {
        if self.rows < FLUSH_ROWS {
            return Ok(());
        }
        let batch = self.take_batch(p)?;
        self.write_batch(out, p, &batch)
    }

    /// Closes the open row group: the rows so far go to the file, and the next row starts a
    /// new group. For a table written and read block by block (`activation_energy`, by
    /// (domain, model)): a reader of one block decodes no other block's rows, and the writer
    /// holds nothing of a finished block while the next is made.
    pub fn end_row_group(&mut self, out: &Path, p: &Partition) -> Result<()> {
        let batch = self.take_batch(p)?;
        if batch.num_rows() > 0 {
            self.write_batch(out, p, &batch)?;
        }
        if let Some((w, path)) = self.sink.as_mut() {
            w.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Writes the table under `out` in the partition of (`run`, `host`) as `<part>.parquet`,
    /// with the partition's labels as constant columns at the end; returns the file. Each
    /// input has its own part, so two inputs of one run and host never overwrite each other.
    pub fn write(mut self, out: &Path, p: &Partition) -> Result<PathBuf> {
        let batch = self.take_batch(p)?;
        if self.sink.is_none() || batch.num_rows() > 0 {
            self.write_batch(out, p, &batch)?;
        }
        let (w, partial) = self.sink.take().expect("written above");
        let path = partial.with_extension("");
        let done = w
            .close()
            .with_context(|| format!("finishing {}", partial.display()))
            .and_then(|_| {
                std::fs::rename(&partial, &path).with_context(|| {
                    format!("renaming {} to {}", partial.display(), path.display())
                })
            });
        if done.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        done.map(|_| path)
    }
}

/// Where one input's tables go, and the labels every row of them carries.
#[derive(Debug, Clone, Default)]
pub struct Partition {
    pub run: String,
    pub host: String,
    /// This input's file name in each partition directory.
    pub part: String,
    /// (column, value) appended to every table: `workload`, `config` and the manifest's own
    /// columns; every input of one call has the same columns, so a dataset has one schema.
    pub labels: Vec<(String, Option<String>)>,
}

/// A value safe as a hive partition directory name: `/`, `=` and control characters escaped
/// as `%XX`, as Hive does.
pub fn partition_value(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        if c == '/' || c == '=' || c == '%' || c.is_control() || c == '\\' {
            s.push_str(&format!("%{:02X}", c as u32 & 0xff));
        } else {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push_str("__HIVE_DEFAULT_PARTITION__");
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The partition every test writes to.
    pub(crate) fn part0() -> Partition {
        Partition {
            run: "r".into(),
            host: "h".into(),
            part: "part-0".into(),
            labels: Vec::new(),
        }
    }

    /// Every record batch of the Parquet file at `p`.
    pub(crate) fn batches(p: &Path) -> Vec<RecordBatch> {
        let f = std::fs::File::open(p).unwrap();
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        b.build().unwrap().map(|b| b.unwrap()).collect()
    }

    /// Column `c`'s values over `batches`, as primitive type `T`.
    fn values<T: arrow_array::ArrowPrimitiveType>(
        batches: &[RecordBatch],
        c: usize,
    ) -> Vec<T::Native> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column(c).as_any();
                let a = a.downcast_ref::<arrow_array::PrimitiveArray<T>>();
                a.unwrap().values().to_vec()
            })
            .collect()
    }

    /// The rows of each row group of the Parquet file at `p`.
    fn row_groups(p: &Path) -> Vec<i64> {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
        r.metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows())
            .collect()
    }

    #[test]
    fn partition_values_are_escaped() {
        assert_eq!(partition_value("a/b=c"), "a%2Fb%3Dc");
        assert_eq!(partition_value(""), "__HIVE_DEFAULT_PARTITION__");
        assert_eq!(partition_value("node-1.grid5000"), "node-1.grid5000");
    }

    #[test]
    fn a_flushed_table_is_one_file_with_every_row() {
        let d = tempfile::tempdir().unwrap();
        let part = Partition {
            run: "r".into(),
            host: "h".into(),
            part: "part-0".into(),
            labels: vec![("config".into(), Some("c".into()))],
        };
        let mut t = Table::keyed("big").u64("i");
        let n = 2 * FLUSH_ROWS + 5;
        for i in 0..n {
            t.push_key("r", "h").push_u64(Some(i as u64));
            t.flush_if_full(d.path(), &part).unwrap();
        }
        assert!(t.rows < FLUSH_ROWS, "rows were flushed as they came");
        let p = t.write(d.path(), &part).unwrap();
        let batches = batches(&p);
        for b in &batches {
            assert_eq!(b.num_columns(), 4, "run, host, i and the label");
        }
        let ids = values::<arrow_array::types::UInt64Type>(&batches, 2);
        assert_eq!(ids, (0..n as u64).collect::<Vec<_>>());
        let dir = p.parent().unwrap();
        let names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["part-0.parquet"], "no partial file left");

        // A table dropped half-written (an error elsewhere in the run) leaves nothing.
        let mut t = Table::keyed("torn").u64("i");
        for i in 0..FLUSH_ROWS + 1 {
            t.push_key("r", "h").push_u64(Some(i as u64));
            t.flush_if_full(d.path(), &part).unwrap();
        }
        let dir = d.path().join("torn/run=r/host=h");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "being written");
        drop(t);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "removed");
    }

    /// The writer cuts pages by size and row groups by rows: when rows reach it, in batches of
    /// [`FLUSH_ROWS`] or all at once, does not change the file (so the batch size can be set
    /// by memory alone).
    #[test]
    fn the_file_does_not_depend_on_when_rows_are_flushed() {
        let part = part0();
        let n = 3 * FLUSH_ROWS + 7;
        let bytes = |flush: bool| {
            let d = tempfile::tempdir().unwrap();
            // Row groups that end inside a batch.
            let mut t = Table::keyed("t")
                .row_groups_of(FLUSH_ROWS + FLUSH_ROWS / 3)
                .str("name")
                .u64("n")
                .f64("x")
                .ts("at");
            for i in 0..n {
                t.push_key("r", "h")
                    .push_str(&format!("activation-{}", i % 977))
                    .push_u64((i % 5 != 0).then_some(i as u64))
                    .push_f64(Some((i as f64).sqrt()))
                    .push_ts(Some(1_700_000_000_000_000_000 + i as i64 * 1_000_003));
                if flush {
                    t.flush_if_full(d.path(), &part).unwrap();
                }
            }
            let p = t.write(d.path(), &part).unwrap();
            (std::fs::read(&p).unwrap(), row_groups(&p).len())
        };
        let (flushed, whole) = (bytes(true), bytes(false));
        assert_eq!(whole.1, 3, "row groups of FLUSH_ROWS and a third");
        assert!(flushed == whole, "the same bytes");
    }

    /// A row group closes once it holds [`Table::row_group_bytes`] encoded, short of its rows;
    /// every row is still there, in order.
    #[test]
    fn a_wide_row_group_is_closed_at_its_byte_cap() {
        let part = part0();
        let d = tempfile::tempdir().unwrap();
        let n = 8 * FLUSH_ROWS;
        let mut t = Table::keyed("t").str("id").f64("x").f64("y");
        t.row_group_bytes = 256 << 10;
        for i in 0..n {
            // Distinct ids and floats: little to compress, as in `activation_comparison`.
            t.push_key("r", "h")
                .push_str(&format!(
                    "{:032x}",
                    (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ))
                .push_f64(Some((i as f64).sqrt()))
                .push_f64(Some((i as f64).ln_1p()));
            t.flush_if_full(d.path(), &part).unwrap();
        }
        let p = t.write(d.path(), &part).unwrap();
        let groups = row_groups(&p);
        assert!(groups.len() > 2, "closed at the cap: {groups:?}");
        assert!(groups.iter().all(|&g| g < n as i64));
        assert_eq!(groups.iter().sum::<i64>(), n as i64);
        let xs = values::<arrow_array::types::Float64Type>(&batches(&p), 3);
        assert_eq!(xs, (0..n).map(|i| (i as f64).sqrt()).collect::<Vec<_>>());
    }

    /// A row group ended by hand closes where asked, however many rows it has; ending one
    /// with no rows since the last makes no empty group.
    #[test]
    fn a_row_group_ends_where_asked() {
        let part = part0();
        let d = tempfile::tempdir().unwrap();
        let mut t = Table::keyed("t").row_groups_of(FLUSH_ROWS).u64("i");
        let mut next = 0u64;
        for block in [FLUSH_ROWS + 10, 7, 0, 3] {
            for _ in 0..block {
                t.push_key("r", "h").push_u64(Some(next));
                next += 1;
                t.flush_if_full(d.path(), &part).unwrap();
            }
            t.end_row_group(d.path(), &part).unwrap();
        }
        let p = t.write(d.path(), &part).unwrap();
        let groups = row_groups(&p);
        assert_eq!(groups, [FLUSH_ROWS as i64, 10, 7, 3]);
    }

    #[test]
    fn a_table_is_written_and_read_back() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Table::new("demo")
            .str("name")
            .u64("n")
            .f64("x")
            .ts("at")
            .bool("ok");
        t.push_str("a")
            .push_u64(Some(1))
            .push_f64(Some(0.5))
            .push_ts(Some(1_700_000_000_000_000_000))
            .push_bool(Some(true));
        t.push_str("b")
            .push_u64(None)
            .push_f64(Some(f64::NAN))
            .push_ts(None)
            .push_bool(None);
        let part = Partition {
            run: "r1".into(),
            host: "h/1".into(),
            part: "part-0".into(),
            labels: vec![("workload".into(), Some("w".into()))],
        };
        let p = t.write(d.path(), &part).unwrap();
        assert!(
            p.ends_with("demo/run=r1/host=h%2F1/part-0.parquet"),
            "{}",
            p.display()
        );
        let f = std::fs::File::open(&p).unwrap();
        let b = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap();
        let kv = b
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .clone();
        assert!(kv
            .iter()
            .any(|k| k.key == "pws.table" && k.value.as_deref() == Some("demo")));
        let batches: Vec<RecordBatch> = b.build().unwrap().map(|b| b.unwrap()).collect();
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].num_columns(), 6, "the label is a column");
        assert_eq!(
            batches[0].column(2).null_count(),
            1,
            "NaN is written as null"
        );
    }
}
