//! Signatures of the built-in functions. Generic builtins are typed by hand here (the
//! language has no user-level generics), and each is tagged pure or random: random ones
//! may only run in the generator.

use crate::types::Ty;

/// Every builtin name, for "did you mean" suggestions and the spec.
pub const PURE: &[&str] = &[
    "len",
    "abs",
    "min",
    "max",
    "sum",
    "count",
    "all",
    "any",
    "all_different",
    "is_permutation",
    "sorted",
    "reversed",
    "index_of",
    "keys",
    "values",
    "set",
    "map",
    "get",
    "zip",
    "enumerate",
    "repeat",
    "slice",
    "flatten",
    "str",
    "join",
    "float",
    "int",
];
pub const RANDOM: &[&str] = &[
    "rand_int",
    "rand_float",
    "bernoulli",
    "choice",
    "shuffle",
    "sample",
    "permutation",
    "unique_givens",
];

/// Names of the built-in types; user types may not take them.
pub const TYPES: &[&str] = &["int", "bool", "float", "string", "set", "map"];

pub fn is_builtin_type(name: &str) -> bool {
    TYPES.contains(&name)
}

/// E0102 for a user type named like a built-in one (top-level or env-local).
pub fn redefined_type(name: &resyn_grammar::ast::Ident) -> resyn_grammar::diag::Diagnostic {
    resyn_grammar::diag::Diagnostic::new(
        "E0102",
        name.span,
        format!("`{}` is a built-in type", name.name),
    )
    .with_label("cannot be redefined")
    .with_help("choose another name")
}

/// Reserved names that only mean something in one position.
pub const LEVELS: &str = "levels";

pub fn is_builtin(name: &str) -> bool {
    PURE.contains(&name) || RANDOM.contains(&name)
}

pub fn is_random(name: &str) -> bool {
    RANDOM.contains(&name)
}

/// A typing failure: which argument (if any) is wrong and what was expected.
pub struct SigError {
    pub arg: Option<usize>,
    pub message: String,
    pub help: String,
}

fn arity(name: &str, args: &[Ty], n: &[usize], usage: &str) -> Result<(), SigError> {
    if n.contains(&args.len()) {
        Ok(())
    } else {
        Err(SigError {
            arg: None,
            message: format!(
                "`{name}` takes {} argument{}, found {}",
                n.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
                if n == [1] { "" } else { "s" },
                args.len()
            ),
            help: format!("usage: {usage}"),
        })
    }
}

fn want(i: usize, ok: bool, expected: &str, got: &Ty, usage: &str) -> Result<(), SigError> {
    if ok {
        Ok(())
    } else {
        Err(SigError {
            arg: Some(i),
            message: format!("expected {expected}, found `{got}`"),
            help: format!("usage: {usage}"),
        })
    }
}

fn elem_of(t: &Ty) -> Option<Ty> {
    match t {
        Ty::List(e) | Ty::Set(e) => Some((**e).clone()),
        Ty::Unknown => Some(Ty::Unknown),
        _ => None,
    }
}

fn list_of(t: &Ty) -> Option<Ty> {
    match t {
        Ty::List(e) => Some((**e).clone()),
        Ty::Unknown => Some(Ty::Unknown),
        _ => None,
    }
}

