//! Name resolution of items: loads the stdlib modules a file `use`s, builds each module's
//! table of functions, types and imports, reports duplicates, and builds the call graph
//! (petgraph) to reject recursion and to give the checker a callees-first order.
//! Local names (let, params, instance values) are scoped by the checker.

use crate::source::SourceMap;
use crate::stdlib;
use crate::visit;
use petgraph::graphmap::DiGraphMap;
use resyn_grammar::ast::{self, ExprKind, Item, Path};
use resyn_grammar::diag::Diagnostic;
use resyn_grammar::span::{FileId, Span};
use std::collections::{BTreeMap, HashMap, HashSet};

pub type ModId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnId {
    pub module: ModId,
    pub item: usize,
}

pub struct Module {
    /// `main` for the user's file, `std::NAME` for stdlib modules.
    pub name: String,
    pub file: FileId,
    pub ast: ast::SourceFile,
    pub fns: BTreeMap<String, FnId>,
    /// Type aliases and enums declared at top level: name → item index.
    pub types: BTreeMap<String, usize>,
    /// `use std::m::{f}`: f → (the function, the span of `f` in the use).
    pub imports: BTreeMap<String, (FnId, Span)>,
    /// `use std::m`: m → (module, span of the use).
    pub module_uses: BTreeMap<String, (ModId, Span)>,
}

pub struct Unit {
    pub modules: Vec<Module>,
    /// Functions callees-first; functions on a call cycle are left out.
    pub fn_order: Vec<FnId>,
    pub in_cycle: HashSet<FnId>,
}

impl Unit {
    pub fn fn_decl(&self, id: FnId) -> &ast::FnDecl {
        match &self.modules[id.module].ast.items[id.item] {
            Item::Fn(f) => f,
            _ => unreachable!("FnId always points at a fn item"),
        }
    }

    /// The function a call path names, seen from `module`.
    pub fn resolve_fn(&self, module: ModId, path: &Path) -> Option<FnId> {
        let m = &self.modules[module];
        match path.segments.as_slice() {
            [f] => m
                .fns
                .get(&f.name)
                .copied()
                .or_else(|| m.imports.get(&f.name).map(|(id, _)| *id)),
            [md, f] => {
                let (target, _) = m.module_uses.get(&md.name)?;
                self.modules[*target].fns.get(&f.name).copied()
            }
            _ => None,
        }
    }
}

