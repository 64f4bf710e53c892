//! The built-in function suite: each function has its own power profile and is sized by one
//! integer input. In the spirit of FunctionBench (`float_operation`, `matmul`, `linpack`), but
//! written here from their descriptions.
//!
//! | function | profile | input |
//! |---|---|---|
//! | `int-loop` | CPU, integer ALU (xorshift and multiply chain) | iterations |
//! | `float-loop` | CPU, floating point (`sin`, `cos`, `sqrt` of i, like float_operation) | iterations |
//! | `matmul` | CPU, dense f64 multiply-add, cache-blocked by loop order (matmul/linpack) | matrix order n (n³ work) |
//! | `mem-stream` | memory bandwidth: STREAM triad over 3 × 32 MiB arrays | MiB moved |
//! | `cache-hash` | cache-resident dependent lookups in a 256 KiB table | lookups |
//! | `sleep` | IO wait: the instance sleeps | milliseconds |
//! | `bursty` | 4 bursts (float, int, hash, float), each followed by as long a sleep | iterations |
//!
//! Init (the cold start's `/init`) does real work: it "loads" `code_size_kb` of code
//! (generates and hashes it, keeping it resident) and builds the function's tables.

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    IntLoop,
    FloatLoop,
    Matmul,
    MemStream,
    CacheHash,
    Sleep,
    Bursty,
}

pub const ALL: [Function; 7] = [
    Function::IntLoop,
    Function::FloatLoop,
    Function::Matmul,
    Function::MemStream,
    Function::CacheHash,
    Function::Sleep,
    Function::Bursty,
];

/// Elements in each of mem-stream's three arrays: 4 Mi f64 = 32 MiB, well beyond a last-level
/// cache, so the triad runs at memory bandwidth.
const STREAM_ELEMS: usize = 4 << 20;
/// cache-hash's table: 32 Ki u64 = 256 KiB, resident in L2 on most server cores.
const TABLE_ELEMS: usize = 32 << 10;

impl Function {
    pub fn name(self) -> &'static str {
        match self {
            Function::IntLoop => "int-loop",
            Function::FloatLoop => "float-loop",
            Function::Matmul => "matmul",
            Function::MemStream => "mem-stream",
            Function::CacheHash => "cache-hash",
            Function::Sleep => "sleep",
            Function::Bursty => "bursty",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        ALL.into_iter().find(|f| f.name() == s)
    }

    /// The suite's names, for error messages.
    pub fn names() -> String {
        ALL.map(Function::name).join(", ")
    }

    pub fn profile(self) -> &'static str {
        match self {
            Function::IntLoop => "CPU-bound, integer ALU",
            Function::FloatLoop => "CPU-bound, floating point (sin, cos, sqrt)",
            Function::Matmul => "CPU-bound, dense f64 multiply-add",
            Function::MemStream => "memory-bandwidth-bound stream triad over 96 MiB",
            Function::CacheHash => "cache-resident dependent hash lookups (256 KiB)",
            Function::Sleep => "idle: IO wait",
            Function::Bursty => "bursts of compute separated by equal sleeps",
        }
    }

    pub fn input_unit(self) -> &'static str {
        match self {
            Function::IntLoop | Function::FloatLoop | Function::Bursty => "iterations",
            Function::Matmul => "matrix order n",
            Function::MemStream => "MiB moved",
            Function::CacheHash => "lookups",
            Function::Sleep => "milliseconds",
        }
    }

    /// The largest input accepted: far beyond a sensible run, small enough that a typo cannot
    /// allocate the machine away (matmul) or sleep for a day.
    pub fn max_input(self) -> u64 {
        match self {
            Function::IntLoop | Function::FloatLoop | Function::CacheHash | Function::Bursty => {
                100_000_000_000
            }
            Function::Matmul => 4096,
            Function::MemStream => 10_000_000,
            Function::Sleep => 3_600_000,
        }
    }

    /// Relative work of an input: what run time is proportional to.
    pub fn work(self, input: u64) -> f64 {
        match self {
            Function::Matmul => (input as f64).powi(3),
            _ => input as f64,
        }
    }

    /// The input whose work is `work` (inverse of [`Function::work`]), at least 1.
    pub fn input_for_work(self, work: f64) -> u64 {
        let x = match self {
            Function::Matmul => work.max(0.0).cbrt(),
            _ => work.max(0.0),
        };
        (x.round() as u64).clamp(1, self.max_input())
    }
}

/// An initialised function instance, as held by one runtime process.
#[derive(Debug)]
pub struct Instance {
    /// The "loaded code", kept resident like a runtime keeps its modules.
    code: Vec<u64>,
    code_hash: u64,
    state: State,
}

