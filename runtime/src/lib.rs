//! The resyn runtime: the only crate that emitted code links against, and the value model
//! the in-process evaluator uses. Everything here is deterministic and total: no panics
//! on any input, errors are values.

pub mod rng;
pub mod value;

pub use rng::{derive_seed, Rng};
pub use value::{RtError, Value};
