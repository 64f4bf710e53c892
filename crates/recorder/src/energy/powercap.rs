//! The powercap sysfs tree (`/sys/class/powercap/intel-rapl:N[:M]`), which the kernel's
//! `intel_rapl` driver fills on Intel and, on recent kernels, AMD. Each zone's `energy_uj`
//! counts microjoules and wraps at `max_energy_range_uj` + 1.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use pws_trace::records::{EnergyDomain, EnergySource};

use super::{CounterDesc, CounterReader, Found, Retain, Unusable};

#[derive(Debug)]
pub struct PowercapReader {
    counters: Vec<CounterDesc>,
    /// `energy_uj` of each counter, kept open: pread at 0 makes sysfs regenerate the value.
    files: Vec<(File, PathBuf)>,
}

impl CounterReader for PowercapReader {
    fn counters(&self) -> &[CounterDesc] {
        &self.counters
    }

    fn read(&mut self, out: &mut [u64]) -> io::Result<()> {
        for ((f, path), v) in self.files.iter().zip(out) {
            *v = read_value(f, path)?;
        }
        Ok(())
    }
}

impl Retain for PowercapReader {
    fn retain(&mut self, keep: &[bool]) {
        super::retain_masked(&mut self.counters, keep);
        super::retain_masked(&mut self.files, keep);
    }
}

/// Opens the zones and keeps those that advance; what was skipped goes into the detail.
pub(super) fn detect(root: &Path) -> Found {
    let (reader, notes) = open(root)?;
    let with_notes = |s: String| {
        if notes.is_empty() {
            s
        } else {
            format!("{s}; {}", notes.join("; "))
        }
    };
    match super::probe(reader, super::PROBE_WINDOW, "powercap") {
        Ok((r, detail)) => Ok((r, with_notes(detail))),
        Err(u) => Err(Unusable {
            status: u.status,
            reason: with_notes(u.reason),
        }),
    }
}

/// A zone directory name: `intel-rapl:0` → [0], `intel-rapl:0:1` → [0, 1].
fn zone_id(name: &str) -> Option<Vec<u32>> {
    let rest = name.strip_prefix("intel-rapl:")?;
    rest.split(':').map(|p| p.parse().ok()).collect()
}

/// Opens every readable `intel-rapl:*` zone. Returns the reader and notes on the zones it
/// skipped; Err when none is usable.
pub(super) fn open(root: &Path) -> Result<(PowercapReader, Vec<String>), Unusable> {
    let r = root.display();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Unusable::unavailable(format!(
                "no {r}: the kernel exposes no powercap zones (not bare-metal Intel/AMD RAPL, or the intel_rapl_msr module is not loaded: `modprobe intel_rapl_msr`)"
            )))
        }
        Err(e) => return Err(Unusable::failed(format!("cannot list {r}: {e}"))),
    };
    let mut notes = Vec::new();
    let mut zones: Vec<(Vec<u32>, String)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(id) = zone_id(&name) {
            zones.push((id, name));
        } else if name.starts_with("intel-rapl-mmio:")
            && !notes.iter().any(|n: &String| n.contains("mmio"))
        {
            notes.push(
                "intel-rapl-mmio:* skipped (the package energy of intel-rapl:*, read through MMIO)"
                    .to_owned(),
            );
        }
    }
    if zones.is_empty() {
        return Err(Unusable::unavailable(format!(
            "{r} has no intel-rapl:* zones (the RAPL driver is not loaded: `modprobe intel_rapl_msr`)"
        )));
    }
    // Parents before their subzones, so a subzone finds its package.
    zones.sort();
    let mut packages: Vec<(u32, u32)> = Vec::new(); // top zone number → package index
    let mut reader = PowercapReader {
        counters: Vec::new(),
        files: Vec::new(),
    };
    let mut denied = false;
    for (id, zone) in &zones {
        let dir = root.join(zone);
        let name = match fs::read_to_string(dir.join("name")) {
            Ok(n) => n.trim().to_owned(),
            Err(e) => {
                notes.push(format!(
                    "{zone}: cannot read {}: {e}",
                    dir.join("name").display()
                ));
                continue;
            }
        };
        let parent_pkg = packages.iter().find(|p| p.0 == id[0]).map(|p| p.1);
        let (domain, index) = if let Some(rest) = name.strip_prefix("package-") {
            // "package-1", or "package-0-die-1" on multi-die parts.
            let n = rest.split('-').next().and_then(|n| n.parse().ok());
            let index = n.unwrap_or(id[0]);
            if id.len() == 1 {
                packages.push((id[0], index));
            }
            (EnergyDomain::Package, index)
        } else {
            let domain = match name.as_str() {
                "core" | "cores" => EnergyDomain::Cores,
                "uncore" => EnergyDomain::Uncore,
                "dram" => EnergyDomain::Dram,
                "psys" => EnergyDomain::Psys,
                other => {
                    notes.push(format!("{zone} ({other}): unknown RAPL domain, skipped"));
                    continue;
                }
            };
            // A top-level psys zone covers the platform: package 0.
            (
                domain,
                if id.len() > 1 {
                    parent_pkg.unwrap_or(id[0])
                } else {
                    0
                },
            )
        };
        let path = dir.join("energy_uj");
        let opened = File::open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())));
        let file = match opened.and_then(|f| read_value(&f, &path).map(|_| f)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                denied = true;
                notes.push(format!(
                    "{e} ({name}): energy_uj is readable by root only since the CVE-2020-8694 fix; run pws-record as root or make it readable (e.g. a udev rule or `chmod a+r`)"
                ));
                continue;
            }
            Err(e) => {
                notes.push(format!("{zone} ({name}): {e}"));
                continue;
            }
        };
        let max_path = dir.join("max_energy_range_uj");
        let wrap = match fs::read_to_string(&max_path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .and_then(|m| m.checked_add(1))
        {
            Some(w) => w,
            None => {
                // Without its range a wrap would read as a huge jump: not worth recording.
                notes.push(format!(
                    "{zone} ({name}): no usable {}: its wrap point is unknown, skipped",
                    max_path.display()
                ));
                continue;
            }
        };
        reader.counters.push(CounterDesc {
            source: EnergySource::Powercap,
            domain,
            index,
            name: zone.clone(),
            unit_joules: 1e-6,
            wrap,
        });
        reader.files.push((file, path));
    }
    if reader.counters.is_empty() {
        let why = format!("no readable zone in {r}: {}", notes.join("; "));
        return Err(if denied {
            Unusable::unavailable(why)
        } else {
            Unusable::failed(why)
        });
    }
    Ok((reader, notes))
}

