//! A Boolean circuit the SMT lowering builds outside Z3: and, or and walk-step gates over
//! Z3 literals.
//!
//! Why: the lowering of a loop by enumerating its states (`smt::Lowering::enumerate_loop`)
//! makes a few thousand gates per proof (water_jugs: a gate per pair of a state and the
//! element values leading from it to one next state). As Z3 terms each costs a trip
//! through Z3's hash-consing and reference counting, and the bit-blaster then reads each
//! back through the API; together most of a water_jugs proof. Kept here as plain data,
//! they go straight into the SAT engine's clauses ([`crate::sat::Blaster::assert_circuit`]),
//! and become Z3 terms ([`Circuit::terms`]) only for an engine that needs them.
//!
//! The circuit means: every root holds, and every named constant equals its literal.

use std::collections::HashMap;
use z3::ast::Bool;

/// A literal of the circuit: a gate, maybe negated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CLit(u32);

impl CLit {
    /// The constant true (gate 0).
    pub const TRUE: CLit = CLit(0);
    pub const FALSE: CLit = CLit(1);

    fn new(gate: usize, negated: bool) -> CLit {
        CLit(((gate as u32) << 1) | u32::from(negated))
    }

    pub fn gate(self) -> usize {
        (self.0 >> 1) as usize
    }

    pub fn negated(self) -> bool {
        self.0 & 1 == 1
    }
}

impl std::ops::Not for CLit {
    type Output = CLit;

    fn not(self) -> CLit {
        CLit(self.0 ^ 1)
    }
}

