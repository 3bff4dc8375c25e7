//! The type checker: scopes local names, types every expression, enforces purity
//! (randomness only in the generator), the environment's structure and visibility rules
//! (what gen, verify and the prompt may see), and answer-domain boundedness.

use crate::builtins;
use crate::resolve::{FnId, ModId, Unit};
use crate::types::{EnumId, Ty};
use resyn_grammar::ast::*;
use resyn_grammar::diag::Diagnostic;
use resyn_grammar::span::Span;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the checker learned about one environment (used by later stages and tests).
#[derive(Clone, Debug)]
pub struct EnvSummary {
    pub name: String,
    pub params: Vec<(String, Ty)>,
    pub shown: Vec<(String, Ty)>,
    pub hidden: Vec<(String, Ty)>,
    pub answer: Option<(String, Ty)>,
    pub has_witness: bool,
    pub constraints: usize,
}

#[derive(Clone, Debug)]
struct FnSig {
    params: Vec<Ty>,
    ret: Ty,
    /// Where randomness enters this function (a call site), if it does.
    random: Option<Span>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LocalKind {
    Let,
    Var,
    Loop,
    FnParam,
    EnvParam,
    Instance { shown: bool },
    Answer,
}

#[derive(Clone, Debug)]
struct Local {
    name: String,
    ty: Ty,
    kind: LocalKind,
    span: Span,
    used: bool,
}

/// Where the code being checked runs; decides randomness and statement rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Gen,
    Verify,
    Prompt,
    Fn,
    ParamDefault,
    AnswerType,
    TopLevel,
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::Gen => "the generator",
            Place::Verify => "verify",
            Place::Prompt => "the prompt",
            Place::Fn => "a function",
            Place::ParamDefault => "a param's value",
            Place::AnswerType => "the answer's type",
            Place::TopLevel => "a top-level declaration",
        }
    }
}

/// How a block's statements are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Generator statements: `require`, `show`, `hide`, `witness` allowed.
    Gen,
    /// Boolean expression statements are constraints.
    Verify,
    /// Ordinary statements; the last expression may be the block's value.
    Plain,
}

enum TypeDef {
    Alias(TypeExpr),
    Enum(EnumId),
}

struct EnumInfo {
    name: String,
    variants: Vec<String>,
}

/// A name that exists but may not be used here, with the reason and the fix.
struct Invisible {
    span: Span,
    why: String,
    help: String,
}

pub struct Checker<'u> {
    unit: &'u Unit,
    pub diags: Vec<Diagnostic>,
    enums: Vec<EnumInfo>,
    module_enums: HashMap<(ModId, usize), EnumId>,
    sigs: HashMap<FnId, FnSig>,
    used_imports: HashSet<(ModId, String)>,
    used_modules: HashSet<(ModId, String)>,
    // Per-body state.
    module: ModId,
    place: Place,
    scopes: Vec<Vec<Local>>,
    env_types: BTreeMap<String, (TypeDef, Span)>,
    invisible: HashMap<String, Invisible>,
    fn_random: Option<Span>,
    alias_stack: Vec<String>,
    // Per-env state.
    instance: Vec<Local>,
    witness: Option<(Ty, Span)>,
    constraints: usize,
    gen_locals: Vec<(String, Span)>,
    /// Instance values read by the answer's type or by verify.
    instance_used: HashSet<String>,
    /// Generator locals that verify or the prompt tried to use (E0111): their W0002 goes.
    passed_on: HashSet<Span>,
    pub envs: Vec<EnvSummary>,
    /// Calls of `sum` over floats (see [`Typed::float_sums`]).
    float_sums: HashSet<Span>,
}

const PRIMITIVES: &[&str] = &["int", "bool", "float", "string"];

/// The types of a function's parameters and of its result, as checked.
pub type FnTypes = HashMap<FnId, (Vec<Ty>, Ty)>;

/// What the lowering needs from the checker's types.
pub struct Typed {
    pub fn_types: FnTypes,
    /// The spans of the `sum` calls over floats. The evaluator's values carry no static
    /// type, so `sum([])` would be the int 0 there while emitted code (typed) gives 0.0;
    /// the lowering makes these calls `float(sum(…))`, exact for every float sum.
    pub float_sums: HashSet<Span>,
}

pub fn check(unit: &Unit) -> (Vec<Diagnostic>, Vec<EnvSummary>, Typed) {
    let mut c = Checker {
        unit,
        diags: Vec::new(),
        enums: Vec::new(),
        module_enums: HashMap::new(),
        sigs: HashMap::new(),
        used_imports: HashSet::new(),
        used_modules: HashSet::new(),
        module: 0,
        place: Place::TopLevel,
        scopes: Vec::new(),
        env_types: BTreeMap::new(),
        invisible: HashMap::new(),
        fn_random: None,
        alias_stack: Vec::new(),
        instance: Vec::new(),
        witness: None,
        constraints: 0,
        gen_locals: Vec::new(),
        instance_used: HashSet::new(),
        passed_on: HashSet::new(),
        envs: Vec::new(),
        float_sums: HashSet::new(),
    };
    c.run();
    // A generator local used outside the generator is not "unused": the fix is to pass it on.
    let passed_on = std::mem::take(&mut c.passed_on);
    c.diags
        .retain(|d| !(d.code == "W0002" && passed_on.contains(&d.span)));
    let fns = c
        .sigs
        .iter()
        .map(|(f, s)| (*f, (s.params.clone(), s.ret.clone())))
        .collect();
    let typed = Typed {
        fn_types: fns,
        float_sums: std::mem::take(&mut c.float_sums),
    };
    (c.diags, c.envs, typed)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest candidate, if it is close enough to be a plausible typo.
fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1) && *d > 0)
        .min()
        .map(|(_, c)| c)
}

