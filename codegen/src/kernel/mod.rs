//! The kernel IR: what every backend emits from.
//!
//! A [`Kernel`] is a function over typed, flat [`Buffer`]s: nested loops ([`Loop`],
//! with a [`LoopKind`]: serial, parallel, vectorized(width) or unrolled), mutable
//! variables, loads and stores, scalar and vector arithmetic, intrinsic calls
//! (exp, log, tanh, erf, …) and `select`. All sizes are known: graphs are lowered
//! after their symbolic dims are bound, so loop bounds and buffer lengths are
//! constants or expressions of outer loop variables.
//!
//! Conventions every emitter follows:
//! - A kernel is called as `kernel(buffers, lo, hi)`: `buffers[k]` is the address of
//!   buffer `k`; if the body is one parallel loop, the call runs its iterations
//!   `lo..hi` (the runtime splits `0..parallel_extent()` over its threads), and
//!   otherwise the whole body runs once per call with `0..1`.
//! - Indices count elements, not bytes. Index arithmetic is `i64`.
//! - Integer `add`/`sub`/`mul` wrap in their type; `cast` converts with smelt's
//!   semantics (float → int truncates and saturates, NaN → 0; int → int saturates;
//!   to bool is `!= 0`). Float `min`/`max` propagate NaN.
//! - A `vectorized(w)` loop has a scalar body; the schedule's vectorizer
//!   ([`crate::schedule::vectorize`]) widens it into explicit `w`-lane code with a
//!   scalar remainder, or leaves it serial when the body cannot be widened.
//!
//! [`printer`] gives the text form used by snapshots and `smelt compile --emit
//! kernel`; [`verify`] checks types, scopes and the placement of parallel loops.

mod build;
mod expr;
pub mod printer;
mod typecheck;
pub mod verify;

pub use build::KernelBuilder;
pub use expr::{BinOp, CmpOp, Expr, HOp, Intrinsic, Lit, UnOp};

use std::fmt;

/// The element types the kernel IR computes with. `Bool` is stored as one byte
/// (0 or 1).
///
/// `F16` and `BF16` are **storage scalars**: a buffer may hold them, and the only
/// legal operations on their values are a scalar load, a store, and `cast` to and
/// from `F32` (round to nearest even, as the `half` crate); everything else
/// computes in f32. Every emitter must handle them in loads, stores and those two
/// casts (see [`Scalar::is_storage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    F32,
    /// Only for the few computations the reference does in f64 (requantization).
    F64,
    I8,
    U8,
    I32,
    I64,
    Bool,
    /// IEEE binary16, storage only.
    F16,
    /// bfloat16 (the top half of an f32), storage only.
    BF16,
}

impl Scalar {
    pub fn name(self) -> &'static str {
        match self {
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::I8 => "i8",
            Scalar::U8 => "u8",
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::Bool => "bool",
            Scalar::F16 => "f16",
            Scalar::BF16 => "bf16",
        }
    }

    /// Bytes per element in memory.
    pub fn size(self) -> usize {
        match self {
            Scalar::F32 | Scalar::I32 => 4,
            Scalar::I64 | Scalar::F64 => 8,
            Scalar::I8 | Scalar::U8 | Scalar::Bool => 1,
            Scalar::F16 | Scalar::BF16 => 2,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Scalar::F32 | Scalar::F64)
    }

    /// A 16-bit float held in memory and converted to and from f32 (no arithmetic).
    pub fn is_storage(self) -> bool {
        matches!(self, Scalar::F16 | Scalar::BF16)
    }

    pub fn is_int(self) -> bool {
        matches!(self, Scalar::I8 | Scalar::U8 | Scalar::I32 | Scalar::I64)
    }

    /// The kernel scalar that stores a graph dtype, if the kernel IR has one.
    pub fn of(d: smelt_ir::DType) -> Option<Scalar> {
        use smelt_ir::DType;
        Some(match d {
            DType::F32 => Scalar::F32,
            DType::I8 => Scalar::I8,
            DType::U8 => Scalar::U8,
            DType::I32 => Scalar::I32,
            DType::I64 => Scalar::I64,
            DType::Bool => Scalar::Bool,
            DType::F16 => Scalar::F16,
            DType::BF16 => Scalar::BF16,
        })
    }

    /// The representable range of an integer scalar.
    pub fn int_range(self) -> Option<(i64, i64)> {
        match self {
            Scalar::I8 => Some((i8::MIN as i64, i8::MAX as i64)),
            Scalar::U8 => Some((0, u8::MAX as i64)),
            Scalar::I32 => Some((i32::MIN as i64, i32::MAX as i64)),
            Scalar::I64 => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }
}