/// The function and its tables: built together, so a run always finds its own tables.
#[derive(Debug)]
enum State {
    IntLoop,
    FloatLoop,
    Matmul,
    MemStream {
        a: Vec<f64>,
        b: Vec<f64>,
        c: Vec<f64>,
    },
    CacheHash(Vec<u64>),
    Sleep,
    Bursty(Vec<f64>),
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// Init: loads `code_size_kb` KiB of "code" and builds the function's tables.
pub fn init(function: Function, code_size_kb: u64) -> Instance {
    let words = (code_size_kb as usize * 1024) / 8;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let code: Vec<u64> = (0..words).map(|_| xorshift(&mut seed)).collect();
    // "Parse" it: a multiply-rotate hash over every word, as an interpreter reads its modules.
    let code_hash = code.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, w| {
        (h ^ w).wrapping_mul(0x0100_0000_01B3).rotate_left(17)
    });
    let state = match function {
        Function::IntLoop => State::IntLoop,
        Function::FloatLoop => State::FloatLoop,
        Function::Matmul => State::Matmul,
        Function::MemStream => State::MemStream {
            // Written, not just allocated: zeroed allocations are untouched pages, and the first
            // run would pay their faults.
            a: (0..STREAM_ELEMS).map(|i| (i & 7) as f64).collect(),
            b: (0..STREAM_ELEMS).map(|i| i as f64).collect(),
            c: (0..STREAM_ELEMS).map(|i| (i % 1024) as f64).collect(),
        },
        Function::CacheHash => {
            let mut s = code_hash | 1;
            State::CacheHash((0..TABLE_ELEMS).map(|_| xorshift(&mut s)).collect())
        }
        Function::Sleep => State::Sleep,
        Function::Bursty => State::Bursty((0..65_536).map(|i| (i as f64 * 1e-4).sin()).collect()),
    };
    Instance {
        code: black_box(code),
        code_hash,
        state,
    }
}

impl Instance {
    pub fn function(&self) -> Function {
        match self.state {
            State::IntLoop => Function::IntLoop,
            State::FloatLoop => Function::FloatLoop,
            State::Matmul => Function::Matmul,
            State::MemStream { .. } => Function::MemStream,
            State::CacheHash(_) => Function::CacheHash,
            State::Sleep => Function::Sleep,
            State::Bursty(_) => Function::Bursty,
        }
    }

    /// Bytes the instance holds (code and tables).
    pub fn resident_bytes(&self) -> usize {
        let tables = match &self.state {
            State::MemStream { a, b, c } => (a.len() + b.len() + c.len()) * 8,
            State::CacheHash(t) => t.len() * 8,
            State::Bursty(v) => v.len() * 8,
            _ => 0,
        };
        self.code.len() * 8 + tables
    }

    /// One activation with input `input`: the function's result.
    pub fn run(&mut self, input: u64) -> Value {
        let f = self.function();
        let checksum = match &mut self.state {
            State::IntLoop => int_loop(input),
            State::FloatLoop => float_loop(input).to_bits(),
            State::Matmul => matmul(input.min(Function::Matmul.max_input()) as usize).to_bits(),
            State::MemStream { a, b, c } => stream(a, b, c, input),
            State::CacheHash(t) => cache_hash(t, input),
            State::Sleep => {
                std::thread::sleep(Duration::from_millis(input));
                input
            }
            State::Bursty(s) => bursty(s, input),
        };
        json!({
            "function": f.name(),
            "input": input,
            "checksum": format!("{:016x}", checksum ^ self.code_hash),
        })
    }
}

fn int_loop(n: u64) -> u64 {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut acc = 0u64;
    for i in 0..n {
        acc = acc
            .wrapping_add(xorshift(&mut x).wrapping_mul(i | 1))
            .rotate_left(5);
    }
    black_box(acc)
}

fn float_loop(n: u64) -> f64 {
    let mut s = 0.0f64;
    for i in 0..n {
        let x = i as f64;
        s += x.sin() + x.cos() + x.sqrt();
    }
    black_box(s)
}

fn matmul(n: usize) -> f64 {
    let mut seed = 0x1234_5678_9ABC_DEF1u64;
    let mut gen = || (xorshift(&mut seed) >> 11) as f64 / (1u64 << 53) as f64;
    let a: Vec<f64> = (0..n * n).map(|_| gen()).collect();
    let b: Vec<f64> = (0..n * n).map(|_| gen()).collect();
    let mut c = vec![0.0f64; n * n];
    // i-k-j order: the inner loop streams rows of b and c, which vectorises.
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            let (brow, crow) = (&b[k * n..(k + 1) * n], &mut c[i * n..(i + 1) * n]);
            for (cj, bj) in crow.iter_mut().zip(brow) {
                *cj += aik * bj;
            }
        }
    }
    black_box((0..n).map(|i| c[i * n + i]).sum())
}

