//! Property tests: extraction is total and finds embedded answers; decode(encode(v)) == v
//! for random values of random shapes.

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::select;
use resyn_runtime::shape::decode_reference;
use resyn_runtime::{
    decode, encode, extract, to_json_string, write_encoded, Domain, ExtractMode, Len, Shape, Value,
};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

const MODES: [ExtractMode; 5] = [
    ExtractMode::Auto,
    ExtractMode::Tag,
    ExtractMode::Fence,
    ExtractMode::Json,
    ExtractMode::Text,
];

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,5}"
}

fn leaf_shape() -> BoxedStrategy<Shape> {
    let int_domain = prop_oneof![
        Just(Domain::Any),
        (-1000i64..1000, 1i64..50).prop_map(|(lo, w)| Domain::Range { lo, hi: lo + w - 1 }),
        btree_set(any::<i64>(), 1..5)
            .prop_map(|s| Domain::Values(s.into_iter().map(Value::Int).collect())),
    ];
    let str_domain = prop_oneof![
        Just(Domain::Any),
        btree_set(any::<String>(), 1..4)
            .prop_map(|s| Domain::Values(s.iter().map(|s| Value::str(s)).collect())),
    ];
    prop_oneof![
        Just(Shape::Bool),
        int_domain.prop_map(|domain| Shape::Int { domain }),
        Just(Shape::Float),
        str_domain.prop_map(|domain| Shape::Str { domain }),
        Just(Shape::Unit),
        btree_set(name(), 1..5)
            .prop_map(|s| s.into_iter().collect::<Vec<_>>())
            .prop_shuffle()
            .prop_map(|variants| Shape::Enum { variants }),
    ]
    .boxed()
}

