//! `gpu-load`: keeps an NVIDIA GPU's SMs busy for a fraction (`--duty`) of `--seconds`, in short
//! kernel launches, so that the GPU's per-process SM utilisation follows the duty cycle. For
//! `bench/gpu_check.sh`: two of these in two cgroups, whose GPU energy the analyzer must split
//! in the ratio of the work they did.
//!
//! The kernel is a busy loop of fused multiply-adds, PTX text JIT-compiled by the driver (no
//! CUDA toolkit needed), on every SM. `--calibrate` finds the loop count for one launch of
//! `--launch-ms` (default 5 ms) on an idle GPU and prints it with the launch's length; the
//! script calibrates once and passes both to each load (`--iters`, `--kernel-ms`), so that
//! every launch is the same work whatever else runs. A load launches, waits for the kernel,
//! then sleeps `kernel_ms × (1 − duty) / duty`: alone on the GPU that is exactly the duty. Two
//! processes time-share the GPU (kernels of different processes do not run at once without
//! MPS), so when their duties add up past 1 their launches wait and each gets less than its
//! duty. The work each did is what it reports: `launches` × `kernel_ms` of SM time.
//!
//! Prints one JSON object on stdout at the end: pid, duty, seconds, iters, kernel_ms, launches,
//! busy_s (launches × kernel_ms), achieved_duty (busy_s over the wall time), wall_s, device.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cudarc::driver::sys::CUdevice_attribute;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

/// `busy(out, iters)`: each thread runs `iters` rounds of two dependent FMAs and stores the
/// result (so the JIT cannot drop the loop). PTX ISA 7.0, target sm_70: the driver JIT-compiles
/// it for whatever GPU is there (Volta and later).
const PTX: &str = r#"
.version 7.0
.target sm_70
.address_size 64

.visible .entry busy(
    .param .u64 out,
    .param .u32 iters
)
{
    .reg .pred %p<2>;
    .reg .f32 %f<6>;
    .reg .b32 %r<8>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [iters];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.u32 %r5, %r2, %r3, %r4;
    cvt.rn.f32.u32 %f1, %r5;
    mov.f32 %f2, 0f3F800000;
    mov.f32 %f3, 0f3F7FFFEF;
    mov.u32 %r6, 0;
LOOP:
    fma.rn.f32 %f1, %f1, %f3, %f2;
    fma.rn.f32 %f2, %f2, %f3, %f1;
    add.u32 %r6, %r6, 1;
    setp.lt.u32 %p1, %r6, %r1;
    @%p1 bra LOOP;
    add.f32 %f4, %f1, %f2;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd4, %rd2, %rd3;
    st.global.f32 [%rd4], %f4;
    ret;
}
"#;

/// Threads per block; blocks: this many per SM, so every SM has work.
const THREADS: u32 = 256;
const BLOCKS_PER_SM: u32 = 4;

#[derive(Debug)]
struct Args {
    device: usize,
    duty: f64,
    seconds: f64,
    launch_ms: f64,
    calibrate: bool,
    iters: Option<u32>,
    kernel_ms: Option<f64>,
}

const USAGE: &str = "usage: gpu-load --calibrate [--launch-ms MS] [--device N]
       gpu-load --duty D --seconds S [--iters N --kernel-ms MS | --launch-ms MS] [--device N]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        device: 0,
        duty: 0.5,
        seconds: 10.0,
        launch_ms: 5.0,
        calibrate: false,
        iters: None,
        kernel_ms: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--calibrate" {
            a.calibrate = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--device" => a.device = v.parse().map_err(|e| format!("{flag} {v}: {e}"))?,
            "--duty" => a.duty = num(&v)?,
            "--seconds" => a.seconds = num(&v)?,
            "--launch-ms" => a.launch_ms = num(&v)?,
            "--iters" => a.iters = Some(v.parse().map_err(|e| format!("{flag} {v}: {e}"))?),
            "--kernel-ms" => a.kernel_ms = Some(num(&v)?),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    if !(a.duty > 0.0 && a.duty <= 1.0) {
        return Err(format!("--duty {}: give a fraction in (0, 1]", a.duty));
    }
    if !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        return Err(format!("--seconds {}: give 0 to 3600", a.seconds));
    }
    if !(a.launch_ms >= 0.5 && a.launch_ms <= 100.0) {
        return Err(format!("--launch-ms {}: give 0.5 to 100", a.launch_ms));
    }
    if a.iters.is_some() != a.kernel_ms.is_some() {
        return Err("--iters and --kernel-ms go together (both from --calibrate)".into());
    }
    Ok(a)
}

