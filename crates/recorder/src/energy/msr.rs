//! RAPL energy-status MSRs read through the `msr` driver (`/dev/cpu/N/msr`, pread of 8 bytes at
//! offset = register address), on one CPU per package. The counters are the low 32 bits of
//! each register, so they wrap at 2^32 units.
//!
//! AMD (and Hygon) expose a package counter and one core counter per core; only the package
//! counter is read: a core counter covers only the core it is read on, and reading every core
//! at 1 ms would cost one syscall per core per tick.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;

use pws_trace::records::{CpuInfo, EnergyDomain, EnergySource};

use super::{one_cpu_per_package, CounterDesc, CounterReader, Found, Retain, Unusable};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Vendor {
    Intel { family: u32, model: u32 },
    Amd,
    Unknown,
}

impl Vendor {
    /// From /proc/cpuinfo's first `vendor_id`, `cpu family` and `model`.
    pub fn from_cpuinfo(text: &str) -> Self {
        let field = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
        };
        let num = |key: &str| field(key).and_then(|v| v.parse().ok()).unwrap_or(0);
        match field("vendor_id").as_deref() {
            Some("GenuineIntel") => Self::Intel {
                family: num("cpu family"),
                model: num("model"),
            },
            Some("AuthenticAMD" | "HygonGenuine") => Self::Amd,
            _ => Self::Unknown,
        }
    }
}

struct Register {
    addr: u64,
    name: &'static str,
    domain: EnergyDomain,
}

const INTEL_UNIT: u64 = 0x606;
const INTEL: [Register; 5] = [
    reg(0x611, "PKG_ENERGY_STATUS", EnergyDomain::Package),
    reg(0x619, "DRAM_ENERGY_STATUS", EnergyDomain::Dram),
    reg(0x639, "PP0_ENERGY_STATUS", EnergyDomain::Cores),
    reg(0x641, "PP1_ENERGY_STATUS", EnergyDomain::Uncore),
    reg(0x64D, "PLATFORM_ENERGY_STATUS", EnergyDomain::Psys),
];
const AMD_UNIT: u64 = 0xC001_0299;
const AMD: [Register; 1] = [reg(0xC001_029B, "PKG_ENERGY_STAT", EnergyDomain::Package)];

const fn reg(addr: u64, name: &'static str, domain: EnergyDomain) -> Register {
    Register { addr, name, domain }
}

/// Intel family-6 models whose DRAM domain counts in a fixed 2^-16 J, not the unit register's
/// (Haswell-X, Broadwell-X/D, Skylake-X, Ice Lake-X/D, Xeon Phi): the kernel's
/// RAPL_UNIT_QUIRK_INTEL_HSW.
const DRAM_UNIT_16: [u32; 8] = [0x3F, 0x4F, 0x56, 0x55, 0x6A, 0x6C, 0x57, 0x85];
/// Sapphire and Emerald Rapids count psys in whole joules (RAPL_UNIT_QUIRK_INTEL_SPR).
const PSYS_UNIT_1J: [u32; 2] = [0x8F, 0xCF];

#[derive(Debug)]
pub struct MsrReader {
    counters: Vec<CounterDesc>,
    /// One device per package, and (device, register) per counter.
    files: Vec<File>,
    regs: Vec<(usize, u64)>,
}

impl CounterReader for MsrReader {
    fn counters(&self) -> &[CounterDesc] {
        &self.counters
    }

    fn read(&mut self, out: &mut [u64]) -> io::Result<()> {
        for ((&(f, addr), c), v) in self.regs.iter().zip(&self.counters).zip(out) {
            *v = read_msr(&self.files[f], addr).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("read of {} on package {}: {e}", c.name, c.index),
                )
            })? & 0xFFFF_FFFF;
        }
        Ok(())
    }
}

impl Retain for MsrReader {
    fn retain(&mut self, keep: &[bool]) {
        super::retain_masked(&mut self.counters, keep);
        super::retain_masked(&mut self.regs, keep);
    }
}

fn read_msr(f: &File, addr: u64) -> io::Result<u64> {
    let mut b = [0u8; 8];
    f.read_exact_at(&mut b, addr)?;
    Ok(u64::from_le_bytes(b))
}

