//! Reading the analyzer's Parquet output back, for the integration tests.

use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Every batch of every Parquet file under `dir` (a table's directory, all partitions).
pub fn read(dir: &Path) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                let f = std::fs::File::open(&p).unwrap();
                let r = ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap();
                out.extend(r.map(|b| b.unwrap()));
            }
        }
    }
    out
}

/// A column of a batch, as its Arrow array type.
pub fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> &'a T {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}
