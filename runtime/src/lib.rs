//! The resyn runtime: the only crate that emitted code links against, and the value model
//! the in-process evaluator uses. Everything here is deterministic and total: no panics
//! on any input, errors are values.

#[cfg(feature = "cli")]
pub mod cli;
pub mod env;
pub mod extract;
pub mod native;
pub mod ops;
pub mod rng;
pub mod rows;
pub mod shape;
pub mod value;

pub use extract::{extract, ExtractError, ExtractMode, Extracted, MAX_RESPONSE_BYTES};
pub use rng::{derive_seed, Rng};
pub use shape::{
    decode, decode_answer, encode, to_json_string, write_encoded, DecodeError, Domain, Len, Shape,
};
pub use value::{RtError, RtResult, Value};
