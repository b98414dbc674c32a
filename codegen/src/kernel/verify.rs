//! The kernel verifier: types, variable scopes, buffer access, and the rules for
//! parallel, vectorized and unrolled loops. It reports every problem it finds.

use super::{BinOp, Expr, Kernel, LoopKind, Scalar, Stmt, Ty, VarId};
use std::collections::HashSet;

/// Checks a kernel; on failure, every problem found, one message each.
pub fn verify(k: &Kernel) -> Result<(), Vec<String>> {
    let mut v = Verifier { k, errors: vec![], coop: false };
    let top_parallel = matches!(k.body.as_slice(), [Stmt::Loop(l)] if l.kind == LoopKind::Parallel);
    if top_parallel
        && let [Stmt::Loop(l)] = k.body.as_slice()
        && (l.lo.as_int() != Some(0) || l.hi.as_int().is_none() || l.step != 1)
    {
        v.err("the parallel loop must run from 0 to a constant with step 1".into());
    }
    let mut defined = HashSet::new();
    v.block(&k.body, &mut defined, 0);
    if v.errors.is_empty() { Ok(()) } else { Err(v.errors) }
}

struct Verifier<'a> {
    k: &'a Kernel,
    errors: Vec<String>,
    /// Whether a `workgroup` / `reduce` loop may stand here: in the body of the
    /// top-level parallel loop, or of serial loops with constant bounds inside it
    /// (control flow every invocation of a GPU workgroup takes alike, so that the
    /// barriers the GPU puts around such loops are reached by all of them).
    coop: bool,
}

