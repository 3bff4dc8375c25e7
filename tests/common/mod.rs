//! Shared by the integration tests and (via `#[path]`) the compiler's benchmarks: the
//! bundled examples, and one-element changes of answers.

#![allow(dead_code)] // each test binary uses its own part

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

/// Every one-element change of a JSON answer: ints ±1, bools flipped, strings/enums
/// swapped for another string seen in the answer, recursively.
pub fn perturbations(v: &serde_json::Value) -> Vec<serde_json::Value> {
    use serde_json::{json, Value as Json};
    let mut out = Vec::new();
    match v {
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                // At the ends of the int range the change leaves it (an answer that no int
                // domain accepts), or is not made.
                match i.checked_add(1) {
                    Some(up) => out.push(json!(up)),
                    None => out.push(json!(i as u64 + 1)),
                }
                if let Some(down) = i.checked_sub(1) {
                    out.push(json!(down));
                }
            }
        }
        Json::Bool(b) => out.push(json!(!b)),
        Json::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                for p in perturbations(x) {
                    let mut c = items.clone();
                    c[i] = p;
                    out.push(Json::Array(c));
                }
                if let Json::String(s) = x {
                    for other in items.iter().filter_map(Json::as_str).filter(|o| *o != s) {
                        let mut c = items.clone();
                        c[i] = json!(other);
                        out.push(Json::Array(c));
                    }
                }
            }
        }
        Json::Object(m) => {
            for (k, x) in m {
                for p in perturbations(x) {
                    let mut c = m.clone();
                    c.insert(k.clone(), p);
                    out.push(Json::Object(c));
                }
            }
        }
        _ => {}
    }
    out
}