/// A value type: a scalar or a vector of `lanes` scalars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ty {
    pub scalar: Scalar,
    pub lanes: u32,
}

impl Ty {
    pub const F32: Ty = Ty { scalar: Scalar::F32, lanes: 1 };
    pub const I32: Ty = Ty { scalar: Scalar::I32, lanes: 1 };
    pub const I64: Ty = Ty { scalar: Scalar::I64, lanes: 1 };
    pub const BOOL: Ty = Ty { scalar: Scalar::Bool, lanes: 1 };

    pub fn scalar(s: Scalar) -> Ty {
        Ty { scalar: s, lanes: 1 }
    }

    pub fn vec(s: Scalar, lanes: u32) -> Ty {
        Ty { scalar: s, lanes }
    }

    pub fn is_vector(self) -> bool {
        self.lanes > 1
    }

    pub fn with_lanes(self, lanes: u32) -> Ty {
        Ty { scalar: self.scalar, lanes }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lanes == 1 { f.write_str(self.scalar.name()) } else { write!(f, "{}x{}", self.scalar.name(), self.lanes) }
    }
}

/// A buffer parameter of a kernel. Prints as `%name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BufId(pub u32);

/// A variable of a kernel (loop counters included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

/// How a kernel uses a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Read => "in",
            Access::Write => "out",
            Access::ReadWrite => "inout",
        }
    }
    pub fn reads(self) -> bool {
        self != Access::Write
    }
    pub fn writes(self) -> bool {
        self != Access::Read
    }
}

/// A flat buffer of `len` elements of `scalar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buffer {
    pub name: String,
    pub scalar: Scalar,
    pub len: u64,
    pub access: Access,
}

impl Buffer {
    pub fn bytes(&self) -> u64 {
        self.len * self.scalar.size() as u64
    }
}

/// A variable: a name (unique in its kernel) and a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarDecl {
    pub name: String,
    pub ty: Ty,
}

/// How a loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoopKind {
    Serial,
    /// Iterations are independent and run on the runtime's threads. Only the one
    /// top-level loop of a kernel may be parallel, from 0 with step 1.
    Parallel,
    /// The body is scalar; the vectorizer runs it `width` iterations at a time.
    Vectorized(u32),
    /// Fully unrolled by the emitter (constant trip count).
    Unrolled,
    /// Iterations are independent (each stores its own elements, sets only
    /// variables it reads itself): a GPU may split them among the invocations of
    /// the workgroup that runs one iteration of the top-level parallel loop.
    /// Only directly in the body of that loop. CPUs run it serially.
    Workgroup,
    /// Like [`LoopKind::Workgroup`], but the iterations fold into the variable:
    /// every assignment to it in the body is `acc = acc op e` (`op` is add, mul,
    /// max or min), so a GPU may give each invocation a partial accumulator from
    /// `op`'s identity and combine them with a tree in shared memory, then with
    /// the value before the loop. The body stores nothing. CPUs run it serially.
    Reduce(BinOp, VarId),
}

impl fmt::Display for LoopKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoopKind::Serial => f.write_str("for"),
            LoopKind::Parallel => f.write_str("parallel for"),
            LoopKind::Vectorized(w) => write!(f, "vectorized({w}) for"),
            LoopKind::Unrolled => f.write_str("unrolled for"),
            LoopKind::Workgroup => f.write_str("workgroup for"),
            LoopKind::Reduce(op, v) => write!(f, "reduce({} into %{}) for", op.name(), v.0),
        }
    }
}

