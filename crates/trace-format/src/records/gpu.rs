//! Block kind 11, gpu (since 1.2): what NVML says about each GPU at every read, besides its
//! energy counter (which goes in energy blocks, source nvml, domain gpu): instantaneous power,
//! the per-process utilisation samples since the previous read, and the compute processes
//! running. Raw, with NVML's own timestamps: the analyzer decides what they mean.

use crate::codec::{get_opt, put_opt, put_records, Dec, DecodeResult, Put};
use crate::records::Payload;
use crate::BlockKind;

/// One per-process utilisation sample (`nvmlProcessUtilizationSample_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuProcessSample {
    pub pid: u32,
    /// NVML's timestamp: CPU time in microseconds since the Unix epoch (CLOCK_REALTIME).
    pub timestamp_us: u64,
    /// Percent of the driver's sampling period a kernel of this process ran on the SMs.
    pub sm: u8,
    /// Percent of the period device memory was read or written for it.
    pub mem: u8,
    pub enc: u8,
    pub dec: u8,
}

/// A compute process running at the read (`nvmlDeviceGetComputeRunningProcesses`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuProcess {
    pub pid: u32,
    /// Bytes of device memory it holds; None where NVML does not say (some platforms, MIG).
    pub used_memory: Option<u64>,
}

/// One read of one GPU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuRead {
    /// The middle of the read, trace clock.
    pub ts_ns: u64,
    /// Instantaneous power, mW (`NVML_FI_DEV_POWER_INSTANT`); None where the driver refused it.
    pub power_mw: Option<u64>,
    /// The per-process samples NVML gave since the previous read.
    pub utilization: Vec<GpuProcessSample>,
    pub processes: Vec<GpuProcess>,
}

/// One GPU's reads in a block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuDeviceReads {
    /// The GPU's index: the `index` of its energy series (domain gpu).
    pub device: u32,
    pub uuid: String,
    pub name: String,
    /// MIG mode is on: NVML gives no per-process utilisation then.
    pub mig: bool,
    pub reads: Vec<GpuRead>,
}

/// The payload of a gpu block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GpuBlock {
    pub devices: Vec<GpuDeviceReads>,
}

impl GpuBlock {
    pub fn decode(payload: &[u8]) -> DecodeResult<Self> {
        let mut d = Dec::new(payload);
        let devices = d.records("gpu device", |r| {
            let device = r.varint_u32("gpu device index")?;
            let uuid = r.string("gpu uuid")?;
            let name = r.string("gpu name")?;
            let mig = r.u8("gpu mig mode")? != 0;
            let reads = r.records("gpu read", |x| {
                let ts_ns = x.u64("gpu read timestamp")?;
                let power_mw = get_opt(x, "gpu instantaneous power")?;
                let utilization = x.records("gpu process sample", |s| {
                    Ok(GpuProcessSample {
                        pid: s.varint_u32("gpu sample pid")?,
                        timestamp_us: s.u64("gpu sample timestamp")?,
                        sm: s.u8("gpu sample sm")?,
                        mem: s.u8("gpu sample mem")?,
                        enc: s.u8("gpu sample enc")?,
                        dec: s.u8("gpu sample dec")?,
                    })
                })?;
                let processes = x.records("gpu process", |p| {
                    Ok(GpuProcess {
                        pid: p.varint_u32("gpu process pid")?,
                        used_memory: get_opt(p, "gpu process memory")?,
                    })
                })?;
                Ok(GpuRead {
                    ts_ns,
                    power_mw,
                    utilization,
                    processes,
                })
            })?;
            Ok(GpuDeviceReads {
                device,
                uuid,
                name,
                mig,
                reads,
            })
        })?;
        Ok(Self { devices })
    }
}

impl Payload for GpuBlock {
    const KIND: BlockKind = BlockKind::GPU;

    fn encode(&self, out: &mut Vec<u8>) {
        put_records(out, &self.devices, |b, g| {
            b.put_varint(g.device.into());
            b.put_str(&g.uuid);
            b.put_str(&g.name);
            b.put_u8(g.mig.into());
            put_records(b, &g.reads, |b, x| {
                b.put_u64(x.ts_ns);
                put_opt(b, x.power_mw);
                put_records(b, &x.utilization, |b, s| {
                    b.put_varint(s.pid.into());
                    b.put_u64(s.timestamp_us);
                    b.put_u8(s.sm);
                    b.put_u8(s.mem);
                    b.put_u8(s.enc);
                    b.put_u8(s.dec);
                });
                put_records(b, &x.processes, |b, p| {
                    b.put_varint(p.pid.into());
                    put_opt(b, p.used_memory);
                });
            });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_panics_on_a_cut() {
        let b = GpuBlock {
            devices: vec![
                GpuDeviceReads {
                    device: 1,
                    uuid: "GPU-1b2c".into(),
                    name: "NVIDIA H200".into(),
                    mig: false,
                    reads: vec![
                        GpuRead {
                            ts_ns: 5_000_000,
                            power_mw: Some(87_500),
                            utilization: vec![GpuProcessSample {
                                pid: 4242,
                                timestamp_us: 1_790_000_000_000_000,
                                sm: 73,
                                mem: 12,
                                enc: 0,
                                dec: 0,
                            }],
                            processes: vec![
                                GpuProcess {
                                    pid: 4242,
                                    used_memory: Some(1 << 30),
                                },
                                GpuProcess {
                                    pid: 7,
                                    used_memory: None,
                                },
                            ],
                        },
                        GpuRead {
                            ts_ns: 105_000_000,
                            ..GpuRead::default()
                        },
                    ],
                },
                GpuDeviceReads {
                    mig: true,
                    ..GpuDeviceReads::default()
                },
            ],
        };
        let mut p = Vec::new();
        b.encode(&mut p);
        assert_eq!(GpuBlock::decode(&p).unwrap(), b);
        for cut in 0..p.len() {
            assert!(GpuBlock::decode(&p[..cut]).is_err(), "cut at {cut}");
        }
    }
}