impl<'u> Checker<'u> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn run(&mut self) {
        // Enums of every module get ids first: types may be used before declared.
        for (mid, m) in self.unit.modules.iter().enumerate() {
            for (i, item) in m.ast.items.iter().enumerate() {
                if let Item::Enum(e) = item {
                    let id = self.add_enum(e);
                    self.module_enums.insert((mid, i), id);
                }
            }
        }
        // Functions callees-first, so calls see inferred return types and randomness.
        let mut order = self.unit.fn_order.clone();
        let mut cyclic: Vec<FnId> = self.unit.in_cycle.iter().copied().collect();
        cyclic.sort();
        for f in &cyclic {
            // Signatures from declarations only; bodies are still checked below.
            self.module = f.module;
            let decl = self.unit.fn_decl(*f);
            let params = decl
                .params
                .iter()
                .map(|(_, t)| self.resolve_type(t))
                .collect();
            let ret = decl
                .ret
                .as_ref()
                .map_or(Ty::Unknown, |t| self.resolve_type(t));
            self.sigs.insert(
                *f,
                FnSig {
                    params,
                    ret,
                    random: None,
                },
            );
        }
        order.extend(cyclic);
        for f in order {
            self.check_fn(f);
        }
        for (mid, m) in self.unit.modules.iter().enumerate() {
            self.module = mid;
            for item in &m.ast.items {
                match item {
                    Item::Env(e) => self.check_env(e),
                    Item::TypeAlias(t) => {
                        self.place = Place::TopLevel;
                        self.scopes.clear();
                        self.resolve_type(&t.ty);
                    }
                    _ => {}
                }
            }
        }
        // Unused imports (user module only; the stdlib is ours).
        let m = &self.unit.modules[0];
        for (name, (_, span)) in &m.imports {
            if !self.used_imports.contains(&(0, name.clone())) {
                self.diags.push(
                    Diagnostic::new(
                        "W0003",
                        *span,
                        format!("`{name}` is imported but never used"),
                    )
                    .with_label("unused import")
                    .with_help("remove it from the `use` list"),
                );
            }
        }
        for (name, (_, span)) in &m.module_uses {
            if !self.used_modules.contains(&(0, name.clone())) {
                self.diags.push(
                    Diagnostic::new(
                        "W0003",
                        *span,
                        format!("module `std::{name}` is imported but never used"),
                    )
                    .with_label("unused import")
                    .with_help("remove this `use`"),
                );
            }
        }
    }

    fn add_enum(&mut self, e: &EnumDecl) -> EnumId {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for v in &e.variants {
            if let Some(first) = seen.get(v.name.as_str()) {
                let d = Diagnostic::new(
                    "E0102",
                    v.span,
                    format!("variant `{}` is listed twice", v.name),
                )
                .with_label("listed again here")
                .with_secondary(*first, "first listed here")
                .with_help("remove one of them");
                self.err(d);
            }
            seen.insert(&v.name, v.span);
        }
        if e.variants.is_empty() {
            self.err(
                Diagnostic::new(
                    "E0201",
                    e.name.span,
                    format!("enum `{}` has no variants", e.name.name),
                )
                .with_label("empty enum")
                .with_help("list its values: `enum Dir { up, down }`"),
            );
        }
        self.enums.push(EnumInfo {
            name: e.name.name.clone(),
            variants: e.variants.iter().map(|v| v.name.clone()).collect(),
        });
        EnumId(self.enums.len() as u32 - 1)
    }

    // ------------------------------------------------------------------ scopes

    fn push(&mut self) {
        self.scopes.push(Vec::new());
    }

    /// Pops a scope, warning about bindings that were never read.
    fn pop(&mut self) -> Vec<Local> {
        let frame = self.scopes.pop().unwrap_or_default();
        for l in &frame {
            let warn = matches!(
                l.kind,
                LocalKind::Let | LocalKind::Var | LocalKind::Loop | LocalKind::FnParam
            );
            if warn
                && !l.used
                && !l.name.starts_with('_')
                && l.span.file == self.unit.modules[0].file
            {
                self.diags.push(
                    Diagnostic::new("W0002", l.span, format!("`{}` is never used", l.name))
                        .with_label("bound here")
                        .with_help(format!(
                            "remove it, or name it `_{}` if that is intended",
                            l.name
                        )),
                );
            }
        }
        frame
    }

    fn bind(&mut self, name: &Ident, ty: Ty, kind: LocalKind) {
        if self.scopes.is_empty() {
            self.push();
        }
        let frame = self.scopes.last_mut().expect("a scope");
        frame.push(Local {
            name: name.name.clone(),
            ty,
            kind,
            span: name.span,
            used: false,
        });
    }

    fn lookup(&mut self, name: &str) -> Option<&mut Local> {
        for frame in self.scopes.iter_mut().rev() {
            if let Some(l) = frame.iter_mut().rev().find(|l| l.name == name) {
                l.used = true;
                return Some(l);
            }
        }
        None
    }

    fn visible_names(&self) -> Vec<String> {
        self.scopes
            .iter()
            .flatten()
            .map(|l| l.name.clone())
            .collect()
    }

    fn bind_pattern(&mut self, p: &Pattern, ty: &Ty, kind: LocalKind) {
        match &p.kind {
            PatternKind::Wildcard => {}
            PatternKind::Bind(i) => self.bind(i, ty.clone(), kind),
            PatternKind::Tuple(ps) => match ty {
                Ty::Tuple(ts) if ts.len() == ps.len() => {
                    for (p, t) in ps.iter().zip(ts) {
                        self.bind_pattern(p, t, kind);
                    }
                }
                Ty::Unknown => {
                    for p in ps {
                        self.bind_pattern(p, &Ty::Unknown, kind);
                    }
                }
                other => {
                    let what = match other {
                        Ty::Tuple(ts) => format!("a tuple of {} elements", ts.len()),
                        t => format!("`{t}`"),
                    };
                    self.err(
                        Diagnostic::new(
                            "E0210",
                            p.span,
                            format!(
                                "this pattern has {} parts, but the value is {what}",
                                ps.len()
                            ),
                        )
                        .with_label("pattern does not match the value's shape")
                        .with_help("use as many names as the tuple has elements, or a single name"),
                    );
                    for p in ps {
                        self.bind_pattern(p, &Ty::Unknown, kind);
                    }
                    // Names of a pattern that did not fit are not "unused": do not warn.
                    let mut names = Vec::new();
                    pattern_names(p, &mut names);
                    if let Some(frame) = self.scopes.last_mut() {
                        frame
                            .iter_mut()
                            .filter(|l| names.iter().any(|(_, sp)| *sp == l.span))
                            .for_each(|l| l.used = true);
                    }
                }
            },
        }
    }

    // ------------------------------------------------------------------ types

    fn find_type(&self, name: &str) -> Option<(TypeDefRef, Span)> {
        if let Some((d, sp)) = self.env_types.get(name) {
            return Some((
                match d {
                    TypeDef::Alias(t) => TypeDefRef::Alias(t.clone()),
                    TypeDef::Enum(id) => TypeDefRef::Enum(*id),
                },
                *sp,
            ));
        }
        let m = &self.unit.modules[self.module];
        let idx = *m.types.get(name)?;
        match &m.ast.items[idx] {
            Item::TypeAlias(t) => Some((TypeDefRef::Alias(t.ty.clone()), t.name.span)),
            Item::Enum(e) => Some((
                TypeDefRef::Enum(self.module_enums[&(self.module, idx)]),
                e.name.span,
            )),
            _ => None,
        }
    }

    fn type_names(&self) -> Vec<String> {
        let mut v: Vec<String> = PRIMITIVES.iter().map(|s| s.to_string()).collect();
        v.extend(["set".to_string(), "map".to_string()]);
        v.extend(self.env_types.keys().cloned());
        v.extend(self.unit.modules[self.module].types.keys().cloned());
        v
    }

    pub fn resolve_type(&mut self, t: &TypeExpr) -> Ty {
        match &t.kind {
            TypeKind::Error => Ty::Unknown,
            TypeKind::Unit => Ty::Unit,
            TypeKind::Tuple(ts) => Ty::Tuple(ts.iter().map(|t| self.resolve_type(t)).collect()),
            TypeKind::List(e, len) => {
                let et = self.resolve_type(e);
                if let ListLen::Exact(n) | ListLen::AtMost(n) = len {
                    let nt = self.check_expr(n);
                    self.expect(&nt, &Ty::Int, n.span, "a list length");
                }
                Ty::list(et)
            }
            TypeKind::Record(fs) => {
                let mut seen: HashMap<&str, Span> = HashMap::new();
                let mut out = Vec::new();
                for (n, ft) in fs {
                    if let Some(first) = seen.get(n.name.as_str()) {
                        self.err(
                            Diagnostic::new(
                                "E0102",
                                n.span,
                                format!("field `{}` is declared twice", n.name),
                            )
                            .with_label("declared again here")
                            .with_secondary(*first, "first declared here")
                            .with_help("remove one of them"),
                        );
                    } else {
                        seen.insert(&n.name, n.span);
                    }
                    out.push((n.name.clone(), self.resolve_type(ft)));
                }
                Ty::record(out)
            }
            TypeKind::Domain(base, dom) => {
                let bt = self.resolve_type(base);
                let dt = self.check_expr(dom);
                match dt.elem() {
                    Some(et) if et.compatible(&bt) => {}
                    Some(et) => self.err(
                        Diagnostic::new(
                            "E0201",
                            dom.span,
                            format!(
                                "a domain of `{bt}` must hold `{bt}` values, but this holds `{et}`"
                            ),
                        )
                        .with_label(format!("elements are `{et}`"))
                        .with_secondary(base.span, format!("values are `{bt}`"))
                        .with_help("make the element types agree"),
                    ),
                    None => self.err(
                        Diagnostic::new(
                            "E0209",
                            dom.span,
                            format!("a domain must be a collection, found `{dt}`"),
                        )
                        .with_label("not a range, list or set")
                        .with_help("write a range like `0..n` or a list of allowed values"),
                    ),
                }
                bt
            }
            TypeKind::Named(path, args) => {
                let name = path.to_string_path();
                let arity_err = |c: &mut Self, n: usize| {
                    c.err(
                        Diagnostic::new(
                            "E0202",
                            t.span,
                            format!("`{name}` takes {n} type argument(s), found {}", args.len()),
                        )
                        .with_label("wrong number of type arguments")
                        .with_help("write `set[T]` or `map[K, V]`"),
                    );
                };
                match name.as_str() {
                    "int" | "bool" | "float" | "string" if !args.is_empty() => {
                        arity_err(self, 0);
                        Ty::Unknown
                    }
                    "int" => Ty::Int,
                    "bool" => Ty::Bool,
                    "float" => Ty::Float,
                    "string" => Ty::Str,
                    "set" => {
                        if args.len() != 1 {
                            arity_err(self, 1);
                            return Ty::Unknown;
                        }
                        Ty::Set(Box::new(self.resolve_type(&args[0])))
                    }
                    "map" => {
                        if args.len() != 2 {
                            arity_err(self, 2);
                            return Ty::Unknown;
                        }
                        let k = self.resolve_type(&args[0]);
                        let v = self.resolve_type(&args[1]);
                        Ty::Map(Box::new(k), Box::new(v))
                    }
                    _ if !args.is_empty() && self.find_type(&name).is_some() => {
                        arity_err(self, 0);
                        Ty::Unknown
                    }
                    _ => match self.find_type(&name) {
                        Some((TypeDefRef::Enum(id), _)) => {
                            Ty::Enum(id, name, self.enums[id.0 as usize].variants.clone())
                        }
                        Some((TypeDefRef::Alias(te), _)) => {
                            if self.alias_stack.contains(&name) {
                                self.err(
                                    Diagnostic::new(
                                        "E0103",
                                        path.span,
                                        format!("type `{name}` is defined in terms of itself"),
                                    )
                                    .with_label("recursive type")
                                    .with_help(
                                        "types must be finite: use a list of a simpler type",
                                    ),
                                );
                                return Ty::Unknown;
                            }
                            self.alias_stack.push(name);
                            let r = self.resolve_type(&te);
                            self.alias_stack.pop();
                            r
                        }
                        None => {
                            let names = self.type_names();
                            let mut d = Diagnostic::new(
                                "E0106",
                                path.span,
                                format!("unknown type `{name}`"),
                            )
                            .with_label("not a known type");
                            d.help = Some(match suggest(&name, names.iter().map(|s| s.as_str())) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => "types are int, bool, float, string, set[T], map[K, V], [T], (A, B), records, enums and `type` aliases".into(),
                            });
                            self.err(d);
                            Ty::Unknown
                        }
                    },
                }
            }
        }
    }

    /// The first part of an answer type whose values are not bounded by construction.
    fn unbounded_part(&mut self, t: &TypeExpr, depth: usize) -> Option<(Span, String)> {
        if depth > 64 {
            return None; // alias cycles are reported elsewhere
        }
        match &t.kind {
            TypeKind::Error | TypeKind::Unit | TypeKind::Domain(..) => None,
            TypeKind::Tuple(ts) => ts.iter().find_map(|t| self.unbounded_part(t, depth + 1)),
            TypeKind::Record(fs) => fs
                .iter()
                .find_map(|(_, t)| self.unbounded_part(t, depth + 1)),
            TypeKind::List(e, ListLen::Any) => {
                let _ = e;
                Some((t.span, "a list without a length bound".into()))
            }
            TypeKind::List(e, _) => self.unbounded_part(e, depth + 1),
            TypeKind::Named(path, args) => match path.to_string_path().as_str() {
                "bool" => None,
                "int" => Some((t.span, "`int` without a range".into())),
                "float" => Some((t.span, "`float`".into())),
                "string" => Some((t.span, "`string` without a set of allowed values".into())),
                "set" | "map" => args.iter().find_map(|a| self.unbounded_part(a, depth + 1)),
                name => match self.find_type(name) {
                    Some((TypeDefRef::Alias(te), _)) => self.unbounded_part(&te, depth + 1),
                    _ => None,
                },
            },
        }
    }

    fn expect(&mut self, got: &Ty, want: &Ty, span: Span, what: &str) -> bool {
        if got.compatible(want) {
            return true;
        }
        let mut d = Diagnostic::new(
            "E0201",
            span,
            format!("{what} must be `{want}`, found `{got}`"),
        )
        .with_label(format!("this is `{got}`"));
        d.help = Some(match (got, want) {
            (Ty::Int, Ty::Float) => "convert with `float(x)`".into(),
            (Ty::Float, Ty::Int) => "convert with `int(x)` (truncates)".into(),
            (_, Ty::Str) => "convert with `str(x)`".into(),
            _ => format!("change it to a `{want}`"),
        });
        self.err(d);
        false
    }

    // ------------------------------------------------------------------ functions

    fn check_fn(&mut self, f: FnId) {
        let decl = self.unit.fn_decl(f);
        self.module = f.module;
        self.place = Place::Fn;
        self.env_types.clear();
        self.invisible.clear();
        self.scopes.clear();
        self.fn_random = None;
        self.push();
        let mut params = Vec::new();
        for (name, t) in &decl.params {
            let ty = self.resolve_type(t);
            self.bind(name, ty.clone(), LocalKind::FnParam);
            params.push(ty);
        }
        let declared = decl.ret.as_ref().map(|t| self.resolve_type(t));
        let body_ty = self.check_block(&decl.body, Role::Plain, true);
        if let Some(want) = &declared {
            if !body_ty.compatible(want) {
                let at = decl.body.stmts.last().map_or(decl.body.span, |s| s.span);
                let d = Diagnostic::new(
                    "E0218",
                    at,
                    format!(
                        "`{}` must return `{want}`, but its body gives `{body_ty}`",
                        decl.name.name
                    ),
                )
                .with_label(format!("this is `{body_ty}`"))
                .with_secondary(
                    decl.ret.as_ref().map_or(decl.name.span, |t| t.span),
                    "return type declared here",
                )
                .with_help("the last expression of a function body is its value");
                self.err(d);
            }
        }
        self.pop();
        let ret = declared.unwrap_or(body_ty);
        let random = self.fn_random.take();
        let sig = self.sigs.entry(f).or_insert(FnSig {
            params: vec![],
            ret: Ty::Unknown,
            random: None,
        });
        sig.params = params;
        if !self.unit.in_cycle.contains(&f) {
            sig.ret = ret;
        }
        sig.random = random;
    }

    // ------------------------------------------------------------------ environments

    fn check_env(&mut self, env: &EnvDecl) {
        self.place = Place::TopLevel;
        self.env_types.clear();
        self.invisible.clear();
        self.scopes.clear();
        self.instance.clear();
        self.witness = None;
        self.constraints = 0;
        self.gen_locals.clear();
        self.instance_used.clear();
        let mut summary = EnvSummary {
            name: env.name.name.clone(),
            params: vec![],
            shown: vec![],
            hidden: vec![],
            answer: None,
            has_witness: false,
            constraints: 0,
        };

        // Env-local types and the structure of the env.
        let mut firsts: HashMap<&'static str, Span> = HashMap::new();
        let mut has_error = false;
        let (mut gen, mut answer, mut verify, mut prompt) = (None, None, None, None);
        for item in &env.items {
            let (key, span) = match item {
                EnvItem::Gen(b) => {
                    gen.get_or_insert(b);
                    ("gen", b.span)
                }
                EnvItem::Answer { name, ty, span } => {
                    answer.get_or_insert((name, ty));
                    ("answer", *span)
                }
                EnvItem::Verify(b) => {
                    verify.get_or_insert(b);
                    ("verify", b.span)
                }
                EnvItem::Prompt(t) => {
                    prompt.get_or_insert(t);
                    ("prompt", t.span)
                }
                EnvItem::Category(_, sp) => ("category", *sp),
                EnvItem::Require(i) => {
                    if !matches!(i.name.as_str(), "solvable" | "unique") {
                        self.err(
                            Diagnostic::new(
                                "E0112",
                                i.span,
                                format!("unknown requirement `{}`", i.name),
                            )
                            .with_label("expected `solvable` or `unique`")
                            .with_help("write `require solvable` or `require unique`"),
                        );
                    }
                    ("require", i.span)
                }
                EnvItem::Scoring(i) => {
                    if !matches!(i.name.as_str(), "all" | "partial") {
                        self.err(
                            Diagnostic::new("E0112", i.span, format!("unknown scoring `{}`", i.name))
                                .with_label("expected `all` or `partial`")
                                .with_help("`scoring all` (1 only if every constraint holds) or `scoring partial` (fraction of constraints)"),
                        );
                    }
                    ("scoring", i.span)
                }
                EnvItem::Setting(name, value) => match name.name.as_str() {
                    "extract" => {
                        if value.name.parse::<resyn_runtime::ExtractMode>().is_err() {
                            self.err(
                                Diagnostic::new("E0112", value.span, format!("unknown extraction mode `{}`", value.name))
                                    .with_label("expected auto, tag, fence, json or text")
                                    .with_help("`extract tag` reads <answer>…</answer>; `auto` (the default) tries tag, fenced block, last JSON value, then the whole text"),
                            );
                        }
                        ("extract", name.span.to(value.span))
                    }
                    other => {
                        let mut d = Diagnostic::new(
                            "E0112",
                            name.span,
                            format!("unknown env item `{other}`"),
                        )
                        .with_label("not an env item");
                        d.help = Some(match suggest(other, ["category", "param", "gen", "answer", "verify", "require", "scoring", "prompt", "extract", "type", "enum"].into_iter()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "env items are category, param, gen, answer, verify, require, scoring, extract, prompt, type and enum".into(),
                        });
                        self.err(d);
                        continue;
                    }
                },
                EnvItem::TypeAlias(t) => {
                    self.add_env_type(&t.name, TypeDef::Alias(t.ty.clone()));
                    continue;
                }
                EnvItem::Enum(e) => {
                    let id = self.add_enum(e);
                    self.add_env_type(&e.name, TypeDef::Enum(id));
                    continue;
                }
                EnvItem::Param(_) => continue,
                EnvItem::Error(_) => {
                    has_error = true;
                    continue;
                }
            };
            if let Some(first) = firsts.get(key) {
                self.err(
                    Diagnostic::new(
                        "E0107",
                        span,
                        format!("`{key}` appears twice in env `{}`", env.name.name),
                    )
                    .with_label("second one here")
                    .with_secondary(*first, "first one here")
                    .with_help(format!("an env has at most one `{key}`; merge them")),
                );
            } else {
                firsts.insert(key, span);
            }
        }
        if !has_error {
            for key in ["gen", "answer", "verify", "prompt"] {
                if !firsts.contains_key(key) {
                    let help = match key {
                        "gen" => "add `gen { … show … }` that builds an instance",
                        "answer" => "add `answer name: T` with a bounded type",
                        "verify" => {
                            "add `verify { … }` with the constraints an answer must satisfy"
                        }
                        _ => "add `prompt \"\"\" … \"\"\"` that asks the question",
                    };
                    self.err(
                        Diagnostic::new(
                            "E0108",
                            env.name.span,
                            format!("env `{}` has no `{key}`", env.name.name),
                        )
                        .with_label(format!("missing `{key}`"))
                        .with_help(help),
                    );
                }
            }
        }

        // Params, in order: each default sees the params before it.
        self.push();
        let mut param_names: HashMap<String, Span> = HashMap::new();
        for item in &env.items {
            if let EnvItem::Param(p) = item {
                let ty = self.check_param(p);
                if let Some(first) = param_names.get(&p.name.name) {
                    self.err(
                        Diagnostic::new(
                            "E0102",
                            p.name.span,
                            format!("param `{}` is declared twice", p.name.name),
                        )
                        .with_label("declared again here")
                        .with_secondary(*first, "first declared here")
                        .with_help("rename or remove one"),
                    );
                }
                param_names.insert(p.name.name.clone(), p.name.span);
                summary.params.push((p.name.name.clone(), ty.clone()));
                self.bind(&p.name, ty, LocalKind::EnvParam);
            }
        }

        // The generator.
        if let Some(g) = gen {
            self.place = Place::Gen;
            self.push();
            self.check_block(g, Role::Gen, false);
            self.pop();
            // The block's own scope is gone by now: take its top-level bindings from the AST.
            let mut locals = Vec::new();
            for st in &g.stmts {
                match &st.kind {
                    StmtKind::Let { pat, .. } => pattern_names(pat, &mut locals),
                    StmtKind::Var { name, .. } => locals.push((name.name.clone(), name.span)),
                    _ => {}
                }
            }
            self.gen_locals = locals;
        }
        for l in &self.instance {
            let entry = (l.name.clone(), l.ty.clone());
            match l.kind {
                LocalKind::Instance { shown: true } => summary.shown.push(entry),
                _ => summary.hidden.push(entry),
            }
        }
        for (name, span) in self.gen_locals.clone() {
            if !self.instance.iter().any(|l| l.name == name) {
                self.invisible.insert(
                    name.clone(),
                    Invisible {
                        span,
                        why: format!(
                            "`{name}` is local to the generator and cannot be seen outside it"
                        ),
                        help: format!(
                            "add `hide {name}` (or `show {name}`) to the generator to pass it on"
                        ),
                    },
                );
            }
        }

        // The answer: its type may use params and instance values.
        let mut answer_ty = None;
        if let Some((name, te)) = answer {
            self.place = Place::AnswerType;
            self.push();
            for l in self.instance.clone() {
                self.scopes.last_mut().expect("scope").push(l);
            }
            let ty = self.resolve_type(te);
            let used: Vec<(String, bool)> = self
                .scopes
                .last()
                .expect("scope")
                .iter()
                .map(|l| (l.name.clone(), l.used))
                .collect();
            self.scopes.pop();
            self.mark_instance_used(&used);
            if let Some((span, what)) = self.unbounded_part(te, 0) {
                self.err(
                    Diagnostic::new("E0302", span, format!("the answer's type must be bounded, but it contains {what}"))
                        .with_label("unbounded")
                        .with_help("bound every part: `int in lo..hi`, `string in names`, `[T; n]` or `[T; <= n]`"),
                );
            }
            summary.answer = Some((name.name.clone(), ty.clone()));
            answer_ty = Some((name.clone(), ty));
        }
        if let (Some((wt, wspan)), Some((aname, aty))) = (self.witness.clone(), answer_ty.as_ref())
        {
            if !wt.compatible(aty) {
                self.err(
                    Diagnostic::new("E0201", wspan, format!("the witness must have the answer's type `{aty}`, found `{wt}`"))
                        .with_label(format!("this is `{wt}`"))
                        .with_secondary(aname.span, "answer declared here")
                        .with_help("the witness is a planted answer: it must be a value the model could answer"),
                );
            }
        }
        summary.has_witness = self.witness.is_some();

        // Verify: params, every instance value, and the answer.
        if let Some(v) = verify {
            self.place = Place::Verify;
            self.push();
            for l in self.instance.clone() {
                self.scopes
                    .last_mut()
                    .expect("scope")
                    .push(Local { used: false, ..l });
            }
            if let Some((name, ty)) = &answer_ty {
                self.bind(name, ty.clone(), LocalKind::Answer);
            }
            self.constraints = 0;
            self.check_block(v, Role::Verify, false);
            let frame = self.scopes.pop().unwrap_or_default();
            let used: Vec<(String, bool)> =
                frame.iter().map(|l| (l.name.clone(), l.used)).collect();
            self.mark_instance_used(&used);
            for l in &frame {
                if l.kind == (LocalKind::Instance { shown: false })
                    && !l.used
                    && !self.instance_used_elsewhere(&l.name)
                {
                    self.diags.push(
                        Diagnostic::new(
                            "W0005",
                            l.span,
                            format!("hidden value `{}` is never used by verify", l.name),
                        )
                        .with_label("hidden here")
                        .with_help(
                            "hidden values exist for verify; remove it if verify does not need it",
                        ),
                    );
                }
                if l.kind == LocalKind::Answer && !l.used {
                    self.err(
                        Diagnostic::new("E0306", v.span, format!("verify never looks at the answer `{}`", l.name))
                            .with_label("these constraints ignore the answer")
                            .with_help(format!(
                                "write constraints that mention `{0}`, e.g. `{0} == …`: verify judges the answer through them",
                                l.name
                            )),
                    );
                }
            }
            if self.constraints == 0 {
                self.err(
                    Diagnostic::new("E0305", v.span, "verify has no constraints")
                        .with_label("every answer would be accepted")
                        .with_help("add boolean constraints that a correct answer must satisfy"),
                );
            }
            summary.constraints = self.constraints;
        }

        // The prompt: params and shown values only.
        if let Some(t) = prompt {
            self.place = Place::Prompt;
            for l in self.instance.clone() {
                if l.kind == (LocalKind::Instance { shown: false }) {
                    self.invisible.insert(
                        l.name.clone(),
                        Invisible {
                            span: l.span,
                            why: format!(
                                "`{}` is hidden, so the prompt must not reveal it",
                                l.name
                            ),
                            help: format!(
                                "use `show {}` in the generator if the question may reveal it",
                                l.name
                            ),
                        },
                    );
                }
            }
            if let Some((name, _)) = &answer_ty {
                self.invisible.insert(
                    name.name.clone(),
                    Invisible {
                        span: name.span,
                        why: format!("the prompt cannot use the answer `{}`", name.name),
                        help: "the prompt may use params and shown values only".into(),
                    },
                );
            }
            self.push();
            for l in self.instance.clone() {
                if l.kind == (LocalKind::Instance { shown: true }) {
                    self.scopes
                        .last_mut()
                        .expect("scope")
                        .push(Local { used: false, ..l });
                }
            }
            self.check_template(&t.parts);
            let frame = self.scopes.pop().unwrap_or_default();
            let used: Vec<(String, bool)> =
                frame.iter().map(|l| (l.name.clone(), l.used)).collect();
            self.mark_instance_used(&used);
            for l in &frame {
                // A shown value that verify reads may be presented in another form (a grid
                // as text); one that nothing reads is a mistake.
                if !l.used && !self.instance_used_elsewhere(&l.name) {
                    self.diags.push(
                        Diagnostic::new(
                            "W0004",
                            l.span,
                            format!(
                                "shown value `{}` is used by neither the prompt nor verify",
                                l.name
                            ),
                        )
                        .with_label("shown here")
                        .with_help(format!(
                            "mention `{{{}}}` in the prompt so the model sees it, or remove it",
                            l.name
                        )),
                    );
                }
            }
        }

        // Unused params.
        let frame = self.scopes.pop().unwrap_or_default();
        for l in frame {
            if !l.used && !l.name.starts_with('_') {
                self.diags.push(
                    Diagnostic::new("W0001", l.span, format!("param `{}` is never used", l.name))
                        .with_label("declared here")
                        .with_help("remove it, or use it in the generator, verify or the prompt"),
                );
            }
        }
        self.envs.push(summary);
    }

    /// Used by the answer's type or by verify (tracked for W0004/W0005).
    fn instance_used_elsewhere(&self, name: &str) -> bool {
        self.instance_used.contains(name)
    }

    /// Instance values seen through a copied scope frame: propagate "used" to params.
    fn mark_instance_used(&mut self, used: &[(String, bool)]) {
        for (name, u) in used {
            if *u && self.place != Place::Prompt {
                self.instance_used.insert(name.clone());
            }
            if *u {
                // A shown param counts as a use of the param itself.
                if let Some(frame) = self.scopes.first_mut() {
                    if let Some(p) = frame
                        .iter_mut()
                        .find(|l| &l.name == name && l.kind == LocalKind::EnvParam)
                    {
                        p.used = true;
                    }
                }
            }
        }
    }

    fn add_env_type(&mut self, name: &Ident, def: TypeDef) {
        if builtins::is_builtin_type(&name.name) {
            self.err(builtins::redefined_type(name));
            return;
        }
        if let Some((_, first)) = self.env_types.get(&name.name) {
            let first = *first;
            self.err(
                Diagnostic::new(
                    "E0102",
                    name.span,
                    format!("type `{}` is defined more than once", name.name),
                )
                .with_label("defined again here")
                .with_secondary(first, "first defined here")
                .with_help("rename one of them"),
            );
            return;
        }
        self.env_types.insert(name.name.clone(), (def, name.span));
    }

    fn check_param(&mut self, p: &ParamDecl) -> Ty {
        self.place = Place::ParamDefault;
        let ty = self.resolve_type(&p.ty);
        if !matches!(ty, Ty::Int | Ty::Float | Ty::Bool | Ty::Str | Ty::Unknown) {
            self.err(
                Diagnostic::new("E0212", p.ty.span, format!("a param must be int, float, bool or string, found `{ty}`"))
                    .with_label("not a param type")
                    .with_help("params are the knobs users set with `--param name=value`; build structures in `gen`"),
            );
        }
        let domain = match &p.ty.kind {
            TypeKind::Domain(_, d) => literal_range(d),
            _ => None,
        };
        match &p.default.kind {
            ExprKind::Call { callee, args }
                if callee.segments.len() == 1 && callee.segments[0].name == builtins::LEVELS =>
            {
                if args.len() != 5 {
                    self.err(
                        Diagnostic::new(
                            "E0211",
                            p.default.span,
                            format!(
                                "`levels` takes one value per level 1 to 5, found {}",
                                args.len()
                            ),
                        )
                        .with_label("needs exactly 5 values")
                        .with_help("write `levels(v1, v2, v3, v4, v5)`, easiest first"),
                    );
                }
                for a in args {
                    let at = self.check_expr(a);
                    self.expect(
                        &at,
                        &ty,
                        a.span,
                        &format!("a value of param `{}`", p.name.name),
                    );
                    self.check_in_domain(a, domain, p);
                }
            }
            _ => {
                let dt = self.check_expr(&p.default);
                self.expect(
                    &dt,
                    &ty,
                    p.default.span,
                    &format!("the value of param `{}`", p.name.name),
                );
                self.check_in_domain(&p.default, domain, p);
            }
        }
        ty
    }

    fn check_in_domain(&mut self, e: &Expr, domain: Option<(i64, i64)>, p: &ParamDecl) {
        if let (Some((lo, hi)), ExprKind::Int(v)) = (domain, &e.kind) {
            if *v < lo || *v >= hi {
                self.err(
                    Diagnostic::new(
                        "E0213",
                        e.span,
                        format!("value {v} is outside the domain of param `{}`", p.name.name),
                    )
                    .with_label(format!("not in {lo}..{hi}"))
                    .with_secondary(p.ty.span, "domain declared here")
                    .with_help("change the value or widen the domain"),
                );
            }
        }
    }

    // ------------------------------------------------------------------ statements

    /// Checks a block; returns its value type (the last expression statement's type when
    /// `want_value`, else `()`).
    fn check_block(&mut self, b: &Block, role: Role, want_value: bool) -> Ty {
        self.push();
        let mut value = Ty::Unit;
        let n = b.stmts.len();
        for (i, s) in b.stmts.iter().enumerate() {
            let last = i + 1 == n;
            let t = self.check_stmt(s, role, want_value && last);
            if want_value && last {
                value = t;
            }
        }
        self.pop();
        value
    }

    /// The type a `let`/`var` binds: the annotation (checked against the value) or the
    /// value's own type.
    fn binding_type(&mut self, annotation: Option<&TypeExpr>, value: &Expr) -> Ty {
        let vt = self.check_expr(value);
        match annotation {
            Some(te) => {
                let want = self.resolve_type(te);
                self.expect(&vt, &want, value.span, "the value");
                want.join(&vt)
            }
            None => vt,
        }
    }

    fn check_stmt(&mut self, s: &Stmt, role: Role, is_value: bool) -> Ty {
        match &s.kind {
            StmtKind::Error => Ty::Unknown,
            StmtKind::Let { pat, ty, value } => {
                let t = self.binding_type(ty.as_ref(), value);
                self.bind_pattern(pat, &t, LocalKind::Let);
                Ty::Unit
            }
            StmtKind::Var { name, ty, value } => {
                let t = self.binding_type(ty.as_ref(), value);
                self.bind(name, t, LocalKind::Var);
                Ty::Unit
            }
            StmtKind::Assign { target, value } => {
                self.check_assign_target(target);
                let tt = self.check_expr(target);
                let vt = self.check_expr(value);
                self.expect(&vt, &tt, value.span, "the assigned value");
                Ty::Unit
            }
            StmtKind::For { pat, iter, body } => {
                let it = self.check_expr(iter);
                let et = self.iter_elem(&it, iter.span);
                self.push();
                self.bind_pattern(pat, &et, LocalKind::Loop);
                self.check_block(body, role, false);
                self.pop();
                Ty::Unit
            }
            StmtKind::Require { cond, message } => {
                if role != Role::Gen || self.place != Place::Gen {
                    let help = if self.place == Place::Verify {
                        "in verify every condition is already a constraint: remove the word `require`"
                    } else {
                        "`require` resamples an instance; it belongs in `gen`"
                    };
                    self.err(
                        Diagnostic::new(
                            "E0304",
                            s.span,
                            format!("`require` is not allowed in {}", self.place.describe()),
                        )
                        .with_label("only the generator can reject an instance")
                        .with_help(help),
                    );
                }
                let ct = self.check_expr(cond);
                self.expect_bool(&ct, cond.span, "a `require` condition");
                if let Some(m) = message {
                    self.check_template(&m.parts);
                }
                if role == Role::Verify {
                    // Meant as a constraint: count it, so "verify has no constraints" stays quiet.
                    self.constraints += 1;
                }
                Ty::Unit
            }
            StmtKind::Witness(e) => {
                let t = self.check_expr(e);
                if self.gen_top_level(s.span, "witness", role) {
                    if let Some((_, first)) = &self.witness {
                        let first = *first;
                        self.err(
                            Diagnostic::new("E0107", s.span, "the generator plants two witnesses")
                                .with_label("second witness")
                                .with_secondary(first, "first witness")
                                .with_help("keep one `witness`"),
                        );
                    } else {
                        self.witness = Some((t, e.span));
                    }
                }
                Ty::Unit
            }
            StmtKind::Show(bs) | StmtKind::Hide(bs) => {
                let shown = matches!(s.kind, StmtKind::Show(_));
                let ok = self.gen_top_level(s.span, if shown { "show" } else { "hide" }, role);
                for b in bs {
                    let t = match &b.value {
                        Some(v) => self.check_expr(v),
                        None => match self.lookup(&b.name.name) {
                            Some(l) => l.ty.clone(),
                            None => {
                                self.unknown_name(&b.name.name, b.name.span);
                                Ty::Unknown
                            }
                        },
                    };
                    if !ok {
                        continue;
                    }
                    if let Some(first) = self.instance.iter().find(|l| l.name == b.name.name) {
                        let first = first.span;
                        self.err(
                            Diagnostic::new(
                                "E0102",
                                b.name.span,
                                format!(
                                    "instance value `{}` is shown or hidden twice",
                                    b.name.name
                                ),
                            )
                            .with_label("again here")
                            .with_secondary(first, "first here")
                            .with_help("each instance value needs one name"),
                        );
                        continue;
                    }
                    self.instance.push(Local {
                        name: b.name.name.clone(),
                        ty: t,
                        kind: LocalKind::Instance { shown },
                        span: b.name.span,
                        used: false,
                    });
                }
                Ty::Unit
            }
            StmtKind::Expr { expr, message } => {
                // An `if` in statement position takes the block's role (constraints stay constraints).
                if let (ExprKind::If { cond, then, els }, false) = (&expr.kind, is_value) {
                    let ct = self.check_expr(cond);
                    self.expect_bool(&ct, cond.span, "an `if` condition");
                    self.check_block(then, role, false);
                    let mut e = els.as_deref();
                    while let Some(branch) = e {
                        match branch {
                            Else::Block(b) => {
                                self.check_block(b, role, false);
                                e = None;
                            }
                            Else::If(x) => {
                                if let ExprKind::If { cond, then, els } = &x.kind {
                                    let ct = self.check_expr(cond);
                                    self.expect_bool(&ct, cond.span, "an `if` condition");
                                    self.check_block(then, role, false);
                                    e = els.as_deref();
                                } else {
                                    e = None;
                                }
                            }
                        }
                    }
                    if message.is_some() {
                        self.message_misplaced(s.span);
                    }
                    return Ty::Unit;
                }
                if role == Role::Verify && !is_value {
                    if let Some(m) = message {
                        self.check_constraint_with_message(expr, m);
                        return Ty::Unit;
                    }
                }
                let t = self.check_expr(expr);
                if is_value {
                    if message.is_some() {
                        self.message_misplaced(s.span);
                    }
                    return t;
                }
                match role {
                    Role::Verify => {
                        if t.compatible(&Ty::Bool) && t != Ty::Unit {
                            self.constraints += 1;
                        } else if t != Ty::Unit {
                            self.err(
                                Diagnostic::new("E0215", expr.span, format!("a constraint must be `bool`, found `{t}`"))
                                    .with_label("not a condition")
                                    .with_help("every expression statement in verify is a constraint; compare it with `==`, `<`, …"),
                            );
                        }
                        if let Some(m) = message {
                            self.check_template(&m.parts);
                        }
                    }
                    Role::Gen | Role::Plain => {
                        if message.is_some() && role == Role::Gen && t == Ty::Bool {
                            // `cond @ "…"` in gen is a `require` without the keyword: one report.
                            self.err(
                                Diagnostic::new("E0304", s.span, "a `@` failure message is only allowed on a verify constraint")
                                    .with_label("this condition is computed and then dropped")
                                    .with_help("to reject instances that fail this condition, write `require` in front of it"),
                            );
                        } else if message.is_some() {
                            self.message_misplaced(s.span);
                        } else if t != Ty::Unit && t != Ty::Unknown {
                            let help = if role == Role::Gen && t == Ty::Bool {
                                "to reject instances that fail this condition, write `require` in front of it"
                            } else {
                                "bind it with `let`, or remove it"
                            };
                            self.err(
                                Diagnostic::new(
                                    "E0216",
                                    expr.span,
                                    format!("this `{t}` value is computed and then dropped"),
                                )
                                .with_label("value unused")
                                .with_help(help),
                            );
                        }
                    }
                }
                Ty::Unit
            }
        }
    }

    /// A constraint with a failure message: the message sees the variables of the
    /// constraint's leading `forall`s, so it can name the failing case.
    fn check_constraint_with_message(&mut self, expr: &Expr, message: &Template) {
        let mut e = expr;
        let mut depth = 0;
        while let ExprKind::Quant {
            q: Quantifier::Forall,
            clauses,
            body,
        } = &e.kind
        {
            self.push();
            self.check_clauses(clauses);
            depth += 1;
            e = body;
        }
        let t = self.check_expr(e);
        if t.compatible(&Ty::Bool) {
            self.constraints += 1;
        } else {
            self.err(
                Diagnostic::new("E0215", e.span, format!("a constraint must be `bool`, found `{t}`"))
                    .with_label("not a condition")
                    .with_help("every expression statement in verify is a constraint; compare it with `==`, `<`, …"),
            );
        }
        self.check_template(&message.parts);
        for _ in 0..depth {
            self.pop();
        }
    }

    fn message_misplaced(&mut self, span: Span) {
        self.err(
            Diagnostic::new(
                "E0304",
                span,
                "a `@` failure message is only allowed on a verify constraint",
            )
            .with_label("nothing here can fail with a message")
            .with_help("remove the `@ \"…\"` part"),
        );
    }

    /// `show`/`hide`/`witness` must stand directly in the `gen` block.
    fn gen_top_level(&mut self, span: Span, what: &str, role: Role) -> bool {
        // The gen block is scope 2 (params, gen frame, the block itself).
        let top = self.place == Place::Gen && role == Role::Gen && self.scopes.len() == 3;
        if !top {
            let (msg, help) = if self.place == Place::Gen {
                (
                    format!("`{what}` must stand directly in the `gen` block"),
                    "move it out of the loop or `if`: build the value first, then show it"
                        .to_string(),
                )
            } else {
                (
                    format!("`{what}` is not allowed in {}", self.place.describe()),
                    format!("`{what}` belongs in the `gen` block"),
                )
            };
            self.err(
                Diagnostic::new("E0304", span, msg)
                    .with_label("not allowed here")
                    .with_help(help),
            );
        }
        top
    }

    fn check_assign_target(&mut self, target: &Expr) {
        let mut root = target;
        while let ExprKind::Index(a, _) | ExprKind::Field(a, _) | ExprKind::TupleField(a, _, _) =
            &root.kind
        {
            root = a;
        }
        match &root.kind {
            ExprKind::Path(p) if p.segments.len() == 1 => {
                let name = p.segments[0].name.clone();
                let kind = self
                    .scopes
                    .iter()
                    .flatten()
                    .rev()
                    .find(|l| l.name == name)
                    .map(|l| (l.kind, l.span));
                match kind {
                    Some((LocalKind::Var, _)) | None => {}
                    Some((k, decl)) => {
                        let help = match k {
                            LocalKind::Let => {
                                format!("declare it with `var {name} = …` to make it mutable")
                            }
                            _ => format!("`{name}` cannot change; copy it into a `var` first"),
                        };
                        self.err(
                            Diagnostic::new(
                                "E0110",
                                root.span,
                                format!("cannot assign to `{name}`: it is not a `var`"),
                            )
                            .with_label("assignment here")
                            .with_secondary(decl, "declared here")
                            .with_help(help),
                        );
                    }
                }
            }
            ExprKind::Error => {}
            _ => self.err(
                Diagnostic::new("E0110", target.span, "this cannot be assigned to")
                    .with_label("not a variable")
                    .with_help("assign to a `var`, an element `xs[i]` or a field `r.f` of one"),
            ),
        }
    }

    fn expect_bool(&mut self, t: &Ty, span: Span, what: &str) {
        if !t.compatible(&Ty::Bool) {
            self.err(
                Diagnostic::new("E0208", span, format!("{what} must be `bool`, found `{t}`"))
                    .with_label("not a condition")
                    .with_help("compare values with `==`, `<`, `in`, …"),
            );
        }
    }

    fn iter_elem(&mut self, t: &Ty, span: Span) -> Ty {
        match t.elem() {
            Some(e) => e,
            None => {
                self.err(
                    Diagnostic::new("E0209", span, format!("cannot iterate over `{t}`"))
                        .with_label("not a collection")
                        .with_help("iterate over a list, set, map or a range like `0..n`"),
                );
                Ty::Unknown
            }
        }
    }

    fn check_template(&mut self, parts: &[TemplatePart]) {
        for p in parts {
            match p {
                TemplatePart::Text(_) => {}
                TemplatePart::Expr(e) => {
                    self.check_expr(e);
                }
                TemplatePart::For {
                    pat, iter, body, ..
                } => {
                    let it = self.check_expr(iter);
                    let et = self.iter_elem(&it, iter.span);
                    self.push();
                    self.bind_pattern(pat, &et, LocalKind::Loop);
                    self.check_template(body);
                    self.pop();
                }
                TemplatePart::If {
                    cond, then, els, ..
                } => {
                    let ct = self.check_expr(cond);
                    self.expect_bool(&ct, cond.span, "an `{if}` condition");
                    self.check_template(then);
                    self.check_template(els);
                }
            }
        }
    }

    // ------------------------------------------------------------------ expressions

    fn unknown_name(&mut self, name: &str, span: Span) {
        if let Some(inv) = self.invisible.get(name) {
            let d = Diagnostic::new("E0111", span, inv.why.clone())
                .with_label(format!("not visible in {}", self.place.describe()))
                .with_secondary(inv.span, "defined here")
                .with_help(inv.help.clone());
            self.passed_on.insert(inv.span);
            self.err(d);
            return;
        }
        if self
            .unit
            .resolve_fn(
                self.module,
                &Path {
                    segments: vec![Ident {
                        name: name.into(),
                        span,
                    }],
                    span,
                },
            )
            .is_some()
            || builtins::is_builtin(name)
        {
            self.err(
                Diagnostic::new(
                    "E0203",
                    span,
                    format!("`{name}` is a function, not a value"),
                )
                .with_label("used as a value")
                .with_help(format!("call it: `{name}(…)`")),
            );
            return;
        }
        let names = self.visible_names();
        let mut d = Diagnostic::new("E0101", span, format!("unknown name `{name}`"))
            .with_label(format!("not defined in {}", self.place.describe()));
        d.help = Some(match suggest(name, names.iter().map(|s| s.as_str())) {
            Some(s) => format!("did you mean `{s}`?"),
            None => "define it with `let`, declare it as a `param`, or `show`/`hide` it in the generator".into(),
        });
        self.err(d);
    }

    fn check_clauses(&mut self, clauses: &[Clause]) {
        for c in clauses {
            match c {
                Clause::For(p, e) => {
                    let it = self.check_expr(e);
                    let et = self.iter_elem(&it, e.span);
                    self.bind_pattern(p, &et, LocalKind::Loop);
                }
                Clause::If(e) => {
                    let t = self.check_expr(e);
                    self.expect_bool(&t, e.span, "a filter condition");
                }
            }
        }
    }

    pub fn check_expr(&mut self, e: &Expr) -> Ty {
        match &e.kind {
            ExprKind::Error => Ty::Unknown,
            ExprKind::Int(_) => Ty::Int,
            ExprKind::Float(_) => Ty::Float,
            ExprKind::Bool(_) => Ty::Bool,
            ExprKind::Unit => Ty::Unit,
            ExprKind::Str(t) => {
                self.check_template(&t.parts);
                Ty::Str
            }
            ExprKind::Path(p) => self.check_path(p),
            ExprKind::Tuple(v) => Ty::Tuple(v.iter().map(|x| self.check_expr(x)).collect()),
            ExprKind::List(v) => {
                let mut elem = Ty::Unknown;
                for x in v {
                    let t = self.check_expr(x);
                    if !t.compatible(&elem) {
                        self.err(
                            Diagnostic::new(
                                "E0201",
                                x.span,
                                format!("list elements must all be `{elem}`, found `{t}`"),
                            )
                            .with_label(format!("this is `{t}`"))
                            .with_help(
                                "a list holds values of one type; use a tuple for mixed values",
                            ),
                        );
                    } else {
                        elem = elem.join(&t);
                    }
                }
                Ty::list(elem)
            }
            ExprKind::Record(fs) => {
                let mut seen: HashMap<&str, Span> = HashMap::new();
                let mut out = Vec::new();
                for (n, x) in fs {
                    if let Some(first) = seen.get(n.name.as_str()) {
                        let first = *first;
                        self.err(
                            Diagnostic::new(
                                "E0102",
                                n.span,
                                format!("field `{}` is given twice", n.name),
                            )
                            .with_label("again here")
                            .with_secondary(first, "first here")
                            .with_help("remove one of them"),
                        );
                    }
                    seen.insert(&n.name, n.span);
                    out.push((n.name.clone(), self.check_expr(x)));
                }
                Ty::record(out)
            }
            ExprKind::Comprehension { elem, clauses } => {
                self.push();
                self.check_clauses(clauses);
                let t = self.check_expr(elem);
                self.pop();
                Ty::list(t)
            }
            ExprKind::Quant { clauses, body, .. } => {
                self.push();
                self.check_clauses(clauses);
                let t = self.check_expr(body);
                self.expect_bool(&t, body.span, "a quantifier's body");
                self.pop();
                Ty::Bool
            }
            ExprKind::Range { lo, hi, .. } => {
                let a = self.check_expr(lo);
                let b = self.check_expr(hi);
                self.expect(&a, &Ty::Int, lo.span, "a range bound");
                self.expect(&b, &Ty::Int, hi.span, "a range bound");
                Ty::list(Ty::Int)
            }
            ExprKind::Unary(op, x) => {
                let t = self.check_expr(x);
                match op {
                    UnOp::Not => {
                        self.operand(&t, &Ty::Bool, x.span, "not");
                        Ty::Bool
                    }
                    UnOp::Neg => {
                        if !t.is_numeric() {
                            self.op_error("-", &t, None, e.span);
                            return Ty::Unknown;
                        }
                        t
                    }
                }
            }
            ExprKind::Binary(op, a, b) => self.check_binary(*op, a, b, e.span),
            ExprKind::Call { callee, args } => self.check_call(callee, args, e.span),
            ExprKind::Index(a, i) => {
                let at = self.check_expr(a);
                let it = self.check_expr(i);
                match at {
                    Ty::List(el) => {
                        self.expect(&it, &Ty::Int, i.span, "a list index");
                        *el
                    }
                    Ty::Map(k, v) => {
                        self.expect(&it, &k, i.span, "a map key");
                        *v
                    }
                    Ty::Unknown => Ty::Unknown,
                    other => {
                        let help = match other {
                            Ty::Tuple(_) => "use `.0`, `.1`, … for tuple elements",
                            Ty::Record(_) => "use `.field` for record fields",
                            Ty::Set(_) => "sets have no order: test membership with `in`",
                            _ => "only lists and maps can be indexed",
                        };
                        self.err(
                            Diagnostic::new(
                                "E0205",
                                a.span,
                                format!("cannot index into `{other}`"),
                            )
                            .with_label("not a list or map")
                            .with_help(help),
                        );
                        Ty::Unknown
                    }
                }
            }
            ExprKind::Field(a, f) => {
                let at = self.check_expr(a);
                match &at {
                    Ty::Record(fs) => match fs.iter().find(|(n, _)| *n == f.name) {
                        Some((_, t)) => t.clone(),
                        None => {
                            let names: Vec<&str> = fs.iter().map(|(n, _)| n.as_str()).collect();
                            let mut d = Diagnostic::new(
                                "E0206",
                                f.span,
                                format!("no field `{}` in `{at}`", f.name),
                            )
                            .with_label("unknown field");
                            d.help = Some(match suggest(&f.name, names.iter().copied()) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => format!("fields: {}", names.join(", ")),
                            });
                            self.err(d);
                            Ty::Unknown
                        }
                    },
                    Ty::Unknown => Ty::Unknown,
                    other => {
                        let help = if builtins::is_builtin(&f.name) {
                            let recv = match &a.kind {
                                ExprKind::Path(p) => p.to_string_path(),
                                _ => "…".to_string(),
                            };
                            format!(
                                "there are no methods: call the function, `{}({recv})`",
                                f.name
                            )
                        } else {
                            "only records have named fields; tuples use `.0`, `.1`, …".to_string()
                        };
                        self.err(
                            Diagnostic::new("E0205", f.span, format!("`{other}` has no fields"))
                                .with_label(format!("no field `{}`", f.name))
                                .with_help(help),
                        );
                        Ty::Unknown
                    }
                }
            }
            ExprKind::TupleField(a, idx, fspan) => {
                let at = self.check_expr(a);
                match &at {
                    Ty::Tuple(ts) => match ts.get(*idx as usize) {
                        Some(t) => t.clone(),
                        None => {
                            self.err(
                                Diagnostic::new(
                                    "E0207",
                                    *fspan,
                                    format!("tuple index {idx} is out of range for `{at}`"),
                                )
                                .with_label(format!("this tuple has {} elements", ts.len()))
                                .with_help(format!(
                                    "use an index from 0 to {}",
                                    ts.len().saturating_sub(1)
                                )),
                            );
                            Ty::Unknown
                        }
                    },
                    Ty::Unknown => Ty::Unknown,
                    other => {
                        self.err(
                            Diagnostic::new("E0205", *fspan, format!("`{other}` is not a tuple"))
                                .with_label("`.N` needs a tuple")
                                .with_help("lists are indexed with `xs[i]`"),
                        );
                        Ty::Unknown
                    }
                }
            }
            ExprKind::If { cond, then, els } => {
                let ct = self.check_expr(cond);
                self.expect_bool(&ct, cond.span, "an `if` condition");
                let tt = self.check_block(then, Role::Plain, true);
                match els.as_deref() {
                    None => {
                        if tt != Ty::Unit {
                            self.err(
                                Diagnostic::new(
                                    "E0217",
                                    e.span,
                                    "an `if` used as a value needs an `else`",
                                )
                                .with_label("no value when the condition is false")
                                .with_help("add `else { … }` with a value of the same type"),
                            );
                            return Ty::Unknown;
                        }
                        Ty::Unit
                    }
                    Some(branch) => {
                        let et = match branch {
                            Else::Block(b) => self.check_block(b, Role::Plain, true),
                            Else::If(x) => self.check_expr(x),
                        };
                        if !et.compatible(&tt) {
                            self.err(
                                Diagnostic::new(
                                    "E0201",
                                    e.span,
                                    format!("the branches of this `if` differ: `{tt}` and `{et}`"),
                                )
                                .with_label("branches must have one type")
                                .with_help("make both branches produce the same type"),
                            );
                        }
                        tt.join(&et)
                    }
                }
            }
        }
    }

    fn check_path(&mut self, p: &Path) -> Ty {
        match p.segments.as_slice() {
            [one] => {
                let name = one.name.clone();
                if let Some(l) = self.lookup(&name) {
                    return l.ty.clone();
                }
                self.unknown_name(&name, one.span);
                Ty::Unknown
            }
            [ty, variant] => match self.find_type(&ty.name) {
                Some((TypeDefRef::Enum(id), _)) => {
                    let info = &self.enums[id.0 as usize];
                    if info.variants.contains(&variant.name) {
                        Ty::Enum(id, info.name.clone(), info.variants.clone())
                    } else {
                        let vs = info.variants.clone();
                        let mut d = Diagnostic::new(
                            "E0109",
                            variant.span,
                            format!("enum `{}` has no variant `{}`", ty.name, variant.name),
                        )
                        .with_label("unknown variant");
                        d.help = Some(
                            match suggest(&variant.name, vs.iter().map(|s| s.as_str())) {
                                Some(s) => format!("did you mean `{}::{s}`?", ty.name),
                                None => format!("variants: {}", vs.join(", ")),
                            },
                        );
                        self.err(d);
                        Ty::Unknown
                    }
                }
                _ => {
                    let path = p.to_string_path();
                    let enums: Vec<(String, EnumId)> = self
                        .type_names()
                        .into_iter()
                        .filter_map(|n| match self.find_type(&n) {
                            Some((TypeDefRef::Enum(id), _)) => Some((n, id)),
                            _ => None,
                        })
                        .collect();
                    let owner = enums
                        .iter()
                        .find(|(_, id)| self.enums[id.0 as usize].variants.contains(&variant.name));
                    let is_module = self.unit.resolve_fn(self.module, p).is_some();
                    let help = match (owner, is_module) {
                        (_, true) => format!("module functions must be called: `{path}(…)`"),
                        (Some((e, _)), _) => format!("did you mean `{e}::{}`?", variant.name),
                        (None, _) => match suggest(&ty.name, enums.iter().map(|(n, _)| n.as_str()))
                        {
                            Some(e) => format!("did you mean enum `{e}`?"),
                            None => "`A::b` names variant `b` of enum `A`".to_string(),
                        },
                    };
                    let (msg, label) = if is_module {
                        (
                            format!("`{path}` is a function, not a value"),
                            "not called".to_string(),
                        )
                    } else {
                        (
                            format!("unknown enum `{}`", ty.name),
                            format!("no enum `{}` is defined", ty.name),
                        )
                    };
                    self.err(
                        Diagnostic::new("E0101", p.span, msg)
                            .with_label(label)
                            .with_help(help),
                    );
                    Ty::Unknown
                }
            },
            _ => {
                self.err(
                    Diagnostic::new(
                        "E0101",
                        p.span,
                        format!("unknown name `{}`", p.to_string_path()),
                    )
                    .with_label("paths have at most two parts")
                    .with_help("write `Enum::variant` or `module::function(…)`"),
                );
                Ty::Unknown
            }
        }
    }

    fn operand(&mut self, t: &Ty, want: &Ty, span: Span, op: &str) {
        if !t.compatible(want) {
            self.err(
                Diagnostic::new(
                    "E0204",
                    span,
                    format!("`{op}` needs `{want}` operands, found `{t}`"),
                )
                .with_label(format!("this is `{t}`"))
                .with_help(format!("`{op}` works on `{want}` values")),
            );
        }
    }

    fn op_error(&mut self, op: &str, a: &Ty, b: Option<&Ty>, span: Span) {
        let (msg, help) = match b {
            Some(b) => (
                format!("`{op}` cannot be applied to `{a}` and `{b}`"),
                match (a, b) {
                    (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => {
                        "convert the int with `float(x)` first".to_string()
                    }
                    _ if op == "+" => {
                        "`+` adds numbers of one type and joins two lists or two strings"
                            .to_string()
                    }
                    _ => "both sides must have one numeric type".to_string(),
                },
            ),
            None => (
                format!("`{op}` cannot be applied to `{a}`"),
                "negate an int or float".to_string(),
            ),
        };
        self.err(
            Diagnostic::new("E0204", span, msg)
                .with_label("invalid operands")
                .with_help(help),
        );
    }

    fn check_binary(&mut self, op: BinOp, a: &Expr, b: &Expr, span: Span) -> Ty {
        let at = self.check_expr(a);
        let bt = self.check_expr(b);
        use BinOp::*;
        match op {
            And | Or | Implies => {
                self.operand(&at, &Ty::Bool, a.span, op.symbol());
                self.operand(&bt, &Ty::Bool, b.span, op.symbol());
                Ty::Bool
            }
            Add | Sub | Mul | Div | Rem => {
                if op == Add {
                    match (&at, &bt) {
                        (Ty::List(_), Ty::List(_)) | (Ty::Str, Ty::Str) if at.compatible(&bt) => {
                            return at.join(&bt)
                        }
                        _ => {}
                    }
                }
                if at.is_numeric() && bt.is_numeric() && at.compatible(&bt) {
                    if matches!(op, Rem) && (at == Ty::Float || bt == Ty::Float) {
                        self.op_error("%", &at, Some(&bt), span);
                        return Ty::Unknown;
                    }
                    at.join(&bt)
                } else if at == Ty::Unknown || bt == Ty::Unknown {
                    Ty::Unknown
                } else {
                    self.op_error(op.symbol(), &at, Some(&bt), span);
                    Ty::Unknown
                }
            }
            Eq | Ne => {
                if !at.compatible(&bt) {
                    let help = match (&at, &bt) {
                        (Ty::Str, _) | (_, Ty::Str) => {
                            "convert the other side with `str(…)`, or compare two strings"
                        }
                        (Ty::Int, Ty::Float) | (Ty::Float, Ty::Int) => {
                            "convert the int with `float(x)` first"
                        }
                        _ => "compare values of the same type",
                    };
                    self.err(
                        Diagnostic::new(
                            "E0204",
                            span,
                            format!("cannot compare `{at}` with `{bt}`"),
                        )
                        .with_label("different types")
                        .with_secondary(a.span, format!("this is `{at}`"))
                        .with_secondary(b.span, format!("this is `{bt}`"))
                        .with_help(help),
                    );
                }
                Ty::Bool
            }
            Lt | Le | Gt | Ge => {
                let ordered = |t: &Ty| matches!(t, Ty::Int | Ty::Float | Ty::Str | Ty::Unknown);
                if !(ordered(&at) && ordered(&bt) && at.compatible(&bt)) {
                    self.err(
                        Diagnostic::new("E0204", span, format!("cannot order `{at}` and `{bt}`"))
                            .with_label("invalid comparison")
                            .with_help(
                                "`<`, `<=`, `>`, `>=` compare two ints, two floats or two strings",
                            ),
                    );
                }
                Ty::Bool
            }
            In => {
                let elem = match &bt {
                    Ty::Map(k, _) => Some((**k).clone()),
                    t => t.elem(),
                };
                match elem {
                    Some(el) => {
                        if !at.compatible(&el) {
                            self.err(
                                Diagnostic::new(
                                    "E0204",
                                    span,
                                    format!("`{at}` can never be in a collection of `{el}`"),
                                )
                                .with_label("element types differ")
                                .with_help(
                                    "test membership of a value of the collection's element type",
                                ),
                            );
                        }
                    }
                    None => self.err(
                        Diagnostic::new(
                            "E0209",
                            b.span,
                            format!("`in` needs a collection, found `{bt}`"),
                        )
                        .with_label("not a collection")
                        .with_help("test membership in a list, set, map (its keys) or range"),
                    ),
                }
                Ty::Bool
            }
        }
    }

    fn check_call(&mut self, callee: &Path, args: &[Expr], span: Span) -> Ty {
        let arg_tys: Vec<Ty> = args.iter().map(|a| self.check_expr(a)).collect();
        let name = callee.to_string_path();
        if callee.segments.len() == 1 {
            if name == builtins::LEVELS {
                self.err(
                    Diagnostic::new(
                        "E0211",
                        callee.span,
                        "`levels(…)` is only allowed as a param's value",
                    )
                    .with_label("not a function")
                    .with_help("declare `param x: int = levels(…)` and use `x` here"),
                );
                return Ty::Unknown;
            }
            if builtins::is_builtin(&name) && self.unit.resolve_fn(self.module, callee).is_none() {
                if builtins::is_random(&name) {
                    self.random_call(span, &name, None);
                }
                return match builtins::signature(&name, &arg_tys) {
                    Ok(Ty::Float) if name == "sum" => {
                        self.float_sums.insert(span);
                        Ty::Float
                    }
                    Ok(t) => t,
                    Err(e) => {
                        let d = match e.arg.and_then(|i| Some((i, args.get(i)?, arg_tys.get(i)?))) {
                            Some((i, a, t)) => Diagnostic::new(
                                "E0201",
                                a.span,
                                format!("argument {} of `{name}`: {}", i + 1, e.message),
                            )
                            .with_label(format!("this is `{t}`")),
                            // Arity messages already name the builtin.
                            None => Diagnostic::new("E0202", span, e.message)
                                .with_label("wrong number of arguments"),
                        };
                        self.err(d.with_help(e.help));
                        Ty::Unknown
                    }
                };
            }
        }
        let Some(f) = self.unit.resolve_fn(self.module, callee) else {
            let mut candidates: Vec<String> = builtins::PURE
                .iter()
                .chain(builtins::RANDOM)
                .map(|s| s.to_string())
                .collect();
            let m = &self.unit.modules[self.module];
            candidates.extend(m.fns.keys().cloned());
            candidates.extend(m.imports.keys().cloned());
            let mut d = Diagnostic::new("E0203", callee.span, format!("unknown function `{name}`"))
                .with_label("not defined");
            d.help = Some(
                match suggest(&name, candidates.iter().map(|s| s.as_str())) {
                    _ if callee.segments.len() == 1 && common_alias(&name).is_some() => {
                        format!(
                            "resyn spells this {}",
                            common_alias(&name).unwrap_or_default()
                        )
                    }
                    Some(s) => format!("did you mean `{s}`?"),
                    None if callee.segments.len() == 2 => {
                        format!(
                            "is `use std::{}` missing, or is the function named differently?",
                            callee.segments[0].name
                        )
                    }
                    None => match stdlib_fn_module(&name) {
                        Some(m) if callee.segments.len() == 1 => {
                            format!("`std::{m}` has a function `{name}`: import it with `use std::{m}::{{{name}}}`")
                        }
                        _ => format!(
                            "define it with `fn {name}(…)`, or import it from a stdlib module"
                        ),
                    },
                },
            );
            self.err(d);
            return Ty::Unknown;
        };
        // Record import usage for W0003.
        match callee.segments.as_slice() {
            [one] => {
                self.used_imports.insert((self.module, one.name.clone()));
            }
            [m, _] => {
                self.used_modules.insert((self.module, m.name.clone()));
            }
            _ => {}
        }
        let Some(sig) = self.sigs.get(&f).cloned() else {
            return Ty::Unknown;
        };
        let decl = self.unit.fn_decl(f);
        if args.len() != sig.params.len() {
            self.err(
                Diagnostic::new(
                    "E0202",
                    span,
                    format!(
                        "`{name}` takes {} argument(s), found {}",
                        sig.params.len(),
                        args.len()
                    ),
                )
                .with_label("wrong number of arguments")
                .with_secondary(decl.name.span, "defined here")
                .with_help(format!(
                    "call it as `{name}({})`",
                    decl.params
                        .iter()
                        .map(|(n, _)| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
        } else {
            for ((a, at), (pt, (pn, _))) in args
                .iter()
                .zip(&arg_tys)
                .zip(sig.params.iter().zip(&decl.params))
            {
                self.expect(
                    at,
                    pt,
                    a.span,
                    &format!("argument `{}` of `{name}`", pn.name),
                );
            }
        }
        if let Some(origin) = sig.random {
            self.random_call(span, &name, Some(origin));
        }
        sig.ret
    }

    fn random_call(&mut self, span: Span, name: &str, origin: Option<Span>) {
        if name == "unique_givens" && !matches!(self.place, Place::Gen) {
            // It proves with the calling env's own verify, so it needs that env: a function
            // could be called from any env.
            let d = Diagnostic::new(
                "E0301",
                span,
                format!("`unique_givens` is only allowed directly in `gen`, not in {}", self.place.describe()),
            )
            .with_label("solver call")
            .with_help("call it in the env's `gen` block, where it proves uniqueness with that env's verify");
            self.err(d);
            return;
        }
        match self.place {
            Place::Gen => {}
            Place::Fn => {
                self.fn_random.get_or_insert(span);
            }
            place => {
                let mut d = Diagnostic::new("E0301", span, format!("`{name}` is random, and randomness is not allowed in {}", place.describe()))
                    .with_label("random call")
                    .with_help("only the generator may draw random values; compute them in `gen` and `show`/`hide` them");
                if let Some(o) = origin {
                    d = d.with_secondary(o, "randomness comes from here");
                }
                self.err(d);
            }
        }
    }
}

enum TypeDefRef {
    Alias(TypeExpr),
    Enum(EnumId),
}

/// The stdlib module that defines a function named `name`, if one does.
fn stdlib_fn_module(name: &str) -> Option<&'static str> {
    static FNS: std::sync::OnceLock<HashMap<&'static str, &'static str>> =
        std::sync::OnceLock::new();
    let fns = FNS.get_or_init(|| {
        let mut fns = HashMap::new();
        for m in crate::stdlib::names() {
            let src = crate::stdlib::module(m).unwrap_or("");
            for line in src.lines() {
                let decl = line.trim_start().strip_prefix("fn ").unwrap_or("");
                let end = decl
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .unwrap_or(0);
                if end > 0 {
                    fns.entry(&decl[..end]).or_insert(m);
                }
            }
        }
        fns
    });
    fns.get(name).copied()
}

/// What resyn calls a function that other languages name differently.
fn common_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "minimum" => "`min(xs)`",
        "maximum" => "`max(xs)`",
        "length" | "size" | "count_of" => "`len(xs)`",
        "sort" => "`sorted(xs)`",
        "reverse" => "`reversed(xs)`",
        "range" => "`lo..hi` (a half-open range)",
        "contains" | "includes" | "has" => "`x in xs`",
        "append" | "push" | "concat" => "`xs + [x]` (lists join with `+`)",
        "to_string" | "string" | "format" => "`str(x)`, or a template string \"{x}\"",
        "randint" | "random_int" | "randrange" => "`rand_int(lo, hi)` (inclusive)",
        "random" => "`rand_float()`",
        _ => return None,
    })
}

/// The names a pattern binds, with their spans.
fn pattern_names(p: &Pattern, out: &mut Vec<(String, Span)>) {
    match &p.kind {
        PatternKind::Wildcard => {}
        PatternKind::Bind(i) => out.push((i.name.clone(), i.span)),
        PatternKind::Tuple(ps) => ps.iter().for_each(|p| pattern_names(p, out)),
    }
}

/// `lo..hi` / `lo..=hi` with literal bounds, as a half-open pair.
fn literal_range(e: &Expr) -> Option<(i64, i64)> {
    if let ExprKind::Range { lo, hi, inclusive } = &e.kind {
        if let (ExprKind::Int(a), ExprKind::Int(b)) = (&lo.kind, &hi.kind) {
            return Some((*a, if *inclusive { b.saturating_add(1) } else { *b }));
        }
    }
    None
}