/// `for var in lo..hi step step { body }`; `var` is an `i64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Loop {
    pub var: VarId,
    pub lo: Expr,
    pub hi: Expr,
    pub step: u64,
    pub kind: LoopKind,
    pub body: Vec<Stmt>,
}

/// A statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    Loop(Loop),
    /// Assigns a variable (variables are mutable; the first assignment declares).
    Set(VarId, Expr),
    /// Stores `value` (a scalar, or a vector into consecutive elements) at `index`.
    Store { buf: BufId, index: Expr, value: Expr },
    If { cond: Expr, then: Vec<Stmt>, els: Vec<Stmt> },
    /// A note for readers of the printed kernel.
    Comment(String),
    /// A GEMM register tile computed by a precompiled micro-kernel (see
    /// [`TileGemm`]).
    TileGemm(TileGemm),
    /// A 32×32 tile of the quantized GEMM by the AMX-INT8 micro-kernel (see
    /// [`AmxTile`]).
    AmxTile(AmxTile),
}

/// An error for the first kernel that calls a micro-kernel: the calls are to
/// addresses in this process, so `what` (object files, AOT libraries) cannot
/// hold them.
pub fn refuse_tile_calls(kernels: &[Kernel], what: &str) -> Result<(), crate::Error> {
    fn calls(b: &[Stmt]) -> bool {
        b.iter().any(|s| match s {
            Stmt::TileGemm(_) | Stmt::AmxTile(_) => true,
            Stmt::Loop(l) => calls(&l.body),
            Stmt::If { then, els, .. } => calls(then) || calls(els),
            _ => false,
        })
    }
    match kernels.iter().find(|k| calls(&k.body)) {
        Some(k) => Err(crate::Error::Kernel {
            kernel: k.name.clone(),
            message: format!("not supported in {what}: micro-kernel calls (lower with a schedule without `ukernels`)"),
        }),
        None => Ok(()),
    }
}

/// An element of a buffer, as a pointer argument.
#[derive(Debug, Clone, PartialEq)]
pub struct At {
    pub buf: BufId,
    pub index: Expr,
}

/// `tile[r·nr + j] = Σ_{d < kc} a(r, d) · b(d)[j]` for `r < mr`, `j < nr`:
/// the `mr × nr` product of an A panel and a B panel, by the runtime's
/// precompiled micro-kernel for the host (`crate::ukernel`), which the JITs call.
/// `a(r, d)` is `a[d·mr + r]` (a packed panel), or `a[r·a_rs + d]` when `a_rs` is
/// given (A read in place, as [`crate::lower::gemm::DirectA`]). `b(d)` is
/// `b + d·nr` (a packed panel), or `b + koff[d]` when `koff` is given (B read in
/// place, as [`crate::lower::gemm::DirectB`]). Buffers are f32 (`koff` i64); `kc`
/// and `a_rs` are i64, `kc` ≥ 0. Writes the whole tile.
#[derive(Debug, Clone, PartialEq)]
pub struct TileGemm {
    pub mr: u32,
    pub nr: u32,
    pub a: At,
    pub b: At,
    pub koff: Option<At>,
    pub tile: At,
    pub kc: Expr,
    /// A's row stride when A is read in place.
    pub a_rs: Option<Expr>,
}

impl TileGemm {
    /// The pointer arguments in the micro-kernel's order: a, b, koff, tile.
    pub fn pointers(&self) -> Vec<&At> {
        let mut v = vec![&self.a, &self.b];
        v.extend(&self.koff);
        v.push(&self.tile);
        v
    }

    /// The expressions it reads: the pointers' indices, the depth, A's row stride.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut v: Vec<&Expr> = self.pointers().into_iter().map(|a| &a.index).collect();
        v.push(&self.kc);
        v.extend(&self.a_rs);
        v
    }
}

