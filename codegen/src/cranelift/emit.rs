//! Kernel IR → CLIF. One function per kernel with the signature
//! `(buffers: *const *mut u8, lo: i64, hi: i64)`. Kernels are vectorized first
//! ([`crate::schedule::vectorize`]); what remains is emitted one statement at a
//! time through cranelift-frontend's variables (SSA construction is left to it).
//! f32x4 vectors map to `F32X4`, their masks to `I32X4`; scalar bools are `I8`
//! 0/1. Intrinsics expand inline through [`crate::math`].

use super::math_ops::ClifMath;
use crate::kernel::{BinOp, CmpOp, Expr, HOp, Intrinsic, Kernel, Lit, LoopKind, Scalar, Stmt, Ty, UnOp};
use crate::math;
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Signature, Type, Value, types};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};

/// The signature every kernel has.
pub fn signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..3 {
        sig.params.push(AbiParam::new(types::I64));
    }
    sig
}

/// The CLIF type of a kernel type, when Cranelift has one.
pub fn clif_type(t: Ty) -> Result<Type, String> {
    Ok(match (t.scalar, t.lanes) {
        (Scalar::F32, 1) => types::F32,
        (Scalar::F64, 1) => types::F64,
        (Scalar::I32, 1) => types::I32,
        (Scalar::I64, 1) => types::I64,
        (Scalar::I8 | Scalar::U8 | Scalar::Bool, 1) => types::I8,
        // Storage scalars are their bits (see `cast.rs` for the conversions).
        (Scalar::F16 | Scalar::BF16, 1) => types::I16,
        (Scalar::F32, 4) => types::F32X4,
        (Scalar::I32 | Scalar::Bool, 4) => types::I32X4,
        _ => return Err(format!("cranelift has no type for {t}")),
    })
}

pub(super) fn mem_type(s: Scalar) -> Type {
    match s {
        Scalar::F32 => types::F32,
        Scalar::F64 => types::F64,
        Scalar::I32 => types::I32,
        Scalar::I64 => types::I64,
        Scalar::I8 | Scalar::U8 | Scalar::Bool => types::I8,
        Scalar::F16 | Scalar::BF16 => types::I16,
    }
}

/// Memory accesses never trap (indices are in range by construction) and need
/// no alignment.
fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

/// Loads from a buffer the kernel never writes, outside any conditional: pure, so
/// Cranelift may move them next to their use (and fold them into `vbroadcastss`
/// or an arithmetic operand) or hoist them out of loops. Loads under an `if` keep
/// [`flags`]: their address may be valid only when the condition holds.
fn pure_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap().with_readonly().with_can_move()
}

/// Emits the body of kernel `k` into `b` (whose function has [`signature`]).
pub fn emit(k: &Kernel, b: &mut FunctionBuilder) -> Result<(), String> {
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let (args, lo, hi) = (params[0], params[1], params[2]);
    let mut bases = Vec::with_capacity(k.buffers.len());
    for i in 0..k.buffers.len() {
        bases.push(b.ins().load(types::I64, MemFlagsData::trusted(), args, (8 * i) as i32));
    }
    let mut vars = Vec::with_capacity(k.vars.len());
    for v in &k.vars {
        vars.push(match clif_type(v.ty) {
            Ok(t) => Some(b.declare_var(t)),
            Err(_) => None,
        });
    }
    let mut e = Emitter { k, b, bases, vars, range: (lo, hi), in_if: 0 };
    e.block(&k.body, true)?;
    e.b.ins().return_(&[]);
    Ok(())
}

pub(super) struct Emitter<'a, 'b> {
    k: &'a Kernel,
    pub(super) b: &'a mut FunctionBuilder<'b>,
    bases: Vec<Value>,
    vars: Vec<Option<Variable>>,
    /// The call's `lo..hi`, for the top-level parallel loop.
    range: (Value, Value),
    /// How many `if`s enclose the statement being emitted.
    in_if: usize,
}

impl Emitter<'_, '_> {
    fn var(&self, v: crate::kernel::VarId) -> Result<Variable, String> {
        self.vars[v.0 as usize].ok_or_else(|| format!("variable `{}` has an unsupported type", self.k.var(v).name))
    }

    fn ty(&self, e: &Expr) -> Result<Ty, String> {
        e.ty(self.k)
    }