impl Verifier<'_> {
    fn err(&mut self, m: String) {
        self.errors.push(format!("kernel {}: {m}", self.k.name));
    }

    /// Checks an expression; returns its type when it has one.
    fn expr(&mut self, e: &Expr, defined: &HashSet<u32>, what: &str) -> Option<Ty> {
        let mut problems = vec![];
        e.visit(&mut |s| match s {
            Expr::Var(v) if !defined.contains(&v.0) => {
                let name = self.k.vars.get(v.0 as usize).map(|d| d.name.as_str()).unwrap_or("?");
                problems.push(format!("{what}: variable `{name}` is used before it is set"));
            }
            Expr::Load { buf, index, lanes } => {
                if let Some(b) = self.k.buffers.get(buf.0 as usize) {
                    if !b.access.reads() {
                        problems.push(format!("{what}: loads from %{}, which is write-only", b.name));
                    }
                    if let Some(i) = index.as_int()
                        && (i < 0 || (i as u64).saturating_add(*lanes as u64) > b.len)
                    {
                        problems.push(format!("{what}: loads %{}[{i}..+{lanes}] past its {} elements", b.name, b.len));
                    }
                }
            }
            _ => {}
        });
        for p in problems {
            self.err(p);
        }
        match e.ty(self.k) {
            Ok(t) => Some(t),
            Err(m) => {
                self.err(format!("{what}: {m}"));
                None
            }
        }
    }

    fn top_parallel(&self) -> bool {
        matches!(self.k.body.as_slice(), [Stmt::Loop(l)] if l.kind == LoopKind::Parallel)
    }

    /// A reduction loop folds into `acc` only: every assignment to it in the body
    /// is `acc = acc op e` with `e` free of `acc`, and the body stores nothing.
    fn reduce_loop(&mut self, what: &str, op: BinOp, acc: VarId, body: &[Stmt], defined: &HashSet<u32>) {
        if !matches!(op, BinOp::Add | BinOp::Mul | BinOp::Max | BinOp::Min) {
            self.err(format!("{what}: a reduction combines with add, mul, max or min, not {}", op.name()));
        }
        match self.k.vars.get(acc.0 as usize) {
            Some(d) if d.ty.lanes == 1 && matches!(d.ty.scalar, Scalar::F32 | Scalar::I32 | Scalar::I64) => {}
            _ => self.err(format!("{what}: the accumulator must be a scalar f32, i32 or i64 variable")),
        }
        if !defined.contains(&acc.0) {
            self.err(format!("{what}: the accumulator is used before it is set"));
        }
        fn walk(s: &[Stmt], op: BinOp, acc: VarId, bad: &mut Vec<String>) {
            for st in s {
                match st {
                    Stmt::Set(v, e) if *v == acc => match e {
                        Expr::Bin(o, a, b) if *o == op && **a == Expr::Var(acc) && !b.uses_var(acc) => {}
                        _ => bad.push(format!("assigns the accumulator other than by `acc = acc {} e`", op.name())),
                    },
                    Stmt::Store { .. } => bad.push("stores inside a reduction loop".into()),
                    Stmt::Loop(l) => walk(&l.body, op, acc, bad),
                    Stmt::If { then, els, .. } => {
                        walk(then, op, acc, bad);
                        walk(els, op, acc, bad);
                    }
                    _ => {}
                }
            }
        }
        let mut bad = vec![];
        walk(body, op, acc, &mut bad);
        for b in bad {
            self.err(format!("{what}: {b}"));
        }
    }

    fn block(&mut self, body: &[Stmt], defined: &mut HashSet<u32>, depth: usize) {
        for s in body {
            self.stmt(s, defined, depth);
        }
    }

    fn stmt(&mut self, s: &Stmt, defined: &mut HashSet<u32>, depth: usize) {
        match s {
            Stmt::Loop(l) => {
                let name = self.k.vars.get(l.var.0 as usize).map(|d| d.name.clone()).unwrap_or_default();
                let what = format!("loop {name}");
                for b in [&l.lo, &l.hi] {
                    if let Some(t) = self.expr(b, defined, &what)
                        && t != Ty::I64
                    {
                        self.err(format!("{what}: bounds must be i64, found {t}"));
                    }
                }
                if self.k.vars.get(l.var.0 as usize).map(|d| d.ty) != Some(Ty::I64) {
                    self.err(format!("{what}: the loop variable must be an i64"));
                }
                if l.step == 0 {
                    self.err(format!("{what}: step 0"));
                }
                match l.kind {
                    LoopKind::Parallel if depth != 0 || self.k.body.len() != 1 => {
                        self.err(format!("{what}: a parallel loop must be the kernel's only top-level statement"))
                    }
                    LoopKind::Vectorized(w) if w == 0 || !w.is_power_of_two() => {
                        self.err(format!("{what}: vector width {w} is not a power of two"))
                    }
                    LoopKind::Unrolled => match (l.lo.as_int(), l.hi.as_int()) {
                        (Some(lo), Some(hi)) if hi.saturating_sub(lo) <= 4096 => {}
                        _ => self.err(format!("{what}: an unrolled loop needs constant bounds and at most 4096 iterations")),
                    },
                    LoopKind::Workgroup | LoopKind::Reduce(..) if !self.coop || !self.top_parallel() => self.err(format!(
                        "{what}: a {} loop must be in the body of the top-level parallel loop, or of serial loops with constant bounds inside it",
                        l.kind
                    )),
                    LoopKind::Reduce(op, acc) => self.reduce_loop(&what, op, acc, &l.body, defined),
                    _ => {}
                }
                let mut inner = defined.clone();
                if !inner.insert(l.var.0) {
                    self.err(format!("{what}: the loop variable is already in scope"));
                }
                let outer = self.coop;
                self.coop = match l.kind {
                    LoopKind::Parallel => depth == 0,
                    LoopKind::Serial => outer && l.lo.as_int().is_some() && l.hi.as_int().is_some(),
                    _ => false,
                };
                self.block(&l.body, &mut inner, depth + 1);
                self.coop = outer;
                for st in &l.body {
                    if let Stmt::Set(v, _) = st
                        && *v == l.var
                    {
                        self.err(format!("{what}: the body assigns the loop variable"));
                    }
                }
            }
            Stmt::Set(v, e) => {
                let Some(d) = self.k.vars.get(v.0 as usize) else {
                    self.err(format!("assignment to unknown variable {}", v.0));
                    return;
                };
                let what = format!("`{} = …`", d.name);
                let want = d.ty;
                if let Some(t) = self.expr(e, defined, &what)
                    && t != want
                {
                    self.err(format!("{what}: the variable is {want}, the value {t}"));
                }
                defined.insert(v.0);
            }
            Stmt::Store { buf, index, value } => {
                let Some(b) = self.k.buffers.get(buf.0 as usize) else {
                    self.err(format!("store to unknown buffer {}", buf.0));
                    return;
                };
                let what = format!("store to %{}", b.name);
                if !b.access.writes() {
                    self.err(format!("{what}: the buffer is read-only"));
                }
                if let Some(t) = self.expr(index, defined, &what)
                    && t != Ty::I64
                {
                    self.err(format!("{what}: the index must be i64, found {t}"));
                }
                if let Some(t) = self.expr(value, defined, &what) {
                    if t.scalar != b.scalar {
                        self.err(format!("{what}: stores {t} into a {} buffer", b.scalar.name()));
                    }
                    if let Some(i) = index.as_int()
                        && (i < 0 || (i as u64).saturating_add(t.lanes as u64) > b.len)
                    {
                        self.err(format!("{what}: index {i} is past its {} elements", b.len));
                    }
                }
            }
            Stmt::If { cond, then, els } => {
                if let Some(t) = self.expr(cond, defined, "if")
                    && t != Ty::scalar(Scalar::Bool)
                {
                    self.err(format!("if: the condition must be a scalar bool, found {t}"));
                }
                let outer = std::mem::replace(&mut self.coop, false);
                self.block(then, &mut defined.clone(), depth + 1);
                self.block(els, &mut defined.clone(), depth + 1);
                self.coop = outer;
            }
            Stmt::Comment(_) => {}
            Stmt::TileGemm(t) => self.tile_gemm(t, defined),
            Stmt::AmxTile(t) => self.amx_tile(t, defined),
        }
    }

    /// A micro-kernel call: its pointers' buffers, types and access, and the
    /// extent of its reads and writes where the indices are constants.
    fn tile_gemm(&mut self, t: &super::TileGemm, defined: &HashSet<u32>) {
        let what = format!("tile_gemm {}x{}", t.mr, t.nr);
        if let Some(ty) = self.expr(&t.kc, defined, &what)
            && ty != Ty::I64
        {
            self.err(format!("{what}: the depth must be i64, found {ty}"));
        }
        if let Some(rs) = &t.a_rs
            && let Some(ty) = self.expr(rs, defined, &what)
            && ty != Ty::I64
        {
            self.err(format!("{what}: A's row stride must be i64, found {ty}"));
        }
        let kc = t.kc.as_int();
        let (mr, nr) = (t.mr as i64, t.nr as i64);
        let roles = [
            (Some(&t.a), "a", Scalar::F32, false, if t.a_rs.is_none() { kc.map(|k| k * mr) } else { None }),
            (Some(&t.b), "b", Scalar::F32, false, if t.koff.is_none() { kc.map(|k| k * nr) } else { None }),
            (t.koff.as_ref(), "koff", Scalar::I64, false, kc),
            (Some(&t.tile), "tile", Scalar::F32, true, Some(mr * nr)),
        ];
        for (at, role, scalar, writes, extent) in roles {
            self.pointer(&what, at, role, scalar, writes, extent, defined);
        }
    }

    /// One pointer argument of a micro-kernel call: its buffer's scalar and
    /// access, its index's type, and (constant indices) its extent.
    #[allow(clippy::too_many_arguments)]
    fn pointer(&mut self, what: &str, at: Option<&super::At>, role: &str, scalar: Scalar, writes: bool, extent: Option<i64>, defined: &HashSet<u32>) {
        let Some(at) = at else { return };
        let Some(b) = self.k.buffers.get(at.buf.0 as usize) else {
            self.err(format!("{what}: {role} is an unknown buffer {}", at.buf.0));
            return;
        };
        let (name, bs, access, len) = (b.name.clone(), b.scalar, b.access, b.len);
        if bs != scalar {
            self.err(format!("{what}: {role} %{name} is {}, not {}", bs.name(), scalar.name()));
        }
        if writes && !access.writes() {
            self.err(format!("{what}: {role} %{name} is read-only"));
        }
        if !writes && !access.reads() {
            self.err(format!("{what}: {role} %{name} is write-only"));
        }
        if let Some(ty) = self.expr(&at.index, defined, what)
            && ty != Ty::I64
        {
            self.err(format!("{what}: the index of {role} must be i64, found {ty}"));
        }
        if let (Some(i), Some(n)) = (at.index.as_int(), extent)
            && (i < 0 || (i as u64).saturating_add(n.max(0) as u64) > len)
        {
            self.err(format!("{what}: {role} %{name}[{i}..+{n}] is past its {len} elements"));
        }
    }

    /// An AMX tile call: i64 depth blocks and row stride, i32 buffers, the
    /// extents of constant indices.
    fn amx_tile(&mut self, t: &super::AmxTile, defined: &HashSet<u32>) {
        let what = "amx_tile 32x32";
        for (e, name) in [(Some(&t.kblocks), "the depth blocks"), (Some(&t.ldc), "C's row stride"), (t.a_rs.as_ref(), "A's row stride")] {
            let Some(e) = e else { continue };
            if let Some(ty) = self.expr(e, defined, what)
                && ty != Ty::I64
            {
                self.err(format!("{what}: {name} must be i64, found {ty}"));
            }
        }
        let kb = t.kblocks.as_int();
        let bias_len = if t.bias_rows { 32 * 16 } else { 32 };
        let a = match &t.a_rs {
            None => (Scalar::I32, kb.map(|k| k * 32 * 16)),
            Some(rs) => (Scalar::U8, kb.zip(rs.as_int()).map(|(k, rs)| 31 * rs + 64 * k)),
        };
        let roles = [
            (Some(&t.a), "a", a.0, false, a.1),
            (Some(&t.b), "b", Scalar::I32, false, kb.map(|k| k * 16 * 32)),
            (Some(&t.c), "c", Scalar::I32, true, t.ldc.as_int().map(|l| 31 * l + 32)),
            (t.bias.as_ref(), "bias", Scalar::I32, false, Some(bias_len)),
        ];
        for (at, role, scalar, writes, extent) in roles {
            self.pointer(what, at, role, scalar, writes, extent, defined);
        }
    }
}