fn shape() -> BoxedStrategy<Shape> {
    leaf_shape()
        .prop_recursive(3, 24, 4, |inner| {
            let len = prop_oneof![
                Just(Len::Any),
                (0usize..4).prop_map(Len::Exact),
                (0usize..4).prop_map(Len::AtMost),
            ];
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Shape::Tuple),
                (inner.clone(), len).prop_map(|(e, len)| Shape::List {
                    elem: Box::new(e),
                    len
                }),
                inner.clone().prop_map(|e| Shape::Set(Box::new(e))),
                (prop_oneof![leaf_shape(), inner.clone()], inner.clone())
                    .prop_map(|(k, v)| Shape::Map(Box::new(k), Box::new(v))),
                proptest::collection::btree_map(name(), inner, 0..4)
                    .prop_map(|m| Shape::Record(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// Floats as the language has them: finite, never `-0.0` (language.md §10.3).
fn float() -> BoxedStrategy<f64> {
    prop_oneof![
        4 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        1 => select(vec![0.0, 0.1, 1e300, 5e-324, -1e-300]),
        1 => any::<i32>().prop_map(f64::from),
    ]
    .prop_map(|f| if f == 0.0 { 0.0 } else { f })
    .boxed()
}

/// Random values of a shape.
fn value(shape: &Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Shape::Int { domain } => match domain {
            Domain::Any => any::<i64>().prop_map(Value::Int).boxed(),
            Domain::Range { lo, hi } => (*lo..=*hi).prop_map(Value::Int).boxed(),
            Domain::Values(s) => select(s.iter().cloned().collect::<Vec<_>>()).boxed(),
        },
        Shape::Float => float().prop_map(Value::Float).boxed(),
        Shape::Str { domain } => match domain {
            Domain::Values(s) => select(s.iter().cloned().collect::<Vec<_>>()).boxed(),
            _ => any::<String>().prop_map(|s| Value::str(&s)).boxed(),
        },
        Shape::Unit => Just(Value::Unit).boxed(),
        Shape::Member { values, .. } => select(values.iter().cloned().collect::<Vec<_>>()).boxed(),
        Shape::Enum { variants } => {
            let variants = variants.clone();
            (0..variants.len())
                .prop_map(move |i| Value::Enum(i as u32, Rc::from(variants[i].as_str())))
                .boxed()
        }
        Shape::Tuple(shapes) => shapes
            .iter()
            .map(value)
            .collect::<Vec<_>>()
            .prop_map(Value::tuple)
            .boxed(),
        Shape::List { elem, len } => {
            let size = match *len {
                Len::Any => 0..4,
                Len::Exact(n) => n..n + 1,
                Len::AtMost(n) => 0..n + 1,
            };
            vec(value(elem), size).prop_map(Value::list).boxed()
        }
        Shape::Set(elem) => vec(value(elem), 0..4)
            .prop_map(|v| Value::Set(Rc::new(v.into_iter().collect::<BTreeSet<_>>())))
            .boxed(),
        Shape::Map(k, v) => vec((value(k), value(v)), 0..4)
            .prop_map(|kv| Value::Map(Rc::new(kv.into_iter().collect::<BTreeMap<_, _>>())))
            .boxed(),
        Shape::Record(fields) => {
            let names: Vec<Rc<str>> = fields.iter().map(|(n, _)| Rc::from(n.as_str())).collect();
            fields
                .iter()
                .map(|(_, s)| value(s))
                .collect::<Vec<_>>()
                .prop_map(move |vs| Value::record(names.iter().cloned().zip(vs).collect()))
                .boxed()
        }
    }
}

/// JSON texts near the values of a shape: mostly well-formed for it, with the mistakes
/// decoding must catch mixed in at every level (ints at and just past domain bounds,
/// integral floats, strings for numbers, lengths around the bound, duplicate set elements,
/// map keys and record fields, missing and unknown fields, unknown variants).
fn near(shape: &Shape) -> BoxedStrategy<String> {
    // Mostly valid, so that one mistake is not hidden behind another.
    prop_oneof![
        3 => value(shape).prop_map(|v| to_json_string(&v)),
        2 => near_miss(shape),
    ]
    .boxed()
}

fn near_miss(shape: &Shape) -> BoxedStrategy<String> {
    let json = |v: &Value| to_json_string(v);
    let quoted = |s: &str| serde_json::to_string(s).unwrap();
    match shape {
        Shape::Bool => select(vec!["true", "false", "0", "1", "\"true\"", "null"])
            .prop_map(str::to_string)
            .boxed(),
        Shape::Int { domain } => {
            let mut picks: Vec<String> = vec![
                "0".into(),
                "1.0".into(),
                "1.5".into(),
                "\"1\"".into(),
                "9223372036854775808".into(),
                "-9223372036854775808".into(),
                "1e3".into(),
                "-0.0".into(),
                "+1".into(),
                "01".into(),
                "true".into(),
                "1e19".into(),
                "-1e19".into(),
            ];
            match domain {
                Domain::Range { lo, hi } => {
                    for i in [lo - 1, *lo, *hi, hi + 1] {
                        picks.push(i.to_string());
                        picks.push(format!("{i}.0"));
                    }
                }
                Domain::Values(set) => {
                    for v in set {
                        if let Value::Int(i) = v {
                            picks.extend([i.to_string(), (i + 1).to_string()]);
                        }
                    }
                }
                Domain::Any => picks.push("-5".into()),
            }
            select(picks).boxed()
        }
        Shape::Float => select(vec![
            "0",
            "-0.0",
            "1e308",
            "1e999",
            "2.5",
            "-7",
            "18446744073709551615",
            "\"NaN\"",
            "true",
        ])
        .prop_map(str::to_string)
        .boxed(),
        Shape::Str { domain } => {
            let mut picks = vec![quoted("x"), quoted(""), "1".into(), quoted("a\u{1}\"\\é")];
            if let Domain::Values(set) = domain {
                picks.extend(set.iter().map(json));
            }
            select(picks).boxed()
        }
        Shape::Unit => select(vec!["null", "[]", "[null]", "{}", "0"])
            .prop_map(str::to_string)
            .boxed(),
        Shape::Member { values, .. } => {
            let mut picks: Vec<String> = values.iter().map(json).collect();
            picks.push("0".into());
            select(picks).boxed()
        }
        Shape::Enum { variants } => {
            let mut picks: Vec<String> = variants.iter().map(|v| quoted(v)).collect();
            picks.extend([quoted("zz"), "0".into()]);
            if let Some(v) = variants.first() {
                picks.push(quoted(&v.to_uppercase()));
            }
            select(picks).boxed()
        }
        Shape::Tuple(shapes) => {
            let items: Vec<BoxedStrategy<String>> = shapes.iter().map(near).collect();
            (items, 0..4u8)
                .prop_map(|(mut v, how)| {
                    match how {
                        0 => {
                            v.pop();
                        }
                        1 => v.push("1".into()),
                        _ => {}
                    }
                    format!("[{}]", v.join(","))
                })
                .boxed()
        }
        Shape::List { elem, .. } => vec(near(elem), 0..6)
            .prop_map(|v| format!("[{}]", v.join(",")))
            .boxed(),
        Shape::Set(elem) => (vec(near(elem), 0..4), any::<bool>())
            .prop_map(|(mut v, dup)| {
                if dup && !v.is_empty() {
                    v.push(v[0].clone());
                }
                format!("[{}]", v.join(","))
            })
            .boxed(),
        Shape::Map(k, v) => {
            let keys = prop_oneof![
                near(k).prop_map(move |t| serde_json::to_string(&t.trim_matches('"')).unwrap()),
                near(k).prop_map(|t| serde_json::to_string(&t).unwrap()),
            ];
            let object = (vec((keys, near(v)), 0..4), any::<bool>()).prop_map(|(kv, dup)| {
                let mut m: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                if dup && !m.is_empty() {
                    m.push(m[0].clone());
                }
                format!("{{{}}}", m.join(","))
            });
            let pairs =
                (vec((near(k), near(v), 0..8u8), 0..4), any::<bool>()).prop_map(|(kv, dup)| {
                    let mut m: Vec<String> = kv
                        .iter()
                        .map(|(k, v, how)| match how {
                            0 => format!("[{k}]"),
                            1 => format!("[{k},{v},{v}]"),
                            _ => format!("[{k},{v}]"),
                        })
                        .collect();
                    if dup && !m.is_empty() {
                        m.push(m[0].clone());
                    }
                    format!("[{}]", m.join(","))
                });
            prop_oneof![object, pairs].boxed()
        }
        Shape::Record(fields) => {
            let names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
            let values: Vec<BoxedStrategy<String>> = fields.iter().map(|(_, s)| near(s)).collect();
            (values, 0..6u8, any::<prop::sample::Index>())
                .prop_map(move |(vs, how, i)| {
                    let mut m: Vec<String> = names
                        .iter()
                        .zip(&vs)
                        .map(|(n, v)| format!("{}:{v}", serde_json::to_string(n).unwrap()))
                        .collect();
                    if !m.is_empty() {
                        let i = i.index(m.len());
                        match how {
                            0 => {
                                m.remove(i);
                            }
                            1 => m.push(m[i].clone()),
                            2 => m.swap(0, i),
                            _ => {}
                        }
                    }
                    if how == 3 {
                        m.push("\"zz_unknown\":1".into());
                    }
                    format!("{{{}}}", m.join(","))
                })
                .boxed()
        }
    }
}

fn shape_and_near() -> impl Strategy<Value = (Shape, String)> {
    shape().prop_flat_map(|s| {
        let t = near(&s);
        (Just(s), t)
    })
}

fn shape_and_value() -> impl Strategy<Value = (Shape, Value)> {
    shape().prop_flat_map(|s| {
        let v = value(&s);
        (Just(s), v)
    })
}

/// Text made of the fragments the extractor cares about.
fn tricky_text(with_brackets: bool, with_tags: bool) -> BoxedStrategy<String> {
    let mut frags = vec![
        "\"",
        "\\",
        ",",
        ":",
        "1",
        "-2.5e3",
        "007",
        "true",
        "null",
        "x",
        " ",
        "\n",
        "\r\n",
        "é",
        "答",
        "`",
        "```",
        "```json\n",
        ".",
        "\\u00",
        "\t",
    ];
    if with_brackets {
        frags.extend(["[", "]", "{", "}", "[\"", "\"]", "{\"a\":"]);
    }
    if with_tags {
        frags.extend(["<answer>", "</answer>", "<ANSWER >", "</answer", "<", ">"]);
    }
    vec(select(frags), 0..60).prop_map(|v| v.concat()).boxed()
}

fn check_extract(s: &str) {
    for mode in MODES {
        if let Ok(e) = extract(s, mode) {
            let (p, q) = (s.as_ptr() as usize, e.text.as_ptr() as usize);
            assert!(q >= p && q + e.text.len() <= p + s.len(), "not a slice");
            assert_ne!(e.how, ExtractMode::Auto);
            if e.how == ExtractMode::Json {
                // What the JSON rule finds is JSON (by the grammar: serde_json also
                // refuses numbers beyond the f64 range, like 1e400).
                if let Err(err) = serde_json::from_str::<serde_json::Value>(e.text) {
                    assert!(
                        err.to_string().contains("number out of range"),
                        "{mode} on {s:?} gave {:?}: {err}",
                        e.text
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn extract_is_total_on_any_string(s in any::<String>()) {
        check_extract(&s);
    }

    #[test]
    fn extract_is_total_on_tricky_text(s in tricky_text(true, true)) {
        check_extract(&s);
    }

    #[test]
    fn decode_is_total((shape, _) in shape_and_value(), s in tricky_text(true, false)) {
        let _ = decode(&s, &shape);
    }

    /// `decode` answers from its fast pass when it can: it must agree with the reference
    /// pass on every text, valid or not, value and error alike.
    #[test]
    fn decode_fast_pass_agrees_with_the_reference(
        (shape, v) in shape_and_value(),
        (_, other) in shape_and_value(),
        junk in tricky_text(true, false),
        cut in any::<prop::sample::Index>(),
        edit in any::<prop::sample::Index>(),
        byte in select(vec!["", "1", "-", "\"", "[", "]", "{", "}", ",", ":", "null", "1.5", "1e3", " "]),
    ) {
        let text = to_json_string(&v);
        let pretty = serde_json::to_string_pretty(&encode(&v)).unwrap();
        // A small edit of a valid text: something replaced at a char boundary.
        let at = edit.index(text.len() + 1);
        let edited = if text.is_char_boundary(at) {
            let end = (at + 1..=text.len()).find(|&e| text.is_char_boundary(e)).unwrap_or(at);
            format!("{}{byte}{}", &text[..at], &text[end..])
        } else {
            text.clone()
        };
        let cut_at = cut.index(text.len() + 1);
        let truncated = if text.is_char_boundary(cut_at) { &text[..cut_at] } else { "" };
        for t in [
            text.as_str(),
            pretty.as_str(),
            edited.as_str(),
            truncated,
            &to_json_string(&other),
            &junk,
            &format!("[{text},{text}]"),
            &format!("{{\"a\":{text}}}"),
        ] {
            prop_assert_eq!(decode(t, &shape), decode_reference(t, &shape), "{}", t);
        }
    }

    /// Rows write values with `write_encoded`: serde_json's text of `encode`, byte for byte.
    #[test]
    fn write_encoded_prints_encode((_, v) in shape_and_value()) {
        let mut out = Vec::new();
        write_encoded(&mut out, &v);
        prop_assert_eq!(String::from_utf8(out).unwrap(), encode(&v).to_string());
    }

    #[test]
    fn decode_inverts_encode((shape, v) in shape_and_value()) {
        let text = to_json_string(&v);
        let back = decode(&text, &shape);
        prop_assert_eq!(back.as_ref(), Ok(&v), "{}", text);
        // to_json_string is encode's JSON text, and decode accepts serde_json's printing.
        let tree: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&tree, &encode(&v));
        let pretty = serde_json::to_string_pretty(&encode(&v)).unwrap();
        prop_assert_eq!(decode(&pretty, &shape), Ok(v.clone()));
        // Deterministic.
        prop_assert_eq!(to_json_string(&back.unwrap()), text);
    }

    #[test]
    fn the_json_rule_finds_an_embedded_value(
        (_, v) in shape_and_value(),
        prefix in tricky_text(true, false),
        suffix in tricky_text(false, false),
    ) {
        // Wrapped: the composite rule is the one under test.
        let json = to_json_string(&Value::list(vec![v]));
        // The newline ends any string the prefix left open.
        let text = format!("{prefix}\n{json}{suffix}");
        let e = extract(&text, ExtractMode::Json).unwrap();
        prop_assert_eq!(e.text, json.as_str());
    }

    #[test]
    fn the_tag_rule_finds_a_tagged_value(
        (_, v) in shape_and_value(),
        prefix in tricky_text(true, false),
        suffix in tricky_text(true, false),
    ) {
        let json = to_json_string(&v);
        prop_assume!(!json.to_ascii_lowercase().contains("answer") && !json.starts_with("```"));
        let text = format!("{prefix}<answer>{json}</answer>{suffix}");
        let e = extract(&text, ExtractMode::Auto).unwrap();
        prop_assert_eq!(e.how, ExtractMode::Tag);
        prop_assert_eq!(e.text, json.trim());
    }
}

proptest! {
    // Cheap cases, and each rule of the fast pass is only hit by some shapes: many of them.
    #![proptest_config(ProptestConfig { cases: 8192, ..ProptestConfig::default() })]

    /// `decode`'s fast pass and the reference agree on texts near the shape's values,
    /// where the rules are.
    #[test]
    fn decode_fast_pass_agrees_near_the_rules((shape, text) in shape_and_near()) {
        prop_assert_eq!(decode(&text, &shape), decode_reference(&text, &shape), "{}", text);
    }
}

fn hash_of(v: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// `Hash` agrees with `==` (the total order's equality): equal values hash equally,
    /// including a value and its decoded JSON form (a rebuilt tree), and floats that
    /// `==` tells apart by bits only (0.0 and -0.0) are unequal.
    #[test]
    fn equal_values_hash_equally((shape, v) in shape_and_value(), (_, w) in shape_and_value()) {
        let again = decode(&to_json_string(&v), &shape);
        if let Ok(again) = again {
            if again == v {
                prop_assert_eq!(hash_of(&again), hash_of(&v));
            }
        }
        if v == w {
            prop_assert_eq!(hash_of(&v), hash_of(&w));
        }
        prop_assert_eq!(hash_of(&v), hash_of(&v.clone()));
    }
}

#[test]
fn hash_follows_equality_on_edge_cases() {
    // Enums compare by variant index only.
    let (a, b) = (Value::Enum(1, Rc::from("x")), Value::Enum(1, Rc::from("y")));
    assert_eq!(a, b);
    assert_eq!(hash_of(&a), hash_of(&b));
    assert_ne!(Value::Float(0.0), Value::Float(-0.0));
    // A tuple and a list of the same items are different values.
    let items = vec![Value::Int(1), Value::Int(2)];
    assert_ne!(Value::tuple(items.clone()), Value::list(items.clone()));
    assert_ne!(
        hash_of(&Value::tuple(items.clone())),
        hash_of(&Value::list(items))
    );
}
