//! Expressions of the kernel IR, their types, and constructors that fold constant
//! index arithmetic (so printed kernels stay readable).

use super::{BufId, Scalar, Ty, VarId};

/// A literal scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lit {
    F32(f32),
    Int(i64, Scalar),
    Bool(bool),
}

impl Lit {
    pub fn ty(self) -> Ty {
        match self {
            Lit::F32(_) => Ty::F32,
            Lit::Int(_, s) => Ty::scalar(s),
            Lit::Bool(_) => Ty::BOOL,
        }
    }
}

/// Unary operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnOp {
    Neg,
    Abs,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Trunc,
    Sqrt,
    /// Logical not of a bool; bitwise not of an integer.
    Not,
}

impl UnOp {
    pub fn name(self) -> &'static str {
        match self {
            UnOp::Neg => "neg",
            UnOp::Abs => "abs",
            UnOp::Floor => "floor",
            UnOp::Ceil => "ceil",
            UnOp::Round => "round",
            UnOp::Trunc => "trunc",
            UnOp::Sqrt => "sqrt",
            UnOp::Not => "not",
        }
    }
}

/// Binary operations; both operands have one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// Float division, or signed integer division truncating toward zero.
    Div,
    /// Signed integer remainder (sign of the dividend).
    Rem,
    Min,
    Max,
    And,
    Or,
    Xor,
    Shl,
    /// Arithmetic shift right.
    Shr,
}

impl BinOp {
    pub fn name(self) -> &'static str {
        match self {
            BinOp::Add => "add",
            BinOp::Sub => "sub",
            BinOp::Mul => "mul",
            BinOp::Div => "div",
            BinOp::Rem => "rem",
            BinOp::Min => "min",
            BinOp::Max => "max",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Xor => "xor",
            BinOp::Shl => "shl",
            BinOp::Shr => "shr",
        }
    }

    /// The infix symbol for printing, where there is one.
    pub fn infix(self) -> Option<&'static str> {
        Some(match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            _ => return None,
        })
    }
}

/// Comparisons (ordered for floats: NaN compares false, except `ne`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// Functions an emitter expands inline: the f32 math (scalar or vector; polynomial
/// approximations, see [`crate::math`]) and two integer dot products,
/// [`Intrinsic::DotPairsI16`] and [`Intrinsic::DotQuadsU8I8`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    Exp,
    Log,
    Tanh,
    Erf,
    Sin,
    Cos,
    Sigmoid,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `pow(a, b)` with C's `powf` rules for negative bases and zeros.
    Pow,
    /// `dot_pairs_i16(a, b)` on i32 (scalar or vector): each i32 lane holds two
    /// i16 halves (low, high), and the result lane is `lo(a)·lo(b) + hi(a)·hi(b)`
    /// in wrapping i32 — x86's `pmaddwd` (the only overflow, all four halves
    /// −32768, wraps to `i32::MIN` there too). The quantized GEMM (`lower/qgemm.rs`)
    /// packs pairs of zero-point-shifted 8-bit values into such words.
    DotPairsI16,
    /// `dot_quads_u8i8(acc, u, s)` on i32 (scalar or vector): each lane of `u` and
    /// `s` holds four bytes, unsigned in `u` and signed in `s`; the result lane is
    /// `acc + Σⱼ u.byteⱼ · s.byteⱼ` in wrapping i32 — x86's `vpdpbusd` (AVX512-VNNI).
    /// The quantized GEMM packs quads of 8-bit values into such words on hosts
    /// that have it (`Target::quant_quads`).
    DotQuadsU8I8,
    /// `dot_quads_u8i8` where each pair's sum `u₀s₀ + u₁s₁` fits i16 (the
    /// quantized GEMM makes it only for weights within ±64): exact as
    /// `vpmaddubsw` (u8×s8 pairs into saturating i16) then `vpmaddwd` by ones,
    /// which AVX2 hosts without VNNI have (`Target::quant_quads_narrow`).
    DotQuadsU8I8Narrow,
}