pub(super) fn detect(pattern: &str, cpus: &[CpuInfo]) -> Found {
    let vendor = Vendor::from_cpuinfo(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
    let (reader, notes) = open(pattern, cpus, vendor)?;
    let (r, detail) = super::probe(reader, super::PROBE_WINDOW, "MSR")?;
    Ok((
        r,
        [detail]
            .into_iter()
            .chain(notes)
            .collect::<Vec<_>>()
            .join("; "),
    ))
}

/// Opens the MSR device of one CPU per package and every energy register it implements.
pub(super) fn open(
    pattern: &str,
    cpus: &[CpuInfo],
    vendor: Vendor,
) -> Result<(MsrReader, Vec<String>), Unusable> {
    let mut reader = MsrReader {
        counters: Vec::new(),
        files: Vec::new(),
        regs: Vec::new(),
    };
    let mut notes = Vec::new();
    for (n, (cpu, package)) in one_cpu_per_package(cpus).into_iter().enumerate() {
        let path = pattern.replace("{cpu}", &cpu.to_string());
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                let u = match e.kind() {
                    io::ErrorKind::NotFound => Unusable::unavailable(format!(
                        "no {path}: load the msr driver (`modprobe msr`), or point --msr-path at the MSR devices"
                    )),
                    io::ErrorKind::PermissionDenied => Unusable::unavailable(format!(
                        "{path}: {e}: reading MSRs needs root (CAP_SYS_RAWIO)"
                    )),
                    _ => Unusable::failed(format!("cannot open {path}: {e}")),
                };
                // A package whose device is missing while another's works is only noted.
                if n == 0 {
                    return Err(u);
                }
                notes.push(format!("package {package} skipped: {}", u.reason));
                continue;
            }
        };
        let (unit, regs, vendor) = match unit_register(&file, vendor) {
            Ok(x) => x,
            Err(e) => {
                let why = format!("{path} (cpu {cpu}): {e}");
                if n == 0 {
                    return Err(Unusable::unavailable(why));
                }
                notes.push(format!("package {package} skipped: {why}"));
                continue;
            }
        };
        let f = reader.files.len();
        reader.files.push(file);
        for r in regs {
            if let Err(e) = read_msr(&reader.files[f], r.addr) {
                if n == 0 {
                    notes.push(format!("MSR {:#X} {} not readable: {e}", r.addr, r.name));
                }
                continue;
            }
            reader.counters.push(CounterDesc {
                source: EnergySource::Msr,
                domain: r.domain,
                index: package,
                name: format!("MSR {:#X} {}", r.addr, r.name),
                unit_joules: unit_joules(unit, vendor, r.domain),
                wrap: 1 << 32,
            });
            reader.regs.push((f, r.addr));
        }
    }
    if reader.counters.is_empty() {
        return Err(Unusable::unavailable(format!(
            "no RAPL energy MSR is readable through {pattern}: {}",
            notes.join("; ")
        )));
    }
    Ok((reader, notes))
}