/// Resolves the root file (already parsed) and every stdlib module it reaches.
pub fn resolve(
    sources: &mut SourceMap,
    root: FileId,
    ast: ast::SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Unit {
    let mut modules: Vec<Module> = Vec::new();
    let mut by_name: HashMap<String, ModId> = HashMap::new();
    let mut queue: Vec<ModId> = Vec::new();
    modules.push(new_module("main".into(), root, ast));
    queue.push(0);
    while let Some(mid) = queue.pop() {
        collect_items(&mut modules[mid], mid, diags);
        // Resolve `use` declarations, loading modules on first sight.
        let uses: Vec<ast::UseDecl> = modules[mid]
            .ast
            .items
            .iter()
            .filter_map(|i| {
                if let Item::Use(u) = i {
                    Some(u.clone())
                } else {
                    None
                }
            })
            .collect();
        for u in uses {
            let segs: Vec<&str> = u.path.segments.iter().map(|s| s.name.as_str()).collect();
            let (modname, src) = match segs.as_slice() {
                ["std", name] if stdlib::module(name).is_some() => {
                    (name.to_string(), stdlib::module(name).unwrap_or(""))
                }
                _ => {
                    let avail: Vec<String> = stdlib::names().map(|n| format!("std::{n}")).collect();
                    diags.push(
                        Diagnostic::new(
                            "E0104",
                            u.path.span,
                            format!("unknown module `{}`", u.path.to_string_path()),
                        )
                        .with_label("no such module")
                        .with_help(format!("available modules: {}", avail.join(", "))),
                    );
                    continue;
                }
            };
            let target = match by_name.get(&modname) {
                Some(t) => *t,
                None => {
                    let file = sources.add(format!("<std>/{modname}.rsn"), src);
                    let parsed = resyn_grammar::parse_file(src, file);
                    diags.extend(parsed.diagnostics);
                    modules.push(new_module(format!("std::{modname}"), file, parsed.file));
                    let t = modules.len() - 1;
                    by_name.insert(modname.clone(), t);
                    queue.push(t);
                    // Its items must be known before names are imported from it.
                    collect_items(&mut modules[t], t, diags);
                    t
                }
            };
            match &u.names {
                None => {
                    let m = &mut modules[mid];
                    if m.module_uses
                        .insert(modname.clone(), (target, u.span))
                        .is_some()
                    {
                        diags.push(duplicate(&modname, u.span, None));
                    }
                }
                Some(names) => {
                    for n in names {
                        match modules[target].fns.get(&n.name).copied() {
                            Some(id) => {
                                let m = &mut modules[mid];
                                if m.fns.contains_key(&n.name) || m.imports.contains_key(&n.name) {
                                    diags.push(duplicate(&n.name, n.span, None));
                                } else {
                                    m.imports.insert(n.name.clone(), (id, n.span));
                                }
                            }
                            None => {
                                let avail: Vec<&String> = modules[target].fns.keys().collect();
                                diags.push(
                                    Diagnostic::new(
                                        "E0105",
                                        n.span,
                                        format!("`std::{modname}` has no function `{}`", n.name),
                                    )
                                    .with_label("not found in the module")
                                    .with_help(format!(
                                        "`std::{modname}` provides: {}",
                                        avail
                                            .iter()
                                            .map(|s| s.as_str())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    )),
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    let mut unit = Unit {
        modules,
        fn_order: Vec::new(),
        in_cycle: HashSet::new(),
    };
    call_graph(&mut unit, diags);
    unit
}

fn new_module(name: String, file: FileId, ast: ast::SourceFile) -> Module {
    Module {
        name,
        file,
        ast,
        fns: BTreeMap::new(),
        types: BTreeMap::new(),
        imports: BTreeMap::new(),
        module_uses: BTreeMap::new(),
    }
}

fn duplicate(name: &str, span: Span, first: Option<Span>) -> Diagnostic {
    let d = Diagnostic::new("E0102", span, format!("`{name}` is defined more than once"))
        .with_label("defined again here")
        .with_help("rename one of them");
    match first {
        Some(f) => d.with_secondary(f, "first defined here"),
        None => d,
    }
}

fn collect_items(m: &mut Module, mid: ModId, diags: &mut Vec<Diagnostic>) {
    if !m.fns.is_empty() || !m.types.is_empty() {
        return; // already collected
    }
    let mut seen: HashMap<String, Span> = HashMap::new();
    let mut envs: HashMap<String, Span> = HashMap::new();
    for (i, item) in m.ast.items.iter().enumerate() {
        let (name, is_type) = match item {
            Item::Fn(f) => (&f.name, false),
            Item::TypeAlias(t) => (&t.name, true),
            Item::Enum(e) => (&e.name, true),
            Item::Env(e) => {
                if let Some(first) = envs.get(&e.name.name) {
                    diags.push(duplicate(&e.name.name, e.name.span, Some(*first)));
                } else {
                    envs.insert(e.name.name.clone(), e.name.span);
                }
                continue;
            }
            Item::Use(_) | Item::Error(_) => continue,
        };
        if is_type && crate::builtins::is_builtin_type(&name.name) {
            diags.push(crate::builtins::redefined_type(name));
            continue;
        }
        if !is_type && name.name == crate::builtins::LEVELS {
            diags.push(
                Diagnostic::new("E0102", name.span, "`levels` is reserved for param values")
                    .with_label("this function could never be called")
                    .with_help("choose another name"),
            );
            continue;
        }
        if crate::builtins::is_builtin(&name.name) && !is_type {
            diags.push(
                Diagnostic::new(
                    "E0102",
                    name.span,
                    format!("`{}` is a builtin function", name.name),
                )
                .with_label("this would shadow the builtin")
                .with_help("choose another name"),
            );
            continue;
        }
        if let Some(first) = seen.get(&name.name) {
            diags.push(duplicate(&name.name, name.span, Some(*first)));
            continue;
        }
        seen.insert(name.name.clone(), name.span);
        let id = FnId {
            module: mid,
            item: i,
        };
        if is_type {
            m.types.insert(name.name.clone(), i);
        } else {
            m.fns.insert(name.name.clone(), id);
        }
    }
}

/// Builds the call graph, reports every cycle once, and orders functions callees-first.
fn call_graph(unit: &mut Unit, diags: &mut Vec<Diagnostic>) {
    let mut graph: DiGraphMap<FnId, ()> = DiGraphMap::new();
    let mut call_sites: HashMap<(FnId, FnId), Span> = HashMap::new();
    let all: Vec<FnId> = unit
        .modules
        .iter()
        .flat_map(|m| m.fns.values().copied())
        .collect();
    for &f in &all {
        graph.add_node(f);
        let body = &unit.fn_decl(f).body;
        let mut callees = Vec::new();
        visit::walk_block(body, &mut |e| {
            if let ExprKind::Call { callee, .. } = &e.kind {
                if let Some(g) = unit.resolve_fn(f.module, callee) {
                    callees.push((g, callee.span));
                }
            }
        });
        for (g, sp) in callees {
            graph.add_edge(f, g, ());
            call_sites.entry((f, g)).or_insert(sp);
        }
    }
    for scc in petgraph::algo::tarjan_scc(&graph) {
        let cyclic = scc.len() > 1 || graph.contains_edge(scc[0], scc[0]);
        if !cyclic {
            continue;
        }
        let mut scc_sorted = scc.clone();
        scc_sorted.sort();
        let cycle = find_cycle(&graph, &scc_sorted);
        let names: Vec<String> = cycle
            .iter()
            .map(|f| unit.fn_decl(*f).name.name.clone())
            .collect();
        let first = cycle[0];
        let mut desc = names.join("` calls `");
        desc.push_str(&format!("` calls `{}", names[0]));
        let close = call_sites[&(cycle[cycle.len() - 1], first)];
        let mut d = Diagnostic::new("E0103", unit.fn_decl(first).name.span, format!("recursion is not allowed: `{desc}`"))
            .with_label(format!("`{}` is part of a call cycle", names[0]))
            .with_help("resyn programs must terminate: rewrite the recursion as a `for` loop over a bounded range");
        for w in 0..cycle.len() {
            let (a, b) = (cycle[w], cycle[(w + 1) % cycle.len()]);
            let sp = call_sites[&(a, b)];
            if sp != close || w + 1 == cycle.len() {
                d = d.with_secondary(
                    sp,
                    format!(
                        "`{}` calls `{}` here",
                        names[w],
                        names[(w + 1) % names.len()]
                    ),
                );
            }
        }
        diags.push(d);
        unit.in_cycle.extend(scc);
    }
    // Callees first: post-order DFS, skipping cyclic functions.
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut sorted_all = all.clone();
    sorted_all.sort();
    for f in sorted_all {
        post_order(&graph, f, &unit.in_cycle, &mut seen, &mut order);
    }
    unit.fn_order = order;
}

fn post_order(
    g: &DiGraphMap<FnId, ()>,
    f: FnId,
    skip: &HashSet<FnId>,
    seen: &mut HashSet<FnId>,
    out: &mut Vec<FnId>,
) {
    // Iterative DFS: the call graph of untrusted input may be long.
    let mut stack = vec![(f, false)];
    while let Some((n, done)) = stack.pop() {
        if done {
            out.push(n);
            continue;
        }
        if skip.contains(&n) || !seen.insert(n) {
            continue;
        }
        stack.push((n, true));
        let mut next: Vec<FnId> = g.neighbors(n).collect();
        next.sort();
        for m in next.into_iter().rev() {
            if !seen.contains(&m) && !skip.contains(&m) {
                stack.push((m, false));
            }
        }
    }
}

/// A simple cycle through the first node of a strongly connected component.
fn find_cycle(g: &DiGraphMap<FnId, ()>, scc: &[FnId]) -> Vec<FnId> {
    let start = scc[0];
    if g.contains_edge(start, start) {
        return vec![start];
    }
    let in_scc: HashSet<FnId> = scc.iter().copied().collect();
    // BFS for the shortest path back to start.
    let mut prev: HashMap<FnId, FnId> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<FnId> = g.neighbors(n).filter(|m| in_scc.contains(m)).collect();
        next.sort();
        for m in next {
            if m == start {
                let mut path = vec![n];
                let mut cur = n;
                while cur != start {
                    cur = prev[&cur];
                    path.push(cur);
                }
                path.reverse();
                return path;
            }
            if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    vec![start]
}
