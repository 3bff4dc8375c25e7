//! The standard library: `.rsn` modules under `stdlib/`, embedded at build time.

include!(concat!(env!("OUT_DIR"), "/stdlib_modules.rs"));

/// Source of `std::NAME`, if such a module exists.
pub fn module(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(n, _)| *n)
}
