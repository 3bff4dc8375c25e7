//! Decoding answers against shapes, and the canonical JSON encoding.

use resyn_runtime::{
    decode, decode_answer, encode, extract, to_json_string, Domain, ExtractMode, Len, Shape, Value,
    MAX_RESPONSE_BYTES,
};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

fn int() -> Shape {
    Shape::Int {
        domain: Domain::Any,
    }
}
fn range(lo: i64, hi_exclusive: i64) -> Shape {
    Shape::Int {
        domain: Domain::Range {
            lo,
            hi: hi_exclusive - 1,
        },
    }
}
fn string() -> Shape {
    Shape::Str {
        domain: Domain::Any,
    }
}
fn list(elem: Shape, len: Len) -> Shape {
    Shape::List {
        elem: Box::new(elem),
        len,
    }
}
fn map(k: Shape, v: Shape) -> Shape {
    Shape::Map(Box::new(k), Box::new(v))
}
fn set(elem: Shape) -> Shape {
    Shape::Set(Box::new(elem))
}
fn record(fields: &[(&str, Shape)]) -> Shape {
    let mut f: Vec<(String, Shape)> = fields
        .iter()
        .map(|(n, s)| (n.to_string(), s.clone()))
        .collect();
    f.sort_by(|a, b| a.0.cmp(&b.0));
    Shape::Record(f)
}
fn action() -> Shape {
    Shape::Enum {
        variants: vec!["fill".into(), "empty".into(), "pour".into()],
    }
}
fn ints(v: &[i64]) -> Value {
    Value::list(v.iter().map(|i| Value::Int(*i)).collect())
}
fn en(i: u32, name: &str) -> Value {
    Value::Enum(i, Rc::from(name))
}

/// The error message (Display) of a failing decode.
fn err(text: &str, shape: &Shape) -> String {
    match decode(text, shape) {
        Ok(v) => panic!("{text:?} decoded to {}", v.display()),
        Err(e) => {
            assert_eq!(e.to_string(), e.message);
            e.to_string()
        }
    }
}