impl Intrinsic {
    pub fn name(self) -> &'static str {
        match self {
            Intrinsic::Exp => "exp",
            Intrinsic::Log => "log",
            Intrinsic::Tanh => "tanh",
            Intrinsic::Erf => "erf",
            Intrinsic::Sin => "sin",
            Intrinsic::Cos => "cos",
            Intrinsic::Sigmoid => "sigmoid",
            Intrinsic::Softplus => "softplus",
            Intrinsic::Pow => "pow",
            Intrinsic::DotPairsI16 => "dot_pairs_i16",
            Intrinsic::DotQuadsU8I8 => "dot_quads_u8i8",
            Intrinsic::DotQuadsU8I8Narrow => "dot_quads_u8i8_narrow",
        }
    }

    pub fn arity(self) -> usize {
        match self {
            Intrinsic::DotQuadsU8I8 | Intrinsic::DotQuadsU8I8Narrow => 3,
            Intrinsic::Pow | Intrinsic::DotPairsI16 => 2,
            _ => 1,
        }
    }
}

/// Horizontal reductions of a vector to a scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HOp {
    Add,
    Max,
    Min,
}

impl HOp {
    pub fn name(self) -> &'static str {
        match self {
            HOp::Add => "hadd",
            HOp::Max => "hmax",
            HOp::Min => "hmin",
        }
    }
}

