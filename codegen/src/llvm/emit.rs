//! Kernel IR → LLVM IR. One function per kernel with the signature
//! `void (i8** buffers, i64 lo, i64 hi)`. Kernels are vectorized first
//! ([`crate::schedule::vectorize`]) at the target's width; vectors of any lane count
//! map to LLVM vectors (`<8 x float>` on AVX2), masks to `<N x i1>`, scalar bools to
//! `i1` (one byte in memory). Variables live in allocas that SROA turns into SSA
//! values; loops are rotated (one test before, one at the bottom). Intrinsics expand
//! inline through [`crate::math`].
//!
//! Every load and store carries scoped alias metadata: one scope per buffer, and
//! each access declared not to alias the other buffers' scopes. That is sound
//! because a buffer a kernel writes overlaps no other buffer of the call (checked by
//! `crate::native` for the JIT, guaranteed by the memory plan for AOT libraries),
//! and it lets LLVM vectorize and hoist without run-time overlap checks.
//!
//! Building a `getelementptr` is `unsafe` in inkwell because an out-of-bounds GEP
//! would be undefined behaviour when it runs: every index the kernel IR computes is
//! in bounds of its buffer by construction (see `crate::native`, fact 1), which is
//! the only reason this module allows `unsafe`.
#![allow(unsafe_code)]

use super::math_ops::LlvmMath;
use crate::kernel::{BinOp, BufId, CmpOp, Expr, HOp, Intrinsic, Kernel, Lit, LoopKind, Scalar, Stmt, Ty, UnOp, VarId};
use crate::math;
use inkwell::basic_block::BasicBlock;
use inkwell::builder::Builder;
use inkwell::context::Context;
use inkwell::module::Module;
use inkwell::types::{BasicType, BasicTypeEnum};
use inkwell::values::{BasicMetadataValueEnum, BasicValue, BasicValueEnum, FunctionValue, InstructionValue, IntValue, MetadataValue, PointerValue};
use inkwell::{AddressSpace, FloatPredicate, IntPredicate};

pub(super) type V<'ctx> = BasicValueEnum<'ctx>;

/// Turns an inkwell error into the emitter's.
pub(super) fn ok<T, E: std::fmt::Debug>(r: Result<T, E>) -> Result<T, String> {
    r.map_err(|e| format!("llvm: {e:?}"))
}

/// The LLVM type of a kernel value type.
pub(super) fn llvm_type<'ctx>(cx: &'ctx Context, t: Ty) -> BasicTypeEnum<'ctx> {
    let s: BasicTypeEnum = match t.scalar {
        Scalar::F32 => cx.f32_type().into(),
        Scalar::F64 => cx.f64_type().into(),
        Scalar::I8 | Scalar::U8 => cx.i8_type().into(),
        Scalar::I32 => cx.i32_type().into(),
        Scalar::I64 => cx.i64_type().into(),
        Scalar::Bool => cx.bool_type().into(),
        // Storage scalars: their bits, converted by `cast` (see cast.rs).
        Scalar::F16 | Scalar::BF16 => cx.i16_type().into(),
    };
    if t.lanes == 1 {
        return s;
    }
    match s {
        BasicTypeEnum::FloatType(f) => f.vec_type(t.lanes).into(),
        BasicTypeEnum::IntType(i) => i.vec_type(t.lanes).into(),
        _ => unreachable!("scalars are ints or floats"),
    }
}

/// The LLVM type of a buffer element (bools are bytes).
fn mem_type<'ctx>(cx: &'ctx Context, s: Scalar) -> BasicTypeEnum<'ctx> {
    if s == Scalar::Bool { cx.i8_type().into() } else { llvm_type(cx, Ty::scalar(s)) }
}

