//! Shared by the integration tests of this crate: the fake OpenWhisk API, what a test that
//! cannot run here does, and the checks around running `pws-record`.

#![allow(dead_code)] // each test file uses part of it

pub mod fake_openwhisk;

/// What a test that cannot run here does (skip outside CI, fail under CI).
pub use pws_test_support::cannot_run;

/// Whether this process is root: `pws-record`'s system-wide perf needs it.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Asserts that a command exited 0, showing its stderr when it did not.
#[track_caller]
pub fn assert_ran(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
