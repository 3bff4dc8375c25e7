//! Shared by the integration tests and (via `#[path]`) the compiler's benchmarks: the
//! bundled examples.

/// Every `examples/*.rsn` as (file stem, bytes), sorted by name. Works from the workspace
/// root package and from member crates (whose manifest dir is one level down).
pub fn examples() -> Vec<(String, Vec<u8>)> {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = if here.join("examples").is_dir() {
        here.join("examples")
    } else {
        here.join("../examples")
    };
    examples_in(&dir.to_string_lossy())
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