/// The result type of calling builtin `name` with arguments of types `args`.
pub fn signature(name: &str, args: &[Ty]) -> Result<Ty, SigError> {
    use Ty::*;
    let a = |i: usize| args.get(i).cloned().unwrap_or(Unknown);
    macro_rules! usage {
        ($u:expr) => {
            $u
        };
    }
    match name {
        "len" => {
            let u = usage!("len(xs) for a list, set, map or string");
            arity(name, args, &[1], u)?;
            want(
                0,
                matches!(a(0), List(_) | Set(_) | Map(..) | Str | Unknown),
                "a list, set, map or string",
                &a(0),
                u,
            )?;
            Ok(Int)
        }
        "abs" => {
            let u = "abs(x) for an int or float";
            arity(name, args, &[1], u)?;
            want(0, a(0).is_numeric(), "an int or float", &a(0), u)?;
            Ok(a(0))
        }
        "min" | "max" => {
            let u = "min(a, b) on two numbers, or min(xs) on a non-empty list of numbers";
            arity(name, args, &[1, 2], u)?;
            if args.len() == 1 {
                let e = elem_of(&a(0));
                want(
                    0,
                    e.as_ref().is_some_and(Ty::is_numeric),
                    "a list of numbers",
                    &a(0),
                    u,
                )?;
                Ok(e.unwrap_or(Unknown))
            } else {
                want(0, a(0).is_numeric(), "a number", &a(0), u)?;
                want(
                    1,
                    a(1).is_numeric() && a(1).compatible(&a(0)),
                    &format!("`{}`", a(0)),
                    &a(1),
                    u,
                )?;
                Ok(a(0).join(&a(1)))
            }
        }
        "sum" => {
            let u = "sum(xs) on a list of numbers";
            arity(name, args, &[1], u)?;
            let e = elem_of(&a(0));
            want(
                0,
                e.as_ref().is_some_and(Ty::is_numeric),
                "a list of numbers",
                &a(0),
                u,
            )?;
            Ok(match e {
                Some(Unknown) | None => Int,
                Some(t) => t,
            })
        }
        "count" => {
            let u = "count(xs, v): how many elements of xs equal v";
            arity(name, args, &[2], u)?;
            let e = elem_of(&a(0));
            want(0, e.is_some(), "a list or set", &a(0), u)?;
            let e = e.unwrap_or(Unknown);
            want(1, a(1).compatible(&e), &format!("`{e}`"), &a(1), u)?;
            Ok(Int)
        }
        "all" | "any" => {
            let u = "all(xs) / any(xs) on a list of bools";
            arity(name, args, &[1], u)?;
            want(
                0,
                elem_of(&a(0)).is_some_and(|t| t.compatible(&Bool)),
                "a list of bools",
                &a(0),
                u,
            )?;
            Ok(Bool)
        }
        "all_different" => {
            let u = "all_different(xs): no two elements of the list are equal";
            arity(name, args, &[1], u)?;
            want(0, list_of(&a(0)).is_some(), "a list", &a(0), u)?;
            Ok(Bool)
        }
        "is_permutation" => {
            let u = "is_permutation(xs, ys): xs holds exactly the elements of ys, in any order";
            arity(name, args, &[2], u)?;
            want(0, list_of(&a(0)).is_some(), "a list", &a(0), u)?;
            want(
                1,
                elem_of(&a(1)).is_some()
                    && a(1)
                        .elem()
                        .unwrap_or(Unknown)
                        .compatible(&list_of(&a(0)).unwrap_or(Unknown)),
                &format!("a list of `{}`", list_of(&a(0)).unwrap_or(Unknown)),
                &a(1),
                u,
            )?;
            Ok(Bool)
        }
        "sorted" | "reversed" => {
            let u = "sorted(xs) / reversed(xs) on a list";
            arity(name, args, &[1], u)?;
            let e = elem_of(&a(0));
            want(0, e.is_some(), "a list or set", &a(0), u)?;
            Ok(Ty::list(e.unwrap_or(Unknown)))
        }
        "index_of" => {
            let u = "index_of(xs, v): position of the first v in xs, or -1";
            arity(name, args, &[2], u)?;
            let e = list_of(&a(0));
            want(0, e.is_some(), "a list", &a(0), u)?;
            let e = e.unwrap_or(Unknown);
            want(1, a(1).compatible(&e), &format!("`{e}`"), &a(1), u)?;
            Ok(Int)
        }
        "keys" | "values" => {
            let u = "keys(m) / values(m) on a map, sorted by key";
            arity(name, args, &[1], u)?;
            match a(0) {
                Map(k, v) => Ok(Ty::list(if name == "keys" { *k } else { *v })),
                Unknown => Ok(Ty::list(Unknown)),
                t => Err(SigError {
                    arg: Some(0),
                    message: format!("expected a map, found `{t}`"),
                    help: format!("usage: {u}"),
                }),
            }
        }
        "set" => {
            let u = "set(xs): the set of the list's elements";
            arity(name, args, &[1], u)?;
            let e = elem_of(&a(0));
            want(0, e.is_some(), "a list", &a(0), u)?;
            Ok(Set(Box::new(e.unwrap_or(Unknown))))
        }
        "map" => {
            let u = "map(pairs): a map from a list of (key, value) tuples";
            arity(name, args, &[1], u)?;
            match list_of(&a(0)) {
                Some(Tuple(kv)) if kv.len() == 2 => {
                    Ok(Map(Box::new(kv[0].clone()), Box::new(kv[1].clone())))
                }
                Some(Unknown) => Ok(Map(Box::new(Unknown), Box::new(Unknown))),
                _ => Err(SigError {
                    arg: Some(0),
                    message: format!("expected a list of (key, value) pairs, found `{}`", a(0)),
                    help: format!("usage: {u}"),
                }),
            }
        }
        "get" => {
            let u = "get(m, k, default): m[k] if k is a key of m, else default";
            arity(name, args, &[3], u)?;
            match a(0) {
                Map(k, v) => {
                    want(1, a(1).compatible(&k), &format!("`{k}`"), &a(1), u)?;
                    want(2, a(2).compatible(&v), &format!("`{v}`"), &a(2), u)?;
                    Ok(v.join(&a(2)))
                }
                Unknown => Ok(a(2)),
                t => Err(SigError {
                    arg: Some(0),
                    message: format!("expected a map, found `{t}`"),
                    help: format!("usage: {u}"),
                }),
            }
        }
        "zip" => {
            let u = "zip(xs, ys): pairs of elements at the same position (as long as the shorter)";
            arity(name, args, &[2], u)?;
            let (x, y) = (list_of(&a(0)), list_of(&a(1)));
            want(0, x.is_some(), "a list", &a(0), u)?;
            want(1, y.is_some(), "a list", &a(1), u)?;
            Ok(Ty::list(Tuple(vec![
                x.unwrap_or(Unknown),
                y.unwrap_or(Unknown),
            ])))
        }
        "enumerate" => {
            let u = "enumerate(xs): (index, element) pairs";
            arity(name, args, &[1], u)?;
            let x = list_of(&a(0));
            want(0, x.is_some(), "a list", &a(0), u)?;
            Ok(Ty::list(Tuple(vec![Int, x.unwrap_or(Unknown)])))
        }
        "repeat" => {
            let u = "repeat(v, n): a list of n copies of v";
            arity(name, args, &[2], u)?;
            want(1, a(1).compatible(&Int), "an int", &a(1), u)?;
            Ok(Ty::list(a(0)))
        }
        "slice" => {
            let u = "slice(xs, lo, hi): the elements at positions lo..hi (clamped to the list)";
            arity(name, args, &[3], u)?;
            want(
                0,
                matches!(a(0), List(_) | Str | Unknown),
                "a list or string",
                &a(0),
                u,
            )?;
            want(1, a(1).compatible(&Int), "an int", &a(1), u)?;
            want(2, a(2).compatible(&Int), "an int", &a(2), u)?;
            Ok(a(0))
        }
        "flatten" => {
            let u = "flatten(xss): the concatenation of a list of lists";
            arity(name, args, &[1], u)?;
            let inner = list_of(&a(0)).and_then(|t| list_of(&t));
            want(0, inner.is_some(), "a list of lists", &a(0), u)?;
            Ok(Ty::list(inner.unwrap_or(Unknown)))
        }
        "str" => {
            arity(
                name,
                args,
                &[1],
                "str(x): the text of any value, as in templates",
            )?;
            Ok(Str)
        }
        "join" => {
            let u = "join(xs, sep): the texts of the list's elements separated by sep";
            arity(name, args, &[2], u)?;
            want(0, list_of(&a(0)).is_some(), "a list", &a(0), u)?;
            want(1, a(1).compatible(&Str), "a string", &a(1), u)?;
            Ok(Str)
        }
        "float" => {
            let u = "float(i): an int as a float";
            arity(name, args, &[1], u)?;
            want(0, a(0).is_numeric(), "an int", &a(0), u)?;
            Ok(Float)
        }
        "int" => {
            let u = "int(x): a float truncated toward zero";
            arity(name, args, &[1], u)?;
            want(0, a(0).is_numeric(), "a float", &a(0), u)?;
            Ok(Int)
        }
        "rand_int" => {
            let u = "rand_int(lo, hi): a uniform int with lo <= x <= hi";
            arity(name, args, &[2], u)?;
            want(0, a(0).compatible(&Int), "an int", &a(0), u)?;
            want(1, a(1).compatible(&Int), "an int", &a(1), u)?;
            Ok(Int)
        }
        "rand_float" => {
            arity(name, args, &[0], "rand_float(): a uniform float in [0, 1)")?;
            Ok(Float)
        }
        "bernoulli" => {
            let u = "bernoulli(p): true with probability p";
            arity(name, args, &[1], u)?;
            want(0, a(0).compatible(&Float), "a float", &a(0), u)?;
            Ok(Bool)
        }
        "choice" => {
            let u = "choice(xs): a uniformly chosen element of a non-empty list";
            arity(name, args, &[1], u)?;
            let e = elem_of(&a(0));
            want(0, e.is_some(), "a list", &a(0), u)?;
            Ok(e.unwrap_or(Unknown))
        }
        "shuffle" => {
            let u = "shuffle(xs): the list in uniformly random order";
            arity(name, args, &[1], u)?;
            let e = elem_of(&a(0));
            want(0, e.is_some(), "a list", &a(0), u)?;
            Ok(Ty::list(e.unwrap_or(Unknown)))
        }
        "sample" => {
            let u = "sample(xs, k): k elements at distinct positions, in random order";
            arity(name, args, &[2], u)?;
            let e = elem_of(&a(0));
            want(0, e.is_some(), "a list", &a(0), u)?;
            want(1, a(1).compatible(&Int), "an int", &a(1), u)?;
            Ok(Ty::list(e.unwrap_or(Unknown)))
        }
        "permutation" => {
            let u = "permutation(n): the ints 0..n in uniformly random order";
            arity(name, args, &[1], u)?;
            want(0, a(0).compatible(&Int), "an int", &a(0), u)?;
            Ok(Ty::list(Int))
        }
        "unique_givens" => {
            let u = "unique_givens(field, givens, solution, min_keep): the givens to keep in field `field` so that `solution` stays the only answer (removed in the list's order while unique, keeping at least min_keep)";
            arity(name, args, &[4], u)?;
            want(
                0,
                a(0).compatible(&Str),
                "the field's name as a string",
                &a(0),
                u,
            )?;
            let e = list_of(&a(1));
            want(1, e.is_some(), "a list", &a(1), u)?;
            want(3, a(3).compatible(&Int), "an int", &a(3), u)?;
            Ok(Ty::list(e.unwrap_or(Unknown)))
        }
        _ => Err(SigError {
            arg: None,
            message: format!("unknown builtin `{name}`"),
            help: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resyn_runtime::ops;

    /// The evaluator borrows the arguments of calls to non-random builtins and passes them
    /// no rng (eval.rs, `is_pure`): the checker's list of random builtins must be exactly
    /// the runtime builtins that need one.
    #[test]
    fn the_random_list_is_the_builtins_that_need_the_rng() {
        for name in PURE.iter().chain(RANDOM) {
            let Some(b) = ops::Builtin::from_name(name) else {
                continue; // handled by the compiler itself (e.g. `unique_givens`)
            };
            let needs_rng = ops::call_builtin::<resyn_runtime::Value>(b, &[], None)
                .err()
                .is_some_and(|e| e.message.contains("is random"));
            assert_eq!(is_random(name), needs_rng, "{name}");
        }
    }
}