/// Adds the function for kernel `k` (already verified and vectorized) to `m` as
/// `name`, with the host CPU and features as attributes.
pub(super) fn emit<'ctx>(
    cx: &'ctx Context,
    m: &Module<'ctx>,
    k: &Kernel,
    name: &str,
    cpu_attrs: (&str, &str),
    export: bool,
) -> Result<FunctionValue<'ctx>, String> {
    let i8p = cx.i8_type().ptr_type(AddressSpace::default());
    let i64t = cx.i64_type();
    let fnty = cx.void_type().fn_type(&[i8p.ptr_type(AddressSpace::default()).into(), i64t.into(), i64t.into()], false);
    let linkage = if export { None } else { Some(inkwell::module::Linkage::Internal) };
    let f = m.add_function(name, fnty, linkage);
    let attr = |k: &str, v: &str| cx.create_string_attribute(k, v);
    f.add_attribute(inkwell::attributes::AttributeLoc::Function, attr("target-cpu", cpu_attrs.0));
    f.add_attribute(inkwell::attributes::AttributeLoc::Function, attr("target-features", cpu_attrs.1));
    let nounwind = inkwell::attributes::Attribute::get_named_enum_kind_id("nounwind");
    f.add_attribute(inkwell::attributes::AttributeLoc::Function, cx.create_enum_attribute(nounwind, 0));
    // The buffer table is only read.
    let noalias = inkwell::attributes::Attribute::get_named_enum_kind_id("noalias");
    f.add_attribute(inkwell::attributes::AttributeLoc::Param(0), cx.create_enum_attribute(noalias, 0));
    let b = cx.create_builder();
    let entry = cx.append_basic_block(f, "entry");
    b.position_at_end(entry);
    let mut vars = Vec::with_capacity(k.vars.len());
    for v in &k.vars {
        vars.push(ok(b.build_alloca(llvm_type(cx, v.ty), &v.name))?);
    }
    let args = f.get_nth_param(0).ok_or("no parameter 0")?.into_pointer_value();
    let mut bases = Vec::with_capacity(k.buffers.len());
    for (i, buf) in k.buffers.iter().enumerate() {
        let idx = i64t.const_int(i as u64, false);
        // SAFETY: the table has one pointer per buffer of the kernel.
        let slot = ok(unsafe { b.build_in_bounds_gep(args, &[idx], "slot") })?;
        let raw = ok(b.build_load(slot, &buf.name))?.into_pointer_value();
        let ty = mem_type(cx, buf.scalar).ptr_type(AddressSpace::default());
        bases.push(ok(b.build_pointer_cast(raw, ty, &buf.name))?);
    }
    let lo = f.get_nth_param(1).ok_or("no parameter 1")?.into_int_value();
    let hi = f.get_nth_param(2).ok_or("no parameter 2")?.into_int_value();
    // Scoped alias metadata: a domain per function, a scope per buffer.
    let domain = cx.metadata_node(&[cx.metadata_string(&format!("smelt.{name}")).into()]);
    let scopes: Vec<_> = (0..k.buffers.len())
        .map(|i| cx.metadata_node(&[cx.metadata_string(&format!("smelt.{name}.b{i}")).into(), domain.into()]))
        .collect();
    let alias = (0..k.buffers.len())
        .map(|i| {
            let own = cx.metadata_node(&[scopes[i].into()]);
            let others: Vec<_> = scopes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| (*s).into()).collect();
            (own, cx.metadata_node(&others))
        })
        .collect();
    let mut e = Emitter { cx, m, b: &b, k, f, bases, vars, range: (lo, hi), alias };
    e.block(&k.body, true)?;
    ok(e.b.build_return(None))?;
    Ok(f)
}

pub(super) struct Emitter<'a, 'ctx> {
    pub(super) cx: &'ctx Context,
    pub(super) m: &'a Module<'ctx>,
    pub(super) b: &'a Builder<'ctx>,
    k: &'a Kernel,
    f: FunctionValue<'ctx>,
    bases: Vec<PointerValue<'ctx>>,
    vars: Vec<PointerValue<'ctx>>,
    /// The call's `lo..hi`, for the top-level parallel loop.
    range: (IntValue<'ctx>, IntValue<'ctx>),
    /// Per buffer: its `!alias.scope` and `!noalias` lists.
    alias: Vec<(MetadataValue<'ctx>, MetadataValue<'ctx>)>,
}

impl<'a, 'ctx> Emitter<'a, 'ctx> {
    fn ty(&self, e: &Expr) -> Result<Ty, String> {
        e.ty(self.k)
    }

