//! [`KernelBuilder`]: builds a kernel statement by statement, with closures for the
//! bodies of loops and conditionals.

use super::{Access, BufId, Buffer, Expr, Kernel, Loop, LoopKind, Scalar, Stmt, Ty, VarId};

/// Builds a [`Kernel`]. Loops and conditionals take closures that build their
/// bodies; the loop variable is passed in as an expression.
#[derive(Debug)]
pub struct KernelBuilder {
    k: Kernel,
    /// Open blocks: the innermost last.
    blocks: Vec<Vec<Stmt>>,
}

impl KernelBuilder {
    pub fn new(name: impl Into<String>) -> KernelBuilder {
        KernelBuilder { k: Kernel::empty(name), blocks: vec![vec![]] }
    }

    /// Declares a buffer parameter.
    pub fn buffer(&mut self, name: &str, scalar: Scalar, len: u64, access: Access) -> BufId {
        self.k.buffers.push(Buffer { name: name.to_string(), scalar, len, access });
        BufId(self.k.buffers.len() as u32 - 1)
    }

    /// A new variable (its name made unique).
    pub fn var(&mut self, name: &str, ty: Ty) -> VarId {
        self.k.new_var(name, ty)
    }

    /// The kernel being built (for types of expressions).
    pub fn kernel(&self) -> &Kernel {
        &self.k
    }

    pub fn push(&mut self, s: Stmt) {
        self.blocks.last_mut().expect("an open block").push(s);
    }

    /// `v = e`.
    pub fn set(&mut self, v: VarId, e: Expr) {
        self.push(Stmt::Set(v, e));
    }

    /// A new variable of `e`'s type, set to `e`; returns it as an expression.
    pub fn let_(&mut self, name: &str, e: Expr) -> Expr {
        let ty = e.ty(&self.k).unwrap_or_else(|m| panic!("kernel {}: ill-typed `{name}`: {m}", self.k.name));
        let v = self.var(name, ty);
        self.set(v, e);
        Expr::Var(v)
    }

    pub fn store(&mut self, buf: BufId, index: Expr, value: Expr) {
        self.push(Stmt::Store { buf, index, value });
    }

    pub fn comment(&mut self, text: impl Into<String>) {
        self.push(Stmt::Comment(text.into()));
    }

    fn block(&mut self, f: impl FnOnce(&mut Self)) -> Vec<Stmt> {
        self.blocks.push(vec![]);
        f(self);
        self.blocks.pop().expect("the block just pushed")
    }

    /// `for name in lo..hi step step { f(i) }`.
    pub fn for_step(&mut self, name: &str, lo: Expr, hi: Expr, step: u64, kind: LoopKind, f: impl FnOnce(&mut Self, Expr)) {
        let v = self.var(name, Ty::I64);
        let body = self.block(|b| f(b, Expr::Var(v)));
        self.push(Stmt::Loop(Loop { var: v, lo, hi, step, kind, body }));
    }

    /// `for name in lo..hi { f(i) }` with step 1.
    pub fn for_(&mut self, name: &str, lo: Expr, hi: Expr, kind: LoopKind, f: impl FnOnce(&mut Self, Expr)) {
        self.for_step(name, lo, hi, 1, kind, f)
    }

    /// `for name in 0..n { f(i) }`, serial.
    pub fn for_n(&mut self, name: &str, n: u64, f: impl FnOnce(&mut Self, Expr)) {
        self.for_(name, Expr::i(0), Expr::i(n as i64), LoopKind::Serial, f)
    }

    /// `if cond { then } else { els }`.
    pub fn if_else(&mut self, cond: Expr, then: impl FnOnce(&mut Self), els: impl FnOnce(&mut Self)) {
        let then = self.block(then);
        let els = self.block(els);
        self.push(Stmt::If { cond, then, els });
    }

    /// `if cond { then }`.
    pub fn if_(&mut self, cond: Expr, then: impl FnOnce(&mut Self)) {
        self.if_else(cond, then, |_| {})
    }

    /// The finished kernel.
    pub fn finish(mut self) -> Kernel {
        self.k.body = self.blocks.pop().unwrap_or_default();
        self.k
    }
}