    /// `dot_pairs_i16` (see [`Intrinsic::DotPairsI16`]): on i32x4 the halves as
    /// i16x8, widened, multiplied and added pairwise — the tree Cranelift's x64
    /// backend matches to one `pmaddwd`; on a scalar, the halves by shifts.
    fn dot_pairs_i16(&mut self, lanes: u32, x: Value, y: Value) -> Result<Value, String> {
        match lanes {
            1 => {
                let ins = |b: &mut FunctionBuilder, v: Value| {
                    let lo = b.ins().ishl_imm_u(v, 16);
                    (b.ins().sshr_imm_u(lo, 16), b.ins().sshr_imm_u(v, 16))
                };
                let ((xl, xh), (yl, yh)) = (ins(self.b, x), ins(self.b, y));
                let p0 = self.b.ins().imul(xl, yl);
                let p1 = self.b.ins().imul(xh, yh);
                Ok(self.b.ins().iadd(p0, p1))
            }
            4 => {
                let le = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
                let xh = self.b.ins().bitcast(types::I16X8, le, x);
                let yh = self.b.ins().bitcast(types::I16X8, le, y);
                let (xl, yl) = (self.b.ins().swiden_low(xh), self.b.ins().swiden_low(yh));
                let (xu, yu) = (self.b.ins().swiden_high(xh), self.b.ins().swiden_high(yh));
                let lo = self.b.ins().imul(xl, yl);
                let hi = self.b.ins().imul(xu, yu);
                Ok(self.b.ins().iadd_pairwise(lo, hi))
            }
            n => Err(format!("dot_pairs_i16 of i32x{n}: Cranelift computes on i32x4")),
        }
    }

    fn block(&mut self, body: &[Stmt], top: bool) -> Result<(), String> {
        for s in body {
            self.stmt(s, top)?;
        }
        Ok(())
    }

    fn stmt(&mut self, s: &Stmt, top: bool) -> Result<(), String> {
        match s {
            Stmt::Comment(_) => {}
            Stmt::TileGemm(t) => self.tile_gemm(t)?,
            Stmt::AmxTile(t) => self.amx_tile(t)?,
            Stmt::Set(v, e) => {
                let val = self.expr(e)?;
                let var = self.var(*v)?;
                self.b.def_var(var, val);
            }
            Stmt::Store { buf, index, value } => {
                let val = self.expr(value)?;
                let (addr, off) = self.address(*buf, index)?;
                self.b.ins().store(flags(), val, addr, off);
            }
            Stmt::If { cond, then, els } => {
                let c = self.expr(cond)?;
                let (tb, eb, merge) = (self.b.create_block(), self.b.create_block(), self.b.create_block());
                self.b.ins().brif(c, tb, &[], eb, &[]);
                self.b.seal_block(tb);
                self.b.seal_block(eb);
                self.in_if += 1;
                self.b.switch_to_block(tb);
                self.block(then, false)?;
                self.b.ins().jump(merge, &[]);
                self.b.switch_to_block(eb);
                self.block(els, false)?;
                self.b.ins().jump(merge, &[]);
                self.in_if -= 1;
                self.b.seal_block(merge);
                self.b.switch_to_block(merge);
            }
            Stmt::Loop(l) => {
                let var = self.var(l.var)?;
                if l.kind == LoopKind::Unrolled {
                    let (Some(lo), Some(hi)) = (l.lo.as_int(), l.hi.as_int()) else {
                        return Err("an unrolled loop needs constant bounds".into());
                    };
                    let mut i = lo;
                    while i < hi {
                        let c = self.b.ins().iconst(types::I64, i);
                        self.b.def_var(var, c);
                        self.block(&l.body, false)?;
                        i += l.step as i64;
                    }
                    return Ok(());
                }
                let (lo, hi) = if l.kind == LoopKind::Parallel && top {
                    self.range
                } else {
                    (self.expr(&l.lo)?, self.expr(&l.hi)?)
                };
                // Rotated loop: test once before, then at the bottom of the body.
                let (body, exit) = (self.b.create_block(), self.b.create_block());
                self.b.def_var(var, lo);
                let c = self.b.ins().icmp(IntCC::SignedLessThan, lo, hi);
                self.b.ins().brif(c, body, &[], exit, &[]);
                self.b.switch_to_block(body);
                self.block(&l.body, false)?;
                let i = self.b.use_var(var);
                let next = self.b.ins().iadd_imm_s(i, l.step as i64);
                self.b.def_var(var, next);
                let c = self.b.ins().icmp(IntCC::SignedLessThan, next, hi);
                self.b.ins().brif(c, body, &[], exit, &[]);
                self.b.seal_block(body);
                self.b.seal_block(exit);
                self.b.switch_to_block(exit);
            }
        }
        Ok(())
    }