/// One counter value: the decimal number the sysfs file holds.
fn read_value(f: &File, path: &Path) -> io::Result<u64> {
    let mut buf = [0u8; 32];
    let n = f
        .read_at(&mut buf, 0)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
    std::str::from_utf8(&buf[..n])
        .ok()
        .map(str::trim)
        .and_then(|s| s.parse().ok())
        .filter(|_| n < buf.len())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} holds {:?}, not a counter value",
                    path.display(),
                    String::from_utf8_lossy(&buf[..n])
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pws_trace::records::{EnergySeries, SourceStatus};

    const MAX: u64 = 262_143_328_850;

    fn zone(root: &Path, zone: &str, name: &str, energy: u64) {
        let d = root.join(zone);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("name"), format!("{name}\n")).unwrap();
        fs::write(d.join("energy_uj"), format!("{energy}\n")).unwrap();
        fs::write(d.join("max_energy_range_uj"), format!("{MAX}\n")).unwrap();
    }

    fn set(root: &Path, zone: &str, energy: u64) {
        fs::write(root.join(zone).join("energy_uj"), format!("{energy}\n")).unwrap();
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        zone(d.path(), "intel-rapl:0", "package-0", MAX - 850);
        zone(d.path(), "intel-rapl:0:0", "core", 5);
        zone(d.path(), "intel-rapl:0:1", "dram", 7);
        // The powercap class also lists the control type and MMIO zones: not counters.
        fs::create_dir_all(d.path().join("intel-rapl")).unwrap();
        zone(d.path(), "intel-rapl-mmio:0", "package-0", 1);
        d
    }

    #[test]
    fn zones_names_domains_wrap_and_raw_values() {
        let d = tree();
        let (mut r, notes) = open(d.path()).unwrap();
        let c = r.counters();
        let got: Vec<_> = c
            .iter()
            .map(|c| (c.name.as_str(), c.domain, c.index))
            .collect();
        assert_eq!(
            got,
            [
                ("intel-rapl:0", EnergyDomain::Package, 0),
                ("intel-rapl:0:0", EnergyDomain::Cores, 0),
                ("intel-rapl:0:1", EnergyDomain::Dram, 0),
            ]
        );
        for c in c {
            assert_eq!(c.source, EnergySource::Powercap);
            assert_eq!(c.unit_joules, 1e-6);
            assert_eq!(c.wrap, MAX + 1);
        }
        assert!(notes.iter().any(|n| n.contains("mmio")), "{notes:?}");

        // Values are recorded verbatim, including across the package counter's wrap.
        let mut v = [0u64; 3];
        let mut seen = Vec::new();
        for (pkg, core, dram) in [
            (MAX - 850, 5, 7),
            (MAX - 50, 1_000_005, 20_007),
            (1_000, 2_000_005, 40_007),
            (MAX, 2_000_006, 40_008),
        ] {
            set(d.path(), "intel-rapl:0", pkg);
            set(d.path(), "intel-rapl:0:0", core);
            set(d.path(), "intel-rapl:0:1", dram);
            r.read(&mut v).unwrap();
            assert_eq!(v, [pkg, core, dram]);
            seen.push(v[0]);
        }
        // The analyzer's unwrapping works on what was recorded: 50 µJ to the wrap, 1000 after.
        assert_eq!(EnergySeries::raw_delta(MAX + 1, seen[1], seen[2]), 1_051);
    }

    #[test]
    fn amd_and_multi_socket_names() {
        let d = tempfile::tempdir().unwrap();
        zone(d.path(), "intel-rapl:0", "package-0", 1);
        zone(d.path(), "intel-rapl:0:0", "core", 1);
        zone(d.path(), "intel-rapl:1", "package-1", 1);
        zone(d.path(), "intel-rapl:1:0", "core", 1);
        zone(d.path(), "intel-rapl:1:1", "uncore", 1);
        zone(d.path(), "intel-rapl:2", "psys", 1);
        zone(d.path(), "intel-rapl:1:2", "fancy", 1);
        let (r, notes) = open(d.path()).unwrap();
        let got = crate::energy::tests::described(&r);
        assert_eq!(
            got,
            [
                ("intel-rapl:0", EnergyDomain::Package, 0),
                ("intel-rapl:0:0", EnergyDomain::Cores, 0),
                ("intel-rapl:1", EnergyDomain::Package, 1),
                ("intel-rapl:1:0", EnergyDomain::Cores, 1),
                ("intel-rapl:1:1", EnergyDomain::Uncore, 1),
                ("intel-rapl:2", EnergyDomain::Psys, 0),
            ]
        );
        assert!(notes.iter().any(|n| n.contains("fancy")), "{notes:?}");
    }

    #[test]
    fn unreadable_zones_are_reported_not_fatal() {
        let d = tree();
        // A directory where energy_uj should be (chmod 000 would not stop root).
        let dram = d.path().join("intel-rapl:0:1/energy_uj");
        fs::remove_file(&dram).unwrap();
        fs::create_dir(&dram).unwrap();
        fs::remove_file(d.path().join("intel-rapl:0:0/energy_uj")).unwrap();
        fs::write(d.path().join("intel-rapl:0/max_energy_range_uj"), "lots").unwrap();
        let u = open(d.path()).unwrap_err();
        assert_eq!(u.status, SourceStatus::Failed);
        assert!(u.reason.contains("intel-rapl:0:1/energy_uj"), "{u:?}");
        assert!(u.reason.contains("intel-rapl:0:0"), "{u:?}");
        assert!(u.reason.contains("max_energy_range_uj"), "{u:?}");

        // One good zone is enough; the others are noted.
        fs::write(
            d.path().join("intel-rapl:0/max_energy_range_uj"),
            MAX.to_string(),
        )
        .unwrap();
        let (mut r, notes) = open(d.path()).unwrap();
        assert_eq!(r.counters().len(), 1);
        assert_eq!(notes.len(), 3, "{notes:?}");
        // Garbage appearing later is a read error naming the file, not a panic.
        set(d.path(), "intel-rapl:0", 0);
        fs::write(d.path().join("intel-rapl:0/energy_uj"), "12x\n").unwrap();
        let e = r.read(&mut [0]).unwrap_err().to_string();
        assert!(e.contains("intel-rapl:0/energy_uj"), "{e}");
    }

    #[test]
    fn missing_root_and_frozen_counters_are_unavailable() {
        let u = detect(Path::new("/nonexistent/powercap")).unwrap_err();
        assert_eq!(u.status, SourceStatus::Unavailable);
        assert!(u.reason.contains("no /nonexistent/powercap"), "{u:?}");
        assert!(u.reason.contains("modprobe"), "{u:?}");

        let empty = tempfile::tempdir().unwrap();
        let u = detect(empty.path()).unwrap_err();
        assert!(u.reason.contains("no intel-rapl:* zones"), "{u:?}");

        // A fixture never advances: the probe must refuse it.
        let d = tree();
        let u = detect(d.path()).unwrap_err();
        assert_eq!(u.status, SourceStatus::Unavailable);
        assert!(u.reason.contains("no counter advanced"), "{u:?}");
    }
}
