//! Tables derived from the rows the attribution wrote, computed with polars: `functions` (per
//! function, model, idle policy and domain), `activation_comparison` (every model side by side
//! per activation), the models' mean held-out errors over their folds (`model_errors`, for the
//! summary) and the summary's per-domain sums (`accounting`).
//!
//! They read the written `activations`, `activation_energy`, `container_energy` and
//! `model_eval` parts back (`rows`), not the attribution's memory: every grouping key is a
//! column there, and what a derived table says can be re-derived from the dataset alone.

pub mod accounting;
pub mod comparison;
pub mod energy_blocks;
pub mod functions;
pub mod key_rows;
pub mod model_errors;
pub mod rows;
