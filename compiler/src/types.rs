//! Semantic types. Domains (`int in 0..n`) are erased here: they matter for the answer's
//! boundedness and for the later SMT encoding, not for type compatibility.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnumId(pub u32);

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Unit,
    Tuple(Vec<Ty>),
    List(Box<Ty>),
    Set(Box<Ty>),
    Map(Box<Ty>, Box<Ty>),
    /// Fields sorted by name: records are structural.
    Record(Vec<(String, Ty)>),
    /// Id, name and variant names (declaration order).
    Enum(EnumId, String, Vec<String>),
    /// Unknown after an error, or the element type of `[]`: compatible with everything,
    /// so one mistake gives one diagnostic.
    Unknown,
}

impl Ty {
    pub fn list(t: Ty) -> Ty {
        Ty::List(Box::new(t))
    }

    pub fn record(mut fields: Vec<(String, Ty)>) -> Ty {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        Ty::Record(fields)
    }

    /// Can a value of type `self` be used where `other` is expected (and vice versa)?
    pub fn compatible(&self, other: &Ty) -> bool {
        use Ty::*;
        match (self, other) {
            (Unknown, _) | (_, Unknown) => true,
            (Tuple(a), Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.compatible(y))
            }
            (List(a), List(b)) | (Set(a), Set(b)) => a.compatible(b),
            (Map(k1, v1), Map(k2, v2)) => k1.compatible(k2) && v1.compatible(v2),
            (Record(a), Record(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((n1, t1), (n2, t2))| n1 == n2 && t1.compatible(t2))
            }
            (Enum(a, ..), Enum(b, ..)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// The more precise of two compatible types (fills in `Unknown` parts).
    pub fn join(&self, other: &Ty) -> Ty {
        use Ty::*;
        match (self, other) {
            (Unknown, t) | (t, Unknown) => t.clone(),
            (Tuple(a), Tuple(b)) if a.len() == b.len() => {
                Tuple(a.iter().zip(b).map(|(x, y)| x.join(y)).collect())
            }
            (List(a), List(b)) => List(Box::new(a.join(b))),
            (Set(a), Set(b)) => Set(Box::new(a.join(b))),
            (Map(k1, v1), Map(k2, v2)) => Map(Box::new(k1.join(k2)), Box::new(v1.join(v2))),
            (Record(a), Record(b)) if a.len() == b.len() => Record(
                a.iter()
                    .zip(b)
                    .map(|((n, x), (_, y))| (n.clone(), x.join(y)))
                    .collect(),
            ),
            _ => self.clone(),
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Float | Ty::Unknown)
    }

    /// Element type when iterated by `for`, comprehensions and quantifiers.
    pub fn elem(&self) -> Option<Ty> {
        match self {
            Ty::List(t) | Ty::Set(t) => Some((**t).clone()),
            Ty::Map(k, v) => Some(Ty::Tuple(vec![(**k).clone(), (**v).clone()])),
            Ty::Unknown => Some(Ty::Unknown),
            _ => None,
        }
    }

    pub fn contains_float(&self) -> bool {
        match self {
            Ty::Float => true,
            Ty::Tuple(v) => v.iter().any(Ty::contains_float),
            Ty::List(t) | Ty::Set(t) => t.contains_float(),
            Ty::Map(k, v) => k.contains_float() || v.contains_float(),
            Ty::Record(fs) => fs.iter().any(|(_, t)| t.contains_float()),
            _ => false,
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Bool => write!(f, "bool"),
            Ty::Int => write!(f, "int"),
            Ty::Float => write!(f, "float"),
            Ty::Str => write!(f, "string"),
            Ty::Unit => write!(f, "()"),
            Ty::Tuple(v) => {
                write!(f, "(")?;
                for (i, t) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{t}")?;
                }
                write!(f, ")")
            }
            Ty::List(t) => write!(f, "[{t}]"),
            Ty::Set(t) => write!(f, "set[{t}]"),
            Ty::Map(k, v) => write!(f, "map[{k}, {v}]"),
            Ty::Record(fs) => {
                write!(f, "{{")?;
                for (i, (n, t)) in fs.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                write!(f, "}}")
            }
            Ty::Enum(_, name, _) => write!(f, "{name}"),
            Ty::Unknown => write!(f, "_"),
        }
    }
}
