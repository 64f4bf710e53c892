//! Tables derived from the attribution: `functions` (per function, model, idle policy and
//! domain) and `activation_comparison` (every model side by side per activation).

pub mod comparison;
pub mod functions;
