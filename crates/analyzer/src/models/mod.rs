//! Power models the analyzer compares on the same data.

pub mod attribute;
pub mod dataset;
pub mod gpu_truth;
pub mod idle_policy;
pub mod linear;
pub mod local_linear;
pub mod model;
pub mod options;
pub mod per_function;
pub mod protocol;
pub mod recent_intervals;
pub mod smartwatts;
pub mod smartwatts_model;
pub mod spilled_intervals;
pub mod truth;
pub mod truth_metadata;