fn ok(text: &str, shape: &Shape) -> Value {
    decode(text, shape).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

// ----- precise errors -------------------------------------------------------------------

#[test]
fn wrong_type_names_the_path() {
    let s = list(int(), Len::Any);
    assert_eq!(
        err(r#"[1, 2, "x"]"#, &s),
        r#"expected an int at $[2], found "x""#
    );
    let e = decode(r#"[1, 2, "x"]"#, &s).unwrap_err();
    assert_eq!(e.path, "$[2]");
    assert_eq!(err("{}", &s), "expected an array, found an object");
    assert_eq!(
        err("[[1]]", &s),
        "expected an int at $[0], found an array of 1 element"
    );
}

#[test]
fn out_of_domain() {
    let s = list(range(0, 3), Len::Any);
    assert_eq!(err("[0, 1, 2, 2, 7]", &s), "7 is not in 0..3 at $[4]");
    assert_eq!(err("-1", &range(0, 3)), "-1 is not in 0..3");
    let odd = Shape::Int {
        domain: Domain::Values([1, 3, 5].map(Value::Int).into()),
    };
    assert_eq!(ok("3", &odd), Value::Int(3));
    assert_eq!(err("4", &odd), "4 is not one of {1, 3, 5}");
    let names = Shape::Str {
        domain: Domain::Values([Value::str("ann"), Value::str("bob")].into()),
    };
    assert_eq!(ok(r#""bob""#, &names), Value::str("bob"));
    assert_eq!(
        err(r#""eve""#, &names),
        r#""eve" is not one of {"ann", "bob"}"#
    );
}

#[test]
fn wrong_length() {
    let s = list(int(), Len::Exact(9));
    assert_eq!(err("[1,2,3,4,5,6,7,8]", &s), "expected 9 elements, found 8");
    assert_eq!(
        ok("[1,2,3,4,5,6,7,8,9]", &s),
        ints(&[1, 2, 3, 4, 5, 6, 7, 8, 9])
    );
    let s = list(int(), Len::AtMost(2));
    assert_eq!(err("[1,2,3]", &s), "expected at most 2 elements, found 3");
    assert_eq!(ok("[]", &s), ints(&[]));
    let t = Shape::Tuple(vec![int(), Shape::Bool]);
    assert_eq!(err("[1]", &t), "expected 2 elements, found 1");
    assert_eq!(
        ok("[1, true]", &t),
        Value::tuple(vec![Value::Int(1), Value::Bool(true)])
    );
}

#[test]
fn paths_through_records_lists_and_maps() {
    let step = record(&[("jug", range(0, 2)), ("action", action())]);
    let s = list(step, Len::Any);
    let text = r#"[{"jug": 0, "action": "fill"}, {"jug": 1, "action": "pour"},
                   {"jug": 5, "action": "fill"}]"#;
    assert_eq!(err(text, &s), "5 is not in 0..2 at $[2].jug");
    let m = map(string(), list(int(), Len::Any));
    assert_eq!(
        err(r#"{"a": [1], "b c": [2, true]}"#, &m),
        r#"expected an int at $["b c"][1], found true"#
    );
    let m = map(Shape::Tuple(vec![int(), int()]), Shape::Bool);
    assert_eq!(
        err("[[[1, 2], true], [[3, 4], 0]]", &m),
        "expected a bool at $[1][1], found 0"
    );
    assert_eq!(
        err("[[[1, 2], true], [[3, 4]]]", &m),
        "expected a [key, value] pair at $[1], found an array of 1 element"
    );
}

#[test]
fn numbers() {
    // Integral floats are ints; other floats are not.
    assert_eq!(ok("3.0", &int()), Value::Int(3));
    assert_eq!(ok("1e3", &int()), Value::Int(1000));
    assert_eq!(ok("-0.0", &int()), Value::Int(0));
    assert_eq!(err("2.5", &int()), "expected an int, found 2.5");
    assert_eq!(ok("9223372036854775807", &int()), Value::Int(i64::MAX));
    assert_eq!(ok("-9223372036854775808", &int()), Value::Int(i64::MIN));
    assert_eq!(
        err("9223372036854775808", &int()),
        "9223372036854775808 is out of the int range"
    );
    assert_eq!(err("1e300", &int()), "1e300 is out of the int range");
    // Past the i64 range, numbers the parser reads as doubles are refused, not saturated
    // (this one, the double -2^63, used to read as i64::MIN).
    assert_eq!(
        err("-9223372036854775809", &int()),
        "-9.223372036854776e18 is out of the int range"
    );
    assert_eq!(
        err("99999999999999999999", &int()),
        "1e20 is out of the int range"
    );
    // Integral doubles are ints only below 2^53, where they are exactly their text: from
    // it on the double may be a rounding (…993.0 reads as …992 = 2^53).
    assert_eq!(ok("9007199254740991.0", &int()), Value::Int((1 << 53) - 1));
    assert_eq!(
        ok("-9.007199254740991e15", &int()),
        Value::Int(1 - (1 << 53))
    );
    assert_eq!(
        err("9007199254740993.0", &int()),
        "9007199254740992.0 cannot be read exactly as an int: write it as a JSON integer, \
         without a fraction or exponent"
    );
    assert_eq!(
        err("[1e18]", &list(int(), Len::Any)),
        "1e18 cannot be read exactly as an int at $[0]: write it as a JSON \
         integer, without a fraction or exponent"
    );
    // The integer form of the same values is exact.
    assert_eq!(
        ok("1000000000000000000", &int()),
        Value::Int(1_000_000_000_000_000_000)
    );
    // Ints are never strings (outside map keys), bools never numbers.
    assert_eq!(err(r#""3""#, &int()), r#"expected an int, found "3""#);
    assert_eq!(err("true", &int()), "expected an int, found true");
    // Floats take any number; -0.0 is normalised; non-finite names are refused (no float
    // value of the language is NaN or infinite).
    assert_eq!(ok("3", &Shape::Float), Value::Float(3.0));
    assert_eq!(ok("0.1", &Shape::Float), Value::Float(0.1));
    let zero = ok("-0.0", &Shape::Float);
    assert!(matches!(zero, Value::Float(f) if f == 0.0 && f.is_sign_positive()));
    for name in ["NaN", "Infinity", "-Infinity"] {
        assert_eq!(
            err(&format!("\"{name}\""), &Shape::Float),
            format!("{name} is not a finite number")
        );
    }
    assert_eq!(
        err(r#""inf""#, &Shape::Float),
        r#"expected a number, found "inf""#
    );
    assert!(err("1e400", &Shape::Float).starts_with("invalid JSON: number out of range"));
}

#[test]
fn bools_are_only_true_and_false() {
    assert_eq!(ok(" true ", &Shape::Bool), Value::Bool(true));
    assert_eq!(err("1", &Shape::Bool), "expected a bool, found 1");
    assert_eq!(err("0", &Shape::Bool), "expected a bool, found 0");
    assert_eq!(
        err(r#""true""#, &Shape::Bool),
        r#"expected a bool, found "true""#
    );
}

#[test]
fn enums_by_exact_name() {
    assert_eq!(ok(r#""pour""#, &action()), en(2, "pour"));
    assert_eq!(
        err(r#""Pour""#, &action()),
        r#"unknown variant "Pour", expected one of: fill, empty, pour"#
    );
    assert_eq!(
        err("2", &action()),
        "expected a variant name (one of: fill, empty, pour), found 2"
    );
}

#[test]
fn records() {
    let s = record(&[("x", int()), ("y", Shape::Bool)]);
    let want = Value::record(vec![
        (Rc::from("x"), Value::Int(1)),
        (Rc::from("y"), Value::Bool(false)),
    ]);
    assert_eq!(ok(r#"{"y": false, "x": 1}"#, &s), want);
    assert_eq!(err(r#"{"x": 1}"#, &s), r#"missing field "y""#);
    assert_eq!(
        err(r#"{"x": 1, "y": true, "z": 0, "w": 1}"#, &s),
        r#"unknown fields "z", "w""#
    );
    assert_eq!(
        err(r#"[{"x": 1, "yy": true}]"#, &list(s.clone(), Len::Any)),
        r#"missing field "y" and unknown field "yy" at $[0]"#
    );
    assert_eq!(
        err(r#"{"x": 1, "y": true, "x": 2}"#, &s),
        r#"duplicate field "x" at $.x"#
    );
    assert_eq!(
        err("[1, true]", &s),
        "expected an object (a record), found an array of 2 elements"
    );
    assert_eq!(ok("{}", &Shape::Record(vec![])), Value::record(vec![]));
}

#[test]
fn sets() {
    let s = set(int());
    let want: BTreeSet<Value> = [Value::Int(1), Value::Int(3)].into();
    assert_eq!(ok("[3, 1]", &s), Value::Set(Rc::new(want)));
    assert_eq!(err("[3, 1, 3]", &s), "duplicate set element 3 at $[2]");
    assert_eq!(err("[3, 3.0]", &s), "duplicate set element 3 at $[1]");
}

#[test]
fn maps_with_int_keys_accept_string_keys_only_in_objects() {
    let s = map(int(), Shape::Bool);
    let want = Value::Map(Rc::new(
        [
            (Value::Int(-2), Value::Bool(false)),
            (Value::Int(3), Value::Bool(true)),
        ]
        .into(),
    ));
    assert_eq!(ok(r#"{"3": true, "-2": false}"#, &s), want);
    assert_eq!(ok("[[3, true], [-2, false]]", &s), want);
    assert_eq!(ok("{}", &s), Value::Map(Rc::new(BTreeMap::new())));
    assert_eq!(ok("[]", &s), Value::Map(Rc::new(BTreeMap::new())));
    assert_eq!(
        err(r#"{"03": true}"#, &s),
        r#"expected an int key at $["03"], found "03""#
    );
    assert_eq!(
        err(r#"{"3.0": true}"#, &s),
        r#"expected an int key at $["3.0"], found "3.0""#
    );
    assert_eq!(
        err(r#"{" 3": true}"#, &s),
        r#"expected an int key at $[" 3"], found " 3""#
    );
    assert_eq!(
        err(r#"[["3", true]]"#, &s),
        r#"expected an int at $[0][0], found "3""#
    );
    assert_eq!(
        err(r#"{"3": true, "3": false}"#, &s),
        r#"duplicate map key 3 at $["3"]"#
    );
    assert_eq!(
        err("[[3, true], [3.0, false]]", &s),
        "duplicate map key 3 at $[1][0]"
    );
    let d = map(range(0, 3), Shape::Bool);
    assert_eq!(err(r#"{"7": true}"#, &d), r#"7 is not in 0..3 at $["7"]"#);
    assert_eq!(
        err(r#"{"99999999999999999999": true}"#, &s),
        r#"99999999999999999999 is out of the int range at $["99999999999999999999"]"#
    );
}

#[test]
fn maps_with_other_keys() {
    let b = map(Shape::Bool, int());
    assert_eq!(
        ok(r#"{"true": 1, "false": 0}"#, &b),
        ok("[[false, 0], [true, 1]]", &b)
    );
    let e = map(action(), int());
    let v = ok(r#"{"pour": 1, "fill": 2}"#, &e);
    assert_eq!(to_json_string(&v), r#"{"fill":2,"pour":1}"#);
    assert_eq!(
        err(r#"{"Pour": 1}"#, &e),
        r#"unknown variant "Pour" at $.Pour, expected one of: fill, empty, pour"#
    );
    let f = map(Shape::Float, int());
    assert_eq!(ok(r#"{"2.5": 1}"#, &f), ok("[[2.5, 1]]", &f));
    let t = map(Shape::Tuple(vec![int()]), int());
    assert!(err(r#"{"[1]": 1}"#, &t)
        .starts_with("keys of this map cannot be written as object keys at $[\"[1]\"]"));
}

#[test]
fn unit() {
    assert_eq!(ok("null", &Shape::Unit), Value::Unit);
    assert_eq!(ok("[]", &Shape::Unit), Value::Unit);
    assert_eq!(
        err("{}", &Shape::Unit),
        "expected null (unit), found an object"
    );
}

#[test]
fn whitespace_and_syntax() {
    assert_eq!(ok("\r\n [1, 2]\t\n", &list(int(), Len::Any)), ints(&[1, 2]));
    assert!(
        err("[1, 2] x", &list(int(), Len::Any)).starts_with("invalid JSON: trailing characters")
    );
    assert!(err("", &int()).starts_with("invalid JSON: EOF while parsing"));
    assert!(err("[1, 2,]", &list(int(), Len::Any)).starts_with("invalid JSON"));
    assert!(err("'a'", &string()).starts_with("invalid JSON"));
    let long = format!("\"{}\"", "y".repeat(100));
    assert_eq!(
        err(&long, &int()),
        format!("expected an int, found \"{}…\"", "y".repeat(40))
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let n = 100_000;
    let s = "[".repeat(n);
    let e = decode(&s, &list(int(), Len::Any)).unwrap_err();
    assert!(e.message.contains("recursion limit exceeded"), "{e}");
    let s = format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(decode(&s, &Shape::Unit)
        .unwrap_err()
        .message
        .contains("recursion limit"));
    // serde_json's limit: 127 levels parse, 128 do not.
    let mut shape = Shape::Unit;
    for _ in 0..126 {
        shape = list(shape, Len::Any);
    }
    let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
    assert!(decode(&nested(127), &shape).is_ok());
    assert!(decode(&nested(128), &list(shape, Len::Any)).is_err());
}

#[test]
fn oversized_text_is_rejected() {
    let s = format!("\"{}\"", "a".repeat(MAX_RESPONSE_BYTES));
    assert!(err(&s, &string()).contains("more than the limit"));
    assert!(decode_answer(&s, &string()).is_err());
}

#[test]
fn bare_answers_for_strings_and_enums() {
    assert_eq!(decode_answer(" pour \n", &action()), Ok(en(2, "pour")));
    assert_eq!(decode_answer("\"pour\"", &action()), Ok(en(2, "pour")));
    assert_eq!(decode_answer("Paris", &string()), Ok(Value::str("Paris")));
    assert_eq!(decode_answer("42", &string()), Ok(Value::str("42")));
    assert_eq!(
        decode_answer("Pour", &action()).unwrap_err().message,
        r#"unknown variant "Pour", expected one of: fill, empty, pour"#
    );
    assert!(decode_answer("\"pour", &action()).is_err());
    // Other shapes are decoded strictly.
    assert!(decode_answer("three", &int()).is_err());
    assert_eq!(decode_answer("3", &int()), Ok(Value::Int(3)));
}

#[test]
fn extract_then_decode() {
    let shape = list(action(), Len::Exact(2));
    let response = "First fill, then pour.\n<answer>\n[\"fill\", \"pour\"]\n</answer>";
    let e = extract(response, ExtractMode::Auto).unwrap();
    assert_eq!(
        decode(e.text, &shape),
        Ok(Value::list(vec![en(0, "fill"), en(2, "pour")]))
    );
    let e = extract("I get 3, no, 42.", ExtractMode::Auto).unwrap();
    assert_eq!(decode(e.text, &int()), Ok(Value::Int(42)));
}

// ----- encoding -------------------------------------------------------------------------

#[test]
fn canonical_encoding() {
    let m_int = Value::Map(Rc::new(
        [
            (Value::Int(2), Value::Bool(false)),
            (Value::Int(-1), Value::Bool(true)),
        ]
        .into(),
    ));
    assert_eq!(to_json_string(&m_int), "[[-1,true],[2,false]]");
    let m_str = Value::Map(Rc::new(
        [
            (Value::str("b"), Value::Int(1)),
            (Value::str("a\n"), Value::Unit),
        ]
        .into(),
    ));
    assert_eq!(to_json_string(&m_str), r#"{"a\n":null,"b":1}"#);
    assert_eq!(to_json_string(&Value::Map(Rc::new(BTreeMap::new()))), "{}");
    let r = Value::record(vec![
        (Rc::from("y"), Value::Float(2.0)),
        (
            Rc::from("x"),
            Value::tuple(vec![en(1, "empty"), Value::str("é\"")]),
        ),
    ]);
    assert_eq!(to_json_string(&r), r#"{"x":["empty","é\""],"y":2.0}"#);
    let floats = Value::list(vec![
        Value::Float(0.1),
        Value::Float(-0.0),
        Value::Float(1e300),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
    ]);
    assert_eq!(
        to_json_string(&floats),
        r#"[0.1,-0.0,1e300,"NaN","Infinity"]"#
    );
    let s = Value::Set(Rc::new([Value::Int(3), Value::Int(1)].into()));
    assert_eq!(to_json_string(&s), "[1,3]");
    assert_eq!(encode(&Value::Unit), serde_json::Value::Null);
    assert_eq!(
        encode(&r),
        serde_json::json!({"x": ["empty", "é\""], "y": 2.0})
    );
}

/// `write_encoded` is serde_json's text of `encode`, also where the two orders differ
/// (enum keys by declaration vs by name), for non-finite and extreme floats, control
/// characters, and records or maps whose names repeat or come unsorted.
#[test]
fn write_encoded_is_encodes_text() {
    let enum_keys = Value::Map(Rc::new(
        [
            (en(0, "red"), Value::Int(1)),
            (en(1, "green"), Value::Int(2)),
            (en(2, "blue"), Value::Float(f64::NEG_INFINITY)),
        ]
        .into(),
    ));
    let mixed_keys = Value::Map(Rc::new(
        [
            (Value::str("b"), Value::Int(1)),
            (en(0, "b"), Value::Int(2)),
            (en(1, "a"), Value::Int(3)),
        ]
        .into(),
    ));
    let raw_record = Value::Record(Rc::new(vec![
        (Rc::from("z"), Value::Int(1)),
        (Rc::from("a"), Value::Int(2)),
        (Rc::from("z"), Value::Int(3)),
    ]));
    let values = [
        enum_keys,
        mixed_keys,
        raw_record,
        Value::list(
            [
                0.0,
                -0.0,
                1e-7,
                1e-5,
                0.1,
                1e15,
                1e16,
                1.5e300,
                5e-324,
                f64::NAN,
                f64::INFINITY,
            ]
            .map(Value::Float)
            .to_vec(),
        ),
        Value::str("\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}\"\\/\n\r\té答\u{2028}"),
        Value::tuple(vec![Value::Unit, Value::Bool(false), Value::Int(i64::MIN)]),
        Value::Map(Rc::new(BTreeMap::new())),
        Value::Map(Rc::new(
            [(Value::list(vec![]), Value::Set(Rc::new(BTreeSet::new())))].into(),
        )),
    ];
    for v in values {
        let mut out = Vec::new();
        resyn_runtime::write_encoded(&mut out, &v);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            encode(&v).to_string(),
            "{v:?}"
        );
    }
}

/// `int in lo..hi` is evaluated from its bounds (`Shape::int_range`), not by building the
/// range: the shape, and the error for a range over the collection limit, must be those of
/// `Shape::within` on the built range, which is what the answer type meant before.
#[test]
fn an_int_range_domain_equals_the_built_range() {
    let built = |lo: i64, hi: i64, inclusive: bool| {
        resyn_runtime::ops::range(lo, hi, inclusive).map(|r| {
            let set: BTreeSet<Value> = r.iter_elems().unwrap().into_iter().collect();
            Shape::within(int(), set)
        })
    };
    let cases = [
        (0, 10, false),
        (0, 10, true),
        (1, 1, false),
        (1, 1, true),
        (5, 2, true),
        (-3, 4, false),
        (i64::MAX - 2, i64::MAX, true),
        (i64::MIN, i64::MIN + 3, false),
        (0, 200_000, false),
        (0, 20_000_000, false),
        (i64::MIN, i64::MAX, true),
    ];
    for (lo, hi, inclusive) in cases {
        assert_eq!(
            Shape::int_range(lo, hi, inclusive),
            built(lo, hi, inclusive),
            "{lo}..{}{hi}",
            if inclusive { "=" } else { "" }
        );
    }
    assert!(
        Shape::int_range(0, 20_000_000, false).is_err(),
        "over the collection limit"
    );
}