    /// A call of the host's micro-kernel (`crate::ukernel`), through its address:
    /// JIT code only (`object` refuses kernels with these calls).
    fn tile_gemm(&mut self, t: &crate::kernel::TileGemm) -> Result<(), String> {
        let f = crate::ukernel::tile_gemm(t.mr, t.nr, t.koff.is_some(), t.a_rs.is_some())
            .ok_or_else(|| format!("not supported on this host: the micro-kernel tile_gemm {}x{}", t.mr, t.nr))?;
        let mut args = vec![];
        for at in [Some(&t.a), Some(&t.b), t.koff.as_ref(), Some(&t.tile)] {
            args.push(self.pointer(at)?);
        }
        args.push(self.expr(&t.kc)?);
        args.push(self.int_or_zero(t.a_rs.as_ref())?);
        self.call_address(f as usize, &args);
        Ok(())
    }

    /// A call of the AMX tile (`crate::amx`) through its address: JIT code only.
    fn amx_tile(&mut self, t: &crate::kernel::AmxTile) -> Result<(), String> {
        let f = crate::amx::tile(t.signed_a).ok_or("not supported on this host: the AMX-INT8 micro-kernel amx_tile")?;
        let mut args = vec![];
        for at in [Some(&t.a), Some(&t.b), Some(&t.c), t.bias.as_ref()] {
            args.push(self.pointer(at)?);
        }
        args.push(self.expr(&t.kblocks)?);
        args.push(self.expr(&t.ldc)?);
        args.push(self.b.ins().iconst(types::I64, t.bias_rows as i64));
        args.push(self.int_or_zero(t.a_rs.as_ref())?);
        self.call_address(f as usize, &args);
        Ok(())
    }

    /// A micro-kernel's pointer argument: the element's address, or null.
    fn pointer(&mut self, at: Option<&crate::kernel::At>) -> Result<Value, String> {
        Ok(match at {
            Some(at) => {
                let (addr, off) = self.address(at.buf, &at.index)?;
                if off == 0 { addr } else { self.b.ins().iadd_imm_s(addr, off as i64) }
            }
            None => self.b.ins().iconst(types::I64, 0),
        })
    }

    /// An i64 argument, or 0.
    fn int_or_zero(&mut self, e: Option<&Expr>) -> Result<Value, String> {
        match e {
            Some(e) => self.expr(e),
            None => Ok(self.b.ins().iconst(types::I64, 0)),
        }
    }

    /// Calls the C function at `addr` whose arguments are all i64 or pointers.
    fn call_address(&mut self, addr: usize, args: &[Value]) {
        let mut sig = Signature::new(self.b.func.signature.call_conv);
        sig.params.extend(args.iter().map(|_| AbiParam::new(types::I64)));
        let sig = self.b.import_signature(sig);
        let callee = self.b.ins().iconst(types::I64, addr as i64);
        self.b.ins().call_indirect(sig, callee, args);
    }

    /// The address and constant byte offset of element `index` of `buf`.
    fn address(&mut self, buf: crate::kernel::BufId, index: &Expr) -> Result<(Value, i32), String> {
        let size = self.k.buffer(buf).scalar.size() as i64;
        let (dynamic, konst) = split_offset(index);
        let off = konst.checked_mul(size).and_then(|o| i32::try_from(o).ok());
        let (dynamic, off) = match (dynamic, off) {
            (d, Some(off)) => (d, off),
            (_, None) => (Some(index), 0),
        };
        let base = self.bases[buf.0 as usize];
        // The address as base + Σ term·size, one add per term of the index: loop
        // invariant prefixes (base + row offset) are then hoisted by Cranelift and
        // the last term folds into the addressing mode.
        let mut terms = vec![];
        if let Some(d) = dynamic {
            add_terms(d, &mut terms);
        }
        let mut addr = base;
        for t in terms {
            let scaled = match t {
                Expr::Bin(BinOp::Mul, x, c) if c.as_int().is_some_and(|c| c > 0 && (c * size) as u64 & ((c * size) as u64 - 1) == 0) => {
                    let sh = ((c.as_int().unwrap_or(1) * size) as u64).trailing_zeros() as i64;
                    let v = self.expr(x)?;
                    self.b.ins().ishl_imm_u(v, sh)
                }
                t => {
                    let v = self.expr(t)?;
                    if size == 1 { v } else { self.b.ins().ishl_imm_u(v, size.trailing_zeros() as i64) }
                }
            };
            addr = self.b.ins().iadd(addr, scaled);
        }
        Ok((addr, off))
    }

