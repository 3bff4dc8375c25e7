//! Shared by the integration tests: the bundled examples.

/// Every `examples/*.rsn` as (file stem, bytes), sorted by name.
pub fn examples() -> Vec<(String, Vec<u8>)> {
    examples_in(concat!(env!("CARGO_MANIFEST_DIR"), "/examples"))
}

pub fn examples_in(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("examples dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rsn"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).expect("readable example"),
            )
        })
        .collect();
    v.sort();
    v
}
