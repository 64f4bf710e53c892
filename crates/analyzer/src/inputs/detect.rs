//! What an input of `pws-analyze` is, from its content rather than its name: traces are often
//! renamed, and perf writes `perf.data` whatever it holds.

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The inputs pws-analyze reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A `.pws` trace (pws-record).
    Pws,
    /// A `perf.data` file from `perf record`, in its file or pipe form.
    PerfData,
    /// A directory of PowerAPI hwpc-sensor CSV reports (one file per events group).
    HwpcCsvDir,
    /// PowerAPI hwpc-sensor JSON reports: one per line (its socket output), or a
    /// `{"reports": […]}` document.
    HwpcJson,
}

/// The columns every hwpc-sensor CSV header has (the events follow them).
const HWPC_CSV_COLUMNS: [&str; 5] = ["timestamp", "sensor", "target", "socket", "cpu"];
/// Bytes read to recognise a file: magics are 8 bytes, a CSV header line is short, and a JSON
/// document rarely starts with more blank space than this.
const SNIFF_LEN: usize = 64 << 10;

/// Recognises `path` by its first bytes (a directory by the CSV files in it). An input that is
/// none of the kinds is an error naming the path and what was expected.
pub fn detect(path: &Path) -> Result<InputKind> {
    let shown = path.display();
    let meta = fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    if meta.is_dir() {
        return detect_dir(path);
    }
    let head = sniff(path).with_context(|| format!("cannot read {shown}"))?;
    if head.is_empty() {
        bail!("{shown} is empty: not a trace, perf.data file or hwpc-sensor report");
    }
    if head.starts_with(&pws_trace::FILE_MAGIC) {
        return Ok(InputKind::Pws);
    }
    // Both endiannesses are perf's (the converter says why it refuses big-endian files), and the
    // pipe form (`perf record -o -`) starts with the same magic.
    if head.starts_with(b"PERFILE2") || head.starts_with(b"2ELIFREP") {
        return Ok(InputKind::PerfData);
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{' | b'[') => Ok(InputKind::HwpcJson),
        _ => bail!(
            "{shown} is not an input pws-analyze reads: expected a .pws trace, a perf.data file, a directory of hwpc-sensor CSV reports or an hwpc-sensor JSON document (it starts with {})",
            preview(&head)
        ),
    }
}

/// A directory is an hwpc-sensor report when one of its `.csv` files has the sensor's header
/// (the files the hwpc reader reads).
fn detect_dir(dir: &Path) -> Result<InputKind> {
    let shown = dir.display();
    let mut csvs = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("cannot list {shown}"))? {
        let p = e.with_context(|| format!("cannot list {shown}"))?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "csv") {
            csvs.push(p);
        }
    }
    csvs.sort();
    for p in &csvs {
        let head = sniff(p).with_context(|| format!("cannot read {}", p.display()))?;
        let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let line = String::from_utf8_lossy(line);
        let columns: Vec<&str> = line.trim().split(',').map(str::trim).collect();
        if HWPC_CSV_COLUMNS.iter().all(|c| columns.contains(c)) {
            return Ok(InputKind::HwpcCsvDir);
        }
    }
    bail!(
        "{shown} is a directory without hwpc-sensor CSV reports: none of its {} .csv files has a header with the columns {}",
        csvs.len(),
        HWPC_CSV_COLUMNS.join(",")
    )
}

/// The first bytes of a file, up to [`SNIFF_LEN`].
fn sniff(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    File::open(path)?
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The first bytes for an error message: text where printable, hex otherwise.
fn preview(head: &[u8]) -> String {
    let first = &head[..head.len().min(16)];
    if first.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(first))
    } else {
        let hex: Vec<String> = first.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_may_start_with_blank_space_or_a_bom() {
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [
            ("a.json", &b"  \n\t[1]"[..]),
            ("b.json", b"\xef\xbb\xbf{\"reports\": []}"),
        ] {
            let p = dir.path().join(name);
            fs::write(&p, body).unwrap();
            assert_eq!(detect(&p).unwrap(), InputKind::HwpcJson, "{name}");
        }
    }

    #[test]
    fn unknown_inputs_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("notes.txt");
        fs::write(&text, "hello").unwrap();
        let e = format!("{:#}", detect(&text).unwrap_err());
        assert!(e.contains("notes.txt") && e.contains("\"hello\""), "{e}");
        let empty = dir.path().join("empty");
        fs::write(&empty, "").unwrap();
        assert!(format!("{:#}", detect(&empty).unwrap_err()).contains("is empty"));
        let other_csv = dir.path().join("x.csv");
        fs::write(&other_csv, "a,b\n1,2\n").unwrap();
        let e = format!("{:#}", detect(dir.path()).unwrap_err());
        assert!(e.contains("without hwpc-sensor CSV reports"), "{e}");
        let missing = dir.path().join("missing");
        assert!(format!("{:#}", detect(&missing).unwrap_err()).contains("missing"));
    }
}