/// `c[r·ldc + j] = bias(r, j) + Σ_{d < 64·kblocks} a(r, d) · b(d, j)` for
/// `r, j < 32`, in wrapping i32, by the precompiled AMX-INT8 tile
/// (`crate::amx`, whose doc gives the operand layouts), which the JITs call. `a`
/// is the u8 side and `b` the s8 side, or the reverse when `signed_a`. `bias` is
/// none (zero), a row of 32 column values, or with `bias_rows` 32 rows of 16
/// copies of each row's value. Buffers are i32, except `a` when `a_rs` is given:
/// then A is a u8 matrix read in place, rows `a_rs` elements apart. `kblocks`,
/// `ldc` and `a_rs` are i64.
#[derive(Debug, Clone, PartialEq)]
pub struct AmxTile {
    pub a: At,
    pub a_rs: Option<Expr>,
    pub b: At,
    pub c: At,
    pub ldc: Expr,
    pub bias: Option<At>,
    pub bias_rows: bool,
    pub kblocks: Expr,
    pub signed_a: bool,
}

impl AmxTile {
    /// The expressions it reads: the pointers' indices, `kblocks`, `ldc`, `a_rs`.
    pub fn exprs(&self) -> Vec<&Expr> {
        let mut v = vec![&self.a.index, &self.b.index, &self.c.index];
        v.extend(self.bias.as_ref().map(|b| &b.index));
        v.extend([&self.kblocks, &self.ldc]);
        v.extend(&self.a_rs);
        v
    }
}

/// A kernel: buffers, variables and a body.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub name: String,
    pub buffers: Vec<Buffer>,
    pub vars: Vec<VarDecl>,
    pub body: Vec<Stmt>,
    /// The names `new_var` has handed out (a cache over `vars`).
    names: VarNames,
}

/// The variable names of a kernel and, per base name, the next suffix `new_var`
/// tries: without it, naming the 10⁴ variables of an unrolled convolution scanned
/// every variable for every candidate name (cubic; most of LLVM's "compile" time
/// of the AlphaZero tower was `memcmp` here). A cache over `vars`, so equality
/// ignores it.
#[derive(Clone, Default)]
struct VarNames {
    taken: std::collections::HashSet<String>,
    next: std::collections::HashMap<String, u32>,
}

impl PartialEq for VarNames {
    fn eq(&self, _: &VarNames) -> bool {
        true
    }
}

impl fmt::Debug for VarNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} names", self.taken.len())
    }
}

impl Kernel {
    pub fn buffer(&self, b: BufId) -> &Buffer {
        &self.buffers[b.0 as usize]
    }

    pub fn var(&self, v: VarId) -> &VarDecl {
        &self.vars[v.0 as usize]
    }

    /// The trip count of the top-level parallel loop (the range a caller splits
    /// over threads), or 1 when the kernel has none.
    pub fn parallel_extent(&self) -> u64 {
        match self.body.as_slice() {
            [Stmt::Loop(l)] if l.kind == LoopKind::Parallel => match (&l.lo, &l.hi) {
                (Expr::Const(Lit::Int(0, _)), Expr::Const(Lit::Int(hi, _))) => (*hi).max(0) as u64,
                _ => 1,
            },
            _ => 1,
        }
    }

    /// Adds a variable with a unique name derived from `name`.
    /// The first of `name`, `name_1`, `name_2`, … not taken yet.
    pub fn new_var(&mut self, name: &str, ty: Ty) -> VarId {
        if self.names.taken.len() != self.vars.len() {
            // `vars` was changed directly: start the cache again.
            self.names = VarNames { taken: self.vars.iter().map(|v| v.name.clone()).collect(), next: Default::default() };
        }
        let mut n = name.to_string();
        if self.names.taken.contains(&n) {
            // Suffixes below `next` were taken when tried, and names stay taken.
            let k = self.names.next.entry(name.to_string()).or_insert(1);
            loop {
                n = format!("{name}_{k}");
                *k += 1;
                if !self.names.taken.contains(&n) {
                    break;
                }
            }
        }
        self.names.taken.insert(n.clone());
        self.vars.push(VarDecl { name: n, ty });
        VarId(self.vars.len() as u32 - 1)
    }

    /// An empty kernel named `name`.
    pub fn empty(name: impl Into<String>) -> Kernel {
        Kernel { name: name.into(), buffers: vec![], vars: vec![], body: vec![], names: VarNames::default() }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&printer::print(self))
    }
}