    fn new_block(&self, name: &str) -> BasicBlock<'ctx> {
        self.cx.append_basic_block(self.f, name)
    }

    /// Alignment (one element) and alias scopes of an access to `buf`.
    fn tag(&self, i: InstructionValue<'ctx>, buf: BufId) -> Result<(), String> {
        ok(i.set_alignment(self.k.buffer(buf).scalar.size() as u32))?;
        let (own, others) = self.alias[buf.0 as usize];
        ok(i.set_metadata(own, self.cx.get_kind_id("alias.scope")))?;
        ok(i.set_metadata(others, self.cx.get_kind_id("noalias")))?;
        Ok(())
    }

    fn set_var(&mut self, v: VarId, x: V<'ctx>) -> Result<(), String> {
        ok(self.b.build_store(self.vars[v.0 as usize], x))?;
        Ok(())
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
                let x = self.expr(e)?;
                self.set_var(*v, x)?;
            }
            Stmt::Store { buf, index, value } => {
                let t = self.ty(value)?;
                let mut x = self.expr(value)?;
                if t.scalar == Scalar::Bool {
                    x = ok(self.b.build_cast(inkwell::values::InstructionOpcode::ZExt, x, llvm_type(self.cx, Ty::vec(Scalar::I8, t.lanes)), "b8"))?;
                }
                let p = self.address(*buf, index, t.lanes)?;
                let st = ok(self.b.build_store(p, x))?;
                self.tag(st, *buf)?;
            }
            Stmt::If { cond, then, els } => {
                let c = self.expr(cond)?.into_int_value();
                let (tb, eb, merge) = (self.new_block("then"), self.new_block("else"), self.new_block("endif"));
                ok(self.b.build_conditional_branch(c, tb, eb))?;
                self.b.position_at_end(tb);
                self.block(then, false)?;
                ok(self.b.build_unconditional_branch(merge))?;
                self.b.position_at_end(eb);
                self.block(els, false)?;
                ok(self.b.build_unconditional_branch(merge))?;
                self.b.position_at_end(merge);
            }
            Stmt::Loop(l) => {
                let i64t = self.cx.i64_type();
                if l.kind == LoopKind::Unrolled {
                    let (Some(lo), Some(hi)) = (l.lo.as_int(), l.hi.as_int()) else {
                        return Err("an unrolled loop needs constant bounds".into());
                    };
                    let mut i = lo;
                    while i < hi {
                        self.set_var(l.var, i64t.const_int(i as u64, true).into())?;
                        self.block(&l.body, false)?;
                        i += l.step as i64;
                    }
                    return Ok(());
                }
                let (lo, hi) = if l.kind == LoopKind::Parallel && top {
                    self.range
                } else {
                    (self.expr(&l.lo)?.into_int_value(), self.expr(&l.hi)?.into_int_value())
                };
                let (body, exit) = (self.new_block("loop"), self.new_block("exit"));
                self.set_var(l.var, lo.into())?;
                let c = ok(self.b.build_int_compare(IntPredicate::SLT, lo, hi, "enter"))?;
                ok(self.b.build_conditional_branch(c, body, exit))?;
                self.b.position_at_end(body);
                self.block(&l.body, false)?;
                let i = ok(self.b.build_load(self.vars[l.var.0 as usize], "i"))?.into_int_value();
                let next = ok(self.b.build_int_nsw_add(i, i64t.const_int(l.step, false), "next"))?;
                self.set_var(l.var, next.into())?;
                let c = ok(self.b.build_int_compare(IntPredicate::SLT, next, hi, "again"))?;
                ok(self.b.build_conditional_branch(c, body, exit))?;
                self.b.position_at_end(exit);
            }
        }
        Ok(())
    }

    /// A call of the host's micro-kernel (`crate::ukernel`) through its address:
    /// JIT code only (`object` refuses kernels with these calls).
    fn tile_gemm(&mut self, t: &crate::kernel::TileGemm) -> Result<(), String> {
        let f = crate::ukernel::tile_gemm(t.mr, t.nr, t.koff.is_some(), t.a_rs.is_some())
            .ok_or_else(|| format!("not supported on this host: the micro-kernel tile_gemm {}x{}", t.mr, t.nr))?;
        let mut args = vec![];
        for at in [Some(&t.a), Some(&t.b), t.koff.as_ref(), Some(&t.tile)] {
            args.push(self.pointer(at)?);
        }
        args.push(self.expr(&t.kc)?.into_int_value().into());
        args.push(self.int_or_zero(t.a_rs.as_ref())?.into());
        self.call_address(f as usize, &args)
    }

    /// A call of the AMX tile (`crate::amx`) through its address: JIT code only.
    fn amx_tile(&mut self, t: &crate::kernel::AmxTile) -> Result<(), String> {
        let f = crate::amx::tile(t.signed_a).ok_or("not supported on this host: the AMX-INT8 micro-kernel amx_tile")?;
        let mut args = vec![];
        for at in [Some(&t.a), Some(&t.b), Some(&t.c), t.bias.as_ref()] {
            args.push(self.pointer(at)?);
        }
        args.push(self.expr(&t.kblocks)?.into_int_value().into());
        args.push(self.expr(&t.ldc)?.into_int_value().into());
        args.push(self.cx.i64_type().const_int(t.bias_rows as u64, false).into());
        args.push(self.int_or_zero(t.a_rs.as_ref())?.into());
        self.call_address(f as usize, &args)
    }

    /// A micro-kernel's pointer argument, as i8* (the callees read f32, i32 or
    /// u8 through it): the element's address, or null.
    fn pointer(&mut self, at: Option<&crate::kernel::At>) -> Result<BasicMetadataValueEnum<'ctx>, String> {
        let p8 = self.cx.i8_type().ptr_type(AddressSpace::default());
        Ok(match at {
            Some(at) => {
                let p = self.address(at.buf, &at.index, 1)?;
                ok(self.b.build_pointer_cast(p, p8, "p8"))?.into()
            }
            None => p8.const_null().into(),
        })
    }

    /// An i64 argument, or 0.
    fn int_or_zero(&mut self, e: Option<&Expr>) -> Result<IntValue<'ctx>, String> {
        match e {
            Some(e) => Ok(self.expr(e)?.into_int_value()),
            None => Ok(self.cx.i64_type().const_zero()),
        }
    }

    /// Calls the C function at `addr` with `args` (i8* pointers and i64s).
    fn call_address(&mut self, addr: usize, args: &[BasicMetadataValueEnum<'ctx>]) -> Result<(), String> {
        let (p8, i64t) = (self.cx.i8_type().ptr_type(AddressSpace::default()), self.cx.i64_type());
        let params: Vec<inkwell::types::BasicMetadataTypeEnum> =
            args.iter().map(|a| if a.is_pointer_value() { p8.into() } else { i64t.into() }).collect();
        let fnty = self.cx.void_type().fn_type(&params, false);
        let callee = ok(self.b.build_int_to_ptr(i64t.const_int(addr as u64, false), fnty.ptr_type(AddressSpace::default()), "ukernel"))?;
        let callee = inkwell::values::CallableValue::try_from(callee).map_err(|_| "llvm: the micro-kernel is not a function pointer")?;
        ok(self.b.build_call(callee, args, ""))?;
        Ok(())
    }

    /// A pointer to element `index` of `buf`, typed for `lanes` elements.
    fn address(&mut self, buf: BufId, index: &Expr, lanes: u32) -> Result<PointerValue<'ctx>, String> {
        let idx = self.expr(index)?.into_int_value();
        let base = self.bases[buf.0 as usize];
        // SAFETY: kernel indices are in bounds of their buffer (module doc).
        let p = ok(unsafe { self.b.build_in_bounds_gep(base, &[idx], "p") })?;
        if lanes == 1 {
            return Ok(p);
        }
        let s = self.k.buffer(buf).scalar;
        let elem = mem_type(self.cx, s);
        let vt = match elem {
            BasicTypeEnum::FloatType(f) => f.vec_type(lanes).ptr_type(AddressSpace::default()),
            BasicTypeEnum::IntType(i) => i.vec_type(lanes).ptr_type(AddressSpace::default()),
            _ => return Err("vector of a non-scalar".into()),
        };
        ok(self.b.build_pointer_cast(p, vt, "pv"))
    }

    /// A constant of type `t` (splat for vectors).
    pub(super) fn konst(&self, t: Ty, l: Lit) -> Result<V<'ctx>, String> {
        let s: V = match (t.scalar, l) {
            (Scalar::F32, Lit::F32(x)) => self.cx.f32_type().const_float(x as f64).into(),
            (Scalar::F64, Lit::F32(x)) => self.cx.f64_type().const_float(x as f64).into(),
            (Scalar::Bool, Lit::Bool(v)) => self.cx.bool_type().const_int(v as u64, false).into(),
            (s, Lit::Int(v, _)) if s.is_int() || s == Scalar::Bool => {
                llvm_type(self.cx, Ty::scalar(s)).into_int_type().const_int(v as u64, true).into()
            }
            (s, Lit::F32(x)) if s.is_int() => llvm_type(self.cx, Ty::scalar(s)).into_int_type().const_int(x as i64 as u64, true).into(),
            (s, l) => return Err(format!("constant {l:?} as {}", s.name())),
        };
        if t.lanes == 1 {
            return Ok(s);
        }
        let vals = vec![s; t.lanes as usize];
        Ok(inkwell::types::VectorType::const_vector(&vals).into())
    }

    /// `x` in every one of `lanes` lanes.
    pub(super) fn splat(&self, x: V<'ctx>, lanes: u32) -> Result<V<'ctx>, String> {
        let vt = match x.get_type() {
            BasicTypeEnum::FloatType(f) => f.vec_type(lanes),
            BasicTypeEnum::IntType(i) => i.vec_type(lanes),
            _ => return Err("splat of a non-scalar".into()),
        };
        let zero = self.cx.i32_type().const_zero();
        let one = ok(self.b.build_insert_element(vt.get_undef(), x, zero, "ins"))?;
        let mask = self.cx.i32_type().vec_type(lanes).const_zero();
        Ok(ok(self.b.build_shuffle_vector(one, vt.get_undef(), mask, "splat"))?.into())
    }

    /// `dot_pairs_i16` (see [`Intrinsic::DotPairsI16`]) of two i32 values of `lanes`
    /// lanes: `pmaddwd` on x86-64 (`vpmaddwd zmm` for 16 lanes with AVX-512BW,
    /// `ymm` for 8 with AVX2, the SSE2 form for 4), else the halves sign-extended,
    /// multiplied and added.
    fn dot_pairs_i16(&self, lanes: u32, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        let (i16t, i32t) = (self.cx.i16_type(), self.cx.i32_type());
        if lanes == 1 {
            let (x, y) = (x.into_int_value(), y.into_int_value());
            let sh = i32t.const_int(16, false);
            let lo = |v: IntValue<'ctx>| -> Result<IntValue<'ctx>, String> { ok(self.b.build_right_shift(ok(self.b.build_left_shift(v, sh, "shl"))?, sh, true, "lo")) };
            let hi = |v: IntValue<'ctx>| ok(self.b.build_right_shift(v, sh, true, "hi"));
            let p0 = ok(self.b.build_int_mul(lo(x)?, lo(y)?, "p0"))?;
            let p1 = ok(self.b.build_int_mul(hi(x)?, hi(y)?, "p1"))?;
            return Ok(ok(self.b.build_int_add(p0, p1, "dot"))?.into());
        }
        let halves = i16t.vec_type(2 * lanes);
        let xh = ok(self.b.build_bit_cast(x, halves, "xh"))?;
        let yh = ok(self.b.build_bit_cast(y, halves, "yh"))?;
        let x86 = cfg!(target_arch = "x86_64");
        let native = match lanes {
            16 if x86 && super::host_has_feature("+avx512bw") => Some("llvm.x86.avx512.pmaddw.d.512"),
            8 if x86 && super::host_has_avx2_fma() => Some("llvm.x86.avx2.pmadd.wd"),
            4 if x86 => Some("llvm.x86.sse2.pmadd.wd"),
            _ => None,
        };
        if let Some(name) = native {
            return self.intrinsic(name, &[], &[xh, yh]);
        }
        let (xh, yh) = (xh.into_vector_value(), yh.into_vector_value());
        let prod = |odd: u32| -> Result<inkwell::values::VectorValue<'ctx>, String> {
            let mask: Vec<_> = (0..lanes).map(|j| i32t.const_int((2 * j + odd) as u64, false)).collect();
            let mask = inkwell::types::VectorType::const_vector(&mask);
            let a = ok(self.b.build_shuffle_vector(xh, halves.get_undef(), mask, "xa"))?;
            let b = ok(self.b.build_shuffle_vector(yh, halves.get_undef(), mask, "yb"))?;
            let a = ok(self.b.build_int_s_extend(a, i32t.vec_type(lanes), "xw"))?;
            let b = ok(self.b.build_int_s_extend(b, i32t.vec_type(lanes), "yw"))?;
            ok(self.b.build_int_mul(a, b, "p"))
        };
        let (p0, p1) = (prod(0)?, prod(1)?);
        Ok(ok(self.b.build_int_add(p0, p1, "dot"))?.into())
    }

    /// `dot_quads_u8i8` (see [`Intrinsic::DotQuadsU8I8`]) of i32 values of `lanes`
    /// lanes: `vpdpbusd zmm` (16 lanes) or `ymm` (8, with AVX512-VL) on hosts
    /// with AVX512-VNNI, else the bytes widened (zero- and sign-extended),
    /// multiplied and summed by fours.
    fn dot_quads_u8i8(&self, lanes: u32, acc: V<'ctx>, u: V<'ctx>, s: V<'ctx>) -> Result<V<'ctx>, String> {
        let x86 = cfg!(target_arch = "x86_64");
        let vnni = x86 && super::host_has_feature("+avx512vnni");
        let native = match lanes {
            16 if vnni => Some("llvm.x86.avx512.vpdpbusd.512"),
            8 if vnni && super::host_has_feature("+avx512vl") => Some("llvm.x86.avx512.vpdpbusd.256"),
            _ => None,
        };
        if let Some(name) = native {
            return self.intrinsic(name, &[], &[acc, u, s]);
        }
        let (i8t, i32t) = (self.cx.i8_type(), self.cx.i32_type());
        let bytes = i8t.vec_type(4 * lanes);
        let wide = i32t.vec_type(4 * lanes);
        let ub = ok(self.b.build_bit_cast(u, bytes, "ub"))?.into_vector_value();
        let sb = ok(self.b.build_bit_cast(s, bytes, "sb"))?.into_vector_value();
        let uw = ok(self.b.build_int_z_extend(ub, wide, "uw"))?;
        let sw = ok(self.b.build_int_s_extend(sb, wide, "sw"))?;
        let p = ok(self.b.build_int_mul(uw, sw, "p"))?;
        let mut sum: V<'ctx> = acc;
        for j in 0..4 {
            let mask: Vec<_> = (0..lanes).map(|l| i32t.const_int((4 * l + j) as u64, false)).collect();
            let mask = inkwell::types::VectorType::const_vector(&mask);
            let part = ok(self.b.build_shuffle_vector(p, wide.get_undef(), mask, "pj"))?;
            let part: V<'ctx> = if lanes == 1 { ok(self.b.build_extract_element(part, i32t.const_zero(), "p0"))? } else { part.into() };
            sum = ok(self.b.build_binop(inkwell::values::InstructionOpcode::Add, sum, part, "dot"))?;
        }
        Ok(sum)
    }

    /// `dot_quads_u8i8_narrow` (see [`Intrinsic::DotQuadsU8I8Narrow`]):
    /// `vpdpbusd` where the host has it, else `pmaddubsw` (u8×s8 pairs into
    /// i16) and `pmaddwd` by ones (AVX2 at 8 lanes, SSSE3 at 4), else the exact
    /// widened form.
    fn dot_quads_u8i8_narrow(&self, lanes: u32, acc: V<'ctx>, u: V<'ctx>, s: V<'ctx>) -> Result<V<'ctx>, String> {
        let x86 = cfg!(target_arch = "x86_64");
        let vnni = x86 && super::host_has_feature("+avx512vnni");
        let pair = match lanes {
            16 if vnni => None,
            8 if vnni && super::host_has_feature("+avx512vl") => None,
            8 if x86 && super::host_has_avx2_fma() => Some(("llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd")),
            4 if x86 && super::host_has_feature("+ssse3") => Some(("llvm.x86.ssse3.pmadd.ub.sw.128", "llvm.x86.sse2.pmadd.wd")),
            _ => None,
        };
        let Some((ubsw, wd)) = pair else { return self.dot_quads_u8i8(lanes, acc, u, s) };
        let (i8t, i16t) = (self.cx.i8_type(), self.cx.i16_type());
        let bytes = i8t.vec_type(4 * lanes);
        let ub = ok(self.b.build_bit_cast(u, bytes, "ub"))?;
        let sb = ok(self.b.build_bit_cast(s, bytes, "sb"))?;
        let pairs = self.intrinsic(ubsw, &[], &[ub, sb])?;
        let ones = inkwell::types::VectorType::const_vector(&vec![i16t.const_int(1, false); 2 * lanes as usize]);
        let sums = self.intrinsic(wd, &[], &[pairs, ones.into()])?;
        ok(self.b.build_binop(inkwell::values::InstructionOpcode::Add, acc, sums, "dot"))
    }

    /// Calls the overloaded LLVM intrinsic `name` at `types`.
    pub(super) fn intrinsic(&self, name: &str, types: &[BasicTypeEnum<'ctx>], args: &[V<'ctx>]) -> Result<V<'ctx>, String> {
        let i = inkwell::intrinsics::Intrinsic::find(name).ok_or_else(|| format!("no intrinsic {name}"))?;
        let f = i.get_declaration(self.m, types).ok_or_else(|| format!("no declaration of {name}"))?;
        let args: Vec<_> = args.iter().map(|a| (*a).into()).collect();
        let call = ok(self.b.build_call(f, &args, name))?;
        match call.try_as_basic_value() {
            inkwell::values::ValueKind::Basic(v) => Ok(v),
            _ => Err(format!("{name} returns nothing")),
        }
    }

    /// A unary intrinsic at the type of its operand.
    pub(super) fn intrinsic1(&self, name: &str, x: V<'ctx>) -> Result<V<'ctx>, String> {
        self.intrinsic(name, &[x.get_type()], &[x])
    }

    pub(super) fn binop(&self, op: inkwell::values::InstructionOpcode, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        ok(self.b.build_binop(op, x, y, "t"))
    }

    pub(super) fn fcmp(&self, p: FloatPredicate, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        Ok(match (x, y) {
            (V::FloatValue(a), V::FloatValue(c)) => ok(self.b.build_float_compare(p, a, c, "c"))?.into(),
            (V::VectorValue(a), V::VectorValue(c)) => ok(self.b.build_float_compare(p, a, c, "c"))?.into(),
            _ => return Err("float compare of mismatched values".into()),
        })
    }

    pub(super) fn icmp(&self, p: IntPredicate, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        Ok(match (x, y) {
            (V::IntValue(a), V::IntValue(c)) => ok(self.b.build_int_compare(p, a, c, "c"))?.into(),
            (V::VectorValue(a), V::VectorValue(c)) => ok(self.b.build_int_compare(p, a, c, "c"))?.into(),
            _ => return Err("int compare of mismatched values".into()),
        })
    }

    pub(super) fn select(&self, c: V<'ctx>, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        Ok(match c {
            V::IntValue(c) => ok(self.b.build_select(c, x, y, "s"))?,
            V::VectorValue(c) => ok(self.b.build_select(c, x, y, "s"))?,
            _ => return Err("select on a non-mask".into()),
        })
    }

    pub(super) fn fneg(&self, x: V<'ctx>) -> Result<V<'ctx>, String> {
        Ok(match x {
            V::FloatValue(a) => ok(self.b.build_float_neg(a, "neg"))?.into(),
            V::VectorValue(a) => ok(self.b.build_float_neg(a, "neg"))?.into(),
            _ => return Err("fneg of a non-float".into()),
        })
    }

    pub(super) fn expr(&mut self, e: &Expr) -> Result<V<'ctx>, String> {
        use inkwell::values::InstructionOpcode as Op;
        let t = self.ty(e)?;
        Ok(match e {
            Expr::Const(l) => self.konst(t, *l)?,
            Expr::Var(v) => ok(self.b.build_load(self.vars[v.0 as usize], &self.k.var(*v).name))?,
            Expr::Load { buf, index, lanes } => {
                let p = self.address(*buf, index, *lanes)?;
                let x = ok(self.b.build_load(p, "ld"))?;
                if let Some(i) = x.as_instruction_value() {
                    self.tag(i, *buf)?;
                }
                if self.k.buffer(*buf).scalar == Scalar::Bool {
                    let z = self.konst(Ty::vec(Scalar::I8, *lanes), Lit::Int(0, Scalar::I8))?;
                    self.icmp(IntPredicate::NE, x, z)?
                } else {
                    x
                }
            }
            Expr::Un(op, a) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?;
                let fl = ta.scalar.is_float();
                match op {
                    UnOp::Neg if fl => self.fneg(x)?,
                    UnOp::Neg => self.binop(Op::Sub, self.konst(ta, Lit::Int(0, ta.scalar))?, x)?,
                    UnOp::Abs if fl => self.intrinsic1("llvm.fabs", x)?,
                    UnOp::Abs => {
                        let z = self.konst(ta, Lit::Int(0, ta.scalar))?;
                        let n = self.binop(Op::Sub, z, x)?;
                        let c = self.icmp(IntPredicate::SLT, x, z)?;
                        self.select(c, n, x)?
                    }
                    UnOp::Floor => self.intrinsic1("llvm.floor", x)?,
                    UnOp::Ceil => self.intrinsic1("llvm.ceil", x)?,
                    // Round half to even: the default rounding mode.
                    UnOp::Round => self.intrinsic1("llvm.nearbyint", x)?,
                    UnOp::Trunc => self.intrinsic1("llvm.trunc", x)?,
                    UnOp::Sqrt => self.intrinsic1("llvm.sqrt", x)?,
                    UnOp::Not => self.binop(Op::Xor, x, self.konst(ta, Lit::Int(-1, ta.scalar))?)?,
                }
            }
            Expr::Bin(op, a, c) => {
                let ta = self.ty(a)?;
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                self.binary(*op, ta, x, y)?
            }
            Expr::Fma(a, b2, c) => {
                let (x, y, z) = (self.expr(a)?, self.expr(b2)?, self.expr(c)?);
                self.intrinsic("llvm.fma", &[x.get_type()], &[x, y, z])?
            }
            Expr::Cmp(op, a, c) => {
                let ta = self.ty(a)?;
                let (x, y) = (self.expr(a)?, self.expr(c)?);
                self.compare(*op, ta, x, y)?
            }
            Expr::Select(c, a, d) => {
                let (cv, x, y) = (self.expr(c)?, self.expr(a)?, self.expr(d)?);
                self.select(cv, x, y)?
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
            Expr::Call(Intrinsic::DotQuadsU8I8, args) => {
                let (acc, u, s) = (self.expr(&args[0])?, self.expr(&args[1])?, self.expr(&args[2])?);
                self.dot_quads_u8i8(t.lanes, acc, u, s)?
            }
            Expr::Call(Intrinsic::DotQuadsU8I8Narrow, args) => {
                let (acc, u, s) = (self.expr(&args[0])?, self.expr(&args[1])?, self.expr(&args[2])?);
                self.dot_quads_u8i8_narrow(t.lanes, acc, u, s)?
            }
            Expr::Call(f, args) => {
                let mut vals = Vec::with_capacity(args.len());
                for a in args {
                    vals.push(self.expr(a)?);
                }
                let mut m = LlvmMath::new(self, t.lanes);
                let r = match f {
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
                        unreachable!("the integer dot products are emitted above")
                    }
                };
                m.finish(r)?
            }
            Expr::Splat(a, lanes) => {
                let x = self.expr(a)?;
                self.splat(x, *lanes)?
            }
            Expr::Lane(a, i) => {
                let x = self.expr(a)?.into_vector_value();
                ok(self.b.build_extract_element(x, self.cx.i32_type().const_int(*i as u64, false), "lane"))?
            }
            Expr::HReduce(op, a) => {
                let ta = self.ty(a)?;
                let x = self.expr(a)?.into_vector_value();
                let lane = |i: u32| ok(self.b.build_extract_element(x, self.cx.i32_type().const_int(i as u64, false), "lane"));
                let mut acc = lane(0)?;
                let bop = match op {
                    HOp::Add => BinOp::Add,
                    HOp::Max => BinOp::Max,
                    HOp::Min => BinOp::Min,
                };
                for i in 1..ta.lanes {
                    let l = lane(i)?;
                    acc = self.binary(bop, ta.with_lanes(1), acc, l)?;
                }
                acc
            }
        })
    }

    fn binary(&mut self, op: BinOp, t: Ty, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        use inkwell::values::InstructionOpcode as Op;
        if t.scalar.is_float() {
            return match op {
                BinOp::Add => self.binop(Op::FAdd, x, y),
                BinOp::Sub => self.binop(Op::FSub, x, y),
                BinOp::Mul => self.binop(Op::FMul, x, y),
                BinOp::Div => self.binop(Op::FDiv, x, y),
                // NaN-propagating: a NaN operand gives NaN (x + y), else the smaller.
                BinOp::Min | BinOp::Max => {
                    let p = if op == BinOp::Min { FloatPredicate::OLT } else { FloatPredicate::OGT };
                    let c = self.fcmp(p, x, y)?;
                    let m = self.select(c, x, y)?;
                    let nan = self.fcmp(FloatPredicate::UNO, x, y)?;
                    let sum = self.binop(Op::FAdd, x, y)?;
                    self.select(nan, sum, m)
                }
                _ => Err(format!("float {}", op.name())),
            };
        }
        let unsigned = t.scalar == Scalar::U8 || t.scalar == Scalar::Bool;
        match op {
            BinOp::Add => self.binop(Op::Add, x, y),
            BinOp::Sub => self.binop(Op::Sub, x, y),
            BinOp::Mul => self.binop(Op::Mul, x, y),
            BinOp::Div => self.binop(if unsigned { Op::UDiv } else { Op::SDiv }, x, y),
            BinOp::Rem => self.binop(if unsigned { Op::URem } else { Op::SRem }, x, y),
            BinOp::Min | BinOp::Max => {
                let p = match (op == BinOp::Min, unsigned) {
                    (true, false) => IntPredicate::SLT,
                    (true, true) => IntPredicate::ULT,
                    (false, false) => IntPredicate::SGT,
                    (false, true) => IntPredicate::UGT,
                };
                let c = self.icmp(p, x, y)?;
                self.select(c, x, y)
            }
            BinOp::And => self.binop(Op::And, x, y),
            BinOp::Or => self.binop(Op::Or, x, y),
            BinOp::Xor => self.binop(Op::Xor, x, y),
            BinOp::Shl => self.binop(Op::Shl, x, y),
            BinOp::Shr => self.binop(if unsigned { Op::LShr } else { Op::AShr }, x, y),
        }
    }

    fn compare(&mut self, op: CmpOp, t: Ty, x: V<'ctx>, y: V<'ctx>) -> Result<V<'ctx>, String> {
        if t.scalar.is_float() {
            let p = match op {
                CmpOp::Eq => FloatPredicate::OEQ,
                CmpOp::Ne => FloatPredicate::UNE,
                CmpOp::Lt => FloatPredicate::OLT,
                CmpOp::Le => FloatPredicate::OLE,
                CmpOp::Gt => FloatPredicate::OGT,
                CmpOp::Ge => FloatPredicate::OGE,
            };
            return self.fcmp(p, x, y);
        }
        let u = t.scalar == Scalar::U8 || t.scalar == Scalar::Bool;
        let p = match (op, u) {
            (CmpOp::Eq, _) => IntPredicate::EQ,
            (CmpOp::Ne, _) => IntPredicate::NE,
            (CmpOp::Lt, false) => IntPredicate::SLT,
            (CmpOp::Le, false) => IntPredicate::SLE,
            (CmpOp::Gt, false) => IntPredicate::SGT,
            (CmpOp::Ge, false) => IntPredicate::SGE,
            (CmpOp::Lt, true) => IntPredicate::ULT,
            (CmpOp::Le, true) => IntPredicate::ULE,
            (CmpOp::Gt, true) => IntPredicate::UGT,
            (CmpOp::Ge, true) => IntPredicate::UGE,
        };
        self.icmp(p, x, y)
    }
}