/// What [`Circuit::replay`] hands its reader, in the order to translate it.
pub enum Part<'c> {
    /// The next gate: its index is the number of gates handed before it.
    Gate(&'c Gate),
    /// A required clause over gates handed before it.
    Root(&'c [CLit]),
    /// A named constant standing for a literal of a gate handed before it; handed before
    /// any later gate, whose leaf may mention it.
    Name(&'c Bool, CLit),
}

#[derive(Clone, Debug)]
pub enum Gate {
    True,
    /// A Z3 formula, translated by whoever reads the circuit.
    Leaf(Bool),
    And(Vec<CLit>),
    Or(Vec<CLit>),
    /// Where an enumerated walk is after a step: `present and or(from and via)` over
    /// `(from, via)` pairs. Readers may rely on two facts the lowering guarantees for
    /// such gates: the `from` literals of one step are states of the previous step, of
    /// which exactly one holds while the element is present (none after the list ended),
    /// and the `via` literals leaving one state toward different states are disjoint (an
    /// element's value leads to one state). The SAT engine then needs no gate per pair
    /// (see `sat::Blaster::assert_circuit`); Z3 gets the formula above.
    Step {
        from: Vec<(CLit, CLit)>,
        present: CLit,
    },
}

/// Gates in the order they were made (a gate's inputs come before it), roots and names.
#[derive(Debug)]
pub struct Circuit {
    pub gates: Vec<Gate>,
    /// Required clauses (disjunctions of literals), each with the number of gates there
    /// were when it was required: readers emit it there, among the gates, so clauses come
    /// in the order the lowering made them.
    pub roots: Vec<(usize, Vec<CLit>)>,
    /// Z3 constants that stand for circuit literals outside the circuit (in the
    /// lowering's values and facts), each with the number of gates there were when it was
    /// named: a later gate's leaf may mention it (a loop over what an enumerated loop
    /// computed), so readers bind it there, before translating that leaf.
    pub named: Vec<(usize, Bool, CLit)>,
    /// The enumerated walks, for [`Circuit::prune`].
    pub walks: Vec<Walk>,
    /// Gates by kind (true: and) and sorted inputs: one gate per function of the same
    /// literals, as Z3's hash-consing gave when these were terms, so the blaster makes one
    /// set of clauses for it.
    shared: HashMap<(bool, Vec<CLit>), CLit, foldhash::fast::FixedState>,
}

impl Default for Circuit {
    fn default() -> Circuit {
        Circuit {
            gates: vec![Gate::True],
            roots: Vec::new(),
            named: Vec::new(),
            walks: Vec::new(),
            shared: HashMap::default(),
        }
    }
}

/// One enumerated walk: its `Step` gates are the gates from `first` on (up to the next
/// walk's), and each of its final states is a named constant with the state literals
/// (one per step at which the list can end there) it stands for. Exactly one final
/// constant holds in every model.
#[derive(Debug)]
pub struct Walk {
    pub first: usize,
    pub finals: Vec<(Bool, Vec<CLit>)>,
}

/// How many terms [`Circuit::prune`] reads of the facts, per walk, at most.
const PRUNE_NODES: usize = 20_000;
/// How deep a fact [`Circuit::prune`] reads may nest: as for the blaster's `MAX_DEPTH`,
/// the reading recurses, and tests run it on 2 MiB threads.
const PRUNE_DEPTH: usize = 1_500;

/// The inputs of a conjunction whose neutral element is `unit` (and absorbing one
/// `!unit`; a disjunction is one with `unit` false), with the constants folded, sorted and
/// deduplicated; or, where that already decides it, its value: `!unit` when an input is,
/// or two are opposite, `unit` for no input, the input for one. Shared by this circuit's
/// gates and the SAT engine's (`sat::Blaster::and_all`).
pub fn junction_inputs<L: Copy + Ord + std::ops::Not<Output = L>>(
    mut lits: Vec<L>,
    unit: L,
) -> Result<Vec<L>, L> {
    if lits.contains(&!unit) {
        return Err(!unit);
    }
    lits.retain(|&l| l != unit);
    lits.sort_unstable();
    lits.dedup();
    // A literal and its negation sit side by side once sorted.
    if lits.windows(2).any(|p| p[0] == !p[1]) {
        return Err(!unit);
    }
    match lits.len() {
        0 => Err(unit),
        1 => Err(lits[0]),
        _ => Ok(lits),
    }
}

/// How far a circuit had grown, to take back what was added since ([`Circuit::truncate`]).
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    gates: usize,
    roots: usize,
    named: usize,
    walks: usize,
}

impl Circuit {
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty() && self.named.is_empty()
    }

    /// A literal for `b` (a constant for `true`/`false`).
    pub fn leaf(&mut self, b: &Bool) -> CLit {
        match b.as_bool() {
            Some(true) => CLit::TRUE,
            Some(false) => CLit::FALSE,
            None => {
                self.gates.push(Gate::Leaf(b.clone()));
                CLit::new(self.gates.len() - 1, false)
            }
        }
    }

    pub fn and(&mut self, lits: Vec<CLit>) -> CLit {
        self.junction(true, lits)
    }

    pub fn or(&mut self, lits: Vec<CLit>) -> CLit {
        self.junction(false, lits)
    }

    /// `and` (or `or`) of `lits`, with constants folded, inputs sorted and deduplicated,
    /// and a gate over the same inputs shared.
    fn junction(&mut self, and: bool, lits: Vec<CLit>) -> CLit {
        // The neutral element and the absorbing one.
        // `or` is `and` with the constants' roles swapped.
        let unit = if and { CLit::TRUE } else { CLit::FALSE };
        match junction_inputs(lits, unit) {
            Err(known) => known,
            Ok(lits) => {
                let key = (and, lits);
                if let Some(&l) = self.shared.get(&key) {
                    return l;
                }
                let lits = key.1.clone();
                self.gates
                    .push(if and { Gate::And(lits) } else { Gate::Or(lits) });
                let l = CLit::new(self.gates.len() - 1, false);
                self.shared.insert(key, l);
                l
            }
        }
    }

    /// A [`Gate::Step`] (the caller keeps its promises).
    pub fn step(&mut self, from: Vec<(CLit, CLit)>, present: CLit) -> CLit {
        if present == CLit::FALSE || from.is_empty() {
            return CLit::FALSE;
        }
        self.gates.push(Gate::Step { from, present });
        CLit::new(self.gates.len() - 1, false)
    }

    /// Requires `l`.
    pub fn assert(&mut self, l: CLit) {
        if l != CLit::TRUE {
            self.roots.push((self.gates.len(), vec![l]));
        }
    }

    /// Requires that not all of `lits` hold: one clause, no gate.
    pub fn forbid(&mut self, lits: Vec<CLit>) {
        if lits.contains(&CLit::FALSE) {
            return;
        }
        let clause: Vec<CLit> = lits
            .into_iter()
            .filter(|&l| l != CLit::TRUE)
            .map(|l| !l)
            .collect();
        self.roots.push((self.gates.len(), clause));
    }

    /// A Z3 formula equal to `l`: a constant, or a fresh constant named for it.
    pub fn name(&mut self, l: CLit) -> Bool {
        match l {
            CLit::TRUE => Bool::from_bool(true),
            CLit::FALSE => Bool::from_bool(false),
            _ => {
                let c = Bool::fresh_const("s");
                self.named.push((self.gates.len(), c.clone(), l));
                c
            }
        }
    }

    pub fn mark(&self) -> Mark {
        Mark {
            gates: self.gates.len(),
            roots: self.roots.len(),
            named: self.named.len(),
            walks: self.walks.len(),
        }
    }

    /// Takes back everything added since `m`.
    pub fn truncate(&mut self, m: Mark) {
        self.gates.truncate(m.gates);
        self.roots.truncate(m.roots);
        self.named.truncate(m.named);
        self.walks.truncate(m.walks);
        self.shared.retain(|_, l| l.gate() < m.gates);
    }

    /// Rules out the states of each walk from which no final state the facts allow can be
    /// reached, and returns how many. A final state is ruled out when some fact is false
    /// with its constant true and the walk's other final constants false (one of them
    /// holds in every model), read in three-valued logic over `and`, `or`, `not`, `=>`,
    /// `=` and `ite` (anything else is unknown). A state at a step is then live when it
    /// stands for an allowed final state or leads to a live state of the next step; every
    /// model's walk goes through live states only, so the others are false. Unit
    /// propagation then never tries a move into a dead end: maze_path's walks at level 5
    /// took the search thousands of conflicts where a wrong turn was found late.
    pub fn prune(&mut self, facts: &[Bool]) -> usize {
        let mut ruled_out = Vec::new();
        for (w, walk) in self.walks.iter().enumerate() {
            let end = self.walks.get(w + 1).map_or(self.gates.len(), |n| n.first);
            let Some(bad) = bad_finals(walk, facts) else {
                continue;
            };
            if bad.iter().all(|&b| !b) {
                continue;
            }
            let mut live = vec![false; end];
            for ((_, covers), &b) in walk.finals.iter().zip(&bad) {
                if !b {
                    for l in covers {
                        live[l.gate()] = true;
                    }
                }
            }
            for g in (walk.first..end).rev() {
                if let (true, Gate::Step { from, .. }) = (live[g], &self.gates[g]) {
                    for (f, _) in from {
                        live[f.gate()] = true;
                    }
                }
            }
            for (g, gate) in self.gates.iter().enumerate().take(end).skip(walk.first) {
                if !live[g] && matches!(gate, Gate::Step { .. }) {
                    ruled_out.push(!CLit::new(g, false));
                }
            }
        }
        let n = ruled_out.len();
        for l in ruled_out {
            self.assert(l);
        }
        n
    }

    /// Hands the circuit to `f` gate by gate, each root and each name where it was made
    /// (clauses then come in the order the lowering made them, and a name is bound before
    /// a later leaf can mention it): the one order every reader translates in.
    pub fn replay<E>(&self, mut f: impl FnMut(Part<'_>) -> Result<(), E>) -> Result<(), E> {
        let mut roots = self.roots.iter().peekable();
        let mut named = self.named.iter().peekable();
        for (k, g) in self.gates.iter().enumerate() {
            while let Some((_, ls)) = roots.next_if(|(at, _)| *at <= k) {
                f(Part::Root(ls))?;
            }
            while let Some((_, c, l)) = named.next_if(|(at, _, _)| *at <= k) {
                f(Part::Name(c, *l))?;
            }
            f(Part::Gate(g))?;
        }
        for (_, ls) in roots {
            f(Part::Root(ls))?;
        }
        for (_, c, l) in named {
            f(Part::Name(c, *l))?;
        }
        Ok(())
    }

    /// The circuit as Z3 facts: each root, and each named constant's equation.
    pub fn terms(&self) -> Vec<Bool> {
        let mut terms: Vec<Bool> = Vec::with_capacity(self.gates.len());
        let lit = |terms: &[Bool], l: CLit| {
            let t = &terms[l.gate()];
            if l.negated() {
                t.not()
            } else {
                t.clone()
            }
        };
        let mut out = Vec::new();
        let replayed: Result<(), std::convert::Infallible> = self.replay(|part| {
            let g = match part {
                Part::Root(ls) => {
                    let kids: Vec<Bool> = ls.iter().map(|&l| lit(&terms, l)).collect();
                    out.push(match kids.len() {
                        1 => kids[0].clone(),
                        _ => Bool::or(&kids),
                    });
                    return Ok(());
                }
                Part::Name(c, l) => {
                    out.push(c.iff(lit(&terms, l)));
                    return Ok(());
                }
                Part::Gate(g) => g,
            };
            let t = match g {
                Gate::True => Bool::from_bool(true),
                Gate::Leaf(b) => b.clone(),
                Gate::And(ls) | Gate::Or(ls) => {
                    let kids: Vec<Bool> = ls.iter().map(|&l| lit(&terms, l)).collect();
                    if matches!(g, Gate::And(_)) {
                        Bool::and(&kids)
                    } else {
                        Bool::or(&kids)
                    }
                }
                Gate::Step { from, present } => {
                    let ways: Vec<Bool> = from
                        .iter()
                        .map(|&(f, v)| Bool::and(&[lit(&terms, f), lit(&terms, v)]))
                        .collect();
                    Bool::and(&[lit(&terms, *present), Bool::or(&ways)])
                }
            };
            terms.push(t);
            Ok(())
        });
        let Ok(()) = replayed;
        out
    }
}

/// Which final states of `walk` some fact rules out ([`Circuit::prune`]); `None` when
/// the facts are too large to read.
fn bad_finals(walk: &Walk, facts: &[Bool]) -> Option<Vec<bool>> {
    use z3::ast::Ast;
    let n = walk.finals.len();
    let finals: HashMap<usize, usize, foldhash::fast::FixedState> = walk
        .finals
        .iter()
        .enumerate()
        .map(|(k, (c, _))| (c.get_z3_ast().as_ptr() as usize, k))
        .collect();
    let mut eval = Eval {
        finals,
        memo: HashMap::default(),
        n,
        nodes: 0,
    };
    let mut bad = Bits::with_capacity(n);
    for f in facts {
        let (_, falses) = eval.bool(f, 0)?;
        bad.union_with(&falses);
    }
    Some((0..n).map(|k| bad.contains(k)).collect())
}

/// A set of a walk's final states.
type Bits = fixedbitset::FixedBitSet;

fn all(n: usize) -> Bits {
    let mut b = Bits::with_capacity(n);
    b.insert_range(..);
    b
}

fn union(a: &Bits, b: &Bits) -> Bits {
    let mut u = a.clone();
    u.union_with(b);
    u
}

fn intersection(a: &Bits, b: &Bits) -> Bits {
    let mut i = a.clone();
    i.intersect_with(b);
    i
}

/// Three-valued evaluation of Boolean terms for each final state of a walk: the states
/// with which a term is true, and those with which it is false (else unknown).
struct Eval {
    finals: HashMap<usize, usize, foldhash::fast::FixedState>,
    memo: HashMap<usize, (Bits, Bits), foldhash::fast::FixedState>,
    n: usize,
    nodes: usize,
}

impl Eval {
    /// `t` at nesting `depth`; `None` past [`PRUNE_NODES`] terms or [`PRUNE_DEPTH`] levels
    /// (the reading recurses, and facts may nest as deep as a source makes them).
    fn bool(&mut self, t: &Bool, depth: usize) -> Option<(Bits, Bits)> {
        use z3::ast::Ast;
        use z3::DeclKind;
        let key = t.get_z3_ast().as_ptr() as usize;
        if let Some(v) = self.memo.get(&key) {
            return Some(v.clone());
        }
        self.nodes += 1;
        if self.nodes > PRUNE_NODES || depth > PRUNE_DEPTH {
            return None;
        }
        let (n, none) = (self.n, Bits::with_capacity(self.n));
        let v = if let Some(&k) = self.finals.get(&key) {
            let mut only = Bits::with_capacity(n);
            only.insert(k);
            let mut others = all(n);
            others.set(k, false);
            (only, others)
        } else if let Some(b) = t.as_bool() {
            if b {
                (all(n), none)
            } else {
                (none, all(n))
            }
        } else {
            let kind = t.safe_decl().ok().map(|d| d.kind());
            let kids: Vec<Bool> = match kind {
                Some(
                    DeclKind::Not
                    | DeclKind::And
                    | DeclKind::Or
                    | DeclKind::Implies
                    | DeclKind::Iff
                    | DeclKind::Eq
                    | DeclKind::Ite,
                ) => {
                    // Only over Booleans (`=` and `ite` also take ints).
                    let all = t.children();
                    let bools: Vec<Bool> = all.iter().filter_map(|c| c.as_bool()).collect();
                    if bools.len() == all.len() {
                        bools
                    } else {
                        Vec::new()
                    }
                }
                _ => Vec::new(),
            };
            let mut vals = Vec::with_capacity(kids.len());
            for k in &kids {
                vals.push(self.bool(k, depth + 1)?);
            }
            let (u, i) = (union, intersection);
            match (kind, vals.as_slice()) {
                (Some(DeclKind::Not), [(t, f)]) => (f.clone(), t.clone()),
                (Some(DeclKind::And), vs) if !vs.is_empty() => vs
                    .iter()
                    .fold((all(n), none), |(t, f), (vt, vf)| (i(&t, vt), u(&f, vf))),
                (Some(DeclKind::Or), vs) if !vs.is_empty() => vs
                    .iter()
                    .fold((none, all(n)), |(t, f), (vt, vf)| (u(&t, vt), i(&f, vf))),
                (Some(DeclKind::Implies), [(at, af), (bt, bf)]) => (u(af, bt), i(at, bf)),
                (Some(DeclKind::Iff | DeclKind::Eq), [(at, af), (bt, bf)]) => {
                    (u(&i(at, bt), &i(af, bf)), u(&i(at, bf), &i(af, bt)))
                }
                (Some(DeclKind::Ite), [(ct, cf), (at, af), (bt, bf)]) => (
                    u(&u(&i(ct, at), &i(cf, bt)), &i(at, bt)),
                    u(&u(&i(ct, af), &i(cf, bf)), &i(af, bf)),
                ),
                _ => (none.clone(), none),
            }
        };
        self.memo.insert(key, v.clone());
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_fold_constants_and_share_equal_inputs() {
        let mut c = Circuit::default();
        let a = c.leaf(&Bool::new_const("a"));
        let b = c.leaf(&Bool::new_const("b"));
        assert_eq!(c.and(vec![a, CLit::TRUE]), a);
        assert_eq!(c.and(vec![a, CLit::FALSE]), CLit::FALSE);
        assert_eq!(c.or(vec![a, !a]), CLit::TRUE);
        assert_eq!(c.or(vec![]), CLit::FALSE);
        let g = c.and(vec![a, b]);
        assert_eq!(c.and(vec![b, a, b]), g);
        assert_ne!(c.or(vec![a, b]), g);
        let m = c.mark();
        let h = c.or(vec![g, !b]);
        c.assert(h);
        c.truncate(m);
        assert!(c.is_empty());
        // The gate made after the mark is gone from the sharing table too.
        let h2 = c.or(vec![g, !b]);
        assert_eq!(h2.gate(), c.gates.len() - 1);
    }

    #[test]
    fn terms_say_what_the_circuit_says() {
        let mut c = Circuit::default();
        let (x, y) = (Bool::new_const("x"), Bool::new_const("y"));
        let (a, b) = (c.leaf(&x), c.leaf(&y));
        let g = c.or(vec![a, !b]);
        c.assert(!g);
        let both = c.and(vec![a, b]);
        let n = c.name(!both);
        let solver = z3::Solver::new();
        for t in c.terms() {
            solver.assert(&t);
        }
        // not (x or not y): x false and y true, so n = not (x and y) is true.
        solver.assert(n.not());
        assert_eq!(solver.check(), z3::SatResult::Unsat);
    }

    #[test]
    fn pruning_rules_out_the_states_that_cannot_reach_an_allowed_end() {
        // Two steps of one-hot moves (u or not u): A or B after the first; from A, u leads
        // to C and not u to D; from B, both lead to D. The facts allow only C as the end.
        let mut c = Circuit::default();
        let (u0, u1) = (Bool::new_const("u0"), Bool::new_const("u1"));
        let (l0, l1) = (c.leaf(&u0), c.leaf(&u1));
        let first = c.gates.len();
        let a = c.step(vec![(CLit::TRUE, l0)], CLit::TRUE);
        let b = c.step(vec![(CLit::TRUE, !l0)], CLit::TRUE);
        let to_c = c.step(vec![(a, l1)], CLit::TRUE);
        let to_d = c.step(vec![(a, !l1), (b, CLit::TRUE)], CLit::TRUE);
        let (end_c, end_d) = (c.name(to_c), c.name(to_d));
        c.walks.push(Walk {
            first,
            finals: vec![(end_c.clone(), vec![to_c]), (end_d, vec![to_d])],
        });
        // B and D are dead; A and C are not.
        // A fact nested past PRUNE_DEPTH is not read (the reading recurses): nothing is
        // ruled out, and nothing overflows the stack.
        let y = Bool::new_const("y");
        let deep = (0..3 * PRUNE_DEPTH).fold(end_c.clone(), |t, _| Bool::and(&[t, y.clone()]));
        assert_eq!(c.prune(std::slice::from_ref(&deep)), 0);
        assert_eq!(c.prune(std::slice::from_ref(&end_c)), 2);
        let solver = z3::Solver::new();
        for t in c.terms() {
            solver.assert(&t);
        }
        solver.assert(&end_c);
        assert_eq!(solver.check(), z3::SatResult::Sat);
        solver.assert(u0.not());
        assert_eq!(solver.check(), z3::SatResult::Unsat);
        // Facts that say nothing of the ends rule nothing out.
        let mut c2 = Circuit::default();
        let x = c2.leaf(&u0);
        let s = c2.step(vec![(CLit::TRUE, x)], CLit::TRUE);
        let n = c2.name(s);
        c2.walks.push(Walk {
            first: 2,
            finals: vec![(n, vec![s])],
        });
        assert_eq!(c2.prune(std::slice::from_ref(&u1)), 0);
    }

    #[test]
    fn a_step_gate_is_present_and_one_of_its_ways() {
        // From states a / not a, values u / not u: the step reaches s when present and
        // (a and u) or (not a and not u).
        let mut c = Circuit::default();
        let (a, u, p) = (
            Bool::new_const("a"),
            Bool::new_const("u"),
            Bool::new_const("p"),
        );
        let (la, lu, lp) = (c.leaf(&a), c.leaf(&u), c.leaf(&p));
        let s = c.step(vec![(la, lu), (!la, !lu)], lp);
        let name = c.name(s);
        assert_eq!(c.step(vec![(la, lu)], CLit::FALSE), CLit::FALSE);
        let solver = z3::Solver::new();
        for t in c.terms() {
            solver.assert(&t);
        }
        let exact = Bool::and(&[p.clone(), a.iff(&u)]);
        solver.assert(name.iff(&exact).not());
        assert_eq!(solver.check(), z3::SatResult::Unsat);
    }
}
