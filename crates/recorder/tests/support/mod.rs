//! Shared by the integration tests of this crate: the fake OpenWhisk API and what a test that
//! cannot run here does.

#![allow(dead_code)] // each test file uses part of it

pub mod fake_openwhisk;

/// What a test that cannot run here does (skip outside CI, fail under CI).
pub use pws_test_support::cannot_run;