    fn expr(&mut self, e: &Expr) -> Result<Value, String> {
        let t = self.ty(e)?;
        Ok(match e {
            Expr::Const(l) => match *l {
                Lit::F32(x) => self.b.ins().f32const(x),
                Lit::Int(v, s) => self.b.ins().iconst(mem_type(s), v),
                Lit::Bool(v) => self.b.ins().iconst(types::I8, v as i64),
            },
            Expr::Var(v) => {
                let var = self.var(*v)?;
                self.b.use_var(var)
            }
            Expr::Load { buf, index, lanes } => {
                let (addr, off) = self.address(*buf, index)?;
                let scalar = self.k.buffer(*buf).scalar;
                if *lanes > 1 && scalar == Scalar::Bool {
                    return Err("vector loads of bools".into());
                }
                let ty = if *lanes == 1 { mem_type(scalar) } else { clif_type(Ty::vec(scalar, *lanes))? };
                let pure = self.in_if == 0 && self.k.buffer(*buf).access == crate::kernel::Access::Read;
                self.b.ins().load(ty, if pure { pure_flags() } else { flags() }, addr, off)
            }
            Expr::Un(op, a) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?;
                let fl = ta.scalar.is_float();
                match op {
                    UnOp::Neg if fl => self.b.ins().fneg(x),
                    UnOp::Neg => self.b.ins().ineg(x),
                    UnOp::Abs if fl => self.b.ins().fabs(x),
                    UnOp::Abs => self.b.ins().iabs(x),
                    UnOp::Floor => self.b.ins().floor(x),
                    UnOp::Ceil => self.b.ins().ceil(x),
                    UnOp::Round => self.b.ins().nearest(x),
                    UnOp::Trunc => self.b.ins().trunc(x),
                    UnOp::Sqrt => self.b.ins().sqrt(x),
                    UnOp::Not if ta.scalar == Scalar::Bool && ta.lanes == 1 => self.b.ins().bxor_imm_u(x, 1),
                    UnOp::Not => self.b.ins().bnot(x),
                }
            }
            Expr::Bin(op, a, c) => {
                let ta = self.ty(a)?;
                if matches!(op, BinOp::Shl | BinOp::Shr) && ta.lanes > 1 {
                    let amount = match &**c {
                        Expr::Splat(k, _) => k.as_int(),
                        _ => None,
                    }
                    .ok_or("vector shifts need a constant amount")?;
                    let x = self.expr(a)?;
                    return Ok(if *op == BinOp::Shl { self.b.ins().ishl_imm_u(x, amount) } else { self.b.ins().sshr_imm_u(x, amount) });
                }
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                self.binary(*op, ta, x, y)
            }
            Expr::Fma(a, b2, c) => {
                let (x, y, z) = (self.expr(a)?, self.expr(b2)?, self.expr(c)?);
                self.b.ins().fma(x, y, z)
            }
            Expr::Cmp(op, a, c) => {
                let ta = self.ty(a)?;
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                self.compare(*op, ta, x, y)
            }
            Expr::Select(c, a, d) => {
                let (cv, x, y) = (self.expr(c)?, self.expr(a)?, self.expr(d)?);
                self.select(t, cv, x, y)?
            }
            Expr::Cast(to, a) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?;
                self.cast(ta, *to, x)?
            }
            Expr::Call(Intrinsic::DotPairsI16, args) => {
                let (x, y) = (self.expr(&args[0])?, self.expr(&args[1])?);
                self.dot_pairs_i16(t.lanes, x, y)?
            }
            Expr::Call(Intrinsic::DotQuadsU8I8 | Intrinsic::DotQuadsU8I8Narrow, _) => {
                // Cranelift's x64 backend has no `vpdpbusd`; its target packs pairs.
                return Err("dot_quads_u8i8 is not emitted by Cranelift (its quantized GEMM packs pairs)".into());
            }
            Expr::Call(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.expr(a)?);
                }
                let mut m = ClifMath::new(self.b, t.lanes)?;
                match f {
                    Intrinsic::Exp => math::exp(&mut m, vals[0]),
                    Intrinsic::Log => math::log(&mut m, vals[0]),
                    Intrinsic::Tanh => math::tanh(&mut m, vals[0]),
                    Intrinsic::Erf => math::erf(&mut m, vals[0]),
                    Intrinsic::Sin => math::sin(&mut m, vals[0]),
                    Intrinsic::Cos => math::cos(&mut m, vals[0]),
                    Intrinsic::Sigmoid => math::sigmoid(&mut m, vals[0]),
                    Intrinsic::Softplus => math::softplus(&mut m, vals[0]),
                    Intrinsic::Pow => math::pow(&mut m, vals[0], vals[1]),
                    Intrinsic::DotPairsI16 | Intrinsic::DotQuadsU8I8 | Intrinsic::DotQuadsU8I8Narrow => {
                        unreachable!("the integer dot products are handled above")
                    }
                }
            }
            Expr::Splat(a, lanes) if *lanes == 4 && matches!(&**a, Expr::Lane(v, _) if self.ty(v)?.lanes == 4 && self.ty(v)?.scalar != Scalar::Bool) => {
                // Broadcasting one lane of a vector: one `pshufd`.
                let Expr::Lane(v, i) = &**a else { unreachable!("matched above") };
                let x = self.expr(v)?;
                let vt = clif_type(self.ty(v)?)?;
                let le = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
                let bytes = self.b.ins().bitcast(types::I8X16, le, x);
                let mask: Vec<u8> = (0..16).map(|j| (4 * *i + (j % 4)) as u8).collect();
                let imm = self.b.func.dfg.immediates.push(cranelift_codegen::ir::ConstantData::from(mask));
                let sh = self.b.ins().shuffle(bytes, bytes, imm);
                self.b.ins().bitcast(vt, le, sh)
            }
            Expr::Splat(a, _) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?;
                let vt = clif_type(t)?;
                if ta.scalar == Scalar::Bool {
                    // 0/1 → 0/-1 in each i32 lane.
                    let w = self.b.ins().uextend(types::I32, x);
                    let m = self.b.ins().ineg(w);
                    self.b.ins().splat(vt, m)
                } else {
                    self.b.ins().splat(vt, x)
                }
            }
            Expr::Lane(a, i) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?;
                let l = self.b.ins().extractlane(x, *i as u8);
                if ta.scalar == Scalar::Bool { self.b.ins().icmp_imm_s(IntCC::NotEqual, l, 0) } else { l }
            }
            Expr::HReduce(op, a) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?;
                let mut acc = self.b.ins().extractlane(x, 0u8);
                for i in 1..ta.lanes {
                    let l = self.b.ins().extractlane(x, i as u8);
                    let bop = match op {
                        HOp::Add => BinOp::Add,
                        HOp::Max => BinOp::Max,
                        HOp::Min => BinOp::Min,
                    };
                    acc = self.binary(bop, ta.with_lanes(1), acc, l);
                }
                acc
            }
        })
    }

    fn binary(&mut self, op: BinOp, t: Ty, x: Value, y: Value) -> Value {
        let ins = self.b.ins();
        if t.scalar.is_float() {
            return match op {
                BinOp::Add => ins.fadd(x, y),
                BinOp::Sub => ins.fsub(x, y),
                BinOp::Mul => ins.fmul(x, y),
                BinOp::Div => ins.fdiv(x, y),
                BinOp::Min => ins.fmin(x, y),
                BinOp::Max => ins.fmax(x, y),
                // Rejected by the type check.
                _ => ins.fadd(x, y),
            };
        }
        let unsigned = t.scalar == Scalar::U8;
        match op {
            BinOp::Add => ins.iadd(x, y),
            BinOp::Sub => ins.isub(x, y),
            BinOp::Mul => ins.imul(x, y),
            BinOp::Div if unsigned => ins.udiv(x, y),
            BinOp::Div => ins.sdiv(x, y),
            BinOp::Rem if unsigned => ins.urem(x, y),
            BinOp::Rem => ins.srem(x, y),
            BinOp::Min if unsigned => ins.umin(x, y),
            BinOp::Min => ins.smin(x, y),
            BinOp::Max if unsigned => ins.umax(x, y),
            BinOp::Max => ins.smax(x, y),
            BinOp::And => ins.band(x, y),
            BinOp::Or => ins.bor(x, y),
            BinOp::Xor => ins.bxor(x, y),
            BinOp::Shl => ins.ishl(x, y),
            BinOp::Shr if unsigned => ins.ushr(x, y),
            BinOp::Shr => ins.sshr(x, y),
        }
    }

    fn compare(&mut self, op: CmpOp, t: Ty, x: Value, y: Value) -> Value {
        if t.scalar.is_float() {
            let cc = match op {
                CmpOp::Eq => FloatCC::Equal,
                CmpOp::Ne => FloatCC::NotEqual,
                CmpOp::Lt => FloatCC::LessThan,
                CmpOp::Le => FloatCC::LessThanOrEqual,
                CmpOp::Gt => FloatCC::GreaterThan,
                CmpOp::Ge => FloatCC::GreaterThanOrEqual,
            };
            return self.b.ins().fcmp(cc, x, y);
        }
        let u = t.scalar == Scalar::U8 || t.scalar == Scalar::Bool;
        let cc = match (op, u) {
            (CmpOp::Eq, _) => IntCC::Equal,
            (CmpOp::Ne, _) => IntCC::NotEqual,
            (CmpOp::Lt, false) => IntCC::SignedLessThan,
            (CmpOp::Le, false) => IntCC::SignedLessThanOrEqual,
            (CmpOp::Gt, false) => IntCC::SignedGreaterThan,
            (CmpOp::Ge, false) => IntCC::SignedGreaterThanOrEqual,
            (CmpOp::Lt, true) => IntCC::UnsignedLessThan,
            (CmpOp::Le, true) => IntCC::UnsignedLessThanOrEqual,
            (CmpOp::Gt, true) => IntCC::UnsignedGreaterThan,
            (CmpOp::Ge, true) => IntCC::UnsignedGreaterThanOrEqual,
        };
        self.b.ins().icmp(cc, x, y)
    }

    pub(super) fn select(&mut self, t: Ty, c: Value, x: Value, y: Value) -> Result<Value, String> {
        if t.lanes == 1 && matches!(t.scalar, Scalar::F32 | Scalar::F64) {
            // On floats Cranelift's x64 `select` is a branch around a move, which
            // data-dependent conditions (relu's sign) mispredict half the time:
            // pick the bits with a mask instead.
            let it = if t.scalar == Scalar::F32 { types::I32 } else { types::I64 };
            let le = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
            let (xi, yi) = (self.b.ins().bitcast(it, le, x), self.b.ins().bitcast(it, le, y));
            let wide = self.b.ins().uextend(it, c);
            let mask = self.b.ins().ineg(wide);
            let keep = self.b.ins().band(xi, mask);
            let other = self.b.ins().band_not(yi, mask);
            let bits = self.b.ins().bor(keep, other);
            let ft = if t.scalar == Scalar::F32 { types::F32 } else { types::F64 };
            return Ok(self.b.ins().bitcast(ft, le, bits));
        }
        if t.lanes == 1 {
            return Ok(self.b.ins().select(c, x, y));
        }
        let vt = clif_type(t)?;
        let mask = if vt == types::I32X4 { c } else { self.b.ins().bitcast(vt, MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little), c) };
        Ok(self.b.ins().bitselect(mask, x, y))
    }

}

/// The terms of a sum, in order.
fn add_terms<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::Bin(BinOp::Add, a, b) => {
            add_terms(a, out);
            add_terms(b, out);
        }
        e => out.push(e),
    }
}

/// Splits `index` into a dynamic part and a constant element offset
/// (`x + 3` → (`x`, 3); `7` → (none, 7)).
fn split_offset(index: &Expr) -> (Option<&Expr>, i64) {
    match index {
        Expr::Const(Lit::Int(c, _)) => (None, *c),
        Expr::Bin(BinOp::Add, x, c) => match c.as_int() {
            Some(c) => (Some(x), c),
            None => (Some(index), 0),
        },
        _ => (Some(index), 0),
    }
}