/// An expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(Lit),
    Var(VarId),
    /// `lanes` consecutive elements of `buf` from `index`.
    Load { buf: BufId, index: Box<Expr>, lanes: u32 },
    Un(UnOp, Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `a·b + c` with one rounding.
    Fma(Box<Expr>, Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `cond ? a : b`, lane-wise; `cond` has the lanes of `a` and `b`.
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    Cast(Scalar, Box<Expr>),
    Call(Intrinsic, Vec<Expr>),
    Splat(Box<Expr>, u32),
    /// One lane of a vector.
    Lane(Box<Expr>, u32),
    HReduce(HOp, Box<Expr>),
}

impl Expr {
    pub fn f(x: f32) -> Expr {
        Expr::Const(Lit::F32(x))
    }
    /// An `i64` constant (index arithmetic).
    pub fn i(x: i64) -> Expr {
        Expr::Const(Lit::Int(x, Scalar::I64))
    }
    pub fn int(x: i64, s: Scalar) -> Expr {
        Expr::Const(Lit::Int(x, s))
    }
    pub fn b(x: bool) -> Expr {
        Expr::Const(Lit::Bool(x))
    }
    pub fn var(v: VarId) -> Expr {
        Expr::Var(v)
    }
    pub fn load(buf: BufId, index: Expr) -> Expr {
        Expr::Load { buf, index: Box::new(index), lanes: 1 }
    }
    pub fn loadv(buf: BufId, index: Expr, lanes: u32) -> Expr {
        Expr::Load { buf, index: Box::new(index), lanes }
    }
    pub fn un(op: UnOp, a: Expr) -> Expr {
        Expr::Un(op, Box::new(a))
    }
    pub fn call(f: Intrinsic, args: Vec<Expr>) -> Expr {
        Expr::Call(f, args)
    }
    pub fn fma(a: Expr, b: Expr, c: Expr) -> Expr {
        Expr::Fma(Box::new(a), Box::new(b), Box::new(c))
    }
    pub fn cmp(op: CmpOp, a: Expr, b: Expr) -> Expr {
        Expr::Cmp(op, Box::new(a), Box::new(b))
    }
    pub fn select(c: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Select(Box::new(c), Box::new(a), Box::new(b))
    }
    pub fn cast(to: Scalar, a: Expr) -> Expr {
        Expr::Cast(to, Box::new(a))
    }
    pub fn splat(a: Expr, lanes: u32) -> Expr {
        Expr::Splat(Box::new(a), lanes)
    }
    pub fn lane(a: Expr, i: u32) -> Expr {
        Expr::Lane(Box::new(a), i)
    }
    pub fn hreduce(op: HOp, a: Expr) -> Expr {
        Expr::HReduce(op, Box::new(a))
    }

    /// A binary operation, folding integer constants and the identities `x + 0`,
    /// `x * 1`, `x * 0` of index arithmetic.
    pub fn bin(op: BinOp, a: Expr, b: Expr) -> Expr {
        if let (Expr::Const(Lit::Int(x, s)), Expr::Const(Lit::Int(y, t))) = (&a, &b)
            && s == t
            && *s == Scalar::I64
        {
            let v = match op {
                BinOp::Add => x.checked_add(*y),
                BinOp::Sub => x.checked_sub(*y),
                BinOp::Mul => x.checked_mul(*y),
                BinOp::Div if *y != 0 => x.checked_div(*y),
                BinOp::Rem if *y != 0 => x.checked_rem(*y),
                BinOp::Min => Some(*x.min(y)),
                BinOp::Max => Some(*x.max(y)),
                _ => None,
            };
            if let Some(v) = v {
                return Expr::i(v);
            }
        }
        let is = |e: &Expr, v: i64| matches!(e, Expr::Const(Lit::Int(x, Scalar::I64)) if *x == v);
        match op {
            BinOp::Add if is(&b, 0) => return a,
            BinOp::Add if is(&a, 0) => return b,
            BinOp::Sub if is(&b, 0) => return a,
            BinOp::Mul if is(&b, 1) => return a,
            BinOp::Mul if is(&a, 1) => return b,
            BinOp::Mul if is(&a, 0) || is(&b, 0) => return Expr::i(0),
            BinOp::Div if is(&b, 1) => return a,
            _ => {}
        }
        // (x + c1) + c2 → x + (c1 + c2): keeps constant offsets in one place.
        if op == BinOp::Add
            && let Expr::Const(Lit::Int(c2, Scalar::I64)) = b
            && let Expr::Bin(BinOp::Add, x, c1) = &a
            && let Expr::Const(Lit::Int(c1, Scalar::I64)) = **c1
            && let Some(c) = c1.checked_add(c2)
        {
            return Expr::bin(BinOp::Add, (**x).clone(), Expr::i(c));
        }
        Expr::Bin(op, Box::new(a), Box::new(b))
    }

    pub fn min(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Min, self, o)
    }
    pub fn max(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Max, self, o)
    }
    pub fn lt(self, o: Expr) -> Expr {
        Expr::cmp(CmpOp::Lt, self, o)
    }
    pub fn le(self, o: Expr) -> Expr {
        Expr::cmp(CmpOp::Le, self, o)
    }
    pub fn gt(self, o: Expr) -> Expr {
        Expr::cmp(CmpOp::Gt, self, o)
    }
    pub fn ge(self, o: Expr) -> Expr {
        Expr::cmp(CmpOp::Ge, self, o)
    }
    pub fn eq_(self, o: Expr) -> Expr {
        Expr::cmp(CmpOp::Eq, self, o)
    }
    /// `self != o` (true when either is NaN).
    pub fn ne(self, o: Expr) -> Expr {
        Expr::cmp(CmpOp::Ne, self, o)
    }
    pub fn and(self, o: Expr) -> Expr {
        Expr::bin(BinOp::And, self, o)
    }

    /// The integer value of a constant, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Expr::Const(Lit::Int(v, _)) => Some(*v),
            _ => None,
        }
    }

    /// Calls `f` on every sub-expression, this one first.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Const(_) | Expr::Var(_) => {}
            Expr::Load { index, .. } => index.visit(f),
            Expr::Un(_, a) | Expr::Cast(_, a) | Expr::Splat(a, _) | Expr::Lane(a, _) | Expr::HReduce(_, a) => a.visit(f),
            Expr::Bin(_, a, b) | Expr::Cmp(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::Fma(a, b, c) | Expr::Select(a, b, c) => {
                a.visit(f);
                b.visit(f);
                c.visit(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.visit(f)),
        }
    }

    /// Whether the expression reads variable `v`.
    pub fn uses_var(&self, v: VarId) -> bool {
        let mut found = false;
        self.visit(&mut |e| found |= matches!(e, Expr::Var(w) if *w == v));
        found
    }
}

impl std::ops::Add for Expr {
    type Output = Expr;
    fn add(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Add, self, o)
    }
}
impl std::ops::Sub for Expr {
    type Output = Expr;
    fn sub(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Sub, self, o)
    }
}
impl std::ops::Mul for Expr {
    type Output = Expr;
    fn mul(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Mul, self, o)
    }
}
impl std::ops::Div for Expr {
    type Output = Expr;
    fn div(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Div, self, o)
    }
}
impl std::ops::Rem for Expr {
    type Output = Expr;
    fn rem(self, o: Expr) -> Expr {
        Expr::bin(BinOp::Rem, self, o)
    }
}
impl std::ops::Add<i64> for Expr {
    type Output = Expr;
    fn add(self, o: i64) -> Expr {
        Expr::bin(BinOp::Add, self, Expr::i(o))
    }
}
impl std::ops::Mul<i64> for Expr {
    type Output = Expr;
    fn mul(self, o: i64) -> Expr {
        Expr::bin(BinOp::Mul, self, Expr::i(o))
    }
}