/// The unit register's value and the vendor's energy registers. An unknown vendor is probed:
/// Intel's unit register first, then AMD's.
fn unit_register(f: &File, vendor: Vendor) -> Result<(u64, &'static [Register], Vendor), String> {
    let tries: &[(u64, &'static [Register], Vendor)] = match vendor {
        Vendor::Intel { .. } => &[(INTEL_UNIT, &INTEL, vendor)],
        Vendor::Amd => &[(AMD_UNIT, &AMD, Vendor::Amd)],
        Vendor::Unknown => &[
            (INTEL_UNIT, &INTEL, Vendor::Unknown),
            (AMD_UNIT, &AMD, Vendor::Amd),
        ],
    };
    let mut why = Vec::new();
    for &(addr, regs, v) in tries {
        match read_msr(f, addr) {
            // All-zero is no unit register at all (a real one has power and time units too).
            Ok(0) => why.push(format!("unit MSR {addr:#X} reads 0")),
            Ok(u) => return Ok((u, regs, v)),
            Err(e) => why.push(format!("unit MSR {addr:#X} not readable: {e}")),
        }
    }
    Err(format!(
        "{} (this CPU or its hypervisor implements no RAPL MSRs)",
        why.join(", ")
    ))
}

/// Joules per count: 1/2^ESU, ESU = bits 12:8 of the unit register, except the Intel domains
/// with a fixed unit.
fn unit_joules(unit: u64, vendor: Vendor, domain: EnergyDomain) -> f64 {
    let esu = ((unit >> 8) & 0x1f) as i32;
    if let Vendor::Intel { family: 6, model } = vendor {
        if domain == EnergyDomain::Dram && DRAM_UNIT_16.contains(&model) {
            return 2f64.powi(-16);
        }
        if domain == EnergyDomain::Psys && PSYS_UNIT_1J.contains(&model) {
            return 1.0;
        }
    }
    2f64.powi(-esu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::energy::tests::cpu;
    use pws_trace::records::SourceStatus;
    use std::path::Path;

    /// A sparse file per CPU with `regs` written at their addresses, as /dev/cpu/N/msr reads.
    fn msr_files(dir: &Path, cpu: u32, regs: &[(u64, u64)]) {
        let d = dir.join(format!("cpu{cpu}"));
        fs::create_dir_all(&d).unwrap();
        let f = File::create(d.join("msr")).unwrap();
        for &(addr, v) in regs {
            f.write_all_at(&v.to_le_bytes(), addr).unwrap();
        }
    }

    fn pattern(dir: &Path) -> String {
        format!("{}/cpu{{cpu}}/msr", dir.display())
    }

    const SKYLAKE_CLIENT: Vendor = Vendor::Intel {
        family: 6,
        model: 0x5E,
    };

    #[test]
    fn intel_units_masking_and_packages() {
        let d = tempfile::tempdir().unwrap();
        // ESU 14 (bits 12:8 = 0xE): 61 µJ. 0x641 and 0x64D lie past the end: not implemented.
        let regs = |pkg: u64| {
            [
                (0x606, 0x000A_0E03),
                (0x611, 0xDEAD_BEEF_0000_0000 | pkg),
                (0x619, 0x0000_0001_0000_0042),
                (0x639, 0x7777),
            ]
        };
        msr_files(d.path(), 0, &regs(0x1234_5678));
        msr_files(d.path(), 2, &regs(0xFFFF_FFFF));
        let cpus = [cpu(0, 0), cpu(1, 0), cpu(2, 1), cpu(3, 1)];
        let (mut r, notes) = open(&pattern(d.path()), &cpus, SKYLAKE_CLIENT).unwrap();
        let got = crate::energy::tests::described(&r);
        assert_eq!(
            got,
            [
                ("MSR 0x611 PKG_ENERGY_STATUS", EnergyDomain::Package, 0),
                ("MSR 0x619 DRAM_ENERGY_STATUS", EnergyDomain::Dram, 0),
                ("MSR 0x639 PP0_ENERGY_STATUS", EnergyDomain::Cores, 0),
                ("MSR 0x611 PKG_ENERGY_STATUS", EnergyDomain::Package, 1),
                ("MSR 0x619 DRAM_ENERGY_STATUS", EnergyDomain::Dram, 1),
                ("MSR 0x639 PP0_ENERGY_STATUS", EnergyDomain::Cores, 1),
            ]
        );
        for c in r.counters() {
            assert_eq!(c.source, EnergySource::Msr);
            assert_eq!(c.unit_joules, 1.0 / 16384.0);
            assert_eq!(c.wrap, 1u64 << 32);
        }
        assert!(notes.iter().any(|n| n.contains("0x641")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("0x64D")), "{notes:?}");
        let mut v = [0u64; 6];
        r.read(&mut v).unwrap();
        // Only the low 32 bits count energy.
        assert_eq!(v, [0x1234_5678, 0x42, 0x7777, 0xFFFF_FFFF, 0x42, 0x7777]);

        // Later reads see new values, verbatim.
        let f = File::options()
            .write(true)
            .open(d.path().join("cpu0/msr"))
            .unwrap();
        f.write_all_at(&5u64.to_le_bytes(), 0x611).unwrap();
        r.read(&mut v).unwrap();
        assert_eq!(v[0], 5);
        // A device that stops answering is a read error naming the register, not a panic.
        f.set_len(0x612).unwrap();
        let e = r.read(&mut v).unwrap_err().to_string();
        assert!(e.contains("MSR 0x611 PKG_ENERGY_STATUS"), "{e}");
    }

    #[test]
    fn intel_server_dram_and_spr_psys_units() {
        let d = tempfile::tempdir().unwrap();
        msr_files(
            d.path(),
            0,
            &[(0x606, 0x000A_0E03), (0x611, 1), (0x619, 2), (0x64D, 3)],
        );
        let units = |model| {
            let v = Vendor::Intel { family: 6, model };
            let (r, _) = open(&pattern(d.path()), &[cpu(0, 0)], v).unwrap();
            r.counters()
                .iter()
                .map(|c| (c.domain, c.unit_joules))
                .collect::<Vec<_>>()
        };
        let skx = units(0x55);
        assert_eq!(skx[0], (EnergyDomain::Package, 2f64.powi(-14)));
        assert_eq!(skx[1], (EnergyDomain::Dram, 2f64.powi(-16)));
        let spr = units(0x8F);
        assert_eq!(spr[1], (EnergyDomain::Dram, 2f64.powi(-14)));
        assert_eq!(spr.last(), Some(&(EnergyDomain::Psys, 1.0)));
    }

    #[test]
    fn amd_package_counter_and_vendor_probing() {
        let d = tempfile::tempdir().unwrap();
        // ESU 16 (0xA1003, AMD's usual value): 15.3 µJ. Core energy (0xC001029A) is not read.
        // The device addresses registers, not bytes, so in a plain file these adjacent
        // registers overlap: written in this order, the package counter is intact and the unit
        // register keeps its low two bytes, which hold the ESU.
        msr_files(
            d.path(),
            0,
            &[
                (0xC001_029A, 0x99),
                (AMD_UNIT, 0x000A_1003),
                (0xC001_029B, 0x0000_0003_8000_0001),
            ],
        );
        for vendor in [Vendor::Amd, Vendor::Unknown] {
            let (mut r, _) = open(&pattern(d.path()), &[cpu(0, 0), cpu(1, 0)], vendor).unwrap();
            assert_eq!(r.counters().len(), 1, "{vendor:?}");
            let c = &r.counters()[0];
            assert_eq!(c.name, "MSR 0xC001029B PKG_ENERGY_STAT");
            assert_eq!(c.domain, EnergyDomain::Package);
            assert_eq!(c.unit_joules, 2f64.powi(-16));
            assert_eq!(c.wrap, 1 << 32);
            let mut v = [0];
            r.read(&mut v).unwrap();
            assert_eq!(v, [0x8000_0001]);
        }
        // Told it is Intel, it finds no Intel unit register (the file reads 0 there).
        let u = open(&pattern(d.path()), &[cpu(0, 0)], SKYLAKE_CLIENT).unwrap_err();
        assert!(u.reason.contains("0x606"), "{u:?}");
    }

    #[test]
    fn missing_device_says_modprobe() {
        let d = tempfile::tempdir().unwrap();
        let u = detect(&pattern(d.path()), &[cpu(0, 0)]).unwrap_err();
        assert_eq!(u.status, SourceStatus::Unavailable);
        assert!(u.reason.contains("modprobe msr"), "{u:?}");
        assert!(u.reason.contains("cpu0/msr"), "{u:?}");
        // A fixture never advances: the probe refuses it (on an AMD host it already lacks
        // the AMD registers).
        msr_files(d.path(), 0, &[(0x606, 0xA0E03), (0x611, 7)]);
        let u = detect(&pattern(d.path()), &[cpu(0, 0)]).unwrap_err();
        let host = Vendor::from_cpuinfo(&fs::read_to_string("/proc/cpuinfo").unwrap_or_default());
        if host != Vendor::Amd {
            assert!(u.reason.contains("no counter advanced"), "{u:?}");
        }
    }

    #[test]
    fn vendor_from_cpuinfo() {
        let intel = "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 85\nmodel name\t: Intel(R) Xeon(R)\n";
        assert_eq!(
            Vendor::from_cpuinfo(intel),
            Vendor::Intel {
                family: 6,
                model: 85
            }
        );
        assert_eq!(
            Vendor::from_cpuinfo("vendor_id : AuthenticAMD\n"),
            Vendor::Amd
        );
        assert_eq!(Vendor::from_cpuinfo(""), Vendor::Unknown);
        assert_eq!(Vendor::from_cpuinfo("garbage\n:::\n"), Vendor::Unknown);
    }
}