/// The kernel on one device, ready to launch.
struct Gpu {
    stream: Arc<CudaStream>,
    f: CudaFunction,
    out: CudaSlice<f32>,
    cfg: LaunchConfig,
    name: String,
}

impl Gpu {
    fn open(device: usize) -> Result<Self, String> {
        // SAFETY: only tries to dlopen libcuda; no CUDA call is made.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err("libcuda.so not found: no NVIDIA driver here".into());
        }
        let ctx = CudaContext::new(device).map_err(|e| format!("CUDA device {device}: {e:?}"))?;
        let name = ctx.name().unwrap_or_default();
        let sms = ctx
            .attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| format!("SM count: {e:?}"))?;
        let blocks = u32::try_from(sms).unwrap_or(1).max(1) * BLOCKS_PER_SM;
        let module = ctx
            .load_module(Ptx::from_src(PTX))
            .map_err(|e| format!("loading the PTX kernel: {e:?}"))?;
        let f = module
            .load_function("busy")
            .map_err(|e| format!("kernel busy: {e:?}"))?;
        let stream = ctx.default_stream();
        let out = stream
            .alloc_zeros::<f32>((blocks * THREADS) as usize)
            .map_err(|e| format!("device memory: {e:?}"))?;
        Ok(Self {
            stream,
            f,
            out,
            cfg: LaunchConfig {
                grid_dim: (blocks, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            },
            name,
        })
    }

    /// One launch of `iters` rounds, waited for; how long it took from launch to the end.
    fn run(&mut self, iters: u32) -> Result<Duration, String> {
        let t = Instant::now();
        let mut b = self.stream.launch_builder(&self.f);
        b.arg(&mut self.out);
        b.arg(&iters);
        // SAFETY: `busy` takes (u64 pointer to blocks × THREADS floats, u32); `out` holds one
        // float per thread of the grid.
        unsafe { b.launch(self.cfg) }.map_err(|e| format!("launch: {e:?}"))?;
        self.stream
            .synchronize()
            .map_err(|e| format!("synchronize: {e:?}"))?;
        Ok(t.elapsed())
    }

    /// The loop count for launches of about `ms`, and the median length of such a launch.
    fn calibrate(&mut self, ms: f64) -> Result<(u32, f64), String> {
        self.run(1)?; // the first launch pays for the JIT and the context
        let mut iters: u32 = 1 << 12;
        for _ in 0..8 {
            let took = self.run(iters)?.as_secs_f64() * 1e3;
            let next = (f64::from(iters) * ms / took.max(1e-3)).clamp(1.0, f64::from(u32::MAX / 2));
            let done = (took - ms).abs() < 0.05 * ms;
            iters = next as u32;
            if done {
                break;
            }
        }
        let mut took: Vec<f64> = (0..7)
            .map(|_| self.run(iters).map(|d| d.as_secs_f64() * 1e3))
            .collect::<Result<_, _>>()?;
        took.sort_by(f64::total_cmp);
        Ok((iters, took[took.len() / 2]))
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpu-load: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpu-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<(), String> {
    let mut gpu = Gpu::open(a.device)?;
    let device = json_str(&gpu.name);
    if a.calibrate {
        let (iters, kernel_ms) = gpu.calibrate(a.launch_ms)?;
        println!("{{\"iters\": {iters}, \"kernel_ms\": {kernel_ms:.4}, \"device\": {device}}}");
        return Ok(());
    }
    let (iters, kernel_ms) = match (a.iters, a.kernel_ms) {
        (Some(i), Some(k)) => (i, k),
        _ => gpu.calibrate(a.launch_ms)?,
    };
    let rest = Duration::from_secs_f64(kernel_ms / 1e3 * (1.0 - a.duty) / a.duty);
    let total = Duration::from_secs_f64(a.seconds);
    let start = Instant::now();
    let mut launches = 0u64;
    while start.elapsed() < total {
        gpu.run(iters)?;
        launches += 1;
        if !rest.is_zero() {
            std::thread::sleep(rest);
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let busy = launches as f64 * kernel_ms / 1e3;
    println!(
        "{{\"pid\": {}, \"duty\": {}, \"seconds\": {}, \"iters\": {iters}, \"kernel_ms\": {kernel_ms:.4}, \"launches\": {launches}, \"busy_s\": {busy:.4}, \"achieved_duty\": {:.4}, \"wall_s\": {wall:.3}, \"device\": {device}}}",
        std::process::id(),
        a.duty,
        a.seconds,
        busy / wall
    );
    Ok(())
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
