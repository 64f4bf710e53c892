//! What a test that cannot run here does: skip outside CI, fail under CI (see README.md); and
//! the Docker daemon of the tests that drive real containers ([`docker`]); the host's steal
//! time, which tests comparing the trace's CPU time with the kernel's allow for ([`steal`]).

pub mod docker;
pub mod steal;

pub use steal::{online_cpus, steal_ns};

/// Whether `CI` is set (CI runs `CI=true bash .ci/run`); "", "0" and "false" count as unset.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// For a test that cannot run here: prints why and lets it pass, except under CI, where it
/// fails naming what is missing, so that a green CI means every such test ran.
#[track_caller]
pub fn cannot_run(why: &str) {
    cannot_run_in(why, under_ci());
}

/// [`cannot_run`] with the CI decision given, for testing the rule itself.
#[track_caller]
pub fn cannot_run_in(why: &str, ci: bool) {
    assert!(!ci, "CI is set and this test cannot run here: {why}");
    eprintln!("skipping: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "CI is set and this test cannot run here: no widget")]
    fn cannot_run_fails_under_ci() {
        cannot_run_in("no widget", true);
    }

    #[test]
    fn cannot_run_passes_outside_ci() {
        cannot_run_in("no widget", false);
    }
}
