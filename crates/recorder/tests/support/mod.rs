//! Shared by the integration tests of this crate.

pub mod fake_openwhisk;
