//! Kernel IR statements and expressions → WGSL text. Every value keeps its kernel
//! type (`i64` indices included); anything WGSL lacks a direct form for — packed
//! loads and stores, casts with smelt's saturating semantics, NaN-propagating
//! min/max, horizontal reductions, transcendentals — is a call to a helper function
//! that [`Emitter`] adds to the module once.

use super::int64::{self, Cls};
use super::lit::{f32_lit, int_lit, ty_name};
use super::{helpers, packed, scalar_name, Needs, Options};
use crate::kernel::{BinOp, CmpOp, Expr, HOp, Kernel, Lit, Loop, LoopKind, Scalar, Stmt, Ty, UnOp, VarId};
use std::collections::BTreeMap;

/// The state of translating one kernel.
#[derive(Debug)]
pub struct Emitter<'k> {
    pub k: &'k Kernel,
    /// Helper functions by name (sorted, so output is deterministic).
    pub helpers: BTreeMap<String, String>,
    needs: Needs,
    /// f16 buffers as `array<f16>` ([`Options::native_f16`]).
    native_f16: bool,
    /// Counter for loop-bound temporaries.
    tmp: u32,
    /// Invocations per workgroup when the kernel is cooperative (one workgroup
    /// per iteration of its parallel loop; `workgroup` and `reduce` loops spread
    /// over the workgroup's invocations), else `None`.
    pub coop: Option<u32>,
    /// WGSL types of the shared arrays the cooperative reductions use.
    shared: std::collections::BTreeSet<String>,
    /// The class of every variable (`int64::classes`): `Wide` i64 variables are
    /// two-word integers (`vec2<u32>`).
    cls: Vec<Cls>,
}

/// The WGSL type of a two-word (`Wide`) i64.
pub const WIDE: &str = "vec2<u32>";