/// STREAM triad a = b + s·c, 24 bytes moved per element, until `mib` MiB have moved.
fn stream(a: &mut [f64], b: &[f64], c: &[f64], mib: u64) -> u64 {
    let mut left = (mib as usize * (1 << 20)) / 24;
    let (mut pass, mut acc) = (0u64, 0u64);
    while left > 0 {
        let n = left.min(a.len());
        let s = 1.0 + pass as f64;
        for ((x, y), z) in a[..n].iter_mut().zip(&b[..n]).zip(&c[..n]) {
            *x = y + s * z;
        }
        acc = acc.rotate_left(7) ^ a[n - 1].to_bits() ^ n as u64;
        left -= n;
        pass += 1;
    }
    black_box(acc)
}

fn cache_hash(t: &mut [u64], n: u64) -> u64 {
    let mask = t.len() - 1;
    let mut h = 0x51_7CC1_B727_220Au64;
    for i in 0..n {
        let idx = (h as usize) & mask;
        let v = t[idx];
        t[idx] = v.wrapping_add(i);
        h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(23);
    }
    black_box(h)
}

/// Four bursts of compute (float, int, hash, float), each followed by a sleep as long as it.
fn bursty(sines: &[f64], n: u64) -> u64 {
    let quarter = n / 4;
    let mut acc = 0u64;
    for phase in 0..4 {
        let t0 = Instant::now();
        acc ^= match phase {
            0 | 3 => float_loop(quarter).to_bits(),
            1 => int_loop(quarter * 2),
            _ => {
                let mut h = acc;
                for i in 0..quarter {
                    h = h.wrapping_add(sines[(h as usize + i as usize) & 0xFFFF].to_bits());
                }
                h
            }
        };
        std::thread::sleep(t0.elapsed());
    }
    acc
}

/// Measures run time per unit of work of `function` on this machine, in this process: grows
/// the input until one run takes at least `target`. Returns milliseconds per unit of work.
pub fn calibrate(function: Function, target: Duration) -> f64 {
    if function == Function::Sleep {
        return 1.0;
    }
    let mut inst = init(function, 64);
    let mut input: u64 = match function {
        Function::Matmul => 32,
        Function::MemStream => 16,
        _ => 10_000,
    };
    loop {
        let t0 = Instant::now();
        inst.run(input);
        let dt = t0.elapsed();
        if dt >= target || input >= function.max_input() {
            return dt.as_secs_f64() * 1e3 / function.work(input);
        }
        input = match function {
            Function::Matmul => ((input as f64) * 1.5) as u64,
            _ => input.saturating_mul(4),
        }
        .min(function.max_input());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for f in ALL {
            assert_eq!(Function::from_name(f.name()), Some(f));
        }
        assert_eq!(Function::from_name("float_operation"), None);
        assert!(Function::names().contains("mem-stream"));
    }

    #[test]
    fn every_function_runs_and_depends_on_its_input() {
        for f in ALL {
            let mut inst = init(f, 16);
            let small = match f {
                Function::Matmul => 8,
                Function::MemStream => 1,
                Function::Sleep => 1,
                _ => 1000,
            };
            let r1 = inst.run(small);
            assert_eq!(r1["function"], f.name());
            assert_eq!(r1["input"], small);
            let r2 = inst.run(small * 2);
            if f != Function::Sleep {
                assert_ne!(r1["checksum"], r2["checksum"], "{}", f.name());
            }
        }
    }

    #[test]
    fn init_loads_code_and_tables() {
        let a = init(Function::IntLoop, 64);
        assert_eq!(a.resident_bytes(), 64 * 1024);
        let s = init(Function::MemStream, 64);
        assert_eq!(s.resident_bytes(), 64 * 1024 + 3 * STREAM_ELEMS * 8);
    }

    #[test]
    fn work_and_its_inverse_agree() {
        assert_eq!(
            Function::Matmul.input_for_work(Function::Matmul.work(200)),
            200
        );
        assert_eq!(Function::FloatLoop.input_for_work(12345.4), 12345);
        assert_eq!(Function::Sleep.input_for_work(0.0), 1);
        assert_eq!(Function::Matmul.input_for_work(1e30), 4096);
    }

    #[test]
    fn sleep_takes_its_input_in_ms_and_calibration_is_positive() {
        let mut inst = init(Function::Sleep, 1);
        let t0 = Instant::now();
        inst.run(30);
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let ms_per_unit = calibrate(Function::IntLoop, Duration::from_millis(5));
        assert!(ms_per_unit > 0.0 && ms_per_unit < 1.0, "{ms_per_unit}");
    }
}
