//! Power models the analyzer compares on the same data.

pub mod attribute;
pub mod dataset;
pub mod idle_policy;
pub mod linear;
pub mod model;
pub mod smartwatts;
pub mod smartwatts_model;
pub mod truth;
