//! Dimensions and shapes: a dim is a fixed size or a named symbol (`N`, `T`) that
//! stays dynamic until compile or run time.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The largest size of one dim the text format accepts (2^48), so that inference
/// may add a few dims and pads without overflow.
pub const MAX_DIM: u64 = 1 << 48;

/// The most elements an inferred value may have (2^56): its size in bytes and
/// its flat indices fit in an i64.
pub const MAX_ELEMENTS: u64 = 1 << 56;

/// One dimension of a shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Dim {
    /// A size known now.
    Fixed(u64),
    /// A size named by a symbol, bound at compile or run time.
    Sym(Arc<str>),
}

impl Dim {
    pub fn sym(name: &str) -> Dim {
        Dim::Sym(Arc::from(name))
    }

    pub fn fixed(&self) -> Option<u64> {
        match self {
            Dim::Fixed(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }

    pub fn is_one(&self) -> bool {
        *self == Dim::Fixed(1)
    }
}

impl From<u64> for Dim {
    fn from(n: u64) -> Dim {
        Dim::Fixed(n)
    }
}
impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim::Fixed(n as u64)
    }
}
impl From<i32> for Dim {
    fn from(n: i32) -> Dim {
        assert!(n >= 0, "negative dimension {n}");
        Dim::Fixed(n as u64)
    }
}
impl From<&str> for Dim {
    fn from(s: &str) -> Dim {
        Dim::sym(s)
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(&crate::text::quote(s)),
        }
    }
}

/// A list of dims, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shape(pub Vec<Dim>);

/// Values for symbolic dims.
pub type Bindings = BTreeMap<String, u64>;

impl Shape {
    pub fn new(dims: impl IntoIterator<Item = impl Into<Dim>>) -> Shape {
        Shape(dims.into_iter().map(Into::into).collect())
    }

    pub fn scalar() -> Shape {
        Shape(Vec::new())
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    pub fn dims(&self) -> &[Dim] {
        &self.0
    }

    /// All dims fixed: their sizes.
    pub fn fixed(&self) -> Option<Vec<usize>> {
        self.0.iter().map(|d| d.fixed().map(|n| n as usize)).collect()
    }

    /// Number of elements when every dim is fixed.
    pub fn numel(&self) -> Option<u64> {
        self.0.iter().try_fold(1u64, |acc, d| acc.checked_mul(d.fixed()?))
    }

    pub fn is_fixed(&self) -> bool {
        self.0.iter().all(|d| d.fixed().is_some())
    }

    /// Replaces bound symbols by their values.
    pub fn bind(&self, b: &Bindings) -> Shape {
        Shape(
            self.0
                .iter()
                .map(|d| match d {
                    Dim::Sym(s) => b.get(&**s).map(|&n| Dim::Fixed(n)).unwrap_or_else(|| d.clone()),
                    f => f.clone(),
                })
                .collect(),
        )
    }

    /// The symbols used, in order of first appearance.
    pub fn symbols(&self) -> Vec<Arc<str>> {
        let mut out: Vec<Arc<str>> = Vec::new();
        for d in &self.0 {
            if let Dim::Sym(s) = d
                && !out.contains(s)
            {
                out.push(s.clone());
            }
        }
        out
    }

    /// Resolves a possibly negative axis against this rank.
    pub fn axis(&self, axis: i64) -> Option<usize> {
        normalize_axis(axis, self.rank())
    }

    /// numpy broadcasting of two shapes; `None` when they do not broadcast.
    pub fn broadcast(&self, other: &Shape) -> Option<Shape> {
        let r = self.rank().max(other.rank());
        let mut out = Vec::with_capacity(r);
        for i in 0..r {
            let a = dim_from_right(self, r - 1 - i);
            let b = dim_from_right(other, r - 1 - i);
            let d = match (a, b) {
                (None, Some(b)) => b.clone(),
                (Some(a), None) => a.clone(),
                (Some(a), Some(b)) if a == b => a.clone(),
                (Some(a), Some(b)) if a.is_one() => b.clone(),
                (Some(a), Some(b)) if b.is_one() => a.clone(),
                _ => return None,
            };
            out.push(d);
        }
        Some(Shape(out))
    }
}

fn dim_from_right(s: &Shape, from_right: usize) -> Option<&Dim> {
    let r = s.rank();
    if from_right < r { Some(&s.0[r - 1 - from_right]) } else { None }
}

/// Resolves a possibly negative axis against a rank.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let a = if axis < 0 { axis + rank as i64 } else { axis };
    if a >= 0 && (a as usize) < rank { Some(a as usize) } else { None }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

impl<D: Into<Dim>, const K: usize> From<[D; K]> for Shape {
    fn from(a: [D; K]) -> Shape {
        Shape::new(a)
    }
}
impl From<Vec<Dim>> for Shape {
    fn from(v: Vec<Dim>) -> Shape {
        Shape(v)
    }
}
impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Shape {
        Shape::new(v.iter().copied())
    }
}

/// Builds a [`Shape`] from sizes and symbol names: `shape!["N", 3, 224, 224]`.
#[macro_export]
macro_rules! shape {
    ($($d:expr),* $(,)?) => {
        $crate::Shape(vec![$($crate::Dim::from($d)),*])
    };
}