impl<'k> Emitter<'k> {
    pub fn new(k: &'k Kernel, opts: &Options) -> Emitter<'k> {
        let native_f16 = opts.native_f16;
        let cls = int64::classes(k);
        let mut e = Emitter { k, helpers: BTreeMap::new(), needs: Needs::default(), native_f16, tmp: 0, coop: None, shared: Default::default(), cls };
        for b in &k.buffers {
            e.note_scalar(b.scalar);
            if native_f16 && b.scalar == Scalar::F16 {
                e.needs.f16 = true;
            }
        }
        for v in &k.vars {
            e.note_scalar(v.ty.scalar);
        }
        e
    }

    fn note_scalar(&mut self, s: Scalar) {
        if s == Scalar::F64 {
            self.needs.f64 = true;
        }
    }

    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// The module's enable directives (`enable f16;` for native f16 buffers).
    pub fn enables(&self) -> String {
        if self.needs.f16 { "enable f16;\n\n".to_string() } else { String::new() }
    }

    pub fn var_name(&self, v: VarId) -> String {
        let name: String = self.k.var(v).name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        format!("v{}_{name}", v.0)
    }

    pub fn buf_name(k: u32) -> String {
        format!("b{k}")
    }

    /// `var` declarations of every kernel variable (at the top of a function).
    pub fn var_decls(&self, indent: &str) -> String {
        let mut s = String::new();
        for (i, v) in self.k.vars.iter().enumerate() {
            let t = if self.cls[i] == Cls::Wide { WIDE.to_string() } else { ty_name(v.ty) };
            s.push_str(&format!("{indent}var {}: {t};\n", self.var_name(VarId(i as u32))));
        }
        s
    }

    /// The storage bindings of the kernel's buffers.
    pub fn bindings(&self) -> String {
        let mut s = String::new();
        for (i, b) in self.k.buffers.iter().enumerate() {
            let elem = if packed(b.scalar, self.native_f16) {
                if b.access.writes() { "atomic<u32>" } else { "u32" }
            } else if b.scalar == Scalar::F16 {
                "f16"
            } else {
                scalar_name(b.scalar)
            };
            let mode = if b.access.writes() { "read_write" } else { "read" };
            s.push_str(&format!(
                "@group(0) @binding({i}) var<storage, {mode}> {}: array<{elem}>; // {} {}[{}]\n",
                Self::buf_name(i as u32),
                b.access.name(),
                b.scalar.name(),
                b.len
            ));
        }
        s
    }

    /// The whole module of a generic kernel: bindings, helpers, and `main` with
    /// `body` (which may use `pid`, the flat invocation id).
    pub fn module(&self, body: &str, workgroup: u32) -> String {
        let mut s = self.enables();
        s.push_str(&format!("// kernel {}\n", self.k.name));
        s.push_str(&self.bindings());
        for h in self.helpers.values() {
            s.push('\n');
            s.push_str(h);
        }
        if !self.shared.is_empty() {
            s.push('\n');
        }
        for t in &self.shared {
            s.push_str(&format!("var<workgroup> {}: array<{t}, {workgroup}>;\n", shared_name(t)));
        }
        s.push_str(&format!(
            "\n@compute @workgroup_size({workgroup})\nfn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {{\n"
        ));
        s.push_str(&format!("  let pid = i32((wid.y * nwg.x + wid.x) * {workgroup}u + lid);\n"));
        s.push_str(&self.var_decls("  "));
        s.push_str(body);
        s.push_str("}\n");
        s
    }

    fn helper(&mut self, name: String, def: impl FnOnce() -> String) -> String {
        if !self.helpers.contains_key(&name) {
            let d = def();
            self.helpers.insert(name.clone(), d);
        }
        name
    }

    /// Statements, indented `depth` levels.
    pub fn block(&mut self, stmts: &[Stmt], depth: usize) -> Result<String, String> {
        let ind = "  ".repeat(depth);
        let mut s = String::new();
        for (i, st) in stmts.iter().enumerate() {
            match st {
                Stmt::TileGemm(t) => {
                    return Err(format!("not supported on wgsl: the micro-kernel call tile_gemm {}x{} (a CPU schedule's)", t.mr, t.nr));
                }
                Stmt::AmxTile(_) => {
                    return Err("not supported on wgsl: the micro-kernel call amx_tile (a CPU schedule's)".into());
                }
                Stmt::Comment(c) => {
                    for line in c.lines() {
                        s.push_str(&format!("{ind}// {line}\n"));
                    }
                }
                Stmt::Set(v, e) => {
                    let x = if self.cls[v.0 as usize] == Cls::Wide { self.wide(e)? } else { self.expr(e)? };
                    s.push_str(&format!("{ind}{} = {x};\n", self.var_name(*v)));
                }
                Stmt::Store { buf, index, value } => {
                    let t = value.ty(self.k)?;
                    let i = self.expr(index)?;
                    let (v, c) = self.ex(value)?;
                    let f = if c == Cls::Wide { self.store_wide_fn(buf.0) } else { self.store_fn(buf.0, t.lanes) };
                    s.push_str(&format!("{ind}{f}({i}, {v});\n"));
                }
                Stmt::If { cond, then, els } => {
                    let c = self.expr(cond)?;
                    s.push_str(&format!("{ind}if ({c}) {{\n"));
                    s.push_str(&self.block(then, depth + 1)?);
                    if !els.is_empty() {
                        s.push_str(&format!("{ind}}} else {{\n"));
                        s.push_str(&self.block(els, depth + 1)?);
                    }
                    s.push_str(&format!("{ind}}}\n"));
                }
                Stmt::Loop(l) if self.coop.is_some() && matches!(l.kind, LoopKind::Workgroup | LoopKind::Reduce(..)) => {
                    // The last statement of the kernel's body needs no barrier after it.
                    let last = depth == 1 && stmts[i + 1..].iter().all(|s| matches!(s, Stmt::Comment(_)));
                    s.push_str(&self.coop_loop(l, depth, !last)?);
                }
                Stmt::Loop(l) => {
                    // Every loop kind runs serially inside one invocation: the
                    // vectorizer already widened what it could, and the parallel
                    // loop (top-level only) is the invocation id.
                    let v = self.var_name(l.var);
                    let (lo, hi) = (self.expr(&l.lo)?, self.expr(&l.hi)?);
                    self.tmp += 1;
                    let h = format!("hi{}", self.tmp);
                    s.push_str(&format!("{ind}{{\n{ind}  let {h} = {hi};\n"));
                    s.push_str(&format!("{ind}  for ({v} = {lo}; {v} < {h}; {v} += {}i) {{\n", l.step));
                    s.push_str(&self.block(&l.body, depth + 2)?);
                    s.push_str(&format!("{ind}  }}\n{ind}}}\n"));
                }
            }
        }
        Ok(s)
    }

    /// A `workgroup` or `reduce` loop of a cooperative kernel: invocation `lid`
    /// runs iterations `lid, lid + W, …`; a reduction then folds the partial
    /// accumulators with a tree in workgroup memory and into the value the
    /// accumulator had before the loop, and a `workgroup` loop ends with a
    /// `storageBarrier` unless it ends the kernel (barriers in uniform control flow: the verifier keeps
    /// these loops in the kernel's body or in serial loops of constant bounds).
    fn coop_loop(&mut self, l: &Loop, depth: usize, barrier: bool) -> Result<String, String> {
        let wg = self.coop.unwrap_or(1);
        let ind = "  ".repeat(depth);
        let v = self.var_name(l.var);
        let (lo, hi) = (self.expr(&l.lo)?, self.expr(&l.hi)?);
        self.tmp += 1;
        let h = format!("hi{}", self.tmp);
        let mut s = format!("{ind}{{\n{ind}  let {h} = {hi};\n");
        let red = match l.kind {
            LoopKind::Reduce(op, acc) => {
                let t = self.k.var(acc).ty;
                let a = self.var_name(acc);
                let wide = self.cls[acc.0 as usize] == Cls::Wide;
                let lit = |v: i64| if wide { int64::lit(v) } else { int_lit(v, t.scalar) };
                let id = match (op, t.scalar.is_float()) {
                    (_, true) => f32_lit(crate::lower::coop::identity_f32(op)),
                    (BinOp::Mul, false) => lit(1),
                    (BinOp::Max, false) => lit(i64::MIN),
                    (BinOp::Min, false) => lit(i64::MAX),
                    _ => lit(0),
                };
                s.push_str(&format!("{ind}  let pre{} = {a};\n{ind}  {a} = {id};\n", self.tmp));
                Some((op, t, a, format!("pre{}", self.tmp)))
            }
            _ => None,
        };
        let step = l.step as i64;
        let first = match (l.lo.as_int(), step) {
            (Some(0), 1) => "i32(lid)".to_string(),
            (_, 1) => format!("{lo} + i32(lid)"),
            _ => format!("{lo} + i32(lid) * {step}i"),
        };
        s.push_str(&format!("{ind}  for ({v} = {first}; {v} < {h}; {v} += {}i) {{\n", step * wg as i64));
        s.push_str(&self.block(&l.body, depth + 2)?);
        s.push_str(&format!("{ind}  }}\n"));
        if red.is_none() && barrier {
            // What the iterations stored is read by others after the loop (the
            // next step of a recurrence, say): every store lands first.
            s.push_str(&format!("{ind}  storageBarrier();\n"));
        }
        if let Some((op, t, a, pre)) = red {
            let wide = matches!(l.kind, LoopKind::Reduce(_, acc) if self.cls[acc.0 as usize] == Cls::Wide);
            let tn = if wide { WIDE.to_string() } else { ty_name(t) };
            let sh = shared_name(&tn);
            self.shared.insert(tn);
            let comb = self.combine(op, t, wide, &format!("{sh}[lid]"), &format!("{sh}[lid + s]"));
            let last = self.combine(op, t, wide, &pre, &format!("{sh}[0]"));
            s.push_str(&format!(
                "{ind}  {sh}[lid] = {a};\n{ind}  workgroupBarrier();\n{ind}  for (var s = {}u; s > 0u; s >>= 1u) {{\n{ind}    if (lid < s) {{\n{ind}      {sh}[lid] = {comb};\n{ind}    }}\n{ind}    workgroupBarrier();\n{ind}  }}\n{ind}  {a} = {last};\n{ind}  workgroupBarrier();\n",
                wg / 2
            ));
        }
        s.push_str(&format!("{ind}}}\n"));
        Ok(s)
    }

    /// `a op b` for a reduction's combining op.
    fn combine(&mut self, op: BinOp, t: Ty, wide: bool, a: &str, b: &str) -> String {
        if wide {
            let f = match op {
                BinOp::Mul => "i64_mul",
                BinOp::Max => "i64_max",
                BinOp::Min => "i64_min",
                _ => "i64_add",
            };
            let f = self.i64_fn(f);
            return format!("{f}({a}, {b})");
        }
        match op {
            BinOp::Mul => format!("({a} * {b})"),
            BinOp::Max | BinOp::Min if t.scalar.is_float() => {
                let f = self.fminmax(t, op == BinOp::Min);
                format!("{f}({a}, {b})")
            }
            BinOp::Max => format!("max({a}, {b})"),
            BinOp::Min => format!("min({a}, {b})"),
            _ => format!("({a} + {b})"),
        }
    }

    /// An expression as WGSL (fully parenthesized where it matters), in its
    /// register type: a `Wide` i64 narrows to i32 (saturating), as an index.
    pub fn expr(&mut self, e: &Expr) -> Result<String, String> {
        if int64::class(self.k, &self.cls, e) == Cls::Wide {
            return self.low(e);
        }
        Ok(self.ex(e)?.0)
    }

    /// The low word of a wide i64 as an i32: what a position needs (buffers hold
    /// fewer than 2³¹ elements, and kernels check data used as indices before
    /// using them, on the full value). Wrapping add, sub and mul commute with
    /// taking the low word, so index math over wide values stays in i32.
    fn low(&mut self, e: &Expr) -> Result<String, String> {
        if int64::class(self.k, &self.cls, e) != Cls::Wide {
            return self.expr(e);
        }
        Ok(match e {
            Expr::Const(Lit::Int(v, _)) => int_lit(*v as i32 as i64, Scalar::I32),
            Expr::Var(v) => format!("bitcast<i32>({}.x)", self.var_name(*v)),
            Expr::Load { buf, index, lanes: 1 } => {
                let i = self.expr(index)?;
                format!("{}[u32({i}) * 2u]", Self::buf_name(buf.0))
            }
            Expr::Bin(op @ (BinOp::Add | BinOp::Sub | BinOp::Mul), a, b) => {
                let o = op.infix().unwrap_or("+");
                format!("({} {o} {})", self.low(a)?, self.low(b)?)
            }
            Expr::Select(c, a, b) => format!("select({}, {}, {})", self.low(b)?, self.low(a)?, self.expr(c)?),
            _ => format!("bitcast<i32>({}.x)", self.wide(e)?),
        })
    }

    /// An i64 expression as a two-word integer (`vec2<u32>`).
    fn wide(&mut self, e: &Expr) -> Result<String, String> {
        if let Some(v) = e.as_int() {
            return Ok(int64::lit(v));
        }
        let (s, c) = self.ex(e)?;
        Ok(if c == Cls::Wide { s } else { self.widen(&s) })
    }

    fn widen(&mut self, s: &str) -> String {
        let f = self.i64_fn("i64_from_i32");
        format!("{f}({s})")
    }

    fn narrow(&mut self, s: &str) -> String {
        let f = self.i64_fn("i64_to_i32");
        format!("{f}({s})")
    }

    /// A helper of `int64` (and those it calls).
    pub fn i64_fn(&mut self, name: &str) -> String {
        for d in int64::deps(name) {
            self.i64_fn(d);
        }
        self.helper(name.to_string(), || int64::source(name).unwrap_or_default())
    }

    /// An expression and its class (`Cls::Index` for types other than i64).
    fn ex(&mut self, e: &Expr) -> Result<(String, Cls), String> {
        let t = e.ty(self.k)?;
        if t.lanes > 4 {
            return Err(format!("a value of {t}: WGSL vectors have at most 4 lanes"));
        }
        self.note_scalar(t.scalar);
        let i64 = t.scalar == Scalar::I64;
        let idx = |s: String| (s, Cls::Index);
        Ok(match e {
            Expr::Const(l) => match l {
                Lit::Int(v, Scalar::I64) => match int64::of_const(*v) {
                    Cls::Wide => (int64::lit(*v), Cls::Wide),
                    c => (int_lit(*v, Scalar::I64), c),
                },
                Lit::F32(x) => idx(f32_lit(*x)),
                Lit::Int(v, s) => idx(int_lit(*v, *s)),
                Lit::Bool(b) => idx(b.to_string()),
            },
            Expr::Var(v) => (self.var_name(*v), self.cls[v.0 as usize]),
            Expr::Load { buf, index, lanes } => {
                let i = self.expr(index)?;
                if self.k.buffer(*buf).scalar == Scalar::I64 {
                    if *lanes > 1 {
                        return Err(format!("a vector load of i64 buffer {}", buf.0));
                    }
                    let f = self.load_wide_fn(buf.0);
                    (format!("{f}({i})"), Cls::Wide)
                } else {
                    let f = self.load_fn(buf.0, *lanes);
                    idx(format!("{f}({i})"))
                }
            }
            Expr::Un(op, a) => {
                let (x, ca) = self.ex(a)?;
                let c = if i64 { int64::unary(*op, ca) } else { Cls::Index };
                if c == Cls::Wide {
                    let x = if ca == Cls::Wide { x } else { self.widen(&x) };
                    let r = match op {
                        UnOp::Neg => format!("{}({x})", self.i64_fn("i64_neg")),
                        UnOp::Abs => format!("{}({x})", self.i64_fn("i64_abs")),
                        UnOp::Not => format!("(~{x})"),
                        _ => return Err(format!("{} of i64", op.name())),
                    };
                    return Ok((r, Cls::Wide));
                }
                let r = match op {
                    UnOp::Neg => self.wrap(t, format!("(-{x})")),
                    UnOp::Abs => format!("abs({x})"),
                    UnOp::Floor => format!("floor({x})"),
                    UnOp::Ceil => format!("ceil({x})"),
                    // WGSL's `round` is half to even, but Mesa's lavapipe
                    // rounds f64 halves up (Mesa 22.3): spelled out (past 2^52
                    // every f64 is an integer, and `x + 0.5` would round).
                    UnOp::Round if t.scalar == Scalar::F64 => {
                        let ty = super::lit::ty_name(t);
                        let name = self.helper(format!("smelt_round_even_{}", ty.replace(['<', '>'], "_")), || {
                            let n = format!("smelt_round_even_{}", ty.replace(['<', '>'], "_"));
                            format!(
                                "fn {n}(x: {ty}) -> {ty} {{\n  let r = floor(x + {ty}(0.5));\n  \
                                 let odd = r * {ty}(0.5) != floor(r * {ty}(0.5));\n  \
                                 let near = select(r, r - {ty}(1.0), (r - x == {ty}(0.5)) & odd);\n  \
                                 return select(near, x, abs(x) >= {ty}(4503599627370496.0));\n}}\n"
                            )
                        });
                        format!("{name}({x})")
                    }
                    UnOp::Round => format!("round({x})"),
                    UnOp::Trunc => format!("trunc({x})"),
                    UnOp::Sqrt => format!("sqrt({x})"),
                    UnOp::Not if t.scalar == Scalar::Bool => format!("(!{x})"),
                    UnOp::Not => self.wrap(t, format!("(~{x})")),
                };
                (r, c)
            }
            Expr::Bin(op, a, b) => {
                let ((x, ca), (y, cb)) = (self.ex(a)?, self.ex(b)?);
                let c = if i64 { int64::binary(*op, ca, cb, b.as_int()) } else { Cls::Index };
                if c == Cls::Wide {
                    return Ok((self.wide_bin(*op, a, b, (x, ca), (y, cb))?, Cls::Wide));
                }
                (self.narrow_bin(*op, t, x, y), c)
            }
            Expr::Fma(a, b, c) => {
                if i64 {
                    return Err("fma of i64".into());
                }
                idx(format!("fma({}, {}, {})", self.expr(a)?, self.expr(b)?, self.expr(c)?))
            }
            Expr::Cmp(op, a, b) => {
                let ((x, ca), (y, cb)) = (self.ex(a)?, self.ex(b)?);
                if ca == Cls::Wide || cb == Cls::Wide {
                    let x = if ca == Cls::Wide { x } else { self.wide(a)? };
                    let y = if cb == Cls::Wide { y } else { self.wide(b)? };
                    let lt = self.i64_fn("i64_lt");
                    return Ok(idx(match op {
                        CmpOp::Eq => format!("all({x} == {y})"),
                        CmpOp::Ne => format!("any({x} != {y})"),
                        CmpOp::Lt => format!("{lt}({x}, {y})"),
                        CmpOp::Gt => format!("{lt}({y}, {x})"),
                        CmpOp::Le => format!("(!{lt}({y}, {x}))"),
                        CmpOp::Ge => format!("(!{lt}({x}, {y}))"),
                    }));
                }
                if *op == CmpOp::Ne && a.ty(self.k)?.scalar.is_float() {
                    // Unordered, as the kernel IR (and Rust): naga emits `!=` on
                    // floats as SPIR-V's `FOrdNotEqual`, false when either is NaN.
                    return Ok(idx(format!("(!({x} == {y}))")));
                }
                let o = match op {
                    CmpOp::Eq => "==",
                    CmpOp::Ne => "!=",
                    CmpOp::Lt => "<",
                    CmpOp::Le => "<=",
                    CmpOp::Gt => ">",
                    CmpOp::Ge => ">=",
                };
                idx(format!("({x} {o} {y})"))
            }
            Expr::Select(c, a, b) => {
                let cond = self.expr(c)?;
                let ((x, ca), (y, cb)) = (self.ex(a)?, self.ex(b)?);
                let cls = if i64 { int64::join(ca, cb) } else { Cls::Index };
                if cls == Cls::Wide {
                    let x = if ca == Cls::Wide { x } else { self.wide(a)? };
                    let y = if cb == Cls::Wide { y } else { self.wide(b)? };
                    return Ok((format!("select({y}, {x}, {cond})"), Cls::Wide));
                }
                (format!("select({y}, {x}, {cond})"), cls)
            }
            Expr::Cast(Scalar::F32, a) if self.native_load_f16(a) => {
                // A native f16 element read as f32: the conversion is exact.
                let Expr::Load { buf, index, .. } = &**a else { unreachable!("checked by native_load_f16") };
                idx(format!("f32({}[u32({})])", Self::buf_name(buf.0), self.expr(index)?))
            }
            Expr::Cast(to, a) => {
                let from = a.ty(self.k)?;
                let (x, ca) = self.ex(a)?;
                self.note_scalar(*to);
                if ca == Cls::Wide {
                    return self.cast_from_wide(*to, x);
                }
                let c = if *to == Scalar::I64 { int64::cast_to(from.scalar, ca) } else { Cls::Index };
                if c == Cls::Wide {
                    let f = match from.scalar {
                        Scalar::F32 if from.lanes == 1 => self.i64_fn("i64_from_f32"),
                        Scalar::F64 if from.lanes == 1 => self.i64_fn("i64_from_f64"),
                        _ => return Err(format!("a cast of {from} to a wide i64")),
                    };
                    return Ok((format!("{f}({x})"), Cls::Wide));
                }
                if from.scalar == *to {
                    (x, c)
                } else {
                    let f = self.cast_fn(from, *to);
                    (format!("{f}({x})"), c)
                }
            }
            Expr::Call(f, args) => {
                let xs: Vec<String> = args.iter().map(|a| self.expr(a)).collect::<Result<_, _>>()?;
                let name = self.math_fn(*f, t)?;
                idx(format!("{name}({})", xs.join(", ")))
            }
            Expr::Splat(a, lanes) => {
                let (x, c) = self.ex(a)?;
                if c == Cls::Wide {
                    return Err("a vector of wide i64 values (the vectorizer widens only f32, i32 and bool)".into());
                }
                idx(format!("vec{lanes}<{}>({x})", scalar_name(t.scalar)))
            }
            Expr::Lane(a, i) => idx(format!("({})[{i}]", self.expr(a)?)),
            Expr::HReduce(op, a) => {
                let at = a.ty(self.k)?;
                let x = self.expr(a)?;
                let f = self.hreduce_fn(*op, at);
                idx(format!("{f}({x})"))
            }
        })
    }

    /// Whether `e` is a scalar load of an f16 buffer held as `array<f16>`.
    fn native_load_f16(&self, e: &Expr) -> bool {
        self.native_f16 && matches!(e, Expr::Load { buf, lanes: 1, .. } if self.k.buffers[buf.0 as usize].scalar == Scalar::F16)
    }

    /// A binary op on i32 registers (and vectors).
    fn narrow_bin(&mut self, op: BinOp, t: Ty, x: String, y: String) -> String {
        let bits = 32;
        let shift_ty = if t.lanes == 1 { "u32".to_string() } else { format!("vec{}<u32>", t.lanes) };
        match op {
            BinOp::Add => self.wrap(t, format!("({x} + {y})")),
            BinOp::Sub => self.wrap(t, format!("({x} - {y})")),
            BinOp::Mul => self.wrap(t, format!("({x} * {y})")),
            BinOp::Div if t.scalar.is_float() => format!("({x} / {y})"),
            BinOp::Div => {
                let f = self.int_divrem(t, true);
                format!("{f}({x}, {y})")
            }
            BinOp::Rem => {
                let f = self.int_divrem(t, false);
                format!("{f}({x}, {y})")
            }
            BinOp::Min | BinOp::Max if t.scalar.is_float() => {
                let f = self.fminmax(t, op == BinOp::Min);
                format!("{f}({x}, {y})")
            }
            BinOp::Min => format!("min({x}, {y})"),
            BinOp::Max => format!("max({x}, {y})"),
            BinOp::And => format!("({x} & {y})"),
            BinOp::Or => format!("({x} | {y})"),
            BinOp::Xor if t.scalar == Scalar::Bool => format!("({x} != {y})"),
            BinOp::Xor => format!("({x} ^ {y})"),
            BinOp::Shl => {
                let amt = self.shift_amount(t, &y, bits, &shift_ty);
                self.wrap(t, format!("({x} << {amt})"))
            }
            BinOp::Shr => {
                let amt = self.shift_amount(t, &y, bits, &shift_ty);
                format!("({x} >> {amt})")
            }
        }
    }

    /// A binary op on two-word i64s (wrapping, as the interpreter's i64).
    fn wide_bin(&mut self, op: BinOp, a: &Expr, b: &Expr, (x, ca): (String, Cls), (y, cb): (String, Cls)) -> Result<String, String> {
        let x = if ca == Cls::Wide { x } else { self.wide(a)? };
        if matches!(op, BinOp::Shl | BinOp::Shr) {
            // The amount modulo 64, from its low word.
            let amt = if cb == Cls::Wide { format!("({y}.x & 63u)") } else { format!("(bitcast<u32>({y}) & 63u)") };
            let f = self.i64_fn(if op == BinOp::Shl { "i64_shl" } else { "i64_shr" });
            return Ok(format!("{f}({x}, {amt})"));
        }
        let y = if cb == Cls::Wide { y } else { self.wide(b)? };
        let f = match op {
            BinOp::And => return Ok(format!("({x} & {y})")),
            BinOp::Or => return Ok(format!("({x} | {y})")),
            BinOp::Xor => return Ok(format!("({x} ^ {y})")),
            BinOp::Add => "i64_add",
            BinOp::Sub => "i64_sub",
            BinOp::Mul => "i64_mul",
            BinOp::Div => "i64_div",
            BinOp::Rem => "i64_rem",
            BinOp::Min => "i64_min",
            _ => "i64_max",
        };
        let f = self.i64_fn(f);
        Ok(format!("{f}({x}, {y})"))
    }

    /// A cast of a two-word i64 `x`: saturating to the integers, `!= 0` to
    /// bool, rounded to nearest even to the floats.
    fn cast_from_wide(&mut self, to: Scalar, x: String) -> Result<(String, Cls), String> {
        Ok(match to {
            Scalar::I64 => (x, Cls::Wide),
            Scalar::I32 => (self.narrow(&x), Cls::Index),
            Scalar::I8 | Scalar::U8 => {
                let (lo, hi) = to.int_range().unwrap_or((0, 0));
                let n = self.narrow(&x);
                (format!("clamp({n}, {}, {})", int_lit(lo, Scalar::I32), int_lit(hi, Scalar::I32)), Cls::Index)
            }
            Scalar::Bool => (format!("any({x} != {WIDE}(0u))"), Cls::Index),
            Scalar::F32 => (format!("{}({x})", self.i64_fn("i64_to_f32")), Cls::Index),
            Scalar::F64 => (format!("{}({x})", self.i64_fn("i64_to_f64")), Cls::Index),
            Scalar::F16 | Scalar::BF16 => return Err(format!("a cast of i64 to {} (convert through f32)", to.name())),
        })
    }

    /// Integer results of i8/u8 wrap in their type (they compute as i32).
    fn wrap(&mut self, t: Ty, x: String) -> String {
        match t.scalar {
            Scalar::I8 => {
                let s = if t.lanes == 1 { "24u".to_string() } else { format!("vec{}<u32>(24u)", t.lanes) };
                format!("(({x} << {s}) >> {s})")
            }
            Scalar::U8 => {
                let m = if t.lanes == 1 { "255i".to_string() } else { format!("vec{}<i32>(255i)", t.lanes) };
                format!("({x} & {m})")
            }
            _ => x,
        }
    }

    fn shift_amount(&mut self, t: Ty, y: &str, bits: u32, shift_ty: &str) -> String {
        // The amount is taken modulo the width, as on the CPU backends.
        let m = int_lit((bits - 1) as i64, Scalar::I32);
        let m = if t.lanes == 1 { m } else { format!("vec{}<{}>({m})", t.lanes, scalar_name(t.scalar)) };
        format!("{shift_ty}({y} & {m})")
    }

    fn load_fn(&mut self, b: u32, lanes: u32) -> String {
        let buf = self.k.buffers[b as usize].clone();
        if lanes > 1 {
            self.load_fn(b, 1);
        }
        let name = format!("ld{lanes}_b{b}");
        let native = self.native_f16;
        if native && buf.scalar == Scalar::F16 {
            self.helper("smelt_half_support".into(), helpers::half_support);
        }
        self.helper(name.clone(), || helpers::load(&name, b, &buf, lanes, native))
    }

    /// Load and store of a two-word i64 element of buffer `b`.
    fn load_wide_fn(&mut self, b: u32) -> String {
        let name = format!("ldw_b{b}");
        self.helper(name.clone(), || format!("fn {name}(i: i32) -> {WIDE} {{\n  return bitcast<{WIDE}>(vec2<i32>(b{b}[u32(i) * 2u], b{b}[u32(i) * 2u + 1u]));\n}}\n"))
    }

    fn store_wide_fn(&mut self, b: u32) -> String {
        let name = format!("stw_b{b}");
        self.helper(name.clone(), || {
            format!("fn {name}(i: i32, v: {WIDE}) {{\n  b{b}[u32(i) * 2u] = bitcast<i32>(v.x);\n  b{b}[u32(i) * 2u + 1u] = bitcast<i32>(v.y);\n}}\n")
        })
    }

    fn store_fn(&mut self, b: u32, lanes: u32) -> String {
        let buf = self.k.buffers[b as usize].clone();
        if lanes > 1 {
            self.store_fn(b, 1);
        }
        let name = format!("st{lanes}_b{b}");
        let native = self.native_f16;
        if native && buf.scalar == Scalar::F16 {
            self.helper("smelt_f16_bits_to_f32".into(), helpers::f16_bits_to_f32);
        }
        self.helper(name.clone(), || helpers::store(&name, b, &buf, lanes, native))
    }

    fn cast_fn(&mut self, from: Ty, to: Scalar) -> String {
        self.note_scalar(to);
        if matches!(to, Scalar::F16 | Scalar::BF16) {
            self.helper("smelt_half_support".into(), helpers::half_support);
        }
        let name = format!("cast_{}_{}_{}", from.scalar.name(), to.name(), from.lanes);
        self.helper(name.clone(), || helpers::cast(&name, from, to))
    }

    fn fminmax(&mut self, t: Ty, min: bool) -> String {
        let name = format!("{}_{}_{}", if min { "fmin" } else { "fmax" }, t.scalar.name(), t.lanes);
        self.helper(name.clone(), || helpers::fminmax(&name, t, min))
    }

    fn int_divrem(&mut self, t: Ty, div: bool) -> String {
        let name = format!("{}_{}_{}", if div { "idiv" } else { "irem" }, t.scalar.name(), t.lanes);
        self.helper(name.clone(), || helpers::int_divrem(&name, t, div))
    }

    fn hreduce_fn(&mut self, op: HOp, t: Ty) -> String {
        let name = format!("{}_{}_{}", op.name(), t.scalar.name(), t.lanes);
        self.helper(name.clone(), || helpers::hreduce(&name, op, t))
    }

    fn math_fn(&mut self, f: crate::kernel::Intrinsic, t: Ty) -> Result<String, String> {
        if matches!(
            f,
            crate::kernel::Intrinsic::DotPairsI16 | crate::kernel::Intrinsic::DotQuadsU8I8 | crate::kernel::Intrinsic::DotQuadsU8I8Narrow
        ) {
            // Only the CPU's quantized GEMM (`lower/qgemm.rs`) makes them; the GPU
            // target keeps the plain i32 loops.
            return Err(format!("{} is not emitted in WGSL (the GPU lowering does not produce it)", f.name()));
        }
        if t.scalar != Scalar::F32 {
            return Err(format!("{} of {t}", f.name()));
        }
        let name = format!("smelt_{}_{}", f.name(), t.lanes);
        Ok(self.helper(name.clone(), || super::math::function(&name, f, t.lanes)))
    }
}

/// The workgroup array of a cooperative reduction over values of WGSL type `t`.
fn shared_name(t: &str) -> String {
    let t: String = t.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("red_{}", t.trim_end_matches('_'))
}
